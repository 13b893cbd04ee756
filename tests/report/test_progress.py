"""Progress notes keep pytest's percentage column in place, show model loading, and reach the
xdist controller."""

from __future__ import annotations

import re

import pytest
import sklearn.metrics  # noqa: F401 - imported once, before pytester's in-process runs
from llmeval_runs import ANSI, project, suite

from pytest_llmeval.report.progress import ProgressEvent, fitted_note
from pytest_llmeval.report.terminal import text_width

PERCENT = re.compile(r"\[\s*\d+%\]$")
WIDTH = 80


def screen(raw: str) -> list[str]:
    """What a terminal shows for ``raw``: colours dropped, backspaces move the cursor back."""
    lines: list[str] = []
    for physical in ANSI.sub("", raw).split("\n"):
        row: list[str] = []
        col = 0
        for ch in physical:
            if ch == "\b":
                col = max(0, col - 1)
            elif ch == "\r":
                col = 0
            else:
                if col < len(row):
                    row[col] = ch
                else:
                    row.append(ch)
                col += 1
        lines.append("".join(row).rstrip())
    return lines


def _aligned(lines: list[str]) -> list[str]:
    """Lines whose percentage is not where pytest puts it (one column before the last, ``[ 23%]``)."""
    with_percent = [line for line in lines if PERCENT.search(line)]
    assert len(with_percent) >= 3, lines
    return [line for line in with_percent
            if text_width(line) != WIDTH - 1 or line.rindex("[") != WIDTH - 7]


@pytest.fixture
def suites(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    project(pytester, {"a.eval.yaml": suite("a", model="python:toymodel:slow_loader",
                                            baseline="python:toymodel:sentiment"),
                       "b_with_a_much_longer_file_name.eval.yaml": suite("b")})
    pytester.makepyfile(test_plain="import pytest\n@pytest.mark.parametrize('i', range(90))\n"
                                   "def test_p(i):\n    assert i >= 0\n")
    return pytester


@pytest.mark.parametrize("verbose", [[], ["-v"]], ids=["default", "verbose"])
def test_percentage_column_stays_aligned(suites: pytest.Pytester, verbose: list[str]) -> None:
    result = suites.runpytest("-p", "no:cacheprovider", "--color=no", *verbose)
    lines = result.outlines
    assert _aligned(lines) == []
    notes = [line for line in lines if "60/60 in" in line]
    assert notes, lines
    assert any(re.search(r"\[(python:toymodel:slow_loader: )?loading \d+\.\ds, 60/60 in", line)
               for line in notes)  # the load, before the count
    assert all(text_width(line) <= WIDTH for line in lines if "60/60" in line)


def test_on_a_terminal_the_running_count_is_erased_before_pytest_writes(suites: pytest.Pytester) -> None:
    result = suites.runpytest("-p", "no:cacheprovider", "--color=yes")
    raw = "\n".join(result.outlines)
    assert "[loading toy:weights]" in raw  # shown while the model loads, before the 0/60 phase
    assert "[python:toymodel:slow_loader: 0/60]" in raw
    assert "\b" in raw
    shown = screen(raw)
    assert _aligned(shown) == []
    assert not any("[loading toy:weights]" in line for line in shown)  # erased once loaded


def test_notes_are_cut_to_the_room_left() -> None:
    event = ProgressEvent(suite="evals/s.eval.yaml", label="finetuned", done=60, total=60, seconds=1.25,
                          loading=(("hf:models/base", 2.0),))
    assert fitted_note([event], 80, with_suite=True) == \
        "[evals/s.eval.yaml: finetuned: loading 2.0s, 60/60 in 1.2s] "
    assert fitted_note([event], 50, with_suite=True) == "[evals/s.eval.yaml: loading 2.0s, 60/60 in 1.2s] "
    assert fitted_note([event], 40, with_suite=True) == "[evals/s.eval.yaml: 60/60 in 1.2s] "
    assert fitted_note([event], 34) == "[loading 2.0s, 60/60 in 1.2s] "
    assert fitted_note([event], 20) == "[60/60 in 1.2s] "
    assert fitted_note([event], 30, with_suite=True, suite_only=True) == ""
    assert fitted_note([event], 10) == ""
    assert ProgressEvent.from_dict(event.to_dict()) == event


@pytest.mark.slow
def test_xdist_controller_shows_each_suites_progress(suites: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = suites.runpytest_subprocess("-p", "no:cacheprovider", "--color=no", "-n", "2")
    lines = result.outlines
    notes = [line for line in lines if re.search(r"\[gw\d ", line)]
    text = "\n".join(notes)
    assert "a.eval.yaml:" in text and "60/60 in" in text, lines
    assert re.search(r"b_with_a_much_longer_file_name\.eval\.yaml:", text), lines
    assert _aligned(lines) == []
    verbose = suites.runpytest_subprocess("-p", "no:cacheprovider", "--color=no", "-n", "2", "-v")
    vnotes = [line for line in verbose.outlines if line.startswith("[gw")]
    assert any("a.eval.yaml: python:toymodel:slow_loader: loading" in line for line in vnotes), verbose.outlines
    assert all(re.match(r"\[gw\d\] \[\s*\d+%\] ", line) or line.startswith("[gw") for line in vnotes)


def test_hf_model_announces_its_load_before_it_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from pytest_llmeval.models import hf
    from pytest_llmeval.models.base import listen_for_loading

    repo = Path(__file__).resolve().parents[2]
    model = hf.HFModel("base", "example_suite/models/base", {}, repo)
    heard: list[tuple[str, bool]] = []

    def load_weights(self: hf.HFModel) -> None:
        heard.append(("weights", True))
        self._model = object()

    monkeypatch.setattr(hf.HFModel, "_load_weights", load_weights)
    with listen_for_loading(lambda what, started: heard.append((what, started))):
        model._load()
        model._load()  # loaded once: no second announcement
    assert heard == [("hf:example_suite/models/base", True), ("weights", True),
                     ("hf:example_suite/models/base", False)]
