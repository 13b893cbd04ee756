"""A gate that cannot run never lets CI pass: SKIP locally, ERROR with CI set or --llmeval-strict."""

from __future__ import annotations

import pytest

from .conftest import write

SUITE = """model: python:toymodel:sentiment
prompt: '{text}'
cases:
  - {id: a, text: good}
  - {id: b, text: bad}
judge:
  model: openai:gpt-4o-mini
  score: {min_mean: 5}
"""


@pytest.fixture
def keyless(evaldir: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    write(evaldir, "j.eval.yaml", SUITE)
    return evaldir


def test_missing_judge_key_under_ci_is_an_error_naming_the_gate(keyless: pytest.Pytester,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = keyless.runpytest("-q")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*not evaluated*strict mode*", "*ERROR*j.eval.yaml::judge_score*"])
    result.stdout.fnmatch_lines(["llmeval: 0 of 1 gates evaluated; not evaluated: 1 ERROR*"])


def test_missing_judge_key_locally_is_a_skip_counted_in_the_summary(keyless: pytest.Pytester,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = keyless.runpytest("-q")
    assert result.ret == 0
    result.assert_outcomes(passed=2, skipped=1)
    text = " ".join(line.strip() for line in result.outlines)  # the line wraps at the terminal's width
    assert ("llmeval: 0 of 1 gates evaluated; not evaluated: 1 skipped (j.eval.yaml::judge_score) "
            "[not strict") in text


def test_strict_flag_and_its_override(keyless: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert keyless.runpytest("-q", "--llmeval-strict").ret == pytest.ExitCode.TESTS_FAILED
    monkeypatch.setenv("CI", "1")
    relaxed = keyless.runpytest("-q", "--no-llmeval-strict")
    assert relaxed.ret == 0
    relaxed.assert_outcomes(passed=2, skipped=1)


def test_strict_results_file_records_the_error(keyless: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setenv("CI", "true")
    keyless.runpytest("-q", "--llmeval-json", "r.json")
    agg = json.loads((keyless.path / "r.json").read_text())["suites"][0]["aggregates"][0]
    assert agg["name"] == "judge_score" and agg["skip"] is None and "strict mode" in agg["error"]
