"""The self-contained HTML report (``--llmeval-html``, ``llmeval report --html``).

One file, no network. The page is rendered from Jinja2 templates (``templates/``, autoescape
on, every text from a run shown with its control characters escaped), the charts are SVG
drawn by those templates from the geometry computed here (axes, ticks, units), and the cases
travel as one JSON blob in a ``<script type="application/json">`` that the report's own
script shows in a virtually scrolled table: only the rows on screen exist in the DOM, so
filtering and sorting 20,000 cases are array operations. The script renders every case text
with ``textContent``, never as markup. A Content Security Policy allows only the report's
own script and stylesheet (by their hashes) and no load from anywhere, so even an escaping
slip could not run injected code.

Every number is formatted here, in Python, by :mod:`pytest_llmeval.numbers` (the script
never formats one), so a value reads the same as in the terminal, Markdown and JUnit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_llmeval import numbers
from pytest_llmeval.compare import Comparison, SuiteComparison
from pytest_llmeval.fileio import write_atomic
from pytest_llmeval.report.display import GateRow, gate_row
from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult
from pytest_llmeval.sanitize import escape

MAX_TEXT = 20_000
"""Characters of one output/prompt shown per case (the results file has them all)."""
MAX_DIFF = 6_000
"""Longest text that gets a word-level diff (longer ones are shown side by side without one)."""
MAX_CONFUSION_LABELS = 12
"""Distinct reference labels up to which a classification gate gets a confusion matrix."""
CLASSIFICATION_METRICS = frozenset({"accuracy", "exact_match", "f1", "precision", "recall"})
CELL_CHARS = 160
"""Characters of an output shown in its one-line table cell (the detail view shows it all)."""


def write_html(run: RunResult, path: str | os.PathLike[str], *,
               comparison: Comparison | None = None, baseline: RunResult | None = None) -> None:
    """Write the report for ``run`` to ``path`` atomically (temp file, then rename).

    Args:
        run: the run to report.
        path: the HTML file to write; parent folders are created.
        comparison: the result of comparing ``run`` with the previous run ``baseline``.
        baseline: the previous run, so cases show its outputs and scores beside the new ones.

    Raises:
        WriteError: the file could not be written (disk full, read-only...); nothing partial is left.
    """
    write_atomic(Path(path), render_html(run, comparison=comparison, baseline=baseline),
                 what="HTML report")


def render_html(run: RunResult, *, comparison: Comparison | None = None,
                baseline: RunResult | None = None) -> str:
    """The report as one HTML string (see :func:`write_html`)."""
    env = _environment()
    css, js = _asset("report.css"), _asset("report.js")
    csp = (f"default-src 'none'; style-src '{_sha256(css)}'; script-src '{_sha256(js)}'; "
           "img-src data:; font-src 'none'; connect-src 'none'; form-action 'none'; base-uri 'none'")
    previous = _previous_suites(run, baseline)
    suites = [_suite_view(i, s, previous[i], comparison.suite(s.file, s.name) if comparison else None)
              for i, s in enumerate(run.suites)]
    data = {"suites": [v.data for v in suites if v.data is not None]}
    return env.get_template("report.html").render(
        run=run, baseline=baseline, comparison=comparison, csp=csp, css=css, js=js,
        banners=_banners(run, comparison), suites=suites,
        overview=[(v.index, row) for v in suites for row in v.gates],
        data_json=_json_for_script(data), previous_label=numbers.PREVIOUS_RUN,
        base_label=numbers.BASE_MODEL)


# ---------------------------------------------------------------------------- environment


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pytest_llmeval.report", "templates"),
        autoescape=True, finalize=_finalize, trim_blocks=True, lstrip_blocks=True,
        undefined=jinja2.StrictUndefined)
    env.filters["f1"] = lambda v: f"{v:.1f}"  # SVG coordinates
    return env


def _finalize(value: Any) -> Any:
    """Every ``{{ }}``: ``None`` is empty, text shows control characters escaped (then HTML-escaped)."""
    from markupsafe import Markup

    if value is None:
        return ""
    if isinstance(value, str) and not isinstance(value, Markup):
        return escape(value)
    return value


def _asset(name: str) -> str:
    return resources.files("pytest_llmeval.report").joinpath(name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


_UNSAFE_IN_SOURCE = re.compile("[\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def _json_for_script(data: Any) -> Any:
    """JSON safe inside ``<script type="application/json">``: no ``<``, ``>``, ``&`` to end or open a tag."""
    from markupsafe import Markup

    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for ch, esc in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(ch, esc)
    # C1 controls, bidi and zero-width marks, line separators and lone surrogates travel as \u escapes:
    # the page's source never holds them raw (and a lone surrogate could not be written as UTF-8)
    text = _UNSAFE_IN_SOURCE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return Markup(text)  # noqa: S704 - every character that could end the element is escaped above


# ---------------------------------------------------------------------------- page parts


@dataclass
class Banner:
    kind: str
    text: str


def _banners(run: RunResult, comparison: Comparison | None) -> list[Banner]:
    gates = [a for s in run.suites for a in s.aggregates if a.passed is not None or a.error]
    failed = sum(1 for a in gates if a.verdict in ("fail", "xpass"))
    errors = sum(1 for a in gates if a.verdict == "error")
    expected = sum(1 for a in gates if a.verdict == "xfail")
    xf = f", {expected} expected failures" if expected else ""
    out = [Banner("fail" if failed or errors else "pass",
                  f"{len(gates)} gates: {len(gates) - failed - errors - expected} passed, {failed} failed, "
                  f"{errors} errors{xf}")]
    if comparison is None:
        return out
    regs, errs = comparison.regressions, comparison.errors
    text = (f"{len(regs)} regressions against the {numbers.PREVIOUS_RUN}: " + ", ".join(g.label for g in regs)
            if regs else f"no significant regression against the {numbers.PREVIOUS_RUN}")
    if errs:
        text += f"; {len(errs)} gates cannot be compared: " + ", ".join(g.label for g in errs)
    out.append(Banner("fail" if regs or errs else "pass",
                      f"{text} (alpha {comparison.alpha:g}, Holm-corrected)"))
    out += [Banner("warn", f"not comparable? {w}") for w in comparison.warnings]
    out += [Banner("", n) for n in comparison.notes]
    if comparison.missing_suites or comparison.new_suites:
        missing = ", ".join(comparison.missing_suites) or "none"
        out.append(Banner("", f"suites missing from this run: {missing}; "
                              f"new suites: {', '.join(comparison.new_suites) or 'none'}"))
    return out


def _previous_suites(run: RunResult, baseline: RunResult | None) -> list[SuiteResult | None]:
    if baseline is None:
        return [None] * len(run.suites)
    by_file = {(s.file, s.name): s for s in baseline.suites}
    names = Counter(s.name for s in baseline.suites)
    by_name = {s.name: s for s in baseline.suites if names[s.name] == 1}
    return [by_file.get((s.file, s.name)) or by_name.get(s.name) for s in run.suites]


@dataclass
class SuiteView:
    index: int
    suite: SuiteResult
    gates: list[GateRow]
    categories: list[tuple[str, list[GateRow]]]
    charts: list[dict[str, Any]]
    comparison: list[dict[str, Any]]
    comparison_obj: SuiteComparison | None
    reports: list[tuple[str, str]]
    data: dict[str, Any] | None
    n_cases: int
    columns: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    categories_list: list[str] = field(default_factory=list)


def _suite_view(index: int, suite: SuiteResult, previous: SuiteResult | None,
                cmp: SuiteComparison | None) -> SuiteView:
    gates = [gate_row(suite, a) for a in suite.aggregates]
    cats = [(name, [gate_row(suite, c) for c in rows]) for name, rows in suite.categories.items()
            if len(rows) > 1 or (rows and rows[0].category)]
    charts = _charts(suite, previous)
    comparison = [_comparison_row(g) for g in cmp.gates] if cmp is not None else []
    data, columns = _case_data(index, suite, previous) if suite.cases else (None, [])
    return SuiteView(
        index=index, suite=suite, gates=gates, categories=cats, charts=charts, comparison=comparison,
        comparison_obj=cmp, reports=list(suite.reports.items()), data=data,
        n_cases=suite.n_cases or len(suite.cases), columns=columns,
        statuses=sorted({c.status for c in suite.cases}),
        categories_list=sorted({c.category for c in suite.cases if c.category}))


def _comparison_row(g: Any) -> dict[str, Any]:
    status = ("error" if g.status == "error" else "regressed" if g.regressed
              else "improved" if g.improved else "ok")
    return {"name": g.name, "old": numbers.number(g.old_value), "new": numbers.number(g.new_value),
            "delta": numbers.estimate(g.delta, *(g.delta_ci or (None, None)), sign=True),
            "test": g.test, "p": numbers.p_value(g.p_value), "holm": numbers.p_value(g.p_adjusted),
            "worse": g.n_worse, "better": g.n_better, "status": status,
            "note": g.error or g.reason or ""}


# ---------------------------------------------------------------------------- charts

PLOT_W = 420
LABEL_W = 170
ROW_H = 26


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values covering ``[lo, hi]`` (steps of 1, 2 or 5 times a power of ten)."""
    span = hi - lo
    if span <= 0 or not math.isfinite(span):
        return [lo]
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _scale(values: Iterable[float], unit_range: tuple[float, float] | None = None) -> tuple[float, float]:
    """An axis range: the metric's own range when known and the values fit, else padded nice bounds."""
    vals = [float(v) for v in values if _finite(v)]
    if not vals:
        return 0.0, 1.0
    lo, hi = min(vals), max(vals)
    if unit_range and unit_range[0] <= lo and hi <= unit_range[1]:
        return unit_range
    if lo >= 0 and hi <= 1:
        return 0.0, 1.0
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
    lo, hi = (0.0 if lo >= 0 and lo - pad < 0 else lo - pad), hi + pad
    ticks = nice_ticks(lo, hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    return math.floor(lo / step) * step, math.ceil(hi / step) * step


def _tick_label(t: float) -> str:
    return f"{t:g}"


def _axis(lo: float, hi: float, x0: float, width: float) -> list[dict[str, Any]]:
    return [{"x": x0 + (t - lo) / (hi - lo) * width, "label": _tick_label(t)}
            for t in nice_ticks(lo, hi) if lo - 1e-12 <= t <= hi + 1e-12]


def unit_of(agg: AggregateResult) -> str:
    """The unit an aggregate's axis is labelled with."""
    if agg.kind == "latency":
        return "ms"
    if agg.kind == "cost":
        return "USD"
    if agg.kind == "judge_score":
        scale = agg.details.get("scale")
        if isinstance(scale, list) and len(scale) == 2:
            return f"judge score, scale {scale[0]:g}-{scale[1]:g}"
        return "judge score"
    if agg.kind in ("win_rate", "human_win_rate"):
        return "share of cases, ties count half"
    if agg.kind == "contamination":
        return "contaminated cases"
    kind = agg.details.get("metric_kind")
    return "share of cases" if kind == "proportion" else "mean per case" if kind == "mean" else ""


def _unit_range(agg: AggregateResult) -> tuple[float, float] | None:
    scale = agg.details.get("scale")
    if agg.kind == "judge_score" and isinstance(scale, list) and len(scale) == 2:
        return float(scale[0]), float(scale[1])
    if agg.kind in ("win_rate", "human_win_rate", "pass_at_k") or \
            agg.details.get("metric_kind") == "proportion":
        return 0.0, 1.0
    return None


def _charts(suite: SuiteResult, previous: SuiteResult | None) -> list[dict[str, Any]]:
    charts: list[dict[str, Any]] = []
    old = {a.name: a for a in previous.aggregates} if previous else {}
    for agg in suite.aggregates:
        chart = _interval_chart(suite, agg, old.get(agg.name))
        if chart:
            charts.append(chart)
        if agg.kind == "win_rate" and agg.value is not None:
            wtl = _wtl_chart(agg)
            if wtl:
                charts.append(wtl)
        if agg.metric in CLASSIFICATION_METRICS and agg.kind == "metric":
            cm = _confusion_chart(suite, agg)
            if cm:
                charts.append(cm)
    charts.extend(_histograms(suite, previous))
    return charts


def _interval_chart(suite: SuiteResult, agg: AggregateResult,
                    old: AggregateResult | None) -> dict[str, Any] | None:
    """One metric's forest plot on one scale: this run, the base model, the previous run, each category."""
    if not _finite(agg.value):
        return None
    rows: list[dict[str, Any]] = [{"label": f"this run ({agg.model or suite.model or 'model'})",
                                   "value": agg.value, "ci": agg.ci, "cls": _colour(agg.verdict),
                                   "bar": False}]
    vs = agg.details.get("vs_baseline")
    if isinstance(vs, dict) and _finite(vs.get("value")):
        rows.append({"label": f"{numbers.BASE_MODEL} ({vs.get('model') or '?'})", "value": vs["value"],
                     "ci": vs.get("ci"), "cls": "base", "bar": False})
    if old is not None and _finite(old.value):
        rows.append({"label": numbers.PREVIOUS_RUN, "value": old.value, "ci": old.ci, "cls": "prev",
                     "bar": False})
    for cat in suite.categories.get(agg.name, []):
        if cat.category and _finite(cat.value):
            rows.append({"label": f"category {cat.category}", "value": cat.value, "ci": cat.ci,
                         "cls": _colour(cat.verdict) if cat.passed is not None else "cat", "bar": True})
    values = [agg.threshold] + [r["value"] for r in rows] + [
        v for r in rows for v in (r["ci"] or ()) if _finite(v)]
    lo, hi = _scale(values, _unit_range(agg))
    x0 = LABEL_W
    top = 8

    def x(v: float) -> float:
        return x0 + (min(max(v, lo), hi) - lo) / (hi - lo) * PLOT_W

    out_rows = []
    for i, r in enumerate(rows):
        y = top + ROW_H * i + ROW_H / 2
        ci = r["ci"] if r["ci"] and all(_finite(v) for v in r["ci"]) else None
        out_rows.append({"label": r["label"], "y": y, "x": x(r["value"]), "x0": x0, "cls": r["cls"],
                         "bar": r["bar"], "text": numbers.estimate(r["value"], *(ci or (None, None))),
                         "lo": x(ci[0]) if ci else None, "hi": x(ci[1]) if ci else None})
    plot_bottom = top + ROW_H * len(rows) + 4
    threshold = None
    if agg.threshold is not None and _finite(agg.threshold):
        threshold = {"x": x(agg.threshold), "label": f"threshold {numbers.threshold(agg.threshold)}"}
    unit = unit_of(agg)
    return {"type": "intervals", "title": agg.name, "rows": out_rows, "x0": x0, "x1": x0 + PLOT_W,
            "top": top, "bottom": plot_bottom, "ticks": _axis(lo, hi, x0, PLOT_W), "threshold": threshold,
            "axis_label": f"{agg.name}" + (f" ({unit})" if unit else ""),
            "width": x0 + PLOT_W + 150, "height": plot_bottom + 40}


def _colour(verdict: str) -> str:
    return {"pass": "pass", "fail": "fail", "xpass": "fail", "error": "error"}.get(verdict, "none")


def _wtl_chart(agg: AggregateResult) -> dict[str, Any] | None:
    d = agg.details
    raw = [("wins", d.get("wins")), ("ties", d.get("ties")), ("losses", d.get("losses"))]
    counts = [(label, c) for label, c in raw if isinstance(c, int)]
    if len(counts) != len(raw):
        return None
    total = sum(c for _, c in counts)
    if total == 0:
        return None
    x0, width = 20, PLOT_W
    segs, at = [], 0
    for label, c in counts:
        segs.append({"cls": label, "x": x0 + at / total * width, "w": c / total * width,
                     "label": f"{label} {c}", "count": c})
        at += c
    return {"type": "wtl", "title": f"{agg.name}: wins, ties, losses", "segs": segs, "x0": x0,
            "x1": x0 + width, "ticks": _axis(0, total, x0, width), "width": x0 + width + 30, "height": 92,
            "axis_label": f"cases judged (n={total})"}


def _confusion_chart(suite: SuiteResult, agg: AggregateResult) -> dict[str, Any] | None:
    """Reference label (rows) by predicted label (columns) when the references are a few labels."""
    pairs = []
    for c in suite.cases:
        ref = c.reference[0] if isinstance(c.reference, list) and c.reference else c.reference
        if not isinstance(ref, str) or c.output is None:
            continue
        pairs.append((ref.strip(), c.output.strip()))
    labels = sorted({r for r, _ in pairs})
    if not pairs or not 2 <= len(labels) <= MAX_CONFUSION_LABELS or any(len(r) > 40 for r in labels):
        return None
    other = "(other)"
    cols = labels + ([other] if any(p not in labels for _, p in pairs) else [])
    counts = Counter((r, p if p in labels else other) for r, p in pairs)
    top = max(counts.values())
    longest = max(len(c) for c in cols)
    cell, left, head = max(34, min(96, 7 * longest + 10)), 14 + 7 * max(len(r) for r in labels), 30
    cells = [{"x": left + j * cell, "y": head + i * cell, "count": counts.get((r, p), 0),
              "shade": min(4, math.ceil(4 * counts.get((r, p), 0) / top)),
              "diag": r == p} for i, r in enumerate(labels) for j, p in enumerate(cols)]
    return {"type": "confusion", "title": f"{agg.name}: confusion matrix", "cells": cells, "cell": cell,
            "rows": [{"y": head + i * cell + cell / 2, "label": r} for i, r in enumerate(labels)],
            "cols": [{"x": left + j * cell + cell / 2, "label": p} for j, p in enumerate(cols)],
            "left": left, "head": head, "width": left + cell * len(cols) + 20,
            "height": head + cell * len(labels) + 40, "x_label": "predicted (output)",
            "y_label": "reference", "bottom": head + cell * len(labels)}


def _histograms(suite: SuiteResult, previous: SuiteResult | None) -> list[dict[str, Any]]:
    """Per-case score distributions (judge scores too), with the previous run's as an outline."""
    keys: list[str] = []
    for c in suite.cases:
        keys.extend(k for k in c.scores if k not in keys)
    out = []
    for key in keys:
        new = [c.scores.get(key) for c in suite.cases]
        old = [c.scores.get(key) for c in previous.cases] if previous else []
        chart = _histogram(key, [float(v) for v in new if v is not None and _finite(v)],
                           [float(v) for v in old if v is not None and _finite(v)], "score")
        if chart:
            out.append(chart)
    judge_new = [s for s in (_judge_score(c.judge) for c in suite.cases) if s is not None]
    judge_old = ([s for s in (_judge_score(c.judge) for c in previous.cases) if s is not None]
                 if previous else [])
    chart = _histogram("judge score", judge_new, judge_old, "judge score")
    if chart:
        out.append(chart)
    return out


def _histogram(name: str, values: Sequence[float], old: Sequence[float], unit: str) -> dict[str, Any] | None:
    if len(values) < 2:
        return None
    both = list(values) + list(old)
    if all(float(v).is_integer() for v in both) and max(both) - min(both) <= 20:
        # whole numbers (0/1 matches, judge scores): one bin per value, centred on it; 0/1 both shown
        lo_v, hi_v = min(both), max(both)
        if 0 <= lo_v and hi_v <= 1:
            lo_v, hi_v = 0, 1
        lo, hi = lo_v - 0.5, hi_v + 0.5
        bins = int(hi - lo)
    else:
        lo, hi = _scale(both)
        bins = 10
    width, height, x0, top = 300, 110, 44, 10

    def count(vs: Sequence[float]) -> list[int]:
        cs = [0] * bins
        for v in vs:
            k = int((v - lo) / (hi - lo) * bins) if hi > lo else 0
            cs[min(max(k, 0), bins - 1)] += 1
        return cs

    new_c, old_c = count(values), count(old) if old else []
    ymax = max(new_c + old_c) or 1
    yt = [t for t in nice_ticks(0, ymax, 4) if float(t).is_integer()]
    bw = width / bins
    bars = [{"x": x0 + i * bw + 1, "w": max(bw - 2, 1), "y": top + height - c / ymax * height,
             "h": c / ymax * height, "label": f"{_tick_label(lo + i * (hi - lo) / bins)}-"
                                              f"{_tick_label(lo + (i + 1) * (hi - lo) / bins)}: {c}"}
            for i, c in enumerate(new_c)]
    outline = [{"x": x0 + i * bw + 1, "w": max(bw - 2, 1), "y": top + height - c / ymax * height,
                "h": c / ymax * height} for i, c in enumerate(old_c) if c]
    return {"type": "hist", "title": f"{name}: distribution over cases", "bars": bars, "outline": outline,
            "x0": x0, "x1": x0 + width, "top": top, "bottom": top + height,
            "ticks": _axis(lo, hi, x0, width),
            "yticks": [{"y": top + height - t / ymax * height, "label": f"{t:g}"} for t in yt],
            "axis_label": f"{name} ({unit})" if unit and unit != name else name, "y_label": "cases",
            "legend": bool(old), "width": x0 + width + 20, "height": top + height + 44,
            "n": len(values), "n_old": len(old)}


# ---------------------------------------------------------------------------- cases

_TOKEN = re.compile(r"\s+|\S+")


def word_diff(old: str, new: str) -> list[list[str]] | None:
    """``[[op, text], ...]`` turning ``old`` into ``new`` word by word (``=`` same, ``-`` gone, ``+`` new).

    Tokens are words and the whitespace between them (difflib on word tokens); the common head and
    tail are split off first, so the matcher only sees the part that changed. ``None`` when either
    text is longer than :data:`MAX_DIFF` (too slow to be worth it).
    """
    if len(old) > MAX_DIFF or len(new) > MAX_DIFF:
        return None
    if old == new:
        return [["=", old]] if old else []
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    head = 0
    while head < len(a) and head < len(b) and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < len(a) - head and tail < len(b) - head and a[-1 - tail] == b[-1 - tail]:
        tail += 1
    out: list[list[str]] = [["=", "".join(a[:head])]] if head else []
    mid_a, mid_b = a[head:len(a) - tail], b[head:len(b) - tail]
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, mid_a, mid_b, autojunk=False).get_opcodes():
        if tag == "equal":
            out.append(["=", "".join(mid_a[i1:i2])])
            continue
        if i2 > i1:
            out.append(["-", "".join(mid_a[i1:i2])])
        if j2 > j1:
            out.append(["+", "".join(mid_b[j1:j2])])
    if tail:
        out.append(["=", "".join(a[len(a) - tail:])])
    return out


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_TEXT:
        value = (value[:MAX_TEXT]
                 + f"\n... ({len(value) - MAX_TEXT:,} more characters cut; the results file has them)")
    return escape(value)


