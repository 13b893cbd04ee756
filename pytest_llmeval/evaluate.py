"""Run one suite: generate once (model and baseline), then run every gate.

This is the engine behind the pytest items, and knows nothing of pytest: it
takes a validated :class:`~pytest_llmeval.spec.Suite` and ready models, and
returns typed results. Each gate is a module of :mod:`pytest_llmeval.gates`;
this module only generates, applies the per-case checks, and hands the outputs
to the gates. Failures are isolated by stage: a model that cannot generate makes
every item of the suite an ERROR; a judge that cannot be reached affects only the
judge gates; one case whose generation failed is an ERROR for that case, and the
gates that need it say so instead of passing on the remaining cases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmeval.errors import LLMEvalError
from pytest_llmeval.gates.base import BaselineRun, Gate, GateContext, GateOutcome
from pytest_llmeval.gates.text import format_case
from pytest_llmeval.models.base import GenerationOutcome, GenerationParams, GenerationRequest, Model
from pytest_llmeval.results import CaseResult
from pytest_llmeval.spec import Case, Suite

__all__ = ["SuiteEvaluator", "SuiteOutcome", "format_case"]


@dataclass
class SuiteOutcome:
    """Everything one evaluation produced: per-case results, gate outcomes, model identities."""

    cases: dict[str, CaseResult]
    gates: dict[str, GateOutcome]
    warnings: list[str] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    fatal: BaseException | None = None


Generated = list[list[tuple[GenerationOutcome, dict[str, Any]]]]


class SuiteEvaluator:
    """Evaluates one suite with ready models.

    Args:
        suite: the validated suite.
        model: the evaluated model (already wrapped by the cache, if any).
        baseline: returns the comparison model (loaded lazily), or None.
        judge_provider: returns the judge for the judge gates (may raise GateSkip).
        seed: seed for every bootstrap, so intervals are reproducible.
        progress: a progress reporter (``start``, ``advance``, ``finish``).
    """

    def __init__(self, suite: Suite, model: Model, *, baseline: Callable[[], Model | None] | None = None,
                 judge_provider: Callable[[], Any] | None = None, seed: int = 0,
                 progress: Any = None) -> None:
        from pytest_llmeval.report.progress import NoProgress

        self.progress = progress if progress is not None else NoProgress()
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

    def _generate(self, model: Model, cases: Sequence[Case], repeat: int) -> Generated:
        requests = []
        for case in cases:
            prompt = self.suite.render(case)
            for s in range(repeat):
                requests.append(GenerationRequest(prompt=prompt, params=self.params, sample=s,
                                                  case_id=case.id))
        self.progress.start(model.name, len(requests))
        try:
            pairs = generate_with_info(model, requests, self.progress.advance)
        finally:
            self.progress.finish()
        if len(pairs) != len(requests):
            raise LLMEvalError(f"model {model.name!r} returned {len(pairs)} outputs for "
                               f"{len(requests)} requests")
        return [list(pairs[i * repeat:(i + 1) * repeat]) for i in range(len(cases))]

    # ------------------------------------------------------------------ main

    def run(self, selected: set[str] | None = None, gates_selected: set[str] | None = None) -> SuiteOutcome:
        """Evaluate. ``selected``: case ids to evaluate (None = all); ``gates_selected``: gate names.

        Models that load their weights during the run say so to the progress reporter.
        """
        from pytest_llmeval.models.base import listen_for_loading

        with listen_for_loading(getattr(self.progress, "loading", None)):
            return self._run(selected, gates_selected)

    def _run(self, selected: set[str] | None, gates_selected: set[str] | None) -> SuiteOutcome:
        suite = self.suite
        gates = [g for g in suite.gates if gates_selected is None or g.name in gates_selected]
        need_all = gates_selected is None or bool(gates)
        cases = [c for c in suite.cases if need_all or selected is None or c.id in selected]
        outcome = SuiteOutcome(cases={}, gates={})
        outcome.models[self.model.name] = _describe(self.model)
        try:
            generated = self._generate(self.model, cases, suite.spec.repeat)
        except Exception as exc:  # noqa: BLE001 - reported as the ERROR of every item of the suite
            outcome.fatal = exc
            return outcome
        results = self._case_results(cases, generated)
        outcome.cases = {r.id: r for r in results}
        baseline = self._baseline(cases, outcome, gates) if need_all else None
        ctx = GateContext(suite=suite, cases=cases, results=results, model_name=self.model.name,
                          baseline=baseline, judge=self.judge_provider, seed=self.seed,
                          confidence=suite.spec.confidence, progress=self.progress)
        broken: dict[str, GateOutcome] = {}
        for gate in suite.gates:  # per-case work of every gate: case items show it even under -k
            failed = self._isolated(gate, ctx, lambda g=gate: g.prepare_cases(ctx))
            if failed is not None:  # the gate's own step broke: its ERROR, never a verdict on half the work
                broken[gate.name] = failed
        for gate in ordered(gates):
            ctx.gates[gate.name] = broken.get(gate.name) or self._isolated(gate, ctx,
                                                                          lambda g=gate: g.evaluate(ctx))
        outcome.gates = {g.name: ctx.gates[g.name] for g in gates}
        from pytest_llmeval.stats import SMALL_N

        if len(cases) < SMALL_N and cases:
            outcome.warnings.append(
                f"{suite.name}: only {len(cases)} cases; intervals this wide say little "
                f"(aim for 100+ cases for a gate you rely on)")
        return outcome

    @staticmethod
    def _isolated(gate: Gate, ctx: GateContext, fn: Callable[[], Any]) -> Any:
        """Run one gate's step; a bug in one gate kind is that gate's ERROR, never the suite's."""
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001
            from pytest_llmeval.gates.base import error_outcome

            return error_outcome(gate.name, gate.kind, f"gate '{gate.name}' ({gate.kind}) raised "
                                                       f"{type(exc).__name__}: {exc}")

    def _baseline(self, cases: Sequence[Case], outcome: SuiteOutcome,
                  gates: list[Gate]) -> BaselineRun | None:
        wants = self.suite.spec.baseline is not None or any(g.needs_baseline for g in gates)
        if not wants or self.baseline_provider is None:
            return None
        name = self.suite.spec.baseline or "baseline"
        try:
            model = self.baseline_provider()
            if model is None:
                return None
            name = model.name
            outcome.models[model.name] = _describe(model)
            generated = self._generate(model, cases, 1)
        except Exception as exc:  # noqa: BLE001 - only the gates that need the baseline fail
            return BaselineRun(name=name, outputs={}, error=f"{type(exc).__name__}: {exc}"
                               if not isinstance(exc, LLMEvalError) else str(exc))
        outputs: dict[str, str | None] = {}
        for case, outs in zip(cases, generated, strict=True):
            o = outs[0][0]
            text = o if isinstance(o, str) else None
            outputs[case.id] = text
            outcome.cases[case.id].baseline_output = text
        return BaselineRun(name=name, outputs=outputs)

    def _case_results(self, cases: Sequence[Case], generated: Generated) -> list[CaseResult]:
        from pytest_llmeval.checks import run_check

        results = []
        for case, outs in zip(cases, generated, strict=True):
            texts = [o if isinstance(o, str) else None for o, _ in outs]
            errors = [o for o, _ in outs if not isinstance(o, str)]
            res = CaseResult(id=case.id, prompt=self.suite.render(case), output=texts[0],
                             reference=case.reference_display, category=case.category,
                             difficulty=case.difficulty, tags=list(case.tags),
                             fields={k: v for k, v in case.fields.items()
                                     if isinstance(v, (str, int, float, bool)) or v is None},
                             requests=[info for _, info in outs])
            if len(texts) > 1:
                res.samples = texts
            if errors:
                res.status = "error"
                res.generation_error = True
                bad = [i for i, t in enumerate(texts) if t is None]
                which = f" (sample {bad[0] + 1} of {len(texts)}; {len(bad)} failed)" if len(texts) > 1 else ""
                res.error = f"{type(errors[0]).__name__}: {errors[0]}{which}"
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


