"""What every report shows for an aggregate, as text in the shared number format.

The HTML and Markdown reports (and the JUnit properties, through :mod:`pytest_llmeval.numbers`)
build their gate rows here, so a value, its interval, the base model's value and the
difference read the same in each. The lines under a gate's row come from its kind
(:meth:`pytest_llmeval.gates.base.Gate.display_rows`), looked up by ``AggregateResult.kind``,
with a generic fallback for kinds that are not registered here (a results file from a run
with a plugin that this environment lacks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pytest_llmeval import numbers
from pytest_llmeval.gates.base import DisplayRow, generic_display_rows
from pytest_llmeval.results import AggregateResult, SuiteResult


@dataclass(frozen=True)
class GateRow:
    """One gate (or per-category aggregate) as the reports show it; every number already formatted."""

    suite: str
    gate: str
    kind: str
    model: str
    value: str
    interval: str
    base_model: str
    base_value: str
    difference: str
    threshold: str
    verdict: str
    """``pass``, ``fail``, ``error``, ``skip``, ``xfail``, ``xpass`` or ``none`` (a CSS class too)."""
    verdict_text: str
    """``PASS``, ``FAIL``, ``ERROR``... or ``-`` for an aggregate without a threshold."""
    n: str
    note: str = ""
    category: str = ""
    extra: list[ExtraRow] = field(default_factory=list)


@dataclass(frozen=True)
class ExtraRow:
    """A line under a gate's row (from its kind's :meth:`display_rows`), formatted."""

    label: str
    value: str
    interval: str
    threshold: str
    verdict: str
    verdict_text: str
    text: bool = False
    """The value is a text (a sandbox's layers, W/L/T), not a number: shown left-aligned, wrapped."""


def threshold_text(agg: AggregateResult) -> str:
    """``>= 0.6``, ``<= 900``, with `` (CI)`` when the gate is decided on its interval's bound."""
    if agg.threshold is None:
        return numbers.MISSING
    sign = ">=" if agg.op == "min" else "<="
    return f"{sign} {numbers.threshold(agg.threshold)}" + (" (CI)" if agg.confidence is not None else "")


def verdict_text(verdict: str | None) -> str:
    return numbers.MISSING if verdict in (None, "none") else str(verdict).upper()


def value_text(value: Any, style: str = "number") -> str:
    """A display row's value: a number, share, p value, or text as given."""
    if style == "text":
        return numbers.MISSING if value is None else str(value)
    if style == "percent":
        return numbers.percent(value)
    if style == "p_value":
        return numbers.p_value(value)
    return numbers.number(value)


def kind_rows(agg: AggregateResult) -> list[DisplayRow]:
    """The kind's own lines for ``agg`` (the registry's class by ``agg.kind``, or the generic fallback)."""
    if agg.kind == "category" or agg.error or agg.skip:
        return []
    try:
        from pytest_llmeval.gates.registry import gate_kind

        cls = gate_kind(agg.kind)
    except Exception:  # noqa: BLE001 - an unknown or unloadable kind still shows its numbers
        return generic_display_rows(agg)
    try:
        return list(cls.display_rows(agg))
    except Exception:  # noqa: BLE001 - a kind's display must never break the report
        return generic_display_rows(agg)


def base_model_texts(agg: AggregateResult) -> tuple[str, str, str]:
    """(base model name, its value with interval, the difference with its signed interval)."""
    vs = agg.details.get("vs_baseline")
    if not isinstance(vs, dict) or "value" not in vs:
        return "", numbers.MISSING, numbers.MISSING
    ci = vs.get("ci") or (None, None)
    dci = vs.get("delta_ci") or (None, None)
    return (str(vs.get("model") or ""), numbers.estimate(vs.get("value"), *ci),
            numbers.estimate(vs.get("delta"), *dci, sign=True))


def gate_row(suite: SuiteResult, agg: AggregateResult) -> GateRow:
    """``agg`` of ``suite`` as text: the overview's row, with its kind's lines under it."""
    base_name, base_value, difference = base_model_texts(agg)
    extra = [ExtraRow(r.label, value_text(r.value, r.style),
                      numbers.interval(*r.ci) if r.ci else "",
                      r.threshold or "", r.verdict or "none",
                      verdict_text(r.verdict) if r.verdict else "", text=r.style == "text")
             for r in kind_rows(agg) if r.value is not None or r.threshold]
    model = "" if agg.kind == "contamination" else (agg.model or suite.model or "")
    return GateRow(
        suite=suite.name, gate=agg.name if agg.category is None else f"{agg.name} [{agg.category}]",
        kind=agg.kind, model=model, value=numbers.number(agg.value),
        interval=numbers.interval(*agg.ci) if agg.ci else numbers.MISSING,
        base_model=base_name, base_value=base_value, difference=difference,
        threshold=threshold_text(agg), verdict=agg.verdict, verdict_text=verdict_text(agg.verdict),
        n=str(agg.n) if agg.n else numbers.MISSING, note=agg.error or agg.skip or "",
        category=agg.category or "", extra=extra)