def _prompt(prompt: Any) -> Any:
    """A chat prompt as ``[{role, content}]`` (shown as messages), anything else as text."""
    if prompt is None or isinstance(prompt, str):
        return _text(prompt)
    if isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt):
        return [{"role": str(m.get("role", "?")),
                 "content": _text(m.get("content") if isinstance(m.get("content"), str)
                                  else json.dumps(m.get("content"), ensure_ascii=False, default=str))}
                for m in prompt]
    return _text(json.dumps(prompt, ensure_ascii=False, default=str))


def _reference(reference: Any) -> str | None:
    if reference is None or isinstance(reference, str):
        return _text(reference)
    if isinstance(reference, list):
        return _text("\n".join(f"- {r}" for r in reference) if len(reference) > 1 else str(reference[0])
                     if reference else "")
    return _text(json.dumps(reference, ensure_ascii=False, default=str))


def _judge_score(judge: dict[str, Any] | None) -> float | None:
    """The judge's score of a case: ``judge["score"]``, itself a number or a verdict dict."""
    score = (judge or {}).get("score")
    if isinstance(score, dict):
        score = score.get("score")
    return float(score) if score is not None and _finite(score) else None


def _judge_view(judge: dict[str, Any]) -> list[dict[str, Any]]:
    """Each judge verdict as a headline, its explanation and a few facts (never raw JSON)."""
    out: list[dict[str, Any]] = []
    for name, v in judge.items():
        if not isinstance(v, dict):
            out.append({"name": str(name), "head": str(v), "text": None, "facts": []})
            continue
        if v.get("error"):
            out.append({"name": str(name), "head": "no verdict", "text": _text(str(v["error"])), "facts": []})
            continue
        facts: list[str] = []
        if "score" in v:
            scale = v.get("scale")
            of = (f" on a {scale[0]:g}-{scale[1]:g} scale" if isinstance(scale, list) and len(scale) == 2
                  else "")
            head = f"{numbers.number(v['score']) if _finite(v['score']) else v['score']}{of}"
            for crit, s in (v.get("rubric") or {}).items():
                facts.append(f"{crit}: {numbers.number(s)}")
        elif "verdict" in v:
            head = (f"{v['verdict']} for {v.get('model') or 'the model'} against "
                    f"{v.get('baseline') or 'the base model'}")
            if v.get("consistent") is not None:
                facts.append("both orders agree" if v["consistent"] else "the two orders disagree (a tie)")
            for k, o in enumerate(v.get("orders") or [], 1):
                if isinstance(o, dict):
                    facts.append(f"order {k}: {o.get('first', '?')} shown first, judge picked "
                                 f"{o.get('shown_winner', '?')}")
        else:
            head = ""
        for key in ("repaired",):
            if v.get(key):
                facts.append("the verdict's format was repaired")
        reasoning = v.get("reasoning") or v.get("explanation")
        out.append({"name": str(name), "head": head, "text": _text(str(reasoning)) if reasoning else None,
                    "facts": facts})
    return out


