"""Metric gates: ``metrics: {name: {min: ..., <metric options>}}``.

One gate per entry of ``metrics:``. The metric (a registered factory, or
``python:module:function``) scores every case; the gate estimates the value with
its interval (Wilson for proportions, a seeded bootstrap for means and corpus
metrics), compares it with the threshold (on the interval's bound when the gate
has a ``confidence``), breaks it down per category and, with a baseline, reports
the base model's value and the paired difference.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from pytest_llmeval import stats
from pytest_llmeval.errors import ConfigError, LLMEvalError
from pytest_llmeval.gates.base import DisplayRow, Gate, GateContext, GateOutcome, GateSpec, fail_on_categories
from pytest_llmeval.gates.registry import register_gate
from pytest_llmeval.gates.text import describe_estimate, fmt, format_case, threshold_rule
from pytest_llmeval.metrics.base import Metric, build_metric
from pytest_llmeval.results import AggregateResult, CaseResult

WORST_CASES = 5
Scored = tuple[list[str], list[list[str]], list[int], list[float] | None]
"""Predictions, references, the case of each prediction, per-prediction scores."""
GATE_KEYS = ("min", "max", "confidence", "case_min", "per_category", "metric", "max_regression", "range")


class MetricGateSpec(GateSpec):
    """One entry of ``metrics:``: the gate's options; the rest are the metric's own options."""

    metric: str
    min: float | None = None
    max: float | None = None
    confidence: float | None = Field(default=None, gt=0, lt=1)
    case_min: float | None = None
    per_category: bool = False
    max_regression: float | None = Field(default=None, ge=0)
    range: tuple[float, float] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("per_category", mode="before")
    @classmethod
    def _strict_bool(cls, v: Any) -> Any:
        if not isinstance(v, bool):
            raise ValueError(f"expected true or false, got {v!r}")
        return v

    @model_validator(mode="after")
    def _one_threshold(self) -> MetricGateSpec:
        if self.min is not None and self.max is not None:
            raise ValueError("give 'min' or 'max', not both")
        if self.range is not None and not self.range[0] < self.range[1]:
            raise ValueError(f"range: the lower end must be below the upper end, got {list(self.range)}")
        return self

    @property
    def threshold(self) -> float | None:
        return self.min if self.min is not None else self.max

    @property
    def op(self) -> Literal["min", "max"]:
        return "max" if self.max is not None and self.min is None else "min"


def split_options(name: str, raw: Any) -> dict[str, Any]:
    """``metrics.<name>``'s raw value as spec input: gate keys kept, the rest under ``options``.

    Raises:
        ValueError: the value is neither a mapping nor a number.
    """
    if raw is None:
        return {"metric": name}
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return {"metric": name, "min": raw}
    if not isinstance(raw, dict):
        raise ValueError(f"expected a mapping like {{min: 0.8}} or a number (the minimum), got {raw!r}")
    data: dict[str, Any] = {"metric": name, "options": {}}
    for key, value in raw.items():
        if key in GATE_KEYS:
            data[key] = value
        else:
            data["options"][key] = value
    return data


def metric_range(metric: Metric, spec: MetricGateSpec) -> tuple[float, float]:
    """The values the metric can take: declared by the metric, or the gate's ``range`` (python: metrics)."""
    if spec.range is not None:
        return spec.range
    if spec.metric.startswith("python:"):
        return (-math.inf, math.inf)
    return metric.range


def check_thresholds(metric: Metric, spec: MetricGateSpec) -> None:
    """Thresholds outside the metric's range (``min: 80`` on a 0-1 metric) can never mean anything."""
    lo, hi = metric_range(metric, spec)
    for key in ("min", "max", "case_min"):
        value = getattr(spec, key)
        if value is None:
            continue
        if not lo <= value <= hi:
            hi_s = "no upper bound" if math.isinf(hi) else f"{hi:g}"
            lo_s = "no lower bound" if math.isinf(lo) else f"{lo:g}"
            extra = " (scores are on a 0-1 scale)" if (lo, hi) == (0.0, 1.0) and value > 1 else ""
            raise ConfigError(f"{key}: {value:g} is outside the range of '{spec.metric}' "
                              f"[{lo_s}, {hi_s}]{extra}")
    if spec.max_regression is not None and not math.isinf(hi - lo) and spec.max_regression > hi - lo:
        raise ConfigError(f"max_regression: {spec.max_regression:g} is larger than the metric's whole "
                          f"range [{lo:g}, {hi:g}]")


