"""pytest_llmeval: evaluate language models as pytest tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_llmeval._version import __version__

if TYPE_CHECKING:
    import pytest

    from pytest_llmeval.session import LLMEvalSession

__all__ = ["__version__", "get_session", "load_model"]


def get_session(config: pytest.Config) -> LLMEvalSession:
    """The run's session object: ``get_session(pytestconfig).resolve("finetuned")`` loads a named model."""
    from pytest_llmeval.session import SESSION_KEY

    return config.stash[SESSION_KEY]


def load_model(ref: str, **kwargs: Any) -> Any:
    """Build a model from a reference (``hf:DIR``, ``openai:MODEL``, ...); see ``models.load_model``."""
    from pytest_llmeval.models import load_model as _load

    return _load(ref, **kwargs)
