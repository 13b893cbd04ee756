"""``llmeval merge`` in strict mode: a gate that could not be evaluated fails the merge, as in a pytest run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmeval import cli, merge
from pytest_llmeval.results import AggregateResult, RunResult, SuiteResult


def _run() -> RunResult:
    ran = AggregateResult(name="exact_match", value=0.9, ci=(0.8, 0.95), n=20, threshold=0.5, passed=True)
    not_run = AggregateResult(name="judge_score", value=None, n=20, threshold=7, skip="no judge configured")
    return RunResult(suites=[SuiteResult(name="qa", file="qa.eval.yaml", model="m", aggregates=[ran, not_run])])


@pytest.mark.parametrize(("env", "flag", "code", "verdict"), [
    ("true", [], 1, "error"),            # CI set: strict by default
    ("true", ["--no-strict"], 0, "skip"),
    ("", [], 0, "skip"),                 # a developer's machine: not strict by default
    ("", ["--strict"], 1, "error"),
])
def test_a_gate_not_evaluated_fails_a_strict_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str], env: str,
                                                   flag: list[str], code: int, verdict: str) -> None:
    monkeypatch.setenv("CI", env)
    monkeypatch.setattr(merge, "merge_files", lambda paths, rootdir=".": _run())
    out = tmp_path / "run.json"
    assert cli.main(["merge", "a.json", "b.json", "-o", str(out), *flag]) == code
    printed = capsys.readouterr().out
    assert f"qa::judge_score - n=20 {verdict.upper()}" in printed
    assert "qa::exact_match 0.900 [0.800, 0.950] n=20 PASS" in printed
    saved = json.loads(out.read_text())["suites"][0]["aggregates"][1]
    assert (saved.get("error") is not None) == (verdict == "error")
    assert (saved.get("skip") is not None) == (verdict == "skip")
