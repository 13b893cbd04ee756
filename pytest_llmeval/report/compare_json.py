"""``llmeval compare --json``: the comparison as one JSON document with a published schema.

The document is checked against the pydantic models below before it is printed, so
what is printed always matches the schema; :func:`compare_json_schema` is the JSON
Schema (shipped as ``pytest_llmeval/report/compare.schema.json``, which a test keeps
equal to it). Numbers are raw floats (``null`` when missing or not finite), never
formatted text, so other tools can compute with them.

Version history: 1, the first.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
SCHEMA_FILE = "compare.schema.json"

Status = Literal["pass", "regressed", "error"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CaseChangeModel(_Strict):
    """One case whose per-case score moved between the runs."""

    id: str
    old_output: str | None = Field(description="The previous run's output (may be capped)")
    new_output: str | None
    old_score: float | None
    new_score: float | None


class GateComparisonModel(_Strict):
    """One aggregate compared across the two runs."""

    suite: str = Field(description="The suite's name")
    file: str = Field(description="The suite's file, relative to the rootdir (with name, its identity)")
    name: str = Field(description="The aggregate's name: exact_match, win_rate[ft>base]...")
    kind: str = Field(description="metric, judge_score, win_rate, ...")
    status: Status = Field(description="pass, regressed, or error (the gate could not be compared)")
    old_value: float | None
    new_value: float | None
    delta: float | None = Field(description="new_value - old_value")
    delta_ci: list[float] | None = Field(description="[low, high] interval of the delta at 95%")
    test: str = Field(description="The paired test used (McNemar, bootstrap, sign test)")
    p_value: float | None = Field(description="One-sided p value of 'the new run is worse'")
    p_adjusted: float | None = Field(description="p_value, Holm-adjusted across the suite's gates")
    p_better: float | None = Field(description="One-sided p value of 'the new run is better'")
    alpha: float
    tolerance: float | None = Field(description="Largest drop tolerated (max_regression), if any")
    higher_is_better: bool
    n_paired: int = Field(description="Cases present, and scored, in both runs")
    n_worse: int
    n_better: int
    regressed: bool
    improved: bool
    reason: str = Field(description="Why it regressed, in a sentence (empty otherwise)")
    error: str | None = Field(description="Why it could not be compared (status error)")
    worse_cases: list[CaseChangeModel] = Field(description="Every case that got worse, worst first")
    better_cases: list[CaseChangeModel] = Field(description="Up to 50 cases that got better")


class SuiteComparisonModel(_Strict):
    """The gates of one suite, and what is present in only one of the runs."""

    name: str
    file: str
    gates: list[GateComparisonModel]
    new_cases: list[str]
    missing_cases: list[str]
    new_aggregates: list[str]
    missing_aggregates: list[str]
    warnings: list[str]


class CompareReport(_Strict):
    """The output of ``llmeval compare OLD NEW --json``."""

    schema_version: Literal[1] = Field(description="Bumped on any incompatible change")
    old: str = Field(description="Path of the previous results file, as given")
    new: str = Field(description="Path of the new results file, as given")
    passed: bool = Field(description="No regression and no gate that could not be compared (exit 0)")
    alpha: float = Field(description="Significance level (Holm-corrected)")
    old_created: str = Field(description="When the previous run was made (ISO 8601)")
    new_created: str
    regressions: int = Field(description="Gates that regressed")
    errors: int = Field(description="Gates that could not be compared")
    improvements: int = Field(description="Gates significantly better")
    warnings: list[str] = Field(description="Reasons the runs may not be comparable")
    notes: list[str] = Field(description="Expected differences (the evaluated model changed)")
    new_suites: list[str]
    missing_suites: list[str]
    suites: list[SuiteComparisonModel]
    unpaired: list[GateComparisonModel] = Field(description="Gates of new suites that are in ERROR")


def compare_json(comparison: Any, old: str, new: str) -> dict[str, Any]:
    """The ``--json`` document of a :class:`~pytest_llmeval.compare.Comparison`, validated by its schema."""
    data = comparison.to_dict()
    doc = {
        "schema_version": SCHEMA_VERSION, "old": str(old), "new": str(new),
        "regressions": len(comparison.regressions), "errors": len(comparison.errors),
        "improvements": len(comparison.improvements), **data,
    }
    return CompareReport.model_validate(doc).model_dump(mode="json")


def compare_json_schema() -> dict[str, Any]:
    """The JSON Schema of the ``--json`` document."""
    schema = CompareReport.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
