"""The HTML report: self-contained, escaped, with charts, comparison view and case table."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from pytest_llmeval.compare import Comparison
from pytest_llmeval.report.html import render_html, write_html
from pytest_llmeval.results import RunResult


def test_report_is_one_self_contained_file(tmp_path: Path, new_run: RunResult) -> None:
    out = tmp_path / "sub" / "report.html"
    write_html(new_run, out)
    page = out.read_text(encoding="utf-8")
    assert not (tmp_path / "sub" / "report.html.tmp").exists()
    assert page.startswith("<!DOCTYPE html>")
    # Nothing is fetched: no external scripts, styles, images or fonts.
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=", page, re.I)
    assert "@import" not in page and "url(" not in page


def test_only_the_reports_own_script_is_allowed_to_run(new_run: RunResult) -> None:
    page = render_html(new_run)
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 1  # every <script> of an output is escaped text
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    assert f"script-src &#x27;sha256-{digest}&#x27;" in csp.group(1)
    assert "default-src &#x27;none&#x27;" in csp.group(1)


def test_hostile_outputs_are_escaped(new_run: RunResult) -> None:
    page = render_html(new_run)
    assert "window.__pwned" in page  # present, as text
    assert "<script>window.__pwned" not in page
    assert "</script><script>window" not in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
    assert "<!-- <script>" not in page
    assert "&lt;b&gt;bold?&lt;/b&gt;" in page  # the prompt's markup too
    assert "qa &lt;script&gt;" in page  # and the suite name


def test_charts_and_case_table_are_rendered(new_run: RunResult) -> None:
    page = render_html(new_run)
    assert page.count('<svg class="intervals"') == 1
    assert page.count('class="ci"') == 4 and page.count('class="threshold"') == 3
    assert '<svg class="wtl"' in page and "wins 15" in page  # 30 right of 40 minus 15 worse
    assert page.count('<svg class="hist"') == 3  # exact_match, rougeL, judge score
    assert page.count("<tr data-status=") == 40
    assert 'data-status="failed"' in page
    assert "[system] Answer briefly." in page  # chat prompt shown as messages
    assert "output of base" in page  # the baseline model's outputs side by side


def test_comparison_view_shows_old_new_and_changed_cases(
        new_run: RunResult, baseline_run: RunResult, comparison: Comparison) -> None:
    page = render_html(new_run, comparison=comparison, baseline=baseline_run)
    assert "comparison with the baseline run" in page
    assert "REGRESSED" in page and '<svg class="deltas"' in page
    assert "baseline run output" in page
    worse_rows = re.findall(r'<tr data-status="\w+" data-change="worse"', page)
    assert len(worse_rows) == 15  # cases 20..39 that were right (i % 4 != 3)
    assert '<option value="worse">' in page
    assert "(was 1)" in page  # the old per-case score beside the new one


def test_incomparable_runs_show_a_warning(new_run: RunResult, baseline_run: RunResult) -> None:
    from pytest_llmeval.compare import compare_runs

    new_run.settings["seed"] = 2
    page = render_html(new_run, comparison=compare_runs(baseline_run, new_run),
                       baseline=baseline_run)
    assert "not comparable? setting &#x27;seed&#x27; differs" in page


def test_long_outputs_are_cut_in_the_table(new_run: RunResult) -> None:
    new_run.suites[0].cases[10].output = "x" * 30_000
    page = render_html(new_run)
    assert "10,000 more characters cut" in page
    assert "x" * 30_000 not in page
