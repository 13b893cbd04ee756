"""N-gram contamination checks between training data and eval cases.

Index the (small) eval side, stream the (large) training side, verify every
candidate on the text, report per case. Used by the suite gate (``gate.run_gate``)
and the ``llmeval contamination`` command (``cli``).
"""

from __future__ import annotations

from pytest_llmeval.contamination.engines import scan
from pytest_llmeval.contamination.index import EvalCase, EvalIndex
from pytest_llmeval.contamination.normalize import Normalizer, make_tokenizer
from pytest_llmeval.contamination.report import CaseReport, MatchSource, ScanReport
from pytest_llmeval.contamination.scanner import ScanOptions

__all__ = ["CaseReport", "EvalCase", "EvalIndex", "MatchSource", "Normalizer", "ScanOptions",
           "ScanReport", "make_tokenizer", "scan"]
