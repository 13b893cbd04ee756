"""The llmeval command: compare and report on saved results files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval.cli import main
from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult


def _run(correct: int, n: int = 200) -> RunResult:
    cases = [CaseResult(id=f"c{i}", prompt=f"p{i}", output="yes" if i < correct else "no",
                        reference="yes", scores={"exact_match": 1.0 if i < correct else 0.0})
             for i in range(n)]
    agg = AggregateResult(name="exact_match", value=correct / n, ci=(0.0, 1.0), n=n, threshold=0.5,
                          passed=correct / n >= 0.5, details={"metric_kind": "proportion"})
    suite = SuiteResult(name="s", file="s.eval.yaml", model="m", n_cases=n, suite_hash="h",
                        aggregates=[agg], cases=cases)
    return RunResult(suites=[suite], models={"m": {"fingerprint": "f"}})


def test_compare_exits_1_on_a_regression_and_0_without(tmp_path: Path, capsys) -> None:
    old, same, worse = tmp_path / "old.json", tmp_path / "same.json", tmp_path / "worse.json"
    _run(180).save(old)
    _run(180).save(same)
    _run(150).save(worse)
    assert main(["compare", str(old), str(same)]) == 0
    assert main(["compare", str(old), str(worse), "--html", str(tmp_path / "r.html"),
                 "--markdown", str(tmp_path / "r.md")]) == 1
    out = capsys.readouterr().out
    assert "exact_match" in out and "c150" in out
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert "exact\\_match" in (tmp_path / "r.md").read_text()


def test_report_renders_markdown(tmp_path: Path, capsys) -> None:
    path = tmp_path / "run.json"
    _run(190).save(path)
    assert main(["report", str(path)]) == 0
    assert "exact\\_match | m | 0.950 |" in capsys.readouterr().out


def test_bad_results_file_is_exit_2_with_the_path(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["compare", str(bad), str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err


def test_version() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
