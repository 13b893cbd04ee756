"""The Gate protocol: one kind of assertion over a suite's generated outputs.

A gate kind is a subclass of :class:`Gate` with

- ``section``: the suite file's top-level key it reads (``latency:``, ``cost:``,
  ``human:``...); ``None`` for kinds that another section spawns (metric gates come
  from ``metrics:``, judge gates from ``judge:``);
- ``Spec``: a pydantic model of that section's options, validated at collection
  (unknown keys, wrong types, out-of-range thresholds are collection errors with
  file:line);
- ``evaluate(ctx) -> GateOutcome``: the verdict over the generated outputs.

The evaluator generates once, calls every gate's optional ``prepare_cases`` (work
per case that other gates or the case items use, such as executing generated code),
then ``evaluate``. A gate never raises for a verdict: it returns an outcome whose
aggregate says pass, fail, error or skip, with a message a person can act on.

A minimal kind, the way a user writes one (``conftest.py`` or a plugin module)::

    from pydantic import Field
    from pytest_llmeval.gates import Gate, GateOutcome, GateSpec, register_gate
    from pytest_llmeval.results import AggregateResult

    class MaxWordsSpec(GateSpec):
        max_words: float = Field(gt=0)

    @register_gate
    class MaxWordsGate(Gate):
        kind = "max_words"
        section = "max_words"
        Spec = MaxWordsSpec

        def evaluate(self, ctx):
            longest = max(len((r.output or "").split()) for r in ctx.results)
            agg = self.aggregate(value=float(longest), threshold=self.spec.max_words, op="max",
                                 n=len(ctx.results))
            agg.passed = longest <= self.spec.max_words
            return GateOutcome(agg, message="" if agg.passed else f"longest output: {longest} words")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from pytest_llmeval.results import AggregateResult, CaseResult

if TYPE_CHECKING:
    from pytest_llmeval.spec import Case, Suite, SuiteSpec


class GateSpec(BaseModel):
    """Base of every gate kind's options: unknown keys are errors, NaN is refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False, frozen=True)


class GateSkip(Exception):
    """A gate that cannot run here (no judge configured, no API key).

    It is a SKIP on a developer's machine and an ERROR in strict mode (``CI`` set or
    ``--llmeval-strict``): a gate that did not run never lets CI pass.
    """


@dataclass(frozen=True)
class BaselineRun:
    """The comparison model's outputs for the suite's cases (first sample only).

    ``turns`` holds, for each multi-turn case, the baseline's answer to every turn of
    its own conversation (``outputs`` has the last one).
    """

    name: str
    outputs: dict[str, str | None]
    error: str | None = None
    infos: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    """The loaded comparison model, for kinds that score it directly (multiple-choice log-likelihoods)."""
    turns: dict[str, list[str | None]] = field(default_factory=dict)


@dataclass
class GateOutcome:
    """What a gate reports: the aggregate (its verdict), per-category rows, a message, a text report."""

    aggregate: AggregateResult
    categories: list[AggregateResult] = field(default_factory=list)
    message: str = ""
    report: str | None = None

    @property
    def name(self) -> str:
        return self.aggregate.name

    @property
    def verdict(self) -> str:
        return self.aggregate.verdict


@dataclass
class GateContext:
    """Everything a gate may read: the suite, its cases and the generated outputs.

    Attributes:
        suite: the validated suite.
        cases: the evaluated cases, in file order.
        results: one :class:`CaseResult` per case, same order (outputs, samples, scores,
            checks, per-request timing and usage).
        model_name: the evaluated model's name.
        baseline: the comparison model's outputs, or ``None`` when the suite has none.
        judge: returns the judge (loads it lazily); raises :class:`GateSkip` when none
            is available.
        seed: the seed of every bootstrap.
        confidence: the suite's confidence level.
        progress: a progress reporter with ``start(label, total)``, ``advance(n)``, ``finish()``.
        gates: outcomes of the gates evaluated so far (for kinds that build on another's
            verdicts, e.g. judge calibration on the pairwise judge).
        model: the evaluated model itself, for kinds that score it directly (multiple-choice
            log-likelihoods).
    """

    suite: Suite
    cases: Sequence[Case]
    results: list[CaseResult]
    model_name: str
    baseline: BaselineRun | None = None
    judge: Callable[[], Any] | None = None
    seed: int = 0
    confidence: float = 0.95
    progress: Any = None
    gates: dict[str, GateOutcome] = field(default_factory=dict)
    model: Any = None

    def __post_init__(self) -> None:
        if self.progress is None:
            from pytest_llmeval.report.progress import NoProgress

            self.progress = NoProgress()

    @property
    def by_id(self) -> dict[str, CaseResult]:
        return {r.id: r for r in self.results}

    def get_judge(self) -> Any:
        judge = self.judge() if self.judge is not None else None
        if judge is None:
            raise GateSkip("no judge configured: set judge.model in the suite, --llmeval-judge, or "
                           "override the llm_judge fixture")
        return judge

    def errored_cases(self) -> list[str]:
        """Ids of cases with no usable output (a generation error in any sample)."""
        return [r.id for r in self.results if r.generation_error]


