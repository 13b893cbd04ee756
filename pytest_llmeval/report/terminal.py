"""The terminal summary: one row per suite and gate (value, interval, threshold, verdict, n).

Names, categories, reports and warnings can carry text from eval files and model
outputs (a classification report's labels are outputs), so everything written
goes through :func:`pytest_llmeval.sanitize.display`: control sequences are shown
escaped, never obeyed, and long texts are cut with the count of characters cut.
"""

from __future__ import annotations

import math
from typing import Any

from pytest_llmeval.results import AggregateResult, RunResult
from pytest_llmeval.sanitize import display

CELL_LIMIT = 60
"""Characters of a name or category shown in a table cell."""
LINE_LIMIT = 500
"""Characters of a report line or warning shown."""


def _cell(text: Any) -> str:
    return display("-" if text is None else text, CELL_LIMIT, multiline=False)


def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"


def _pct(v: Any) -> str:
    return "-" if not isinstance(v, (int, float)) else f"{v:.0%}"


def _verdict(agg: AggregateResult) -> str:
    return {"none": "-"}.get(agg.verdict, agg.verdict.upper())


def _threshold(agg: AggregateResult) -> str:
    if agg.threshold is None:
        return "-"
    sign = ">=" if agg.op == "min" else "<="
    lb = " (CI)" if agg.confidence is not None else ""
    return f"{sign} {agg.threshold:g}{lb}"


def _ci(agg: AggregateResult) -> str:
    if not agg.ci or agg.ci[0] is None:
        return "-"
    return f"[{_num(agg.ci[0])}, {_num(agg.ci[1])}]"


def summary_rows(run: RunResult) -> list[list[str]]:
    rows = []
    for suite in run.suites:
        for agg in suite.aggregates:
            label = agg.name
            model = "-" if agg.kind == "contamination" else (agg.model or suite.model or "-")
            rows.append([_cell(suite.name), _cell(label), _cell(model), _num(agg.value), _ci(agg),
                         _threshold(agg), _verdict(agg), _cell(agg.n or "-")])
            base = agg.details.get("vs_baseline")
            if isinstance(base, dict):
                ci = base.get("ci")
                ci_s = f"[{_num(ci[0])}, {_num(ci[1])}]" if ci else "-"
                rows.append(["", "  baseline", _cell(base.get("model") or "-"), _num(base.get("value")),
                             ci_s, "", "", ""])
                dci = base.get("delta_ci") or [None, None]
                rows.append(["", "  difference", "", f"{base.get('delta', 0):+.3f}",
                             f"[{dci[0]:+.3f}, {dci[1]:+.3f}]" if dci[0] is not None else "-", "", "", ""])
            if agg.kind == "win_rate" and agg.value is not None:
                d = agg.details
                lc_req = d.get("min_lc_win_rate")
                rows.append(["", "  length-controlled", "", _num(d.get("lc_win_rate")), "-",
                             f">= {lc_req:g}" if lc_req is not None else "",
                             ("PASS" if d.get("lc_passed") else "FAIL") if lc_req is not None else "", ""])
            per_category = "failing_categories" in agg.details
            cats = suite.categories.get(agg.name, [])
            for cat in cats if len(cats) > 1 else []:
                rows.append(["", f"  {_cell(cat.category)}", "", _num(cat.value), _ci(cat),
                             _threshold(cat) if per_category else "",
                             _verdict(cat) if per_category else "", _cell(cat.n)])
    return rows


def render_table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r).rstrip() for r in rows]
    return lines


HEADER = ["suite", "gate", "model", "value", "interval", "threshold", "verdict", "n"]


def write_summary(tr: Any, run: RunResult, verbosity: int = 0) -> None:
    all_clear = all(a.verdict not in ("fail", "error", "xpass") for s in run.suites for a in s.aggregates)
    if verbosity < -1 and all_clear:
        return
    tr.section("llmeval summary", sep="=")
    rows = summary_rows(run)
    if rows:
        for line in render_table(rows, HEADER):
            markup = {}
            if line.rstrip().endswith(("FAIL", "ERROR")) or " FAIL " in line or " ERROR " in line:
                markup = {"red": True}
            tr.write_line(line, **markup)
    else:
        tr.write_line("no aggregate gates ran")
    for suite in run.suites:
        for agg in suite.aggregates:
            if agg.kind == "win_rate" and agg.value is not None:
                d = agg.details
                judge = _cell(d.get("judge") or "-")
                tr.write_line(f"{_cell(suite.name)}::{_cell(agg.name)}: judge {judge}, "
                              f"W/L/T {d.get('wins', '-')}/{d.get('losses', '-')}/{d.get('ties', '-')}, "
                              f"position consistency {_pct(d.get('consistency_rate'))}, first-position "
                              f"preference {_pct(d.get('first_position_preference'))}, length-controlled "
                              f"win rate {_num(d.get('lc_win_rate'))}")
    n_cases = sum(len(s.cases) for s in run.suites)
    failed = sum(1 for s in run.suites for c in s.cases if c.status == "failed")
    errors = sum(1 for s in run.suites for c in s.cases if c.status == "error")
    tr.write_line(f"cases: {n_cases} evaluated, {failed} failed checks, {errors} errors")
    warnings = [w for s in run.suites for w in s.warnings]
    for w in warnings:
        tr.write_line(f"warning: {display(w, LINE_LIMIT, multiline=False)}", yellow=True)
    if verbosity >= 0:
        for suite in run.suites:
            for name, report in suite.reports.items():
                tr.write_line(f"{_cell(suite.name)}::{_cell(name)} report:")
                for line in display(report.rstrip(), 20 * LINE_LIMIT).splitlines():
                    tr.write_line("    " + display(line, LINE_LIMIT, multiline=False))
    for model, u in sorted(run.usage.items()):
        if u:
            parts = [f"{k}={v}" for k, v in u.items() if not isinstance(v, dict)]
            cache = u.get("cache") if isinstance(u.get("cache"), dict) else None
            if cache:
                parts += [f"cache.{k}={v}" for k, v in cache.items()]
            if parts:
                tr.write_line(f"usage {_cell(model)}: " + display(", ".join(parts), LINE_LIMIT,
                                                                    multiline=False))
            failover = failover_line(model, u)
            if failover:
                tr.write_line(failover, yellow=bool(u.get("failover_retries")))


def failover_line(model: str, usage: dict[str, Any]) -> str | None:
    """The summary line of a fleet: requests retried from failed endpoints (None for other models)."""
    if not isinstance(usage.get("failover_retries"), int):
        return None
    retried = usage["failover_retries"]
    rerouted = usage.get("failover_reroutes") or 0
    more = f" ({rerouted} more rerouted before they were sent)" if rerouted else ""
    return (f"llmeval: {_cell(model)}: {retried} request{'s' if retried != 1 else ''} retried from failed "
            f"endpoints{more}")
