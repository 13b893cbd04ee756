"""Confidence intervals and significance tests.

Every aggregate the package reports carries an interval: Wilson for
proportions, a seeded percentile bootstrap for means and corpus metrics.
Paired tests compare two runs (or two models) case by case.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20240607
SMALL_N = 30
"""Below this many cases the interval is too wide to say much: the summary warns."""


@dataclass(frozen=True)
class Estimate:
    """A point value with its confidence interval."""

    value: float
    low: float
    high: float
    n: int
    confidence: float
    method: str

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "ci": [self.low, self.high], "n": self.n,
                "confidence": self.confidence, "method": self.method}


def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def wilson(successes: float, n: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a proportion (well-behaved at 0, 1 and small n)."""
    if n <= 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, confidence, "wilson")
    p = successes / n
    z = _z(confidence)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n, confidence, "wilson")


def _rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(DEFAULT_SEED if seed is None else seed)


def bootstrap_mean(values: Sequence[float], confidence: float = 0.95,
                   n_resamples: int = DEFAULT_RESAMPLES, seed: int | None = None) -> Estimate:
    """Percentile bootstrap of the mean, vectorised (fast for 100k values)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, confidence, "bootstrap")
    value = float(x.mean())
    if n == 1:
        return Estimate(value, value, value, 1, confidence, "bootstrap")
    rng = _rng(seed)
    # Resample in chunks so memory stays bounded for large n.
    chunk = max(1, min(n_resamples, 20_000_000 // n))
    means = np.empty(n_resamples)
    done = 0
    while done < n_resamples:
        k = min(chunk, n_resamples - done)
        idx = rng.integers(0, n, size=(k, n))
        means[done:done + k] = x[idx].mean(axis=1)
        done += k
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return Estimate(value, float(lo), float(hi), n, confidence, "bootstrap")


class BatchStatistic(Protocol):
    """A statistic that can also evaluate many resamples at once (see ``metrics.resample``)."""

    def __call__(self, indices: np.ndarray) -> float: ...

    def batch(self, indices: np.ndarray) -> np.ndarray:
        """Values of ``R`` resamples given as an ``R x n`` matrix of indices."""
        ...


_INDEX_BLOCK = 4_000_000
"""Indices drawn per block of resamples when a statistic takes them all at once (32 MB)."""


def _resample_values(n: int, n_resamples: int, rng: np.random.Generator,
                     statistics: Sequence[Callable[[np.ndarray], float]],
                     progress: Callable[[int], None] | None) -> list[np.ndarray]:
    """Each statistic on the same ``n_resamples`` resamples of ``range(n)``.

    A statistic that recomputes gets one resample at a time, ``rng.integers(0, n,
    size=n)``; one that takes a block of resamples at once (:class:`BatchStatistic`)
    gets them as one ``(k, n)`` draw, which is the same indices in the same order:
    numpy's bit generators keep the unused half of a 64-bit draw in their state,
    so the stream does not depend on how it is split into calls (a test pins it).
    Both therefore see the same resamples and give the same interval.
    """
    values = [np.empty(n_resamples) for _ in statistics]
    batches = [getattr(s, "batch", None) for s in statistics]
    if all(b is not None for b in batches):
        block = max(1, min(n_resamples, _INDEX_BLOCK // max(n, 1)))
        done = 0
        while done < n_resamples:
            k = min(block, n_resamples - done)
            idx = rng.integers(0, n, size=(k, n))
            for out, batch in zip(values, batches, strict=True):
                out[done:done + k] = batch(idx)  # type: ignore[misc]
            done += k
            if progress is not None:
                progress(k)
        return values
    for i in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        for out, statistic in zip(values, statistics, strict=True):
            out[i] = statistic(idx)
        if progress is not None:
            progress(1)
    return values


def bootstrap_statistic(n: int, statistic: Callable[[np.ndarray], float], confidence: float = 0.95,
                        n_resamples: int = 1000, seed: int | None = None,
                        progress: Callable[[int], None] | None = None) -> Estimate:
    """Percentile bootstrap of any statistic computed from case indices.

    ``statistic(indices)`` recomputes the corpus value on the resampled cases
    (corpus BLEU, macro F1, win rate...). The point value is ``statistic(arange(n))``.
    A statistic with a ``batch`` method (:class:`BatchStatistic`, e.g. summed
    sufficient statistics) gets the same resamples in blocks. ``progress(k)`` is
    called as resamples finish, for a slow recomputation to report.
    """
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, confidence, "bootstrap")
    value = float(statistic(np.arange(n)))
    if n == 1:
        return Estimate(value, value, value, 1, confidence, "bootstrap")
    (stats,) = _resample_values(n, n_resamples, _rng(seed), [statistic], progress)
    stats = stats[~np.isnan(stats)]
    if len(stats) == 0:
        return Estimate(value, float("nan"), float("nan"), n, confidence, "bootstrap")
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(stats, [alpha, 1 - alpha])
    return Estimate(value, float(lo), float(hi), n, confidence, "bootstrap")


def sign_test(wins: int, losses: int, alternative: str = "two-sided") -> float:
    """Exact sign test p value on wins vs losses (ties dropped)."""
    from scipy.stats import binomtest

    if wins + losses == 0:
        return 1.0
    return float(binomtest(wins, wins + losses, 0.5, alternative=alternative).pvalue)


def win_rate(wins: int, losses: int, ties: int, confidence: float = 0.95,
             n_resamples: int = DEFAULT_RESAMPLES, seed: int | None = None) -> Estimate:
    """Win rate ``(W + T/2) / n`` with a bootstrap interval over cases."""
    values = [1.0] * wins + [0.0] * losses + [0.5] * ties
    est = bootstrap_mean(values, confidence, n_resamples, seed)
    return Estimate(est.value, est.low, est.high, est.n, confidence, "bootstrap")


def mcnemar(old_pass: Sequence[bool], new_pass: Sequence[bool]) -> tuple[int, int, float]:
    """Exact McNemar test on paired pass/fail outcomes.

    Returns ``(got_worse, got_better, p_value)`` where ``got_worse`` counts cases
    that passed before and fail now.
    """
    worse = sum(1 for o, n in zip(old_pass, new_pass, strict=True) if o and not n)
    better = sum(1 for o, n in zip(old_pass, new_pass, strict=True) if n and not o)
    return worse, better, sign_test(worse, better)


def paired_bootstrap(n: int, statistic_old: Callable[[np.ndarray], float],
                     statistic_new: Callable[[np.ndarray], float], confidence: float = 0.95,
                     n_resamples: int = 1000, seed: int | None = None,
                     progress: Callable[[int], None] | None = None) -> Estimate:
    """``new - old`` on the same resampled cases, with its percentile interval.

    Pairing keeps the case-to-case variation that both share out of the interval,
    so a difference between two models on one set of cases is judged on its own.
    Statistics with a ``batch`` method are evaluated a block of resamples at a time.
    """
    idx_all = np.arange(n)
    delta = float(statistic_new(idx_all) - statistic_old(idx_all))
    if n < 2:
        return Estimate(delta, delta, delta, n, confidence, "paired bootstrap")
    old, new = _resample_values(n, n_resamples, _rng(seed), [statistic_old, statistic_new], progress)
    deltas = new - old
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(deltas, [alpha, 1 - alpha])
    return Estimate(delta, float(lo), float(hi), n, confidence, "paired bootstrap")


def paired_mean_test(old: np.ndarray, new: np.ndarray, rng: np.random.Generator, n_resamples: int, *,
                     confidence: float = 0.95) -> tuple[float, float, tuple[float, float]]:
    """One-sided p values of "new is worse" and "new is better" on paired scores, and the delta's interval.

    The mean difference of paired scores is the mean of the per-case
    differences, so one vectorised bootstrap of those differences is the paired
    bootstrap. Larger is better here (the caller flips the sign otherwise).
    """
    diff = new - old
    n = len(diff)
    if n < 2 or np.all(np.abs(diff) <= 1e-12):
        mean = float(diff.mean()) if n else 0.0
        return 1.0, 1.0, (mean, mean)
    chunk = max(1, min(n_resamples, 5_000_000 // n))
    means = np.empty(n_resamples)
    done = 0
    while done < n_resamples:
        k = min(chunk, n_resamples - done)
        means[done:done + k] = diff[rng.integers(0, n, size=(k, n))].mean(axis=1)
        done += k
    # Share of resampled deltas on the "not worse" side, with the +1 correction
    # so a p value is never exactly zero.
    p_worse = (np.sum(means >= 0) + 1) / (n_resamples + 1)
    p_better = (np.sum(means <= 0) + 1) / (n_resamples + 1)
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return float(p_worse), float(p_better), (float(lo), float(hi))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p values (same order as given)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def clears(estimate: Estimate, threshold: float, op: str, confidence: float | None) -> bool:
    """Does the estimate clear a ``min``/``max`` threshold?

    Without a gate confidence the point value decides; with one, the interval's
    lower bound (for ``min``) or upper bound (for ``max``) must clear it.
    """
    if math.isnan(estimate.value):
        return False
    if op == "min":
        v = estimate.low if confidence is not None else estimate.value
        return v >= threshold
    v = estimate.high if confidence is not None else estimate.value
    return v <= threshold
