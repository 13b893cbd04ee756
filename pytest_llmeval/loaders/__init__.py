"""Loaders: standard benchmark files (MMLU CSVs, Hugging Face exports...) read as a suite's cases.

A suite names a loader instead of a cases file::

    cases: {format: mmlu, path: data/mmlu, subjects: [anatomy], split: test}

``format`` picks the loader from :data:`LOADERS`; ``path`` is relative to the suite
file (the hook in :func:`pytest_llmeval.spec.load_suite` resolves it); every other
key of the mapping is an option of that loader.

A loader is a function ``load(path: Path, options: dict[str, Any]) -> list[dict[str, Any]]``
(``path`` already resolved, ``options`` the mapping without ``format``/``path``)
returning the suite's raw case dicts, the same dicts a JSONL cases file holds
(``id``, ``category``, fields...). It reads local files only, never the network.
A file of the wrong layout (a missing column, a wrong header, an empty file) or an
unknown option raises :class:`~pytest_llmeval.errors.SpecError` naming the file and
the expected columns/fields: the suite then is one collection error.

Each format is one line of :data:`LOADERS`, ``"name": "module:function"``, imported
only when a suite uses it (so pyarrow is loaded only for parquet files).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import SpecError

Loader = Callable[[Path, dict[str, Any]], list[dict[str, Any]]]

LOADERS: dict[str, str] = {
    "mmlu": "pytest_llmeval.loaders.mmlu:load",
    "hf_export": "pytest_llmeval.loaders.hf_export:load",
    "mt_bench": "pytest_llmeval.loaders.mt_bench:load",
    "alpaca_eval": "pytest_llmeval.loaders.alpaca_eval:load",
}


def get_loader(name: str) -> Loader:
    """The loader function of a format name; an unknown name is a SpecError with the known ones."""
    target = LOADERS.get(name)
    if target is None:
        close = difflib.get_close_matches(name, sorted(LOADERS), n=1, cutoff=0.6)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise SpecError(f"unknown cases format '{name}'.{hint} Known formats: {', '.join(sorted(LOADERS))}",
                        key="cases.format")
    module, _, func = target.partition(":")
    loader: Loader = getattr(importlib.import_module(module), func)
    return loader


def load_cases(source: dict[str, Any], base_dir: Path) -> tuple[list[dict[str, Any]], Path]:
    """Read the cases a ``cases: {format: ..., path: ...}`` mapping names.

    Returns the raw case dicts and the resolved path (for error messages and the suite's hash).

    Raises:
        SpecError: no ``format`` or ``path``, an unknown format, a missing file, or a wrong layout.
    """
    fmt = source.get("format")
    raw_path = source.get("path")
    if not isinstance(fmt, str) or not isinstance(raw_path, str) or not raw_path:
        raise SpecError(f"cases: a loader mapping needs 'format' (one of {', '.join(sorted(LOADERS))}) "
                        f"and 'path' (relative to the suite file), got {dict(source)!r}", key="cases")
    loader = get_loader(fmt)
    path = base_dir / raw_path
    if not path.exists():
        raise SpecError(f"cases path '{raw_path}' not found (looked for {path}); paths are relative to the "
                        f"suite file", key="cases.path")
    options = {k: v for k, v in source.items() if k not in ("format", "path")}
    return loader(path, options), path


def check_options(options: dict[str, Any], known: dict[str, str], fmt: str, path: Path) -> None:
    """Unknown options of a loader are errors that list the known ones (``known``: name -> meaning)."""
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            listing = "; ".join(f"{k}: {v}" for k, v in known.items())
            raise SpecError(f"cases: unknown option '{key}' of format '{fmt}'.{hint} Options: {listing}",
                            path=str(path), key=f"cases.{key}")
