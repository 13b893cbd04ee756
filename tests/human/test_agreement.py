"""Agreement coefficients against published worked examples, and their defining properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmeval.human.agreement import (
    agreement,
    cohen_kappa,
    count_table,
    fleiss_kappa,
    krippendorff_alpha,
)

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories; kappa 0.210.
WIKIPEDIA_TABLE = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
                   [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]

# Fleiss (1971), psychiatric diagnoses of 30 patients by 6 raters (5 categories), as R irr's
# `diagnoses` data; kappam.fleiss gives 0.4302445 (Fleiss' paper: 0.430).
DIAGNOSES = [[4, 4, 4, 4, 4, 4], [2, 2, 2, 5, 5, 5], [2, 3, 3, 3, 3, 5], [5, 5, 5, 5, 5, 5],
             [2, 2, 2, 4, 4, 4], [1, 1, 3, 3, 3, 3], [3, 3, 3, 3, 5, 5], [1, 1, 3, 3, 3, 4],
             [1, 1, 4, 4, 4, 4], [5, 5, 5, 5, 5, 5], [1, 4, 4, 4, 4, 4], [1, 2, 4, 4, 4, 4],
             [2, 2, 2, 3, 3, 3], [1, 4, 4, 4, 4, 4], [2, 2, 4, 4, 4, 5], [3, 3, 3, 3, 3, 5],
             [1, 1, 1, 4, 5, 5], [1, 1, 1, 1, 1, 2], [2, 2, 4, 4, 4, 4], [1, 3, 3, 5, 5, 5],
             [5, 5, 5, 5, 5, 5], [2, 4, 4, 4, 4, 4], [2, 2, 4, 5, 5, 5], [1, 1, 4, 4, 4, 4],
             [1, 4, 4, 4, 4, 5], [2, 2, 2, 2, 2, 4], [1, 1, 1, 1, 5, 5], [2, 2, 4, 4, 4, 4],
             [1, 3, 3, 3, 3, 3], [5, 5, 5, 5, 5, 5]]

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", example C: 4 observers, 12 units,
# missing values; alpha nominal 0.743, ordinal 0.815.
NAN = float("nan")
KRIPP_C = [[1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
           [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
           [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
           [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN]]
# Example A: two observers, binary data, ten units; alpha 0.095.
KRIPP_A = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]

# R irr's `anxiety` data (20 subjects, 3 raters); kappa2(anxiety[, 2:3], "squared") = 0.2520325,
# unweighted = -0.006289308.
ANXIETY = np.array([3, 3, 3, 4, 5, 5, 2, 3, 5, 2, 2, 6, 1, 5, 2, 2, 1, 2, 4, 3, 3, 6, 4, 6, 2, 4, 2, 4, 3, 3,
                    2, 3, 3, 3, 2, 2, 1, 3, 3, 4, 2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2,
                    2]).reshape(20, 3, order="F")


def test_fleiss_kappa_wikipedia_worked_example() -> None:
    assert fleiss_kappa(WIKIPEDIA_TABLE) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_fleiss_1971_diagnoses() -> None:
    ratings = {str(i): row for i, row in enumerate(DIAGNOSES)}
    assert fleiss_kappa(count_table(ratings, [1, 2, 3, 4, 5])) == pytest.approx(0.4302445, abs=1e-7)


def test_fleiss_kappa_allows_different_numbers_of_raters_and_drops_single_ratings() -> None:
    full = fleiss_kappa(WIKIPEDIA_TABLE)
    # An item rated once carries no pair: adding it changes nothing.
    assert fleiss_kappa([*WIKIPEDIA_TABLE, [1, 0, 0, 0, 0]]) == pytest.approx(full)
    # Each item's agreement is over its own pairs: two raters agreeing is full agreement for that item.
    assert fleiss_kappa([[2, 0], [0, 3], [2, 0], [0, 2]]) == pytest.approx(1.0)


def test_krippendorff_worked_examples() -> None:
    assert krippendorff_alpha(KRIPP_C, level="nominal") == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(KRIPP_C, level="ordinal", value_domain=[1, 2, 3, 4, 5]) == pytest.approx(
        0.815, abs=5e-4)
    assert krippendorff_alpha(KRIPP_A, level="nominal") == pytest.approx(0.095, abs=5e-4)


def test_krippendorff_refuses_ratings_off_the_scale() -> None:
    with pytest.raises(ValueError, match="outside the scale"):
        krippendorff_alpha([[1, 2, 7], [1, 2, 3]], level="ordinal", value_domain=[1, 2, 3, 4, 5])


def test_cohen_kappa_matches_r_irr_on_anxiety() -> None:
    r2, r3 = ANXIETY[:, 1].tolist(), ANXIETY[:, 2].tolist()
    assert cohen_kappa(r2, r3, weights="quadratic") == pytest.approx(0.2520325, abs=1e-6)
    assert cohen_kappa(r2, r3) == pytest.approx(-0.006289308, abs=1e-8)


def test_undefined_coefficients_are_nan_not_a_number_made_up() -> None:
    assert math.isnan(cohen_kappa(["A"] * 5, ["A"] * 5))
    assert math.isnan(fleiss_kappa([[3, 0], [3, 0]]))
    assert math.isnan(krippendorff_alpha([[1, 1, 1], [1, 1, 1]], level="nominal"))
    assert math.isnan(krippendorff_alpha([[1, NAN], [NAN, 2]], level="nominal"))  # no unit has a pair


labels = st.sampled_from(["A", "B", "tie"])


@settings(max_examples=30, deadline=None)
@given(st.lists(labels, min_size=4, max_size=40).filter(lambda xs: len(set(xs)) > 1),
       st.integers(min_value=2, max_value=5))
def test_perfect_agreement_is_one(truth: list[str], n_raters: int) -> None:
    table = {str(i): {f"r{j}": label for j in range(n_raters)} for i, label in enumerate(truth)}
    res = agreement(table, criterion="preference", level="nominal", scale=["A", "B", "tie"])
    assert res.alpha == pytest.approx(1.0)
    assert res.fleiss_kappa == pytest.approx(1.0)
    assert res.mean_cohen == pytest.approx(1.0)
    assert res.observed_agreement == 1.0 and not any(res.disagreement.values())


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 5), min_size=4, max_size=40).filter(lambda xs: len(set(xs)) > 1))
def test_perfect_ordinal_agreement_is_one(truth: list[int]) -> None:
    table = {str(i): {"a": v, "b": v, "c": v} for i, v in enumerate(truth)}
    res = agreement(table, criterion="accuracy", level="ordinal", scale=[1, 2, 3, 4, 5])
    assert res.alpha == pytest.approx(1.0) and res.mean_cohen == pytest.approx(1.0)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_permuted_labels_agree_about_as_chance(seed: int) -> None:
    # Raters whose labels are independent permutations of the same multiset agree only by chance.
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 3, size=600)
    rows = [rng.permutation(base) for _ in range(3)]
    table = {str(i): {f"r{j}": int(rows[j][i]) for j in range(3)} for i in range(600)}
    res = agreement(table, criterion="preference", level="nominal", scale=[0, 1, 2])
    for value in (res.alpha, res.fleiss_kappa, res.mean_cohen):
        assert abs(value) < 0.12
    ordinal = agreement(table, criterion="x", level="ordinal", scale=[0, 1, 2])
    assert abs(ordinal.alpha) < 0.12 and abs(ordinal.mean_cohen) < 0.12


def test_agreement_lists_disagreeing_items_and_pairwise_cohen() -> None:
    table = {"i1": {"a": 1, "b": 1, "c": 1}, "i2": {"a": 1, "b": 5, "c": 3}, "i3": {"a": 4, "b": 4},
             "i4": {"a": 2, "c": 3}}
    res = agreement(table, criterion="accuracy", level="ordinal", scale=[1, 2, 3, 4, 5])
    assert res.disagreement["i2"] == pytest.approx(1.0)  # every pair differs by 2 or more points
    assert res.disagreement["i1"] == 0 and res.disagreement["i4"] == 0  # one point apart is not "high"
    assert res.cohen[("a", "b")][1] == 3 and res.cohen[("b", "c")][1] == 2
    assert res.n_items == 4 and res.n_ratings == 10


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=1, max_size=60),
       st.sampled_from([None, "linear", "quadratic"]))
def test_cohen_kappa_matches_scikit_learn(pairs: list[tuple[int, int]], weights: str | None) -> None:
    import warnings

    from sklearn.metrics import cohen_kappa_score

    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    ours = cohen_kappa(a, b, weights=weights, labels=[1, 2, 3, 4, 5])  # type: ignore[arg-type]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cohen_kappa_score(a, b, weights=weights, labels=[1, 2, 3, 4, 5])
    if math.isnan(ref):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(ref, abs=1e-12)
