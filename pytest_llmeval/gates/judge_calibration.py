"""The ``judge_calibration:`` section: does the LLM judge agree with the people?

::

    judge_calibration: {min_kappa: 0.4}

On the items of the suite's blind human evaluation (the ``human:`` section), compares
the pairwise judge's verdict (``win``/``loss``/``tie`` for the model, from the win-rate
gate) with the human majority: raw agreement, Cohen's kappa (unweighted: the three
outcomes are categories), the confusion table, and the judge's position consistency
on those items (the share of pairs it judged the same way in both presentation
orders). A judge that humans do not corroborate should not gate releases on its own.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from pydantic import Field, field_validator

from pytest_llmeval import numbers
from pytest_llmeval.gates.base import (
    DisplayRow,
    Gate,
    GateContext,
    GateOutcome,
    GateSpec,
    check_in_range,
    error_outcome,
)
from pytest_llmeval.gates.registry import register_gate
from pytest_llmeval.results import AggregateResult

OUTCOMES = ("win", "loss", "tie")


class JudgeCalibrationSpec(GateSpec):
    """Options of ``judge_calibration:``; with neither threshold the numbers are reported only."""

    # The ranges are checked by the validators below (with a message naming the key); the schema
    # states them for editors.
    min_kappa: float | None = Field(default=None, json_schema_extra={"minimum": -1, "maximum": 1})
    min_agreement: float | None = Field(default=None, json_schema_extra={"minimum": 0, "maximum": 1})

    @field_validator("min_kappa")
    @classmethod
    def _kappa(cls, v: float | None) -> float | None:
        return check_in_range(v, -1.0, 1.0, "min_kappa")

    @field_validator("min_agreement")
    @classmethod
    def _agree(cls, v: float | None) -> float | None:
        return check_in_range(v, 0.0, 1.0, "min_agreement")


def _human_results(ctx: GateContext) -> tuple[Any, str | None]:
    from pytest_llmeval.gates.human import HumanOutcome

    outs = [o for o in ctx.gates.values() if isinstance(o, HumanOutcome)]
    if not outs:
        return None, ("judge calibration compares the judge with human ratings: add a 'human:' section "
                      "(blind_set, ratings) to the suite")
    got = [o for o in outs if o.results is not None]
    if not got:
        return None, f"no human results to compare with ({outs[0].name}: {outs[0].message.splitlines()[0]})"
    return got[0].results, None


@register_gate
class JudgeCalibrationGate(Gate):
    """``judge_calibration``: Cohen's kappa of the pairwise judge against the human majority."""

    recomputable = True
    kind = "judge_calibration"
    section = "judge_calibration"
    Spec = JudgeCalibrationSpec
    description = "agreement of the LLM judge's pairwise verdicts with the human majority"
    run_after = ("win_rate", "human_win_rate")

    @classmethod
    def display_rows(cls, agg: AggregateResult) -> list[DisplayRow]:
        """Raw agreement, Cohen's kappa and the judge's position consistency."""
        d = agg.details
        return [DisplayRow("raw agreement with humans", d.get("raw_agreement"), style="percent"),
                DisplayRow("Cohen's kappa", d.get("kappa")),
                DisplayRow("judge position consistency", d.get("position_consistency"), style="percent")]

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        from pytest_llmeval.human.agreement import cohen_kappa

        human, why = _human_results(ctx)
        if human is None:
            return error_outcome(self.name, self.kind, why or "no human results")
        majority: dict[str, str] = human.majority
        by_id = ctx.by_id
        pairs: list[tuple[str, str, str]] = []
        missing: list[str] = []
        consistent: list[bool] = []
        for item_id, h in majority.items():
            verdict = (by_id[item_id].judge.get("pairwise") if item_id in by_id else None) or {}
            j = verdict.get("verdict")
            if j not in OUTCOMES:
                missing.append(item_id)
                continue
            pairs.append((item_id, h, j))
            if verdict.get("consistent") is not None:
                consistent.append(bool(verdict["consistent"]))
        if missing:
            had_any = any((r.judge.get("pairwise") or {}).get("verdict") for r in ctx.results)
            hint = ("" if had_any else " (the suite has no pairwise judge verdicts: add "
                    "'judge: {pairwise: {against: baseline}}')")
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            return error_outcome(self.name, self.kind,
                                 f"the pairwise judge has no verdict for {len(missing)} of the "
                                 f"{len(majority)} human-rated items ({shown}){hint}")
        humans = [h for _, h, _ in pairs]
        judge = [j for _, _, j in pairs]
        n = len(pairs)
        raw = sum(h == j for h, j in zip(humans, judge, strict=True)) / n if n else math.nan
        kappa = cohen_kappa(humans, judge, labels=list(OUTCOMES)) if n else math.nan
        position = sum(consistent) / len(consistent) if consistent else None
        confusion = Counter(f"{h}/{j}" for h, j in zip(humans, judge, strict=True))
        spec: JudgeCalibrationSpec = self.spec
        summary = (f"judge vs humans on {n} items: agreement {raw:.0%}, Cohen's kappa "
                   f"{'n/a' if math.isnan(kappa) else numbers.number(kappa)}, judge position consistency "
                   f"{'n/a' if position is None else f'{position:.0%}'}")
        # The row's value is what its threshold is about: kappa, or raw agreement when only that is gated.
        by_kappa = spec.min_kappa is not None or spec.min_agreement is None
        value, threshold, method = ((kappa, spec.min_kappa, "cohen_kappa") if by_kappa
                                    else (raw, spec.min_agreement, "raw_agreement"))
        agg = self.aggregate(value=None if math.isnan(value) else value, n=n, threshold=threshold,
                             op="min", method=method,
                             details={"raw_agreement": raw, "kappa": None if math.isnan(kappa) else kappa,
                                      "position_consistency": position,
                                      "confusion_human_judge": dict(sorted(confusion.items())),
                                      "disagreements": [i for i, h, j in pairs if h != j],
                                      "summary": summary})
        if n == 0:
            agg.error = "no human-rated item to compare with the judge"
            return GateOutcome(agg, message=agg.error)
        if spec.min_kappa is not None and math.isnan(kappa):
            agg.error = (f"Cohen's kappa is undefined: humans and judge each gave one and the same outcome "
                         f"on every item ({summary}); rate items where the models differ")
            return GateOutcome(agg, message=agg.error)
        fails: list[str] = []
        if spec.min_kappa is not None and kappa < spec.min_kappa:
            fails.append(f"Cohen's kappa {numbers.number(kappa)} < {numbers.threshold(spec.min_kappa)}")
        if spec.min_agreement is not None and raw < spec.min_agreement:
            fails.append(f"raw agreement {raw:.0%} < {spec.min_agreement:.0%}")
        if spec.min_kappa is not None or spec.min_agreement is not None:
            agg.passed = not fails
        table = "  human/judge counts: " + ", ".join(f"{k} {v}" for k, v in sorted(confusion.items()))
        msg = summary + (" FAILED: " + "; ".join(fails) if fails else (" passed" if agg.passed else ""))
        return GateOutcome(agg, message=msg + "\n" + table, report=summary + "\n" + table)
