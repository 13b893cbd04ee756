"""The ``pass_at_k`` gate: execute generated code against each case's tests, gate on pass@k.

A suite opts in with an ``execute:`` section::

    repeat: 10                       # n samples per problem
    execute:
      dataset: humaneval             # humaneval | mbpp | tests (the case fields the tests come from)
      k: [1, 10]                     # one gate per k: pass@1, pass@10
      min: {1: 0.5}                  # thresholds per k, in [0, 1]
      confidence: 0.95               # optional: the interval's lower bound must clear the threshold
      per_category: false            # also gate each category
      timeout_s: 5                   # wall clock per sample
      memory_mb: 512                 # address space per process
      max_processes: 16
      file_size_mb: 16
      max_output_kb: 64              # captured stdout+stderr per sample
      workers: null                  # concurrent samples (default: the usable CPUs)
      site_packages: false           # let model code import installed packages (default: stdlib only)
      postprocess: {strip_fences: false, stop_at_next_def: false, include_prompt: true}

``prepare_cases`` executes every sample in the sandbox (:mod:`pytest_llmeval.execution.sandbox`)
and records per case ``extra["execution"]`` (c of n passed, each sample's status and reason)
and ``scores["pass@k"]`` (the per-problem estimate); a wrong sample never fails its case.
``evaluate`` averages the per-problem estimates, with a bootstrap interval over problems.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from pytest_llmeval import numbers
from pytest_llmeval.errors import LLMEvalError, SandboxUnavailable, SpecError
from pytest_llmeval.gates.base import (
    DisplayRow,
    Gate,
    GateContext,
    GateOutcome,
    GateSpec,
    check_in_range,
    error_outcome,
    fail_on_categories,
    skip_outcome,
)
from pytest_llmeval.gates.registry import register_gate
from pytest_llmeval.gates.text import threshold_rule
from pytest_llmeval.results import AggregateResult

if TYPE_CHECKING:
    from pytest_llmeval.execution.sandbox import Job, SampleResult
    from pytest_llmeval.spec import SuiteSpec

EXTRA_KEY = "execution"
WORST_PROBLEMS = 5
OUTPUT_CHARS = 2000
"""Captured output kept per sample in the results (the sandbox caps what it captures at max_output_kb)."""


class PostprocessSpec(GateSpec):
    """How a completion becomes code (see :mod:`pytest_llmeval.execution.postprocess`)."""

    strip_fences: bool = False
    stop_at_next_def: bool = False
    include_prompt: bool = True
    """HumanEval: execute the prompt followed by the completion (the standard format)."""


class ExecuteSpec(GateSpec):
    """The ``execute:`` section."""

    language: Literal["python"] = "python"
    dataset: Literal["humaneval", "mbpp", "tests"] = "humaneval"
    k: list[int] = Field(default_factory=lambda: [1])
    min: dict[int, float] = Field(default_factory=dict)
    confidence: float | None = Field(default=None, gt=0, lt=1)
    per_category: bool = False
    timeout_s: float = Field(default=5.0, gt=0, le=600)
    memory_mb: int = Field(default=512, ge=64, le=1 << 20)
    max_processes: int = Field(default=16, ge=1, le=4096)
    file_size_mb: int = Field(default=16, ge=0, le=1 << 20)
    max_output_kb: int = Field(default=64, ge=0, le=1 << 20)
    workers: int | None = Field(default=None, ge=1, le=256)
    site_packages: bool = False
    postprocess: PostprocessSpec = Field(default_factory=PostprocessSpec)

    @field_validator("k", mode="before")
    @classmethod
    def _one_k(cls, v: Any) -> Any:
        return [v] if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("k")
    @classmethod
    def _valid_k(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("give at least one k, e.g. k: [1, 10]")
        if any(x < 1 for x in v):
            raise ValueError(f"every k must be >= 1, got {v}")
        if len(set(v)) != len(v):
            raise ValueError(f"k has duplicates: {v}")
        return v

    @field_validator("min")
    @classmethod
    def _valid_min(cls, v: dict[int, float]) -> dict[int, float]:
        for k, threshold in v.items():
            check_in_range(threshold, 0.0, 1.0, f"min for pass@{k}")
        return v

    @model_validator(mode="after")
    def _min_names_a_k(self) -> ExecuteSpec:
        stray = sorted(set(self.min) - set(self.k))
        if stray:
            raise ValueError(f"min names k = {', '.join(map(str, stray))}, not in k = {self.k}; "
                             f"add it to k or remove it from min")
        return self

    def run_key(self) -> str:
        """What decides the execution (not the thresholds): sibling gates share one run."""
        fields = self.model_dump(exclude={"k", "min", "confidence", "per_category"})
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


@register_gate
class PassAtKGate(Gate):
    """pass@k of generated code, executed in a sandbox against each case's tests."""

    recomputable = True
    kind = "pass_at_k"
    section = "execute"
    Spec = ExecuteSpec
    description = "generated code executed against the case's tests; the unbiased pass@k estimator"

    def __init__(self, name: str, spec: Any, line: int | None = None, k: int = 1) -> None:
        super().__init__(name, spec, line)
        self.k = k

    @classmethod
    def from_section(cls, spec: Any, *, suite_spec: SuiteSpec, line: int | None) -> list[Gate]:
        """One gate per k; k above the suite's ``repeat`` (samples per problem) is a spec error."""
        repeat = int(getattr(suite_spec, "repeat", 1) or 1)
        too_big = [k for k in spec.k if k > repeat]
        if too_big:
            raise SpecError(f"execute.k: pass@{too_big[0]} needs at least {too_big[0]} samples per problem, "
                            f"but the suite draws {repeat} (set 'repeat: {max(spec.k)}' or lower k)",
                            line=line, key="execute.k")
        return [cls(f"pass@{k}", spec, line, k=k) for k in spec.k]

    @property
    def needs_baseline(self) -> bool:
        return True

    # ------------------------------------------------------------------ execution

    def prepare_cases(self, ctx: GateContext) -> None:
        """Execute every sample (and the baseline's output) unless a sibling gate already did."""
        spec: ExecuteSpec = self.spec
        key = spec.run_key()
        if ctx.results and all((r.extra.get(EXTRA_KEY) or {}).get("key") == key for r in ctx.results):
            return
        execute_cases(ctx, spec)

    # ------------------------------------------------------------------ verdict

    @classmethod
    def display_rows(cls, agg: AggregateResult) -> list[DisplayRow]:
        """Samples executed, passed, failed and timed out, and the sandbox they ran in."""
        d = agg.details
        if "samples" not in d:
            return []
        rows = [DisplayRow("samples (passed / failed / timed out)",
                           f"{d['samples']} ({d.get('passed_samples', 0)} / {d.get('failed_samples', 0)} / "
                           f"{d.get('timeouts', 0)})", style="text")]
        if d.get("sandbox"):
            rows.append(DisplayRow("sandbox", str(d["sandbox"]), style="text"))
        vs = d.get("vs_baseline")
        if isinstance(vs, dict) and vs.get("error"):
            rows.append(DisplayRow("base model", str(vs["error"]), style="text"))
        return rows

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        from pytest_llmeval import stats
        from pytest_llmeval.execution.passk import pass_at_k

        spec: ExecuteSpec = self.spec
        found = [r.extra.get(EXTRA_KEY) for r in ctx.results]
        records: list[dict[str, Any]] = [rec for rec in found if isinstance(rec, dict)
                                         and rec.get("key") == spec.run_key()]
        if not records or len(records) != len(found):
            return error_outcome(self.name, self.kind,
                                 "the samples were not executed (prepare_cases did not run)")
        skipped = next((rec["skipped"] for rec in records if rec.get("skipped")), None)
        if skipped:
            return skip_outcome(self.name, self.kind, skipped)
        bad_data = [(r.id, rec["error"]) for r, rec in zip(ctx.results, records, strict=True)
                    if rec.get("error")]
        if bad_data:
            why = "; ".join(f"case '{cid}': {msg}" for cid, msg in bad_data[:5])
            return error_outcome(self.name, self.kind, f"{len(bad_data)} cases cannot be executed: {why}")
        no_output = [r.id for r, rec in zip(ctx.results, records, strict=True) if rec.get("no_output")]
        if no_output:
            return error_outcome(self.name, self.kind, (
                f"{len(no_output)} of {len(records)} cases have samples with no output (model errors): "
                f"{', '.join(no_output[:10])}{' ...' if len(no_output) > 10 else ''}; pass@k is not computed "
                "on a partial set"))
        harness = [(r.id, s["reason"]) for r, rec in zip(ctx.results, records, strict=True)
                   for s in rec["samples"] if s["status"] == "error"]
        if harness:
            return error_outcome(self.name, self.kind, (
                f"{len(harness)} samples could not be judged (not the model's fault): "
                f"case '{harness[0][0]}': {harness[0][1]}"))
        ns = [int(rec["n"]) for rec in records]
        if min(ns) < self.k:
            return error_outcome(self.name, self.kind, f"pass@{self.k} needs {self.k} samples per problem; "
                                 f"some problems have {min(ns)}")
        values = np.array([pass_at_k(int(rec["n"]), int(rec["passed"]), self.k) for rec in records])
        confidence = spec.confidence or ctx.confidence
        est = stats.bootstrap_mean(values.tolist(), confidence, seed=ctx.seed)
        threshold = spec.min.get(self.k)
        agg = self.aggregate(value=est.value, ci=(est.low, est.high), n=est.n, threshold=threshold, op="min",
                             confidence=spec.confidence, model=ctx.model_name, method=est.method,
                             metric=f"pass@{self.k}")
        counts = Counter(s["status"] for rec in records for s in rec["samples"])
        agg.details.update({
            "interval_confidence": confidence, "k": self.k, "dataset": spec.dataset,
            "samples": sum(ns), "samples_per_problem": max(ns), "passed_samples": counts["passed"],
            "failed_samples": counts["failed"], "timeouts": counts["timeout"],
            "sandbox": records[0].get("sandbox"),
        })
        if threshold is not None:
            agg.passed = stats.clears(est, threshold, "min", spec.confidence)
        categories = self._categories(ctx, values, threshold, confidence)
        if spec.per_category and threshold is not None:
            fail_on_categories(agg, categories)
        if ctx.baseline is not None:
            self._vs_baseline(agg, ctx, values, records, confidence)
        message = self._failure_message(agg, ctx, records, values, categories) if agg.passed is False else ""
        return GateOutcome(agg, categories=categories, message=message, report=self._report(records, counts))

    def _categories(self, ctx: GateContext, values: np.ndarray, threshold: float | None,
                    confidence: float) -> list[AggregateResult]:
        from pytest_llmeval import stats

        cats = sorted({c.category for c in ctx.cases if c.category is not None})
        rows = []
        for cat in cats:
            idx = [i for i, c in enumerate(ctx.cases) if c.category == cat]
            est = stats.bootstrap_mean(values[idx].tolist(), confidence, seed=ctx.seed)
            row = AggregateResult(name=self.name, value=est.value, ci=(est.low, est.high), n=est.n,
                                  method=est.method, category=cat, kind="category", metric=f"pass@{self.k}",
                                  threshold=threshold, op="min", confidence=self.spec.confidence,
                                  model=ctx.model_name)
            if self.spec.per_category and threshold is not None:
                row.passed = stats.clears(est, threshold, "min", self.spec.confidence)
            rows.append(row)
        return rows

    def _vs_baseline(self, agg: AggregateResult, ctx: GateContext, values: np.ndarray,
                     records: list[dict[str, Any]], confidence: float) -> None:
        """pass@1 of the baseline's single output per problem, and the paired difference over problems."""
        from pytest_llmeval import stats

        assert ctx.baseline is not None
        name = ctx.baseline.name
        if self.k != 1:
            agg.details["vs_baseline"] = {"model": name, "error": "the baseline has one output per problem: "
                                          "only pass@1 is compared"}
            return
        base = [rec.get("baseline") for rec in records]
        if ctx.baseline.error or any(b is None or b.get("no_output") for b in base):
            agg.details["vs_baseline"] = {"model": name, "error": ctx.baseline.error
                                          or "the baseline has no output for some cases"}
            return
        b_values = np.array([float(b["passed"]) for b in base])  # type: ignore[index]
        b_est = stats.bootstrap_mean(b_values.tolist(), confidence, seed=ctx.seed)
        delta = stats.paired_bootstrap(len(values), lambda idx: float(b_values[idx].mean()),
                                       lambda idx: float(values[idx].mean()), confidence, seed=ctx.seed)
        agg.details["vs_baseline"] = {"model": name, "value": b_est.value, "ci": [b_est.low, b_est.high],
                                      "delta": delta.value, "delta_ci": [delta.low, delta.high]}

    def _failure_message(self, agg: AggregateResult, ctx: GateContext, records: list[dict[str, Any]],
                         values: np.ndarray, categories: list[AggregateResult]) -> str:
        lo, hi = agg.ci or (math.nan, math.nan)
        lines = [f"{self.name} = {numbers.estimate(agg.value, lo, hi)} over {agg.n} problems"]
        if agg.threshold is not None:
            lines.append(threshold_rule("min", agg.threshold, self.spec.confidence))
        failing = [c for c in categories if c.passed is False]
        if failing:
            lines.append("categories below the threshold: " + ", ".join(
                f"{c.category} = {numbers.number(c.value)} (n={c.n})" for c in failing))
        order = np.argsort(values, kind="stable")[:WORST_PROBLEMS]
        lines.append(f"worst problems ({len(order)} of {len(values)}):")
        for i in order:
            lines.append(f"  {ctx.results[i].id}: {describe_execution(records[i])}")
        return "\n".join(lines)

    @staticmethod
    def _report(records: list[dict[str, Any]], counts: Counter[str]) -> str:
        total = sum(counts.values())
        return (f"executed {total} samples of {len(records)} problems in the sandbox "
                f"[{records[0].get('sandbox')}]: {counts['passed']} passed, {counts['failed']} failed, "
                f"{counts['timeout']} timed out")


