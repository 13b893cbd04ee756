"""Progress of generation and judging in the terminal, without breaking pytest's own output.

A suite evaluates when its first item sets up, right after pytest has written
the file name on the current line; the progress is written on that same line,
in brackets, before the item's result character: ``[finetuned: 500/500 4.1s]``.
On a terminal the count updates in place (the previous count is erased with
backspaces); elsewhere (CI logs) only the final count is written. Nothing is
written with ``-q`` or on xdist workers (xdist shows its own progress).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pytest_llmeval.sanitize import display


class Progress:
    def __init__(self, terminalreporter: Any | None, capture_manager: Any | None = None) -> None:
        self.tr = terminalreporter
        self.capman = capture_manager
        self.tty = bool(getattr(getattr(terminalreporter, "_tw", None), "hasmarkup", False))
        self._label = ""
        self._total = 0
        self._done = 0
        self._shown = ""
        self._start = 0.0
        self._last = 0.0
        self._lock = threading.Lock()  # API backends report results from worker threads

    def _write(self, text: str) -> None:
        if self.tr is None:
            return
        if self.capman is None:
            self.tr.write(text, flush=True)
            return
        # The suite evaluates inside an item's setup, where pytest captures output.
        with self.capman.global_and_fixture_disabled():
            self.tr.write(text, flush=True)

    def start(self, label: str, total: int) -> None:
        label = display(label, 80, multiline=False)  # a model name from a suite file or a fixture
        self._label, self._total, self._done = label, total, 0
        self._start = self._last = time.monotonic()
        self._shown = ""
        self._write(f"[{label}: ")
        self._show()

    def advance(self, n: int = 1) -> None:
        with self._lock:
            self._done += n
            now = time.monotonic()
            if self.tty and (now - self._last > 0.2 or self._done >= self._total):
                self._last = now
                self._show()

    def _show(self) -> None:
        if not self.tty:
            return
        text = f"{self._done}/{self._total}"
        self._write("\b" * len(self._shown) + text)
        self._shown = text

    def finish(self, note: str = "") -> None:
        elapsed = time.monotonic() - self._start
        final = f"{self._done}/{self._total}{' ' + note if note else ''} in {elapsed:.1f}s] "
        self._write("\b" * len(self._shown) + final if self._shown else final)
        self._shown = ""


class NoProgress(Progress):
    """Used with ``-q``, on xdist workers and outside pytest."""

    def __init__(self) -> None:
        super().__init__(None)

    def start(self, label: str, total: int) -> None:
        return None

    def advance(self, n: int = 1) -> None:
        return None

    def finish(self, note: str = "") -> None:
        return None
