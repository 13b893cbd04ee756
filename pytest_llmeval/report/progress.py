"""Progress of model loading, generation and judging, without breaking pytest's own output.

A suite evaluates when its first item sets up, right after pytest has written the
file name (or, with ``-v``, the item's name) on the current line. Each phase ends
with one note on that same line, written through pytest's terminal writer so the
writer counts its width and pytest's ``[ 23%]`` column stays where it belongs:
``[finetuned: loading 2.1s, 60/60 in 1.4s]``. The note is cut to the room left on
the line (its label first), and left out when not even the count fits.

On a terminal (when pytest writes colour) the running state is shown in place
while a phase runs: ``[loading hf:models/base]``, then ``[finetuned: 12/60]``.
That text goes straight to the stream, around the writer, and is erased (with
backspaces) before anything else is written, so the writer's idea of the line
never includes it and it can never push pytest's columns.

Under pytest-xdist a worker cannot write to the controller's terminal: it records
each finished phase as a :class:`ProgressEvent` and the pytest layer attaches the
list to the next report the worker sends (``report.llmeval_progress``, plain
dicts, see :meth:`ProgressEvent.to_dict`). The controller shows each as
``[gw1 s.eval.yaml: finetuned 60/60 in 1.4s]`` with the same width accounting.

This module never imports pytest: it talks to the terminal reporter it is given.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_llmeval.report.terminal import fit, text_width
from pytest_llmeval.sanitize import display

RESERVE = 10
"""Columns kept free at the end of a line for pytest's `` [100%]`` (plus a result character)."""
RESERVE_VERBOSE = 22
"""With ``-v`` the result word (``PASSED``, ``XFAIL``...) comes before the percentage as well."""
MIN_NOTE = 8
"""Narrowest note worth writing."""
REFRESH = 0.2
"""Seconds between in-place updates."""


