"""The terminal summary fits the terminal's width, keeps its header whole and colours verdicts."""

from __future__ import annotations

import re

import pytest
import sklearn.metrics  # noqa: F401 - imported once, before pytester's in-process runs
from llmeval_runs import project, section, suite

from pytest_llmeval.report.terminal import HEADER, render_table, summary_rows, text_width
from pytest_llmeval.results import RunResult

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LONG = "sentiment classification of product reviews in the shop"


def _run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, columns: int, *args: str):
    monkeypatch.setenv("COLUMNS", str(columns))
    return pytester.runpytest("-p", "no:cacheprovider", *args)


@pytest.fixture
def suites(pytester: pytest.Pytester) -> pytest.Pytester:
    return project(pytester, {
        "long_named.eval.yaml": suite(LONG, baseline="python:toymodel:sentiment"),
        "s.eval.yaml": suite("s"),
    })


def _header(lines: list[str]) -> str:
    return next(line for line in lines if line.startswith("suite") and "gate" in line)


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_summary_fits_the_width_with_its_header_whole(suites: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                      columns: int) -> None:
    result = _run(suites, monkeypatch, columns, "--color=no")
    lines = section(result.outlines, "llmeval summary")
    too_long = [line for line in lines if text_width(line) > columns]
    assert too_long == [], too_long
    words = _header(lines).split()
    assert set(words) <= set(HEADER)  # every header word whole: never "thres" / "hold"
    assert {"suite", "gate", "value", "interval", "verdict"} <= set(words)
    if columns == 120:
        assert words == HEADER  # room for every column
    else:
        assert "n" not in words  # dropped first, shown under its row
        assert any(line.strip().startswith("model python:toymodel:sentiment") or ", n 60" in line
                   for line in lines)
    assert any("FAIL" in line and "exact_match" in line for line in lines)
    assert any("base model" in line for line in lines)
    assert not any(re.search(r"^\s*baseline\b", line) for line in lines)


def test_verdicts_coloured_only_when_pytest_writes_colour(suites: pytest.Pytester,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    coloured = section(_run(suites, monkeypatch, 80, "--color=yes").outlines, "llmeval summary")
    text = "\n".join(coloured)
    assert re.search(r"\x1b\[32m[^\x1b]*PASS", text), text
    assert re.search(r"\x1b\[31m(\x1b\[1m)?FAIL", text), text
    assert all(text_width(ANSI.sub("", line)) <= 80 for line in coloured)
    plain = section(_run(suites, monkeypatch, 80, "--color=no").outlines, "llmeval summary")
    assert not any("\x1b" in line for line in plain)
    assert [ANSI.sub("", line) for line in coloured] == plain


def test_comparison_with_the_previous_run_fits_too(suites: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    first = _run(suites, monkeypatch, 60, "--color=no", "--llmeval-json", "old.json")
    assert first.ret == 1
    (suites.path / "cases.jsonl").write_text(
        (suites.path / "cases.jsonl").read_text().replace("a good thing 1", "a thing 1"), encoding="utf-8")
    result = _run(suites, monkeypatch, 60, "--color=no", "--llmeval-compare", "old.json")
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "comparison with the previous run" in line)
    block = section(lines, "llmeval summary")
    assert start < lines.index(block[-1]) + 1
    too_long = [line for line in block if text_width(line) > 60]
    assert too_long == [], too_long
    assert any("previous run" in line and "| this run" in line for line in block)  # side by side, fitted


def test_rows_stay_data_driven_for_win_rate_length_control(baseline_run: RunResult) -> None:
    run = baseline_run
    agg = next(a for a in run.suites[0].aggregates if a.kind == "win_rate")
    agg.details.update(lc_win_rate=0.61, min_lc_win_rate=0.55, lc_passed=True)
    rows = summary_rows(run)
    lc = next(r for r in rows if r.get("gate").strip() == "length-controlled")
    assert lc.get("value") == "0.610" and lc.get("threshold") == ">= 0.55" and lc.verdict == "PASS"
    for width in (60, 80, 120):
        lines = ["".join(text for text, _ in segs) for segs in render_table(rows, width)]
        assert all(text_width(line) <= width for line in lines), width
        assert any("0.610" in line and "length-" in line for line in lines)
        assert lines[0].split()[:2] == ["suite", "gate"]


def test_too_narrow_for_columns_falls_back_to_wrapped_rows(baseline_run: RunResult) -> None:
    rows = summary_rows(baseline_run)
    lines = ["".join(text for text, _ in segs) for segs in render_table(rows, 30)]
    assert all(text_width(line) <= 30 for line in lines)
    assert any("exact_match" in line for line in lines)
