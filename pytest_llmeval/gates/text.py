"""Text shared by gate messages: an estimate in one line, a case with its prompt, output and reference."""

from __future__ import annotations

from typing import Any

from pytest_llmeval import numbers
from pytest_llmeval.results import AggregateResult, CaseResult
from pytest_llmeval.sanitize import display

SHOW_CHARS = 300


def short(value: Any, limit: int = SHOW_CHARS) -> str:
    """Model text (or chat messages) for a message: control characters escaped, cut with the count cut."""
    if isinstance(value, list) and all(isinstance(m, dict) for m in value):
        s = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in value)
    else:
        s = value if isinstance(value, str) else repr(value)
    return display(s, limit)


def indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in str(text).splitlines() or [""])


def fmt(v: float | None) -> str:
    """A value in the shared number format (:func:`pytest_llmeval.numbers.number`): ``-`` when missing."""
    return numbers.number(v)


def format_case(case: CaseResult, score: float | None = None, metric: str | None = None) -> str:
    head = f"  case[{case.id}]" + (f"  {metric} = {fmt(score)}" if score is not None and metric else "")
    parts = [head, "    prompt:", indent(short(case.prompt)), "    output:", indent(short(case.output))]
    if case.reference is not None:
        parts += ["    reference:", indent(short(case.reference))]
    return "\n".join(parts)


def threshold_rule(op: str, threshold: float, confidence: float | None) -> str:
    """What a gate requires, in words: the value, or its interval's bound when the gate has a confidence."""
    sign = ">=" if op == "min" else "<="
    if confidence is None:
        return f"required: {sign} {numbers.threshold(threshold)}"
    bound = "lower bound" if op == "min" else "upper bound"
    return (f"the interval's {bound} must be {sign} {numbers.threshold(threshold)} "
            f"(confidence {confidence:g})")


def describe_estimate(agg: AggregateResult) -> str:
    """``name = 0.643 (95% CI [0.598, 0.688], wilson, n=40)``, plus the base model's value and the
    difference with its interval when the gate compared with one: the same texts as every report."""
    ci = agg.ci
    conf = agg.details.get("interval_confidence", agg.confidence or 0.95)
    ci_s = f"{int(round(conf * 100))}% CI {numbers.interval(*ci)}, " if ci else ""
    text = f"{agg.name} = {fmt(agg.value)} ({ci_s}{agg.method or ''}, n={agg.n})"
    base = base_model_line(agg)
    return text + ("\n" + base if base else "")


def base_model_line(agg: AggregateResult) -> str:
    """``base model base = 0.550 [0.49, 0.61]; difference +0.093 [+0.041, +0.144]``, or ``""``."""
    vs = agg.details.get("vs_baseline")
    if not isinstance(vs, dict) or "value" not in vs:
        return ""
    ci = vs.get("ci") or (None, None)
    dci = vs.get("delta_ci") or (None, None)
    who = f" {vs['model']}" if vs.get("model") else ""
    return (f"{numbers.BASE_MODEL}{who} = {numbers.estimate(vs.get('value'), *ci)}; "
            f"difference {numbers.estimate(vs.get('delta'), *dci, sign=True)}")
