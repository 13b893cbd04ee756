"""--llmeval-compare, --llmeval-html and the GitHub step summary through a real run."""

from __future__ import annotations

import json

import pytest

from .conftest import write

WORSE_MODEL = '''
def worse(prompt):
    """Right on 'good' items, wrong on every second 'bad' item."""
    if "good" in prompt:
        return "positive"
    n = int(prompt.rsplit(" ", 1)[-1])
    return "positive" if n % 2 else "negative"
'''


def _suite(evaldir: pytest.Pytester, model: str) -> None:
    cases = [json.dumps({"id": f"c{i}", "text": f"{'good' if i < 100 else 'bad'} thing {i}",
                         "reference": "positive" if i < 100 else "negative"}) for i in range(200)]
    write(evaldir, "cases.jsonl", "\n".join(cases) + "\n")
    write(evaldir, "s.eval.yaml", f"""
        model: {model}
        prompt: "Review: {{text}}"
        cases: cases.jsonl
        metrics: {{exact_match: {{min: 0.5}}}}
    """)


def test_compare_fails_the_run_on_a_planted_regression(evaldir: pytest.Pytester, monkeypatch) -> None:
    evaldir.makepyfile(worsemodel=WORSE_MODEL)
    _suite(evaldir, "python:toymodel:sentiment")
    evaldir.runpytest("-q", "--llmeval-json", "main.json").assert_outcomes(passed=201)
    same = evaldir.runpytest("-q", "--llmeval-compare", "main.json")
    assert same.ret == 0
    _suite(evaldir, "python:worsemodel:worse")
    summary = evaldir.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    worse = evaldir.runpytest("-q", "--llmeval-compare", "main.json", "--llmeval-html", "report.html")
    assert worse.ret == 1
    # every gate still clears its threshold: only the regression item fails, and pytest counts it
    worse.assert_outcomes(passed=201, failed=1)
    worse.stdout.fnmatch_lines(["*FAILED s.eval.yaml::regression[[]*[]]*"])
    out = worse.stdout.str()
    assert "comparison with the previous run" in out and "c101" in out
    html = (evaldir.path / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "c101" in html
    assert "exact" in summary.read_text()


def test_compare_with_a_missing_file_is_reported(evaldir: pytest.Pytester) -> None:
    _suite(evaldir, "python:toymodel:sentiment")
    result = evaldir.runpytest_subprocess("-q", "--llmeval-compare", "nope.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmeval-compare*nope.json*"])
