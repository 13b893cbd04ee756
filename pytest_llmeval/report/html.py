"""The self-contained HTML report (``--llmeval-html``).

One file, no network: the CSS and the small filtering/sorting script are
inlined, and every chart is an SVG drawn here in Python. Every model output
and case field is untrusted text, so all of it goes through :func:`_e`
(HTML escaping) and none of it reaches a script or a style. A Content
Security Policy that only allows the report's own script (by its hash) keeps
an escaping slip from ever running injected code.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_llmeval.compare import Comparison, GateComparison, SuiteComparison, case_value
from pytest_llmeval.fileio import write_atomic
from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult
from pytest_llmeval.sanitize import escape

MAX_TEXT = 20_000
"""Characters of one output/prompt shown in the case table (the results file has them all)."""


def write_html(run: RunResult, path: str | os.PathLike[str], *,
               comparison: Comparison | None = None, baseline: RunResult | None = None) -> None:
    """Write the report for ``run`` to ``path`` atomically (temp file, then rename).

    Args:
        run: the run to report.
        path: the HTML file to write; parent folders are created.
        comparison: the result of comparing ``run`` with ``baseline``, for the comparison view.
        baseline: the baseline run, so the case table can show its outputs beside the new ones.

    Raises:
        WriteError: the file could not be written (disk full, read-only...); nothing partial is left.
    """
    write_atomic(Path(path), render_html(run, comparison=comparison, baseline=baseline),
                 what="HTML report")


def render_html(run: RunResult, *, comparison: Comparison | None = None,
                baseline: RunResult | None = None) -> str:
    """The report as one HTML string (see :func:`write_html`)."""
    css = _asset("report.css")
    js = _asset("report.js")
    script_hash = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode()
    csp = (f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
           f"script-src 'sha256-{script_hash}'; form-action 'none'; base-uri 'none'")
    base_by_file = {(s.file, s.name): s for s in baseline.suites} if baseline else {}
    names = [s.name for s in baseline.suites] if baseline else []
    base_by_name = {s.name: s for s in baseline.suites if names.count(s.name) == 1} if baseline else {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>llmeval report</title>",
        f"<style>{css}</style></head><body>",
        _header(run, comparison, baseline),
    ]
    for suite in run.suites:
        suite_cmp = comparison.suite(suite.file, suite.name) if comparison else None
        base = base_by_file.get((suite.file, suite.name)) or base_by_name.get(suite.name)
        parts.append(_suite_section(suite, base, suite_cmp))
    parts.append(f"<script>{js}</script></body></html>")
    return "\n".join(parts)


def _asset(name: str) -> str:
    return resources.files("pytest_llmeval.report").joinpath(name).read_text(encoding="utf-8")


def _e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute (control characters shown as escapes)."""
    return html.escape(escape("" if value is None else str(value)), quote=True)


def _header(run: RunResult, comparison: Comparison | None, baseline: RunResult | None) -> str:
    out = ["<h1>llmeval report</h1>",
           f'<p class="meta">run {_e(run.created)} &middot; '
           f"pytest-llmevals {_e(run.plugin_version)}"
           + (f" &middot; baseline run {_e(baseline.created)}" if baseline else "") + "</p>"]
    gates = [a for s in run.suites for a in s.aggregates if a.passed is not None or a.error]
    failed = sum(1 for a in gates if a.verdict in ("fail", "xpass"))
    errors = sum(1 for a in gates if a.verdict == "error")
    expected = sum(1 for a in gates if a.verdict == "xfail")
    kind = "fail" if failed or errors else "pass"
    xf = f", {expected} expected failures" if expected else ""
    out.append(f'<div class="banner {kind}">{len(gates)} gates: {len(gates) - failed - errors - expected} '
               f"passed, {failed} failed, {errors} errors{xf}</div>")
    if comparison is not None:
        regs = comparison.regressions
        errs = comparison.errors
        kind = "fail" if regs or errs else "pass"
        text = (f"{len(regs)} regressions against the baseline: "
                + ", ".join(_e(g.label) for g in regs)) if regs else (
            "no significant regression against the baseline")
        if errs:
            text += (f"; {len(errs)} gates cannot be compared: "
                     + ", ".join(_e(g.label) for g in errs))
        out.append(f'<div class="banner {kind}">{text} (alpha {comparison.alpha:g}, '
                   "Holm-corrected)</div>")
        for w in comparison.warnings:
            out.append(f'<div class="banner warn">not comparable? {_e(w)}</div>')
        for n in comparison.notes:
            out.append(f'<div class="banner">{_e(n)}</div>')
        if comparison.missing_suites or comparison.new_suites:
            missing = ", ".join(comparison.missing_suites) or "none"
            new = ", ".join(comparison.new_suites) or "none"
            out.append(f'<p class="muted">suites missing from this run: {_e(missing)}; '
                       f"new suites: {_e(new)}</p>")
    if run.models:
        rows = "".join(
            f"<tr><td>{_e(name)}</td><td>{_e(d.get('scheme', ''))}:{_e(d.get('target', ''))}</td>"
            f"<td><code>{_e(str(d.get('fingerprint', ''))[:16])}</code></td></tr>"
            for name, d in run.models.items())
        out.append("<details><summary>models</summary><table><tr><th>name</th><th>reference</th>"
                   f"<th>fingerprint</th></tr>{rows}</table></details>")
    return "\n".join(out)


