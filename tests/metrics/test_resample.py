"""Corpus metrics from per-case sufficient statistics: parity with the libraries and the same intervals.

Parity: the value from summed statistics equals nltk's ``corpus_bleu``,
scikit-learn's ``precision/recall/f1_score`` and sacrebleu's corpus scores called
directly, on generated inputs. Resampling: the bootstrap over statistics sees the
very resamples that the per-resample recomputation sees, and gives the same
values, hence the same intervals, paired differences and category rows.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu
from sklearn import metrics as skm

from pytest_llmeval import stats
from pytest_llmeval.metrics import build_metric
from pytest_llmeval.metrics.base import Metric
from pytest_llmeval.metrics.bleu import SMOOTHINGS
from pytest_llmeval.metrics.classification import confusion_statistics
from pytest_llmeval.metrics.resample import (
    CaseStatistics,
    Recompute,
    case_statistics,
    category_estimates,
    corpus_estimate,
    corpus_statistic,
    paired_corpus_delta,
)

from .strategies import references, sentence

TOL = 1e-12
cases = st.lists(st.tuples(sentence(max_words=12), references), min_size=1, max_size=12)
LABELS = ["positive", "negative", "neutral", "mixed", "", "café", "x"]
label_pairs = st.lists(st.tuples(st.sampled_from(LABELS), st.sampled_from(LABELS)), min_size=1, max_size=40)
SK = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}


def same(a: float, b: float, exact: bool = True) -> bool:
    """Equal (NaN included); with ``exact=False`` within 1e-12 (sums of float scores in another order)."""
    return (math.isnan(a) and math.isnan(b)) or a == b or (not exact and abs(a - b) <= TOL)


def resamples(n: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, n, size=n) for _ in range(count)])


def assert_resamples_equal(metric: Metric, preds: list[str], refs: list[list[str]], seed: int = 0) -> None:
    """Every resample's value from statistics equals the library recomputed on those cases.

    Within 1e-12 (the issue's tolerance): the averaging of per-label scores may run in another
    order than the library's, which can move the last bit.
    """
    exact = False
    table = case_statistics(metric, preds, refs)
    assert table is not None
    slow = Recompute(metric, preds, refs)
    idx = resamples(len(preds), 20, seed)
    fast = table.batch(idx)
    for row, value in zip(idx, fast, strict=True):
        assert same(value, slow(row), exact), (row, value, slow(row))


# ---------------------------------------------------------------- nltk BLEU


@settings(max_examples=30, deadline=None)
@given(cases=cases, smoothing=st.sampled_from(SMOOTHINGS), max_n=st.integers(1, 5))
def test_nltk_bleu_from_statistics_equals_corpus_bleu(cases, smoothing: str, max_n: int) -> None:
    preds = [p for p, _ in cases]
    refs = [r for _, r in cases]
    metric = build_metric("bleu", {"smoothing": smoothing, "max_n": max_n})
    weights = (1.0 / max_n,) * max_n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = corpus_bleu([[r.split() for r in rs] for rs in refs], [p.split() for p in preds],
                               weights, getattr(SmoothingFunction(), smoothing))
    table = case_statistics(metric, preds, refs)
    assert isinstance(table, CaseStatistics)
    assert table.value() == float(expected)
    assert_resamples_equal(metric, preds, refs)


@pytest.mark.parametrize("smoothing", SMOOTHINGS)
def test_every_smoothing_function_on_short_multi_reference_outputs(smoothing: str) -> None:
    # short hypotheses leave higher orders without matches, which is where smoothing acts;
    # method5 and method7 also count the last case's 5-grams, which a resample changes
    preds = ["the cat sat", "a dog ran far away quickly on the mat", "mat", "", "the cat sat on the mat"]
    refs = [["the cat sat on a mat", "a cat sat"], ["the dog ran away"], ["the mat"], ["nothing here"],
            ["the cat sat on the mat today", "the cat sat on the mat"]]
    for options in ({"smoothing": smoothing}, {"smoothing": smoothing, "weights": [0.5, 0.3, 0.2]},
                    {"smoothing": smoothing, "tokenize": "13a", "lowercase": True}):
        metric = build_metric("bleu", options)
        table = case_statistics(metric, preds, refs)
        assert table is not None
        assert same(table.value(), metric.corpus(preds, refs))
        assert_resamples_equal(metric, preds, refs, seed=3)


def test_bleu_last_case_matters_to_method5_and_statistics_follow_it() -> None:
    # the same cases in another order give another corpus_bleu under method5
    preds = ["the cat sat on the mat now", "dog"]
    refs = [["the cat sat on the mat now"], ["a dog"]]
    metric = build_metric("bleu", {"smoothing": "method5"})
    forward = case_statistics(metric, preds, refs)
    assert forward is not None
    assert forward(np.array([0, 1])) == metric.corpus(preds, refs)
    assert forward(np.array([1, 0])) == metric.corpus(preds[::-1], refs[::-1])
    assert forward(np.array([0, 1])) != forward(np.array([1, 0]))


# ---------------------------------------------------------------- precision / recall / F1


@settings(max_examples=40, deadline=None)
@given(pairs=label_pairs, score=st.sampled_from(sorted(SK)),
       average=st.sampled_from(["micro", "macro", "weighted"]),
       labels=st.none() | st.lists(st.sampled_from(LABELS + ["absent", "never"]), min_size=1, max_size=5),
       zero_division=st.sampled_from([0.0, 1.0, np.nan]))
def test_confusion_statistics_equal_sklearn(pairs, score: str, average: str, labels, zero_division) -> None:
    y_true = [t for t, _ in pairs]
    y_pred = [p for _, p in pairs]
    table = confusion_statistics(y_true, y_pred, score, average, labels, zero_division)
    idx = np.vstack([np.arange(len(pairs)), resamples(len(pairs), 5, 0)])
    values = table.batch(idx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row, value in zip(idx, values, strict=True):
            expected = SK[score]([y_true[i] for i in row], [y_pred[i] for i in row], average=average,
                                 labels=labels, zero_division=zero_division)
            assert same(value, float(expected)), (row, value, expected)


@settings(max_examples=15, deadline=None)
@given(pairs=label_pairs, name=st.sampled_from(sorted(SK)),
       average=st.sampled_from(["micro", "macro", "weighted"]))
def test_classification_metric_resamples_equal_recomputation(pairs, name: str, average: str) -> None:
    metric = build_metric(name, {"average": average, "normalize": ["case"]})
    preds = [p.upper() for _, p in pairs]
    refs = [[t] for t, _ in pairs]
    table = case_statistics(metric, preds, refs)
    assert table is not None
    assert same(table.value(), metric.corpus(preds, refs))
    assert_resamples_equal(metric, preds, refs)


def test_labels_missing_from_predictions_and_from_a_resample() -> None:
    # "neutral" is never predicted; most resamples of 5 cases also lose the one "mixed" case
    preds = ["positive", "positive", "negative", "negative", "positive"]
    refs = [["positive"], ["neutral"], ["negative"], ["mixed"], ["positive"]]
    for options in ({}, {"average": "weighted"}, {"labels": ["positive", "neutral", "mixed"]}):
        metric = build_metric("f1", options)
        table = case_statistics(metric, preds, refs)
        assert table is not None
        assert same(table.value(), metric.corpus(preds, refs), exact=False)
        assert_resamples_equal(metric, preds, refs, seed=11)


def test_zero_division_gives_zero_as_the_metric_asks_sklearn() -> None:
    # nothing predicted as "b" (precision 0/0) and no true "c" (recall 0/0)
    preds, refs = ["a", "a", "c"], [["a"], ["b"], ["b"]]
    for name in SK:
        metric = build_metric(name, {"labels": ["a", "b", "c"]})
        table = case_statistics(metric, preds, refs)
        assert table is not None
        expected = SK[name](["a", "b", "b"], preds, labels=["a", "b", "c"], average="macro", zero_division=0)
        assert table.value() == expected


def test_weighted_average_with_no_true_label_among_labels_falls_back_to_the_plain_mean() -> None:
    y_true, y_pred = ["a", "a"], ["b", "c"]
    table = confusion_statistics(y_true, y_pred, "precision", "weighted", ["b", "c"], 1.0)
    expected = skm.precision_score(y_true, y_pred, labels=["b", "c"], average="weighted", zero_division=1.0)
    assert table.value() == expected


def test_many_labels_are_averaged_in_sklearns_summation_order() -> None:
    # numpy sums 8 or more values pairwise: dropping a label from a row must not reorder the rest
    rng = np.random.default_rng(5)
    labels = [f"l{i:02d}" for i in range(23)]
    y_true = [labels[i] for i in rng.integers(0, 23, size=300)]
    y_pred = [y if rng.random() < 0.6 else labels[rng.integers(0, 23)] for y in y_true]
    table = confusion_statistics(y_true, y_pred, "f1", "macro")
    idx = resamples(300, 50, 9)[:, :40]  # short resamples, so labels drop out
    values = table.batch(idx)
    for row, value in zip(idx, values, strict=True):
        expected = skm.f1_score([y_true[i] for i in row], [y_pred[i] for i in row], average="macro",
                                zero_division=0)
        assert value == expected


# ---------------------------------------------------------------- sacrebleu, accuracy, means


@settings(max_examples=15, deadline=None)
@given(cases=cases)
def test_sacrebleu_chrf_and_mean_metrics_resample_equal_recomputation(cases) -> None:
    preds = [p for p, _ in cases]
    refs = [r for _, r in cases]
    for name in ("sacrebleu", "chrf", "exact_match", "accuracy", "contains", "rougeL", "sentence_bleu"):
        metric = build_metric(name, {})
        assert_resamples_equal(metric, preds, refs)


def test_accuracy_statistics_count_hits() -> None:
    metric = build_metric("accuracy", {"normalize": ["case"]})
    table = case_statistics(metric, ["Yes", "no", "maybe"], [["yes"], ["no"], ["no"]])
    assert table is not None
    assert table.value() == pytest.approx(2 / 3, abs=TOL)
    assert table(np.array([2, 2])) == 0.0


def test_a_python_corpus_metric_has_no_statistics_and_is_recomputed() -> None:
    metric = Metric(name="python:x", kind="corpus", score_case=None,
                    score_corpus=lambda p, r: sum(len(x) for x in p) / len(p))
    assert case_statistics(metric, ["ab", "c"], [[""], [""]]) is None
    assert isinstance(corpus_statistic(metric, ["ab", "c"], [[""], [""]]), Recompute)


# ---------------------------------------------------------------- the bootstrap sees the same resamples


class _Spy:
    """Records the resamples a statistic is given, one at a time or in blocks."""

    def __init__(self, inner: Callable, batched: bool) -> None:
        self.inner = inner
        self.seen: list[np.ndarray] = []
        if batched:
            self.batch = self._batch

    def __call__(self, idx):
        self.seen.append(np.array(idx))
        return self.inner(idx)

    def _batch(self, idx):
        self.seen.extend(np.array(row) for row in idx)
        return self.inner.batch(idx)


@pytest.mark.parametrize("block", [4_000_000, 50, 7])
def test_blocks_of_resamples_are_the_resamples_drawn_one_at_a_time(monkeypatch, block: int) -> None:
    monkeypatch.setattr(stats, "_INDEX_BLOCK", block)  # several blocks, ragged last block
    preds = ["a", "b", "a", "c", "b", "a", "c"]
    refs = [["a"], ["b"], ["b"], ["c"], ["a"], ["a"], ["c"]]
    metric = build_metric("f1", {})
    one = _Spy(Recompute(metric, preds, refs), batched=False)
    many = _Spy(case_statistics(metric, preds, refs), batched=True)
    slow = stats.bootstrap_statistic(len(preds), one, 0.9, n_resamples=123, seed=4)
    fast = stats.bootstrap_statistic(len(preds), many, 0.9, n_resamples=123, seed=4)
    assert len(one.seen) == len(many.seen) == 124  # the point value, then 123 resamples
    assert all(np.array_equal(a, b) for a, b in zip(one.seen[1:], many.seen[1:], strict=True))
    assert fast == slow


@settings(max_examples=6, deadline=None)
@given(cases=st.lists(st.tuples(sentence(max_words=10), references), min_size=2, max_size=10),
       seed=st.integers(0, 2**31), confidence=st.sampled_from([0.8, 0.9, 0.95]))
def test_intervals_equal_the_recomputed_ones(cases, seed: int, confidence: float) -> None:
    preds = [p for p, _ in cases]
    refs = [r for _, r in cases]
    for name, options in (("bleu", {"smoothing": "method1"}), ("chrf", {}), ("bleu", {"smoothing": "method7"})):
        metric = build_metric(name, options)
        fast = corpus_estimate(metric, preds, refs, confidence, seed, n_resamples=100)
        slow = stats.bootstrap_statistic(len(preds), Recompute(metric, preds, refs), confidence,
                                         n_resamples=100, seed=seed)
        assert fast == slow


def test_paired_delta_equals_the_recomputed_paired_bootstrap() -> None:
    rng = np.random.default_rng(2)
    labels = ["pos", "neg", "neu"]
    refs = [[labels[i]] for i in rng.integers(0, 3, size=40)]
    base = [labels[i] for i in rng.integers(0, 3, size=40)]
    new = [r[0] if rng.random() < 0.7 else "neg" for r in refs]
    for name in ("f1", "precision", "exact_match"):
        metric = build_metric(name, {})
        fast = paired_corpus_delta(metric, base, new, refs, 0.95, seed=17, n_resamples=150)
        slow = stats.paired_bootstrap(40, Recompute(metric, base, refs), Recompute(metric, new, refs), 0.95,
                                      n_resamples=150, seed=17)
        assert (fast.value, fast.low, fast.high) == pytest.approx((slow.value, slow.low, slow.high), abs=TOL)
        assert (fast.n, fast.method) == (slow.n, slow.method)
        assert fast.value == pytest.approx(metric.corpus(new, refs) - metric.corpus(base, refs), abs=TOL)


def test_paired_delta_refuses_unequal_lengths() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        paired_corpus_delta(build_metric("f1"), ["a"], ["a", "b"], [["a"], ["b"]])


def test_category_rows_equal_separate_recomputed_bootstraps() -> None:
    preds = ["the cat sat", "a dog", "the mat", "cat on a mat", "dog ran", "the cat", "far away", "a cat"]
    refs = [["the cat sat"], ["a dog ran"], ["the mat"], ["a cat on a mat"], ["the dog ran"], ["a cat"],
            ["far far away"], ["the cat"]]
    cats = ["x", "y", "x", None, "y", "x", "y", "x"]
    metric = build_metric("bleu", {"smoothing": "method5"})
    rows = category_estimates(metric, preds, refs, cats, 0.9, seed=8, n_resamples=300)
    assert sorted(rows) == ["x", "y"]
    for cat, est in rows.items():
        keep = [i for i, c in enumerate(cats) if c == cat]
        slow = stats.bootstrap_statistic(len(keep), Recompute(metric, [preds[i] for i in keep],
                                                              [refs[i] for i in keep]),
                                         0.9, n_resamples=300, seed=8)
        assert est == slow


def test_categories_of_a_metric_without_statistics_are_recomputed() -> None:
    metric = Metric(name="python:len", kind="corpus", score_case=None,
                    score_corpus=lambda p, r: float(np.mean([len(x) for x in p])))
    rows = category_estimates(metric, ["a", "bb", "ccc", "dddd"], [[""]] * 4, ["u", "v", "u", "v"],
                              seed=1, n_resamples=50)
    assert rows["u"].value == 2.0 and rows["v"].value == 3.0
    assert rows["u"].low >= 1.0 and rows["u"].high <= 3.0


# ---------------------------------------------------------------- edge cases and progress


def test_empty_set_is_nan_and_one_case_has_a_point_interval() -> None:
    metric = build_metric("bleu", {"smoothing": "method1"})
    empty = corpus_estimate(metric, [], [])
    assert empty.n == 0 and math.isnan(empty.value) and math.isnan(empty.low)
    table = case_statistics(metric, [], [])
    assert table is not None and math.isnan(table.value())
    one = corpus_estimate(metric, ["the cat sat on the mat"], [["the cat sat on a mat"]])
    assert one.n == 1 and one.low == one.value == one.high == metric.corpus(["the cat sat on the mat"],
                                                                             [["the cat sat on a mat"]])
    f1 = build_metric("f1")
    assert math.isnan(corpus_estimate(f1, [], []).value)
    assert corpus_estimate(f1, ["a"], [["a"]]).value == 1.0


def test_a_recomputation_reports_progress_and_statistics_report_blocks() -> None:
    calls: list[int] = []
    metric = Metric(name="python:len", kind="corpus", score_case=None,
                    score_corpus=lambda p, r: float(np.mean([len(x) for x in p])))
    corpus_estimate(metric, ["a", "bb", "ccc"], [[""]] * 3, n_resamples=40, progress=calls.append)
    assert calls == [1] * 40
    calls.clear()
    corpus_estimate(build_metric("chrf"), ["a b", "b c", "c"], [["a"]] * 3, n_resamples=40,
                    progress=calls.append)
    assert sum(calls) == 40
    calls.clear()
    paired_corpus_delta(metric, ["a", "b"], ["aa", "b"], [[""], [""]], n_resamples=25, progress=calls.append)
    assert sum(calls) == 25


def test_the_evaluators_corpus_statistic_uses_sufficient_statistics() -> None:
    from pytest_llmeval.gates.metric import corpus_statistic as evaluator_statistic

    for name in ("bleu", "f1", "precision", "recall", "chrf", "sacrebleu"):
        assert isinstance(evaluator_statistic(build_metric(name), ["a b"], [["a b"]]), CaseStatistics)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.lists(st.integers(0, 60), min_size=24, max_size=24), min_size=1, max_size=8),
       beta=st.sampled_from([0, 1, 2, 3]), eps_smoothing=st.booleans(), word_order=st.sampled_from([0, 2]))
def test_vectorised_chrf_equals_sacrebleu_bit_for_bit(rows, beta: int, eps_smoothing: bool,
                                                       word_order: int) -> None:
    from sacrebleu.metrics import CHRF

    from pytest_llmeval.metrics.bleu import chrf_from_sums

    metric = CHRF(char_order=6 - word_order, word_order=word_order, beta=beta, eps_smoothing=eps_smoothing)
    sums = np.array(rows, dtype=np.float64)  # zero counts included: the eps branches
    got = chrf_from_sums(sums, metric.order, beta, eps_smoothing)
    assert got.tolist() == [metric._compute_f_score(row) for row in rows]


@pytest.mark.parametrize("options", [{}, {"word_order": 2}, {"beta": 1, "lowercase": True}, {"char_order": 3}])
def test_chrf_statistics_equal_sacrebleus_corpus_score(options) -> None:
    preds = ["The cat sat.", "a dog ran far", "", "mat mat mat", "Hello (world)!"]
    refs = [["the cat sat on the mat"], ["the dog ran far away", "a dog ran"], ["empty"], ["mat"],
            ["hello world"]]
    from sacrebleu.metrics import CHRF

    from pytest_llmeval.metrics.bleu import reference_streams

    metric = build_metric("chrf", options)
    sacre = CHRF(**{"char_order": 6, "word_order": 0, "beta": 2, "lowercase": False, **options})

    def library(p: list[str], r: list[list[str]]) -> float:
        return float(sacre.corpus_score(p, reference_streams(r)).score) / 100.0

    table = case_statistics(metric, preds, refs)
    assert table is not None
    assert table.value() == metric.corpus(preds, refs) == library(preds, refs)
    idx = resamples(len(preds), 30, 1)
    assert table.batch(idx).tolist() == [library([preds[i] for i in r], [refs[i] for i in r]) for r in idx]


@pytest.mark.parametrize("n", [2, 61, 2001])
def test_block_draws_equal_one_draw_per_resample_for_any_set_size(n: int) -> None:
    # the property the vectorised bootstrap rests on, for even and odd sizes
    values = np.random.default_rng(n).random(n)
    table = CaseStatistics(np.column_stack([values, np.ones(n)]), lambda sums, last: sums[:, 0] / sums[:, 1])
    many = _Spy(table, batched=True)
    one = _Spy(lambda idx: float(values[idx].sum() / len(idx)), batched=False)
    stats.bootstrap_statistic(n, many, n_resamples=40, seed=n)
    stats.bootstrap_statistic(n, one, n_resamples=40, seed=n)
    assert all(np.array_equal(a, b) for a, b in zip(one.seen, many.seen, strict=True))
