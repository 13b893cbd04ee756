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

from pytest_llmeval import numbers
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
    file: str = ""
    """The suite's file, relative to the rootdir (with ``gate``, the identity across runs)."""

    def properties(self) -> list[tuple[str, Any]]:
        """JUnit properties: verdict, previous/this run value, delta, p-value, cases worse (raw numbers),
        and ``difference`` and ``p`` in the shared number format."""
        c = self.comparison
        props: list[tuple[str, Any]] = [("verdict", self.status)]
        for key in ("old_value", "new_value", "delta", "p_value", "p_adjusted", "n_worse", "n_paired"):
            if c.get(key) is not None:
                props.append((key, c[key]))
        if c.get("delta") is not None:
            # the same text the reports show: signed, with its interval when the test gave one
            props.append(("difference", numbers.estimate(c["delta"], *(c.get("delta_ci") or (None, None)),
                                                         sign=True)))
        if c.get("p_value") is not None:
            props.append(("p", numbers.p_value(c["p_value"])))
        return props

    def to_dict(self) -> dict[str, Any]:
        return {"suite": self.suite, "file": self.file, "gate": self.gate, "status": self.status,
                "message": self.message, "comparison": dict(self.comparison)}


def compare_suite(old: RunResult, new: SuiteResult, *, alpha: float, max_regression: float | None,
                  seed: int, settings: dict[str, Any] | None = None,
                  models: dict[str, Any] | None = None) -> Any:
    """The comparison of one suite of this run with the previous run (its own Holm family)."""
    from pytest_llmeval.compare import compare_runs

    this = RunResult(suites=[new], settings=dict(settings or {}), models=dict(models or {}))
    return compare_runs(old, this, alpha=alpha, max_regression=max_regression, seed=seed)


def regression_outcome(comparison: Any, new: SuiteResult, gate: str, *, allow_unpaired: bool,
                       max_cases: int = DEFAULT_MAX_CASES) -> RegressionOutcome:
    """The verdict of ``regression[gate]`` from its suite's comparison."""
    from pytest_llmeval.compare import format_regression

    unpaired = "skip" if allow_unpaired else "error"
    hint = "" if allow_unpaired else ("\n(pass --llmeval-compare-allow-unpaired to skip gates that cannot "
                                      "be paired)")

    def outcome(status: Any, message: str = "", data: dict[str, Any] | None = None) -> RegressionOutcome:
        return RegressionOutcome(new.name, gate, status, message, data or {}, new.file)

    match = [r for r in comparison.results if r.gate == gate and r.suite_file in (new.file, "")]
    match = match or [r for r in comparison.results if r.gate == gate]
    if not match:
        where = new.file or new.name
        absent = (f"suite {where} is not in the previous run" if comparison.suite(new.file, new.name) is None
                  else f"gate '{gate}' has no counterpart in the previous run (new, or not evaluated there)")
        return outcome(unpaired, f"'{gate}' cannot be compared: {absent}{hint}")
    r = match[0]
    data = r.to_dict()
    data["n_worse"] = len(r.worse_cases)
    if r.status == "error":
        return outcome(unpaired, format_regression(r, max_cases) + hint, data)
    if r.status == "regressed":
        return outcome("regressed", format_regression(r, max_cases, comparison.warnings or None), data)
    return outcome("pass", "", data)
