"""precision/recall/f1 parity with scikit-learn, label normalisation and the report."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from pytest_llmeval.metrics import build_metric

LABELS = ["positive", "negative", "neutral", "mixed"]
SCORERS = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}


@settings(max_examples=50, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(LABELS), st.sampled_from(LABELS)), min_size=1, max_size=40
    ),
    name=st.sampled_from(sorted(SCORERS)),
    average=st.sampled_from(["micro", "macro", "weighted"]),
)
def test_scores_equal_sklearn(pairs: list[tuple[str, str]], name: str, average: str) -> None:
    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    metric = build_metric(name, {"average": average})
    expected = SCORERS[name](y_true, y_pred, average=average, zero_division=0)
    assert metric.kind == "corpus"
    assert metric.corpus(y_pred, [[t] for t in y_true]) == pytest.approx(expected, abs=1e-12)
    assert metric.case_scores(y_pred, [[t] for t in y_true]) == [
        1.0 if t == p else 0.0 for t, p in pairs
    ]


def test_default_average_is_macro() -> None:
    preds, refs = ["a", "a", "a", "b"], [["a"], ["a"], ["a"], ["a"]]
    macro = skm.f1_score(["a"] * 4, ["a", "a", "a", "b"], average="macro", zero_division=0)
    assert build_metric("f1").corpus(preds, refs) == pytest.approx(macro)
    assert build_metric("f1").options["average"] == "macro"


def test_predictions_are_stripped_by_default_and_normalised_on_request() -> None:
    preds = ["Positive ", " negative", "positive."]
    refs = [["positive"], ["negative"], ["positive"]]
    assert build_metric("f1", {"average": "micro"}).corpus(preds, refs) == pytest.approx(1 / 3)
    normalised = build_metric("f1", {"average": "micro", "normalize": ["case", "punctuation"]})
    assert normalised.corpus(preds, refs) == pytest.approx(1.0)


def test_only_the_first_reference_is_the_label() -> None:
    metric = build_metric("recall", {"average": "micro"})
    assert metric.corpus(["neutral"], [["positive", "neutral"]]) == 0.0


def test_labels_option_restricts_the_average() -> None:
    preds, refs = ["a", "b", "c"], [["a"], ["c"], ["c"]]
    metric = build_metric("precision", {"labels": ["a", "b"], "average": "macro"})
    expected = skm.precision_score(
        ["a", "c", "c"], preds, labels=["a", "b"], average="macro", zero_division=0
    )
    assert metric.corpus(preds, refs) == pytest.approx(expected)


def test_report_is_sklearns_classification_report() -> None:
    preds = ["positive", "negative", "neutral", "positive", "negative"]
    refs = ["positive", "positive", "neutral", "positive", "negative"]
    metric = build_metric("f1")
    assert metric.report is not None
    text = metric.report(preds, [[r] for r in refs])
    assert text == skm.classification_report(refs, preds, zero_division=0)
    assert "neutral" in text and "macro avg" in text
