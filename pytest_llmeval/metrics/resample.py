"""Bootstrap intervals of corpus metrics from per-case sufficient statistics.

A corpus metric such as corpus BLEU or macro F1 is not a mean of per-case
scores, so its bootstrap used to recompute the metric with its library on every
resampled set of cases: a thousand library calls per interval. Every built-in
corpus metric is, however, a function of column sums of a per-case table (n-gram
matches and totals for BLEU, the confusion matrix for F1, character n-gram
statistics for chrF). A resample is then a weighted sum: the matrix of how
often each case was drawn in each resample, times the per-case table, one
matrix product for all resamples. Only the last step, from summed statistics
to the score, runs per resample, and it runs the library's own arithmetic, so
the values equal the library's.

The resample indices are the ones :func:`pytest_llmeval.stats.bootstrap_statistic`
and :func:`pytest_llmeval.stats.paired_bootstrap` draw (they recognise a
:class:`CaseStatistics` and hand it all resamples at once), so intervals are
the same as with the recomputation. Metrics without sufficient statistics (a
``python:`` corpus metric) keep the recomputation, with a progress callback.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from pytest_llmeval import stats
from pytest_llmeval.metrics.base import Metric, References

ScoreFromSums = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(sums (R x k), last (R,)) -> values (R,)``: the corpus value of each resample.

``sums`` holds each resample's column sums of the per-case table; ``last`` the
index (into the cases the statistics were built on) of each resample's last
case, for the one metric that looks at it (nltk's BLEU smoothing ``method5``
and ``method7`` re-count 5-grams of the last sentence, as ``corpus_bleu`` does).
"""

Progress = Callable[[int], None]
"""Called with the number of resamples finished since the previous call."""


class CaseStatistics:
    """Per-case sufficient statistics of one metric on one list of cases.

    Callable as ``statistic(indices) -> float`` (the corpus value of the cases at
    ``indices``, repeats counted), and ``batch(indices_matrix)`` for many
    resamples at once, which the bootstrap functions of :mod:`pytest_llmeval.stats`
    use when it is there.

    Args:
        table: ``n_cases x k`` statistics whose column sums determine the corpus value;
            integer-valued statistics are summed exactly (float64 is exact below 2**53).
        score: the corpus value from summed statistics, see :data:`ScoreFromSums`.
        origin: for a subset, each row's index in the cases ``score`` was built for.
    """

    def __init__(self, table: np.ndarray, score: ScoreFromSums, origin: np.ndarray | None = None) -> None:
        self.table = np.ascontiguousarray(table, dtype=np.float64)
        if self.table.ndim != 2:
            raise ValueError(f"the statistics table must be 2-D, got shape {self.table.shape}")
        self.score = score
        self.origin = np.arange(len(self.table)) if origin is None else np.asarray(origin)

    @property
    def n(self) -> int:
        return len(self.table)

    def subset(self, rows: Sequence[int] | np.ndarray) -> CaseStatistics:
        """The statistics of some of the cases (a category), without recomputing them."""
        rows = np.asarray(rows, dtype=np.intp)
        return CaseStatistics(self.table[rows], self.score, self.origin[rows])

    def batch(self, indices: np.ndarray) -> np.ndarray:
        """Corpus values of ``R`` resamples given as an ``R x m`` matrix of case indices."""
        indices = np.asarray(indices, dtype=np.intp)
        if indices.ndim != 2:
            raise ValueError(f"indices must be an R x m matrix, got shape {indices.shape}")
        r, m = indices.shape
        if m == 0:
            return np.full(r, np.nan)
        counts = np.bincount((np.arange(r, dtype=np.intp)[:, None] * self.n + indices).ravel(),
                             minlength=r * self.n).reshape(r, self.n).astype(np.float64)
        sums = counts @ self.table
        return np.asarray(self.score(sums, self.origin[indices[:, -1]]), dtype=np.float64)

    def __call__(self, indices: Any) -> float:
        return float(self.batch(np.asarray(indices, dtype=np.intp)[None, :])[0])

    def value(self) -> float:
        """The corpus value on all cases, in order."""
        return self(np.arange(self.n))


