"""The plugin tests' pytester helpers (a toy model, the evaldir fixture, serial/xdist runs), shared."""

from __future__ import annotations

from plugin.conftest import MODEL_SOURCE, dist, evaldir, results, sentiment_cases, write

__all__ = ["MODEL_SOURCE", "dist", "evaldir", "results", "sentiment_cases", "write"]
