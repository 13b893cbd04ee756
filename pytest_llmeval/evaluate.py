"""Run one suite: generate (model and baseline), score every case, compute every gate.

This is the engine behind the pytest items, and knows nothing of pytest: it
takes a validated :class:`~pytest_llmeval.spec.Suite` and ready models, and
returns plain results. Failures are isolated by stage: a model that cannot
generate makes every item of the suite an ERROR; a judge that cannot be
reached affects only the judge gates; one case whose generation failed is an
ERROR for that case, and the gates that need it say so instead of passing on
the remaining cases.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmeval.errors import LLMEvalError
from pytest_llmeval.metrics.base import Metric, build_metric
from pytest_llmeval.models.base import GenerationOutcome, GenerationParams, GenerationRequest, Model
from pytest_llmeval.results import AggregateResult, CaseResult
from pytest_llmeval.spec import Case, Gate, Suite

WORST_CASES = 5


class Skip(Exception):
    """A gate that cannot run here (e.g. no API key for its judge): reported as SKIP."""


@dataclass
class GateOutcome:
    """What a gate item reports: the aggregate, its per-category rows and a failure message."""

    aggregate: AggregateResult
    categories: list[AggregateResult] = field(default_factory=list)
    message: str = ""
    report: str | None = None
    skip: str | None = None


@dataclass
class SuiteOutcome:
    cases: dict[str, CaseResult]
    gates: dict[str, GateOutcome]
    warnings: list[str] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    fatal: BaseException | None = None


def _short(value: Any, limit: int = 300) -> str:
    s = value if isinstance(value, str) else repr(value)
    if not isinstance(value, str) and isinstance(value, list):
        s = "\n".join(f"{m.get('role')}: {m.get('content')}" for m in value if isinstance(m, dict)) \
            if all(isinstance(m, dict) for m in value) else repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in str(text).splitlines() or [""])


def format_case(case: CaseResult, score: float | None = None, metric: str | None = None) -> str:
    head = f"  case[{case.id}]" + (f"  {metric} = {score:.3f}" if score is not None and metric else "")
    parts = [head, "    prompt:", _indent(_short(case.prompt)), "    output:", _indent(_short(case.output))]
    if case.reference is not None:
        parts += ["    reference:", _indent(_short(case.reference))]
    return "\n".join(parts)


def _fmt(v: float | None) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def describe_estimate(agg: AggregateResult) -> str:
    ci = agg.ci
    conf = agg.details.get("interval_confidence", agg.confidence or 0.95)
    ci_s = f"{int(round(conf * 100))}% CI [{_fmt(ci[0])}, {_fmt(ci[1])}], " if ci else ""
    return f"{agg.name} = {_fmt(agg.value)} ({ci_s}{agg.method or ''}, n={agg.n})"


class SuiteEvaluator:
    """Evaluates one suite with ready models.

    Args:
        suite: the validated suite.
        model: the evaluated model (already wrapped by the cache, if any).
        baseline: the comparison model, or a callable that loads it lazily, or None.
        judge_provider: returns the judge for the judge gates (may raise Skip).
        seed: seed for every bootstrap, so intervals are reproducible.
    """

    def __init__(self, suite: Suite, model: Model, *, baseline: Callable[[], Model | None] | None = None,
                 judge_provider: Callable[[], Any] | None = None, seed: int = 0,
                 progress: Any = None, win_rate_key: str | None = None) -> None:
        from pytest_llmeval.report.progress import NoProgress

        self.progress = progress if progress is not None else NoProgress()
        self.win_rate_key = win_rate_key  # the item name the pairwise gate is reported under
        self.suite = suite
        self.model = model
        self.baseline_provider = baseline
        self.judge_provider = judge_provider
        self.seed = seed + suite.spec.seed
        spec = suite.spec.generation
        self.params = GenerationParams(
            max_new_tokens=spec.max_new_tokens, temperature=spec.temperature, top_p=spec.top_p,
            top_k=spec.top_k, stop=tuple(spec.stop), seed=spec.seed)

    # ------------------------------------------------------------------ generation

    def _generate(self, model: Model, cases: Sequence[Case], repeat: int) -> list[list[GenerationOutcome]]:
        requests = []
        ids = []
        for case in cases:
            prompt = self.suite.render(case)
            for s in range(repeat):
                requests.append(GenerationRequest(prompt=prompt, params=self.params, sample=s))
                ids.append(case.id)
        gen_for_cases = getattr(model, "generate_for_cases", None)
        self.progress.start(model.name, len(requests))
        try:
            if "progress" in inspect.signature(model.generate).parameters and not gen_for_cases:
                outcomes = model.generate(requests, progress=self.progress.advance)  # type: ignore[call-arg]
            else:
                outcomes = gen_for_cases(ids, requests) if gen_for_cases else model.generate(requests)
                self.progress.advance(len(requests))
        finally:
            self.progress.finish()
        if len(outcomes) != len(requests):
            raise LLMEvalError(f"model {model.name!r} returned {len(outcomes)} outputs for "
                               f"{len(requests)} requests")
        return [list(outcomes[i * repeat:(i + 1) * repeat]) for i in range(len(cases))]

    # ------------------------------------------------------------------ main

    def run(self, selected: set[str] | None = None, gates_selected: set[str] | None = None) -> SuiteOutcome:
        """Evaluate. ``selected``: case ids to evaluate (None = all); ``gates_selected``: gate names."""
        suite = self.suite
        need_all = gates_selected is None or bool(gates_selected)
        cases = [c for c in suite.cases if need_all or selected is None or c.id in selected]
        outcome = SuiteOutcome(cases={}, gates={})
        outcome.models[self.model.name] = _describe(self.model)
        repeat = suite.spec.repeat
        try:
            generated = self._generate(self.model, cases, repeat)
        except Exception as exc:  # noqa: BLE001 - reported as the ERROR of every item of the suite
            outcome.fatal = exc
            return outcome
        results = self._case_results(cases, generated)
        outcome.cases = {r.id: r for r in results}

        baseline_model: Model | None = None
        baseline_outputs: dict[str, str | None] = {}
        baseline_error: BaseException | None = None
        wants_baseline = suite.spec.baseline is not None or (
            suite.spec.judge is not None and suite.spec.judge.pairwise is not None)
        if wants_baseline and self.baseline_provider is not None and need_all:
            try:
                baseline_model = self.baseline_provider()
                if baseline_model is not None:
                    outcome.models[baseline_model.name] = _describe(baseline_model)
                    bgen = self._generate(baseline_model, cases, 1)
                    for case, outs in zip(cases, bgen, strict=True):
                        o = outs[0]
                        baseline_outputs[case.id] = o if isinstance(o, str) else None
                        outcome.cases[case.id].baseline_output = o if isinstance(o, str) else None
            except Exception as exc:  # noqa: BLE001 - only the gates that need the baseline fail
                baseline_error = exc

        def wanted(name: str) -> bool:
            return gates_selected is None or name in gates_selected

        for gate in suite.gates:
            if wanted(gate.name):
                outcome.gates[gate.name] = self._metric_gate(gate, cases, results, baseline_outputs,
                                                             baseline_model)
        self._per_case_minimums(results)
        if suite.spec.judge is not None:
            self._judge_gates(outcome, cases, results, baseline_model, baseline_error, wanted)
        if suite.spec.contamination is not None and wanted("contamination"):
            outcome.gates["contamination"] = self._contamination_gate(cases, results)
        from pytest_llmeval.stats import SMALL_N

        if len(cases) < SMALL_N and cases:
            outcome.warnings.append(
                f"{suite.name}: only {len(cases)} cases; intervals this wide say little "
                f"(aim for 100+ cases for a gate you rely on)")
        return outcome

    def _case_results(self, cases: Sequence[Case],
                      generated: list[list[GenerationOutcome]]) -> list[CaseResult]:
        from pytest_llmeval.checks import run_check

        results = []
        for case, outs in zip(cases, generated, strict=True):
            texts = [o if isinstance(o, str) else None for o in outs]
            errors = [o for o in outs if not isinstance(o, str)]
            res = CaseResult(id=case.id, prompt=self.suite.render(case), output=texts[0],
                             reference=case.reference_display, category=case.category,
                             difficulty=case.difficulty, tags=list(case.tags),
                             fields={k: v for k, v in case.fields.items()
                                     if isinstance(v, (str, int, float, bool)) or v is None})
            if len(texts) > 1:
                res.samples = texts
            if errors:
                res.status = "error"
                res.error = f"{type(errors[0]).__name__}: {errors[0]}"
            else:
                passed_samples = 0
                for i, text in enumerate(texts):
                    sample_ok = True
                    for check in case.checks:
                        try:
                            msg = run_check(check, text or "", case)
                        except LLMEvalError as exc:
                            res.status, res.error = "error", str(exc)
                            sample_ok = False
                            break
                        if msg is not None:
                            sample_ok = False
                            if len(texts) > 1:
                                msg = f"sample {i + 1}/{len(texts)}: {msg}"
                        res.checks.append({"check": check.describe(), "passed": msg is None,
                                           "message": msg, "line": check.line, "sample": i})
                    passed_samples += sample_ok
                if len(texts) > 1:
                    res.scores["pass_rate"] = passed_samples / len(texts)
                if res.status != "error" and any(not c["passed"] for c in res.checks):
                    res.status = "failed"
            results.append(res)
        return results

    # ------------------------------------------------------------------ metric gates

    def _metric_gate(self, gate: Gate, cases: Sequence[Case], results: list[CaseResult],
                     baseline_outputs: dict[str, str | None], baseline_model: Model | None) -> GateOutcome:
        import numpy as np

        from pytest_llmeval import stats

        confidence = gate.confidence or self.suite.spec.confidence
        agg = AggregateResult(name=gate.name, value=None, metric=gate.metric, threshold=gate.threshold,
                              op=gate.op, confidence=gate.confidence, model=self.model.name, kind="metric")
        try:
            metric = build_metric(gate.metric, gate.metric_options)
        except LLMEvalError as exc:
            agg.error = str(exc)
            return GateOutcome(agg, message=str(exc))
        agg.details["metric_kind"] = metric.kind
        agg.details["interval_confidence"] = confidence
        if gate.max_regression is not None:
            agg.details["max_regression"] = gate.max_regression
        errored = [r.id for r in results if r.status == "error" and r.output is None]
        if errored:
            agg.error = (f"{len(errored)} of {len(results)} cases have no output (model errors): "
                         f"{', '.join(errored[:10])}{' ...' if len(errored) > 10 else ''}; the gate is not "
                         f"computed on a partial set")
            return GateOutcome(agg, message=agg.error)
        missing = [c.id for c in cases if c.reference is None]
        if metric.needs_reference and missing:
            agg.error = (f"metric '{gate.metric}' needs a reference, but {len(missing)} cases have none "
                         f"({', '.join(missing[:5])}); add 'reference' to every case")
            return GateOutcome(agg, message=agg.error)

        # every sample counts as one prediction of its case
        preds: list[str] = []
        refs: list[list[str]] = []
        owner: list[int] = []
        for i, (case, res) in enumerate(zip(cases, results, strict=True)):
            texts = res.samples or [res.output]
            for t in texts:
                preds.append(t or "")
                refs.append(list(case.reference or []))
                owner.append(i)
        try:
            per_pred = metric.case_scores(preds, refs)
            if per_pred is not None:
                sums: dict[int, list[float]] = {}
                for o, s in zip(owner, per_pred, strict=True):
                    sums.setdefault(o, []).append(float(s))
                for i, res in enumerate(results):
                    if i in sums:
                        res.scores[gate.name] = float(np.mean(sums[i]))
            est = self._estimate(metric, preds, refs, per_pred, confidence)
        except LLMEvalError as exc:
            agg.error = str(exc)
            return GateOutcome(agg, message=str(exc))
        agg.value, agg.ci, agg.n, agg.method = est.value, (est.low, est.high), est.n, est.method
        agg.details["n_predictions"] = len(preds)
        if gate.threshold is not None:
            agg.passed = stats.clears(est, gate.threshold, gate.op, gate.confidence)

        report = None
        if metric.report is not None:
            try:
                report = metric.report(preds, refs)
            except Exception as exc:  # noqa: BLE001 - a report is a courtesy; its failure is not the gate's
                report = f"(report unavailable: {exc})"

        categories = self._categories(gate, metric, cases, preds, refs, per_pred, owner, confidence)
        if gate.per_category and gate.threshold is not None and categories:
            failing = [c for c in categories if c.passed is False]
            agg.details["failing_categories"] = [c.category for c in failing]
            if failing:
                agg.passed = False

        if baseline_model is not None and baseline_outputs:
            self._baseline_comparison(agg, metric, cases, preds, baseline_outputs, confidence)

        message = ""
        if agg.passed is False:
            message = self._failure_message(gate, agg, categories, results, report)
        return GateOutcome(agg, categories=categories, message=message, report=report)

    def _estimate(self, metric: Metric, preds: list[str], refs: list[list[str]],
                  per_pred: list[float] | None, confidence: float) -> Any:
        from pytest_llmeval import stats

        if metric.kind == "proportion" and per_pred is not None:
            return stats.wilson(float(sum(per_pred)), len(per_pred), confidence)
        if metric.kind == "mean" and per_pred is not None:
            return stats.bootstrap_mean(per_pred, confidence, seed=self.seed)
        return stats.bootstrap_statistic(len(preds), corpus_statistic(metric, preds, refs), confidence,
                                         seed=self.seed)

    def _categories(self, gate: Gate, metric: Metric, cases: Sequence[Case],
                    preds: list[str], refs: list[list[str]], per_pred: list[float] | None,
                    owner: list[int], confidence: float) -> list[AggregateResult]:
        from pytest_llmeval import stats

        cats = sorted({c.category for c in cases if c.category is not None})
        rows = []
        for cat in cats:
            idx = [k for k, o in enumerate(owner) if cases[o].category == cat]
            sub_scores = [per_pred[k] for k in idx] if per_pred is not None else None
            est = self._estimate(metric, [preds[k] for k in idx], [refs[k] for k in idx], sub_scores,
                                 confidence)
            row = AggregateResult(name=gate.name, value=est.value, ci=(est.low, est.high), n=est.n,
                                  method=est.method, category=cat, kind="category", metric=gate.metric,
                                  threshold=gate.threshold, op=gate.op, confidence=gate.confidence,
                                  model=self.model.name)
            if gate.per_category and gate.threshold is not None:
                row.passed = stats.clears(est, gate.threshold, gate.op, gate.confidence)
            rows.append(row)
        return rows

    def _baseline_comparison(self, agg: AggregateResult, metric: Metric, cases: Sequence[Case],
                             preds: list[str],
                             baseline_outputs: dict[str, str | None], confidence: float) -> None:
        """The same metric on the baseline's outputs, and the paired difference with its interval."""
        from pytest_llmeval import stats

        ids = [c.id for c in cases]
        if any(baseline_outputs.get(i) is None for i in ids):
            agg.details["baseline_error"] = "the baseline has no output for some cases"
            return
        b_preds = [baseline_outputs[i] or "" for i in ids]
        b_refs = [list(c.reference or []) for c in cases]
        # Pair each case's first sample with the baseline's output.
        n = len(ids)
        reps = len(preds) // n if n else 1
        f_preds = [preds[i * reps] for i in range(n)]
        base_stat = corpus_statistic(metric, b_preds, b_refs)
        new_stat = corpus_statistic(metric, f_preds, b_refs)
        delta = stats.paired_bootstrap(n, base_stat, new_stat, confidence, seed=self.seed)
        b_est = self._estimate(metric, b_preds, b_refs, metric.case_scores(b_preds, b_refs), confidence)
        agg.details["vs_baseline"] = {
            "model": self.baseline_name, "value": b_est.value,
            "ci": [b_est.low, b_est.high],
            "delta": delta.value, "delta_ci": [delta.low, delta.high],
        }

    @property
    def baseline_name(self) -> str | None:
        return self.suite.spec.baseline or "baseline"

    def _failure_message(self, gate: Gate, agg: AggregateResult, categories: list[AggregateResult],
                         results: list[CaseResult], report: str | None) -> str:
        lines = [describe_estimate(agg)]
        thr = f"{gate.threshold:g}"
        bound = "lower bound" if gate.op == "min" else "upper bound"
        if gate.confidence is not None:
            lines.append(f"the interval's {bound} must be {'>=' if gate.op == 'min' else '<='} {thr} "
                         f"(confidence {gate.confidence:g})")
        else:
            lines.append(f"required: {'>=' if gate.op == 'min' else '<='} {thr}")
        failing = [c for c in categories if c.passed is False]
        if failing:
            lines.append("categories below the threshold: " + ", ".join(
                f"{c.category} = {_fmt(c.value)} (n={c.n})" for c in failing))
        scored = [r for r in results if gate.name in r.scores]
        if scored:
            scored.sort(key=lambda r: r.scores[gate.name] or 0.0, reverse=gate.op == "max")
            lines.append(f"worst cases ({min(WORST_CASES, len(scored))} of {len(scored)}):")
            for r in scored[:WORST_CASES]:
                lines.append(format_case(r, r.scores[gate.name], gate.name))
        if report:
            lines += ["report:", report.rstrip()]
        return "\n".join(lines)

    def _per_case_minimums(self, results: list[CaseResult]) -> None:
        for gate in self.suite.gates:
            if gate.case_min is None:
                continue
            for res in results:
                score = res.scores.get(gate.name)
                if score is None or res.status == "error":
                    continue
                ok = score >= gate.case_min
                res.checks.append({"check": f"{gate.name} >= {gate.case_min:g}", "passed": ok,
                                   "message": None if ok else
                                   f"{gate.name} = {score:.3f} is below the per-case minimum "
                                   f"{gate.case_min:g}", "line": gate.line})
                if not ok:
                    res.status = "failed"

    # ------------------------------------------------------------------ judge and contamination

    def _judge_gates(self, outcome: SuiteOutcome, cases: Sequence[Case], results: list[CaseResult],
                     baseline_model: Model | None, baseline_error: BaseException | None,
                     wanted: Callable[[str], bool]) -> None:
        jspec = self.suite.spec.judge
        assert jspec is not None
        pair_name = None
        if jspec.pairwise is not None:
            bname = baseline_model.name if baseline_model is not None else (self.suite.spec.baseline
                                                                            or "baseline")
            pair_name = self.win_rate_key or f"win_rate[{self.model.name}>{bname}]"
        names = [n for n, on in (("judge_score", jspec.score is not None), (pair_name, pair_name))
                 if on and n and wanted(n)]
        if not names:
            return
        try:
            judge = self.judge_provider() if self.judge_provider is not None else None
            if judge is None:
                raise Skip("no judge configured: set judge.model in the suite, --llmeval-judge, or "
                           "override the llm_judge fixture")
        except Skip as exc:
            for n in names:
                outcome.gates[n] = _skipped(n, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - the judge gates are the ones that break
            for n in names:
                outcome.gates[n] = _errored(n, f"the judge could not be loaded: {exc}")
            return
        from pytest_llmeval.judge.gates import JudgeCase, run_pairwise_gate, run_score_gate

        by_id = {r.id: r for r in results}
        jcases = [JudgeCase(id=c.id, prompt=_prompt_text(by_id[c.id].prompt), output=by_id[c.id].output,
                            baseline_output=by_id[c.id].baseline_output,
                            reference=c.reference[0] if c.reference else None) for c in cases]
        confidence = self.suite.spec.confidence
        if jspec.score is not None and wanted("judge_score"):
            cfg = jspec.score.model_dump(exclude_none=True)
            outcome.gates["judge_score"] = self._run_judge(
                "judge_score", lambda: run_score_gate(judge, jcases, cfg, confidence=confidence,
                                                      seed=self.seed), by_id, "score")
        if pair_name and wanted(pair_name) and jspec.pairwise is not None:
            if baseline_model is None:
                why = f"the baseline could not generate: {baseline_error}" if baseline_error else (
                    "pairwise judging needs a baseline: set 'baseline:' in the suite, --llmeval-baseline, "
                    "or override the llm_baseline fixture")
                outcome.gates[pair_name] = _errored(pair_name, why)
                return
            cfg = jspec.pairwise.model_dump(exclude_none=True)
            outcome.gates[pair_name] = self._run_judge(
                pair_name, lambda: run_pairwise_gate(
                    judge, jcases, cfg, model_name=self.model.name, baseline_name=baseline_model.name,
                    confidence=confidence, seed=self.seed), by_id, "pairwise")

    def _run_judge(self, name: str, fn: Callable[[], Any], by_id: dict[str, CaseResult],
                   key: str) -> GateOutcome:
        self.progress.start(f"judge {name}", len(by_id))
        try:
            res = fn()
            self.progress.advance(len(by_id))
        except Skip as exc:
            return _skipped(name, str(exc))
        except Exception as exc:  # noqa: BLE001
            if type(exc).__name__ == "MissingAPIKey":
                return _skipped(name, str(exc))
            return _errored(name, f"{type(exc).__name__}: {exc}")
        finally:
            self.progress.finish()
        for cid, info in res.per_case.items():
            if cid in by_id:
                by_id[cid].judge[key] = info
        agg = res.aggregate
        return GateOutcome(agg, message=res.message if agg.passed is False or agg.error else "")

    def _contamination_gate(self, cases: Sequence[Case], results: list[CaseResult]) -> GateOutcome:
        from pytest_llmeval.contamination.gate import run_gate

        cfg = dict(self.suite.spec.contamination or {})
        by_id = {r.id: r for r in results}
        payload = [{**c.fields, "id": c.id, "text": _prompt_text(by_id[c.id].prompt),
                    "reference": c.reference[0] if c.reference else None} for c in cases]
        agg = AggregateResult(name="contamination", value=None, kind="contamination",
                              threshold=cfg.get("max_contaminated"), op="max")
        try:
            res = run_gate(cfg, suite_dir=self.suite.base_dir, cases=payload)
        except Exception as exc:  # noqa: BLE001
            agg.error = f"{type(exc).__name__}: {exc}"
            return GateOutcome(agg, message=agg.error)
        agg.value = float(res.n_contaminated)
        agg.n = res.n_cases
        agg.passed = res.passed
        agg.details = dict(res.details) if isinstance(res.details, dict) else {}
        agg.details["fraction"] = res.n_contaminated / res.n_cases if res.n_cases else 0.0
        return GateOutcome(agg, message="" if res.passed else res.message)


def corpus_statistic(metric: Metric, preds: Sequence[str],
                     refs: Sequence[Sequence[str]]) -> Callable[[Any], float]:
    """``indices -> corpus value`` for the bootstrap.

    With sufficient statistics (every built-in metric) all resamples are summed in
    one matrix product; otherwise the corpus metric is recomputed on the resampled
    cases (see :mod:`pytest_llmeval.metrics.resample`).
    """
    from pytest_llmeval.metrics.resample import corpus_statistic as statistic

    return statistic(metric, preds, refs)


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(str(m.get("content", "")) for m in prompt if isinstance(m, dict))


def _skipped(name: str, reason: str) -> GateOutcome:
    return GateOutcome(AggregateResult(name=name, value=None, kind="judge"), skip=reason)


def _errored(name: str, why: str) -> GateOutcome:
    agg = AggregateResult(name=name, value=None, kind="judge", error=why)
    return GateOutcome(agg, message=why)


def _describe(model: Model) -> dict[str, Any]:
    try:
        return model.describe()
    except Exception as exc:  # noqa: BLE001 - identity is informative; never fail a run on it
        return {"name": model.name, "describe_error": str(exc)}