def case_statistics(metric: Metric, predictions: Sequence[str],
                    references: Sequence[References]) -> CaseStatistics | None:
    """The metric's sufficient statistics on these cases, or None when it has none.

    In order: the metric's own ``statistics`` (nltk BLEU, precision/recall/F1);
    sacrebleu-style ``case_stats`` with ``score_from_stats`` (BLEU, chrF); for
    ``mean`` and ``proportion`` metrics, the per-case score and a count (their
    corpus value is the mean). A ``python:`` corpus metric has none.
    """
    if metric.statistics is not None:
        return metric.statistics(predictions, references)
    if metric.case_stats is not None and metric.score_from_stats is not None:
        table = np.asarray(metric.case_stats(predictions, references), dtype=np.float64)
        from_stats = metric.score_from_stats

        def rows_from_stats(sums: np.ndarray, last: np.ndarray) -> np.ndarray:
            return np.array([from_stats(row) for row in sums], dtype=np.float64)

        return CaseStatistics(table.reshape(len(predictions), -1), rows_from_stats)
    if metric.kind in ("mean", "proportion") and metric.score_corpus is None:
        scores = metric.case_scores(predictions, references)
        if scores is None:
            return None
        table = np.column_stack([np.asarray(scores, dtype=np.float64), np.ones(len(scores))])
        return CaseStatistics(table.reshape(len(scores), 2), mean_from_sums)
    return None


def mean_from_sums(sums: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Sum of scores over number of cases (``Metric.corpus`` for mean metrics)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(sums[:, 0] / sums[:, 1])


class Recompute:
    """``indices -> corpus value`` by calling the metric's library on the resampled cases.

    The path for metrics without sufficient statistics; every call is a full
    corpus computation.
    """

    def __init__(self, metric: Metric, predictions: Sequence[str], references: Sequence[References]) -> None:
        self.metric = metric
        self.predictions = list(predictions)
        self.references = list(references)

    def __call__(self, indices: Any) -> float:
        return self.metric.corpus([self.predictions[i] for i in indices],
                                  [self.references[i] for i in indices])


def corpus_statistic(metric: Metric, predictions: Sequence[str],
                     references: Sequence[References]) -> CaseStatistics | Recompute:
    """``indices -> corpus value`` for the bootstrap: sufficient statistics when the metric has them."""
    table = case_statistics(metric, predictions, references)
    return table if table is not None else Recompute(metric, predictions, references)


def corpus_estimate(metric: Metric, predictions: Sequence[str], references: Sequence[References],
                    confidence: float = 0.95, seed: int | None = None,
                    n_resamples: int = 1000, progress: Progress | None = None) -> stats.Estimate:
    """The corpus value on all cases with its percentile bootstrap interval over cases.

    Same resamples, hence the same interval, as ``stats.bootstrap_statistic`` with a
    recomputation of the corpus metric; ``progress`` hears about each recomputed
    resample when the metric has no sufficient statistics.
    """
    return stats.bootstrap_statistic(len(predictions), corpus_statistic(metric, predictions, references),
                                     confidence, n_resamples=n_resamples, seed=seed, progress=progress)


def paired_corpus_delta(metric: Metric, base_predictions: Sequence[str], new_predictions: Sequence[str],
                        references: Sequence[References], confidence: float = 0.95,
                        seed: int | None = None, n_resamples: int = 1000,
                        progress: Progress | None = None) -> stats.Estimate:
    """``metric(new) - metric(base)`` on the same cases, with its paired bootstrap interval."""
    if len(base_predictions) != len(new_predictions) or len(new_predictions) != len(references):
        raise ValueError(f"paired predictions and references differ in length: {len(base_predictions)} "
                         f"base, {len(new_predictions)} new, {len(references)} references")
    return stats.paired_bootstrap(len(references), corpus_statistic(metric, base_predictions, references),
                                  corpus_statistic(metric, new_predictions, references), confidence,
                                  n_resamples=n_resamples, seed=seed, progress=progress)


def category_estimates(metric: Metric, predictions: Sequence[str], references: Sequence[References],
                       categories: Sequence[Hashable | None], confidence: float = 0.95,
                       seed: int | None = None, n_resamples: int = 1000,
                       progress: Progress | None = None) -> dict[Hashable, stats.Estimate]:
    """The corpus value and interval of each category (cases whose category is None are left out).

    The per-case statistics are computed once and each category takes its rows,
    so a breakdown costs one statistics pass however many categories there are.
    Each category's bootstrap uses ``seed``, as separate calls would.
    """
    if len(categories) != len(predictions):
        raise ValueError(f"{len(categories)} categories for {len(predictions)} predictions")
    table = case_statistics(metric, predictions, references)
    out: dict[Hashable, stats.Estimate] = {}
    for cat in sorted({c for c in categories if c is not None}, key=str):
        rows = [i for i, c in enumerate(categories) if c == cat]
        statistic: CaseStatistics | Recompute
        if table is not None:
            statistic = table.subset(rows)
        else:
            statistic = Recompute(metric, [predictions[i] for i in rows], [references[i] for i in rows])
        out[cat] = stats.bootstrap_statistic(len(rows), statistic, confidence, n_resamples=n_resamples,
                                             seed=seed, progress=progress)
    return out
