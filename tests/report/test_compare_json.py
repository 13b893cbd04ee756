"""``llmeval compare --json``: the document validates against the shipped JSON Schema."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from pytest_llmeval import cli
from pytest_llmeval.report.compare_json import SCHEMA_FILE, compare_json_schema
from pytest_llmeval.results import RunResult


def _schema() -> dict:
    return json.loads(resources.files("pytest_llmeval.report").joinpath(SCHEMA_FILE).read_text("utf-8"))


def _save(run: RunResult, path: Path) -> str:
    run.save(path)
    return str(path)


def test_shipped_schema_is_the_models_schema() -> None:
    assert _schema() == compare_json_schema()
    jsonschema.Draft202012Validator.check_schema(_schema())


def test_compare_json_validates_and_carries_the_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          baseline_run: RunResult, new_run: RunResult) -> None:
    old, new = _save(baseline_run, tmp_path / "old.json"), _save(new_run, tmp_path / "new.json")
    code = cli.main(["compare", old, new, "--json", "--html", str(tmp_path / "r.html")])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout is the document alone
    assert "HTML report written" in captured.err
    jsonschema.validate(doc, _schema(), cls=jsonschema.Draft202012Validator)
    assert code == cli.EXIT_FAILED and doc["passed"] is False
    assert doc["schema_version"] == 1 and doc["old"] == old and doc["new"] == new
    gates = {g["name"]: g for s in doc["suites"] for g in s["gates"]}
    em = gates["exact_match"]
    assert em["status"] == "regressed" and em["delta"] < 0 and em["n_paired"] == 40
    assert em["delta_ci"][0] <= em["delta"] <= em["delta_ci"][1]
    assert doc["regressions"] == sum(g["status"] == "regressed" for g in gates.values()) >= 1
    assert all(c["new_score"] < c["old_score"] for c in em["worse_cases"])


def test_compare_json_of_identical_runs_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               baseline_run: RunResult) -> None:
    old = _save(baseline_run, tmp_path / "old.json")
    assert cli.main(["compare", old, old, "--json"]) == cli.EXIT_OK
    doc = json.loads(capsys.readouterr().out)
    jsonschema.validate(doc, _schema(), cls=jsonschema.Draft202012Validator)
    assert doc["passed"] is True and doc["regressions"] == doc["errors"] == 0
    assert all(g["status"] == "pass" and g["delta"] == 0 for s in doc["suites"] for g in s["gates"])


def test_schema_refuses_a_document_that_drifts(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               baseline_run: RunResult) -> None:
    old = _save(baseline_run, tmp_path / "old.json")
    cli.main(["compare", old, old, "--json"])
    doc = json.loads(capsys.readouterr().out)
    doc["suites"][0]["gates"][0]["status"] = "fine"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema())
    del doc["suites"][0]["gates"][0]["status"]
    doc["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema())
