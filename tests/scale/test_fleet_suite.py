"""A 2,000-case suite on a named fleet of four loopback replicas, one killed midway and one slow."""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest

from pytest_llmeval.testing.fake_server import FakeLLMServer

pytest.importorskip("openai")

N = 2000


@pytest.mark.slow
def test_every_case_once_and_the_retried_requests_reported(pytester: pytest.Pytester) -> None:
    with ExitStack() as stack:
        fast = [stack.enter_context(FakeLLMServer(latency=0.002)) for _ in range(2)]
        slow = stack.enter_context(FakeLLMServer(latency=0.02))
        # stops answering at its 301st request and dies holding a full load (4): the requests it drops
        # had all arrived, so the servers' counts can be checked exactly against the run's report
        doomed = stack.enter_context(FakeLLMServer(
            latency=0.002, faults=lambda r: "hang" if r.index >= 300 else None,
            kill_when=lambda s: s.count >= 304 and s.in_flight >= 4))
        servers = [fast[0], doomed, slow, fast[1]]
        replicas = ", ".join(f'"{s.openai_base_url}"' for s in servers)
        pytester.makepyprojecttoml(f"""
            [tool.pytest.ini_options]
            llmeval_cache = "off"

            [tool.llmeval.models]
            pool = {{ref = "openai:served", api_key_env = false, concurrency = 4, endpoint_backoff = 0.2, replicas = [{replicas}]}}
        """)
        cases = "\n".join(json.dumps({"id": f"c{i}", "text": f"case {i}", "reference": f"echo: case {i}"})
                          for i in range(N))
        (pytester.path / "cases.jsonl").write_text(cases + "\n", encoding="utf-8")
        (pytester.path / "big.eval.yaml").write_text(
            "model: pool\nprompt: '{text}'\ncases: cases.jsonl\nmetrics:\n  exact_match: {min: 1.0}\n",
            encoding="utf-8")
        result = pytester.runpytest("-q", "--llmeval-json", "results.json")
    assert result.ret == 0, result.stdout.str()
    run = json.loads((pytester.path / "results.json").read_text(encoding="utf-8"))
    ids = [c["id"] for c in run["suites"][0]["cases"]]
    assert sorted(ids) == sorted(f"c{i}" for i in range(N))  # every case exactly once
    assert all(c["output"] == f"echo: case {c['id'][1:]}" for c in run["suites"][0]["cases"])
    usage = run["usage"]["pool"]
    retried = usage["failover_retries"]
    assert doomed.killed and retried == doomed.count - doomed.answered == 4
    assert sum(s.count for s in servers) == N + retried
    assert sum(s.answered for s in servers) == N
    assert usage["requests"] == N and usage["failures"] == 0
    assert "replicas" in run["models"]["pool"] and "base_url" not in run["models"]["pool"]
    result.stdout.fnmatch_lines([f"llmeval: pool: {retried} requests retried from failed endpoints*"])
