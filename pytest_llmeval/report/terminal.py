"""The terminal summary: one row per suite and gate (value, interval, threshold, verdict, n).

The table fits the width pytest reports for the terminal (``COLUMNS`` included):
when the columns do not fit, the least needed ones (``n``, then ``threshold``, then
``model``) move to an indented line under their row, then the suite and gate names
wrap inside their cells; a header word is never split. Verdicts are coloured
through pytest's terminal writer, so colour follows ``--color`` (PASS green,
FAIL / ERROR / XPASS red, XFAIL / SKIP yellow).

Names, categories, reports and warnings can carry text from eval files and model
outputs (a classification report's labels are outputs), so everything written
goes through :func:`pytest_llmeval.sanitize.display`: control sequences are shown
escaped, never obeyed, and long texts are cut with the count of characters cut.
Numbers use :mod:`pytest_llmeval.numbers`, as every other output does.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from wcwidth import wcswidth

from pytest_llmeval import numbers
from pytest_llmeval.results import AggregateResult, RunResult
from pytest_llmeval.sanitize import display

CELL_LIMIT = 60
"""Characters of a name or category shown in a table cell."""
LINE_LIMIT = 500
"""Characters of a report line or warning shown."""
DEFAULT_WIDTH = 80
GAP = "  "

HEADER = ["suite", "gate", "model", "value", "interval", "threshold", "verdict", "n"]
ESSENTIAL = ("suite", "gate", "value", "interval", "verdict")
"""Columns always in the table."""
OPTIONAL = ("model", "threshold", "n")
"""Columns kept while they fit, most wanted first (dropped from the end)."""
WRAPPABLE = ("suite", "gate", "interval")
"""Columns whose cells may wrap onto more lines, narrowed in this order."""
SOFT_WRAP = {"suite": 20, "gate": 20, "interval": 99}
"""How far names wrap (at spaces only) before a column has to move under its row."""
MIN_WRAP = {"suite": 8, "gate": 12, "interval": 8}
"""Narrowest a wrapped cell gets (never narrower than its header word)."""

VERDICT_MARKUP: dict[str, dict[str, bool]] = {
    "PASS": {"green": True}, "FAIL": {"red": True, "bold": True}, "ERROR": {"red": True, "bold": True},
    "XPASS": {"red": True}, "REGRESSED": {"red": True, "bold": True},
    "XFAIL": {"yellow": True}, "SKIP": {"yellow": True},
}
"""Terminal-writer markup per verdict word (applied only when pytest writes colour)."""


def text_width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide characters count two; unknown ones one)."""
    w = wcswidth(text)
    return len(text) if w < 0 else w


def _cell(text: Any) -> str:
    return display("-" if text is None else text, CELL_LIMIT, multiline=False)


def _verdict(agg: AggregateResult) -> str:
    return {"none": "-"}.get(agg.verdict, agg.verdict.upper())


def _threshold(agg: AggregateResult) -> str:
    if agg.threshold is None:
        return "-"
    sign = ">=" if agg.op == "min" else "<="
    lb = " (CI)" if agg.confidence is not None else ""
    return f"{sign} {numbers.threshold(agg.threshold)}{lb}"


def _ci(agg: AggregateResult) -> str:
    if not agg.ci:
        return "-"
    return numbers.interval(agg.ci[0], agg.ci[1])


@dataclass
class Row:
    """One table row: its cells by column, and the verdict word that gets a colour."""

    cells: dict[str, str]
    verdict: str = ""
    sub: bool = False
    """A row under a gate (base model, difference, category): its empty cells stay empty."""
    extra: list[str] = field(default_factory=list)

    def get(self, column: str) -> str:
        return self.cells.get(column, "")


def _row(**cells: str) -> Row:
    return Row({k: v for k, v in cells.items()}, verdict=cells.get("verdict", ""))


