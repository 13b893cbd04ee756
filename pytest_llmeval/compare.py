"""Compare two runs case by case: the regression gate behind ``--llmeval-compare``.

Suites are matched by their file (the path relative to the rootdir) and name,
cases by id. Each aggregate present in both runs gets a paired, one-sided test
of "the new run is worse":

* proportion metrics (per-case 0/1, e.g. ``exact_match``): exact McNemar test
  on the cases that flipped;
* mean and corpus metrics (ROUGE, BLEU, F1...): a paired bootstrap of the mean
  per-case score difference. A corpus value such as corpus BLEU cannot be
  recomputed from per-case scores, so the per-case (sentence-level) scores
  stand in for it in the test, while the reported delta is the difference of
  the two corpus values;
* judge scores: exact sign test on the per-case score differences;
* win rates: exact sign test on the per-case verdict changes
  (win > tie > loss).

The p values of all gates of a run are Holm-corrected together. A gate
regresses when the new run is significantly worse at ``alpha`` after the
correction, or when it is worse by more than its tolerance (``max_regression``,
an absolute difference in the aggregate's own units).

A gate whose cases cannot be paired (every case id changed, every case errored,
an aggregate without a value, a gate new in this run and in ERROR) is an
ERROR that says why, never a pass; ``allow_unpaired`` is the explicit opt-out.
Each compared gate ends as one :class:`RegressionResult` (``pass``,
``regressed`` or ``error``), which the pytest layer shows as an item
``regression[<gate>]`` and ``llmeval compare`` turns into its exit code.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from pytest_llmeval import numbers
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult
from pytest_llmeval.sanitize import display
from pytest_llmeval.stats import holm, mcnemar, paired_mean_test, sign_test

DEFAULT_RESAMPLES = 2000
KEEP_CASES = 50
"""Better cases kept per gate (the count is always complete; every worse case is kept)."""
MAX_CASES_SHOWN = 20
"""Worse cases shown in a regression's message by default (the total is always given)."""
OUTPUT_SHOWN = 300
"""Characters of an output shown per side in a message (the rest is counted, not shown)."""
DEFAULT_ALPHA = 0.05
DELTA_CONFIDENCE = 0.95
"""Level of the interval reported around each gate's delta."""
ALLOW_UNPAIRED_HINT = ("--llmeval-compare-allow-unpaired (pytest) or --allow-unpaired "
                       "(llmeval compare)")
Status = Literal["pass", "regressed", "error"]

IGNORED_SETTINGS = frozenset({
    "json", "html", "compare", "cache", "cache_dir", "cache_readonly", "concurrency",
    "numprocesses", "workers", "junitxml", "max_regression", "alpha", "verbose", "rootdir",
    "python", "pytest", "output_cap", "allow_unpaired", "merged",
})
"""Settings that change where results go or how fast, not what they are: never a warning."""
CHANGE_UNDER_TEST_SETTINGS = frozenset({"model"})
"""Settings whose change is the point of the comparison: reported as a note, not a warning."""

_EPS = 1e-12


@dataclass
class CaseChange:
    """One case whose per-case score moved between the runs."""

    id: str
    old_output: str | None
    new_output: str | None
    old_score: float
    new_score: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GateComparison:
    """One aggregate compared across two runs.

    ``delta`` is ``new_value - old_value``; ``p_value`` is the one-sided p value
    of "the new run is worse" and ``p_adjusted`` its Holm-adjusted value across
    all gates of the comparison (``None`` when no paired test was possible).
    """

    suite: str
    name: str
    kind: str
    old_value: float | None
    new_value: float | None
    delta: float | None
    test: str
    p_value: float | None
    p_adjusted: float | None = None
    file: str = ""
    error: str | None = None
    """Why the gate could not be compared (then it is neither a pass nor a regression)."""
    delta_ci: tuple[float, float] | None = None
    """Interval of the delta at :data:`DELTA_CONFIDENCE` (for corpus metrics: of the per-case differences)."""
    tolerance: float | None = None
    alpha: float = 0.05
    higher_is_better: bool = True
    n_paired: int = 0
    n_worse: int = 0
    n_better: int = 0
    regressed: bool = False
    improved: bool = False
    reason: str = ""
    worse_cases: list[CaseChange] = field(default_factory=list)
    better_cases: list[CaseChange] = field(default_factory=list)
    p_better: float | None = None

    @property
    def label(self) -> str:
        return f"{self.file or self.suite}::{self.name}"

    @property
    def status(self) -> Status:
        """``error`` (not comparable), ``regressed``, or ``pass``."""
        if self.error is not None:
            return "error"
        return "regressed" if self.regressed else "pass"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["status"] = self.status
        d["delta_ci"] = list(self.delta_ci) if self.delta_ci is not None else None
        d["worse_cases"] = [c.to_dict() for c in self.worse_cases]
        d["better_cases"] = [c.to_dict() for c in self.better_cases]
        return _finite(d)


