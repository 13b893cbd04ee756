"""chrF's per-case statistics for a whole set of cases at once, equal to sacrebleu's.

sacrebleu extracts each text's character n-grams (and chrF++'s word n-grams) into
Python ``Counter`` objects, one text at a time: about 0.65 ms per text on a 2-core
machine, which was three quarters of a 2,000-case gate's statistics. The counts
are integers, so any method that finds the same counts gives sacrebleu's scores
bit for bit. Here every text of the set is one array of code points; the n-grams
of one order are numbered by sorting (numpy), counted per text, and a case's
matches with each reference are ``min(hypothesis count, reference count)``
summed over the n-grams both hold, found by a binary search over sorted keys.

What is reproduced, from ``CHRF._extract_corpus_statistics`` (sacrebleu 2.x):

- lower-casing of the hypothesis and references when ``lowercase`` is set;
- character n-grams of the text with all whitespace removed (``whitespace=False``)
  or kept;
- chrF++'s word n-grams over ``CHRF._remove_punctuation``'s tokens;
- per order ``[hypothesis n-grams, reference n-grams, matches]``, the hypothesis
  count being 0 where the reference has no n-gram of that order;
- with several references, the statistics of the first reference with the
  highest sentence F-score (``chrf_from_sums`` computes sacrebleu's arithmetic).

A case without any reference has no statistics in sacrebleu either; for such a
set this returns None and the caller keeps sacrebleu's own path.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

_INT64_MAX = np.iinfo(np.int64).max


def _code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All texts' code points as one int64 array, and each text's length."""
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    joined = "".join(texts).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(joined, dtype=np.uint32).astype(np.int64), lengths