def summary_rows(run: RunResult) -> list[Row]:
    """The table's rows, data-driven from each aggregate (and its display details)."""
    rows: list[Row] = []
    for suite in run.suites:
        for agg in suite.aggregates:
            model = "-" if agg.kind == "contamination" else (agg.model or suite.model or "-")
            rows.append(_row(suite=_cell(suite.name), gate=_cell(agg.name), model=_cell(model),
                             value=numbers.number(agg.value), interval=_ci(agg), threshold=_threshold(agg),
                             verdict=_verdict(agg), n=_cell(agg.n or "-")))
            base = agg.details.get("vs_baseline")
            if isinstance(base, dict):
                ci = base.get("ci") or [None, None]
                sub = Row({"gate": f"  {numbers.BASE_MODEL}", "model": _cell(base.get("model") or "-"),
                           "value": numbers.number(base.get("value")),
                           "interval": numbers.interval(ci[0], ci[1])}, sub=True)
                rows.append(sub)
                dci = base.get("delta_ci") or [None, None]
                rows.append(Row({"gate": "  difference", "value": numbers.signed(base.get("delta")),
                                 "interval": numbers.interval(dci[0], dci[1], sign=True)}, sub=True))
            if agg.kind == "win_rate" and agg.value is not None:
                d = agg.details
                lc_req = d.get("min_lc_win_rate")
                verdict = ("PASS" if d.get("lc_passed") else "FAIL") if lc_req is not None else ""
                rows.append(Row({"gate": "  length-controlled", "value": numbers.number(d.get("lc_win_rate")),
                                 "interval": "-",
                                 "threshold": f">= {numbers.threshold(lc_req)}" if lc_req is not None else "",
                                 "verdict": verdict}, verdict=verdict, sub=True))
            per_category = "failing_categories" in agg.details
            cats = suite.categories.get(agg.name, [])
            for cat in cats if len(cats) > 1 else []:
                verdict = _verdict(cat) if per_category else ""
                rows.append(Row({"gate": f"  {_cell(cat.category)}", "value": numbers.number(cat.value),
                                 "interval": _ci(cat), "threshold": _threshold(cat) if per_category else "",
                                 "verdict": verdict, "n": _cell(cat.n)}, verdict=verdict, sub=True))
    return rows


# --------------------------------------------------------------------------- layout


@dataclass
class Layout:
    """Which columns are in the table, how wide each is, and which moved under their row."""

    columns: list[str]
    widths: dict[str, int]
    moved: list[str]
    fits: bool

    @property
    def total(self) -> int:
        return sum(self.widths[c] for c in self.columns) + len(GAP) * (len(self.columns) - 1)


def layout(rows: list[Row], width: int) -> Layout:
    """Fit the table in ``width`` columns.

    Long suite and gate names wrap at spaces (down to :data:`SOFT_WRAP` columns, never
    inside a word) before any column moves under its row; then ``n``, ``threshold`` and
    ``model`` move, in that order; then the names and the interval wrap down to
    :data:`MIN_WRAP`. Wrapped columns get back
    whatever room is left, up to their natural width (the interval first).
    """
    natural = {c: max([text_width(c)] + [text_width(r.get(c)) for r in rows]) for c in HEADER}
    # Before a column moves, names wrap only at spaces: never narrower than their longest word.
    longest_word = {c: max([0] + [text_width(w) for r in rows for w in r.get(c).split()]) for c in WRAPPABLE}
    soft = {c: max(SOFT_WRAP.get(c, 0), longest_word[c]) for c in WRAPPABLE}

    def attempt(columns: list[str], floors: dict[str, int]) -> Layout | None:
        widths = dict(natural)
        for c in WRAPPABLE:
            widths[c] = min(natural[c], max(floors.get(c, natural[c]), text_width(c)))
        lay = Layout(columns, widths, [c for c in HEADER if c not in columns], True)
        if lay.total > width:
            return None
        for c in reversed(WRAPPABLE):  # give the room back: the interval whole first, then names
            lay.widths[c] = min(natural[c], lay.widths[c] + width - lay.total)
        return lay

    columns = list(HEADER)
    for drop in (None, *reversed(OPTIONAL)):
        if drop is not None:
            columns.remove(drop)
        found = attempt(list(columns), soft)
        if found is not None:
            return found
    found = attempt(list(columns), MIN_WRAP)
    if found is not None:
        return found
    return Layout(list(columns), dict(natural), [c for c in HEADER if c not in columns], False)


