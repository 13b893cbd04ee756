"""The cache through the plugin: warm re-runs make no model calls; workers share it."""

from __future__ import annotations

import pytest

from .conftest import results, sentiment_cases, write


def _setup(evaldir: pytest.Pytester, monkeypatch) -> object:
    calls = evaldir.path / "calls.log"
    monkeypatch.setenv("LLMEVAL_TEST_CALLS", str(calls))
    evaldir.makeini("[pytest]\n")
    write(evaldir, "cases.jsonl", sentiment_cases(10, 10, 5))
    for k in range(2):
        write(evaldir, f"s{k}.eval.yaml", f"""
            model: python:toymodel:sentiment
            model_options: {{cache: true}}
            prompt: "Review {k}: {{text}}"
            cases: cases.jsonl
            metrics: {{exact_match: {{min: 0.5}}}}
        """)
    return calls


def _count(calls) -> int:
    n = len(calls.read_text().splitlines()) if calls.exists() else 0
    if calls.exists():
        calls.unlink()
    return n


def test_warm_cache_makes_no_calls_and_gives_the_same_results(evaldir: pytest.Pytester, monkeypatch) -> None:
    calls = _setup(evaldir, monkeypatch)
    evaldir.runpytest("-q", "--llmeval-json", "cold.json").assert_outcomes(passed=52)
    assert _count(calls) == 50
    evaldir.runpytest("-q", "--llmeval-json", "warm.json").assert_outcomes(passed=52)
    assert _count(calls) == 0
    cold, warm = results(evaldir, "cold.json")["suites"], results(evaldir, "warm.json")["suites"]
    for run in (cold, warm):  # request timings are measurements, not results
        for suite in run:
            for case in suite["cases"]:
                case.pop("requests")
    assert cold == warm
    evaldir.runpytest("-q", "--llmeval-cache", "off").assert_outcomes(passed=52)
    assert _count(calls) == 50


def test_strict_readonly_cache_miss_is_an_error(evaldir: pytest.Pytester, monkeypatch) -> None:
    calls = _setup(evaldir, monkeypatch)
    evaldir.runpytest("-q").assert_outcomes(passed=52)
    assert _count(calls) == 50
    write(evaldir, "s0.eval.yaml", (evaldir.path / "s0.eval.yaml").read_text().replace("Review 0", "New"))
    result = evaldir.runpytest("-q", "--llmeval-cache-readonly", "--llmeval-cache-strict")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 26 and outcomes["errors"] == 26
    assert _count(calls) == 0


@pytest.mark.slow
def test_xdist_workers_share_the_cache(evaldir: pytest.Pytester, monkeypatch) -> None:
    pytest.importorskip("xdist")
    calls = _setup(evaldir, monkeypatch)
    evaldir.runpytest_subprocess("-q", "-n", "2").assert_outcomes(passed=52)
    assert _count(calls) == 50
    evaldir.runpytest_subprocess("-q", "-n", "2").assert_outcomes(passed=52)
    assert _count(calls) == 0