@register_gate
class MetricGate(Gate):
    recomputable = True
    kind = "metric"
    section = None
    Spec = MetricGateSpec
    description = "a metric's value over the suite, with its interval, against a threshold"

    def __init__(self, name: str, spec: MetricGateSpec, line: int | None = None,
                 metric: Metric | None = None) -> None:
        super().__init__(name, spec, line)
        self.spec: MetricGateSpec = spec
        self._metric = metric

    @classmethod
    def build(cls, name: str, raw: Any, line: int | None) -> MetricGate:
        """Validate one ``metrics:`` entry (pydantic for the gate's options, the factory for the metric's).

        Raises:
            pydantic.ValidationError: a gate option is wrong.
            ConfigError: the metric is unknown, its options are wrong, or a threshold is out of range.
        """
        spec = MetricGateSpec.model_validate(split_options(name, raw))
        metric = build_metric(spec.metric, spec.options)
        check_thresholds(metric, spec)
        return cls(name, spec, line, metric)

    @property
    def needs_baseline(self) -> bool:
        return True  # reported beside the value when the suite has a baseline

    @property
    def metric(self) -> Metric:
        if self._metric is None:
            self._metric = build_metric(self.spec.metric, self.spec.options)
        return self._metric

    # ------------------------------------------------------------------ per-case minimums

    def prepare_cases(self, ctx: GateContext) -> None:
        """Per-case scores (every case item shows them) and the ``case_min`` checks."""
        self._scored = (ctx, self._score(ctx))
        if self.spec.case_min is None:
            return
        for res in ctx.results:
            score = res.scores.get(self.name)
            if score is None or res.status == "error":
                continue
            ok = score >= self.spec.case_min
            res.checks.append({"check": f"{self.name} >= {self.spec.case_min:g}", "passed": ok,
                               "message": None if ok else
                               f"{self.name} = {fmt(score)} is below the per-case minimum "
                               f"{self.spec.case_min:g}", "line": self.line})
            if not ok:
                res.status = "failed"

    def _score(self, ctx: GateContext) -> Scored | str:
        import numpy as np

        errored = ctx.errored_cases()
        if errored:
            return (f"{len(errored)} of {len(ctx.results)} cases have no output (model errors): "
                    f"{', '.join(errored[:10])}{' ...' if len(errored) > 10 else ''}; the gate is not "
                    f"computed on a partial set")
        missing = [c.id for c in ctx.cases if c.reference is None]
        if self.metric.needs_reference and missing:
            return (f"metric '{self.spec.metric}' needs a reference, but {len(missing)} cases have none "
                    f"({', '.join(missing[:5])}); add 'reference' to every case")
        preds: list[str] = []
        refs: list[list[str]] = []
        owner: list[int] = []
        for i, (case, res) in enumerate(zip(ctx.cases, ctx.results, strict=True)):
            for t in res.samples or [res.output]:
                preds.append(t or "")
                refs.append(list(case.reference or []))
                owner.append(i)
        try:
            per_pred = self.metric.case_scores(preds, refs)
        except LLMEvalError as exc:
            return str(exc)
        if per_pred is not None:
            sums: dict[int, list[float]] = {}
            for o, s in zip(owner, per_pred, strict=True):
                sums.setdefault(o, []).append(float(s))
            for i, res in enumerate(ctx.results):
                if i in sums:
                    res.scores[self.name] = float(np.mean(sums[i]))
        return preds, refs, owner, per_pred

    # ------------------------------------------------------------------ the gate

    @classmethod
    def display_rows(cls, agg: AggregateResult) -> list[DisplayRow]:
        """Nothing beyond the row: the base model and the difference have their own columns."""
        vs = agg.details.get("vs_baseline")
        if isinstance(vs, dict) and vs.get("error"):
            return [DisplayRow("base model", str(vs["error"]), style="text")]
        return []

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        spec = self.spec
        confidence = spec.confidence or ctx.confidence
        agg = self.aggregate(metric=spec.metric, threshold=spec.threshold, op=spec.op,
                             confidence=spec.confidence, model=ctx.model_name)
        cached = getattr(self, "_scored", None)
        # prepare_cases scored this context already; a gate evaluated on its own scores now
        scored = cached[1] if cached is not None and cached[0] is ctx else self._score(ctx)
        if isinstance(scored, str):
            agg.error = scored
            return GateOutcome(agg, message=scored)
        preds, refs, owner, per_pred = scored
        metric = self.metric
        agg.details["metric_kind"] = metric.kind
        agg.details["interval_confidence"] = confidence
        if spec.max_regression is not None:
            agg.details["max_regression"] = spec.max_regression
        try:
            est = estimate(metric, preds, refs, per_pred, confidence, ctx.seed)
        except LLMEvalError as exc:
            agg.error = str(exc)
            return GateOutcome(agg, message=str(exc))
        agg.value, agg.ci, agg.n, agg.method = est.value, (est.low, est.high), est.n, est.method
        agg.details["n_predictions"] = len(preds)
        if spec.threshold is not None:
            agg.passed = stats.clears(est, spec.threshold, spec.op, spec.confidence)
        report = None
        if metric.report is not None:
            try:
                report = metric.report(preds, refs)
            except Exception as exc:  # noqa: BLE001 - a report is a courtesy; its failure is not the gate's
                report = f"(report unavailable: {exc})"
        categories = self._categories(ctx, preds, refs, per_pred, owner, confidence)
        if spec.per_category and spec.threshold is not None and categories:
            fail_on_categories(agg, categories)
        if ctx.baseline is not None:
            self._baseline_comparison(ctx, agg, preds, confidence)
        message = self._failure_message(agg, categories, ctx.results, report) if agg.passed is False else ""
        return GateOutcome(agg, categories=categories, message=message, report=report)

    def _categories(self, ctx: GateContext, preds: list[str], refs: list[list[str]],
                    per_pred: list[float] | None, owner: list[int],
                    confidence: float) -> list[AggregateResult]:
        spec = self.spec
        cases = ctx.cases
        cats = sorted({c.category for c in cases if c.category is not None})
        rows = []
        for cat in cats:
            idx = [k for k, o in enumerate(owner) if cases[o].category == cat]
            sub_scores = [per_pred[k] for k in idx] if per_pred is not None else None
            est = estimate(self.metric, [preds[k] for k in idx], [refs[k] for k in idx], sub_scores,
                           confidence, ctx.seed)
            row = AggregateResult(name=self.name, value=est.value, ci=(est.low, est.high), n=est.n,
                                  method=est.method, category=cat, kind="category", metric=spec.metric,
                                  threshold=spec.threshold, op=spec.op, confidence=spec.confidence,
                                  model=ctx.model_name)
            if spec.per_category and spec.threshold is not None:
                row.passed = stats.clears(est, spec.threshold, spec.op, spec.confidence)
            rows.append(row)
        return rows

    def _baseline_comparison(self, ctx: GateContext, agg: AggregateResult, preds: list[str],
                             confidence: float) -> None:
        """The same metric on the base model's outputs, and the paired difference with its interval."""
        baseline = ctx.baseline
        assert baseline is not None
        ids = [c.id for c in ctx.cases]
        if baseline.error is not None or any(baseline.outputs.get(i) is None for i in ids):
            agg.details["baseline_error"] = baseline.error or "the baseline has no output for some cases"
            return
        metric = self.metric
        b_preds = [baseline.outputs[i] or "" for i in ids]
        b_refs = [list(c.reference or []) for c in ctx.cases]
        n = len(ids)
        reps = len(preds) // n if n else 1
        f_preds = [preds[i * reps] for i in range(n)]  # each case's first sample, paired with the baseline
        delta = stats.paired_bootstrap(n, corpus_statistic(metric, b_preds, b_refs),
                                       corpus_statistic(metric, f_preds, b_refs), confidence, seed=ctx.seed)
        b_est = estimate(metric, b_preds, b_refs, metric.case_scores(b_preds, b_refs), confidence, ctx.seed)
        agg.details["vs_baseline"] = {
            "model": baseline.name, "value": b_est.value, "ci": [b_est.low, b_est.high],
            "delta": delta.value, "delta_ci": [delta.low, delta.high],
        }

    def _failure_message(self, agg: AggregateResult, categories: list[AggregateResult],
                         results: list[CaseResult], report: str | None) -> str:
        spec = self.spec
        assert spec.threshold is not None  # a failure message exists only for a gate with a threshold
        lines = [describe_estimate(agg), threshold_rule(spec.op, spec.threshold, spec.confidence)]
        failing = [c for c in categories if c.passed is False]
        if failing:
            lines.append("categories below the threshold: " + ", ".join(
                f"{c.category} = {fmt(c.value)} (n={c.n})" for c in failing))
        scored = [r for r in results if self.name in r.scores]
        if scored:
            scored.sort(key=lambda r: r.scores[self.name] or 0.0, reverse=spec.op == "max")
            lines.append(f"worst cases ({min(WORST_CASES, len(scored))} of {len(scored)}):")
            for r in scored[:WORST_CASES]:
                lines.append(format_case(r, r.scores[self.name], self.name))
        if report:
            lines += ["report:", report.rstrip()]
        return "\n".join(lines)


def estimate(metric: Metric, preds: list[str], refs: list[list[str]], per_pred: list[float] | None,
             confidence: float, seed: int) -> stats.Estimate:
    """The metric's value with its interval: Wilson, bootstrap of the mean, or corpus bootstrap."""
    if metric.kind == "proportion" and per_pred is not None:
        return stats.wilson(float(sum(per_pred)), len(per_pred), confidence)
    if metric.kind == "mean" and per_pred is not None:
        return stats.bootstrap_mean(per_pred, confidence, seed=seed)
    return stats.bootstrap_statistic(len(preds), corpus_statistic(metric, preds, refs), confidence, seed=seed)


def corpus_statistic(metric: Metric, preds: Sequence[str],
                     refs: Sequence[Sequence[str]]) -> Callable[[Any], float]:
    """``indices -> corpus value`` for the bootstrap, from per-case sufficient statistics when the
    metric has them (a resample is then a weighted sum), else by recomputing the corpus metric."""
    from pytest_llmeval.metrics.resample import corpus_statistic as from_statistics

    return from_statistics(metric, preds, refs)
