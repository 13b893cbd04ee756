"""The ``cost:`` gate: what the suite's generations cost, against a budget.

The verdict does not depend on the cache: the cost counted is this run's spend
plus the original cost of the answers replayed from the cache (both are reported
apart). A model without prices (local weights, ``python:``) has no cost to gate:
the gate is an ERROR that says so, never a pass on zero.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from pytest_llmeval import numbers
from pytest_llmeval.gates.base import DisplayRow, Gate, GateContext, GateOutcome, GateSpec
from pytest_llmeval.gates.registry import register_gate
from pytest_llmeval.results import AggregateResult


class CostSpec(GateSpec):
    """``cost: {max_usd: 2.5}`` for the whole suite, and/or ``max_usd_per_case``."""

    max_usd: float | None = Field(default=None, ge=0)
    max_usd_per_case: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some_limit(self) -> CostSpec:
        if self.max_usd is None and self.max_usd_per_case is None:
            raise ValueError("give max_usd and/or max_usd_per_case")
        return self


@register_gate
class CostGate(Gate):
    recomputable = True
    kind = "cost"
    section = "cost"
    Spec = CostSpec
    description = "the suite's generation cost in USD (fresh + cached) against a budget"

    @classmethod
    def display_rows(cls, agg: AggregateResult) -> list[DisplayRow]:
        """USD spent in this run, replayed from the cache, and the most expensive case."""
        d = agg.details
        labels = (("spent_usd", "spent in this run (USD)"), ("cached_usd", "from the cache (USD)"),
                  ("total_usd", "total (USD)"), ("max_case_usd", "most expensive case (USD)"))
        return [DisplayRow(label, d[key]) for key, label in labels if key in d]

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        spec: CostSpec = self.spec
        limit = spec.max_usd if spec.max_usd is not None else spec.max_usd_per_case
        agg = self.aggregate(threshold=limit, op="max", model=ctx.model_name)
        spent = cached = 0.0
        unknown = 0
        per_case: list[float] = []
        for r in ctx.results:
            case_cost = 0.0
            for info in r.requests:
                c = info.get("cost_usd")
                if c is None:
                    unknown += 1
                    continue
                case_cost += c
                if info.get("cached"):
                    cached += c
                else:
                    spent += c
            per_case.append(case_cost)
        if unknown:
            agg.error = (f"the cost of {unknown} request(s) is unknown: model {ctx.model_name!r} has no "
                         f"prices (set its 'price' option: input and output USD per million tokens)")
            return GateOutcome(agg, message=agg.error)
        total = spent + cached
        agg.value = total if spec.max_usd is not None else max(per_case, default=0.0)
        agg.n = len(ctx.results)
        agg.details.update({"spent_usd": spent, "cached_usd": cached, "total_usd": total,
                            "max_case_usd": max(per_case, default=0.0)})
        problems = []
        if spec.max_usd is not None and total > spec.max_usd:
            problems.append(f"total ${numbers.number(total)} > ${numbers.threshold(spec.max_usd)} "
                            f"(this run ${numbers.number(spent)}, from the cache ${numbers.number(cached)})")
        if spec.max_usd_per_case is not None and per_case and max(per_case) > spec.max_usd_per_case:
            worst = max(range(len(per_case)), key=per_case.__getitem__)
            problems.append(f"case[{ctx.results[worst].id}] cost ${numbers.number(per_case[worst])} > "
                            f"${numbers.threshold(spec.max_usd_per_case)}")
        agg.passed = not problems
        return GateOutcome(agg, message="cost over budget: " + "; ".join(problems) if problems else "")