def _requests(case: CaseResult) -> dict[str, Any]:
    """Latency (mean of fresh requests, ms), tokens and cost of a case's recorded requests."""
    reqs = [r for r in case.requests if isinstance(r, dict)]
    if not reqs:
        return {}
    fresh = [r["latency_s"] for r in reqs if not r.get("cached") and _finite(r.get("latency_s"))]
    tin = [r["input_tokens"] for r in reqs if _finite(r.get("input_tokens"))]
    tout = [r["output_tokens"] for r in reqs if _finite(r.get("output_tokens"))]
    cost = [r["cost_usd"] for r in reqs if _finite(r.get("cost_usd"))]
    return {"latency_ms": 1000 * sum(fresh) / len(fresh) if fresh else None,
            "tokens_in": sum(tin) if tin else None, "tokens_out": sum(tout) if tout else None,
            "cost_usd": sum(cost) if cost else None, "cached": sum(1 for r in reqs if r.get("cached")),
            "n": len(reqs)}


def _case_change(case: CaseResult, old: CaseResult | None, lower_better: set[str]) -> str:
    """``worse`` if any per-case score dropped since the previous run, else better/same/new."""
    if old is None:
        return "new"
    worse = better = False
    for k, v in case.scores.items():
        was = old.scores.get(k)
        if not (_finite(v) and _finite(was)) or v == was:
            continue
        up = v > was  # type: ignore[operator]
        if up == (k not in lower_better):
            better = True
        else:
            worse = True
    return "worse" if worse else "better" if better else "same"


