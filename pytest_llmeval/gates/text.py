"""Text shared by gate messages: an estimate in one line, a case with its prompt, output and reference."""

from __future__ import annotations

import math
from typing import Any

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
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def format_case(case: CaseResult, score: float | None = None, metric: str | None = None) -> str:
    head = f"  case[{case.id}]" + (f"  {metric} = {score:.3f}" if score is not None and metric else "")
    parts = [head, "    prompt:", indent(short(case.prompt)), "    output:", indent(short(case.output))]
    if case.reference is not None:
        parts += ["    reference:", indent(short(case.reference))]
    return "\n".join(parts)


def threshold_rule(op: str, threshold: float, confidence: float | None) -> str:
    """What a gate requires, in words: the value, or its interval's bound when the gate has a confidence."""
    sign = ">=" if op == "min" else "<="
    if confidence is None:
        return f"required: {sign} {threshold:g}"
    bound = "lower bound" if op == "min" else "upper bound"
    return f"the interval's {bound} must be {sign} {threshold:g} (confidence {confidence:g})"


def describe_estimate(agg: AggregateResult) -> str:
    ci = agg.ci
    conf = agg.details.get("interval_confidence", agg.confidence or 0.95)
    ci_s = f"{int(round(conf * 100))}% CI [{fmt(ci[0])}, {fmt(ci[1])}], " if ci else ""
    return f"{agg.name} = {fmt(agg.value)} ({ci_s}{agg.method or ''}, n={agg.n})"
