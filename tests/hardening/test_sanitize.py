"""Hostile model text (terminal escapes, CR, huge outputs) is escaped and cut wherever it is shown."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from pytest_llmeval.compare import compare_runs, format_regression
from pytest_llmeval.errors import ResultsFileError
from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult
from pytest_llmeval.sanitize import CAP_SETTING, cap_outputs, display, output_cap, require_full_outputs

CLEAR = "\x1b[2J"
TITLE = "\x1b]0;pwned\x07"
C1_CSI = "\x9b2J"
HOSTILE = f"ok{CLEAR}{TITLE}\rOVERWRITE{C1_CSI}\u202etxt.exe\ud800"


def _raw_controls(text: str) -> list[str]:
    return [ch for ch in text if (ord(ch) < 32 and ch not in "\n\t") or 0x7f <= ord(ch) <= 0x9f
            or ch == "\u202e" or 0xD800 <= ord(ch) <= 0xDFFF]


def test_display_escapes_control_sequences_cr_bidi_and_surrogates() -> None:
    shown = display(HOSTILE)
    assert _raw_controls(shown) == []
    assert "\\x1b[2J" in shown and "\\x1b]0;pwned\\x07" in shown and "\\rOVERWRITE" in shown
    assert "\\x9b" in shown and "\\u202e" in shown and "\\ud800" in shown
    shown.encode("utf-8")  # a lone surrogate would make the terminal write fail


def test_display_keeps_newlines_and_tabs_unless_one_line() -> None:
    assert display("a\n\tb\r\nc") == "a\n\tb\nc"
    assert display("a\nb", multiline=False) == "a\\nb"


def test_display_cuts_and_counts_what_it_cut() -> None:
    big = "x" * 10_000_000
    shown = display(big, 100)
    assert shown == "x" * 100 + "... [9,999,900 more characters cut]"
    assert display("short", 100) == "short" and display(None) == "(none)"


def _run(outputs: list[str], category: str = "geo") -> RunResult:
    cases = [CaseResult(id=f"c{i}", prompt="p", output=o, reference="right",
                        scores={"exact_match": float(o == "right")}, category=category)
             for i, o in enumerate(outputs)]
    agg = AggregateResult(name="exact_match", value=float(np.mean([o == "right" for o in outputs])),
                          n=len(outputs), threshold=0.5, passed=True, details={"metric_kind": "proportion"})
    cat = AggregateResult(name="exact_match", value=1.0, n=1, category=category, kind="category")
    other = AggregateResult(name="exact_match", value=1.0, n=1, category="other", kind="category")
    suite = SuiteResult(name="s", file="s.eval.yaml", model="m", aggregates=[agg], cases=cases,
                        categories={"exact_match": [cat, other]},
                        reports={"f1": f"label {HOSTILE}\n  {CLEAR}"}, warnings=[f"warn {TITLE}"])
    return RunResult(suites=[suite])


class _Terminal:
    """The part of pytest's TerminalReporter the summary uses, writing to a buffer."""

    def __init__(self) -> None:
        self.out = io.StringIO()

    def section(self, title: str, sep: str = "=") -> None:
        self.out.write(f"== {title} ==\n")

    def write_line(self, line: str, **markup: bool) -> None:
        self.out.write(line + "\n")


def test_terminal_summary_writes_no_raw_control_character() -> None:
    from pytest_llmeval.report.terminal import write_summary

    tr = _Terminal()
    write_summary(tr, _run(["right", HOSTILE], category=f"cat{CLEAR}"))
    text = tr.out.getvalue()
    assert _raw_controls(text) == []
    assert "cat\\x1b[2J" in text and "\\x1b]0;pwned\\x07" in text


def test_classification_report_labels_are_escaped_and_cut() -> None:
    from pytest_llmeval.metrics.base import build_metric

    f1 = build_metric("f1", {})
    huge = "y" * 1_000_000
    report = f1.report([HOSTILE, huge, "a"], [["a"], [huge], ["a"]])  # type: ignore[misc]
    assert _raw_controls(report) == []
    assert len(report) < 2_000 and "more characters cut" in report


def test_comparison_text_and_messages_escape_outputs() -> None:
    old = RunResult(suites=[_run(["right"] * 40).suites[0]])
    new = RunResult(suites=[_run([HOSTILE + "z" * 5000] * 40).suites[0]])
    cmp = compare_runs(old, new)
    text = cmp.format_text(max_cases=3)
    [result] = cmp.results
    message = format_regression(result)
    for shown in (text, message):
        assert _raw_controls(shown) == []
        assert "\\x1b[2J" in shown
    assert len(text) < 3 * 2_000 and len(message) < 20 * 2_000


def test_markdown_and_html_escape_control_characters() -> None:
    from pytest_llmeval.report.html import render_html
    from pytest_llmeval.report.markdown import render_markdown

    run = _run(["right", HOSTILE])
    old = _run(["right", "right"])
    cmp = compare_runs(old, run)
    assert _raw_controls(render_markdown(run, cmp)) == []
    assert _raw_controls(render_html(run, comparison=cmp, baseline=old)) == []


# -- capped results files -------------------------------------------------------------------

def test_cap_outputs_cuts_model_text_and_records_the_cap() -> None:
    run = _run(["right", "w" * 50_000])
    run.suites[0].cases[1].checks = [{"check": "max_length", "passed": False, "message": "m" * 9_000}]
    run.suites[0].cases[1].prompt = "p" * 9_000
    data = run.to_dict()
    capped = cap_outputs(data, 1_000)
    case = capped["suites"][0]["cases"][1]
    assert case["output"].startswith("w" * 1_000) and "49,000 more characters cut" in case["output"]
    assert "8,000 more characters cut" in case["checks"][0]["message"]
    assert case["prompt"] == "p" * 9_000  # the suite's own data is kept
    assert capped["settings"][CAP_SETTING] == {"max_chars": 1_000, "values_cut": 2, "chars_cut": 57_000}
    assert data["suites"][0]["cases"][1]["output"] == "w" * 50_000  # the input is not modified
    assert len(json.dumps(capped)) < len(json.dumps(data)) / 3


def test_a_capped_file_is_refused_where_full_outputs_are_needed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from pytest_llmeval.fileio import read_results

    path = tmp_path / "capped.json"
    path.write_text(json.dumps(cap_outputs(_run(["x" * 100]).to_dict(), 10)))
    run = read_results(path)
    assert output_cap(run) == {"max_chars": 10, "values_cut": 1, "chars_cut": 90}
    with pytest.raises(ResultsFileError, match="re-scoring needs full model outputs.*--llmeval-max-output-chars 10"):
        require_full_outputs(run, "re-scoring", str(path))
    require_full_outputs(_run(["x"]), "re-scoring")  # a complete file passes
    # a capped file can still be compared: its scores are complete
    assert compare_runs(run, run).passed


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_cap_must_be_a_positive_integer(bad) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="max_chars"):
        cap_outputs({"suites": []}, bad)


def test_output_cap_option_is_validated_naming_the_option() -> None:
    from pytest_llmeval.errors import ConfigError
    from pytest_llmeval.sanitize import validate_output_cap

    assert validate_output_cap(None) is None and validate_output_cap("500") == 500
    for bad in (0, -5, "x", 1.5, True):
        with pytest.raises(ConfigError, match="--llmeval-max-output-chars"):
            validate_output_cap(bad)
