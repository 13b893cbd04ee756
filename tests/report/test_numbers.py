"""The shared number format: the rules its docstring promises."""

from __future__ import annotations

import math

import pytest

from pytest_llmeval import numbers


@pytest.mark.parametrize(("value", "text"), [
    (0.6432, "0.643"), (-0.011, "-0.011"), (7.25, "7.250"), (0, "0.000"), (123.44, "123.4"),
    (15234.2, "15234"), (0.004123, "0.00412"), (5.956e-232, "5.96e-232"), (None, "-"),
    (math.nan, "-"), (math.inf, "inf"), (True, "-"), ("0.5", "-"),
])
def test_number(value, text):
    assert numbers.number(value) == text


def test_signed_interval_estimate():
    assert numbers.signed(0.617) == "+0.617"
    assert numbers.signed(-0.011) == "-0.011"
    assert numbers.signed(None) == "-"
    assert numbers.interval(0.598, 0.638) == "[0.598, 0.638]"
    assert numbers.interval(-0.02, 0.638, sign=True) == "[-0.020, +0.638]"
    assert numbers.interval(None, 0.5) == "-"
    assert numbers.estimate(0.617, 0.598, 0.638, sign=True) == "+0.617 [+0.598, +0.638]"
    assert numbers.estimate(0.5) == "0.500"


@pytest.mark.parametrize(("p", "text"), [(0.0004998, "p<0.001"), (0.003, "p=0.003"), (0.25, "p=0.250"),
                                         (None, "-"), (math.nan, "-")])
def test_p_value(p, text):
    assert numbers.p_value(p) == text


def test_threshold_and_percent():
    assert numbers.threshold(0.5) == "0.5"
    assert numbers.threshold(0.85) == "0.85"
    assert numbers.percent(0.625) == "62%"
    assert numbers.percent(None) == "-"
