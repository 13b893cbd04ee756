"""The ``judge_score`` gate: ``judge: {score: {min_mean: ..., case_min: ...}}``.

The judge scores every output; the gate is the mean score with a bootstrap
interval. ``case_min`` adds a per-case check (a safety case must score at least 7),
which fails that case's item.

A multi-turn case is graded as MT-Bench grades it: each turn gets its own score,
turn 1 judged alone and each later turn with the conversation before it (and each
turn's reference, when the case gives one); the case's score is the mean of its
turns, and ``case_min`` applies to every turn. The outcome carries one row per case
category and, for multi-turn cases, one per turn.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, model_validator

from pytest_llmeval.gates.base import (
    DisplayRow,
    Gate,
    GateContext,
    GateOutcome,
    GateSkip,
    GateSpec,
    one_spelling,
    skip_outcome,
)
from pytest_llmeval.gates.registry import register_gate
from pytest_llmeval.results import AggregateResult


class ScoreJudgeSpec(GateSpec):
    """``judge.score``: criteria, rubric and thresholds of the scoring judge."""

    criteria: str | None = None
    min_mean: float | None = Field(default=None, validation_alias=AliasChoices("min_mean", "min"))
    case_min: float | None = None
    confidence: float | None = Field(default=None, gt=0, lt=1)
    rubric: dict[str, str] | list[str] | None = None
    max_regression: float | None = Field(default=None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        return one_spelling(data, "min_mean")


def judge_cases(ctx: GateContext) -> list[Any]:
    """The judge's view of each case: prompt, outputs, reference, category and, for a multi-turn
    case, every turn of both conversations."""
    from pytest_llmeval.gates.contamination import prompt_text
    from pytest_llmeval.judge.gates import JudgeCase

    by_id = ctx.by_id
    baseline = ctx.baseline.outputs if ctx.baseline is not None else {}
    baseline_turns = ctx.baseline.turns if ctx.baseline is not None else {}
    out = []
    for c in ctx.cases:
        res = by_id[c.id]
        turns: dict[str, Any] = {}
        if c.turns is not None:
            n = len(c.turns)
            turns = {"turns": tuple(c.turns),
                     "turn_outputs": tuple(t.output for t in res.turns) if res.turns else (None,) * n,
                     "baseline_turn_outputs": tuple(baseline_turns.get(c.id) or (None,) * n),
                     "turn_references": tuple(c.turn_references or (None,) * n)}
        out.append(JudgeCase(id=c.id, prompt=prompt_text(res.prompt), output=res.output,
                             baseline_output=baseline.get(c.id),
                             reference=c.reference[0] if c.reference else None, category=c.category,
                             **turns))
    return out


def judged(gate: Gate, ctx: GateContext, run: Any, key: str) -> GateOutcome:
    """Run a judge computation with progress; no judge is a skip, a broken one this gate's error."""
    try:
        judge = ctx.get_judge()
    except GateSkip as exc:
        return skip_outcome(gate.name, gate.kind, str(exc))
    except Exception as exc:  # noqa: BLE001 - the judge gates are the ones that break
        if type(exc).__name__ in ("MissingAPIKey", "NoJudgeConfigured"):
            return skip_outcome(gate.name, gate.kind, str(exc))
        agg = gate.aggregate(error=f"the judge could not be loaded: {type(exc).__name__}: {exc}")
        return GateOutcome(agg, message=agg.error or "")
    ctx.progress.start(f"judge {gate.name}", len(ctx.results))
    try:
        res = run(judge)
        ctx.progress.advance(len(ctx.results))
    except GateSkip as exc:
        return skip_outcome(gate.name, gate.kind, str(exc))
    except Exception as exc:  # noqa: BLE001
        if type(exc).__name__ == "MissingAPIKey":
            return skip_outcome(gate.name, gate.kind, str(exc))
        agg = gate.aggregate(error=f"{type(exc).__name__}: {exc}")
        return GateOutcome(agg, message=agg.error or "")
    finally:
        ctx.progress.finish()
    by_id = ctx.by_id
    for cid, info in res.per_case.items():
        if cid in by_id:
            by_id[cid].judge[key] = info
    agg = res.aggregate
    agg.kind = gate.kind
    return GateOutcome(agg, categories=list(res.categories),
                       message=res.message if agg.passed is False or agg.error else "")


@register_gate
class JudgeScoreGate(Gate):
    recomputable = True
    kind = "judge_score"
    section = None
    Spec = ScoreJudgeSpec
    description = "the judge's mean score with its interval, and per-case minimums"

    @classmethod
    def display_rows(cls, agg: AggregateResult) -> list[DisplayRow]:
        """The judge, its scale and the mean of each rubric criterion."""
        d = agg.details
        rows = [DisplayRow("judge", str(d["judge"]), style="text")] if d.get("judge") else []
        if isinstance(d.get("scale"), list) and len(d["scale"]) == 2:
            rows.append(DisplayRow("scale", f"{d['scale'][0]:g}-{d['scale'][1]:g}", style="text"))
        for name, mean in (d.get("rubric_means") or {}).items():
            rows.append(DisplayRow(f"rubric: {name}", mean))
        if d.get("below_case_min"):
            rows.append(DisplayRow("cases below case_min", str(len(d["below_case_min"])), style="text"))
        return rows

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        from pytest_llmeval.judge.gates import run_score_gate

        spec: ScoreJudgeSpec = self.spec
        cases = judge_cases(ctx)
        outcome = judged(self, ctx, lambda judge: run_score_gate(
            judge, cases, spec, confidence=ctx.confidence, seed=ctx.seed, name=self.name), "score")
        if spec.case_min is not None:
            for res in ctx.results:
                info = res.judge.get("score") or {}
                score = info.get("score")
                if score is None or res.status == "error":
                    continue
                ok = score >= spec.case_min
                res.checks.append({"check": f"judge_score >= {spec.case_min:g}", "passed": ok,
                                   "message": None if ok else
                                   f"judge score {score:g} is below the per-case minimum {spec.case_min:g}",
                                   "line": self.line})
                if not ok:
                    res.status = "failed"
        return outcome