def _word_ids(token_lists: Sequence[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Each distinct word a number; all texts' words as one array, and each text's length."""
    vocab: dict[str, int] = {}
    ids = [vocab.setdefault(w, len(vocab)) for tokens in token_lists for w in tokens]
    lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
    return np.asarray(ids, dtype=np.int64), lengths


def _matches(tokens: np.ndarray, lengths: np.ndarray, case_of: np.ndarray, side_of: np.ndarray,
             n_cases: int, n_sides: int, max_order: int) -> Iterator[np.ndarray]:
    """For n = 1..max_order: each case's n-gram matches with each reference (n_cases x refs).

    ``tokens`` holds every text's tokens one text after another (``lengths``); text t
    belongs to case ``case_of[t]`` as its hypothesis (side 0) or its reference number
    ``side_of[t]`` (1, 2, ...). An n-gram's number is exact: the (n-1)-gram's number
    times the number of distinct tokens plus its last token's, renumbered densely (a
    sort) whenever a key could leave int64. One sort per order orders the keys
    (case, n-gram, side) and counts them; the hypothesis's count of an n-gram then
    starts each run of equal (case, n-gram), and a reference's match is the smaller
    of its count and that one.
    """
    n_refs = n_sides - 1
    if tokens.size == 0:
        for _ in range(max_order):
            yield np.zeros((n_cases, n_refs), dtype=np.int64)
        return
    vocab, tok = np.unique(tokens, return_inverse=True)
    width = len(vocab)
    tok = tok.astype(np.int64)
    ends = np.cumsum(lengths)
    remaining = np.repeat(ends, lengths) - np.arange(tokens.size, dtype=np.int64)
    case_pos = np.repeat(case_of, lengths)
    side_pos = np.repeat(side_of, lengths)
    limit = _INT64_MAX // (n_cases * n_sides)
    code = tok
    span = width  # every code lies in [0, span)
    for n in range(1, max_order + 1):
        if n > 1:
            if span > _INT64_MAX // width:
                uniq, code = np.unique(code, return_inverse=True)
                span = max(len(uniq), 1)
            code = code[:-1] * width + tok[n - 1:]
            span *= width
        if span > limit:
            uniq, code = np.unique(code, return_inverse=True)
            span = max(len(uniq), 1)
        valid = remaining[:code.size] >= n
        grams = code[valid]
        keys = (case_pos[:code.size][valid] * span + grams) * n_sides + side_pos[:code.size][valid]
        keys, counts = np.unique(keys, return_counts=True)
        side = keys % n_sides
        run = keys // n_sides
        starts = np.ones(run.size, dtype=bool)
        np.not_equal(run[1:], run[:-1], out=starts[1:])
        first = np.maximum.accumulate(np.where(starts, np.arange(run.size), 0))
        hit = (side > 0) & (side[first] == 0)
        both = np.minimum(counts[hit], counts[first[hit]])
        cell = (run[hit] // span) * n_refs + side[hit] - 1
        yield np.bincount(cell, weights=both, minlength=n_cases * n_refs).astype(
            np.int64).reshape(n_cases, n_refs)


CHUNK_CHARACTERS = 2_000_000
"""Characters (hypotheses and references) counted at once: memory stays near 200 MB
however many cases there are; each case's statistics depend on its own texts only."""


def chrf_statistics(metric: Any, hypotheses: Sequence[str],
                    references: Sequence[Sequence[str | None]]) -> np.ndarray | None:
    """sacrebleu's per-case chrF statistics (n x 3*(char_order+word_order), int64).

    ``metric`` is a ``sacrebleu.metrics.CHRF``; ``references[i]`` is case i's list of
    references (``None`` entries are dropped, as sacrebleu drops them). Returns None
    when a case has no reference at all. Cases are counted in chunks of about
    ``CHUNK_CHARACTERS`` characters.
    """
    order = metric.char_order + metric.word_order
    if not hypotheses:
        return np.zeros((0, 3 * order), dtype=np.int64)
    refs = [[metric._preprocess_segment(r) for r in case if r is not None] for case in references]
    if any(not case for case in refs):
        return None
    hyps = [metric._preprocess_segment(h) for h in hypotheses]
    sizes = np.cumsum([len(h) + sum(map(len, case)) for h, case in zip(hyps, refs, strict=True)])
    parts = []
    start = 0
    while start < len(hyps):
        before = int(sizes[start - 1]) if start else 0
        end = max(int(np.searchsorted(sizes, before + CHUNK_CHARACTERS, "right")), start + 1)
        parts.append(_chunk_statistics(metric, hyps[start:end], refs[start:end]))
        start = end
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _chunk_statistics(metric: Any, hyps: list[str], refs: list[list[str]]) -> np.ndarray:
    """:func:`chrf_statistics` of pre-processed cases that all have references."""
    from pytest_llmeval.metrics.bleu import chrf_from_sums

    n_cases = len(hyps)
    order = metric.char_order + metric.word_order
    width = max(len(case) for case in refs)
    slot_cases = [np.asarray([i for i, case in enumerate(refs) if len(case) > j], dtype=np.int64)
                  for j in range(width)]
    texts = list(hyps)
    for j, cases in enumerate(slot_cases):
        texts.extend(refs[i][j] for i in cases.tolist())

    case_of = np.concatenate([np.arange(n_cases, dtype=np.int64), *slot_cases])
    side_of = np.concatenate([np.zeros(n_cases, dtype=np.int64),
                              *(np.full(len(c), j + 1, dtype=np.int64) for j, c in enumerate(slot_cases))])
    n_sides = width + 1

    def per_order(tokens: np.ndarray, lengths: np.ndarray, max_order: int) -> list[list[np.ndarray]]:
        """Per order, per reference slot: ``[hyp, ref, match]`` of each case (n_cases x 3)."""
        hyp_len = lengths[:n_cases]
        ref_len = np.zeros((n_cases, width), dtype=np.int64)
        ref_len[case_of[n_cases:], side_of[n_cases:] - 1] = lengths[n_cases:]
        out = []
        for n, match in enumerate(_matches(tokens, lengths, case_of, side_of, n_cases, n_sides,
                                           max_order), start=1):
            hyp_total = np.maximum(hyp_len - n + 1, 0)
            rows = []
            for j in range(width):
                ref_total = np.maximum(ref_len[:, j] - n + 1, 0)
                hyp = np.where(ref_total > 0, hyp_total, 0)
                rows.append(np.column_stack([hyp, ref_total, match[:, j]]))
            out.append(rows)
        return out

    chars = texts if metric.whitespace else ["".join(t.split()) for t in texts]
    orders = per_order(*_code_points(chars), metric.char_order)
    if metric.word_order > 0:
        words, lengths = _word_ids([metric._remove_punctuation(t) for t in texts])
        orders += per_order(words, lengths, metric.word_order)

    best = np.zeros((n_cases, 3 * order), dtype=np.int64)
    best_f = np.full(n_cases, -1.0)
    for j, cases in enumerate(slot_cases):
        stats = np.concatenate([orders[k][j] for k in range(order)], axis=1)
        f = chrf_from_sums(stats.astype(np.float64), order, metric.beta, metric.eps_smoothing)
        has = np.zeros(n_cases, dtype=bool)
        has[cases] = True
        better = has & (f > best_f)
        best[better] = stats[better]
        best_f[better] = f[better]
    return best
