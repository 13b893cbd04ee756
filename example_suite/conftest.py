"""The example suite's fixtures: the fine-tuned example model and its base.

Suites that name no model use ``llm_model``; overriding it here (rather than
passing ``--llmeval-model``) is how a project plugs in its own model.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

# Everything the example needs ships in this repository: never reach for a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pytest_llmeval import get_session  # noqa: E402


@pytest.fixture(scope="session")
def llm_model(pytestconfig: pytest.Config) -> Any:
    return get_session(pytestconfig).resolve("finetuned")


@pytest.fixture(scope="session")
def llm_baseline(pytestconfig: pytest.Config) -> Any:
    return get_session(pytestconfig).resolve("base")
