"""ROUGE parity with an unmodified rouge_score.RougeScorer, and the cache's correctness."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer

from pytest_llmeval.metrics import build_metric
from pytest_llmeval.metrics.rouge import CachedTokenizer, lcs_length

from .strategies import references, sentence

VARIANTS = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
MEASURES = ["fmeasure", "precision", "recall"]


def reference_score(variant: str, stem: bool, measure: str, pred: str, refs: list[str]) -> float:
    scorer = rouge_scorer.RougeScorer([variant], use_stemmer=stem)
    scores = scorer.score(refs[0], pred) if len(refs) == 1 else scorer.score_multi(refs, pred)
    return float(getattr(scores[variant], measure))


@settings(max_examples=50, deadline=None)
@given(
    variant=st.sampled_from(VARIANTS),
    stem=st.booleans(),
    measure=st.sampled_from(MEASURES),
    cases=st.lists(st.tuples(sentence(), references), min_size=1, max_size=6),
)
def test_scores_are_identical_to_rouge_score(
    variant: str, stem: bool, measure: str, cases: list[tuple[str, list[str]]]
) -> None:
    metric = build_metric("rouge", {"variant": variant, "use_stemmer": stem, "measure": measure})
    for pred, refs in cases:
        # Exact equality: caching must not change a single bit.
        assert metric.score_case is not None
        assert metric.score_case(pred, refs) == reference_score(variant, stem, measure, pred, refs)


@pytest.mark.parametrize("variant", VARIANTS)
def test_shorthand_names_equal_the_variant_option(variant: str) -> None:
    pred, refs = "the cats were running\non the mats", ["a cat runs on a mat\nit sat"]
    short, long = build_metric(variant), build_metric("rouge", {"variant": variant})
    assert short.name == variant
    assert short.score_case is not None and long.score_case is not None
    assert short.score_case(pred, refs) == long.score_case(pred, refs)


def test_stemming_is_on_by_default_and_matters() -> None:
    pred, refs = "running cats", ["runs cat"]
    stemmed, plain = build_metric("rouge1"), build_metric("rouge1", {"use_stemmer": False})
    assert stemmed.score_case is not None and plain.score_case is not None
    assert stemmed.score_case(pred, refs) == 1.0
    assert plain.score_case(pred, refs) == 0.0


def test_rougelsum_splits_sentences_on_newlines() -> None:
    metric = build_metric("rougeLsum")
    assert metric.score_case is not None
    one_line = metric.score_case("b a", ["a b"])
    two_lines = metric.score_case("b\na", ["a b"])
    assert two_lines == 1.0 > one_line


def test_multiple_references_take_the_best_reference() -> None:
    metric = build_metric("rougeL")
    assert metric.score_case is not None
    assert metric.score_case("the cat sat", ["a dog barked", "the cat sat"]) == 1.0
    assert metric.kind == "mean"
    assert metric.corpus(["the cat sat", "x"], [["the cat sat"], ["y"]]) == 0.5


def test_cached_tokenizer_returns_fresh_lists() -> None:
    tok = CachedTokenizer(use_stemmer=True)
    first = tok.tokenize("Running models")
    first.append("mutated")
    assert tok.tokenize("Running models") == ["run", "model"]


@settings(max_examples=50, deadline=None)
@given(
    a=st.lists(st.sampled_from("abcdef"), max_size=70),
    b=st.lists(st.sampled_from("abcdefg"), max_size=70),
)
def test_bit_parallel_lcs_equals_rouge_scores_table(a: list[str], b: list[str]) -> None:
    expected = rouge_scorer._lcs_table(a, b)[-1][-1] if a and b else 0
    assert lcs_length(a, b) == expected
