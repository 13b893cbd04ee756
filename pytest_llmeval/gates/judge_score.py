"""The ``judge_score`` gate: ``judge: {score: {min_mean: ..., case_min: ...}}``.

The judge scores every output; the gate is the mean score with a bootstrap
interval. ``case_min`` adds a per-case check (a safety case must score at least 7),
which fails that case's item.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, model_validator

from pytest_llmeval.gates.base import (
    Gate,
    GateContext,
    GateOutcome,
    GateSkip,
    GateSpec,
    one_spelling,
    skip_outcome,
)
from pytest_llmeval.gates.registry import register_gate


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
    from pytest_llmeval.gates.contamination import prompt_text
    from pytest_llmeval.judge.gates import JudgeCase

    by_id = ctx.by_id
    baseline = ctx.baseline.outputs if ctx.baseline is not None else {}
    return [JudgeCase(id=c.id, prompt=prompt_text(by_id[c.id].prompt), output=by_id[c.id].output,
                      baseline_output=baseline.get(c.id),
                      reference=c.reference[0] if c.reference else None) for c in ctx.cases]


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
    return GateOutcome(agg, message=res.message if agg.passed is False or agg.error else "")


@register_gate
class JudgeScoreGate(Gate):
    recomputable = True
    kind = "judge_score"
    section = None
    Spec = ScoreJudgeSpec
    description = "the judge's mean score with its interval, and per-case minimums"

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
