from __future__ import annotations

import pytest

from pytest_llmeval.judge.pairwise import length_controlled_win_rate, pair_stats
from pytest_llmeval.judge.verdicts import OrderVerdict, combine_orders


def pair(winner_a_first: str, winner_b_first: str, len_a: int = 10, len_b: int = 10):
    return combine_orders([OrderVerdict("a", winner_a_first, ""),  # type: ignore[arg-type]
                           OrderVerdict("b", winner_b_first, "")], len_a, len_b)  # type: ignore[arg-type]


def test_counts_consistency_and_first_position_preference():
    verdicts = [pair("A", "B", 30, 10),   # a wins both orders
                pair("B", "A", 10, 30),   # b wins both orders
                pair("A", "A"),           # picks the first shown twice: tie, inconsistent
                pair("tie", "tie")]
    s = pair_stats(verdicts)
    assert (s.wins, s.losses, s.ties, s.n) == (1, 1, 2, 4)
    assert s.consistency_rate == pytest.approx(3 / 4)
    # decided order verdicts: A,B,B,A,A,A -> 4 of 6 picked the first position
    assert s.first_position_preference == pytest.approx(4 / 6)
    assert s.mean_len_winner == 30 and s.mean_len_loser == 10


def test_length_controlled_win_rate_equals_win_rate_without_length_differences():
    outcomes = [1, 1, 1, 0, 0.5]
    assert length_controlled_win_rate(outcomes, [0] * 5) == pytest.approx(0.7, abs=1e-3)


def test_length_controlled_win_rate_discounts_wins_explained_by_length():
    # the model wins exactly when its output is longer, and is longer 80% of the time
    diffs = [200.0] * 40 + [-200.0] * 10 + [150.0] * 40 + [-150.0] * 10
    outcomes = [1.0 if d > 0 else 0.0 for d in diffs]
    outcomes[0] = 0.0
    outcomes[45] = 1.0
    raw = sum(outcomes) / len(outcomes)
    lc = length_controlled_win_rate(outcomes, diffs)
    assert raw == pytest.approx(0.8)
    assert abs(lc - 0.5) < abs(raw - 0.5) - 0.1


def test_length_controlled_win_rate_stays_finite_when_every_pair_is_won():
    lc = length_controlled_win_rate([1.0] * 20, [float(i) for i in range(20)])
    assert 0.99 < lc <= 1.0
