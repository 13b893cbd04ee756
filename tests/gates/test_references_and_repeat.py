"""A misspelt model reference is one collection error; errored repeat samples are never scored as empty."""

from __future__ import annotations

import json

import pytest

from .conftest import write

FLAKY = '''
CALLS = {"n": 0}


def every_second_raises(prompt):
    CALLS["n"] += 1
    if CALLS["n"] % 2 == 0:
        raise RuntimeError("sample failed")
    return "one two three four five six"
'''


def test_misspelt_model_reference_is_one_collection_error(evaldir: pytest.Pytester) -> None:
    write(evaldir, "bad.eval.yaml", "model: pyhton:toymodel:sentiment\nprompt: '{text}'\ncases:\n"
          + "".join(f"  - {{id: c{i}, text: good}}\n" for i in range(5)) + "metrics:\n  length: {max: 4}\n")
    write(evaldir, "good.eval.yaml", "model: python:toymodel:sentiment\nprompt: '{text}'\ncases:\n"
          "  - {id: a, text: good}\n")
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=1, errors=1)  # not 6 identical run-time errors
    result.stdout.fnmatch_lines(["*bad.eval.yaml:1 [[]model[]]: unknown model 'pyhton:toymodel:sentiment'*"
                                 "Did you mean 'python:'*"])


def test_missing_local_hf_directory_says_so(evaldir: pytest.Pytester) -> None:
    pytest.importorskip("transformers")
    (evaldir.path / "models").mkdir()
    write(evaldir, "hf.eval.yaml", "model: hf:models/x\nprompt: '{text}'\ncases:\n  - {id: a, text: good}\n")
    result = evaldir.runpytest("-q")
    result.stdout.fnmatch_lines(["*hf: model directory*models/x* does not exist*"])
    assert "huggingface.co" not in result.stdout.str()


def test_errored_samples_after_the_first_make_the_case_an_error(evaldir: pytest.Pytester) -> None:
    evaldir.makepyfile(flaky=FLAKY)
    write(evaldir, "r.eval.yaml", "model: python:flaky:every_second_raises\nrepeat: 2\nprompt: '{text}'\n"
          "cases:\n" + "".join(f"  - {{id: c{i}, text: t{i}}}\n" for i in range(3)) +
          "metrics:\n  length: {max: 4}\n")
    result = evaldir.runpytest("-q", "--llmeval-json", "r.json")
    # every case lost its second sample: each case is an ERROR, and so is the gate (never a PASS at 3.0)
    result.assert_outcomes(errors=4)
    suite = json.loads((evaldir.path / "r.json").read_text())["suites"][0]
    gate = suite["aggregates"][0]
    assert gate["error"] and "have no output" in gate["error"] and gate["value"] is None
    assert all(c["status"] == "error" and "sample 2 of 2" in c["error"] for c in suite["cases"])
    result.stdout.fnmatch_lines(["*cases: 3 evaluated, 0 failed checks, 3 errors*"])
