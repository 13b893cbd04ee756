"""Under ``-n 4`` the concurrency limit and a provider's retry-after hold for the whole run."""

from __future__ import annotations

import json

import pytest

from pytest_llmeval import budget
from pytest_llmeval.testing.fake_server import FakeLLMServer, Faults

pytest.importorskip("xdist")
pytest.importorskip("openai")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not budget.SHARING_SUPPORTED, reason="no fcntl.flock on this platform")]


def write_suites(pytester: pytest.Pytester, url: str, suites: int, cases: int) -> None:
    pytester.makeini("[pytest]\nllmeval_cache = off\n")
    for k in range(suites):
        lines = "\n".join(json.dumps({"id": f"s{k}c{i}", "text": f"suite {k} case {i}",
                                      "reference": f"echo: suite {k} case {i}"}) for i in range(cases))
        (pytester.path / f"s{k}.jsonl").write_text(lines + "\n", encoding="utf-8")
        (pytester.path / f"s{k}.eval.yaml").write_text(
            f"model: openai:served\n"
            f"model_options: {{base_url: '{url}', api_key_env: false, retry_backoff: 0.01}}\n"
            f"prompt: '{{text}}'\ncases: s{k}.jsonl\nmetrics:\n  exact_match: {{min: 1.0}}\n",
            encoding="utf-8")


def test_four_workers_never_send_more_than_the_run_wide_limit(pytester: pytest.Pytester) -> None:
    with FakeLLMServer(latency=0.05) as server:
        write_suites(pytester, server.openai_base_url, suites=4, cases=40)
        result = pytester.runpytest("-n", "4", "--llmeval-concurrency", "8", "--llmeval-json", "r.json")
        seen = server.max_in_flight
        served = server.count
    assert result.ret == 0, result.stdout.str()
    run = json.loads((pytester.path / "r.json").read_text())
    assert sorted(c["id"] for s in run["suites"] for c in s["cases"]) == sorted(
        f"s{k}c{i}" for k in range(4) for i in range(40))
    assert served == 160
    # four workers of eight threads each: only the shared budget keeps the server at eight
    assert seen == 8


def test_a_retry_after_told_to_one_worker_holds_back_the_others(pytester: pytest.Pytester) -> None:
    wait = 1.5
    faults = Faults(script=[None] * 10 + ["429"], retry_after=wait)
    with FakeLLMServer(latency=0.05, faults=faults) as server:
        write_suites(pytester, server.openai_base_url, suites=2, cases=40)
        result = pytester.runpytest("-n", "2", "--llmeval-concurrency", "4")
        log = list(server.log)
    assert result.ret == 0, result.stdout.str()
    limited = next(r for r in log if r.fault == "429")
    t0 = limited.received_at
    # both suites were running: requests of each arrived before the 429 and after the wait
    suites_before = {r.prompt.split()[1] for r in log if r.received_at < t0}
    suites_after = {r.prompt.split()[1] for r in log if r.received_at > t0 + wait}
    assert suites_before == suites_after == {"0", "1"}
    # nobody sent anything while the provider asked to wait (the slack covers requests already sent)
    during = [r for r in log if t0 + 0.25 < r.received_at < t0 + wait - 0.1]
    assert during == []
