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

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llmeval.errors import LLMEvalError
from pytest_llmeval.gates.base import BaselineRun, Gate, GateContext, GateOutcome
from pytest_llmeval.gates.text import format_case
from pytest_llmeval.models.base import GenerationOutcome, GenerationParams, GenerationRequest, Model
from pytest_llmeval.results import CaseResult
from pytest_llmeval.spec import Case, Suite

__all__ = ["SuiteEvaluator", "SuiteOutcome", "format_case", "run_gates", "small_n_warning"]


@dataclass
class SuiteOutcome:
    """Everything one evaluation produced: per-case results, gate outcomes, model identities."""

    cases: dict[str, CaseResult]
    gates: dict[str, GateOutcome]
    warnings: list[str] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    fatal: BaseException | None = None
    baseline: BaselineRun | None = None
    """The comparison model's outputs as the gates saw them (None when the suite has none)."""


Generated = list[list[tuple[GenerationOutcome, dict[str, Any]]]]


@dataclass
class GenerationRun:
    """What one model generated for a list of cases.

    Attributes:
        samples: per case, per sample: the final outcome (the last turn's answer, or the
            exception that stopped the conversation) and its request record.
        turns: per case, per sample: the answers of the turns that succeeded, in order.
        records: per case: the request record of every request made (each sample, each turn).
    """

    samples: Generated
    turns: list[list[list[str]]]
    records: list[list[dict[str, Any]]]


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

    def _generate(self, model: Model, cases: Sequence[Case], repeat: int) -> GenerationRun:
        """Every case's samples; multi-turn cases in rounds (all first turns in one call, then all
        second turns...), each turn's history holding that sample's own earlier answers."""
        # ---- multiple choice: questions scored by log-likelihood are not generated (see that gate)
        from pytest_llmeval.gates.multiple_choice import without_generation

        scored = without_generation(self.suite)
        if scored:
            kept = [c for c in cases if c.id not in scored]
            sub = self._generate(model, kept, repeat) if kept else GenerationRun([], [], [])
            index = {c.id: i for i, c in enumerate(kept)}
            none: tuple[GenerationOutcome, dict[str, Any]] = ("", {"scoring": "loglikelihood"})
            return GenerationRun(
                samples=[[none] * repeat if c.id in scored else sub.samples[index[c.id]] for c in cases],
                turns=[[[] for _ in range(repeat)] if c.id in scored else sub.turns[index[c.id]]
                       for c in cases],
                records=[[] if c.id in scored else sub.records[index[c.id]] for c in cases])
        # ----
        slots = [(ci, s) for ci in range(len(cases)) for s in range(repeat)]
        answers: dict[tuple[int, int], list[str]] = {slot: [] for slot in slots}
        records: dict[tuple[int, int], list[dict[str, Any]]] = {slot: [] for slot in slots}
        final: dict[tuple[int, int], tuple[GenerationOutcome, dict[str, Any]]] = {}
        n_turns = [len(c.turns) if c.turns is not None else 1 for c in cases]
        self.progress.start(model.name, sum(n_turns[ci] for ci, _ in slots))
        try:
            pending = slots
            while pending:
                requests = []
                for ci, s in pending:
                    case = cases[ci]
                    prompt = (self.suite.render_turn(case, answers[(ci, s)]) if case.turns is not None
                              else self.suite.render(case))
                    requests.append(GenerationRequest(prompt=prompt, params=self.params, sample=s,
                                                      case_id=case.id))
                pairs = generate_with_info(model, requests, self.progress.advance)
                if len(pairs) != len(requests):
                    raise LLMEvalError(f"model {model.name!r} returned {len(pairs)} outputs for "
                                       f"{len(requests)} requests")
                later = []
                for slot, (out, info) in zip(pending, pairs, strict=True):
                    records[slot].append(info)
                    done = len(answers[slot]) + 1
                    if isinstance(out, str) and done < n_turns[slot[0]]:
                        answers[slot].append(out)
                        later.append(slot)
                        continue
                    if isinstance(out, str):
                        answers[slot].append(out)
                    else:  # the conversation stops here: its later turns are never asked
                        self.progress.advance(n_turns[slot[0]] - done)
                    final[slot] = (out, info)
                pending = later
        finally:
            self.progress.finish()
        return GenerationRun(
            samples=[[final[(ci, s)] for s in range(repeat)] for ci in range(len(cases))],
            turns=[[list(answers[(ci, s)]) for s in range(repeat)] for ci in range(len(cases))],
            records=[[r for s in range(repeat) for r in records[(ci, s)]] for ci in range(len(cases))])

    # ------------------------------------------------------------------ main

    def run(self, selected: set[str] | None = None, gates_selected: set[str] | None = None,
            only: set[str] | None = None) -> SuiteOutcome:
        """Evaluate. ``selected``: case ids to evaluate (None = all); ``gates_selected``: gate names.

        ``only``: the case ids of this shard when ``--llmeval-shard-cases`` splits the suite; the
        gates then run over those cases alone (a partial value that ``llmeval merge`` recomputes).
        Models that load their weights during the run say so to the progress reporter.
        """
        from pytest_llmeval.models.base import listen_for_loading

        with listen_for_loading(getattr(self.progress, "loading", None)):
            return self._run(selected, gates_selected, only)

    def _run(self, selected: set[str] | None, gates_selected: set[str] | None,
             only: set[str] | None) -> SuiteOutcome:
        suite = self.suite
        gates = [g for g in suite.gates if gates_selected is None or g.name in gates_selected]
        need_all = gates_selected is None or bool(gates)
        cases = [c for c in suite.cases if need_all or selected is None or c.id in selected]
        if only is not None:
            cases = [c for c in cases if c.id in only]
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
        outcome.baseline = baseline
        ctx = GateContext(suite=suite, cases=cases, results=results, model_name=self.model.name,
                          baseline=baseline, judge=self.judge_provider, seed=self.seed,
                          confidence=suite.spec.confidence, progress=self.progress, model=self.model)
        outcome.gates = run_gates(ctx, gates)
        warning = small_n_warning(suite, len(suite.cases) if only is not None else len(cases))
        if warning:
            outcome.warnings.append(warning)
        return outcome

    def _baseline(self, cases: Sequence[Case], outcome: SuiteOutcome,
                  gates: list[Gate]) -> BaselineRun | None:
        judge = self.suite.spec.judge
        if judge is not None and judge.pairwise is not None and judge.pairwise.against == "reference":
            return self._reference_baseline(cases, outcome)
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
        turns: dict[str, list[str | None]] = {}
        for ci, (case, outs) in enumerate(zip(cases, generated.samples, strict=True)):
            o = outs[0][0]
            text = o if isinstance(o, str) else None
            outputs[case.id] = text
            outcome.cases[case.id].baseline_output = text
            if case.turns is not None:
                answers = _padded(generated.turns[ci][0], len(case.turns))
                turns[case.id] = answers
                for turn, answer in zip(outcome.cases[case.id].turns, answers, strict=True):
                    turn.baseline_output = answer
        return BaselineRun(name=name, outputs=outputs, turns=turns, model=model)

    def _reference_baseline(self, cases: Sequence[Case], outcome: SuiteOutcome) -> BaselineRun:
        """``pairwise: {against: reference}``: each case's reference answer is the other side."""
        outputs: dict[str, str | None] = {}
        turns: dict[str, list[str | None]] = {}
        for case in cases:
            if case.turns is not None:
                turns[case.id] = list(case.turn_references or [None] * len(case.turns))
                outputs[case.id] = turns[case.id][-1]
                for turn, ref in zip(outcome.cases[case.id].turns, turns[case.id], strict=True):
                    turn.baseline_output = ref
            else:
                outputs[case.id] = case.reference[0] if case.reference else None
            outcome.cases[case.id].baseline_output = outputs[case.id]
        return BaselineRun(name="reference", outputs=outputs, turns=turns)

    def _case_results(self, cases: Sequence[Case], generated: GenerationRun) -> list[CaseResult]:
        from pytest_llmeval.checks import run_check
        from pytest_llmeval.results import TurnResult

        results = []
        for ci, (case, outs) in enumerate(zip(cases, generated.samples, strict=True)):
            texts = [o if isinstance(o, str) else None for o, _ in outs]
            errors = [o for o, _ in outs if not isinstance(o, str)]
            prompt = self.suite.render(case)
            turn_results: list[TurnResult] = []
            if case.turns is not None:
                answers = generated.turns[ci][0]
                # the conversation the last answer replied to (as far as it got)
                prompt = self.suite.render_turn(case, answers[:len(case.turns) - 1])
                refs = case.turn_references or [None] * len(case.turns)
                turn_results = [TurnResult(user=u, output=a, reference=r) for u, a, r in
                                zip(case.turns, _padded(answers, len(case.turns)), refs, strict=True)]
            res = CaseResult(id=case.id, prompt=prompt, output=texts[0],
                             reference=case.reference_display, category=case.category,
                             difficulty=case.difficulty, tags=list(case.tags),
                             fields={k: v for k, v in case.fields.items()
                                     if isinstance(v, (str, int, float, bool)) or v is None},
                             requests=generated.records[ci], turns=turn_results)
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


