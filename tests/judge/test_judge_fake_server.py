"""End to end: LLM judges through the real openai/anthropic SDKs against the loopback server."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest
from judge_fakes import blocks

from pytest_llmeval.errors import ConfigError, JudgeError
from pytest_llmeval.judge import load_judge
from pytest_llmeval.judge.base import CompareRequest, ScoreRequest
from pytest_llmeval.judge.gates import JudgeCase, run_pairwise_gate
from pytest_llmeval.judge.verdicts import PairVerdict, ScoreVerdict
from pytest_llmeval.testing.fake_server import FakeLLMServer, Faults

pytest.importorskip("openai")
pytest.importorskip("anthropic")


def verdict_for(request) -> str:
    """Score = number of words; pairwise: the response with more words wins."""
    found = blocks(request.messages[0]["content"])
    if "RESPONSE" in found:
        return json.dumps({"reasoning": "counted words",
                           "score": min(10, len(found["RESPONSE"].split()))})
    a, b = len(found["RESPONSE A"].split()), len(found["RESPONSE B"].split())
    return json.dumps({"reasoning": f"{a} vs {b} words",
                       "winner": "tie" if a == b else "A" if a > b else "B"})


def options(server: FakeLLMServer, api: str) -> dict:
    base = server.openai_base_url if api == "openai" else server.anthropic_base_url
    return {"base_url": base, "api_key_env": None, "concurrency": 16,
            "retry_backoff": 0.01, "retry_backoff_max": 0.05, "max_retries": 8}


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_score_and_compare_through_the_sdk(api, tmp_path):
    with FakeLLMServer(responder=verdict_for) as server:
        judge = load_judge(f"{api}:judge-model", options=options(server, api), base_dir=tmp_path)
        v = judge.score("q", "one two three")
        assert v.score == 3.0 and v.reasoning == "counted words"
        pair = judge.compare("q", "a b c d", "a b")
        assert pair.winner == "A" and pair.consistent is True
        assert server.count == 3
        if api == "openai":
            assert server.log[0].body["response_format"] == {"type": "json_object"}


def test_faults_never_produce_a_silent_verdict(tmp_path):
    """20% 429s, 10% 500s, 5% malformed verdicts: every verdict is right or an error."""
    rng = random.Random(7)
    lock = threading.Lock()

    def flaky(request) -> str:
        with lock:
            broken = rng.random() < 0.05
        return '{"reasoning": "cut off", "score": ' if broken else verdict_for(request)

    faults = Faults(rate_429=0.2, rate_500=0.1, retry_after=0.01, seed=3)
    with FakeLLMServer(responder=flaky, faults=faults) as server:
        judge = load_judge("openai:judge-model", options=options(server, "openai"),
                           base_dir=tmp_path)
        texts = [" ".join(["w"] * (1 + i % 10)) for i in range(60)]
        scores = judge.score_many([ScoreRequest("q", t) for t in texts])
        pairs = judge.compare_many([CompareRequest("q", t, "w w w w w") for t in texts])
        assert server.outcomes["429"] > 0 and server.outcomes["500"] > 0
    for t, s in zip(texts, scores, strict=True):
        assert isinstance(s, (ScoreVerdict, JudgeError))
        if isinstance(s, ScoreVerdict):
            assert s.score == len(t.split())
    for t, p in zip(texts, pairs, strict=True):
        assert isinstance(p, (PairVerdict, JudgeError))
        if isinstance(p, PairVerdict):
            n = len(t.split())
            assert p.winner == ("tie" if n == 5 else "A" if n > 5 else "B")
    assert sum(isinstance(s, ScoreVerdict) and s.repaired for s in scores) >= 1


def test_persistently_malformed_verdicts_make_the_gate_an_error(tmp_path):
    def broken_for_case_3(request) -> str:
        if "case three" in request.messages[0]["content"]:
            return "Response A, definitely."
        return verdict_for(request)

    with FakeLLMServer(responder=broken_for_case_3, faults=Faults(rate_429=0.2, seed=1,
                                                                  retry_after=0.01)) as server:
        judge = load_judge("openai:judge-model", options=options(server, "openai"),
                           base_dir=tmp_path)
        cases = [JudgeCase(f"c{i}", f"case {w}", "a b c", "a") for i, w in
                 enumerate(["one", "two", "three", "four"], start=1)]
        out = run_pairwise_gate(judge, cases, {"min_win_rate": 0.5}, model_name="ft",
                                baseline_name="base", confidence=0.95, seed=0)
    agg = out.aggregate
    assert agg.passed is None and agg.value is None
    assert "case[c3]" in agg.error and "Response A, definitely." in agg.error
    assert out.per_case["c1"]["verdict"] == "win"


def test_missing_api_key_propagates_as_a_config_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_judge("openai:gpt-4o", base_dir=tmp_path)


def test_judge_option_typo_for_an_llm_judge_gets_a_did_you_mean(tmp_path):
    with pytest.raises(ConfigError, match="'swpa' -> 'swap'"):
        load_judge("openai:gpt-4o", options={"swpa": False, "api_key_env": None},
                   base_dir=tmp_path)


def test_cached_judge_makes_no_calls_on_a_warm_rerun(tmp_path):
    from pytest_llmeval.cache import Cache

    with FakeLLMServer(responder=verdict_for) as server:
        for _ in range(2):
            cache = Cache(tmp_path / "cache")
            judge = load_judge("openai:judge-model", options=options(server, "openai"),
                               base_dir=Path(tmp_path), cache=cache)
            assert judge.compare("q", "a b c", "a").winner == "A"
            assert judge.score("q", "a b").score == 2.0
        assert server.count == 3
