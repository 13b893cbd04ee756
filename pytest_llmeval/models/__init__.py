"""Model references (``hf:``, ``openai:``, ``anthropic:``, ``python:``, ``outputs:``) -> backends.

Each backend lives in its own module, imported only when a suite names it, and
exposes ``load(target, *, name, options, base_dir) -> Model``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.models._api import MissingAPIKey
from pytest_llmeval.models.base import (
    Capabilities,
    Generation,
    GenerationInfo,
    GenerationOutcome,
    GenerationParams,
    GenerationRequest,
    Model,
    ModelBase,
    Prompt,
    apply_stop,
    as_model_base,
    loading,
    messages_to_text,
)

BACKENDS: dict[str, str] = {
    "hf": "pytest_llmeval.models.hf",
    "openai": "pytest_llmeval.models.openai_backend",
    "anthropic": "pytest_llmeval.models.anthropic_backend",
    "python": "pytest_llmeval.models.python_backend",
    "outputs": "pytest_llmeval.models.outputs_backend",
}

IMPORTS_USER_CODE = frozenset({"python"})
"""Schemes whose target is a Python module: they take ``search_dirs`` for the import."""

__all__ = [
    "BACKENDS",
    "Capabilities",
    "Generation",
    "GenerationInfo",
    "GenerationOutcome",
    "GenerationParams",
    "GenerationRequest",
    "MissingAPIKey",
    "Model",
    "ModelBase",
    "Prompt",
    "apply_stop",
    "as_model_base",
    "load_model",
    "loading",
    "messages_to_text",
    "split_reference",
]


def split_reference(ref: str) -> tuple[str, str]:
    """``"hf:./models/base"`` -> ``("hf", "./models/base")``, with a clear error otherwise."""
    scheme, sep, target = ref.partition(":")
    if not sep or scheme not in BACKENDS or not target:
        known = ", ".join(f"{s}:" for s in BACKENDS)
        raise ConfigError(
            f"invalid model reference {ref!r}: expected one of {known} followed by a target, "
            f"e.g. 'hf:./models/base' or 'python:mypkg.mymod:generate'"
        )
    return scheme, target


def load_model(ref: str, *, name: str | None = None, options: dict[str, Any] | None = None,
               base_dir: Path | None = None, search_dirs: Sequence[Path] = ()) -> Model:
    """Build a model from a reference string.

    Args:
        ref: ``scheme:target``.
        name: display name (``finetuned``, ``base``); defaults to the reference.
        options: backend options (``adapter``, ``batch_size``, ``base_url``, ...).
        base_dir: directory that relative paths in ``target``/options resolve against
            (the suite file's directory, or the rootdir for named models).
        search_dirs: further directories a ``python:`` module is looked for in, after
            ``base_dir`` and before ``sys.path`` (the rootdir).
    """
    scheme, target = split_reference(ref)
    module = importlib.import_module(BACKENDS[scheme])
    extra: dict[str, Any] = {"search_dirs": tuple(search_dirs)} if scheme in IMPORTS_USER_CODE else {}
    return module.load(target, name=name or ref, options=dict(options or {}),  # type: ignore[no-any-return]
                       base_dir=base_dir or Path.cwd(), **extra)