def _padded(answers: list[str], n: int) -> list[str | None]:
    """A conversation's answers, with None for the turns never reached (an earlier turn failed)."""
    return [*answers, *[None] * (n - len(answers))]


def run_gates(ctx: GateContext, gates: Sequence[Gate]) -> dict[str, GateOutcome]:
    """Every gate's per-case step (all of the suite's gates), then the selected ``gates``' verdicts.

    The one place gates run: the evaluator calls it after generating, and ``llmeval merge``
    calls it on the per-case records of a suite whose cases were split over shards.
    """
    broken: dict[str, GateOutcome] = {}
    for gate in ctx.suite.gates:  # per-case work of every gate: case items show it even under -k
        failed = _isolated(gate, ctx, functools.partial(gate.prepare_cases, ctx))
        if failed is not None:  # the gate's own step broke: its ERROR, never a verdict on half the work
            broken[gate.name] = failed
    for gate in ordered(gates):
        ctx.gates[gate.name] = broken.get(gate.name) or _isolated(gate, ctx,
                                                                  functools.partial(gate.evaluate, ctx))
    return {g.name: ctx.gates[g.name] for g in gates}


def small_n_warning(suite: Suite, n: int) -> str | None:
    """The warning of a suite with too few cases for its intervals to say much."""
    from pytest_llmeval.stats import SMALL_N

    if 0 < n < SMALL_N:
        return (f"{suite.name}: only {n} cases; intervals this wide say little "
                f"(aim for 100+ cases for a gate you rely on)")
    return None


def _isolated(gate: Gate, ctx: GateContext, fn: Callable[[], Any]) -> Any:
    """Run one gate's step; a bug in one gate kind is that gate's ERROR, never the suite's."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001
        from pytest_llmeval.gates.base import error_outcome

        return error_outcome(gate.name, gate.kind, f"gate '{gate.name}' ({gate.kind}) raised "
                                                   f"{type(exc).__name__}: {exc}")


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

    return asdict(info) if is_dataclass(info) and not isinstance(info, type) else {}


def _describe(model: Model) -> dict[str, Any]:
    try:
        return model.describe()
    except Exception as exc:  # noqa: BLE001 - identity is informative; never fail a run on it
        return {"name": model.name, "describe_error": str(exc)}
