"""Comparisons that used to pass what they could not compare, and inputs that gave tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_llmeval.cli import main
from pytest_llmeval.compare import (
    RegressionResult,
    compare_runs,
    format_regression,
    validate_compare_options,
)
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult


def _suite(correct: np.ndarray, *, name: str = "qa", file: str = "a/qa.eval.yaml",
           ids: list[str] | None = None, status: str = "passed") -> SuiteResult:
    ids = ids or [f"c{i}" for i in range(len(correct))]
    cases = [CaseResult(id=i, prompt=f"q{i}", output="right" if ok else f"wrong {i}", reference="right",
                        scores={"exact_match": float(ok)} if status != "error" else {}, status=status)
             for i, ok in zip(ids, correct, strict=True)]
    agg = AggregateResult(name="exact_match", value=float(np.mean(correct)), n=len(correct),
                          threshold=0.5, passed=True, metric="exact_match",
                          details={"metric_kind": "proportion"})
    return SuiteResult(name=name, file=file, model="ft", n_cases=len(cases), suite_hash="h",
                       aggregates=[agg], cases=cases)


ONES = np.ones(50, dtype=bool)
FIFTH = np.arange(50) < 10  # 0.2


# -- finding 1: suites are identified by file and name ----------------------------------------

def test_two_suites_with_the_same_name_in_different_folders_are_compared_separately() -> None:
    old = RunResult(suites=[_suite(ONES, file="a/qa.eval.yaml"), _suite(ONES, file="b/qa.eval.yaml")])
    new = RunResult(suites=[_suite(FIFTH, file="a/qa.eval.yaml"), _suite(ONES, file="b/qa.eval.yaml")])
    cmp = compare_runs(old, new)
    assert not cmp.passed
    by_file = {r.suite_file: r for r in cmp.results}
    assert by_file["a/qa.eval.yaml"].status == "regressed"
    assert by_file["b/qa.eval.yaml"].status == "pass"
    assert [g.label for g in cmp.regressions] == ["a/qa.eval.yaml::exact_match"]


def test_llmeval_compare_exits_1_when_one_of_two_same_named_suites_regresses(tmp_path: Path,
                                                                             capsys) -> None:
    old = RunResult(suites=[_suite(ONES, file="a/qa.eval.yaml"), _suite(ONES, file="b/qa.eval.yaml")])
    new = RunResult(suites=[_suite(FIFTH, file="a/qa.eval.yaml"), _suite(ONES, file="b/qa.eval.yaml")])
    old.save(tmp_path / "old.json")
    new.save(tmp_path / "new.json")
    assert main(["compare", str(tmp_path / "old.json"), str(tmp_path / "new.json")]) == 1
    assert "REGRESSION" in capsys.readouterr().out


def test_a_moved_suite_file_is_still_paired_by_its_unique_name() -> None:
    old = RunResult(suites=[_suite(ONES, file="old/qa.eval.yaml")])
    new = RunResult(suites=[_suite(FIFTH, file="new/qa.eval.yaml")])
    cmp = compare_runs(old, new)
    assert [r.status for r in cmp.results] == ["regressed"]
    assert any("moved" in n for n in cmp.notes)


# -- finding 3: what cannot be paired is an ERROR, never a pass -------------------------------

def test_changed_case_ids_make_the_gate_an_error_not_a_pass() -> None:
    old = RunResult(suites=[_suite(ONES)])
    new = RunResult(suites=[_suite(FIFTH, ids=[f"new{i}" for i in range(50)])])
    cmp = compare_runs(old, new)
    [result] = cmp.results
    assert result.status == "error" and not cmp.passed
    assert "case ids changed" in result.message and "--allow-unpaired" in result.message
    assert "cannot be compared" in format_regression(result)


def test_cases_that_all_errored_make_the_gate_an_error() -> None:
    old = RunResult(suites=[_suite(ONES)])
    new = RunResult(suites=[_suite(FIFTH, status="error")])
    [result] = compare_runs(old, new).results
    assert result.status == "error" and "errored" in result.message


def test_a_new_gate_in_error_is_an_error() -> None:
    old = RunResult(suites=[_suite(ONES)])
    new_suite = _suite(ONES)
    new_suite.aggregates.append(AggregateResult(name="judge_score", kind="judge_score", value=None,
                                                error="judge unreachable"))
    new = RunResult(suites=[new_suite])
    statuses = {r.gate: r for r in compare_runs(old, new).results}
    assert statuses["exact_match"].status == "pass"
    assert statuses["judge_score"].status == "error"
    assert "judge unreachable" in statuses["judge_score"].message


def test_an_error_gate_in_a_suite_new_in_this_run_is_an_error() -> None:
    old = RunResult(suites=[_suite(ONES)])
    extra = _suite(ONES, name="extra", file="extra.eval.yaml")
    extra.aggregates[0].value, extra.aggregates[0].error = None, "no output"
    cmp = compare_runs(old, RunResult(suites=[_suite(ONES), extra]))
    assert [(r.suite_file, r.status) for r in cmp.results if r.status == "error"] == [
        ("extra.eval.yaml", "error")]


def test_allow_unpaired_is_the_explicit_opt_out() -> None:
    old = RunResult(suites=[_suite(ONES)])
    new = RunResult(suites=[_suite(FIFTH, ids=[f"new{i}" for i in range(50)])])
    cmp = compare_runs(old, new, allow_unpaired=True)
    [result] = cmp.results
    assert result.status == "pass" and "allow-unpaired" in result.message and cmp.passed
    # the tolerance still applies when one is given
    strict = compare_runs(old, new, allow_unpaired=True, max_regression=0.1)
    assert [r.status for r in strict.results] == ["regressed"]


def test_llmeval_compare_exit_codes_for_unpaired_gates(tmp_path: Path) -> None:
    RunResult(suites=[_suite(ONES)]).save(tmp_path / "old.json")
    RunResult(suites=[_suite(FIFTH, ids=[f"n{i}" for i in range(50)])]).save(tmp_path / "new.json")
    args = ["compare", str(tmp_path / "old.json"), str(tmp_path / "new.json")]
    assert main(args) == 1
    assert main([*args, "--allow-unpaired"]) == 0


# -- the typed record and its message ---------------------------------------------------------

def test_each_gate_gets_a_frozen_record_with_every_worse_case() -> None:
    old = RunResult(suites=[_suite(np.ones(200, dtype=bool))])
    new = RunResult(suites=[_suite(np.arange(200) >= 60)])  # 60 cases got worse
    [result] = compare_runs(old, new).results
    assert isinstance(result, RegressionResult) and result.status == "regressed"
    assert len(result.worse_cases) == 60 and result.worse_cases[0].old_score == 1.0
    assert result.delta == pytest.approx(-0.3)
    assert result.delta_ci is not None and result.delta_ci[0] < -0.3 < result.delta_ci[1] < 0
    assert result.p_value is not None and result.p_value < 1e-6
    with pytest.raises(AttributeError):
        result.status = "pass"  # type: ignore[misc]
    message = format_regression(result)
    assert "cases that got worse: 60, showing 20" in message
    assert message.count("    case c") == 20
    assert "showing 60 (all)" in format_regression(result, max_cases=100)
    assert json.loads(json.dumps(result.to_dict()))["worse_cases"][59]["id"] == "c59"


# -- finding 10: options and hand-edited files ------------------------------------------------

@pytest.mark.parametrize("alpha, max_regression, option", [
    (2, None, "--llmeval-alpha"), (0, None, "--llmeval-alpha"), ("abc", None, "--llmeval-alpha"),
    (float("nan"), None, "--llmeval-alpha"), (None, -1, "--llmeval-max-regression"),
    (None, float("inf"), "--llmeval-max-regression"),
])
def test_compare_options_are_validated_naming_the_option(alpha, max_regression, option) -> None:
    with pytest.raises(ConfigError, match=option):
        validate_compare_options(alpha, max_regression)


def test_compare_option_defaults() -> None:
    assert validate_compare_options(None, None) == (0.05, None)
    assert validate_compare_options(0.01, 0) == (0.01, 0.0)


@pytest.mark.parametrize("args, option", [
    (["--alpha", "2"], "--alpha"), (["--alpha", "0"], "--alpha"),
    (["--max-regression", "-1"], "--max-regression"), (["--max-cases", "-3"], "--max-cases"),
])
def test_llmeval_compare_bad_options_exit_2(tmp_path: Path, capsys, args, option) -> None:
    RunResult(suites=[_suite(ONES)]).save(tmp_path / "r.json")
    code = main(["compare", str(tmp_path / "r.json"), str(tmp_path / "r.json"), *args])
    assert code == 2
    assert option in capsys.readouterr().err


def _edited(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    data = RunResult(suites=[_suite(ONES)]).to_dict()
    data = edit(data) or data
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["suites"][0]["aggregates"][0].update(value="abc"),
     "suites[0].aggregates[0].value: expected a number or null, got 'abc'"),
    (lambda d: d["suites"][0]["aggregates"][0].update(details=[]),
     "suites[0].aggregates[0].details: expected a JSON object"),
    (lambda d: [d], "the top level must be a JSON object"),
    (lambda d: d["suites"][0]["cases"][3].update(scores={"exact_match": "1"}),
     "suites[0].cases[3].scores.exact_match: expected a number or null"),
    (lambda d: d.update(version=7), "unsupported results file version 7"),
])
def test_hand_edited_results_files_exit_2_with_the_field(tmp_path: Path, capsys, edit, expected) -> None:
    good = tmp_path / "good.json"
    RunResult(suites=[_suite(ONES)]).save(good)
    bad = _edited(tmp_path, edit)
    for argv in (["compare", str(good), str(bad)], ["compare", str(bad), str(good)], ["report", str(bad)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert expected in err and str(bad) in err and "Traceback" not in err


def test_report_exit_codes(tmp_path: Path, capsys) -> None:
    ok = tmp_path / "ok.json"
    RunResult(suites=[_suite(ONES)]).save(ok)
    assert main(["report", str(ok)]) == 0
    failing = RunResult(suites=[_suite(FIFTH)])
    failing.suites[0].aggregates[0].passed = False
    failing.save(tmp_path / "fail.json")
    assert main(["report", str(tmp_path / "fail.json")]) == 1
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert main(["report", str(ok), "--baseline", str(ok)]) == 0