def _wrap_cell(text: str, width: int) -> list[str]:
    if text_width(text) <= width:
        return [text]
    lead = len(text) - len(text.lstrip(" "))
    return _words(text, width, " " * min(lead + 2, 4))


def _words(text: str, width: int, indent: str) -> list[str]:
    """Wrap at spaces; a word longer than a line starts its own line and is cut there."""
    lines = textwrap.wrap(text, width, subsequent_indent=indent if text_width(indent) < width // 2 else "",
                          break_long_words=False, break_on_hyphens=False)
    out: list[str] = []
    for line in lines:
        out.extend(_hard_wrap(line, width) if text_width(line) > width else [line])
    return out or [""]


def _hard_wrap(text: str, width: int) -> list[str]:
    """Cut by display columns (for wide characters, where textwrap counts code points)."""
    out, line = [], ""
    for ch in text:
        if text_width(line + ch) > width:
            out.append(line)
            line = ch
        else:
            line += ch
    return [*out, line] if line else out


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - text_width(text))


def render_table(rows: list[Row], width: int) -> list[list[tuple[str, str]]]:
    """The table as lines of ``(text, verdict)`` segments (``verdict`` set on the coloured segment)."""
    lay = layout(rows, width)
    if not lay.fits:
        return [[(line, "")] for row in rows for line in _stacked(row, width)]
    header = GAP.join(_pad(c, lay.widths[c]) for c in lay.columns).rstrip()
    rule = GAP.join("-" * lay.widths[c] for c in lay.columns)
    lines: list[list[tuple[str, str]]] = [[(header, "")], [(rule, "")]]
    for row in rows:
        cells = {c: _wrap_cell(row.get(c), lay.widths[c]) for c in lay.columns}
        height = max(len(v) for v in cells.values())
        for i in range(height):
            segments: list[tuple[str, str]] = []
            for j, c in enumerate(lay.columns):
                part = cells[c][i] if i < len(cells[c]) else ""
                text = part if j == len(lay.columns) - 1 else _pad(part, lay.widths[c]) + GAP
                segments.append((text, row.verdict if c == "verdict" and i == 0 and part else ""))
            last = segments[-1]
            segments[-1] = (last[0].rstrip(), last[1])
            while segments and not segments[-1][0].strip() and len(segments) > 1:
                segments.pop()
                segments[-1] = (segments[-1][0].rstrip(), segments[-1][1])
            lines.append(segments)
        moved = [f"{c} {row.get(c)}" for c in lay.moved
                 if row.get(c) not in ("", "-") and not (row.sub and c == "n")]
        if moved:
            for text in textwrap.wrap(", ".join(moved), max(10, width - 4), break_long_words=True):
                lines.append([("    " + text, "")])
    return lines


def _stacked(row: Row, width: int) -> list[str]:
    """A row as ``column value`` pairs, wrapped: the table for terminals too narrow for columns."""
    parts = [f"{c} {row.get(c)}" for c in HEADER if row.get(c) not in ("", "-")]
    return fit(", ".join(parts), width)


def fit(text: str, width: int, indent: str = "  ") -> list[str]:
    """One line of text as lines of at most ``width`` columns (continuations indented)."""
    if text_width(text) <= width:
        return [text]
    lead = " " * (len(text) - len(text.lstrip(" ")))
    return _words(text, width, lead + indent)


def fit_block(text: str, width: int) -> list[str]:
    """Every line of a block fitted to ``width`` (see :func:`fit`)."""
    return [piece for line in text.splitlines() for piece in (fit(line, width) if line else [""])]


def terminal_width(tr: Any) -> int:
    """The width pytest writes to (its terminal writer's ``fullwidth``, which honours ``COLUMNS``)."""
    try:
        width = int(tr.config.get_terminal_writer().fullwidth)
    except (AttributeError, TypeError, ValueError):
        width = DEFAULT_WIDTH
    return max(20, width)


