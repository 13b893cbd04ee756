"""Judge gates as items: score and win-rate gates, SKIP without an API key, ERROR on a broken judge."""

from __future__ import annotations

import pytest

from .conftest import results, write

JUDGE = '''
def judge(kind, prompt=None, response=None, response_a=None, response_b=None, reference=None, **_):
    if kind == "score":
        if "broken" in prompt:
            return "not a verdict"
        return {"score": 9 if response == reference else 3, "reasoning": "matches" if response == reference else "wrong"}
    a_ok, b_ok = response_a == reference, response_b == reference
    if a_ok == b_ok:
        return {"winner": "tie", "reasoning": "same"}
    return {"winner": "A" if a_ok else "B", "reasoning": "closer to the reference"}
'''


def _suite(evaldir: pytest.Pytester, judge_block: str, n: int = 12, broken: bool = False) -> None:
    evaldir.makepyfile(myjudge=JUDGE)
    cases = "\n".join(
        f"  - {{id: c{i}, text: '{'good' if i % 4 else 'bad'} {'broken' if broken and i == 0 else ''}',"
        f" reference: {'positive' if i % 4 else 'negative'}}}" for i in range(n))
    write(evaldir, "j.eval.yaml", "model: python:toymodel:sentiment\nbaseline: python:toymodel:always_negative\n"
          "prompt: '{text}'\ncases:\n" + cases + "\n" + judge_block)


def test_score_and_pairwise_gates(evaldir: pytest.Pytester, dist: list[str]) -> None:
    _suite(evaldir, """judge:
  model: python:myjudge:judge
  score: {criteria: correctness, min_mean: 8}
  pairwise: {against: baseline, min_win_rate: 0.6, confidence: 0.9}
""")
    result = evaldir.runpytest("-q", "--llmeval-json", "results.json", *dist)
    result.assert_outcomes(passed=14)
    suite = results(evaldir)["suites"][0]
    aggs = {a["name"]: a for a in suite["aggregates"]}
    win = aggs["win_rate[python:toymodel:sentiment>python:toymodel:always_negative]"]
    assert win["value"] == pytest.approx((9 + 3 / 2) / 12)
    assert win["details"]["wins"] == 9 and win["details"]["ties"] == 3
    assert aggs["judge_score"]["value"] == pytest.approx(9.0)
    assert suite["cases"][1]["judge"]["score"]["score"] == 9
    # At 80 columns the long model references move the threshold under its row.
    result.stdout.fnmatch_lines(["*judge_score*9.000*PASS*", "*threshold >= 8*", "*win_rate*PASS*"])


def test_failed_judge_score_gate_lists_low_cases(evaldir: pytest.Pytester) -> None:
    _suite(evaldir, "judge:\n  model: python:myjudge:judge\n  score: {min_mean: 9.5}\n")
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=12, failed=1)
    result.stdout.fnmatch_lines(["*j.eval.yaml::judge_score*"])


def test_unparseable_verdict_is_an_error_never_a_pass(evaldir: pytest.Pytester) -> None:
    _suite(evaldir, "judge:\n  model: python:myjudge:judge\n  score: {min_mean: 1}\n", broken=True)
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=12, errors=1)
    result.stdout.fnmatch_lines(["*ERROR*judge_score*"])


def test_api_judge_without_key_is_skipped(evaldir: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("CI", raising=False)  # a skip outside strict mode (tests/gates/test_strict.py: CI)
    _suite(evaldir, "judge:\n  model: openai:gpt-4o\n  score: {min_mean: 7}\n")
    result = evaldir.runpytest("-q", "-rs")
    result.assert_outcomes(passed=12, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*OPENAI_API_KEY*"])


def test_no_judge_configured_skips_judge_gates(evaldir: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)  # a skip outside strict mode
    _suite(evaldir, "judge:\n  score: {min_mean: 7}\n")
    result = evaldir.runpytest("-q", "-rs")
    result.assert_outcomes(passed=12, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*no judge configured*"])


def test_broken_baseline_errors_only_the_pairwise_gate(evaldir: pytest.Pytester) -> None:
    evaldir.makepyfile(myjudge=JUDGE)
    write(evaldir, "j.eval.yaml", """
model: python:toymodel:sentiment
baseline: python:toymodel:no_such_function
prompt: '{text}'
cases: [{id: a, text: good, reference: positive}, {id: b, text: bad, reference: negative}]
metrics: {exact_match: {min: 0.5}}
judge:
  model: python:myjudge:judge
  pairwise: {against: baseline, min_win_rate: 0.5}
""")
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of win_rate*", "*the baseline could not generate*no_such_function*"])


def test_pairwise_gate_with_models_from_fixtures(evaldir: pytest.Pytester) -> None:
    evaldir.makepyfile(myjudge=JUDGE)
    evaldir.makeconftest("""
        import pytest
        from toymodel import always_negative, sentiment

        @pytest.fixture(scope="session")
        def llm_model():
            return sentiment

        @pytest.fixture(scope="session")
        def llm_baseline():
            return always_negative
    """)
    write(evaldir, "j.eval.yaml", """
prompt: '{text}'
cases: [{id: a, text: good, reference: positive}, {id: b, text: bad, reference: negative}]
judge:
  model: python:myjudge:judge
  pairwise: {min_win_rate: 0.5}
""")
    result = evaldir.runpytest("-q", "--llmeval-json", "results.json")
    result.assert_outcomes(passed=3)
    # one name everywhere (item, summary, results file); the real models are in the aggregate
    # At 80 columns the model moves to the line under its row.
    result.stdout.fnmatch_lines(["*win_rate[[]llm_model>llm_baseline[]]*PASS*", "*model sentiment*"])
    agg = results(evaldir)["suites"][0]["aggregates"][0]
    assert agg["name"] == "win_rate[llm_model>llm_baseline]"
    assert agg["model"] == "sentiment" and agg["details"]["baseline"] == "always_negative"
    evaldir.runpytest("--collect-only", "-q").stdout.fnmatch_lines(["*::win_rate[[]llm_model>llm_baseline[]]"])
