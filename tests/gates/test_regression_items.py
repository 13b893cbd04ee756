"""Regressions against --llmeval-compare are items: pytest's last line, JUnit and -k all see them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from .conftest import sentiment_cases, write


def _suite(evaldir: pytest.Pytester, model: str) -> None:
    write(evaldir, "cases.jsonl", sentiment_cases(20, 20))
    write(evaldir, "s.eval.yaml", f"model: python:toymodel:{model}\nprompt: '{{text}}'\ncases: cases.jsonl\n"
          "metrics:\n  exact_match: {}\n")


def test_regression_only_failure_fails_an_item_and_junit(evaldir: pytest.Pytester, dist: list[str]) -> None:
    _suite(evaldir, "sentiment")
    assert evaldir.runpytest("-q", "--llmeval-json", "old.json").ret == 0
    _suite(evaldir, "always_negative")  # half the cases now wrong; the gate has no threshold
    result = evaldir.runpytest("-q", "--llmeval-compare", "old.json", "--junitxml", "junit.xml",
                               "--llmeval-json", "new.json", *dist)
    assert result.ret == 1
    result.assert_outcomes(passed=41, failed=1)
    result.stdout.fnmatch_lines(["*FAILED*s.eval.yaml::regression[[]exact_match[]]*", "*1 failed, 41 passed*"])
    suite = ET.parse(evaldir.path / "junit.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failed = [tc for tc in suite.iter("testcase") if tc.find("failure") is not None]
    assert [tc.get("name") for tc in failed] == ["regression[exact_match]"]
    props = {p.get("name"): p.get("value") for p in failed[0].iter("property")}
    assert props["llmeval.regression.exact_match.verdict"] == "regressed"
    assert float(props["llmeval.regression.exact_match.n_worse"]) == 20
    # the results file records the same verdict as the item, JUnit and the exit code
    recorded = json.loads((evaldir.path / "new.json").read_text())["regressions"]
    assert [(r["file"], r["gate"], r["status"]) for r in recorded] == [("s.eval.yaml", "exact_match", "regressed")]


def test_regression_message_lists_up_to_max_cases_and_the_total(evaldir: pytest.Pytester) -> None:
    _suite(evaldir, "sentiment")
    evaldir.runpytest("-q", "--llmeval-json", "old.json")
    _suite(evaldir, "always_negative")
    result = evaldir.runpytest("-q", "--llmeval-compare", "old.json", "--llmeval-max-cases", "3")
    text = result.stdout.str()
    assert "cases that got worse: 20, showing 3" in text
    assert "20 worse / 0 better" in text
    assert "setting 'seed' differs" not in text  # the comparison sees this run's settings


def test_k_selects_regression_items(evaldir: pytest.Pytester) -> None:
    _suite(evaldir, "sentiment")
    evaldir.runpytest("-q", "--llmeval-json", "old.json")
    result = evaldir.runpytest("-q", "--llmeval-compare", "old.json", "-k", "regression")
    result.assert_outcomes(passed=1)


def test_unpaired_gate_is_an_error_unless_allowed(evaldir: pytest.Pytester) -> None:
    _suite(evaldir, "sentiment")
    evaldir.runpytest("-q", "--llmeval-json", "old.json")
    old = json.loads((evaldir.path / "old.json").read_text())
    old["suites"][0]["aggregates"] = []  # the previous run had no such gate
    (evaldir.path / "old.json").write_text(json.dumps(old))
    result = evaldir.runpytest("-q", "--llmeval-compare", "old.json")
    result.assert_outcomes(passed=41, errors=1)
    result.stdout.fnmatch_lines(["*cannot be compared*"])
    allowed = evaldir.runpytest("-q", "--llmeval-compare", "old.json", "--llmeval-compare-allow-unpaired")
    allowed.assert_outcomes(passed=41, skipped=1)
    assert allowed.ret == 0


def test_unreadable_compare_file_is_a_usage_error(evaldir: pytest.Pytester) -> None:
    _suite(evaldir, "sentiment")
    (evaldir.path / "old.json").write_text("[1, 2")
    result = evaldir.runpytest_subprocess("-q", "--llmeval-compare", "old.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llmeval-compare*old.json*"])