def _painter(tr: Any) -> Any:
    """``paint(text, markup)``: pytest's terminal writer's markup (plain text when it writes no colour)."""
    try:
        writer = tr.config.get_terminal_writer()
    except AttributeError:
        return lambda text, markup: text
    return lambda text, markup: writer.markup(text, **markup) if markup else text


def write_fitted(tr: Any, text: str, width: int, **markup: bool) -> None:
    """Write ``text`` as lines of at most ``width`` columns."""
    for line in fit(text, width):
        tr.write_line(line, **markup)


def write_summary(tr: Any, run: RunResult, verbosity: int = 0, width: int | None = None) -> None:
    """The ``llmeval summary`` section, fitted to ``width`` (default: the terminal's)."""
    all_clear = all(a.verdict not in ("fail", "error", "xpass") for s in run.suites for a in s.aggregates)
    if verbosity < -1 and all_clear:
        return
    width = width or terminal_width(tr)
    tr.section("llmeval summary", sep="=")
    rows = summary_rows(run)
    if rows:
        paint = _painter(tr)
        for segments in render_table(rows, width):
            tr.write_line("".join(paint(text, VERDICT_MARKUP.get(verdict, {})) if verdict else text
                                  for text, verdict in segments))
    else:
        tr.write_line("no aggregate gates ran")
    for suite in run.suites:
        for agg in suite.aggregates:
            if agg.kind == "win_rate" and agg.value is not None:
                d = agg.details
                judge = _cell(d.get("judge") or "-")
                first = numbers.percent(d.get("first_position_preference"))
                write_fitted(tr, f"{_cell(suite.name)}::{_cell(agg.name)}: judge {judge}, "
                                 f"W/L/T {d.get('wins', '-')}/{d.get('losses', '-')}/{d.get('ties', '-')}, "
                                 f"position consistency {numbers.percent(d.get('consistency_rate'))}, "
                                 f"first-position preference {first}, "
                                 f"length-controlled win rate {numbers.number(d.get('lc_win_rate'))}", width)
    n_cases = sum(len(s.cases) for s in run.suites)
    failed = sum(1 for s in run.suites for c in s.cases if c.status == "failed")
    errors = sum(1 for s in run.suites for c in s.cases if c.status == "error")
    write_fitted(tr, f"cases: {n_cases} evaluated, {failed} failed checks, {errors} errors", width)
    warnings = [w for s in run.suites for w in s.warnings]
    for w in warnings:
        write_fitted(tr, f"warning: {display(w, LINE_LIMIT, multiline=False)}", width, yellow=True)
    if verbosity >= 0:
        for suite in run.suites:
            for name, report in suite.reports.items():
                write_fitted(tr, f"{_cell(suite.name)}::{_cell(name)} report:", width)
                for line in display(report.rstrip(), 20 * LINE_LIMIT).splitlines():
                    write_fitted(tr, "    " + display(line, LINE_LIMIT, multiline=False), width)
    for model, u in sorted(run.usage.items()):
        if u:
            parts = [f"{k}={v}" for k, v in u.items() if not isinstance(v, dict)]
            cache = u.get("cache") if isinstance(u.get("cache"), dict) else None
            if cache:
                parts += [f"cache.{k}={v}" for k, v in cache.items()]
            if parts:
                write_fitted(tr, f"usage {_cell(model)}: " + display(", ".join(parts), LINE_LIMIT,
                                                                      multiline=False), width)
            failover = failover_line(model, u)
            if failover:
                write_fitted(tr, failover, width, yellow=bool(u.get("failover_retries")))


def failover_line(model: str, usage: dict[str, Any]) -> str | None:
    """The summary line of a fleet: requests retried from failed endpoints (None for other models)."""
    if not isinstance(usage.get("failover_retries"), int):
        return None
    retried = usage["failover_retries"]
    rerouted = usage.get("failover_reroutes") or 0
    more = f" ({rerouted} more rerouted before they were sent)" if rerouted else ""
    return (f"llmeval: {_cell(model)}: {retried} request{'s' if retried != 1 else ''} retried from failed "
            f"endpoints{more}")
