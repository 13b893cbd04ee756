"""The length-controlled win rate is the unpenalised fractional-outcome logistic fit, pinned to statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmeval.judge.pairwise import length_controlled_win_rate

sm = pytest.importorskip("statsmodels.api")


def statsmodels_lc(outcomes: list[float], diffs: list[float]) -> float:
    """The same model fitted by statsmodels: a binomial GLM (logit link) on fractional outcomes."""
    d = np.asarray(diffs, dtype=float)
    x = sm.add_constant(np.tanh(d / d.std(ddof=1)))
    fit = sm.GLM(np.asarray(outcomes, dtype=float), x, family=sm.families.Binomial()).fit(tol=1e-12)
    return float(1 / (1 + math.exp(-fit.params[0])))


def planted(n: int, seed: int, *, slope: float, share_longer: float) -> tuple[list[float], list[float]]:
    """Pairs whose judge prefers the longer output (``slope``) and nothing else (intercept 0)."""
    rng = np.random.default_rng(seed)
    longer = rng.random(n) < share_longer
    diffs = np.where(longer, rng.uniform(50, 400, n), -rng.uniform(50, 400, n))
    p = 1 / (1 + np.exp(-slope * np.tanh(diffs / diffs.std(ddof=1))))
    u = rng.random(n)
    outcomes = np.where(u < p - 0.05, 1.0, np.where(u < p + 0.05, 0.5, 0.0))  # some ties
    return outcomes.tolist(), diffs.tolist()


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(20, 300), slope=st.floats(-2.0, 2.0),
       share=st.floats(0.2, 0.8))
def test_equals_statsmodels_unpenalised_glm(seed: int, n: int, slope: float, share: float) -> None:
    outcomes, diffs = planted(n, seed, slope=slope, share_longer=share)
    if len(set(outcomes)) < 2:
        return
    try:
        expected = statsmodels_lc(outcomes, diffs)
    except Exception:  # noqa: BLE001 - a separated sample has no finite MLE; statsmodels cannot fit it
        return
    if not math.isfinite(expected) or not 1e-6 < expected < 1 - 1e-6:
        return
    assert length_controlled_win_rate(outcomes, diffs) == pytest.approx(expected, abs=1e-6)


def test_ties_count_as_half_in_the_likelihood() -> None:
    outcomes = [1.0, 0.5, 0.5, 0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 1.0]
    diffs = [30.0, -10.0, 5.0, -40.0, 12.0, 0.0, 20.0, -3.0, 8.0, 50.0]
    assert length_controlled_win_rate(outcomes, diffs) == pytest.approx(statsmodels_lc(outcomes, diffs),
                                                                          abs=1e-6)


def test_a_model_that_wins_only_by_writing_longer_answers_is_pulled_back_to_half() -> None:
    outcomes, diffs = planted(4000, 7, slope=3.0, share_longer=0.85)
    raw = float(np.mean(outcomes))
    lc = length_controlled_win_rate(outcomes, diffs)
    assert raw > 0.75
    assert abs(lc - 0.5) < 0.05
    assert lc == pytest.approx(statsmodels_lc(outcomes, diffs), abs=1e-6)


def test_a_model_better_at_equal_length_keeps_its_advantage() -> None:
    rng = np.random.default_rng(3)
    diffs = rng.normal(0, 100, 3000)
    p = 1 / (1 + np.exp(-(1.0 + 0.5 * np.tanh(diffs / diffs.std(ddof=1)))))
    outcomes = (rng.random(3000) < p).astype(float).tolist()
    assert length_controlled_win_rate(outcomes, diffs.tolist()) == pytest.approx(1 / (1 + math.exp(-1.0)),
                                                                                 abs=0.03)


def test_degenerate_inputs_have_stated_values() -> None:
    assert length_controlled_win_rate([1.0] * 5, [1.0, 2, 3, 4, 5]) == 1.0
    assert length_controlled_win_rate([0.0] * 5, [1.0, 2, 3, 4, 5]) == 0.0
    assert length_controlled_win_rate([1, 1, 1, 0, 0.5], [0.0] * 5) == pytest.approx(0.7)
    assert math.isnan(length_controlled_win_rate([], []))
    separated = length_controlled_win_rate([1.0] * 10 + [0.0] * 10, [50.0] * 10 + [-50.0] * 10)
    assert 0.0 < separated < 1.0 and math.isfinite(separated)
