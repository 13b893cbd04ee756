"""The ``cost:`` gate: what the suite's generations cost, against a budget.

The verdict does not depend on the cache: the cost counted is this run's spend
plus the original cost of the answers replayed from the cache (both are reported
apart). A model without prices (local weights, ``python:``) has no cost to gate:
the gate is an ERROR that says so, never a pass on zero.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from pytest_llmeval.gates.base import Gate, GateContext, GateOutcome, GateSpec
from pytest_llmeval.gates.registry import register_gate


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
            problems.append(f"total ${total:.4f} > ${spec.max_usd:g} (this run ${spent:.4f}, "
                            f"from the cache ${cached:.4f})")
        if spec.max_usd_per_case is not None and per_case and max(per_case) > spec.max_usd_per_case:
            worst = max(range(len(per_case)), key=per_case.__getitem__)
            problems.append(f"case[{ctx.results[worst].id}] cost ${per_case[worst]:.4f} > "
                            f"${spec.max_usd_per_case:g}")
        agg.passed = not problems
        return GateOutcome(agg, message="cost over budget: " + "; ".join(problems) if problems else "")
