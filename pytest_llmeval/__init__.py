"""pytest_llmeval: evaluate language models as pytest tests."""

from __future__ import annotations

from pytest_llmeval._version import __version__

__all__ = ["__version__"]