def _suite_section(suite: SuiteResult, base: SuiteResult | None,
                   cmp: SuiteComparison | None) -> str:
    out = [f'<section class="suite" id="suite-{_e(suite.name)}">',
           f"<h2>{_e(suite.name)}</h2>",
           f'<p class="meta">{_e(suite.file)} &middot; model {_e(suite.model)}'
           + (f" &middot; baseline model {_e(suite.baseline)}" if suite.baseline else "")
           + f" &middot; {_e(suite.n_cases or len(suite.cases))} cases</p>"]
    if suite.error:
        out.append(f'<div class="banner fail">suite error: {_e(suite.error)}</div>')
    out.extend(f'<div class="banner warn">{_e(w)}</div>' for w in suite.warnings)
    if suite.aggregates:
        out.append(_aggregate_table(suite.aggregates))
        charts = [_interval_chart(suite.aggregates, base)]
        charts.extend(_win_tie_loss_chart(a, suite) for a in suite.aggregates
                      if a.kind == "win_rate")
        out.append('<h3>aggregates</h3><div class="charts">' + "".join(charts) + "</div>")
    dists = _distribution_charts(suite)
    if dists:
        out.append('<h3>score distributions</h3><div class="charts">' + "".join(dists) + "</div>")
    if cmp is not None:
        out.append(_comparison_view(cmp))
    for name, report in suite.reports.items():
        out.append(f"<details><summary>{_e(name)}</summary><pre>{_e(report)}</pre></details>")
    if suite.cases:
        out.append(_case_table(suite, base))
    out.append("</section>")
    return "\n".join(out)


def _verdict(a: AggregateResult) -> str:
    v = a.verdict
    if v == "error":
        return '<span class="error">ERROR</span>'
    if v in ("none", "skip"):
        return '<span class="muted">-</span>' if v == "none" else '<span class="muted">SKIP</span>'
    if v == "xfail":
        return '<span class="muted">XFAIL (expected)</span>'
    if v == "partial":  # a shard's value of a split suite: llmeval merge decides
        return '<span class="muted">PARTIAL</span>'
    return '<span class="pass">PASS</span>' if v == "pass" else f'<span class="fail">{v.upper()}</span>'


def _aggregate_table(aggs: Sequence[AggregateResult]) -> str:
    rows = []
    for a in aggs:
        ci = f"[{_fmt(a.ci[0])}, {_fmt(a.ci[1])}]" if a.ci else "-"
        thr = ("-" if a.threshold is None
               else ("&ge; " if a.op == "min" else "&le; ") + _fmt(a.threshold))
        detail = _e(a.error) if a.error else _e(a.method or "")
        rows.append(f"<tr><td>{_e(a.name)}</td><td class=num>{_fmt(a.value)}</td>"
                    f"<td class=num>{ci}</td><td class=num>{_e(a.n)}</td><td class=num>{thr}</td>"
                    f"<td>{_verdict(a)}</td><td class=muted>{detail}</td></tr>")
    return ("<table><tr><th>aggregate</th><th>value</th><th>interval</th><th>n</th>"
            "<th>threshold</th><th>verdict</th><th></th></tr>" + "".join(rows) + "</table>")