def describe_execution(record: dict[str, Any]) -> str:
    """One line for a case: ``c of n samples passed`` and the first failing sample's reason.

    The reason is the sandbox's own text (values shown with ``repr``, so control characters
    are escaped); the captured output of the model is not part of it.
    """
    if record.get("skipped"):
        return f"not executed: {record['skipped']}"
    if record.get("error"):
        return f"not executed: {record['error']}"
    text = f"{record['passed']} of {record['n']} samples passed"
    for i, s in enumerate(record.get("samples") or []):
        if s["status"] != "passed":
            return f"{text}; sample {i + 1}: {s['status']}: {s['reason']}" if s.get("reason") else text
    return text


# ----------------------------------------------------------------------------- running the samples


def execute_cases(ctx: GateContext, spec: ExecuteSpec) -> None:
    """Execute every sample of every case (and the baseline's outputs); annotate ``ctx.results``."""
    from pytest_llmeval.execution.data import CaseDataError, job_for
    from pytest_llmeval.execution.passk import pass_at_k
    from pytest_llmeval.execution.sandbox import Limits, Sandbox

    key = spec.run_key()
    post = spec.postprocess
    options = {"strip_markdown": post.strip_fences, "stop_at_def": post.stop_at_next_def,
               "include_prompt": post.include_prompt}
    jobs: list[Job] = []
    owners: list[tuple[int, str, int]] = []  # (case index, "model"/"baseline", sample index)
    records: list[dict[str, Any]] = []
    for i, (case, res) in enumerate(zip(ctx.cases, ctx.results, strict=True)):
        samples = list(res.samples) if res.samples else [res.output]
        rec: dict[str, Any] = {"key": key, "dataset": spec.dataset, "n": len(samples), "passed": 0,
                               "samples": [None] * len(samples)}
        records.append(rec)
        try:
            for j, text in enumerate(samples):
                if text is None:
                    rec["no_output"] = True
                    rec["samples"][j] = {"status": "error",
                                         "reason": "no output (the model failed to generate)"}
                    continue
                jobs.append(job_for(case.fields, text, spec.dataset, **options))
                owners.append((i, "model", j))
            if ctx.baseline is not None:
                btext = ctx.baseline.outputs.get(case.id)
                if btext is None:
                    rec["baseline"] = {"no_output": True}
                else:
                    rec["baseline"] = {"n": 1, "passed": 0, "samples": [None]}
                    jobs.append(job_for(case.fields, btext, spec.dataset, **options))
                    owners.append((i, "baseline", 0))
        except CaseDataError as exc:
            where = f"{case.source}:{case.line}: " if case.source and case.line else ""
            rec["error"] = f"{where}{exc}"
            jobs = [jb for jb, o in zip(jobs, owners, strict=True) if o[0] != i]
            owners = [o for o in owners if o[0] != i]
    limits = Limits(timeout_s=spec.timeout_s, memory_mb=spec.memory_mb, max_processes=spec.max_processes,
                    file_size_mb=spec.file_size_mb, max_output_bytes=spec.max_output_kb * 1024)
    try:
        sandbox = Sandbox(limits, workers=spec.workers, site_packages=spec.site_packages)
    except SandboxUnavailable as exc:
        _annotate_skipped(ctx, key, str(exc))
        return
    except LLMEvalError as exc:
        _annotate_skipped(ctx, key, f"the sandbox could not start: {exc}")
        return
    progress = ctx.progress
    lock = threading.Lock()

    def advance(n: int) -> None:
        with lock:
            progress.advance(n)

    progress.start(f"executing {len(jobs)} samples", len(jobs))
    try:
        with sandbox:
            outcomes = sandbox.run(jobs, progress=advance)
    finally:
        progress.finish()
    sandbox_text = sandbox.info.describe()
    for (i, who, j), outcome in zip(owners, outcomes, strict=True):
        rec = records[i] if who == "model" else records[i]["baseline"]
        rec["samples"][j] = _sample_dict(outcome)
        rec["passed"] += outcome.passed
    for rec, res in zip(records, ctx.results, strict=True):
        rec["sandbox"] = sandbox_text
        res.extra[EXTRA_KEY] = rec
        if rec.get("error") or rec.get("no_output"):
            continue
        for k in spec.k:
            if k <= rec["n"]:
                res.scores[f"pass@{k}"] = pass_at_k(rec["n"], rec["passed"], k)


def _sample_dict(outcome: SampleResult) -> dict[str, Any]:
    return {"status": outcome.status, "reason": outcome.reason, "output": outcome.output[:OUTPUT_CHARS],
            "output_bytes": outcome.output_bytes, "duration_s": round(outcome.duration_s, 4)}


def _annotate_skipped(ctx: GateContext, key: str, reason: str) -> None:
    for res in ctx.results:
        res.extra[EXTRA_KEY] = {"key": key, "skipped": reason}

