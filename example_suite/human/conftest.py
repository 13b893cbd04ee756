"""The gate kinds of ``human.eval.yaml``: ``human:`` and ``judge_calibration:`` register on import."""

from __future__ import annotations

import pytest_llmeval.gates.human  # noqa: F401
import pytest_llmeval.gates.judge_calibration  # noqa: F401