def _interval_chart(aggs: Sequence[AggregateResult], base: SuiteResult | None) -> str:
    """A forest plot: one row per aggregate, its value, interval, threshold and baseline value."""
    old = {a.name: a.value for a in base.aggregates} if base else {}
    shown = [a for a in aggs if _finite(a.value)]
    if not shown:
        return ""
    label_w, plot_w, row_h, top = 190, 360, 28, 18
    height = top + row_h * len(shown) + 8
    parts = [f'<svg class="intervals" role="img" width="{label_w + plot_w + 70}" height="{height}" '
             f'viewBox="0 0 {label_w + plot_w + 70} {height}"><title>aggregates with intervals'
             "</title>"]
    if base:
        parts.append(f'<text x="{label_w}" y="11" fill="#57606a">&#9675; baseline run value</text>')
    for i, a in enumerate(shown):
        values = [a.value, a.threshold, old.get(a.name), *(a.ci or ())]
        lo, hi = _scale(v for v in values if _finite(v))
        y = top + row_h * i + row_h / 2

        def x(v: float, lo: float = lo, hi: float = hi) -> float:
            return label_w + (v - lo) / (hi - lo) * plot_w

        colour = "#cf222e" if a.passed is False else "#1a7f37" if a.passed else "#0969da"
        parts.append(f'<text x="{label_w - 8}" y="{y + 4}" text-anchor="end">{_e(a.name)}</text>')
        parts.append(f'<line x1="{label_w}" x2="{label_w + plot_w}" y1="{y}" y2="{y}" '
                     'stroke="#d0d7de"/>')
        parts.append(f'<text x="{label_w}" y="{y + 13}" fill="#57606a">{_fmt(lo)}</text>'
                     f'<text x="{label_w + plot_w}" y="{y + 13}" text-anchor="end" '
                     f'fill="#57606a">{_fmt(hi)}</text>')
        if a.ci and _finite(a.ci[0]) and _finite(a.ci[1]):
            parts.append(f'<line class="ci" x1="{x(a.ci[0]):.1f}" x2="{x(a.ci[1]):.1f}" y1="{y}" '
                         f'y2="{y}" stroke="{colour}" stroke-width="4" stroke-linecap="round"/>')
        if _finite(a.threshold):
            tx = x(a.threshold)  # type: ignore[arg-type]
            parts.append(f'<line class="threshold" x1="{tx:.1f}" x2="{tx:.1f}" y1="{y - 9}" '
                         f'y2="{y + 9}" stroke="#1f2328" stroke-dasharray="2,2"/>')
        b = old.get(a.name)
        if _finite(b):
            parts.append(f'<circle cx="{x(b):.1f}" cy="{y}" r="5" fill="none" '  # type: ignore[arg-type]
                         'stroke="#57606a" stroke-width="1.5"/>')
        parts.append(f'<circle class="value" cx="{x(a.value):.1f}" cy="{y}" r="5" '  # type: ignore[arg-type]
                     f'fill="{colour}"><title>{_e(a.name)} {_fmt(a.value)}</title></circle>')
        parts.append(f'<text x="{label_w + plot_w + 8}" y="{y + 4}">{_fmt(a.value)}</text>')
    parts.append("</svg>")
    return f'<figure class="chart"><figcaption>value, interval, threshold (dashed)</figcaption>' \
           f'{"".join(parts)}</figure>'


def _win_tie_loss_chart(a: AggregateResult, suite: SuiteResult) -> str:
    """A stacked bar of wins, ties and losses of one pairwise judge gate."""
    counts = _win_tie_loss(a, suite)
    total = sum(counts)
    if not total:
        return ""
    width, bar = 360, 22
    parts = [f'<svg class="wtl" role="img" width="{width}" height="56"><title>{_e(a.name)}'
             " wins, ties, losses</title>"]
    x0 = 0.0
    for label, n, colour in zip(("wins", "ties", "losses"), counts,
                                ("#1a7f37", "#8c959f", "#cf222e"), strict=True):
        w = n / total * width
        if w > 0:
            parts.append(f'<rect x="{x0:.1f}" y="4" width="{w:.1f}" height="{bar}" fill="{colour}">'
                         f"<title>{label}: {n}</title></rect>")
        x0 += w
    parts.append(f'<text x="0" y="44">wins {counts[0]} &middot; ties {counts[1]} &middot; '
                 f"losses {counts[2]}</text></svg>")
    return f'<figure class="chart"><figcaption>{_e(a.name)}</figcaption>{"".join(parts)}</figure>'


