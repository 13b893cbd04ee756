"""Markdown CI summaries and the GitHub step summary."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval.compare import Comparison
from pytest_llmeval.report.markdown import append_github_summary, render_markdown
from pytest_llmeval.results import RunResult


def test_summary_lists_gates_with_values_intervals_base_model_and_verdicts(new_run: RunResult) -> None:
    md = render_markdown(new_run)
    assert md.startswith("## :x: llmeval: 4 aggregates, 3 failed, 0 errors")
    em = next(a for a in new_run.suites[0].aggregates if a.name == "exact_match")
    row = next(line for line in md.splitlines() if "| exact\\_match |" in line)
    assert "| 0.375 | [0.275, 0.475] | 40 | base 0.550 [0.400, 0.700] |" in row
    assert f"| {em.value - 0.55:+.3f} [{em.value - 0.7:+.3f}, {em.value - 0.4:+.3f}] |" in row
    assert ":x: **FAIL**" in row and "&gt;= 0.6" in row
    assert "difference to the base model" in md
    assert "length-controlled win rate | | 0.410 |  |" in md  # the win-rate kind's own line


def test_summary_with_comparison_names_regressions_and_worse_cases(
        new_run: RunResult, comparison: Comparison) -> None:
    md = render_markdown(new_run, comparison)
    assert "Comparison with the previous run: :x: 4 regressions" in md
    assert "**REGRESSED**" in md and "McNemar exact" in md and "p<0.001" in md
    assert "15 cases got worse (showing 5)" in md
    assert "| case-020 | 1.000 | 0.000 | Paris | Lyon 20 |" in md


def test_untrusted_text_cannot_break_the_markdown_or_inject_html(new_run: RunResult) -> None:
    md = render_markdown(new_run)
    assert "<script>" not in md
    assert "qa &lt;script&gt;" in md
    new_run.suites[0].aggregates[0].error = "boom | <b>x</b>\nsecond line"
    row = next(line for line in render_markdown(new_run).splitlines()
               if "| exact\\_match |" in line)
    assert row.count(" | ") == 9 and "\\|" in row and "&lt;b&gt;" in row


def test_github_summary_is_appended_only_when_configured(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_run: RunResult) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert append_github_summary(new_run) is False
    target = tmp_path / "summary.md"
    target.write_text("# earlier step\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert append_github_summary(new_run) is True
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# earlier step\n") and "llmeval: 4 aggregates" in text