@dataclass
class SuiteComparison:
    """The gates of one suite, and the cases and aggregates present in only one run."""

    name: str
    gates: list[GateComparison] = field(default_factory=list)
    file: str = ""
    new_cases: list[str] = field(default_factory=list)
    missing_cases: list[str] = field(default_factory=list)
    new_aggregates: list[str] = field(default_factory=list)
    missing_aggregates: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "file": self.file, "gates": [g.to_dict() for g in self.gates],
            "new_cases": list(self.new_cases), "missing_cases": list(self.missing_cases),
            "new_aggregates": list(self.new_aggregates),
            "missing_aggregates": list(self.missing_aggregates), "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class WorseCase:
    """A case whose per-case score got worse, with both outputs."""

    id: str
    old_score: float
    new_score: float
    old_output: str | None
    new_output: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RegressionResult:
    """The verdict of one gate's comparison with the baseline run: one ``regression[<gate>]`` item.

    Attributes:
        suite_file: the suite's file, relative to the rootdir (with ``gate``, the identity).
        suite: the suite's name.
        gate: the aggregate's name (``exact_match``, ``win_rate[ft>base]``...).
        status: ``pass``, ``regressed`` or ``error`` (the gate could not be compared).
        old_value, new_value: the aggregate in the baseline run and in this run.
        delta: ``new_value - old_value``.
        delta_ci: interval of the delta at ``confidence`` (for corpus metrics, of the
            per-case differences), or ``None`` when no paired test ran.
        confidence: the interval's level.
        p_value: one-sided p value of "worse"; ``p_adjusted`` its Holm-adjusted value.
        test: the paired test used.
        n_paired: cases present, and scored, in both runs.
        worse_cases: every case that got worse, worst first.
        n_better: how many cases got better.
        message: why the status is what it is, in one sentence.
    """

    suite_file: str
    suite: str
    gate: str
    status: Status
    old_value: float | None
    new_value: float | None
    delta: float | None
    delta_ci: tuple[float, float] | None
    confidence: float
    p_value: float | None
    p_adjusted: float | None
    test: str
    n_paired: int
    worse_cases: tuple[WorseCase, ...]
    n_better: int
    message: str

    @property
    def label(self) -> str:
        return f"{self.suite_file or self.suite}::{self.gate}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["delta_ci"] = list(self.delta_ci) if self.delta_ci is not None else None
        d["worse_cases"] = [c.to_dict() for c in self.worse_cases]
        return _finite(d)


def format_regression(result: RegressionResult, max_cases: int = MAX_CASES_SHOWN,
                      warnings: list[str] | None = None) -> str:
    """The failure message of one gate's comparison: values, test, and up to ``max_cases`` worse cases.

    Outputs are sanitised and cut (:func:`pytest_llmeval.sanitize.display`); the
    total number of worse cases is always given.
    """
    head = {"regressed": "regressed", "error": "cannot be compared", "pass": "did not regress"}
    lines = [f"{display(result.label, 300, multiline=False)} {head[result.status]}: "
             f"{display(result.message, 2000)}"]
    if result.status != "error" or result.old_value is not None or result.new_value is not None:
        ci = (f" {numbers.interval(*result.delta_ci, sign=True)} at "
              f"{result.confidence:.0%}" if result.delta_ci else "")
        p = (f", p{_p(result.p_value)} (Holm p{_p(result.p_adjusted)})"
             if result.p_value is not None else "")
        lines.append(f"  {numbers.PREVIOUS_RUN} {_num(result.old_value)} -> this run "
                     f"{_num(result.new_value)} "
                     f"(difference {_signed(result.delta)}{ci}), {result.test}{p}, "
                     f"n={result.n_paired} paired cases, {len(result.worse_cases)} worse / "
                     f"{result.n_better} better")
    if result.worse_cases and max_cases > 0:
        shown = result.worse_cases[:max_cases]
        lines.append(f"  cases that got worse: {len(result.worse_cases)}, showing {len(shown)}"
                     + (" (all)" if len(shown) == len(result.worse_cases) else ""))
        lines.extend(_format_changes(
            [CaseChange(c.id, c.old_output, c.new_output, c.old_score, c.new_score) for c in shown],
            result.gate))
    if warnings:
        lines.append("  warning: the runs may not be comparable:")
        lines.extend(f"    - {display(w, 500, multiline=False)}" for w in warnings)
    return "\n".join(lines)