def _win_tie_loss(a: AggregateResult, suite: SuiteResult) -> tuple[int, int, int]:
    d = a.details
    if all(isinstance(d.get(k), int) for k in ("wins", "ties", "losses")):
        return d["wins"], d["ties"], d["losses"]
    values = [case_value(c, a, suite) for c in suite.cases]
    return (sum(1 for v in values if v == 1.0), sum(1 for v in values if v == 0.5),
            sum(1 for v in values if v == 0.0))


def _distribution_charts(suite: SuiteResult, bins: int = 10) -> list[str]:
    """One histogram per per-case score (and per judge score) across the suite's cases."""
    series: dict[str, list[float]] = {}
    for c in suite.cases:
        for k, v in c.scores.items():
            if _finite(v):
                series.setdefault(k, []).append(float(v))  # type: ignore[arg-type]
        score = _judge_score(c.judge)
        if score is not None:
            series.setdefault("judge score", []).append(score)
    charts = []
    for name, values in series.items():
        lo, hi = min(values), max(values)
        distinct = sorted(set(values))
        if len(distinct) <= bins:
            edges_labels = [_fmt(v) for v in distinct]
            counts = [values.count(v) for v in distinct]
        else:
            step = (hi - lo) / bins
            counts = [0] * bins
            for v in values:
                counts[min(bins - 1, int((v - lo) / step))] += 1
            edges_labels = [_fmt(lo + step * i) for i in range(bins)]
        charts.append(_bar_chart(name, edges_labels, counts, lo, hi))
    return charts


def _bar_chart(name: str, labels: list[str], counts: list[int], lo: float, hi: float) -> str:
    width, height, pad = 260, 120, 16
    top = max(counts) or 1
    bw = (width - 2) / len(counts)
    parts = [f'<svg class="hist" role="img" width="{width}" height="{height + pad + 4}">'
             f"<title>distribution of {_e(name)}</title>"]
    for i, (label, n) in enumerate(zip(labels, counts, strict=True)):
        h = n / top * (height - 14)
        parts.append(f'<rect x="{1 + i * bw:.1f}" y="{height - h:.1f}" '
                     f'width="{max(1.0, bw - 2):.1f}" height="{h:.1f}" fill="#0969da">'
                     f"<title>{_e(label)}: {n}</title></rect>")
    parts.append(f'<text x="1" y="{height + pad}">{_fmt(lo)}</text>'
                 f'<text x="{width - 1}" y="{height + pad}" text-anchor="end">{_fmt(hi)}</text>'
                 f'<text x="{width / 2}" y="{height + pad}" text-anchor="middle" fill="#57606a">'
                 f"n={sum(counts)}</text></svg>")
    return f'<figure class="chart"><figcaption>{_e(name)}</figcaption>{"".join(parts)}</figure>'


def _comparison_view(cmp: SuiteComparison) -> str:
    """Old vs new per gate, with the paired test, and the cases present in one run only."""
    rows = []
    for g in cmp.gates:
        status = ('<span class="fail">ERROR</span>' if g.status == "error"
                  else '<span class="fail">REGRESSED</span>' if g.regressed
                  else '<span class="pass">improved</span>' if g.improved else "ok")
        rows.append(
            f"<tr><td>{_e(g.name)}</td><td class=num>{_fmt(g.old_value)}</td>"
            f"<td class=num>{_fmt(g.new_value)}</td><td class=num>{_signed(g.delta)}</td>"
            f"<td>{_e(g.test)}</td><td class=num>{_fmt(g.p_value)}</td>"
            f"<td class=num>{_fmt(g.p_adjusted)}</td><td class=num>{_e(g.n_worse)} / {_e(g.n_better)}</td>"
            f"<td>{status}</td><td class=muted>{_e(g.error or g.reason)}</td></tr>")
    out = ["<h3>comparison with the baseline run</h3>",
           "<table class=comparison><tr><th>aggregate</th><th>baseline</th><th>this run</th>"
           "<th>&Delta;</th><th>paired test</th><th>p (worse)</th><th>Holm p</th>"
           "<th>worse / better cases</th><th>status</th><th></th></tr>"
           + "".join(rows) + "</table>"]
    chart = _delta_chart(cmp.gates)
    if chart:
        out.append(f'<div class="charts">{chart}</div>')
    out.extend(f'<div class="banner warn">{_e(w)}</div>' for w in cmp.warnings)
    if cmp.missing_cases:
        out.append(f"<p>{len(cmp.missing_cases)} cases missing from this run: "
                   f"{_e(', '.join(cmp.missing_cases))}</p>")
    if cmp.new_cases:
        out.append(f"<p>{len(cmp.new_cases)} new cases (not compared): "
                   f"{_e(', '.join(cmp.new_cases))}</p>")
    return "\n".join(out)


