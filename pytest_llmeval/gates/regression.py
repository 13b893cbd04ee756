"""Regression gates: one gate of this run against the same gate of a previous run.

Under ``--llmeval-compare`` every gate of a suite gets an item
``regression[<gate>]``. The comparison is the paired test of
:mod:`pytest_llmeval.compare`, run on the suite's own gates (its Holm family);
the item FAILs on a significant regression, and is an ERROR when the gate cannot
be paired with the previous run (a suite or gate absent there, no case in common,
the gate without a value in either run), unless unpaired gates are allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_llmeval.results import RunResult, SuiteResult

DEFAULT_MAX_CASES = 20


@dataclass
class RegressionOutcome:
    """The verdict of one ``regression[<gate>]`` item."""

    suite: str
    gate: str
    status: Literal["pass", "regressed", "error", "skip"]
    message: str = ""
    comparison: dict[str, Any] = field(default_factory=dict)

    def properties(self) -> list[tuple[str, Any]]:
        """JUnit properties: verdict, old/new value, delta, p-value, cases worse."""
        c = self.comparison
        props: list[tuple[str, Any]] = [("verdict", self.status)]
        for key in ("old_value", "new_value", "delta", "p_value", "p_adjusted", "n_worse", "n_paired"):
            if c.get(key) is not None:
                props.append((key, c[key]))
        return props

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "gate": self.gate, "status": self.status, "message": self.message,
                "comparison": dict(self.comparison)}


def find_suite(old: RunResult, new: SuiteResult) -> SuiteResult | None:
    """The previous run's suite: same file (relative to the rootdir), else the same name if unique."""
    same_file = [s for s in old.suites if s.file == new.file]
    if same_file:
        return same_file[0]
    same_name = [s for s in old.suites if s.name == new.name]
    return same_name[0] if len(same_name) == 1 and not same_name[0].file else None


def compare_suite(old: RunResult, new: SuiteResult, *, alpha: float, max_regression: float | None,
                  seed: int) -> Any:
    """The comparison of one suite of this run with its counterpart (None when it has none)."""
    from pytest_llmeval.compare import compare_runs

    previous = find_suite(old, new)
    if previous is None:
        return None
    previous_named = SuiteResult.from_dict({**previous.to_dict(), "name": new.name})
    return compare_runs(RunResult(suites=[previous_named], settings=old.settings, models=old.models,
                                  plugin_version=old.plugin_version, created=old.created),
                        RunResult(suites=[new]), alpha=alpha, max_regression=max_regression, seed=seed)


def regression_outcome(comparison: Any, new: SuiteResult, gate: str, *, allow_unpaired: bool,
                       max_cases: int = DEFAULT_MAX_CASES) -> RegressionOutcome:
    """The verdict of ``regression[gate]`` from a suite's comparison."""
    unpaired = "skip" if allow_unpaired else "error"
    hint = "" if allow_unpaired else " (pass --llmeval-compare-allow-unpaired to skip unpaired gates)"
    if comparison is None:
        return RegressionOutcome(new.name, gate, unpaired,
                                 f"suite {new.file or new.name} is not in the previous run, so '{gate}' "
                                 f"cannot be compared{hint}")
    g = comparison.gate(new.name, gate)
    if g is None:
        return RegressionOutcome(new.name, gate, unpaired,
                                 f"gate '{gate}' has no value in one of the runs (new, or not evaluated), "
                                 f"so it cannot be compared{hint}")
    data = g.to_dict()
    status = getattr(g, "status", None)
    if status == "error" or (status is None and (g.n_paired == 0 or g.old_value is None
                                                  or g.new_value is None)):
        why = getattr(g, "reason", "") or "no case could be paired with the previous run"
        return RegressionOutcome(new.name, gate, unpaired, f"'{gate}' cannot be compared: {why}{hint}",
                                 data)
    if g.regressed:
        msg = comparison.failure_message(g, max_cases=max_cases)
        shown = min(max_cases, len(g.worse_cases))
        if g.n_worse > shown:
            msg += f"\n  ({g.n_worse} cases got worse in all; {shown} shown: --llmeval-max-cases N shows more)"
        return RegressionOutcome(new.name, gate, "regressed", msg, data)
    return RegressionOutcome(new.name, gate, "pass", "", data)
