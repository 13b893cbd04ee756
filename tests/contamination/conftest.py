"""The contamination tests keep computed unsafe-character patterns in a directory of their
own, so that every test session computes them once (and no user cache is read)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _pattern_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    old = os.environ.get("LLMEVAL_CACHE_HOME")
    os.environ["LLMEVAL_CACHE_HOME"] = str(tmp_path_factory.mktemp("llmeval-cache-home"))
    yield
    if old is None:
        os.environ.pop("LLMEVAL_CACHE_HOME", None)
    else:
        os.environ["LLMEVAL_CACHE_HOME"] = old
