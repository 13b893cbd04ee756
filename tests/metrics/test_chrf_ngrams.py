"""The vectorised chrF statistics (metrics/ngrams.py) against sacrebleu's own extraction.

The counts are integers, so the two must be equal exactly, for every option the
``chrf`` metric accepts and for text that stresses the parts sacrebleu does in
Python: Unicode whitespace removal, lower-casing that changes length, combining
marks, astral characters, lone surrogates, chrF++'s punctuation splitting, empty
texts and several references per case with ties between them.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sacrebleu.metrics import CHRF

from pytest_llmeval.metrics import build_metric
from pytest_llmeval.metrics.bleu import reference_streams
from pytest_llmeval.metrics.ngrams import chrf_statistics

ALPHABET = list("abcab  ") + ["É", "é", "ß", "Σ", "ς", "İ", "ı", "\u00a0", "\u3000", "\u2009", "\u0085",
                              "ﬁ", "\u0301", "😀", "\ud800", ",", ".", "(", ")", "!", "?", "\t", "\n", "中"]
texts = st.lists(st.sampled_from(ALPHABET), max_size=30).map("".join)
cases = st.lists(st.tuples(texts, st.lists(texts, min_size=1, max_size=3)), min_size=1, max_size=10)
options = st.fixed_dictionaries({
    "char_order": st.integers(1, 7), "word_order": st.integers(0, 3), "beta": st.integers(0, 3),
    "lowercase": st.booleans(), "whitespace": st.booleans(), "eps_smoothing": st.booleans()})


def sacrebleu_rows(metric: CHRF, hyps: list[str], refs: list[list[str]]) -> np.ndarray:
    rows = metric._extract_corpus_statistics(hyps, reference_streams(refs))
    return np.asarray(rows, dtype=np.int64).reshape(len(hyps), 3 * metric.order)


@settings(max_examples=300, deadline=None)
@given(data=cases, opts=options, copy_first=st.booleans())
def test_statistics_equal_sacrebleus_extraction(data, opts, copy_first: bool) -> None:
    hyps = [h for h, _ in data]
    refs = [list(r) for _, r in data]
    if copy_first:  # a reference equal to the hypothesis: matches in every order, and ties
        refs[0] = [hyps[0], *refs[0]]
    metric = CHRF(**opts)
    assert np.array_equal(chrf_statistics(metric, hyps, refs), sacrebleu_rows(metric, hyps, refs))


def test_long_texts_and_a_large_alphabet_renumber_without_overflow() -> None:
    # thousands of distinct characters: codes of 7-grams cannot be packed in int64 directly
    rnd = np.random.default_rng(3)
    chars = [chr(c) for c in rnd.integers(0x4E00, 0x4E00 + 6000, size=40_000)]
    hyps = ["".join(chars[i:i + 400]) for i in range(0, 20_000, 400)]
    refs = [["".join(chars[i + 200:i + 600])] for i in range(0, 20_000, 400)]
    metric = CHRF(char_order=7)
    assert np.array_equal(chrf_statistics(metric, hyps, refs), sacrebleu_rows(metric, hyps, refs))


def test_a_case_without_references_has_no_vectorised_statistics() -> None:
    # sacrebleu gives such a case an empty row; the caller then keeps sacrebleu's own path
    assert chrf_statistics(CHRF(), ["a b", "c"], [["a b"], [None]]) is None
    assert chrf_statistics(CHRF(), ["a b", "c"], [["a b"], []]) is None


@pytest.mark.parametrize("opts", [{}, {"word_order": 2}, {"lowercase": True, "beta": 1}])
def test_case_scores_and_corpus_value_equal_sacrebleu(opts) -> None:
    preds = ["The cat sat.", "a dog ran far", "", "mat mat mat", "Hello (world)!", "Σίσυφος ΣΊΣΥΦΟΣ"]
    refs = [["the cat sat on the mat"], ["the dog ran far away", "a dog ran"], ["empty"], ["mat"],
            ["hello world"], ["σίσυφος", "ΣΙΣΥΦΟΣ"]]
    metric = build_metric("chrf", opts)
    sacre = CHRF(**opts)
    assert metric.case_scores(preds, refs) == [
        sacre.sentence_score(p, r).score / 100.0 for p, r in zip(preds, refs, strict=True)]
    assert metric.corpus(preds, refs) == sacre.corpus_score(preds, reference_streams(refs)).score / 100.0


def test_cases_counted_in_chunks_equal_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.metrics import ngrams

    rnd = np.random.default_rng(5)
    words = ["alpha", "beta", "gamma", "Straße", "中文", "δέλτα"]
    hyps = [" ".join(rnd.choice(words, size=rnd.integers(0, 12))) for _ in range(300)]
    refs = [[" ".join(rnd.choice(words, size=rnd.integers(1, 12))) for _ in range(rnd.integers(1, 3))]
            for _ in range(300)]
    metric = CHRF(word_order=2)
    whole = chrf_statistics(metric, hyps, refs)
    monkeypatch.setattr(ngrams, "CHUNK_CHARACTERS", 500)  # about 10 cases a chunk, some alone
    assert np.array_equal(chrf_statistics(metric, hyps, refs), whole)
    assert np.array_equal(whole, sacrebleu_rows(metric, hyps, refs))
