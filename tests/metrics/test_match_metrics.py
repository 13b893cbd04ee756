"""exact_match / accuracy / contains / length: normalisation and multiple references."""

from __future__ import annotations

import pytest

from pytest_llmeval.metrics import build_metric
from pytest_llmeval.metrics.match import Normalizer


def score(name: str, pred: str, refs: list[str], **options: object) -> float:
    metric = build_metric(name, options)
    assert metric.score_case is not None
    return metric.score_case(pred, refs)


def test_exact_match_strips_by_default_like_the_lesson() -> None:
    assert score("exact_match", "  positive\n", ["positive "]) == 1.0
    assert score("exact_match", " positive", ["positive"], strip=False) == 0.0


@pytest.mark.parametrize(
    ("pred", "ref", "normalize", "expected"),
    [
        ("Positive", "positive", [], 0.0),
        ("Positive", "positive", ["case"], 1.0),
        ("STRASSE", "straße", "case", 1.0),  # casefold, not lower
        ("positive.", "positive", ["punctuation"], 1.0),
        ("«positive»!", "positive", ["punctuation"], 1.0),
        ("new  york\tcity", "new york city", ["whitespace"], 1.0),
        ("new  york", "new york", [], 0.0),
        ("The Eiffel Tower", "eiffel tower", ["case", "articles", "whitespace"], 1.0),
        ("Paris, France.", "paris france", ["case", "punctuation"], 1.0),
    ],
)
def test_normalize_steps(pred: str, ref: str, normalize: object, expected: float) -> None:
    assert score("exact_match", pred, [ref], normalize=normalize) == expected


def test_any_reference_may_match() -> None:
    assert score("exact_match", "NYC", ["New York", "NYC"]) == 1.0
    assert score("exact_match", "LA", ["New York", "NYC"]) == 0.0


def test_accuracy_is_exact_match_under_its_own_name() -> None:
    metric = build_metric("accuracy", {"normalize": "case"})
    assert metric.name == "accuracy" and metric.kind == "proportion"
    preds, refs = ["Yes", "no", "maybe"], [["yes"], ["no"], ["no"]]
    assert metric.corpus(preds, refs) == pytest.approx(2 / 3)


def test_contains_finds_any_reference_inside_the_output() -> None:
    assert score("contains", "The answer is Paris.", ["Paris"]) == 1.0
    assert score("contains", "The answer is paris.", ["Paris"]) == 0.0
    assert score("contains", "The answer is paris.", ["London", "Paris"], normalize="case") == 1.0


def test_length_counts_words_and_needs_no_reference() -> None:
    metric = build_metric("length")
    assert metric.needs_reference is False and metric.higher_is_better is False
    assert metric.corpus(["one two  three", "four"], [[], []]) == 2.0
    chars = build_metric("length", {"unit": "characters", "higher_is_better": True})
    assert chars.higher_is_better is True
    assert chars.corpus(["abc"], [[]]) == 3.0


def test_recorded_options_list_normalisation_in_application_order() -> None:
    norm = Normalizer("exact_match", True, ["whitespace", "case"])
    assert norm.options() == {"strip": True, "normalize": ["case", "whitespace"]}
    assert build_metric("exact_match").options == {"strip": True, "normalize": []}
