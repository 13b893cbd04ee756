"""BLEU and chrF parity with nltk and sacrebleu called directly, multi-reference included."""

from __future__ import annotations

import warnings

import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu, sentence_bleu

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.metrics import build_metric
from pytest_llmeval.metrics.bleu import reference_streams

from .strategies import references, sentence

Cases = list[tuple[str, list[str]]]
cases = st.lists(st.tuples(sentence(), references), min_size=1, max_size=6)
smoothings = st.sampled_from([f"method{i}" for i in range(8) if i != 6])


def split(cases_: Cases) -> tuple[list[str], list[list[str]]]:
    return [p for p, _ in cases_], [r for _, r in cases_]


def padded_streams(refs: list[list[str]]) -> list[list[str]]:
    """An independent oracle for ragged references: repeat each case's last reference.

    A duplicated reference changes neither BLEU's clipped counts nor its closest
    reference length, nor chrF's best-reference choice.
    """
    width = max(len(r) for r in refs)
    return [[r[min(i, len(r) - 1)] for r in refs] for i in range(width)]


@settings(max_examples=50, deadline=None)
@given(cases=cases, smoothing=smoothings, max_n=st.integers(1, 4))
def test_nltk_bleu_matches_nltk(cases: Cases, smoothing: str, max_n: int) -> None:
    preds, refs = split(cases)
    weights = (1.0 / max_n,) * max_n
    smooth = getattr(SmoothingFunction(), smoothing)
    corpus_metric = build_metric("bleu", {"smoothing": smoothing, "max_n": max_n})
    mean_metric = build_metric("sentence_bleu", {"smoothing": smoothing, "max_n": max_n})
    tok_refs = [[r.split() for r in rs] for rs in refs]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected_corpus = corpus_bleu(tok_refs, [p.split() for p in preds], weights, smooth)
        expected_sent = [
            sentence_bleu(tr, p.split(), weights, smooth)
            for tr, p in zip(tok_refs, preds, strict=True)
        ]
    assert corpus_metric.corpus(preds, refs) == expected_corpus
    assert corpus_metric.case_scores(preds, refs) == expected_sent
    assert mean_metric.corpus(preds, refs) == pytest.approx(sum(expected_sent) / len(preds))


@settings(max_examples=50, deadline=None)
@given(cases=cases, lowercase=st.booleans(), tokenize=st.sampled_from(["13a", "intl", "none"]))
def test_sacrebleu_matches_sacrebleu_on_a_0_1_scale(
    cases: Cases, lowercase: bool, tokenize: str
) -> None:
    preds, refs = split(cases)
    metric = build_metric("sacrebleu", {"tokenize": tokenize, "lowercase": lowercase})
    corpus = sacrebleu.corpus_bleu(
        preds, padded_streams(refs), tokenize=tokenize, lowercase=lowercase
    )
    assert metric.corpus(preds, refs) == pytest.approx(corpus.score / 100, abs=1e-12)
    expected = [
        sacrebleu.sentence_bleu(p, r, tokenize=tokenize, lowercase=lowercase).score / 100
        for p, r in zip(preds, refs, strict=True)
    ]
    assert metric.case_scores(preds, refs) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=50, deadline=None)
@given(cases=cases, word_order=st.sampled_from([0, 2]), beta=st.sampled_from([1, 2, 3]))
def test_chrf_matches_sacrebleu_on_a_0_1_scale(cases: Cases, word_order: int, beta: int) -> None:
    preds, refs = split(cases)
    metric = build_metric("chrf", {"word_order": word_order, "beta": beta})
    corpus = sacrebleu.corpus_chrf(preds, padded_streams(refs), word_order=word_order, beta=beta)
    assert metric.corpus(preds, refs) == pytest.approx(corpus.score / 100, abs=1e-12)
    expected = [
        sacrebleu.sentence_chrf(p, r, word_order=word_order, beta=beta).score / 100
        for p, r in zip(preds, refs, strict=True)
    ]
    assert metric.case_scores(preds, refs) == pytest.approx(expected, abs=1e-12)


def test_reference_streams_pad_ragged_cases_with_none() -> None:
    assert reference_streams([["a"], ["b", "c", "d"], ["e", "f"]]) == [
        ["a", "b", "e"],
        [None, "c", "f"],
        [None, "d", None],
    ]


def test_a_second_reference_can_only_help() -> None:
    metric = build_metric("sacrebleu")
    preds = ["the cat is on the mat today"]
    one = metric.corpus(preds, [["there is a cat on the mat"]])
    two = metric.corpus(preds, [["there is a cat on the mat", "the cat is on the mat today"]])
    assert one < two == pytest.approx(1.0)


def test_13a_tokenization_separates_punctuation_for_nltk_bleu() -> None:
    pred, refs = ["The cat sat on the mat."], [["The cat sat on the mat ."]]
    assert build_metric("bleu").corpus(pred, refs) < 1.0
    assert build_metric("bleu", {"tokenize": "13a"}).corpus(pred, refs) == pytest.approx(1.0)


def test_weights_option_is_used_as_given() -> None:
    pred, refs = ["a b c d"], [["a b x y"]]
    unigram = build_metric("bleu", {"weights": [1.0]}).corpus(pred, refs)
    assert unigram == pytest.approx(0.5)
    assert build_metric("bleu", {"max_n": 1}).corpus(pred, refs) == unigram


def test_smoothing_method6_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match="'method6' is not supported.*matching trigram"):
        build_metric("bleu", {"smoothing": "method6"})


def test_empty_corpus_is_nan_not_an_exception() -> None:
    for name in ("bleu", "sacrebleu", "chrf"):
        value = build_metric(name).corpus([], [])
        assert value != value, name
