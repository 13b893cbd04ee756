"""BLEU and chrF, computed by nltk and sacrebleu, all on a 0-1 scale.

- ``bleu``: nltk ``corpus_bleu`` (the corpus value; per-case display score is
  nltk ``sentence_bleu`` with the same options).
- ``sentence_bleu``: the mean of nltk ``sentence_bleu`` over cases.
- ``sacrebleu``: sacrebleu corpus BLEU (per case: sacrebleu sentence BLEU with
  effective order, as ``sacrebleu.sentence_bleu`` does).
- ``chrf``: sacrebleu corpus chrF (per case: sentence chrF).

sacrebleu reports 0-100; its scores are divided by 100 here so that every
BLEU-like threshold in an eval file is on the same 0-1 scale. Every case may
have any number of references; for sacrebleu the reference streams are padded
with ``None``, which sacrebleu documents as "no reference in this stream".
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.metrics._options import boolean, checked_options, choice, integer
from pytest_llmeval.metrics.base import Metric, References, register_metric

NLTK_TOKENIZERS = ("whitespace", "13a")
# nltk's method6 asserts on any sentence without a matching trigram, so a run
# would crash on ordinary data; it is refused with that reason.
SMOOTHINGS = ("method0", "method1", "method2", "method3", "method4", "method5", "method7")
ZERO_ONLY_SMOOTHINGS = ("method0", "method1", "method3", "method4")
"""nltk smoothings that change only the precisions of orders without a single match."""
SACREBLEU_TOKENIZERS = ("13a", "intl", "none", "zh", "char")
CASE_CACHE = 1 << 16
"""Cases whose statistics a metric remembers (then it starts over)."""


def _weights(metric: str, max_n: Any, weights: Any) -> tuple[float, ...]:
    if weights is not None:
        if max_n is not None:
            raise ConfigError(f"metric '{metric}': give 'max_n' or 'weights', not both.")
        ok = (
            isinstance(weights, (list, tuple))
            and weights
            and all(
                isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights
            )
            and sum(weights) > 0
        )
        if not ok:
            raise ConfigError(
                f"metric '{metric}': option 'weights' must be a non-empty list of non-negative "
                f"numbers, one per n-gram order (e.g. [0.5, 0.5]), got {weights!r}."
            )
        return tuple(float(w) for w in weights)
    n = integer(metric, "max_n", 4 if max_n is None else max_n, minimum=1, maximum=10)
    return (1.0 / n,) * n


class NltkBleu:
    """nltk sentence and corpus BLEU with tokenization, weights and smoothing fixed once."""

    def __init__(
        self, metric: str, tokenize: str, lowercase: Any, smoothing: str, max_n: Any, weights: Any
    ) -> None:
        from nltk.translate.bleu_score import SmoothingFunction

        self.tokenize_name = choice(metric, "tokenize", tokenize, NLTK_TOKENIZERS)
        self.lowercase = boolean(metric, "lowercase", lowercase)
        if smoothing == "method6":
            raise ConfigError(
                f"metric '{metric}': smoothing 'method6' is not supported: nltk's method6 fails "
                f"on any output without a matching trigram. Use method4 or method7 instead."
            )
        self.smoothing_name = choice(metric, "smoothing", smoothing, SMOOTHINGS)
        self.weights = _weights(metric, max_n, weights)
        self.smoothing = getattr(SmoothingFunction(), self.smoothing_name)
        # (prediction, references) -> (counts, hypothesis tokens, reference tokens), see statistics()
        self._rows: dict[tuple[str, tuple[str, ...]], tuple[list[int], list[str], list[list[str]]]] = {}
        self._split: Callable[[str], list[str]] = str.split
        if self.tokenize_name == "13a":
            from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

            tok13a = Tokenizer13a()
            self._split = lambda text: tok13a(text).split()

    def options(self) -> dict[str, Any]:
        return {
            "tokenize": self.tokenize_name,
            "lowercase": self.lowercase,
            "smoothing": self.smoothing_name,
            "weights": list(self.weights),
        }

    def tokens(self, text: str) -> list[str]:
        return self._split(text.lower() if self.lowercase else text)

    def sentence(self, prediction: str, references: References) -> float:
        from nltk.translate.bleu_score import sentence_bleu

        with warnings.catch_warnings():
            # nltk warns on every sentence with no n-gram overlap; that is a 0, not a problem.
            warnings.simplefilter("ignore", UserWarning)
            return float(
                sentence_bleu(
                    [self.tokens(r) for r in references],
                    self.tokens(prediction),
                    weights=self.weights,
                    smoothing_function=self.smoothing,
                )
            )

    def corpus(self, predictions: Sequence[str], references: Sequence[References]) -> float:
        if not predictions:
            return float("nan")
        from nltk.translate.bleu_score import corpus_bleu

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return float(
                corpus_bleu(
                    [[self.tokens(r) for r in refs] for refs in references],
                    [self.tokens(p) for p in predictions],
                    weights=self.weights,
                    smoothing_function=self.smoothing,
                )
            )


    def statistics(self, predictions: Sequence[str], references: Sequence[References]) -> Any:
        """Per-case sufficient statistics of ``corpus_bleu``, scored with nltk's own arithmetic.

        Columns: clipped n-gram matches per order, n-gram totals per order (at least
        1 per case, as nltk's ``modified_precision`` gives), hypothesis length and
        closest reference length. ``corpus_bleu`` sums exactly these over cases, then
        applies the brevity penalty and the smoothing function to the summed
        fractions; :meth:`bleu_from_counts` does the same with nltk's functions.
        Remembered per (prediction, references), like sacrebleu's statistics.
        """
        import numpy as np
        from nltk.translate.bleu_score import closest_ref_length, modified_precision

        from pytest_llmeval.metrics.resample import CaseStatistics

        order = len(self.weights)
        if len(self._rows) + len(predictions) > CASE_CACHE:
            self._rows.clear()
        cases = []
        for prediction, case_refs in zip(predictions, references, strict=True):
            key = (prediction, tuple(case_refs))
            case = self._rows.get(key)
            if case is None:
                hyp = self.tokens(prediction)
                tok_refs = [self.tokens(r) for r in case_refs]
                row: list[int] = []
                for n in range(1, order + 1):
                    p_n = modified_precision(tok_refs, hyp, n)
                    row += [p_n.numerator, p_n.denominator]
                counts = row[0::2] + row[1::2] + [len(hyp), closest_ref_length(tok_refs, len(hyp))]
                case = self._rows[key] = (counts, hyp, tok_refs)
            cases.append(case)
        table = np.array([c[0] for c in cases], dtype=np.float64).reshape(len(cases), 2 * order + 2)
        hyps = [c[1] for c in cases]
        refs = [c[2] for c in cases]

        weights = self.weights
        plain = self.smoothing_name in ZERO_ONLY_SMOOTHINGS
        unsmoothed = self.smoothing_name == "method0"
        tiny = sys.float_info.min

        def score(sums: Any, last: Any) -> Any:
            from nltk.translate.bleu_score import brevity_penalty

            out = np.empty(len(sums))
            log, exp, fsum = math.log, math.exp, math.fsum
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                counts = np.rint(sums).astype(np.int64).tolist()
                for r, (row, k) in enumerate(zip(counts, last.tolist(), strict=True)):
                    numerators = row[:order]
                    if numerators[0] and (unsmoothed or (plain and all(numerators))):
                        # With a match at every order these smoothings leave the precisions as they
                        # are; nltk's method0 replaces a zero precision by sys.float_info.min.
                        bp = brevity_penalty(row[2 * order + 1], row[2 * order])
                        out[r] = bp * exp(fsum([w * log(n / d if n else tiny) for w, n, d in
                                                zip(weights, numerators, row[order:2 * order], strict=True)]))
                    else:
                        out[r] = self.bleu_from_counts(row, refs[k], hyps[k])
            return out

        return CaseStatistics(table, score)

    def bleu_from_counts(self, counts: Sequence[int], references: Sequence[Sequence[str]],
                         hypothesis: Sequence[str]) -> float:
        """``corpus_bleu``'s value from summed counts (the tail of nltk's ``corpus_bleu``).

        ``references`` and ``hypothesis`` are the corpus's last case: nltk passes its
        loop variables to the smoothing function, and ``method5``/``method7`` count
        that sentence's 5-grams.
        """
        from nltk.translate.bleu_score import Fraction, brevity_penalty

        order = len(self.weights)
        numerators, denominators = counts[:order], counts[order:2 * order]
        hyp_lengths, ref_lengths = counts[2 * order], counts[2 * order + 1]
        bp = brevity_penalty(ref_lengths, hyp_lengths)
        if numerators[0] == 0:
            return 0.0
        fractions = [Fraction(numerators[i], denominators[i], _normalize=False) for i in range(order)]
        smoothed = self.smoothing(fractions, references=references, hypothesis=hypothesis,
                                  hyp_len=hyp_lengths)
        # math.log(p) converts p with float(p); converting once gives the same logs
        p_n = [float(p_i) for p_i in smoothed]
        s = (w_i * math.log(p_i) for w_i, p_i in zip(self.weights, p_n, strict=False) if p_i > 0)
        return float(bp * math.exp(math.fsum(s)))


def reference_streams(references: Sequence[References]) -> list[list[str | None]]:
    """Transpose per-case reference lists into sacrebleu streams, padding with ``None``."""
    width = max((len(refs) for refs in references), default=0)
    return [[refs[i] if i < len(refs) else None for refs in references] for i in range(width)]


class Sacre:
    """A sacrebleu metric pair (corpus scorer, sentence scorer) scaled to 0-1."""

    def __init__(self, corpus_metric: Any, sentence_metric: Any,
                 extract: Callable[[Any, Sequence[str], Sequence[References]], Any] | None = None) -> None:
        self._corpus = corpus_metric
        self._sentence = sentence_metric
        self._extract = extract
        self._rows: dict[tuple[str, tuple[str, ...]], tuple[Any, ...]] = {}

    def sentence(self, prediction: str, references: References) -> float:
        return float(self._sentence.sentence_score(prediction, list(references)).score) / 100.0

    def corpus(self, predictions: Sequence[str], references: Sequence[References]) -> float:
        if not predictions:
            return float("nan")
        streams = reference_streams(references)
        return float(self._corpus.corpus_score(list(predictions), streams).score) / 100.0

    def stats(self, predictions: Sequence[str], references: Sequence[References]) -> Any:
        """sacrebleu's per-segment sufficient statistics (what ``corpus_score`` sums).

        Remembered per (prediction, references), so the interval, the category rows
        and the paired difference of one gate extract each case once.
        """
        import numpy as np

        keys = [(p, tuple(r)) for p, r in zip(predictions, references, strict=True)]
        missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if missing:
            if len(self._rows) + len(missing) > CASE_CACHE:
                self._rows.clear()
            hyps = [p for p, _r in missing]
            refs = [r for _p, r in missing]
            rows = self._extract(self._corpus, hyps, refs) if self._extract is not None else None
            if rows is None:
                rows = self._corpus._extract_corpus_statistics(hyps, reference_streams(refs))
            self._rows.update(zip(missing, (tuple(row) for row in rows), strict=True))
        return np.asarray([self._rows[k] for k in keys], dtype=np.float64).reshape(len(keys), -1)

    def from_stats(self, summed: Any) -> float:
        """The corpus score from summed statistics, computed by sacrebleu itself."""
        values = [int(v) if float(v).is_integer() else float(v) for v in summed]
        return float(self._corpus._compute_score_from_stats(values).score) / 100.0


def chrf_from_sums(sums: Any, order: int, beta: int, eps_smoothing: bool = False) -> Any:
    """sacrebleu's chrF (0-100) of each row of summed segment statistics, vectorised.

    The arithmetic of ``CHRF._compute_f_score`` (sacrebleu 2.x) in the same order,
    on whole columns: per order ``[hyp, ref, match]`` counts give precision and
    recall (``1e-16`` where a count is 0), then either the mean F-beta over orders
    (``eps_smoothing``) or the F-beta of the precision and recall averaged over the
    orders present in both. It has only additions, multiplications and divisions,
    so each value is sacrebleu's bit for bit (a parity test pins it).
    """
    import numpy as np

    eps = 1e-16
    factor = beta**2
    rows = len(sums)
    score = np.zeros(rows)
    avg_prec = np.zeros(rows)
    avg_rec = np.zeros(rows)
    effective = np.zeros(rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i in range(order):
            n_hyp, n_ref, n_match = sums[:, 3 * i], sums[:, 3 * i + 1], sums[:, 3 * i + 2]
            prec = np.where(n_hyp > 0, n_match / n_hyp, eps)
            rec = np.where(n_ref > 0, n_match / n_ref, eps)
            denom = factor * prec + rec
            score += np.where(denom > 0, (1 + factor) * prec * rec / denom, eps)
            both = (n_hyp > 0) & (n_ref > 0)
            avg_prec = np.where(both, avg_prec + prec, avg_prec)
            avg_rec = np.where(both, avg_rec + rec, avg_rec)
            effective += both
        if eps_smoothing:
            return 100 * score / order
        avg_prec = np.where(effective == 0, 0.0, avg_prec / effective)
        avg_rec = np.where(effective == 0, 0.0, avg_rec / effective)
        f = (1 + factor) * avg_prec * avg_rec / ((factor * avg_prec) + avg_rec)
        return np.where(avg_prec + avg_rec != 0, 100 * f, 0.0)


@register_metric("bleu")
@checked_options("bleu")
def bleu(
    tokenize: str = "whitespace",
    lowercase: Any = False,
    smoothing: str = "method0",
    max_n: Any = None,
    weights: Any = None,
) -> Metric:
    """nltk corpus BLEU (default 4-gram, uniform weights, no smoothing, as nltk's defaults)."""
    scorer = NltkBleu("bleu", tokenize, lowercase, smoothing, max_n, weights)
    return Metric(
        name="bleu",
        kind="corpus",
        score_case=scorer.sentence,
        score_corpus=scorer.corpus,
        options=scorer.options(),
        statistics=scorer.statistics,
    )


@register_metric("sentence_bleu")
@checked_options("sentence_bleu")
def sentence_bleu(
    tokenize: str = "whitespace",
    lowercase: Any = False,
    smoothing: str = "method0",
    max_n: Any = None,
    weights: Any = None,
) -> Metric:
    """Mean of nltk sentence BLEU; short outputs usually want ``smoothing: method1``."""
    scorer = NltkBleu("sentence_bleu", tokenize, lowercase, smoothing, max_n, weights)
    return Metric(
        name="sentence_bleu", kind="mean", score_case=scorer.sentence, options=scorer.options()
    )


@register_metric("sacrebleu")
@checked_options("sacrebleu")
def sacrebleu(tokenize: str = "13a", lowercase: Any = False) -> Metric:
    """sacrebleu corpus BLEU / 100 (standard smoothing ``exp``)."""
    from sacrebleu.metrics import BLEU

    tok = choice("sacrebleu", "tokenize", tokenize, SACREBLEU_TOKENIZERS)
    lower = boolean("sacrebleu", "lowercase", lowercase)
    scorer = Sacre(
        BLEU(tokenize=tok, lowercase=lower),
        BLEU(tokenize=tok, lowercase=lower, effective_order=True),
    )
    return Metric(
        name="sacrebleu",
        kind="corpus",
        score_case=scorer.sentence,
        score_corpus=scorer.corpus,
        options={"tokenize": tok, "lowercase": lower},
        case_stats=scorer.stats,
        score_from_stats=scorer.from_stats,
    )


@register_metric("chrf")
@checked_options("chrf")
def chrf(char_order: Any = 6, word_order: Any = 0, beta: Any = 2, lowercase: Any = False) -> Metric:
    """sacrebleu corpus chrF / 100; ``word_order: 2`` gives chrF++."""
    from sacrebleu.metrics import CHRF

    options: dict[str, Any] = {
        "char_order": integer("chrf", "char_order", char_order, minimum=1),
        "word_order": integer("chrf", "word_order", word_order, minimum=0),
        "beta": integer("chrf", "beta", beta, minimum=0),
        "lowercase": boolean("chrf", "lowercase", lowercase),
    }
    from pytest_llmeval.metrics.ngrams import chrf_statistics

    metric = CHRF(**options)
    scorer = Sacre(metric, metric, chrf_statistics)

    def from_rows(rows: Any) -> Any:
        return chrf_from_sums(rows, metric.order, metric.beta, metric.eps_smoothing) / 100.0

    def score_cases(predictions: Sequence[str], references: Sequence[References]) -> list[float]:
        """Each case's sentence chrF, from the statistics the interval uses (sacrebleu's
        ``sentence_score`` is the F-score of the case's own statistics)."""
        return [float(v) for v in from_rows(scorer.stats(predictions, references))]

    def corpus(predictions: Sequence[str], references: Sequence[References]) -> float:
        if not predictions:
            return float("nan")
        return float(from_rows(scorer.stats(predictions, references).sum(axis=0, keepdims=True))[0])

    def statistics(predictions: Sequence[str], references: Sequence[References]) -> Any:
        from pytest_llmeval.metrics.resample import CaseStatistics

        def from_sums(sums: Any, last: Any) -> Any:
            return from_rows(sums)

        return CaseStatistics(scorer.stats(predictions, references), from_sums)

    return Metric(
        name="chrf",
        kind="corpus",
        score_case=scorer.sentence,
        score_cases=score_cases,
        score_corpus=corpus,
        options=options,
        case_stats=scorer.stats,
        score_from_stats=scorer.from_stats,
        statistics=statistics,
    )