def _delta_chart(gates: list[GateComparison]) -> str:
    """Baseline value to new value per gate, as arrows on each gate's own scale."""
    shown = [g for g in gates if _finite(g.old_value) and _finite(g.new_value)]
    if not shown:
        return ""
    label_w, plot_w, row_h = 190, 360, 24
    height = row_h * len(shown) + 8
    parts = [f'<svg class="deltas" role="img" width="{label_w + plot_w + 20}" height="{height}">'
             "<title>baseline to new value per gate</title>"]
    for i, g in enumerate(shown):
        lo, hi = _scale([g.old_value, g.new_value])  # type: ignore[list-item]
        y = row_h * i + row_h / 2 + 4
        xo = label_w + (g.old_value - lo) / (hi - lo) * plot_w  # type: ignore[operator]
        xn = label_w + (g.new_value - lo) / (hi - lo) * plot_w  # type: ignore[operator]
        colour = "#cf222e" if g.regressed else "#1a7f37" if g.improved else "#57606a"
        parts.append(f'<text x="{label_w - 8}" y="{y + 4}" text-anchor="end">{_e(g.name)}</text>'
                     f'<line x1="{label_w}" x2="{label_w + plot_w}" y1="{y}" y2="{y}" '
                     'stroke="#d0d7de"/>'
                     f'<line x1="{xo:.1f}" x2="{xn:.1f}" y1="{y}" y2="{y}" stroke="{colour}" '
                     'stroke-width="3"/>'
                     f'<circle cx="{xo:.1f}" cy="{y}" r="4" fill="#fff" stroke="#57606a"/>'
                     f'<circle cx="{xn:.1f}" cy="{y}" r="4" fill="{colour}"/>')
    parts.append("</svg>")
    return (f'<figure class="chart"><figcaption>baseline (hollow) to this run (filled)</figcaption>'
            f'{"".join(parts)}</figure>')


def _case_table(suite: SuiteResult, base: SuiteResult | None) -> str:
    score_keys: list[str] = []
    for c in suite.cases:
        score_keys.extend(k for k in c.scores if k not in score_keys)
    has_baseline_model = any(c.baseline_output is not None for c in suite.cases)
    has_judge = any(c.judge for c in suite.cases)
    has_category = any(c.category for c in suite.cases)
    base_cases = {c.id: c for c in base.cases} if base else {}
    lower_better = {a.metric or a.name for a in suite.aggregates if a.op == "max"} | {
        a.name for a in suite.aggregates if a.op == "max"}
    headers = ["id", "status"] + (["category"] if has_category else []) + ["prompt", "output"]
    if has_baseline_model:
        headers.append(f"output of {suite.baseline or 'baseline model'}")
    if base:
        headers.append("baseline run output")
    headers.append("reference")
    headers.extend(score_keys)
    if has_judge:
        headers.append("judge")
    statuses = sorted({c.status for c in suite.cases})
    controls = ['<div class="controls"><input type="search" class="f-text" '
                'placeholder="filter cases (any text)" aria-label="filter cases">',
                '<select class="f-status" aria-label="status"><option value="">any status</option>'
                + "".join(f'<option value="{_e(s)}">{_e(s)}</option>' for s in statuses)
                + "</select>"]
    if base:
        controls.append('<select class="f-change" aria-label="change vs baseline">'
                        '<option value="">any change</option><option value="worse">worse</option>'
                        '<option value="better">better</option><option value="same">same</option>'
                        '<option value="new">new</option></select>')
    controls.append('<span class="f-count muted"></span></div>')
    rows = []
    for c in suite.cases:
        old = base_cases.get(c.id)
        change = _case_change(c, old, lower_better) if base else ""
        cells = [f'<td class="id">{_e(c.id)}</td>',
                 f'<td><span class="tag">{_e(c.status)}</span>'
                 + (f"<div class=muted>{_e(c.error)}</div>" if c.error else "") + "</td>"]
        if has_category:
            cells.append(f"<td>{_e(c.category)}</td>")
        cells.append(_text_cell(_prompt_text(c.prompt)))
        cells.append(_text_cell(c.output))
        if has_baseline_model:
            cells.append(_text_cell(c.baseline_output))
        if base:
            cells.append(_text_cell(old.output if old else None, "(not in the baseline run)"))
        cells.append(_text_cell(_reference_text(c.reference)))
        for k in score_keys:
            v = c.scores.get(k)
            was = old.scores.get(k) if old else None
            extra = (f' <span class="muted">(was {_fmt(was)})</span>'
                     if _finite(was) and _finite(v) and was != v else "")
            sort_v = _e(v) if _finite(v) else ""
            cells.append(f'<td class="num" data-v="{sort_v}">{_fmt(v)}{extra}</td>')
        if has_judge:
            cells.append(_judge_cell(c.judge))
        attrs = f' data-status="{_e(c.status)}"' + (
            f' data-change="{change}" class="{change}"' if change else "")
        rows.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    return ("<h3>cases</h3>" + "".join(controls)
            + f'<div class="table-wrap"><table class="cases"><thead><tr>{head}</tr></thead><tbody>'
            + "\n".join(rows) + "</tbody></table></div>")


