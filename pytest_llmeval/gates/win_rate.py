"""The ``win_rate[model>baseline]`` gate: ``judge: {pairwise: {min_win_rate: ..., min_lc_win_rate: ...}}``.

The judge compares the model's and the baseline's outputs case by case, in both
orders when ``swap`` is on (a disagreement counts as a tie). The gate is the win
rate (W + T/2)/n with a bootstrap interval; ``min_lc_win_rate`` also gates the
length-controlled win rate, so a model cannot win by writing longer answers.

``against`` is ``baseline`` (the suite's baseline model), another model reference, or
``reference``: each case's reference answer is the other side (AlpacaEval's method of
comparing with a reference model's outputs). A multi-turn case is one game per turn,
each judged in its own conversation (both conversations up to that turn), as MT-Bench does.
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
from pytest_llmeval.gates.judge_score import judge_cases, judged
from pytest_llmeval.gates.registry import register_gate
from pytest_llmeval.results import AggregateResult


class PairwiseJudgeSpec(GateSpec):
    """``judge.pairwise``: the comparison model, criteria and thresholds."""

    against: str = "baseline"
    criteria: str | None = None
    min_win_rate: float | None = Field(default=None, ge=0, le=1,
                                       validation_alias=AliasChoices("min_win_rate", "min"))
    min_lc_win_rate: float | None = Field(default=None, ge=0, le=1)
    confidence: float | None = Field(default=None, gt=0, lt=1)
    swap: bool = True
    max_regression: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        return one_spelling(data, "min_win_rate")


def win_rate_name(model: str, against: str) -> str:
    """The one name of a pairwise gate, used by the item, the summary, JUnit and the results file."""
    return f"win_rate[{model}>{against}]"


@register_gate
class WinRateGate(Gate):
    recomputable = True
    kind = "win_rate"
    section = None
    Spec = PairwiseJudgeSpec
    description = "the judge's pairwise win rate of the model over the baseline"

    @property
    def needs_baseline(self) -> bool:
        return True

    @classmethod
    def display_rows(cls, agg: AggregateResult) -> list[DisplayRow]:
        """Length-controlled win rate (with its own threshold), W/L/T, sign test, position bias."""
        d = agg.details
        if "wins" not in d:
            return []
        lc_min = d.get("min_lc_win_rate")
        lc_verdict = None if lc_min is None else ("pass" if d.get("lc_passed") else "fail")
        return [
            DisplayRow("length-controlled win rate", d.get("lc_win_rate"),
                       threshold=None if lc_min is None else f">= {lc_min:g}", verdict=lc_verdict),
            DisplayRow("wins / losses / ties", f"{d['wins']} / {d.get('losses', 0)} / {d.get('ties', 0)}",
                       style="text"),
            DisplayRow("sign test (wins vs losses)", d.get("sign_test_p"), style="p_value"),
            DisplayRow("position consistency", d.get("consistency_rate"), style="percent"),
            DisplayRow("first-position preference", d.get("first_position_preference"), style="percent"),
        ]

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        from pytest_llmeval.judge.gates import run_pairwise_gate

        spec: PairwiseJudgeSpec = self.spec
        baseline = ctx.baseline
        try:
            ctx.get_judge()
        except GateSkip as exc:  # no judge here: a skip (an error in strict mode) before anything else
            return skip_outcome(self.name, self.kind, str(exc))
        except Exception:  # noqa: BLE001 - reported below, by the judge call
            pass
        if baseline is None or baseline.error is not None:
            why = (f"the baseline could not generate: {baseline.error}" if baseline is not None else
                   "pairwise judging needs a baseline: set 'baseline:' in the suite, --llmeval-baseline, "
                   "or override the llm_baseline fixture")
            agg = self.aggregate(error=why)
            return GateOutcome(agg, message=why)
        cases = judge_cases(ctx)
        return judged(self, ctx, lambda judge: run_pairwise_gate(
            judge, cases, spec, model_name=ctx.model_name, baseline_name=baseline.name,
            confidence=ctx.confidence, seed=ctx.seed, name=self.name), "pairwise")
