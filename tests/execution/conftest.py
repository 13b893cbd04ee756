"""Fixtures of the execution tests: one sandbox pool per module, and a gate context builder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from execution_helpers import start_sandbox

from pytest_llmeval.execution.sandbox import Limits, Sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    """The default sandbox (every layer where bubblewrap works), 3 s per sample, two workers."""
    sb = start_sandbox(Limits(timeout_s=3.0, memory_mb=256, max_processes=16, file_size_mb=8,
                              max_output_bytes=4096), workers=2)
    yield sb
    sb.close()
