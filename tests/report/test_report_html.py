"""The HTML report: self-contained, escaped, templated, with the overview, charts and the case data."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from pytest_llmeval.compare import Comparison
from pytest_llmeval.report.html import nice_ticks, render_html, word_diff, write_html
from pytest_llmeval.results import AggregateResult, RunResult


def _cases_blob(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="llmeval-cases">(.*?)</script>', page, re.S)
    assert m is not None
    return json.loads(m.group(1))


def test_report_is_one_self_contained_file(tmp_path: Path, new_run: RunResult) -> None:
    out = tmp_path / "sub" / "report.html"
    write_html(new_run, out)
    page = out.read_text(encoding="utf-8")
    assert not (tmp_path / "sub" / "report.html.tmp").exists()
    assert page.startswith("<!DOCTYPE html>")
    # Nothing is fetched: no external scripts, styles, images or fonts.
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)=", page, re.I)
    assert "@import" not in page and "url(" not in page


def test_only_the_reports_own_script_and_style_are_allowed(new_run: RunResult) -> None:
    page = render_html(new_run)
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 1  # every <script> of an output is escaped text; the data blob is typed JSON
    styles = re.findall(r"<style>(.*?)</style>", page, re.S)
    assert len(styles) == 1
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    policy = csp.group(1).replace("&#39;", "'").replace("&#x27;", "'")
    for kind, text in (("script-src", scripts[0]), ("style-src", styles[0])):
        digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
        assert f"{kind} 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy and "unsafe-inline" not in policy


def test_hostile_outputs_ids_and_categories_are_escaped(new_run: RunResult) -> None:
    case = new_run.suites[0].cases[0]
    case.id = "<script>window.__pwned = 10</script>"
    case.category = "</script><script>window.__pwned = 11</script>"
    new_run.suites[0].categories["exact_match"] = [
        AggregateResult(name="exact_match", value=0.5, ci=(0.4, 0.6), n=3, kind="category",
                        category="<img src=x onerror=alert(1)>")]
    page = render_html(new_run)
    assert "window.__pwned" in page  # present, as text
    assert "<script>window.__pwned" not in page
    assert "</script><script>" not in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=" in page
    assert "qa &lt;script&gt;" in page  # the suite name
    blob = re.search(r'id="llmeval-cases">(.*?)</script>', page, re.S)
    assert blob is not None and "<" not in blob.group(1) and ">" not in blob.group(1)
    rows = _cases_blob(page)["suites"][0]["rows"]
    assert rows[0]["c"][0] == "<script>window.__pwned = 10</script>"  # the script shows it as text


def test_overview_shows_value_base_model_difference_threshold_and_verdict(new_run: RunResult) -> None:
    page = render_html(new_run)
    overview = page[page.index('<section id="overview">'):page.index("</section>")]
    em = new_run.suites[0].aggregates[0]
    assert "0.375" in overview and "[0.275, 0.475]" in overview
    assert "base model" in overview and "0.550 [0.400, 0.700]" in overview
    assert f"{em.value - 0.55:+.3f} [{em.value - 0.7:+.3f}, {em.value - 0.4:+.3f}]" in overview
    assert "&gt;= 0.6" in overview and "FAIL" in overview
    assert 'href="#suite-0"' in overview  # each row links to its suite


def test_kind_rows_come_from_the_gate_class(new_run: RunResult) -> None:
    page = render_html(new_run)
    # WinRateGate.display_rows: the length-controlled win rate with its own threshold and verdict
    assert "length-controlled win rate" in page and "0.410" in page
    assert "wins / losses / ties" in page and "p&lt;0.001" in page
    assert "position consistency" in page and "90%" in page


def test_a_kind_unknown_here_falls_back_on_its_numbers(new_run: RunResult) -> None:
    new_run.suites[0].aggregates.append(AggregateResult(
        name="toxicity", kind="toxicity_from_a_plugin", value=0.02, n=40, threshold=0.05, op="max",
        passed=True, details={"flagged_cases": 1, "mean_toxicity": 0.0213}))
    page = render_html(new_run)
    assert "flagged cases" in page and "mean toxicity" in page and "0.0213" not in page
    assert "0.021" in page  # the shared format


def test_charts_have_axes_ticks_and_units(new_run: RunResult) -> None:
    page = render_html(new_run)
    assert page.count('<svg class="intervals"') == 4  # one per gate, each on its own scale
    assert 'class="axis-label"' in page and "exact_match (share of cases)" in page
    assert page.count('class="tick-label"') > 20
    assert page.count('<svg class="hist"') == 3  # exact_match, rougeL, judge score
    assert '<svg class="wtl"' in page and "wins 15" in page
    assert "category geo" in page  # per-category bars under the gate's interval plot
    assert "base model (base)" in page


def test_confusion_matrix_for_a_classification_gate(new_run: RunResult) -> None:
    suite = new_run.suites[0]
    labels = ["pos", "neg", "neutral"]
    for i, c in enumerate(suite.cases):
        c.reference = [labels[i % 3]]
        c.output = labels[(i + (i % 5 == 0)) % 3]
    suite.aggregates[0].metric = "accuracy"
    page = render_html(new_run)
    assert '<svg class="confusion"' in page and "predicted (output)" in page


def test_cases_carry_checks_judge_usage_and_chat_prompts(new_run: RunResult) -> None:
    data = _cases_blob(render_html(new_run))["suites"][0]
    assert len(data["rows"]) == 40
    labels = [c["label"] for c in data["columns"]]
    assert labels[:4] == ["id", "status", "category", "output"]
    assert "latency (ms)" in labels and "tokens in / out" in labels and "cost (USD)" in labels
    failing = data["rows"][7]
    assert failing["s"] == "failed"
    assert failing["d"]["checks"][0]["message"].startswith("output does not contain 'Paris'")
    assert failing["d"]["prompt"][0] == {"role": "system", "content": "Answer briefly."}
    judge = {j["name"]: j for j in failing["d"]["judge"]}
    assert judge["score"]["head"] == "3.000" and judge["score"]["text"].startswith("reason 7")
    assert judge["pairwise"]["head"].startswith("loss")
    assert failing["d"]["usage"]["latency_ms"] == "207.0"  # shared format: one decimal from 100


def test_word_diff_marks_changed_words() -> None:
    assert word_diff("Paris, I think", "Lyon, I think") == [["-", "Paris,"], ["+", "Lyon,"], ["=", " I think"]]
    assert word_diff("x" * 7000, "y") is None


def test_comparison_view_and_previous_run_in_cases(
        new_run: RunResult, baseline_run: RunResult, comparison: Comparison) -> None:
    page = render_html(new_run, comparison=comparison, baseline=baseline_run)
    assert "Comparison with the previous run" in page and "REGRESSED" in page
    data = _cases_blob(page)["suites"][0]
    changes = [r["h"] for r in data["rows"]]
    assert changes.count("worse") == 15  # cases 20..39 that were right (i % 4 != 3)
    assert "\u0394 exact_match vs previous run" in [c["label"] for c in data["columns"]]
    row = data["rows"][20]
    assert row["d"]["diff_previous"] == [["-", "Paris"], ["+", "Lyon 20"]]
    assert "-1.000" in row["c"]  # the delta column
    assert '<option value="worse">' in page


def test_incomparable_runs_show_a_warning(new_run: RunResult, baseline_run: RunResult) -> None:
    from pytest_llmeval.compare import compare_runs

    new_run.settings["seed"] = 2
    page = render_html(new_run, comparison=compare_runs(baseline_run, new_run), baseline=baseline_run)
    assert "not comparable? setting &#39;seed&#39; differs" in page


def test_long_outputs_are_cut(new_run: RunResult) -> None:
    new_run.suites[0].cases[10].output = "x" * 30_000
    page = render_html(new_run)
    assert "10,000 more characters cut" in page
    assert "x" * 30_000 not in page


@pytest.mark.parametrize(("lo", "hi", "ticks"), [
    (0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]), (0, 10, [0, 2, 4, 6, 8, 10]), (0, 40, [0, 10, 20, 30, 40]),
    (120, 480, [200, 300, 400]),
])
def test_nice_ticks(lo: float, hi: float, ticks: list[float]) -> None:
    got = nice_ticks(lo, hi)
    assert got[0] >= lo and got[-1] <= hi
    assert all(t in got for t in ticks)


def test_a_registered_kind_supplies_its_own_lines(new_run: RunResult) -> None:
    from pytest_llmeval.gates import DisplayRow, Gate, register_gate, registry

    @register_gate
    class WordsGate(Gate):
        kind = "words_for_the_report_test"

        @classmethod
        def display_rows(cls, agg):  # type: ignore[no-untyped-def]
            return [DisplayRow("share over 100 words", agg.details["long"], style="percent"),
                    DisplayRow("longest", agg.value, threshold="<= 120", verdict="pass")]

    try:
        new_run.suites[0].aggregates.append(AggregateResult(
            name="max_words", kind="words_for_the_report_test", value=97.0, n=40, threshold=120, op="max",
            passed=True, details={"long": 0.125, "ignored_number": 3}))
        page = render_html(new_run)
        assert "share over 100 words" in page and "12%" in page and "longest" in page
        assert "ignored number" not in page  # the kind's own lines replace the generic ones
    finally:
        registry._KINDS.pop("<words_for_the_report_test>", None)


def test_each_column_ships_its_ascending_order(new_run: RunResult) -> None:
    new_run.suites[0].cases[4].scores["rougeL"] = None  # type: ignore[assignment]
    data = _cases_blob(render_html(new_run))["suites"][0]
    col = [c["label"] for c in data["columns"]].index("rougeL")
    order = data["orders"][col]
    keys = [data["rows"][i]["k"][col] for i in order]
    assert sorted(order) == list(range(40))
    assert keys[-1] is None and order[-1] == 4  # missing last
    assert keys[:-1] == sorted(keys[:-1])
