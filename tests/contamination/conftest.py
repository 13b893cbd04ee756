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


@pytest.fixture(scope="module", params=["compiled", "kernels"])
def scan_passes(request: pytest.FixtureRequest) -> Iterator[str]:
    """A module's fast-path tests run twice: with the compiled passes (``_scan.pyx``) and
    with pyarrow's kernels alone (``LLMEVAL_NATIVE=0``, as where the module is not built).
    Without the compiled module the first run skips, but fails in CI, which builds it."""
    from pytest_llmeval.contamination import native

    if request.param == "compiled" and not native.built():
        if os.environ.get("CI"):
            pytest.fail("the compiled scanner (pytest_llmeval/contamination/_scan.pyx) is "
                        "required in CI: `pip install -e .` builds it with a C compiler")
        pytest.skip("the compiled scanner is not built")
    with pytest.MonkeyPatch.context() as m:
        m.setenv("LLMEVAL_NATIVE", "1" if request.param == "compiled" else "0")
        yield request.param
