"""Markdown summaries for CI: the gates, their values and intervals, and the regressions.

:func:`append_github_summary` appends the summary to the file GitHub Actions
names in ``GITHUB_STEP_SUMMARY``, so it shows on the workflow run's page.
GitHub renders HTML inside Markdown, so every text from a run (names, case
ids, outputs) is escaped for both.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from pytest_llmeval import numbers
from pytest_llmeval.compare import CaseChange, Comparison, GateComparison
from pytest_llmeval.report.display import gate_row
from pytest_llmeval.results import AggregateResult, RunResult, SuiteResult
from pytest_llmeval.sanitize import display, escape

MAX_CASES = 5
"""Cases that got worse shown per regressed gate."""
MAX_OUTPUT = 200
"""Characters of an output shown in a table cell."""


def render_markdown(run: RunResult, comparison: Comparison | None = None) -> str:
    """The run's gates in one table (value, interval, base model, difference, threshold, verdict), then
    (with a comparison) the previous run vs this run and the regressions."""
    gates = [a for s in run.suites for a in s.aggregates]
    failed = sum(1 for a in gates if a.verdict in ("fail", "xpass"))
    errors = sum(1 for a in gates if a.verdict == "error")
    icon = ":x:" if failed or errors else ":white_check_mark:"
    lines = [f"## {icon} llmeval: {len(gates)} aggregates, {failed} failed, {errors} errors", ""]
    for suite in run.suites:
        lines.append(f"- {_cell(suite.name)}: {_int(suite.n_cases or len(suite.cases))} cases, "
                     f"model `{_code(suite.model)}`"
                     + (f", {numbers.BASE_MODEL} `{_code(suite.baseline)}`" if suite.baseline else "")
                     + (f"; **suite error:** {_cell(suite.error)}" if suite.error else ""))
    lines.append("")
    if gates:
        lines += [f"| suite | gate | model | value | interval | n | {numbers.BASE_MODEL} | "
                  f"difference to the {numbers.BASE_MODEL} | threshold | verdict |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for suite in run.suites:
            for a in suite.aggregates:
                lines += _aggregate_rows(suite, a)
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


def _aggregate_rows(suite: SuiteResult, a: AggregateResult) -> list[str]:
    """The gate's row (the same texts as the terminal, HTML and JUnit) and its kind's lines under it."""
    r = gate_row(suite, a)
    if a.error:
        verdict = f":warning: ERROR: {_cell(a.error)}"
    elif a.skip:
        verdict = f"SKIP: {_cell(a.skip)}"
    elif a.passed is None:
        verdict = "-"
    elif a.verdict == "xfail":
        verdict = "expected failure"
    else:
        verdict = ":white_check_mark: PASS" if a.verdict == "pass" else f":x: **{r.verdict_text}**"
    base = f"{_cell(r.base_model)} {r.base_value}" if r.base_model else r.base_value
    lines = [f"| {_cell(suite.name)} | {_cell(a.name)} | {_cell(r.model or '-')} | {r.value} | "
             f"{r.interval} | {_int(a.n)} | {base} | {r.difference} | {_cell(r.threshold)} | {verdict} |"]
    for e in r.extra:
        lines.append(f"| | &nbsp;&nbsp;{_cell(e.label)} | | {_cell(e.value)} | {e.interval} | | | | "
                     f"{_cell(e.threshold) or ''} | {e.verdict_text} |")
    return lines


def _comparison_lines(cmp: Comparison) -> list[str]:
    regs = cmp.regressions
    errs = cmp.errors
    head = (f":x: {len(regs)} regressions" if regs
            else ":white_check_mark: no significant regression")
    if errs:
        head += f", :x: {len(errs)} gates that cannot be compared"
    lines = [f"### Comparison with the {numbers.PREVIOUS_RUN}: {head}", "",
             f"Paired one-sided tests, alpha {cmp.alpha:g}, Holm-corrected across the run's gates.",
             ""]
    lines += [f"> :warning: not comparable? {_cell(w)}" for w in cmp.warnings]
    lines += [f"> {_cell(n)}" for n in cmp.notes]
    if cmp.warnings or cmp.notes:
        lines.append("")
    gates = list(cmp.gates)
    if gates:
        lines += [f"| suite | aggregate | {numbers.PREVIOUS_RUN} | this run | difference | test | p | "
                  "Holm p | worse / better | status |",
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
    diff = numbers.estimate(g.delta, *(g.delta_ci or (None, None)), sign=True)
    return (f"| {_cell(g.suite)} | {_cell(g.name)} | {_num(g.old_value)} | {_num(g.new_value)} | "
            f"{diff} | {_cell(g.test)} | {numbers.p_value(g.p_value)} | {numbers.p_value(g.p_adjusted)} | "
            f"{_int(g.n_worse)} / {_int(g.n_better)} | {status} |")


def _regression_details(g: GateComparison) -> list[str]:
    lines = [f"<details><summary><b>{_cell(g.suite)} :: {_cell(g.name)}</b> regressed: "
             f"{_cell(g.reason)}</summary>", ""]
    if g.worse_cases:
        shown = g.worse_cases[:MAX_CASES]
        lines += [f"{_int(g.n_worse)} cases got worse (showing {len(shown)}):", "",
                  f"| case | {numbers.PREVIOUS_RUN} score | this run's score | "
                  f"{numbers.PREVIOUS_RUN} output | this run's output |",
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
    return numbers.number(v)
