"""The ``latency:`` gate: percentiles of the model's per-request latency against maxima.

Written the way a user writes a gate kind: a spec, a section, one ``evaluate``.

What latency means per backend: an API model's request wall time (retries
included); for a batched local model (``hf:``), the batch's wall time divided by
its size; a ``python:`` model's call time. Answers replayed from the cache are
excluded: they say nothing about the model's speed (the gate is an ERROR when no
fresh request is left to measure).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from pytest_llmeval import numbers, stats
from pytest_llmeval.gates.base import DisplayRow, Gate, GateContext, GateOutcome, GateSpec
from pytest_llmeval.gates.registry import register_gate
from pytest_llmeval.results import AggregateResult

PERCENTILES = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0, "max_ms": 100.0}


class LatencySpec(GateSpec):
    """``latency: {p50_ms: 800, p95_ms: 2000}``: maxima in milliseconds for each percentile given."""

    p50_ms: float | None = Field(default=None, gt=0)
    p90_ms: float | None = Field(default=None, gt=0)
    p95_ms: float | None = Field(default=None, gt=0)
    p99_ms: float | None = Field(default=None, gt=0)
    max_ms: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _some_limit(self) -> LatencySpec:
        if not self.limits():
            raise ValueError(f"give at least one of {', '.join(PERCENTILES)}")
        return self

    def limits(self) -> dict[str, float]:
        return {k: v for k in PERCENTILES if (v := getattr(self, k)) is not None}


def request_latencies(ctx: GateContext) -> tuple[list[float], int]:
    """Fresh requests' latencies in seconds, and how many cached answers were left out."""
    values: list[float] = []
    cached = 0
    for r in ctx.results:
        for info in r.requests:
            if info.get("cached"):
                cached += 1
            elif info.get("latency_s") is not None:
                values.append(float(info["latency_s"]))
    return values, cached


@register_gate
class LatencyGate(Gate):
    recomputable = True
    kind = "latency"
    section = "latency"
    Spec = LatencySpec
    description = "percentiles of per-request latency (cache hits excluded) against maxima"

    @classmethod
    def display_rows(cls, agg: AggregateResult) -> list[DisplayRow]:
        """Each gated percentile (ms) with its interval and limit."""
        rows = []
        for key, r in (agg.details.get("percentiles") or {}).items():
            ci = r.get("ci")
            rows.append(DisplayRow(key, r.get("value"), ci=tuple(ci) if ci else None,
                                   threshold=f"<= {r.get('limit'):g}" if r.get("limit") is not None else None,
                                   verdict="pass" if r.get("passed") else "fail"))
        return rows

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        spec: LatencySpec = self.spec
        limits = spec.limits()
        values, cached = request_latencies(ctx)
        worst_key = max(limits, key=lambda k: PERCENTILES[k])
        agg = self.aggregate(threshold=limits[worst_key], op="max", metric=worst_key, model=ctx.model_name,
                             method="bootstrap")
        agg.details["cached_excluded"] = cached
        if not values:
            agg.error = (f"no latency to measure: all {cached} answers came from the cache"
                         if cached else "the model recorded no request latencies")
            return GateOutcome(agg, message=agg.error)
        ms = np.asarray(values) * 1000.0
        rows: dict[str, Any] = {}
        failing = []
        for key, limit in limits.items():
            est = stats.bootstrap_statistic(len(ms), partial(_percentile, ms, PERCENTILES[key]),
                                            ctx.confidence, seed=ctx.seed)
            ok = est.value <= limit
            rows[key] = {"value": est.value, "ci": [est.low, est.high], "limit": limit, "passed": ok}
            if not ok:
                failing.append(f"{key} = {numbers.number(est.value)} ms > {numbers.threshold(limit)} ms")
        top = rows[worst_key]
        agg.value, agg.ci, agg.n = top["value"], tuple(top["ci"]), len(ms)
        agg.details["percentiles"] = rows
        agg.passed = not failing
        message = ""
        if failing:
            message = (f"latency over its limits ({len(ms)} fresh requests, {cached} cached excluded): "
                       + "; ".join(failing))
        return GateOutcome(agg, message=message)


def _percentile(values: np.ndarray, q: float, idx: np.ndarray) -> float:
    """The q-th percentile of ``values`` over the resample ``idx``."""
    return float(np.percentile(values[idx], q))