def validate_compare_options(alpha: Any = None, max_regression: Any = None, *,
                             alpha_option: str = "--llmeval-alpha",
                             max_regression_option: str = "--llmeval-max-regression"
                             ) -> tuple[float, float | None]:
    """Check the comparison options; return ``(alpha, max_regression)`` with the default alpha filled in.

    ``None`` means "not given" (alpha then defaults to 0.05); ``0`` is a value, and an
    invalid one. Raises :class:`~pytest_llmeval.errors.ConfigError` naming the option
    and the accepted range, for the pytest layer to turn into a usage error.
    """
    if alpha is None:
        alpha_value = DEFAULT_ALPHA
    else:
        alpha_value = _number(alpha, alpha_option)
        if not 0 < alpha_value < 1:
            raise ConfigError(f"{alpha_option}: the significance level must be between 0 and 1 "
                              f"(exclusive), e.g. 0.05; got {alpha!r}")
    reg_value: float | None = None
    if max_regression is not None:
        reg_value = _number(max_regression, max_regression_option)
        if reg_value < 0:
            raise ConfigError(f"{max_regression_option}: the tolerated drop must be >= 0, in the "
                              f"aggregate's own units (e.g. 0.02 for two points of accuracy); "
                              f"got {max_regression!r}")
    return alpha_value, reg_value