def _one_line(text: str | None) -> str:
    if text is None:
        return ""
    flat = " ".join(text.split())
    return escape(flat[:CELL_CHARS] + ("..." if len(flat) > CELL_CHARS else ""), multiline=False)


def _case_data(index: int, suite: SuiteResult,
               previous: SuiteResult | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The suite's cases as table cells (formatted), sort keys, filter fields and detail views."""
    score_keys: list[str] = []
    for c in suite.cases:
        score_keys.extend(k for k in c.scores if k not in score_keys)
    prev_cases = {c.id: c for c in previous.cases} if previous else {}
    lower_better = {a.metric or a.name for a in suite.aggregates if a.op == "max"} | {
        a.name for a in suite.aggregates if a.op == "max"}
    usage = [_requests(c) for c in suite.cases]
    has_cat = any(c.category for c in suite.cases)
    has_judge = any(_judge_score(c.judge) is not None for c in suite.cases)
    has_lat = any(u.get("latency_ms") is not None for u in usage)
    has_tok = any(u.get("tokens_in") is not None or u.get("tokens_out") is not None for u in usage)
    has_cost = any(u.get("cost_usd") is not None for u in usage)
    failing_checks = [[ch for ch in c.checks if isinstance(ch, dict) and not ch.get("passed", True)]
                      for c in suite.cases]
    has_checks = any(failing_checks)

    columns = [{"label": "id", "num": False, "wide": False},
               {"label": "status", "num": False, "wide": False}]
    if has_cat:
        columns.append({"label": "category", "num": False, "wide": False})
    columns.append({"label": "output", "num": False, "wide": True})
    if has_checks:
        columns.append({"label": "failing checks", "num": False, "wide": True})
    for k in score_keys:
        columns.append({"label": k, "num": True, "wide": False})
        if previous is not None:
            columns.append({"label": f"\u0394 {k} vs {numbers.PREVIOUS_RUN}", "num": True, "wide": False})
    if has_judge:
        columns.append({"label": "judge score", "num": True, "wide": False})
    if has_lat:
        columns.append({"label": "latency (ms)", "num": True, "wide": False})
    if has_tok:
        columns.append({"label": "tokens in / out", "num": True, "wide": False})
    if has_cost:
        columns.append({"label": "cost (USD)", "num": True, "wide": False})

    rows: list[dict[str, Any]] = []
    all_keys: list[list[Any]] = []
    for c, u, failing in zip(suite.cases, usage, failing_checks, strict=True):
        old = prev_cases.get(c.id) if previous is not None else None
        cells: list[str] = [escape(c.id, multiline=False), c.status]
        keys: list[Any] = [c.id, c.status]
        if has_cat:
            cells.append(escape(c.category or "", multiline=False))
            keys.append(c.category or "")
        cells.append(_one_line(c.output) if c.output is not None else "(no output)")
        keys.append((c.output or "")[:CELL_CHARS])
        if has_checks:
            messages = _one_line("; ".join(str(ch.get("message") or ch.get("check") or "failed")
                                           for ch in failing))
            cells.append(messages)
            keys.append(messages)
        deltas = {}
        for k in score_keys:
            v = c.scores.get(k)
            cells.append(numbers.number(v))
            keys.append(v if _finite(v) else None)
            if previous is not None:
                was = old.scores.get(k) if old else None
                d = v - was if _finite(v) and _finite(was) else None  # type: ignore[operator]
                deltas[k] = d
                cells.append(numbers.signed(d) if d is not None else numbers.MISSING)
                keys.append(d)
        if has_judge:
            js = _judge_score(c.judge)
            cells.append(numbers.number(js))
            keys.append(js)
        if has_lat:
            cells.append(numbers.number(u.get("latency_ms")))
            keys.append(u.get("latency_ms"))
        if has_tok:
            tin, tout = u.get("tokens_in"), u.get("tokens_out")
            cells.append(f"{_int(tin)} / {_int(tout)}" if u else numbers.MISSING)
            keys.append((tin or 0) + (tout or 0) if u else None)
        if has_cost:
            cells.append(numbers.number(u.get("cost_usd")))
            keys.append(u.get("cost_usd"))
        detail: dict[str, Any] = {
            "prompt": _prompt(c.prompt), "output": _text(c.output), "reference": _reference(c.reference),
            "error": _text(c.error), "samples": len(c.samples),
            "checks": [{"check": escape(str(ch.get("check", "")), multiline=False),
                        "message": _text(str(ch.get("message") or "failed"))} for ch in failing],
            "judge": _judge_view(c.judge) if c.judge else [],
            "scores": [{"name": k, "value": numbers.number(c.scores.get(k)),
                        "previous": numbers.number(old.scores.get(k)) if old else None,
                        "delta": numbers.signed(deltas[k]) if deltas.get(k) is not None else None}
                       for k in score_keys if k in c.scores],
            "usage": {k: (numbers.number(v) if k in ("latency_ms", "cost_usd") else v) for k, v in u.items()},
            "category": escape(c.category, multiline=False) if c.category else None,
            "tags": [escape(str(t), multiline=False) for t in c.tags],
        }
        if c.baseline_output is not None:
            detail["base"] = _text(c.baseline_output)
            if c.output is not None:
                detail["diff_base"] = word_diff(escape(c.baseline_output), escape(c.output))
        if previous is not None:
            detail["previous"] = _text(old.output) if old else None
            if old is not None and old.output is not None and c.output is not None:
                detail["diff_previous"] = word_diff(escape(old.output), escape(c.output))
        change = _case_change(c, old, lower_better) if previous is not None else ""
        rows.append({"c": cells, "k": keys, "s": c.status, "g": c.category or "", "h": change, "d": detail})
        all_keys.append(keys)
    # each column's ascending order (missing keys last, ties in case order), so the page sorts
    # by looking it up instead of running a comparator over every case
    orders = []
    for j in range(len(columns)):
        column = [_sort_key(k[j]) for k in all_keys]
        orders.append(sorted(range(len(column)), key=column.__getitem__))
    data = {"suite": index, "columns": columns, "rows": rows, "orders": orders,
            "labels": {"base": f"{numbers.BASE_MODEL} ({suite.baseline})" if suite.baseline
                       else numbers.BASE_MODEL,
                       "model": f"this run ({suite.model})" if suite.model else "this run",
                       "previous": numbers.PREVIOUS_RUN}}
    return data, columns


def _sort_key(v: Any) -> tuple[int, float, str]:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return (1, 0.0, "")
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return (0, float(v), "")
    return (0, 0.0, str(v))


def _int(v: Any) -> str:
    return f"{int(v)}" if _finite(v) else numbers.MISSING

