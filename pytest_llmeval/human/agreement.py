"""Inter-rater agreement: Cohen's kappa, Fleiss' kappa, Krippendorff's alpha.

Human ratings are only evidence when the raters agree with one another more than
chance would make them: a win rate computed from raters who disagree on most items
says more about the rubric than about the model. These coefficients measure that.

- Cohen's kappa (two raters; quadratic weights for ordinal scores), the definition
  of ``sklearn.metrics.cohen_kappa_score`` (tested against it).
- Fleiss' kappa (any number of raters per item, nominal) follows Fleiss (1971), with
  the usual generalisation to items rated by different numbers of raters.
- Krippendorff's alpha (nominal or ordinal, missing ratings allowed) is the
  ``krippendorff`` package (the ``human`` extra).

Every function returns ``nan`` where the coefficient is undefined (one category
used by everyone: expected disagreement is zero), never a made-up value.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np

from pytest_llmeval.errors import MissingDependency

Level = Literal["nominal", "ordinal"]


def cohen_kappa(r1: Sequence[Hashable], r2: Sequence[Hashable], *,
                weights: Literal["linear", "quadratic"] | None = None,
                labels: Sequence[Hashable] | None = None) -> float:
    """Cohen's kappa of two raters over the same items (``nan`` when undefined).

    ``1 - sum(w * observed) / sum(w * expected)`` over the confusion matrix, with
    disagreement weights ``w`` (0/1, ``|i - j|`` or ``(i - j)^2``): the definition
    ``sklearn.metrics.cohen_kappa_score`` implements, and is tested against. It is
    written out here because it is a few lines of numpy, while importing scikit-learn
    costs seconds in every process that reports on ratings.

    Args:
        r1, r2: the two raters' labels, item by item.
        weights: ``"quadratic"`` for ordinal scales (disagreeing by 2 costs 4x disagreeing
            by 1), ``"linear"``, or ``None`` for nominal labels.
        labels: the full scale in order, so that weighted kappa knows the distances between
            points nobody used; default the labels seen, sorted.
    """
    if len(r1) != len(r2):
        raise ValueError(f"the two raters rated different numbers of items ({len(r1)} and {len(r2)})")
    if len(r1) == 0:
        return math.nan
    scale = list(labels) if labels is not None else sorted(set(r1) | set(r2))  # type: ignore[type-var]
    index = {label: i for i, label in enumerate(scale)}
    stray = [x for x in (*r1, *r2) if x not in index]
    if stray:
        raise ValueError(f"label {stray[0]!r} is not one of the labels {scale}")
    k = len(scale)
    observed = np.zeros((k, k))
    np.add.at(observed, ([index[x] for x in r1], [index[x] for x in r2]), 1.0)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    grid = np.subtract.outer(np.arange(k), np.arange(k))
    if weights is None:
        w = (grid != 0).astype(float)
    elif weights == "linear":
        w = np.abs(grid).astype(float)
    elif weights == "quadratic":
        w = (grid * grid).astype(float)
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    chance = float((w * expected).sum())
    if chance == 0.0:
        return math.nan
    return 1.0 - float((w * observed).sum()) / chance


def fleiss_kappa(counts: np.ndarray | Sequence[Sequence[float]]) -> float:
    """Fleiss' kappa from an items x categories table of rating counts.

    Row ``i`` holds how many raters put item ``i`` in each category. Items rated by
    fewer than two raters carry no information about agreement and are dropped; items
    may have different numbers of raters (each item's agreement is computed over its
    own pairs of raters, the category shares over all ratings).
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2:
        raise ValueError("Fleiss' kappa needs an items x categories table of counts")
    n_i = table.sum(axis=1)
    table, n_i = table[n_i >= 2], n_i[n_i >= 2]
    if len(table) == 0:
        return math.nan
    p_j = table.sum(axis=0) / n_i.sum()
    p_i = ((table * table).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    p_e = float((p_j * p_j).sum())
    if p_e >= 1.0:
        return math.nan
    return (p_bar - p_e) / (1.0 - p_e)


def count_table(ratings: Mapping[str, Sequence[Hashable]],
                categories: Sequence[Hashable]) -> np.ndarray:
    """Items x categories counts from ``{item: [label, label, ...]}`` (for :func:`fleiss_kappa`)."""
    index = {c: j for j, c in enumerate(categories)}
    table = np.zeros((len(ratings), len(categories)))
    for i, labels in enumerate(ratings.values()):
        for label in labels:
            if label not in index:
                raise ValueError(f"label {label!r} is not one of the categories {list(categories)}")
            table[i, index[label]] += 1
    return table


def krippendorff_alpha(data: np.ndarray | Sequence[Sequence[float]], *, level: Level,
                       value_domain: Sequence[float] | None = None) -> float:
    """Krippendorff's alpha of a raters x items matrix (``nan`` marks a missing rating).

    Args:
        data: numeric codes, one row per rater; missing ratings are ``nan``.
        level: ``"nominal"`` (categories) or ``"ordinal"`` (ranked scale points).
        value_domain: every point of the scale, in order; required for ``ordinal`` so that
            unused points still count in the ordinal distances.
    """
    try:
        import krippendorff
    except ImportError:
        raise MissingDependency("krippendorff", "human", "Krippendorff's alpha") from None
    matrix = np.asarray(data, dtype=float)
    # Only items with two or more ratings are pairable; with none the coefficient is undefined.
    pairable = (~np.isnan(matrix)).sum(axis=0) >= 2 if matrix.size else np.array([], dtype=bool)
    if not pairable.any():
        return math.nan
    matrix = matrix[:, pairable]
    values = np.unique(matrix[~np.isnan(matrix)])
    if value_domain is None:
        domain = values
    else:
        domain = np.asarray(value_domain, dtype=float)
        stray = sorted(set(values.tolist()) - set(domain.tolist()))
        if stray:
            raise ValueError(f"ratings {stray} are outside the scale {domain.tolist()}")
    if len(values) < 2:
        return math.nan  # a single value used throughout: no disagreement is expected either
    return float(krippendorff.alpha(reliability_data=matrix, value_domain=domain,
                                    level_of_measurement=level))


# --------------------------------------------------------------------------- over a ratings table


@dataclass(frozen=True)
class AgreementResult:
    """Agreement on one criterion (or the preference) over every rater and item.

    Attributes:
        criterion: the rubric criterion, or ``"preference"``.
        level: ``ordinal`` (scores) or ``nominal`` (preference).
        alpha: Krippendorff's alpha (all raters, missing ratings allowed).
        fleiss_kappa: Fleiss' kappa (nominal), over items with two or more ratings.
        cohen: Cohen's kappa per pair of raters on the items both rated (quadratic-weighted
            for ordinal criteria), with the number of shared items.
        n_items: items with two or more ratings.
        n_ratings: ratings counted.
        observed_agreement: share of agreeing pairs of ratings within items.
        disagreement: per item, the share of its pairs of ratings that disagree
            (ordinal: that differ by more than one point).
    """

    criterion: str
    level: Level
    alpha: float
    fleiss_kappa: float
    cohen: dict[tuple[str, str], tuple[float, int]]
    n_items: int
    n_ratings: int
    observed_agreement: float
    disagreement: dict[str, float]

    @property
    def mean_cohen(self) -> float:
        """Mean of the pairwise Cohen's kappas, weighted by shared items (``nan`` when none)."""
        pairs = [(k, n) for k, n in self.cohen.values() if not math.isnan(k) and n > 0]
        if not pairs:
            return math.nan
        return sum(k * n for k, n in pairs) / sum(n for _, n in pairs)

    def to_dict(self) -> dict[str, object]:
        return {"criterion": self.criterion, "level": self.level, "alpha": _num(self.alpha),
                "fleiss_kappa": _num(self.fleiss_kappa), "mean_cohen_kappa": _num(self.mean_cohen),
                "cohen": {f"{a}|{b}": {"kappa": _num(k), "n": n} for (a, b), (k, n) in self.cohen.items()},
                "n_items": self.n_items, "n_ratings": self.n_ratings,
                "observed_agreement": _num(self.observed_agreement)}


def _num(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def agreement(table: Mapping[str, Mapping[str, Hashable]], *, criterion: str, level: Level,
              scale: Sequence[Hashable]) -> AgreementResult:
    """Every agreement coefficient for one criterion.

    Args:
        table: ``{item_id: {rater: label}}`` (raters who did not rate an item are absent).
        criterion: its name, for the report.
        level: ``ordinal`` for 1-5 scores (alpha ordinal, Cohen quadratic), ``nominal``
            for the preference.
        scale: every label in order (scores low to high; the preference's A, B, tie).
    """
    raters = sorted({r for by_rater in table.values() for r in by_rater})
    items = list(table)
    code = {label: float(i) for i, label in enumerate(scale)}
    matrix = np.full((len(raters), len(items)), np.nan)
    for j, item in enumerate(items):
        for i, rater in enumerate(raters):
            if rater in table[item]:
                label = table[item][rater]
                if label not in code:
                    raise ValueError(f"item {item}: rater {rater}'s {criterion} {label!r} is not on the "
                                     f"scale {list(scale)}")
                matrix[i, j] = code[label]
    alpha = krippendorff_alpha(matrix, level=level, value_domain=list(code.values())) if items else math.nan
    multi = {item: list(table[item].values()) for item in items if len(table[item]) >= 2}
    kappa = fleiss_kappa(count_table(multi, scale)) if multi else math.nan
    cohen: dict[tuple[str, str], tuple[float, int]] = {}
    for a, b in combinations(raters, 2):
        shared = [item for item in items if a in table[item] and b in table[item]]
        if not shared:
            continue
        cohen[(a, b)] = (cohen_kappa([table[i][a] for i in shared], [table[i][b] for i in shared],
                                     weights="quadratic" if level == "ordinal" else None,
                                     labels=list(scale)), len(shared))
    agree_pairs = total_pairs = 0
    disagreement: dict[str, float] = {}
    for item, labels in multi.items():
        pairs = list(combinations(labels, 2))
        same = sum(x == y for x, y in pairs)
        agree_pairs += same
        total_pairs += len(pairs)
        if level == "ordinal":
            far = sum(abs(code[x] - code[y]) > 1 for x, y in pairs)
        else:
            far = len(pairs) - same
        disagreement[item] = far / len(pairs)
    return AgreementResult(criterion, level, alpha, kappa, cohen, len(multi),
                           sum(len(v) for v in table.values()),
                           agree_pairs / total_pairs if total_pairs else math.nan, disagreement)
