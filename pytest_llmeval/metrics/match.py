"""String-matching metrics: ``exact_match``, ``accuracy``, ``contains`` and ``length``.

Matching is done on normalised text. ``strip`` (on by default) removes leading
and trailing whitespace, as the lesson's ``p.strip() == r.strip()`` does; the
``normalize`` option adds further steps, applied in this order:

- ``punctuation``: drop every Unicode punctuation character ("positive." -> "positive");
- ``case``: compare case-insensitively (``str.casefold``);
- ``articles``: drop the English articles a, an, the (SQuAD-style answers);
- ``whitespace``: fold each run of whitespace into one space.
"""

from __future__ import annotations

import math

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from pytest_llmeval.metrics._options import boolean, checked_options, choice, string_list
from pytest_llmeval.metrics.base import Metric, References, register_metric

NORMALIZE_STEPS = ("punctuation", "case", "articles", "whitespace")
_ARTICLES_RE = re.compile(r"\b(?:a|an|the)\b", re.IGNORECASE)
_SPACES_RE = re.compile(r"\s+")


class Normalizer:
    """Text normalisation configured once from ``strip`` and ``normalize``.

    Args:
        metric: the metric name, for error messages.
        strip: remove leading and trailing whitespace.
        normalize: a step name or a list of them (see :data:`NORMALIZE_STEPS`).
    """

    def __init__(self, metric: str, strip: Any = True, normalize: Any = ()) -> None:
        self.strip = boolean(metric, "strip", strip)
        steps = string_list(metric, "normalize", normalize) if normalize else []
        for step in steps:
            choice(metric, "normalize", step, NORMALIZE_STEPS)
        self.steps = frozenset(steps)

    def options(self) -> dict[str, Any]:
        """The options as they should be recorded in results."""
        return {"strip": self.strip, "normalize": [s for s in NORMALIZE_STEPS if s in self.steps]}

    def __call__(self, text: str) -> str:
        if "punctuation" in self.steps:
            text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
        if "case" in self.steps:
            text = text.casefold()
        if "articles" in self.steps:
            text = _ARTICLES_RE.sub(" ", text)
        if "whitespace" in self.steps:
            text = _SPACES_RE.sub(" ", text)
        if self.strip:
            text = text.strip()
        return text


def _exact(name: str, strip: Any, normalize: Any) -> Metric:
    norm = Normalizer(name, strip, normalize)

    def score_case(prediction: str, references: References) -> float:
        pred = norm(prediction)
        return 1.0 if any(pred == norm(ref) for ref in references) else 0.0

    return Metric(name=name, kind="proportion", score_case=score_case, options=norm.options())


@register_metric("exact_match")
@checked_options("exact_match")
def exact_match(strip: Any = True, normalize: Any = ()) -> Metric:
    """1 when the normalised prediction equals any normalised reference, else 0."""
    return _exact("exact_match", strip, normalize)


@register_metric("accuracy")
@checked_options("accuracy")
def accuracy(strip: Any = True, normalize: Any = ()) -> Metric:
    """``exact_match`` under the name classification users look for."""
    return _exact("accuracy", strip, normalize)


@register_metric("contains")
@checked_options("contains")
def contains(strip: Any = True, normalize: Any = ()) -> Metric:
    """1 when any normalised reference occurs inside the normalised prediction.

    ``normalize: case`` makes it case-insensitive.
    """
    norm = Normalizer("contains", strip, normalize)

    def score_case(prediction: str, references: References) -> float:
        pred = norm(prediction)
        return 1.0 if any(norm(ref) in pred for ref in references) else 0.0

    return Metric(name="contains", kind="proportion", score_case=score_case, options=norm.options())


@register_metric("length")
@checked_options("length")
def length(unit: str = "words", higher_is_better: Any = False) -> Metric:
    """Mean output length in whitespace-separated words (or characters).

    It needs no reference. ``higher_is_better`` (default false: a run whose
    outputs grew longer is flagged as the worse one) sets the direction used
    when two runs are compared.
    """
    unit = choice("length", "unit", unit, ("words", "characters"))
    better = boolean("length", "higher_is_better", higher_is_better)

    def score_case(prediction: str, references: Sequence[str]) -> float:
        return float(len(prediction.split()) if unit == "words" else len(prediction))

    return Metric(
        name="length",
        kind="mean",
        score_case=score_case,
        needs_reference=False,
        higher_is_better=better,
        options={"unit": unit, "higher_is_better": better},
        range=(0.0, math.inf),
    )
