"""Loaders of standard benchmark formats: format name -> ``"module:function"`` of its loader.

A loader is ``load(path: Path, options: dict) -> list[dict]``: it returns the suite's raw
case records (as a cases file would hold them) and raises
:class:`~pytest_llmeval.errors.SpecError` naming the file and the fields the format
expects when the file does not have its layout.
"""

from __future__ import annotations

LOADERS: dict[str, str] = {
    "mt_bench": "pytest_llmeval.loaders.mt_bench:load",
    "alpaca_eval": "pytest_llmeval.loaders.alpaca_eval:load",
}

__all__ = ["LOADERS"]
