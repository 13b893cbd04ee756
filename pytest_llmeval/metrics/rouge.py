"""ROUGE computed with Google's ``rouge-score``, made faster without changing a score.

``rouge-score`` spends most of its time in the Porter stemmer, which it calls
again for every occurrence of every word, and the rest of ROUGE-L in a
pure-Python LCS table. Here rouge-score's own ``tokenize`` function runs with a
memoised stemmer (and whole texts are memoised, which multi-reference scoring
tokenizes once per reference), and ROUGE-L's LCS length is computed
bit-parallel; precision, recall and F-measure are then formed as rouge-score
forms them. Stemming is a pure function of the word and the LCS length an
integer, so the scores are identical to an unmodified ``RougeScorer``'s; the
parity test in ``tests/metrics`` and ``tests/bench/bench_rouge.py`` pin that.

Options: ``variant`` rouge1, rouge2, rougeL (default) or rougeLsum; ``use_stemmer``
(default true); ``measure`` fmeasure (default), precision or recall. With several
references a case scores against the reference of highest F-measure, as
``RougeScorer.score_multi`` does. ``rougeLsum`` splits sentences on newlines,
as rouge-score does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from pytest_llmeval.metrics._options import boolean, checked_options, choice
from pytest_llmeval.metrics.base import Metric, References, register_metric

VARIANTS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
MEASURES = ("fmeasure", "precision", "recall")
_STEM_CACHE_SIZE = 1 << 18
_TEXT_CACHE_SIZE = 1 << 12


class CachedTokenizer:
    """rouge-score's default tokenization with the stemmer and whole texts memoised.

    Duck-types ``rouge_score.tokenizers.Tokenizer`` (only ``tokenize`` is called).
    """

    def __init__(self, use_stemmer: bool) -> None:
        from rouge_score import tokenize

        stemmer: Any = None
        if use_stemmer:
            from nltk.stem import porter

            stemmer = _MemoStemmer(porter.PorterStemmer())
        self._cached: Callable[[str], tuple[str, ...]] = functools.lru_cache(
            maxsize=_TEXT_CACHE_SIZE
        )(lambda text: tuple(tokenize.tokenize(text, stemmer)))

    def tokenize(self, text: str) -> list[str]:
        return list(self._cached(text))


class _MemoStemmer:
    """Wraps a stemmer so each distinct word is stemmed once."""

    def __init__(self, stemmer: Any) -> None:
        self.stem = functools.lru_cache(maxsize=_STEM_CACHE_SIZE)(stemmer.stem)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token sequences.

    Bit-parallel (Allison-Dix / Hyyro): one big-int update per token of ``b``
    instead of rouge-score's pure-Python ``len(a) * len(b)`` table. The length is
    an integer, so the ROUGE-L scores built from it are bit-for-bit the same.
    """
    masks: dict[str, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for tok in b:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - bin(v).count("1")


class RougeCase:
    """Per-case ROUGE: ``(prediction, references) -> float``, prepared once."""

    def __init__(self, variant: str, use_stemmer: bool, measure: str) -> None:
        from rouge_score import rouge_scorer, scoring

        self.variant = variant
        self.measure = measure
        self._tokenizer = CachedTokenizer(use_stemmer)
        self._scoring = scoring
        self.scorer = rouge_scorer.RougeScorer([variant], tokenizer=self._tokenizer)

    def score(self, target: str, prediction: str) -> Any:
        """rouge-score's ``Score`` (precision, recall, fmeasure) for one reference."""
        if self.variant != "rougeL":
            return self.scorer.score(target, prediction)[self.variant]
        # rouge-score's _score_lcs, with the LCS length computed bit-parallel.
        target_tokens = self._tokenizer.tokenize(target)
        prediction_tokens = self._tokenizer.tokenize(prediction)
        if not target_tokens or not prediction_tokens:
            return self._scoring.Score(precision=0, recall=0, fmeasure=0)
        lcs = lcs_length(target_tokens, prediction_tokens)
        precision = lcs / len(prediction_tokens)
        recall = lcs / len(target_tokens)
        return self._scoring.Score(
            precision=precision, recall=recall, fmeasure=self._scoring.fmeasure(precision, recall)
        )

    def __call__(self, prediction: str, references: References) -> float:
        scores = [self.score(ref, prediction) for ref in references]
        # The first reference of highest F-measure, as score_multi's np.argmax picks it.
        best = max(range(len(scores)), key=lambda i: scores[i].fmeasure)
        return float(getattr(scores[best], self.measure))


def _rouge(name: str, variant: str, use_stemmer: Any, measure: str) -> Metric:
    stem = boolean(name, "use_stemmer", use_stemmer)
    measure = choice(name, "measure", measure, MEASURES)
    return Metric(
        name=name,
        kind="mean",
        score_case=RougeCase(variant, stem, measure),
        options={"variant": variant, "use_stemmer": stem, "measure": measure},
    )


@register_metric("rouge")
@checked_options("rouge")
def rouge(variant: str = "rougeL", use_stemmer: Any = True, measure: str = "fmeasure") -> Metric:
    """Mean per-case ROUGE (``variant`` rouge1/rouge2/rougeL/rougeLsum)."""
    return _rouge("rouge", choice("rouge", "variant", variant, VARIANTS), use_stemmer, measure)


def _register_shorthand(variant: str) -> None:
    @register_metric(variant)
    @checked_options(variant)
    def factory(use_stemmer: Any = True, measure: str = "fmeasure") -> Metric:
        return _rouge(variant, variant, use_stemmer, measure)

    factory.__doc__ = f"``rouge`` with ``variant: {variant}``."


for _variant in VARIANTS:
    _register_shorthand(_variant)
