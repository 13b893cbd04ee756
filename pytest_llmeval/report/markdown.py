"""Markdown summaries for CI: the gates, their values and intervals, and the regressions.

:func:`append_github_summary` appends the summary to the file GitHub Actions
names in ``GITHUB_STEP_SUMMARY``, so it shows on the workflow run's page.
GitHub renders HTML inside Markdown, so every text from a run (names, case
ids, outputs) is escaped for both.
"""

from __future__ import annotations

import html
import math
import os
from pathlib import Path
from typing import Any

from pytest_llmeval.compare import CaseChange, Comparison, GateComparison
from pytest_llmeval.results import AggregateResult, RunResult
from pytest_llmeval.sanitize import display, escape

MAX_CASES = 5
"""Cases that got worse shown per regressed gate."""
MAX_OUTPUT = 200
"""Characters of an output shown in a table cell."""


def render_markdown(run: RunResult, comparison: Comparison | None = None) -> str:
    """The run's gates per suite, then (with a comparison) old vs new and the regressions."""
    gates = [a for s in run.suites for a in s.aggregates]
    failed = sum(1 for a in gates if a.verdict in ("fail", "xpass"))
    errors = sum(1 for a in gates if a.verdict == "error")
    icon = ":x:" if failed or errors else ":white_check_mark:"
    lines = [f"## {icon} llmeval: {len(gates)} aggregates, {failed} failed, {errors} errors", ""]
    for suite in run.suites:
        lines.append(f"### {_cell(suite.name)} ({_int(suite.n_cases or len(suite.cases))} cases, "
                     f"model `{_code(suite.model)}`)")
        lines.append("")
        if suite.error:
            lines += [f"**suite error:** {_cell(suite.error)}", ""]
        if suite.aggregates:
            lines += ["| aggregate | value | interval | n | threshold | verdict |",
                      "|---|---:|---:|---:|---:|---|"]
            lines += [_aggregate_row(a) for a in suite.aggregates]
            lines.append("")
    if comparison is not None:
        lines += _comparison_lines(comparison)
    return "\n".join(lines).rstrip() + "\n"


def append_github_summary(run: RunResult, comparison: Comparison | None = None) -> bool:
    """Append the summary to ``$GITHUB_STEP_SUMMARY``; ``False`` when it is not set."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    try:
        with Path(target).open("a", encoding="utf-8") as fh:
            fh.write(render_markdown(run, comparison) + "\n")
    except OSError as exc:
        from pytest_llmeval.errors import WriteError

        raise WriteError(f"cannot append the Markdown summary to {target} (GITHUB_STEP_SUMMARY): "
                         f"{exc.strerror or exc}") from exc
    return True


def _aggregate_row(a: AggregateResult) -> str:
    ci = f"[{_num(a.ci[0])}, {_num(a.ci[1])}]" if a.ci else "-"
    thr = ("-" if a.threshold is None
           else ("&ge; " if a.op == "min" else "&le; ") + _num(a.threshold))
    if a.error:
        verdict = f":warning: ERROR: {_cell(a.error)}"
    elif a.passed is None:
        verdict = "-"
    elif a.verdict == "xfail":
        verdict = "expected failure"
    else:
        verdict = ":white_check_mark: pass" if a.passed else ":x: **FAIL**"
    return f"| {_cell(a.name)} | {_num(a.value)} | {ci} | {_int(a.n)} | {thr} | {verdict} |"


def _comparison_lines(cmp: Comparison) -> list[str]:
    regs = cmp.regressions
    errs = cmp.errors
    head = (f":x: {len(regs)} regressions" if regs
            else ":white_check_mark: no significant regression")
    if errs:
        head += f", :x: {len(errs)} gates that cannot be compared"
    lines = [f"### Comparison with the baseline run: {head}", "",
             f"Paired one-sided tests, alpha {cmp.alpha:g}, Holm-corrected across the run's gates.",
             ""]
    lines += [f"> :warning: not comparable? {_cell(w)}" for w in cmp.warnings]
    lines += [f"> {_cell(n)}" for n in cmp.notes]
    if cmp.warnings or cmp.notes:
        lines.append("")
    gates = list(cmp.gates)
    if gates:
        lines += ["| suite | aggregate | baseline | this run | &Delta; | test | p | Holm p | "
                  "worse / better | status |",
                  "|---|---|---:|---:|---:|---|---:|---:|---:|---|"]
        lines += [_gate_row(g) for g in gates]
        lines.append("")
    for name in cmp.missing_suites:
        lines.append(f"- suite {_cell(name)}: missing from this run")
    for name in cmp.new_suites:
        lines.append(f"- suite {_cell(name)}: new in this run")
    for s in cmp.suites:
        if s.missing_cases:
            lines.append(f"- {_cell(s.name)}: {len(s.missing_cases)} cases missing from this run: "
                         f"{_ids(s.missing_cases)}")
        if s.new_cases:
            lines.append(f"- {_cell(s.name)}: {len(s.new_cases)} new cases: {_ids(s.new_cases)}")
    if lines[-1] != "":
        lines.append("")
    for g in regs:
        lines += _regression_details(g)
    return lines


def _gate_row(g: GateComparison) -> str:
    status = (":x: **ERROR**: " + _cell(g.error) if g.status == "error"
              else ":x: **REGRESSED**" if g.regressed else ":arrow_up: improved" if g.improved else "ok")
    return (f"| {_cell(g.suite)} | {_cell(g.name)} | {_num(g.old_value)} | {_num(g.new_value)} | "
            f"{_signed(g.delta)} | {_cell(g.test)} | {_num(g.p_value)} | {_num(g.p_adjusted)} | "
            f"{_int(g.n_worse)} / {_int(g.n_better)} | {status} |")


def _regression_details(g: GateComparison) -> list[str]:
    lines = [f"<details><summary><b>{_cell(g.suite)} :: {_cell(g.name)}</b> regressed: "
             f"{_cell(g.reason)}</summary>", ""]
    if g.worse_cases:
        shown = g.worse_cases[:MAX_CASES]
        lines += [f"{_int(g.n_worse)} cases got worse (showing {len(shown)}):", "",
                  "| case | baseline score | new score | baseline output | new output |",
                  "|---|---:|---:|---|---|"]
        lines += [_change_row(c) for c in shown]
        lines.append("")
    lines += ["</details>", ""]
    return lines


def _change_row(c: CaseChange) -> str:
    return (f"| {_cell(c.id)} | {_num(c.old_score)} | {_num(c.new_score)} | "
            f"{_cell(_cut(c.old_output))} | {_cell(_cut(c.new_output))} |")


def _cut(text: str | None) -> str:
    if text is None:
        return "(no output)"
    return display(text, MAX_OUTPUT)


def _int(v: Any) -> str:
    return str(v) if isinstance(v, int) and not isinstance(v, bool) else "-"


def _cell(text: Any) -> str:
    """Escape untrusted text for a Markdown table cell (and the HTML GitHub renders in it)."""
    s = html.escape(escape("" if text is None else str(text), multiline=True), quote=False)
    for ch in "\\`*_[]|#~":
        s = s.replace(ch, "\\" + ch)
    return s.replace("\n", "<br>").replace("\t", " ")


def _code(text: Any) -> str:
    return escape("" if text is None else str(text), multiline=False).replace("`", "'")


def _ids(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(_cell(i) for i in ids[:limit])
    return shown + (f", ... (+{len(ids) - limit})" if len(ids) > limit else "")


def _num(v: Any) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        return "-"
    return f"{v:.4g}"


def _signed(v: Any) -> str:
    return _num(v) if _num(v) == "-" else f"{v:+.4g}"
