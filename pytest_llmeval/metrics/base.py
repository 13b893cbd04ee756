"""The Metric interface and the registry that rebuilds metrics by name from YAML.

A metric is built by a registered factory from its YAML options (configuration
in the outer call, pure functions inside). The evaluator needs three things
from it: a per-case score (shown on each case item, used for per-case minimums
and for bootstrapping means), a corpus value over any subset of cases (for
corpus metrics such as corpus BLEU or macro F1), and optionally a text report
(sklearn's classification report). A corpus metric may also give per-case
sufficient statistics, from which the bootstrap sums each resample instead of
recomputing the corpus value (:mod:`pytest_llmeval.metrics.resample`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_llmeval.errors import ConfigError

References = Sequence[str]
"""All acceptable references of one case (a single reference is a 1-list)."""

Kind = Literal["mean", "proportion", "corpus"]


@dataclass
class Metric:
    """A configured metric.

    Attributes:
        name: the gate's name (``exact_match``, ``rougeL``, ``f1_macro``...).
        kind: ``proportion`` (per-case 0/1, Wilson interval), ``mean`` (per-case
            floats, bootstrap of the mean) or ``corpus`` (value computed on the
            whole set, bootstrap over cases).
        score_case: ``(prediction, references) -> float``; for corpus metrics a
            sentence-level score for display, or ``None`` when there is none.
        score_corpus: ``(predictions, references_list) -> float``; defaults to the
            mean of ``score_case``.
        report: optional ``(predictions, references_list) -> str`` for the summary.
        needs_reference: cases without a reference are an error for this metric.
        options: the options it was built with, recorded in results.
        case_stats: optional ``(predictions, references_list) -> array (n_cases x k)`` of
            per-case sufficient statistics whose column sums determine the corpus value
            (sacrebleu's BLEU and chrF); lets the bootstrap resample sums instead of
            recomputing the corpus metric from text a thousand times.
        score_from_stats: ``(summed statistics) -> float``, the corpus value from summed stats.
        range: ``(lowest, highest)`` value (0-1 for proportions and BLEU-like scores).
        statistics: optional ``(predictions, references_list) -> CaseStatistics``
            (:mod:`pytest_llmeval.metrics.resample`): per-case sufficient statistics with a
            vectorised score from their sums (nltk BLEU, precision/recall/F1).
    """

    name: str
    kind: Kind
    score_case: Callable[[str, References], float] | None
    score_corpus: Callable[[Sequence[str], Sequence[References]], float] | None = None
    report: Callable[[Sequence[str], Sequence[References]], str] | None = None
    needs_reference: bool = True
    higher_is_better: bool = True
    options: dict[str, Any] = field(default_factory=dict)
    case_stats: Callable[[Sequence[str], Sequence[References]], Any] | None = None
    score_from_stats: Callable[[Any], float] | None = None
    range: tuple[float, float] = (0.0, 1.0)
    """The values the metric can take; a threshold outside it is a collection error."""
    statistics: Callable[[Sequence[str], Sequence[References]], Any] | None = None
    score_cases: Callable[[Sequence[str], Sequence[References]], list[float]] | None = None
    """Optional: every case's ``score_case`` in one call (chrF scores a whole set at once)."""

    def case_scores(self, predictions: Sequence[str], references: Sequence[References]) -> list[float] | None:
        if self.score_cases is not None:
            return list(self.score_cases(predictions, references))
        if self.score_case is None:
            return None
        return [self.score_case(p, r) for p, r in zip(predictions, references, strict=True)]

    def corpus(self, predictions: Sequence[str], references: Sequence[References]) -> float:
        if self.score_corpus is not None:
            return float(self.score_corpus(predictions, references))
        scores = self.case_scores(predictions, references)
        if not scores:
            return float("nan")
        return float(sum(scores) / len(scores))


MetricFactory = Callable[..., Metric]
_REGISTRY: dict[str, MetricFactory] = {}
_DEFAULT_MODULES = (
    "pytest_llmeval.metrics.match",
    "pytest_llmeval.metrics.classification",
    "pytest_llmeval.metrics.bleu",
    "pytest_llmeval.metrics.rouge",
)
_loaded = False


def register_metric(name: str) -> Callable[[MetricFactory], MetricFactory]:
    """Decorator: make a factory buildable from YAML as ``metrics: {name: {...}}``."""

    def deco(factory: MetricFactory) -> MetricFactory:
        _REGISTRY[name] = factory
        return factory

    return deco


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        import importlib

        for mod in _DEFAULT_MODULES:
            importlib.import_module(mod)
        _loaded = True


def metric_names() -> list[str]:
    _ensure_loaded()
    return sorted(_REGISTRY)


def build_metric(name: str, options: dict[str, Any] | None = None) -> Metric:
    """Build a metric by registry name, or ``python:module:function`` for a user metric.

    Raises:
        ConfigError: unknown name (with a "did you mean") or bad options.
    """
    options = dict(options or {})
    if name.startswith("python:"):
        from pytest_llmeval.metrics.custom import python_metric

        return python_metric(name[len("python:"):], **options)
    _ensure_loaded()
    factory = _REGISTRY.get(name)
    if factory is None:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown metric '{name}'.{hint} Known metrics: {', '.join(sorted(_REGISTRY))}, "
            f"or 'python:module:function' for your own."
        )
    try:
        return factory(**options)
    except TypeError as exc:
        raise ConfigError(f"metric '{name}': invalid options {options}: {exc}") from None
