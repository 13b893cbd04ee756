"""Shared helpers for end-to-end plugin tests with pytester."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

# pytester runs pytest in this process and drops the modules a run imported; C extensions such as
# numpy cannot be loaded twice, so the libraries the plugin imports lazily are imported here once.
import numpy  # noqa: F401
import pydantic  # noqa: F401
import pytest
import scipy.stats  # noqa: F401
import sklearn.metrics  # noqa: F401

MODEL_SOURCE = '''
import os

CALLS = os.environ.get("LLMEVAL_TEST_CALLS")


def _log(prompt):
    if CALLS:
        with open(CALLS, "a", encoding="utf-8") as fh:
            fh.write(repr(prompt) + "\\n")


def sentiment(prompt):
    """A deterministic toy model: 'good' -> positive, 'bad' -> negative, else neutral."""
    _log(prompt)
    text = prompt if isinstance(prompt, str) else " ".join(m["content"] for m in prompt)
    if "explode" in text:
        raise RuntimeError("model exploded")
    if "good" in text:
        return "positive"
    if "bad" in text:
        return "negative"
    return "neutral"


def always_negative(prompt):
    _log(prompt)
    return "negative"


def echo(prompt):
    _log(prompt)
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


def batch_upper(prompts):
    return [p.upper() for p in prompts]
'''


@pytest.fixture(params=["serial", "xdist"])
def dist(request: pytest.FixtureRequest) -> list[str]:
    """Extra arguments for a run: aggregation tests run serially and with ``-n 2``."""
    if request.param == "xdist":
        pytest.importorskip("xdist")
        return ["-n", "2"]
    return []


@pytest.fixture
def evaldir(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester dir with a toy model module importable by suites."""
    pytester.makepyfile(toymodel=MODEL_SOURCE)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nllmeval_cache = off\n")
    return pytester


def write(pytester: pytest.Pytester, name: str, text: str) -> Path:
    path = pytester.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def results(pytester: pytest.Pytester, name: str = "results.json") -> dict:
    return json.loads((pytester.path / name).read_text(encoding="utf-8"))


def sentiment_cases(n_good: int, n_bad: int, n_neutral: int = 0) -> str:
    lines = []
    for i in range(n_good):
        lines.append(json.dumps({"id": f"g{i}", "text": f"a good thing {i}", "reference": "positive",
                                 "category": "pos"}))
    for i in range(n_bad):
        lines.append(json.dumps({"id": f"b{i}", "text": f"a bad thing {i}", "reference": "negative",
                                 "category": "neg"}))
    for i in range(n_neutral):
        lines.append(json.dumps({"id": f"n{i}", "text": f"a thing {i}", "reference": "positive",
                                 "category": "other"}))
    return "\n".join(lines) + "\n"