def _case_change(case: CaseResult, old: CaseResult | None, lower_better: set[str]) -> str:
    """``worse`` if any per-case score dropped since the baseline run, else better/same/new."""
    if old is None:
        return "new"
    worse = better = False
    for k, v in case.scores.items():
        was = old.scores.get(k)
        if not (_finite(v) and _finite(was)) or v == was:
            continue
        up = v > was  # type: ignore[operator]
        if (up and k not in lower_better) or (not up and k in lower_better):
            better = True
        else:
            worse = True
    return "worse" if worse else "better" if better else "same"


def _text_cell(text: str | None, empty: str = "") -> str:
    if text is None:
        return f'<td class="text muted">{_e(empty)}</td>'
    if len(text) > MAX_TEXT:
        more = len(text) - MAX_TEXT
        text = text[:MAX_TEXT] + f"\n... ({more:,} more characters cut; the results file has them)"
    return f'<td class="text"><div>{_e(text)}</div></td>'


def _prompt_text(prompt: Any) -> str | None:
    if prompt is None or isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(m, dict) for m in prompt):
        return "\n".join(f"[{m.get('role', '?')}] {m.get('content', '')}" for m in prompt)
    return json.dumps(prompt, ensure_ascii=False, default=str)


def _reference_text(reference: Any) -> str | None:
    if reference is None or isinstance(reference, str):
        return reference
    if isinstance(reference, list):
        return "\n".join(f"- {r}" for r in reference)
    return json.dumps(reference, ensure_ascii=False, default=str)


def _judge_cell(judge: dict[str, Any]) -> str:
    if not judge:
        return "<td></td>"
    lines = []
    for k, v in judge.items():
        text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
        lines.append(f"<b>{_e(k)}</b>: {_e(text)}")
    score = _judge_score(judge)
    sort_attr = f' data-v="{_e(score)}"' if score is not None else ""
    return f'<td class="text"{sort_attr}><div>{"<br>".join(lines)}</div></td>'


def _judge_score(judge: dict[str, Any] | None) -> float | None:
    """The judge's 1-10 score of a case: ``judge["score"]``, itself a number or a verdict dict."""
    score = (judge or {}).get("score")
    if isinstance(score, dict):
        score = score.get("score")
    return float(score) if isinstance(score, (int, float)) and _finite(score) else None


def _scale(values: Iterable[float]) -> tuple[float, float]:
    """An axis range: [0, 1] for rates, else padded around the values (judge scores 1-10...)."""
    vals = [float(v) for v in values]
    lo, hi = min(vals), max(vals)
    if lo >= 0 and hi <= 1:
        return 0.0, 1.0
    if lo >= 0 and hi <= 10:
        return 0.0, 10.0
    pad = (hi - lo) * 0.1 or abs(hi) * 0.1 or 1.0
    return lo - pad, hi + pad


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: Any) -> str:
    return _e(f"{v:.4g}") if _finite(v) else "-"


def _signed(v: Any) -> str:
    return _e(f"{v:+.4g}") if _finite(v) else "-"
