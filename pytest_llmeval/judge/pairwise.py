"""Statistics over pairwise verdicts: W/L/T, position bias, length bias, length-controlled win rate.

The caller's ``a`` is the evaluated model and ``b`` the baseline, so a win is a
verdict ``"A"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pytest_llmeval.judge.verdicts import PairVerdict


@dataclass(frozen=True)
class PairStats:
    """Summary of a set of pairwise verdicts.

    Attributes:
        wins, losses, ties: counts for ``a`` (inconsistent pairs are ties).
        n: number of pairs.
        consistency_rate: share of pairs judged in both orders whose two verdicts
            agreed (None when no pair was swapped).
        first_position_preference: among single-order verdicts that picked a
            winner, the share that picked the response shown first (0.5 = no
            position bias; None when every order verdict was a tie).
        mean_len_winner, mean_len_loser: mean character length of the winning and
            losing outputs over decided pairs (None when there are none).
        lc_win_rate: length-controlled win rate (see ``length_controlled_win_rate``).
    """

    wins: int
    losses: int
    ties: int
    n: int
    consistency_rate: float | None
    first_position_preference: float | None
    mean_len_winner: float | None
    mean_len_loser: float | None
    lc_win_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_stats(verdicts: Sequence[PairVerdict]) -> PairStats:
    """Compute the summary for valid verdicts (failed ones are the caller's to report)."""
    wins = sum(v.winner == "A" for v in verdicts)
    losses = sum(v.winner == "B" for v in verdicts)
    ties = len(verdicts) - wins - losses
    swapped = [v for v in verdicts if v.consistent is not None]
    consistency = (sum(bool(v.consistent) for v in swapped) / len(swapped)) if swapped else None
    decided_orders = [o for v in verdicts for o in v.orders if o.shown_winner != "tie"]
    first_pref = (sum(o.shown_winner == "A" for o in decided_orders) / len(decided_orders)
                  if decided_orders else None)
    decided = [v for v in verdicts if v.winner != "tie"]
    win_lens = [v.len_a if v.winner == "A" else v.len_b for v in decided]
    lose_lens = [v.len_b if v.winner == "A" else v.len_a for v in decided]
    outcomes = [1.0 if v.winner == "A" else 0.0 if v.winner == "B" else 0.5 for v in verdicts]
    diffs = [float(v.len_a - v.len_b) for v in verdicts]
    return PairStats(
        wins, losses, ties, len(verdicts), consistency, first_pref,
        float(np.mean(win_lens)) if win_lens else None,
        float(np.mean(lose_lens)) if lose_lens else None,
        length_controlled_win_rate(outcomes, diffs) if verdicts else None,
    )


def length_controlled_win_rate(outcomes: Sequence[float], length_diffs: Sequence[float],
                               max_iter: int = 200) -> float:
    """AlpacaEval 2 style length-controlled win rate.

    Fits ``P(win) = sigmoid(b0 + b1 * tanh(d / sd(d)))`` where ``d`` is the
    length difference (``a`` minus ``b``) by maximum likelihood with soft labels
    (a tie counts as half a win), and reports the prediction at zero length
    difference, ``sigmoid(b0)``: the win rate the judge would give if both
    outputs had the same length. A small ridge penalty (1e-2 on the slope, 1e-4
    on the intercept) keeps the fit finite when every pair has the same
    outcome. With no length variation it equals the plain win rate (to 1e-4).
    """
    y = np.asarray(outcomes, dtype=float)
    d = np.asarray(length_diffs, dtype=float)
    if len(y) == 0:
        return math.nan
    sd = float(d.std())
    x = np.tanh(d / sd) if sd > 0 else np.zeros_like(d)
    design = np.column_stack([np.ones_like(x), x])
    beta = np.zeros(2)
    ridge = np.diag([1e-4, 1e-2])
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(design @ beta)))
        grad = design.T @ (p - y) + ridge @ beta
        hess = (design * (p * (1 - p))[:, None]).T @ design + ridge
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return float(1.0 / (1.0 + math.exp(-beta[0])))
