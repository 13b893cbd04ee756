"""The unbiased pass@k estimator (Chen et al., 2021, "Evaluating Large Language Models Trained on Code").

With ``n`` samples of a problem of which ``c`` pass, the chance that at least one of ``k``
samples drawn without replacement passes is ``1 - C(n - c, k) / C(n, k)``. Computed as a
product, as in the paper, so that large ``n`` does not overflow.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """pass@k of one problem from ``n`` samples with ``c`` correct.

    Raises:
        ValueError: ``k`` is not in ``[1, n]`` or ``c`` not in ``[0, n]``.
    """
    if not 1 <= k <= n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n = {n}")
    if not 0 <= c <= n:
        raise ValueError(f"c = {c} correct samples is outside [0, n = {n}]")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_per_problem(ns: Sequence[int], cs: Sequence[int], k: int) -> np.ndarray:
    """pass@k of each problem (the suite's value is their mean)."""
    return np.array([pass_at_k(int(n), int(c), k) for n, c in zip(ns, cs, strict=True)], dtype=float)
