"""Gates: every assertion a suite makes over its generated outputs.

One module per kind (``metric``, ``judge_score``, ``win_rate``, ``contamination``,
``latency``, ``cost``, ...), each a :class:`~pytest_llmeval.gates.base.Gate`
subclass with a typed spec, registered by :func:`~pytest_llmeval.gates.registry.register_gate`.
The evaluator generates once, then runs the gates; items, the summary, JUnit,
the results file and the reports take names and verdicts from the gate.
"""

from __future__ import annotations

from pytest_llmeval.gates.base import (
    BaselineRun,
    DisplayRow,
    Gate,
    GateContext,
    GateOutcome,
    GateSkip,
    GateSpec,
    error_outcome,
    skip_outcome,
)
from pytest_llmeval.gates.registry import gate_kind, gate_kinds, register_gate

__all__ = [
    "BaselineRun",
    "DisplayRow",
    "Gate",
    "GateContext",
    "GateOutcome",
    "GateSkip",
    "GateSpec",
    "error_outcome",
    "gate_kind",
    "gate_kinds",
    "register_gate",
    "skip_outcome",
]
