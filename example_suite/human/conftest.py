"""Collect ``human.eval.yaml`` once the suite loader knows its ``human:`` and ``judge_calibration:``
sections (registered by pytest_llmeval.gates.human and .judge_calibration); until then the
example's blind set and ratings are used by ``llmeval annotate report`` and tests/human.
"""

from __future__ import annotations

from pathlib import Path

from pytest_llmeval.errors import SpecError
from pytest_llmeval.spec import load_suite


def _sections_known() -> bool:
    try:
        load_suite(Path(__file__).with_name("human.eval.yaml"))
    except SpecError as exc:
        return "unknown key 'human'" not in str(exc) and "unknown key 'judge_calibration'" not in str(exc)
    return True


collect_ignore = [] if _sections_known() else ["human.eval.yaml"]
