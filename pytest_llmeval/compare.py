"""Compare two runs case by case: the regression gate behind ``--llmeval-compare``.

Cases are matched by suite name and case id. Each aggregate present in both
runs gets a paired, one-sided test of "the new run is worse":

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
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult
from pytest_llmeval.stats import holm, mcnemar, sign_test

DEFAULT_RESAMPLES = 2000
KEEP_CASES = 50
"""Worse/better cases kept per gate (the counts are always complete)."""

IGNORED_SETTINGS = frozenset({
    "json", "html", "compare", "cache", "cache_dir", "cache_readonly", "concurrency",
    "numprocesses", "workers", "junitxml", "max_regression", "alpha", "verbose", "rootdir",
    "python", "pytest",
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
        return f"{self.suite}::{self.name}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["worse_cases"] = [c.to_dict() for c in self.worse_cases]
        d["better_cases"] = [c.to_dict() for c in self.better_cases]
        return _finite(d)


@dataclass
class SuiteComparison:
    """The gates of one suite, and the cases and aggregates present in only one run."""

    name: str
    gates: list[GateComparison] = field(default_factory=list)
    new_cases: list[str] = field(default_factory=list)
    missing_cases: list[str] = field(default_factory=list)
    new_aggregates: list[str] = field(default_factory=list)
    missing_aggregates: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "gates": [g.to_dict() for g in self.gates],
            "new_cases": list(self.new_cases), "missing_cases": list(self.missing_cases),
            "new_aggregates": list(self.new_aggregates),
            "missing_aggregates": list(self.missing_aggregates), "warnings": list(self.warnings),
        }


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

    @property
    def gates(self) -> Iterator[GateComparison]:
        for suite in self.suites:
            yield from suite.gates

    @property
    def regressions(self) -> list[GateComparison]:
        return [g for g in self.gates if g.regressed]

    @property
    def improvements(self) -> list[GateComparison]:
        return [g for g in self.gates if g.improved]

    @property
    def passed(self) -> bool:
        return not self.regressions

    def suite(self, name: str) -> SuiteComparison | None:
        return next((s for s in self.suites if s.name == name), None)

    def gate(self, suite: str, name: str) -> GateComparison | None:
        """The comparison of aggregate ``name`` of suite ``suite``, if both runs have it."""
        s = self.suite(suite)
        return next((g for g in s.gates if g.name == name), None) if s else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha, "passed": self.passed,
            "old_created": self.old_created, "new_created": self.new_created,
            "warnings": list(self.warnings), "notes": list(self.notes),
            "new_suites": list(self.new_suites), "missing_suites": list(self.missing_suites),
            "suites": [s.to_dict() for s in self.suites],
        }

    def failure_message(self, gate: GateComparison, max_cases: int = 5) -> str:
        """An assertion-style message for one regressed gate, with the cases that got worse."""
        lines = [f"{gate.label} regressed: {gate.reason}"]
        lines.append(
            f"  old {_num(gate.old_value)} -> new {_num(gate.new_value)} "
            f"(delta {_signed(gate.delta)}), {gate.test}, n={gate.n_paired} paired cases, "
            f"{gate.n_worse} worse / {gate.n_better} better"
        )
        if gate.worse_cases:
            lines.append(f"  cases that got worse ({gate.n_worse}, showing "
                         f"{min(max_cases, len(gate.worse_cases))}):")
            lines.extend(_format_changes(gate.worse_cases[:max_cases], gate.name))
        if self.warnings:
            lines.append("  warning: the runs may not be comparable:")
            lines.extend(f"    - {w}" for w in self.warnings)
        return "\n".join(lines)

    def format_text(self, max_cases: int = 5) -> str:
        """A readable terminal report: gates, then the cases that got worse and better."""
        out: list[str] = []
        verdict = "REGRESSION" if self.regressions else "no significant regression"
        out.append(f"llmeval compare: {verdict} (alpha={self.alpha:g}, Holm-corrected "
                   f"across {sum(1 for g in self.gates if g.p_value is not None)} gates)")
        for w in self.warnings:
            out.append(f"warning: {w}")
        for n in self.notes:
            out.append(f"note: {n}")
        for name in self.missing_suites:
            out.append(f"suite {name}: missing from the new run")
        for name in self.new_suites:
            out.append(f"suite {name}: new in this run (nothing to compare)")
        for suite in self.suites:
            out.append("")
            out.append(f"suite {suite.name}")
            for w in suite.warnings:
                out.append(f"  warning: {w}")
            for g in suite.gates:
                status = "REGRESSED" if g.regressed else "improved" if g.improved else "ok"
                p = (f"p{_p(g.p_value)} (Holm p{_p(g.p_adjusted)})" if g.p_value is not None
                     else "no test")
                out.append(f"  {g.name:<24} {_num(g.old_value):>8} -> {_num(g.new_value):<8} "
                           f"{_signed(g.delta):>8}  {g.test}, {p}  {status}")
                if g.regressed:
                    out.append(f"    {g.reason}")
            if suite.missing_aggregates:
                out.append("  aggregates missing from the new run: "
                           + ", ".join(suite.missing_aggregates))
            if suite.new_aggregates:
                out.append(f"  aggregates new in this run: {', '.join(suite.new_aggregates)}")
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
                        out.append(f"  {g.name}: {count} cases got {what}, showing "
                                   f"{min(max_cases, len(changes))}")
                        out.extend(_format_changes(changes[:max_cases], g.name))
        return "\n".join(out)


def compare_runs(old: RunResult, new: RunResult, *, alpha: float = 0.05,
                 max_regression: float | None = None, seed: int = 0,
                 n_resamples: int = DEFAULT_RESAMPLES, keep_cases: int = KEEP_CASES) -> Comparison:
    """Compare ``new`` against the baseline ``old``, suite by suite and gate by gate.

    Args:
        old: the baseline run (e.g. main's results file).
        new: the run under test.
        alpha: significance level of the one-sided "worse" test, after Holm correction.
        max_regression: default tolerance for every gate, an absolute drop in the
            aggregate's units; ``aggregate.details["max_regression"]`` overrides it.
        seed: seed of the paired bootstraps, so a comparison is reproducible.
        n_resamples: bootstrap resamples for mean and corpus metrics.
        keep_cases: how many worse/better cases to keep per gate.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    if max_regression is not None and max_regression < 0:
        raise ValueError(f"max_regression must be >= 0, got {max_regression!r}")
    comparison = Comparison(alpha=alpha, old_created=old.created, new_created=new.created)
    _check_comparable(old, new, comparison)
    old_suites = {s.name: s for s in old.suites}
    new_suites = {s.name: s for s in new.suites}
    comparison.missing_suites = [n for n in old_suites if n not in new_suites]
    comparison.new_suites = [n for n in new_suites if n not in old_suites]
    rng = np.random.default_rng(seed)
    for name, new_suite in new_suites.items():
        if name in old_suites:
            comparison.suites.append(_compare_suite(
                old_suites[name], new_suite, alpha=alpha, max_regression=max_regression,
                rng=rng, n_resamples=n_resamples, keep_cases=keep_cases))
    _decide(list(comparison.gates), alpha)
    return comparison


def _compare_suite(old: SuiteResult, new: SuiteResult, *, alpha: float,
                   max_regression: float | None, rng: np.random.Generator, n_resamples: int,
                   keep_cases: int) -> SuiteComparison:
    out = SuiteComparison(name=new.name)
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
            out.gates.append(_compare_aggregate(
                new.name, old_aggs[name], new_agg, paired, old, new, alpha=alpha,
                max_regression=max_regression, rng=rng, n_resamples=n_resamples,
                keep_cases=keep_cases))
    return out


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
        gate.reason = f"not compared: the {which} run has no value ({err})"
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
    gate.worse_cases, gate.better_cases = worse[:keep_cases], better[:keep_cases]
    if not pairs:
        gate.reason = "no paired per-case values: compared against the tolerance only"
        return gate

    old_v = np.array([p[2] for p in pairs])
    new_v = np.array([p[3] for p in pairs])
    binary = bool(np.isin(old_v, (0.0, 1.0)).all() and np.isin(new_v, (0.0, 1.0)).all())
    metric_kind = new.details.get("metric_kind")
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
        gate.p_value, gate.p_better = _paired_mean_bootstrap(
            sign * old_v, sign * new_v, rng, n_resamples)
    return gate


def _decide(gates: list[GateComparison], alpha: float) -> None:
    """Holm-correct the gates' p values together, then set regressed/improved and the reason."""
    tested = [g for g in gates if g.p_value is not None]
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
            over = f"worse by {drop:.4g}, more than max_regression {g.tolerance:g}"
            g.reason = f"{g.reason}; {over}" if g.regressed else over
            g.regressed = True
            g.improved = False
        elif not g.reason:
            g.reason = ("significantly better" if g.improved
                        else "no significant change" if g.p_value is not None
                        else "within tolerance" if g.tolerance is not None else "no test")


def _paired_mean_bootstrap(old: np.ndarray, new: np.ndarray, rng: np.random.Generator,
                           n_resamples: int) -> tuple[float, float]:
    """One-sided p values of "new is worse" and "new is better" on paired scores.

    The mean difference of paired scores is the mean of the per-case
    differences, so one vectorised bootstrap of those differences is the paired
    bootstrap. Larger is better here (the caller flips the sign otherwise).
    """
    diff = new - old
    n = len(diff)
    if n < 2 or np.all(np.abs(diff) <= _EPS):
        return 1.0, 1.0
    chunk = max(1, min(n_resamples, 5_000_000 // n))
    means = np.empty(n_resamples)
    done = 0
    while done < n_resamples:
        k = min(chunk, n_resamples - done)
        means[done:done + k] = diff[rng.integers(0, n, size=(k, n))].mean(axis=1)
        done += k
    # Share of resampled deltas on the "not worse" side, with the +1 correction
    # so a p value is never exactly zero.
    p_worse = (np.sum(means >= 0) + 1) / (n_resamples + 1)
    p_better = (np.sum(means <= 0) + 1) / (n_resamples + 1)
    return float(p_worse), float(p_better)


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
    return "-" if v is None else f"{v:.4g}"


def _signed(v: float | None) -> str:
    return "-" if v is None else f"{v:+.4g}"


def _p(v: float | None) -> str:
    """``=0.031`` or ``<0.001``, to follow ``p``."""
    if v is None:
        return "=-"
    return f"={v:.2g}" if v >= 0.001 else "<0.001"


def _ids(ids: list[str], limit: int = 10) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", ... (+{len(ids) - limit})" if len(ids) > limit else "")


def _format_changes(changes: list[CaseChange], metric: str, width: int = 100) -> list[str]:
    lines: list[str] = []
    for c in changes:
        lines.append(f"    case {c.id}: {metric} {c.old_score:.4g} -> {c.new_score:.4g}")
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
        rows = [r for line in text.splitlines() or [""] for r in (textwrap.wrap(line, col) or [""])]
        if len(rows) > max_lines:
            rows = rows[:max_lines - 1] + [f"... (+{len(rows) - max_lines + 1} lines)"]
        return rows

    lo, ro = wrap(left), wrap(right)
    rows = [f"{'old':<{col}} | new"]
    for i in range(max(len(lo), len(ro))):
        a = lo[i] if i < len(lo) else ""
        b = ro[i] if i < len(ro) else ""
        rows.append(f"{a:<{col}} | {b}".rstrip())
    return rows
