"""Metrics: a registry from names (as written in eval files) to metric factories.

One module per family: ``match`` (exact_match, accuracy, contains, length),
``classification`` (precision, recall, f1), ``bleu`` (bleu, sentence_bleu,
sacrebleu, chrf), ``rouge`` (rouge, rouge1, rouge2, rougeL, rougeLsum) and
``custom`` (``python:module:function``). Family modules are imported on first
use of the registry, and import their reference libraries only when a metric
is built, so importing this package stays cheap.
"""

from __future__ import annotations

from pytest_llmeval.metrics.base import (
    Metric,
    References,
    build_metric,
    metric_names,
    register_metric,
)

__all__ = ["Metric", "References", "build_metric", "metric_names", "register_metric"]
