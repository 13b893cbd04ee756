"""The ``contamination:`` gate: the suite's cases scanned against its training files."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from pytest_llmeval.errors import LLMEvalError
from pytest_llmeval.gates.base import DisplayRow, Gate, GateContext, GateOutcome, GateSpec
from pytest_llmeval.gates.registry import register_gate
from pytest_llmeval.results import AggregateResult


class ContaminationSpec(GateSpec):
    """``contamination:``: which training files, how to match, and how many contaminated cases pass."""

    train: list[str] = Field(min_length=1)
    n: int = Field(default=13, ge=1, le=1000)
    fields: list[str] | None = None
    train_fields: list[str] | None = None
    normalize: dict[str, Any] | None = None
    tokenizer: str | None = None
    min_overlap: float = Field(default=0.0, ge=0, le=1)
    max_doc_freq: int | None = Field(default=None, ge=1)
    max_contaminated: int | None = Field(default=None, ge=0)
    max_contaminated_fraction: float | None = Field(default=None, ge=0, le=1)
    workers: int | None = Field(default=None, ge=1, le=1024)
    max_sources: int = Field(default=3, ge=1)

    @field_validator("train", "fields", "train_fields", mode="before")
    @classmethod
    def _one_string(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("normalize")
    @classmethod
    def _normalizer(cls, v: Any) -> Any:
        from pytest_llmeval.contamination.normalize import normalizer_from
        from pytest_llmeval.errors import ConfigError

        try:
            normalizer_from(v, "contamination.normalize")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _one_limit(self) -> ContaminationSpec:
        if self.max_contaminated is not None and self.max_contaminated_fraction is not None:
            raise ValueError("give max_contaminated or max_contaminated_fraction, not both")
        return self


@register_gate
class ContaminationGate(Gate):
    recomputable = True
    kind = "contamination"
    section = "contamination"
    Spec = ContaminationSpec
    description = "n-gram overlap of the suite's cases with training files, against a maximum"

    @classmethod
    def display_rows(cls, agg: AggregateResult) -> list[DisplayRow]:
        """Contaminated cases of all, their share, and how much training data was scanned."""
        d = agg.details
        rows = []
        if isinstance(d.get("n_contaminated"), int) and isinstance(d.get("n_cases"), int):
            rows.append(DisplayRow("contaminated cases", f"{d['n_contaminated']} of {d['n_cases']}",
                                   style="text"))
        if d.get("fraction") is not None:
            rows.append(DisplayRow("share contaminated", d["fraction"], style="percent"))
        if isinstance(d.get("records_scanned"), int):
            rows.append(DisplayRow("training records scanned", str(d["records_scanned"]), style="text"))
        return rows

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        from pytest_llmeval.contamination.gate import run_gate

        spec: ContaminationSpec = self.spec
        by_id = ctx.by_id
        payload = [{**c.fields, "id": c.id, "text": _case_text(c, by_id[c.id].prompt),
                    "reference": _case_reference(c)} for c in ctx.cases]
        limit = spec.max_contaminated_fraction if spec.max_contaminated_fraction is not None \
            else (spec.max_contaminated or 0)
        agg = self.aggregate(threshold=float(limit), op="max")
        if spec.max_contaminated_fraction is not None:
            agg.details["limit"] = "fraction"
        try:
            res = run_gate(spec.model_dump(exclude_none=True), suite_dir=ctx.suite.base_dir, cases=payload)
        except LLMEvalError as exc:  # missing training files and the like: this gate's ERROR
            agg.error = str(exc)
            return GateOutcome(agg, message=agg.error)
        agg.value = float(res.n_contaminated)
        agg.n = res.n_cases
        agg.passed = res.passed
        agg.details.update(dict(res.details) if isinstance(res.details, dict) else {})
        agg.details["fraction"] = res.n_contaminated / res.n_cases if res.n_cases else 0.0
        return GateOutcome(agg, message="" if res.passed else res.message)


def _case_text(case: Any, prompt: Any) -> str:
    """The case's own text: a conversation's user messages (never the model's answers in its history)."""
    return "\n\n".join(case.turns) if case.turns is not None else prompt_text(prompt)


def _case_reference(case: Any) -> str | None:
    if case.turn_references is not None:
        return "\n\n".join(r for r in case.turn_references if r) or None
    return case.reference[0] if case.reference else None


def prompt_text(prompt: Any) -> str:
    """A prompt as plain text (chat messages joined by blank lines)."""
    if isinstance(prompt, str):
        return prompt
    return "\n\n".join(str(m.get("content", "")) for m in prompt if isinstance(m, dict))
