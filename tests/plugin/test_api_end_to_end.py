"""The plugin driving the real openai and anthropic SDKs against the loopback fake provider."""

from __future__ import annotations

import json
import random

import pytest

from pytest_llmeval.testing.fake_server import FakeLLMServer, Faults

from .conftest import results, write

pytest.importorskip("openai")
pytest.importorskip("anthropic")


def responder(request) -> str:
    """Generation: 'positive'/'negative' by keyword. Judging: a position-biased judge (always 'A'),
    or a score; about 5% of verdicts are garbage."""
    text = request.prompt
    if "winner" in text and "Response A" in text or '"winner"' in text:
        if random.random() < 0.05:
            return "I cannot decide, sorry"
        return json.dumps({"reasoning": "the first one reads better", "winner": "A"})
    if '"score"' in text:
        if random.random() < 0.05:
            return "{not json"
        return json.dumps({"reasoning": "fine", "score": 8})
    return "positive" if "good" in text else "negative"


def _suite(evaldir: pytest.Pytester, scheme: str, base_url: str) -> None:
    cases = "\n".join(f"  - {{id: c{i}, text: '{'good' if i % 2 else 'bad'} item {i}', "
                      f"reference: {'positive' if i % 2 else 'negative'}}}" for i in range(40))
    write(evaldir, "api.eval.yaml", f"""
model: {scheme}:fake-model
model_options: {{base_url: "{base_url}", api_key_env: FAKE_KEY, max_retries: 8, retry_backoff: 0.01}}
baseline: {scheme}:fake-base
baseline_options: {{base_url: "{base_url}", api_key_env: FAKE_KEY, max_retries: 8, retry_backoff: 0.01}}
prompt: "Review: {{text}}"
generation: {{max_new_tokens: 4}}
cases:
{cases}
metrics:
  exact_match: {{min: 0.9}}
judge:
  model: {scheme}:fake-judge
  options: {{base_url: "{base_url}", api_key_env: FAKE_KEY, max_retries: 8, retry_backoff: 0.01}}
  score: {{min_mean: 7}}
  pairwise: {{against: baseline, min_win_rate: 0.4}}
""")


@pytest.mark.parametrize("scheme", ["openai", "anthropic"])
def test_suite_through_real_sdk_with_faults(evaldir: pytest.Pytester, monkeypatch, scheme: str) -> None:
    monkeypatch.setenv("FAKE_KEY", "sk-test-not-a-real-key")
    random.seed(1)
    faults = Faults(rate_429=0.2, rate_500=0.1, retry_after=0.01, seed=3)
    with FakeLLMServer(latency=0.01, responder=responder, faults=faults) as server:
        base = server.openai_base_url if scheme == "openai" else server.anthropic_base_url
        _suite(evaldir, scheme, base)
        result = evaldir.runpytest("-q", "--llmeval-json", "results.json", "--llmeval-cache", "off")
        served = server.count
    out = result.stdout.str()
    assert "sk-test-not-a-real-key" not in out
    outcomes = result.parseoutcomes()
    # every case generated (retries absorbed the faults); no gate passed silently
    assert outcomes.get("passed", 0) >= 41
    suite = results(evaldir)["suites"][0]
    aggs = {a["name"]: a for a in suite["aggregates"]}
    assert aggs["exact_match"]["value"] == 1.0
    win = next(a for n, a in aggs.items() if n.startswith("win_rate"))
    score = aggs["judge_score"]
    for agg in (win, score):
        # a gate is either computed on every case or an ERROR listing what broke
        assert (agg["error"] is None and agg["n"] == 40) or (agg["error"] and agg["passed"] is None)
    if win["error"] is None:
        # the position-biased judge always says 'A': with the swap every pair is inconsistent -> tie
        assert win["value"] == 0.5 and win["details"]["ties"] == 40
    assert "retries=" in out and served > 40 * 2 + 40 + 80
    assert "sk-test-not-a-real-key" not in (evaldir.path / "results.json").read_text()


def test_missing_key_errors_generation_and_names_the_variable(evaldir: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.delenv("FAKE_KEY", raising=False)
    _suite(evaldir, "openai", "http://127.0.0.1:9/v1")
    result = evaldir.runpytest("-q", "--llmeval-cache", "off")
    result.stdout.fnmatch_lines(["*FAKE_KEY*"])
    assert result.ret != 0