@dataclass(frozen=True)
class ProgressEvent:
    """One finished phase of a suite's evaluation: what a worker sends the controller.

    Attributes:
        suite: the suite's file, as pytest names it (the node id's path part).
        label: what ran (a model's name, ``judge <gate>``, ``executing 40 samples``).
        done: requests finished; ``total``: requests in the phase.
        seconds: the phase's wall time, loading included.
        loading: ``(what, seconds)`` for each model that loaded during the phase.
        note: extra words from the phase (``cached``...).
    """

    suite: str
    label: str
    done: int
    total: int
    seconds: float
    loading: tuple[tuple[str, float], ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain builtins only (xdist's execnet refuses anything else)."""
        return {"suite": self.suite, "label": self.label, "done": self.done, "total": self.total,
                "seconds": self.seconds, "loading": [[w, s] for w, s in self.loading], "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProgressEvent:
        loading = tuple((str(w), float(s)) for w, s in d.get("loading") or [])
        return cls(suite=str(d.get("suite", "")), label=str(d.get("label", "")), done=int(d.get("done", 0)),
                   total=int(d.get("total", 0)), seconds=float(d.get("seconds", 0.0)), loading=loading,
                   note=str(d.get("note", "")))

    def text(self, *, label: bool = True, loads: bool = True) -> str:
        """The phase in words: ``finetuned: loading 2.1s, 60/60 in 1.4s``, without the label or loads."""
        count = f"{self.done}/{self.total} in {self.seconds:.1f}s" + (f" {self.note}" if self.note else "")
        loaded = ", ".join(f"loading {s:.1f}s" for _, s in self.loading) if loads else ""
        head = f"{display(self.label, 80, multiline=False)}: " if label else ""
        return head + (f"{loaded}, " if loaded else "") + count


def fitted_note(events: list[ProgressEvent], room: int, *, prefix: str = "", with_suite: bool = False,
                suite_only: bool = False) -> str:
    """``[...]`` of ``events`` (one suite's phases) in ``room`` columns; "" when not even the counts fit.

    Shorter forms are tried in turn: labels, loading times and counts; loading times and
    counts; counts alone; each with the suite first (``with_suite``), then without it
    (unless ``suite_only``).
    """
    if not events:
        return ""
    suite = display(events[0].suite, 120, multiline=False) if with_suite and events[0].suite else ""
    texts = ["; ".join(e.text(label=lab, loads=lo) for e in events)
             for lab, lo in ((True, True), (False, True), (False, False))]
    forms = [f"{suite}: {t}" for t in texts] if suite else []
    if not (suite and suite_only):
        forms += texts
    for text in forms:
        note = f"[{prefix}{text}] "
        if text_width(note) <= room and text_width(note) >= MIN_NOTE:
            return note
    return ""


class Progress:
    """Progress on pytest's own line (see the module docstring).

    Args:
        terminalreporter: pytest's terminal reporter (``write``, ``flush``, ``config``).
        capture_manager: pytest's capture manager, to write from inside a captured setup.
        verbose: pytest's ``-v`` level (more room is kept for the result word).
    """

    def __init__(self, terminalreporter: Any | None, capture_manager: Any | None = None,
                 verbose: int = 0) -> None:
        self.tr = terminalreporter
        self.capman = capture_manager
        self.writer = _writer(terminalreporter)
        self.tty = bool(getattr(self.writer, "hasmarkup", False))
        self.reserve = RESERVE_VERBOSE if verbose > 0 else RESERVE
        self._label = ""
        self._total = 0
        self._done = 0
        self._start = 0.0
        self._last = 0.0
        self._loading: list[tuple[str, float]] = []
        self._loading_now: tuple[str, float] | None = None
        self._shown = 0
        self._lock = threading.RLock()  # API backends report results from worker threads

    # ------------------------------------------------------------------ output

    def _room(self) -> int:
        if self.writer is None:
            return 0
        try:
            used = int(self.writer.width_of_current_line)
            width = int(self.writer.fullwidth)
        except (AttributeError, TypeError, ValueError):
            return 0
        return max(0, width - max(used, 0) - self.reserve)

    def _disabled(self) -> Any:
        if self.capman is None:
            import contextlib

            return contextlib.nullcontext()
        return self.capman.global_and_fixture_disabled()

    def _erase(self) -> None:
        if self._shown:
            n = self._shown
            self._shown = 0
            self._raw("\b" * n + " " * n + "\b" * n)

    def _raw(self, text: str) -> None:
        """Transient text: straight to the stream, so the writer never counts it."""
        with self._disabled():
            if self.tr is not None:
                self.tr.flush()
            sys.stdout.write(text)
            sys.stdout.flush()

    def _transient(self, text: str) -> None:
        if not self.tty or self.tr is None:
            return
        room = self._room()
        text = f"[{text}]"
        if text_width(text) > room:
            return self._erase()
        self._erase()
        self._raw(text)
        self._shown = text_width(text)

    def _persist(self, note: str) -> None:
        """A finished phase's note, through the writer (which counts its width)."""
        self._erase()
        if note and self.tr is not None:
            with self._disabled():
                self.tr.write(note, flush=True)

    # ------------------------------------------------------------------ the reporter protocol

    def start(self, label: str, total: int) -> None:
        with self._lock:
            self._label = display(label, 80, multiline=False)  # a model name from a suite file
            self._total, self._done = total, 0
            self._start = self._last = time.monotonic()
            self._loading = []
            self._loading_now = None
            self._show()

    def loading(self, what: str, started: bool) -> None:
        """A model's weights start (``started``) or finish loading during the phase."""
        with self._lock:
            now = time.monotonic()
            if started:
                self._loading_now = (display(what, 80, multiline=False), now)
                self._transient(f"loading {self._loading_now[0]}")
            elif self._loading_now is not None:
                name, t0 = self._loading_now
                self._loading.append((name, now - t0))
                self._loading_now = None
                self._show()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self._done += n
            now = time.monotonic()
            if self.tty and self._loading_now is None and (now - self._last > REFRESH
                                                           or self._done >= self._total):
                self._last = now
                self._show()

    def _show(self) -> None:
        self._transient(f"{self._label}: {self._done}/{self._total}")

    def event(self, note: str = "", suite: str = "") -> ProgressEvent:
        return ProgressEvent(suite=suite, label=self._label, done=self._done, total=self._total,
                             seconds=time.monotonic() - self._start, loading=tuple(self._loading), note=note)

    def finish(self, note: str = "") -> None:
        with self._lock:
            self._persist(fitted_note([self.event(note)], self._room()))


class NoProgress(Progress):
    """Used with ``-q`` and outside pytest."""

    def __init__(self) -> None:
        super().__init__(None)

    def start(self, label: str, total: int) -> None:
        return None

    def loading(self, what: str, started: bool) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None

    def finish(self, note: str = "") -> None:
        return None


class RecordingProgress(Progress):
    """On an xdist worker: each finished phase becomes a :class:`ProgressEvent` in ``sink``."""

    def __init__(self, sink: list[dict[str, Any]], suite: Callable[[], str]) -> None:
        super().__init__(None)
        self.sink = sink
        self.suite = suite

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self._done += n

    def finish(self, note: str = "") -> None:
        with self._lock:
            self.sink.append(self.event(note, suite=self.suite()).to_dict())


@dataclass
class RemoteProgress:
    """On the xdist controller: writes the workers' events on pytest's line, fitted like a note."""

    terminalreporter: Any
    verbose: int = 0
    shown: int = field(default=0)

    def show(self, events: list[Any], worker: str = "") -> None:
        """One note for the events of one report: inline while it fits, else (and with ``-v``) a line."""
        writer = _writer(self.terminalreporter)
        if writer is None:
            return
        parsed = []
        for raw in events:
            try:
                parsed.append(ProgressEvent.from_dict(raw))
            except (TypeError, ValueError, AttributeError):
                continue  # a malformed event from a foreign worker plugin: progress is never worth a crash
        if not parsed:
            return
        prefix = f"{display(worker, 20, multiline=False)} " if worker else ""
        tr = self.terminalreporter
        if self.verbose <= 0:
            # Inline, as pytest's dots are: the writer counts it, so the [ 23%] column stays put.
            for attempt in range(2):
                room = int(writer.fullwidth) - max(int(writer.width_of_current_line), 0) - RESERVE
                # the suite is the point of a worker's note: without room for it, the note starts a line
                note = fitted_note(parsed, room, prefix=prefix, with_suite=True, suite_only=True)
                if note:
                    tr.write(note, flush=True)
                    self.shown += 1
                    return
                if attempt == 0 and writer.width_of_current_line:
                    # No room left: pytest ends this row with its percentage, the note starts the next.
                    finish_row = getattr(tr, "_write_progress_information_filling_space", None)
                    if callable(finish_row) and getattr(tr, "_show_progress_info", False):
                        finish_row()
                    _end_line(tr, writer)
        # With -v pytest starts each result line with "[gw0] [ 23%]": the note gets a line of its own.
        suite = display(parsed[0].suite, 120, multiline=False)
        text = f"[{prefix}{suite + ': ' if suite else ''}{'; '.join(e.text() for e in parsed)}]"
        _end_line(tr, writer)
        for line in fit(text, int(writer.fullwidth)):
            tr.write_line(line)
        self.shown += 1


def _end_line(tr: Any, writer: Any) -> None:
    """Start a fresh line unless the writer is at the start of one."""
    tr.ensure_newline()
    if int(writer.width_of_current_line) > 0:
        tr.write("\n")


def _writer(tr: Any) -> Any:
    """pytest's terminal writer behind a terminal reporter (None outside pytest)."""
    if tr is None:
        return None
    try:
        return tr.config.get_terminal_writer()
    except AttributeError:
        return None