@dataclass(frozen=True)
class DisplayRow:
    """One line the reports show under a gate's row: the length-controlled win rate, W/L/T...

    ``value`` is a number (shown in the shared format, or as a share with ``style="percent"``,
    a p value with ``style="p_value"``) or a text (``style="text"``: ``"12 / 3 / 5"``).
    """

    label: str
    value: float | str | None
    ci: tuple[float, float] | None = None
    threshold: str | None = None
    verdict: str | None = None
    style: str = "number"


_INTERNAL_DETAILS = frozenset({"interval_confidence", "metric_kind", "n_predictions", "max_regression",
                               "min_lc_win_rate", "lc_passed", "case_min"})


def generic_display_rows(agg: AggregateResult) -> list[DisplayRow]:
    """The fallback display of a kind that defines none: each number among its details, one row each."""
    rows = []
    for key, value in agg.details.items():
        if key in _INTERNAL_DETAILS or isinstance(value, bool):
            continue
        if isinstance(value, int):
            rows.append(DisplayRow(key.replace("_", " "), str(value), style="text"))  # a count
        elif isinstance(value, float) and math.isfinite(value):
            rows.append(DisplayRow(key.replace("_", " "), value))
    return rows


class Gate:
    """Base class of a gate kind. Subclasses set ``kind``, ``Spec`` and usually ``section``."""

    kind: ClassVar[str] = ""
    section: ClassVar[str | None] = None
    Spec: ClassVar[type[GateSpec]] = GateSpec
    description: ClassVar[str] = ""
    run_after: ClassVar[tuple[str, ...]] = ()
    """Kinds whose outcomes this kind reads from ``ctx.gates`` (they are evaluated first)."""
    recomputable: ClassVar[bool] = False
    """True when ``prepare_cases`` and ``evaluate`` need nothing but what the results file keeps per
    case (outputs, samples, baseline outputs, scores, judge verdicts, request records, ``extra``),
    the suite file and files it names: no model and no new judge verdict (the judge is then one
    that replays the stored verdicts). ``--llmeval-shard-cases`` splits only suites whose gates
    are all recomputable, and ``llmeval merge`` recomputes their gates over every case; a suite
    with another kind runs whole in one shard."""

    def __init__(self, name: str, spec: Any, line: int | None = None) -> None:
        self.name = name
        self.spec = spec
        self.line = line

    @classmethod
    def from_section(cls, spec: Any, *, suite_spec: SuiteSpec, line: int | None) -> list[Gate]:
        """The gates one validated section declares (default: one gate named after the section)."""
        return [cls(cls.section or cls.kind, spec, line)]

    @property
    def needs_baseline(self) -> bool:
        """Whether the evaluator must generate the baseline's outputs for this gate."""
        return False

    def prepare_cases(self, ctx: GateContext) -> None:
        """Optional per-case work before any gate is evaluated (annotate ``ctx.results``)."""

    @classmethod
    def display_rows(cls, agg: AggregateResult) -> list[DisplayRow]:
        """Lines the reports show under this kind's row, from its saved aggregate (results files too).

        The row itself (value, interval, base model, difference, threshold, verdict) is the same for
        every kind; override this to add what only this kind knows. The default shows every number
        among ``agg.details``, so a new kind is readable without one.
        """
        return generic_display_rows(agg)

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        raise NotImplementedError

    # ------------------------------------------------------------------ helpers for subclasses

    def aggregate(self, **fields: Any) -> AggregateResult:
        """A fresh aggregate named and typed for this gate."""
        fields.setdefault("value", None)
        return AggregateResult(name=self.name, kind=self.kind, **fields)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def error_outcome(name: str, kind: str, why: str, **fields: Any) -> GateOutcome:
    """An outcome that could not be computed: ERROR with its reason."""
    agg = AggregateResult(name=name, value=None, kind=kind, error=why, **fields)
    return GateOutcome(agg, message=why)


def skip_outcome(name: str, kind: str, why: str) -> GateOutcome:
    """An outcome for a gate that cannot run here: SKIP (ERROR in strict mode)."""
    return GateOutcome(AggregateResult(name=name, value=None, kind=kind, skip=why), message=why)


def fail_on_categories(agg: AggregateResult, categories: Sequence[AggregateResult]) -> None:
    """``per_category: true``: every category row must pass too; the failing ones are recorded by name.

    ``details["failing_categories"]`` is also what marks a gate as gated per category in the summary.
    """
    failing = [c for c in categories if c.passed is False]
    agg.details["failing_categories"] = [c.category for c in failing]
    if failing:
        agg.passed = False


def one_spelling(data: Any, name: str, alias: str = "min") -> Any:
    """For a ``model_validator(mode="before")``: a threshold given under both of its spellings is an error."""
    if isinstance(data, dict) and name in data and alias in data:
        raise ValueError(f"give either '{name}' or '{alias}' (the same threshold), not both")
    return data


def check_in_range(value: float | None, lo: float, hi: float, what: str) -> float | None:
    """Validate a threshold against a declared range (for ``field_validator``\\s of gate specs)."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{what} is NaN; give a number")
    if not lo <= value <= hi:
        hi_s = "no upper bound" if math.isinf(hi) else f"{hi:g}"
        raise ValueError(f"{what} = {value:g} is outside the range [{lo:g}, {hi_s}] of this gate")
    return value