def _number(value: Any, option: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{option}: expected a number, got {value!r}")
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{option}: expected a number, got {value!r}") from None
    if not math.isfinite(f):
        raise ConfigError(f"{option}: expected a finite number, got {value!r}")
    return f


@dataclass
class Comparison:
    """The result of :func:`compare_runs`."""

    suites: list[SuiteComparison] = field(default_factory=list)
    new_suites: list[str] = field(default_factory=list)
    missing_suites: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Reasons the two runs may not be comparable (suite, model, version, settings)."""
    notes: list[str] = field(default_factory=list)
    """Expected differences worth showing (the evaluated model changed)."""
    alpha: float = 0.05
    old_created: str = ""
    new_created: str = ""
    unpaired: list[GateComparison] = field(default_factory=list)
    """Gates of suites new in this run that are in ERROR (nothing to compare them with)."""

    @property
    def gates(self) -> Iterator[GateComparison]:
        for suite in self.suites:
            yield from suite.gates
        yield from self.unpaired

    @property
    def regressions(self) -> list[GateComparison]:
        return [g for g in self.gates if g.regressed]

    @property
    def errors(self) -> list[GateComparison]:
        """Gates that could not be compared (unpaired cases, no value, new and in ERROR)."""
        return [g for g in self.gates if g.status == "error"]

    @property
    def improvements(self) -> list[GateComparison]:
        return [g for g in self.gates if g.improved]

    @property
    def passed(self) -> bool:
        return not self.regressions and not self.errors

    @property
    def results(self) -> list[RegressionResult]:
        """One typed verdict per compared gate, in suite order."""
        return [_result(g, self.alpha) for g in self.gates]

    def suite(self, key: str, name: str | None = None) -> SuiteComparison | None:
        """The suite whose file, or name, is ``key`` (or whose file is ``key`` and name ``name``)."""
        for s in self.suites:
            if (s.file == key and (name is None or s.name == name)) or (name is None and s.name == key):
                return s
        return None

    def gate(self, suite: str, name: str) -> GateComparison | None:
        """The comparison of aggregate ``name`` of suite ``suite`` (its file or its name)."""
        s = self.suite(suite)
        return next((g for g in s.gates if g.name == name), None) if s else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha, "passed": self.passed,
            "old_created": self.old_created, "new_created": self.new_created,
            "warnings": list(self.warnings), "notes": list(self.notes),
            "new_suites": list(self.new_suites), "missing_suites": list(self.missing_suites),
            "suites": [s.to_dict() for s in self.suites],
            "unpaired": [g.to_dict() for g in self.unpaired],
        }

    def failure_message(self, gate: GateComparison, max_cases: int = MAX_CASES_SHOWN) -> str:
        """An assertion-style message for one gate, with the cases that got worse."""
        return format_regression(_result(gate, self.alpha), max_cases, self.warnings)

    def format_text(self, max_cases: int = 5, width: int | None = None) -> str:
        """A readable terminal report: gates, then the cases that got worse and better.

        With ``width``, every line fits in that many columns (long ones wrap, indented),
        and the old | new columns of the cases share that width.
        """
        out: list[str] = []
        verdict = ("REGRESSION" if self.regressions else "ERROR: gates that cannot be compared"
                   if self.errors else "no significant regression")
        out.append(f"llmeval compare: {verdict} (alpha={self.alpha:g}, Holm-corrected "
                   f"across {sum(1 for g in self.gates if g.p_value is not None)} gates)")
        for w in self.warnings:
            out.append(f"warning: {display(w, 500, multiline=False)}")
        for n in self.notes:
            out.append(f"note: {display(n, 500, multiline=False)}")
        for name in self.missing_suites:
            out.append(f"suite {display(name, 200, multiline=False)}: missing from the new run")
        for name in self.new_suites:
            out.append(f"suite {display(name, 200, multiline=False)}: new in this run (nothing to compare)")
        for g in self.unpaired:
            out.append(f"  {display(g.label, 200, multiline=False)}  ERROR  {display(g.error, 500)}")
        for suite in self.suites:
            out.append("")
            out.append(f"suite {display(suite.name, 200, multiline=False)}"
                       + (f" ({display(suite.file, 300, multiline=False)})" if suite.file else ""))
            for w in suite.warnings:
                out.append(f"  warning: {display(w, 500, multiline=False)}")
            for g in suite.gates:
                status = ("ERROR" if g.status == "error" else "REGRESSED" if g.regressed
                          else "improved" if g.improved else "ok")
                p = (f"p{_p(g.p_value)} (Holm p{_p(g.p_adjusted)})" if g.p_value is not None
                     else "no test")
                out.append(f"  {display(g.name, 200, multiline=False):<24} {_num(g.old_value):>8} -> "
                           f"{_num(g.new_value):<8} {_signed(g.delta):>8}  {g.test}, {p}  {status}")
                if g.status == "error":
                    out.append(f"    {display(g.error, 1000)}")
                elif g.regressed:
                    out.append(f"    {g.reason}")
            if suite.missing_aggregates:
                out.append("  aggregates missing from the new run: "
                           + display(", ".join(suite.missing_aggregates), 1000, multiline=False))
            if suite.new_aggregates:
                out.append("  aggregates new in this run: "
                           + display(", ".join(suite.new_aggregates), 1000, multiline=False))
            if suite.missing_cases:
                out.append(f"  {len(suite.missing_cases)} cases missing from the new run: "
                           f"{_ids(suite.missing_cases)}")
            if suite.new_cases:
                out.append(f"  {len(suite.new_cases)} new cases (not compared): "
                           f"{_ids(suite.new_cases)}")
            if max_cases <= 0:
                continue
            for g in suite.gates:
                for what, count, changes in (("worse", g.n_worse, g.worse_cases),
                                             ("better", g.n_better, g.better_cases)):
                    if changes:
                        out.append(f"  {display(g.name, 200, multiline=False)}: {count} cases got "
                                   f"{what}, showing {min(max_cases, len(changes))}")
                        out.extend(_format_changes(changes[:max_cases], g.name,
                                                   width=width if width else 100))
        if width:
            from pytest_llmeval.report.terminal import fit_block

            out = fit_block("\n".join(out), width)
        return "\n".join(out)


def _result(g: GateComparison, alpha: float) -> RegressionResult:
    if g.status == "error":
        message = g.error or "cannot be compared"
    elif g.regressed:
        message = g.reason
    else:
        message = g.reason or "no significant change"
    return RegressionResult(
        suite_file=g.file, suite=g.suite, gate=g.name, status=g.status, old_value=g.old_value,
        new_value=g.new_value, delta=g.delta, delta_ci=g.delta_ci, confidence=DELTA_CONFIDENCE,
        p_value=g.p_value, p_adjusted=g.p_adjusted, test=g.test, n_paired=g.n_paired,
        worse_cases=tuple(WorseCase(c.id, c.old_score, c.new_score, c.old_output, c.new_output)
                          for c in g.worse_cases),
        n_better=g.n_better, message=message)


def compare_runs(old: RunResult, new: RunResult, *, alpha: float = DEFAULT_ALPHA,
                 max_regression: float | None = None, seed: int = 0,
                 n_resamples: int = DEFAULT_RESAMPLES, keep_cases: int = KEEP_CASES,
                 allow_unpaired: bool = False) -> Comparison:
    """Compare ``new`` against the baseline ``old``, suite by suite and gate by gate.

    Suites are identified by file and name (a suite whose file moved is still
    paired by its name when that name is unique on both sides). ``Comparison.results``
    holds one :class:`RegressionResult` per gate.

    Args:
        old: the baseline run (e.g. main's results file).
        new: the run under test.
        alpha: significance level of the one-sided "worse" test, after Holm correction.
        max_regression: default tolerance for every gate, an absolute drop in the
            aggregate's units; ``aggregate.details["max_regression"]`` overrides it.
        seed: seed of the paired bootstraps, so a comparison is reproducible.
        n_resamples: bootstrap resamples for mean and corpus metrics.
        keep_cases: how many better cases to keep per gate (every worse case is kept).
        allow_unpaired: a gate that cannot be paired passes (with the reason) instead of
            being an ERROR; only the tolerance, when there is one, still applies.

    Raises:
        ConfigError: ``alpha`` or ``max_regression`` out of range.
    """
    alpha, max_regression = validate_compare_options(alpha, max_regression, alpha_option="alpha",
                                                     max_regression_option="max_regression")
    comparison = Comparison(alpha=alpha, old_created=old.created, new_created=new.created)
    _check_comparable(old, new, comparison)
    pairs, missing, added = _pair_suites(old.suites, new.suites, comparison.notes)
    comparison.missing_suites = [s.name for s in missing]
    comparison.new_suites = [s.name for s in added]
    rng = np.random.default_rng(seed)
    for old_suite, new_suite in pairs:
        comparison.suites.append(_compare_suite(
            old_suite, new_suite, alpha=alpha, max_regression=max_regression,
            rng=rng, n_resamples=n_resamples, keep_cases=keep_cases))
    for suite in added:
        for agg in suite.aggregates:
            if agg.verdict == "error":
                comparison.unpaired.append(_new_error_gate(suite, agg))
    _decide(list(comparison.gates), alpha)
    for g in comparison.gates:
        if g.error is not None and allow_unpaired:
            allowed = f"not compared ({g.error}); allowed by the allow-unpaired option"
            g.reason = f"{g.reason}; {allowed}" if g.regressed else allowed
            g.error = None
        elif g.error is not None:
            g.regressed = g.improved = False
    return comparison


def _pair_suites(old: list[SuiteResult], new: list[SuiteResult], notes: list[str]
                 ) -> tuple[list[tuple[SuiteResult, SuiteResult]], list[SuiteResult], list[SuiteResult]]:
    """Pair suites by (file, name); then unique leftover names (a moved file). Duplicates stay apart."""
    def key(s: SuiteResult) -> tuple[str, str]:
        return (s.file, s.name)

    old_by_key: dict[tuple[str, str], SuiteResult] = {}
    for s in old:
        old_by_key.setdefault(key(s), s)
    pairs: list[tuple[SuiteResult, SuiteResult]] = []
    used: set[int] = set()
    left_new: list[SuiteResult] = []
    for s in new:
        match = old_by_key.get(key(s))
        if match is not None and id(match) not in used:
            used.add(id(match))
            pairs.append((match, s))
        else:
            left_new.append(s)
    left_old = [s for s in old if id(s) not in used]
    added: list[SuiteResult] = []
    for s in left_new:
        same_old = [o for o in left_old if o.name == s.name]
        same_new = [n for n in left_new if n.name == s.name]
        if len(same_old) == 1 and len(same_new) == 1:
            left_old.remove(same_old[0])
            pairs.append((same_old[0], s))
            notes.append(f"suite '{s.name}' moved: {same_old[0].file} -> {s.file} (paired by its name)")
        else:
            added.append(s)
    return pairs, left_old, added


def _new_error_gate(suite: SuiteResult, agg: AggregateResult) -> GateComparison:
    return GateComparison(
        suite=suite.name, file=suite.file, name=agg.name, kind=agg.kind, old_value=None,
        new_value=agg.value, delta=None, test="none", p_value=None,
        higher_is_better=_higher_is_better(agg),
        error=(f"new in this run and in ERROR ({agg.error or 'no value'}): there is nothing to "
               f"compare it with. Fix the gate, or accept it with {ALLOW_UNPAIRED_HINT}"))


def _compare_suite(old: SuiteResult, new: SuiteResult, *, alpha: float,
                   max_regression: float | None, rng: np.random.Generator, n_resamples: int,
                   keep_cases: int) -> SuiteComparison:
    out = SuiteComparison(name=new.name, file=new.file)
    if old.suite_hash and new.suite_hash and old.suite_hash != new.suite_hash:
        out.warnings.append(
            f"the suite definition changed (suite hash {old.suite_hash[:12]} -> "
            f"{new.suite_hash[:12]}): prompts, cases or options differ between the runs")
    old_cases = _index_cases(old, out.warnings, "old")
    new_cases = _index_cases(new, out.warnings, "new")
    out.missing_cases = [i for i in old_cases if i not in new_cases]
    out.new_cases = [i for i in new_cases if i not in old_cases]
    paired = [(old_cases[i], new_cases[i]) for i in new_cases if i in old_cases]
    old_aggs = {a.name: a for a in old.aggregates}
    new_aggs = {a.name: a for a in new.aggregates}
    out.missing_aggregates = [n for n in old_aggs if n not in new_aggs]
    out.new_aggregates = [n for n in new_aggs if n not in old_aggs]
    for name, new_agg in new_aggs.items():
        if name in old_aggs:
            gate = _compare_aggregate(
                new.name, old_aggs[name], new_agg, paired, old, new, alpha=alpha,
                max_regression=max_regression, rng=rng, n_resamples=n_resamples,
                keep_cases=keep_cases)
            gate.file = new.file
            if gate.error is None and gate.n_paired == 0:
                gate.error = _unpaired_reason(old, new, paired, new_agg)
            out.gates.append(gate)
        elif new_agg.verdict == "error":
            gate = _new_error_gate(new, new_agg)
            out.gates.append(gate)
    return out


def _unpaired_reason(old: SuiteResult, new: SuiteResult, paired: list[tuple[CaseResult, CaseResult]],
                     agg: AggregateResult) -> str:
    """Why no case of a gate could be paired, and what to do about it."""
    fix = (f"Re-bless the baseline (run main with --llmeval-json), or accept with "
           f"{ALLOW_UNPAIRED_HINT}")
    if not paired:
        return (f"no case of the new run ({len(new.cases)} cases) has an id found in the baseline run "
                f"({len(old.cases)} cases): the case ids changed (ids derived from a case's content "
                f"change when the case is edited; give cases an explicit 'id'). {fix}")
    errored = sum(1 for o, n in paired if o.status == "error" or n.status == "error")
    if errored == len(paired):
        return (f"every one of the {len(paired)} paired cases errored in one of the runs, so no "
                f"per-case values can be compared. {fix}")
    return (f"none of the {len(paired)} paired cases has a per-case value for '{agg.name}' in both "
            f"runs. {fix}")


def _compare_aggregate(suite: str, old: AggregateResult, new: AggregateResult,
                       paired: list[tuple[CaseResult, CaseResult]], old_suite: SuiteResult,
                       new_suite: SuiteResult, *, alpha: float, max_regression: float | None,
                       rng: np.random.Generator, n_resamples: int,
                       keep_cases: int) -> GateComparison:
    tolerance = new.details.get("max_regression", max_regression)
    higher = _higher_is_better(new)
    gate = GateComparison(
        suite=suite, name=new.name, kind=new.kind, old_value=old.value, new_value=new.value,
        delta=_delta(old.value, new.value), test="none", p_value=None,
        tolerance=None if tolerance is None else float(tolerance), alpha=alpha,
        higher_is_better=higher)
    if old.error or new.error or _missing(old.value) or _missing(new.value):
        which = "new" if new.error or _missing(new.value) else "old"
        err = (new.error if which == "new" else old.error) or "no value"
        gate.error = (f"the {which} run has no value for this aggregate ({err}), so it cannot be "
                      f"compared. Fix the gate, re-bless the baseline, or accept with "
                      f"{ALLOW_UNPAIRED_HINT}")
        return gate

    sign = 1.0 if higher else -1.0
    pairs: list[tuple[CaseResult, CaseResult, float, float]] = []
    for o, n in paired:
        vo = case_value(o, old, old_suite)
        vn = case_value(n, new, new_suite)
        if vo is not None and vn is not None:
            pairs.append((o, n, vo, vn))
    gate.n_paired = len(pairs)
    changes = sorted(
        (CaseChange(o.id, o.output, n.output, vo, vn) for o, n, vo, vn in pairs
         if abs(vn - vo) > _EPS),
        key=lambda c: sign * (c.new_score - c.old_score))
    worse = [c for c in changes if sign * (c.new_score - c.old_score) < 0]
    better = [c for c in reversed(changes) if sign * (c.new_score - c.old_score) > 0]
    gate.n_worse, gate.n_better = len(worse), len(better)
    gate.worse_cases, gate.better_cases = worse, better[:keep_cases]
    if not pairs:
        return gate

    old_v = np.array([p[2] for p in pairs])
    new_v = np.array([p[3] for p in pairs])
    binary = bool(np.isin(old_v, (0.0, 1.0)).all() and np.isin(new_v, (0.0, 1.0)).all())
    metric_kind = new.details.get("metric_kind")
    gate.delta_ci = _normal_interval(new_v - old_v)
    if new.kind == "metric" and (metric_kind == "proportion" or (metric_kind is None and binary)):
        old_pass = (old_v == 1.0) if higher else (old_v == 0.0)
        new_pass = (new_v == 1.0) if higher else (new_v == 0.0)
        n_worse, n_better, _ = mcnemar(old_pass.tolist(), new_pass.tolist())
        gate.test = "McNemar exact"
        gate.p_value = sign_test(n_worse, n_better, alternative="greater")
        gate.p_better = sign_test(n_better, n_worse, alternative="greater")
    elif new.kind in ("judge_score", "win_rate"):
        gate.test = "sign test" + (" on verdicts" if new.kind == "win_rate" else " on scores")
        gate.p_value = sign_test(gate.n_worse, gate.n_better, alternative="greater")
        gate.p_better = sign_test(gate.n_better, gate.n_worse, alternative="greater")
    else:
        gate.test = "paired bootstrap" + (" (per-case scores)" if metric_kind == "corpus" else "")
        gate.p_value, gate.p_better, interval = paired_mean_test(
            sign * old_v, sign * new_v, rng, n_resamples, confidence=DELTA_CONFIDENCE)
        lo, hi = sign * interval[0], sign * interval[1]
        gate.delta_ci = (min(lo, hi), max(lo, hi))
    return gate


def _normal_interval(diff: np.ndarray) -> tuple[float, float]:
    """Normal-approximation interval of the mean paired difference at :data:`DELTA_CONFIDENCE`."""
    from statistics import NormalDist

    n = len(diff)
    mean = float(diff.mean())
    if n < 2:
        return mean, mean
    z = NormalDist().inv_cdf(0.5 + DELTA_CONFIDENCE / 2)
    half = z * float(diff.std(ddof=1)) / math.sqrt(n)
    return mean - half, mean + half


def _decide(gates: list[GateComparison], alpha: float) -> None:
    """Holm-correct the gates' p values together, then set regressed/improved and the reason."""
    tested = [g for g in gates if g.p_value is not None and g.error is None]
    if tested:
        worse_adj = holm([g.p_value or 0.0 for g in tested])
        better_adj = holm([g.p_better if g.p_better is not None else 1.0 for g in tested])
        for g, pw, pb in zip(tested, worse_adj, better_adj, strict=True):
            g.p_adjusted = pw
            drop = _drop(g)
            significant = pw < alpha and drop is not None and drop > 0
            g.improved = pb < alpha and drop is not None and drop < 0
            if significant:
                g.regressed = True
                g.reason = (f"significantly worse: {g.test} p{_p(g.p_value)}, Holm-adjusted "
                            f"p{_p(pw)} < alpha {alpha:g}")
    for g in gates:
        drop = _drop(g)
        if g.tolerance is not None and drop is not None and drop > g.tolerance + _EPS:
            over = f"worse by {_num(drop)}, more than max_regression {numbers.threshold(g.tolerance)}"
            g.reason = f"{g.reason}; {over}" if g.regressed else over
            g.regressed = True
            g.improved = False
        elif not g.reason:
            g.reason = ("significantly better" if g.improved
                        else "no significant change" if g.p_value is not None
                        else "within tolerance" if g.tolerance is not None else "no test")


def case_value(case: CaseResult, agg: AggregateResult, suite: SuiteResult) -> float | None:
    """The per-case value behind an aggregate, or ``None`` when the case has none.

    Looked up in ``case.scores`` under the aggregate's name, then its metric
    name; judge aggregates fall back on ``case.judge`` (``score``, or a
    pairwise verdict: ``win``/``tie``/``loss``, or the winning model's name).
    """
    if case.status == "error":
        return None
    for key in (agg.name, agg.metric):
        if key and key in case.scores:
            return _float(case.scores[key])
    judge = case.judge or {}
    if agg.kind == "judge_score":
        sub = judge.get("score")
        return _float(sub.get("score") if isinstance(sub, dict) else sub)
    if agg.kind == "win_rate":
        nested = judge.get("pairwise")
        pair: dict[str, Any] = nested if isinstance(nested, dict) else judge
        return _verdict_value(pair, agg.model or suite.model, suite.baseline)
    return None


_VERDICTS = {"win": 1.0, "tie": 0.5, "loss": 0.0, "model": 1.0, "baseline": 0.0}


def _verdict_value(judge: dict[str, Any], model: str | None, baseline: str | None) -> float | None:
    for key in ("verdict", "outcome", "winner"):
        v = judge.get(key)
        if v is None:
            continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        text = str(v).strip()
        if model and text == model:
            return 1.0
        if baseline and text == baseline:
            return 0.0
        if text.lower() in _VERDICTS:
            return _VERDICTS[text.lower()]
    return None


def _check_comparable(old: RunResult, new: RunResult, comparison: Comparison) -> None:
    old_major = str(old.plugin_version).split(".")[0]
    new_major = str(new.plugin_version).split(".")[0]
    if old_major != new_major:
        comparison.warnings.append(
            f"plugin version {old.plugin_version} -> {new.plugin_version}: "
            "scores may be computed differently")
    evaluated = {s.model for s in new.suites} | {s.model for s in old.suites}
    for name in sorted(set(old.models) & set(new.models)):
        fo = old.models[name].get("fingerprint")
        fn = new.models[name].get("fingerprint")
        if fo and fn and fo != fn:
            if name in evaluated:
                comparison.notes.append(f"model '{name}' changed (fingerprint {str(fo)[:12]} -> "
                                        f"{str(fn)[:12]}): the change under test")
            else:
                comparison.warnings.append(
                    f"model '{name}' (judge or baseline) changed (fingerprint {str(fo)[:12]} -> "
                    f"{str(fn)[:12]}): its verdicts and win rates are not comparable")
    keys = (set(old.settings) | set(new.settings)) - IGNORED_SETTINGS
    for key in sorted(keys):
        was, now = old.settings.get(key), new.settings.get(key)
        if was != now:
            text = f"setting '{key}' differs: {was!r} -> {now!r}"
            target = comparison.notes if key in CHANGE_UNDER_TEST_SETTINGS else comparison.warnings
            target.append(text)


def _index_cases(suite: SuiteResult, warnings: list[str], which: str) -> dict[str, CaseResult]:
    cases: dict[str, CaseResult] = {}
    dupes: list[str] = []
    for c in suite.cases:
        if c.id in cases:
            dupes.append(c.id)
        else:
            cases[c.id] = c
    if dupes:
        warnings.append(f"duplicate case ids in the {which} run (first one used): {_ids(dupes)}")
    return cases


def _higher_is_better(agg: AggregateResult) -> bool:
    explicit = agg.details.get("higher_is_better")
    if explicit is not None:
        return bool(explicit)
    return agg.op != "max"


def _drop(g: GateComparison) -> float | None:
    """How much worse the new value is (negative: better), in the aggregate's units."""
    if g.delta is None:
        return None
    return -g.delta if g.higher_is_better else g.delta


def _delta(old: float | None, new: float | None) -> float | None:
    if _missing(old) or _missing(new):
        return None
    return float(new) - float(old)  # type: ignore[arg-type]


def _missing(v: float | None) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _float(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _num(v: float | None) -> str:
    return numbers.number(v)


def _signed(v: float | None) -> str:
    return numbers.signed(v)


def _p(v: float | None) -> str:
    """``=0.031`` or ``<0.001``, to follow ``p`` (the shared format's p value)."""
    text = numbers.p_value(v)
    return "=-" if text == numbers.MISSING else text.removeprefix("p")


def _ids(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(display(i, 100, multiline=False) for i in ids[:limit])
    return shown + (f", ... (+{len(ids) - limit})" if len(ids) > limit else "")


def _format_changes(changes: list[CaseChange], metric: str, width: int = 100) -> list[str]:
    lines: list[str] = []
    for c in changes:
        case_id, name = display(c.id, 100, multiline=False), display(metric, 100, multiline=False)
        lines.append(f"    case {case_id}: {name} {_num(c.old_score)} -> {_num(c.new_score)}")
        lines.extend("      " + row for row in _side_by_side(
            c.old_output, c.new_output, width=width - 6))
    return lines


def _side_by_side(left: str | None, right: str | None, width: int = 94,
                  max_lines: int = 6) -> list[str]:
    """Two texts in columns headed ``old`` and ``new``, wrapped and cut to ``max_lines``."""
    col = (width - 3) // 2

    def wrap(text: str | None) -> list[str]:
        if text is None:
            return ["(no output)"]
        text = display(text, OUTPUT_SHOWN)
        rows = [r for line in text.splitlines() or [""] for r in (textwrap.wrap(line, col) or [""])]
        if len(rows) > max_lines:
            rows = rows[:max_lines - 1] + [f"... (+{len(rows) - max_lines + 1} lines)"]
        return rows

    lo, ro = wrap(left), wrap(right)
    rows = [f"{numbers.PREVIOUS_RUN:<{col}} | this run"]
    for i in range(max(len(lo), len(ro))):
        a = lo[i] if i < len(lo) else ""
        b = ro[i] if i < len(ro) else ""
        rows.append(f"{a:<{col}} | {b}".rstrip())
    return rows
