"""User metrics: ``metrics: {"python:module:function": {...}}`` in an eval file.

The function's signature depends on ``kind``:

- ``mean`` (default): ``fn(prediction, references, **options) -> float``, averaged
  over cases with a bootstrap interval;
- ``proportion``: the same signature returning 0/1 (or a bool), with a Wilson interval;
- ``corpus``: ``fn(predictions, references_list, **options) -> float`` over the whole set.

``references`` is the list of the case's references (empty when it has none).
Every option other than ``kind``, ``higher_is_better`` and ``needs_reference``
is passed to the function as a keyword argument.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.importing import import_target
from pytest_llmeval.metrics._options import boolean, choice, did_you_mean
from pytest_llmeval.metrics.base import Metric, References

KINDS = ("mean", "proportion", "corpus")


def _check_signature(
    fn: Callable[..., Any], target: str, kind: str, kwargs: dict[str, Any]
) -> None:
    """Fail at build time, not mid-run, when the function cannot take the options."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    sample: tuple[Any, ...] = ([""], [[""]]) if kind == "corpus" else ("", [""])
    try:
        sig.bind(*sample, **kwargs)
    except TypeError as exc:
        params = list(sig.parameters)
        hints = "".join(did_you_mean(k, params) for k in kwargs if k not in params)
        args = "(predictions, references_list" if kind == "corpus" else "(prediction, references"
        raise ConfigError(
            f"metric 'python:{target}': {fn.__name__}{sig} cannot be called as "
            f"{fn.__name__}{args}{''.join(f', {k}=...' for k in kwargs)}) for kind '{kind}': "
            f"{exc}.{hints}"
        ) from None


def _number(value: Any, target: str, kind: str) -> float:
    """Validate what the user's function returned."""
    fn = f"python:{target}"
    if not isinstance(value, numbers.Real):
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise ConfigError(
            f"metric '{fn}' must return a number, but it returned {shown} ({type(value).__name__})."
        )
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(f"metric '{fn}' returned {number}; it must return a finite number.")
    if kind == "proportion" and number not in (0.0, 1.0):
        raise ConfigError(
            f"metric '{fn}' has kind 'proportion' and must return 0 or 1 (or a bool), but it "
            f"returned {number}. Use kind 'mean' for graded scores."
        )
    return number


def python_metric(target: str, *, base_dirs: Sequence[Path] = (), **options: Any) -> Metric:
    """Build a metric from a user function named ``module:function``.

    Args:
        target: ``module:function`` (the part after ``python:``).
        base_dirs: directories the module is looked for in before ``sys.path`` (the
            suite file's directory, then the rootdir).
        **options: ``kind`` (mean, proportion, corpus), ``higher_is_better`` (default
            true), ``needs_reference`` (default true); the rest go to the function.

    Raises:
        ConfigError: the function cannot be imported, or cannot take the options.
    """
    name = f"python:{target}"
    kind = choice(name, "kind", options.pop("kind", "mean"), KINDS)
    better = boolean(name, "higher_is_better", options.pop("higher_is_better", True))
    needs_ref = boolean(name, "needs_reference", options.pop("needs_reference", True))
    fn = import_target(target, base_dirs=base_dirs, what=f"metric '{name}'")
    _check_signature(fn, target, kind, options)
    recorded = {"kind": kind, "higher_is_better": better, "needs_reference": needs_ref, **options}

    if kind == "corpus":

        def score_corpus(predictions: Sequence[str], references: Sequence[References]) -> float:
            refs = [list(r) for r in references]
            return _number(fn(list(predictions), refs, **options), target, kind)

        return Metric(
            name=name,
            kind="corpus",
            score_case=None,
            score_corpus=score_corpus,
            needs_reference=needs_ref,
            higher_is_better=better,
            options=recorded,
        )

    def score_case(prediction: str, references: References) -> float:
        return _number(fn(prediction, list(references), **options), target, kind)

    return Metric(
        name=name,
        kind="proportion" if kind == "proportion" else "mean",
        score_case=score_case,
        needs_reference=needs_ref,
        higher_is_better=better,
        options=recorded,
    )
