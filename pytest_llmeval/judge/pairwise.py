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


def length_controlled_win_rate(outcomes: Sequence[float], length_diffs: Sequence[float]) -> float:
    """Length-controlled win rate: the win rate a judge would give if both outputs had the same length.

    The model is ``logit P(a preferred) = b0 + b1 * tanh(d / sd(d))`` with ``d`` the
    length difference of each pair (``a`` minus ``b``, in characters) and ``sd`` its
    sample standard deviation (``n - 1``). ``outcomes`` are 1 (a wins), 0 (b wins) or
    0.5 (tie); the coefficients maximise the Bernoulli log-likelihood with those
    fractional outcomes, unpenalised (the same estimate as a binomial GLM with a logit
    link, e.g. statsmodels' ``GLM(y, X, family=Binomial())``). The result is
    ``sigmoid(b0)``, the prediction at ``d = 0``.

    Where that maximum does not exist the result is its limit or a stated fallback:
    every pair with the same outcome gives that outcome (the plain win rate, 0 or 1);
    lengths with no spread give the plain win rate (the slope has nothing to fit); and
    pairs that the length difference separates perfectly (every longer output won, say)
    send the unpenalised slope to infinity, so only then a ridge of 1e-2 on the slope
    (none on the intercept) keeps the fit finite.
    """
    y = np.asarray(outcomes, dtype=float)
    d = np.asarray(length_diffs, dtype=float)
    if len(y) == 0:
        return math.nan
    mean = float(y.mean())
    sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
    if mean in (0.0, 1.0) or sd == 0.0:
        return mean
    design = np.column_stack([np.ones_like(d), np.tanh(d / sd)])
    beta = _logistic_fit(design, y, ridge=0.0)
    if beta is None:  # separated by length: the unpenalised slope diverges
        beta = _logistic_fit(design, y, ridge=1e-2)
    if beta is None:
        return math.nan
    return float(1.0 / (1.0 + math.exp(-beta[0])))


def _logistic_fit(design: np.ndarray, y: np.ndarray, *, ridge: float) -> np.ndarray | None:
    """Maximum-likelihood logistic coefficients for fractional outcomes (``ridge`` on the slope only).

    scipy's trust-region Newton method with the exact gradient and Hessian; ``None`` when
    it does not reach finite coefficients (a likelihood whose maximum is at infinity).
    """
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    penalty = np.array([0.0, ridge])

    def loss(beta: np.ndarray) -> float:
        z = design @ beta
        return float(-(y * log_expit(z) + (1 - y) * log_expit(-z)).sum() + 0.5 * (penalty * beta ** 2).sum())

    def grad(beta: np.ndarray) -> np.ndarray:
        return np.asarray(design.T @ (expit(design @ beta) - y) + penalty * beta)

    def hess(beta: np.ndarray) -> np.ndarray:
        p = expit(design @ beta)
        return np.asarray((design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty))

    res = minimize(loss, np.zeros(design.shape[1]), jac=grad, hess=hess, method="trust-exact",
                   options={"gtol": 1e-10, "maxiter": 500})
    # Converged means a stationary point (the loss is convex): judged on the gradient itself, as
    # trust-exact may stop on a step it cannot improve at the tolerance after reaching the optimum.
    if not np.all(np.isfinite(res.x)) or float(np.abs(res.x).max()) > 30.0 \
            or float(np.abs(grad(res.x)).max()) > 1e-7 * max(1.0, len(y)):
        return None
    return np.asarray(res.x)
