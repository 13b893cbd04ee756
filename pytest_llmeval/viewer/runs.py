"""The runs of a folder of results files: read directly, no database; what the viewer shows.

Every ``*.json`` file under the folder is a candidate. A file that is not a results file
(invalid JSON, another tool's JSON, a wrong version, a field of the wrong type) is listed
as unreadable with :func:`pytest_llmeval.fileio.read_results`'s reason; it never stops
the others from being shown. Parsed runs are kept while the file's size and modification
time are unchanged, so a page reload re-reads only what changed.

Pytest-free and web-free: the app (:mod:`pytest_llmeval.viewer.app`) renders what this
module computes.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llmeval import numbers
from pytest_llmeval.errors import LLMEvalError
from pytest_llmeval.results import RunResult

MAX_FILES = 2000
"""Files looked at in one folder (the newest by modification time)."""
VERDICTS = ("pass", "fail", "error", "skip", "xfail", "xpass", "none")


@dataclass(frozen=True)
class RunFile:
    """One results file of the folder: its run, or why it cannot be read."""

    name: str
    """Path relative to the folder (the run's id in URLs)."""
    path: Path
    run: RunResult | None
    error: str | None = None
    mtime: float = 0.0

    @property
    def created(self) -> str:
        return self.run.created if self.run is not None else ""

    def verdicts(self) -> dict[str, int]:
        """How many aggregates of the run ended in each verdict (``pass``, ``fail``...)."""
        counts = Counter(a.verdict for s in self.run.suites for a in s.aggregates) if self.run else Counter()
        return {v: counts.get(v, 0) for v in VERDICTS}

    def models(self) -> list[str]:
        if self.run is None:
            return []
        return sorted({s.model for s in self.run.suites if s.model})


class RunFolder:
    """The results files of one folder, re-scanned on every call (cheap: parsed files are kept)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._parsed: dict[Path, tuple[tuple[float, int], RunFile]] = {}
        self._lock = threading.Lock()

    def files(self) -> list[RunFile]:
        """Every candidate file: readable runs newest first (by ``created``), then unreadable ones."""
        if not self.folder.is_dir():
            raise LLMEvalError(f"{self.folder}: not a folder (give the folder that holds the results files)")
        found = []
        for p in self.folder.rglob("*.json"):
            try:
                st = p.stat()
            except OSError:
                continue
            if p.is_file():
                found.append((st.st_mtime, st.st_size, p))
        found.sort(key=lambda t: t[0], reverse=True)
        out = [self._read(p, (mtime, size)) for mtime, size, p in found[:MAX_FILES]]
        readable = sorted((f for f in out if f.run is not None), key=lambda f: (f.created, f.mtime),
                          reverse=True)
        return readable + sorted((f for f in out if f.run is None), key=lambda f: f.name)

    def runs(self, last: int | None = None) -> list[RunFile]:
        """The readable runs, newest first, at most ``last``."""
        runs = [f for f in self.files() if f.run is not None]
        return runs[:last] if last else runs

    def get(self, name: str) -> RunFile | None:
        """The file called ``name`` (relative to the folder), only if it is one of the folder's."""
        return next((f for f in self.files() if f.name == name), None)

    def _read(self, path: Path, stamp: tuple[float, int]) -> RunFile:
        from pytest_llmeval.fileio import read_results

        with self._lock:
            cached = self._parsed.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        name = path.relative_to(self.folder).as_posix()
        try:
            entry = RunFile(name, path, read_results(path), mtime=stamp[0])
        except LLMEvalError as exc:
            entry = RunFile(name, path, None, error=str(exc), mtime=stamp[0])
        except (OSError, ValueError, RecursionError) as exc:
            entry = RunFile(name, path, None, error=f"{type(exc).__name__}: {exc}", mtime=stamp[0])
        with self._lock:
            self._parsed[path] = (stamp, entry)
        return entry


# --------------------------------------------------------------------------- trends


@dataclass
class Point:
    run: str
    created: str
    value: float | None
    low: float | None
    high: float | None
    verdict: str


@dataclass
class Trend:
    """One gate's value with its interval across runs, oldest first."""

    suite: str
    gate: str
    threshold: float | None
    op: str
    points: list[Point] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.suite}::{self.gate}"


def trends(runs: list[RunFile]) -> list[Trend]:
    """Each (suite, gate) of ``runs`` with its points, oldest run first; gates in first-seen order."""
    found: dict[tuple[str, str], Trend] = {}
    for rf in reversed(runs):  # runs come newest first
        assert rf.run is not None
        for suite in rf.run.suites:
            label = suite.file or suite.name
            for agg in suite.aggregates:
                t = found.setdefault((label, agg.name), Trend(label, agg.name, agg.threshold, agg.op))
                if agg.threshold is not None:
                    t.threshold, t.op = agg.threshold, agg.op
                low, high = (agg.ci[0], agg.ci[1]) if agg.ci else (None, None)
                t.points.append(Point(rf.name, rf.created, _finite(agg.value), _finite(low), _finite(high),
                                      agg.verdict))
    return list(found.values())


def _finite(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


@dataclass(frozen=True)
class Chart:
    """A trend laid out for an SVG: coordinates computed here, drawn by the template."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str, str]]
    marks: list[dict[str, Any]]
    threshold: tuple[float, str] | None


def chart(trend: Trend, width: int = 640, height: int = 220) -> Chart:
    """Axes, ticks and marks of one trend (values with interval whiskers, the threshold dashed)."""
    left, right, top, bottom = 56, width - 16, 16, height - 44
    ys = [v for p in trend.points for v in (p.value, p.low, p.high) if v is not None]
    if trend.threshold is not None and math.isfinite(trend.threshold):
        ys.append(float(trend.threshold))
    lo, hi = (min(ys), max(ys)) if ys else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5 if lo else -0.5, hi + 0.5 if hi else 0.5
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad

    def y(v: float) -> float:
        return bottom - (v - lo) / (hi - lo) * (bottom - top)

    n = len(trend.points)

    def x(i: int) -> float:
        return (left + right) / 2 if n == 1 else left + 40 + i * (right - left - 80) / (n - 1)

    steps = [lo + k * (hi - lo) / 4 for k in range(5)]
    y_ticks = [(round(y(v), 1), numbers.number(v)) for v in steps]
    x_ticks = [(round(x(i), 1), f"#{i + 1}", p.created[:16].replace("T", " "))
               for i, p in enumerate(trend.points)]
    marks = []
    for i, p in enumerate(trend.points):
        mark: dict[str, Any] = {"x": round(x(i), 1), "verdict": p.verdict, "run": p.run,
                                "label": f"{p.run}: {numbers.estimate(p.value, p.low, p.high)} ({p.verdict})"}
        mark["y"] = round(y(p.value), 1) if p.value is not None else None
        if p.low is not None and p.high is not None:
            mark["y_low"], mark["y_high"] = round(y(p.low), 1), round(y(p.high), 1)
        marks.append(mark)
    threshold = None
    if trend.threshold is not None and math.isfinite(trend.threshold):
        sign = ">=" if trend.op == "min" else "<="
        threshold = (round(y(float(trend.threshold)), 1), f"{sign} {numbers.threshold(trend.threshold)}")
    return Chart(width, height, left, right, top, bottom, y_ticks, x_ticks, marks, threshold)
