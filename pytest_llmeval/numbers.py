"""One number format for every output: terminal, HTML, Markdown, JUnit, gate messages.

The same value reads the same everywhere, so a number copied from the summary can be
found in the HTML report and in the JUnit message. Rules:

* values: three decimals below 100 (``0.643``, ``-0.011``, ``7.250``), one decimal
  below 1000 (``123.4``), none above (``15234``); non-zero values below 0.01 in
  magnitude keep three significant digits (``0.00412``, ``5.96e-232``) so a small
  cost or p-value never reads as zero;
* differences carry their sign (``+0.617``), and so do their interval ends;
* intervals are ``[low, high]`` in the value's format;
* p-values are ``p=0.003`` or ``p<0.001``;
* thresholds are shown as the user wrote them (``0.5``, ``0.85``: ``:g``);
* a missing or NaN value is ``-``.

This module is a leaf: it imports nothing from the package.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "-"


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def number(v: Any) -> str:
    """A value: ``0.643``, ``123.4``, ``15234``, ``0.00412``; ``-`` when missing or NaN."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and math.isnan(v)):
        return MISSING
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 0.01 or a == 0:
        return f"{v:.3f}"
    return f"{v:.3g}"


def signed(v: Any) -> str:
    """A difference: ``+0.617``, ``-0.011``, ``+0.000``."""
    text = number(v)
    if text == MISSING or text.startswith("-") or text == "inf":
        return "+inf" if text == "inf" else text
    return "+" + text


def interval(low: Any, high: Any, *, sign: bool = False) -> str:
    """``[0.598, 0.638]`` (``[+0.598, +0.638]`` with ``sign``); ``-`` when either end is missing."""
    f = signed if sign else number
    lo, hi = f(low), f(high)
    if MISSING in (lo, hi):
        return MISSING
    return f"[{lo}, {hi}]"


def estimate(value: Any, low: Any = None, high: Any = None, *, sign: bool = False) -> str:
    """A value with its interval: ``0.643 [0.598, 0.688]``, or the value alone without one."""
    head = signed(value) if sign else number(value)
    ci = interval(low, high, sign=sign) if low is not None and high is not None else MISSING
    return head if ci == MISSING else f"{head} {ci}"


def p_value(p: Any) -> str:
    """``p=0.003``, ``p=0.250``, ``p<0.001``; ``-`` when missing."""
    if not _finite(p):
        return MISSING
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def threshold(v: Any) -> str:
    """A threshold as the user wrote it: ``0.5``, ``0.85``, ``1e-05``."""
    return f"{v:g}" if _finite(v) else MISSING


def percent(v: Any) -> str:
    """A share: ``62%``."""
    return f"{v:.0%}" if _finite(v) else MISSING


# Words for the two things a model is compared with, so no label says "baseline" for both.
BASE_MODEL = "base model"
PREVIOUS_RUN = "previous run"
