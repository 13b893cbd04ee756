"""Intervals and tests in pytest_llmeval.stats against reference values and libraries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

from pytest_llmeval import stats


def test_wilson_matches_the_textbook_formula_and_statsmodels_values() -> None:
    # 8/10 at 95%: the Wilson interval is [0.4902, 0.9433] (Newcombe 1998, method 3)
    est = stats.wilson(8, 10, 0.95)
    assert est.value == 0.8
    assert (round(est.low, 4), round(est.high, 4)) == (0.4902, 0.9433)
    # at the edges the interval stays inside [0, 1] and is not degenerate
    zero = stats.wilson(0, 20)
    assert zero.low == 0.0 and 0.1 < zero.high < 0.2
    assert stats.wilson(20, 20).high == 1.0


def test_bootstrap_mean_is_seeded_and_covers_the_mean() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0.5, 0.1, size=400)
    a = stats.bootstrap_mean(values, 0.95, seed=3)
    b = stats.bootstrap_mean(values, 0.95, seed=3)
    c = stats.bootstrap_mean(values, 0.95, seed=4)
    assert a == b and a != c
    half = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    assert a.low == pytest.approx(values.mean() - half, abs=0.004)
    assert a.high == pytest.approx(values.mean() + half, abs=0.004)


def test_bootstrap_statistic_recomputes_on_resampled_indices() -> None:
    values = np.arange(100, dtype=float)
    est = stats.bootstrap_statistic(100, lambda idx: float(np.median(values[idx])), seed=1)
    assert est.value == 49.5 and est.low < 49.5 < est.high


def test_interval_level_changes_width() -> None:
    narrow = stats.wilson(30, 50, 0.8)
    wide = stats.wilson(30, 50, 0.99)
    assert wide.low < narrow.low and wide.high > narrow.high


def test_sign_test_is_scipys_binomial_test() -> None:
    assert stats.sign_test(30, 10) == pytest.approx(binomtest(30, 40, 0.5).pvalue)
    assert stats.sign_test(0, 0) == 1.0


def test_win_rate_counts_ties_as_half() -> None:
    est = stats.win_rate(6, 2, 2)
    assert est.value == pytest.approx((6 + 1) / 10)
    assert est.low <= est.value <= est.high


def test_mcnemar_counts_discordant_pairs() -> None:
    old = [True] * 10 + [False] * 5
    new = [True] * 4 + [False] * 6 + [True] * 2 + [False] * 3
    worse, better, p = stats.mcnemar(old, new)
    assert (worse, better) == (6, 2)
    assert p == pytest.approx(binomtest(6, 8, 0.5).pvalue)


def test_holm_adjustment() -> None:
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


@pytest.mark.parametrize(("op", "confidence", "expected"), [
    ("min", None, True),    # point value 0.8 >= 0.7
    ("min", 0.95, False),   # lower bound 0.49 < 0.7
    ("max", None, False),   # point value 0.8 > 0.7
    ("max", 0.95, False),   # upper bound 0.94 > 0.7
])
def test_clears_uses_the_point_or_the_bound(op: str, confidence: float | None, expected: bool) -> None:
    assert stats.clears(stats.wilson(8, 10), 0.7, op, confidence) is expected


def test_nan_never_clears() -> None:
    assert stats.clears(stats.wilson(0, 0), 0.0, "min", None) is False


def test_paired_bootstrap_interval_of_a_difference() -> None:
    rng = np.random.default_rng(0)
    old = rng.normal(0.5, 0.2, size=200)
    new = old + 0.05 + rng.normal(0, 0.01, size=200)  # the same cases, each a little better
    est = stats.paired_bootstrap(200, lambda idx: float(old[idx].mean()),
                                 lambda idx: float(new[idx].mean()), 0.95, seed=1)
    assert est.value == pytest.approx(float((new - old).mean()))
    assert 0.04 < est.low < est.value < est.high < 0.06  # pairing removes the shared case variation