def ordered(gates: Sequence[Gate]) -> list[Gate]:
    """Gates in declaration order, except that a kind runs after the kinds it reads (``run_after``)."""
    first = [g for g in gates if not g.run_after]
    later = [g for g in gates if g.run_after]
    return first + later


def generate_with_info(model: Any, requests: list[GenerationRequest],
                       advance: Callable[[int], None]) -> list[tuple[GenerationOutcome, dict[str, Any]]]:
    """Outputs with one request record each (latency, tokens, cost, cached).

    Every model is seen through :class:`~pytest_llmeval.models.base.ModelBase`'s declared
    surface (``generate_with_info``): backends that measure their requests say what each
    cost; for the others the call's wall time divided by its size is the latency.
    """
    from pytest_llmeval.cache import CachedModel
    from pytest_llmeval.models.base import as_model_base

    # The cache records hits as cached; any other model through ModelBase's declared surface.
    recorder = model if isinstance(model, CachedModel) else as_model_base(model)
    pairs = recorder.generate_with_info(requests, progress=advance)
    return [(o, _info_dict(info)) for o, info in pairs]


def _info_dict(info: Any) -> dict[str, Any]:
    if info is None:
        return {}
    if isinstance(info, dict):
        return dict(info)
    to_dict = getattr(info, "to_dict", None)
    if to_dict is not None:
        return dict(to_dict())
    from dataclasses import asdict, is_dataclass

    return asdict(info) if is_dataclass(info) else {}


def _describe(model: Model) -> dict[str, Any]:
    try:
        return model.describe()
    except Exception as exc:  # noqa: BLE001 - identity is informative; never fail a run on it
        return {"name": model.name, "describe_error": str(exc)}
