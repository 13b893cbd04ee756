"""The eval-side index: every eval n-gram, and the shorter "probe" m-grams the scan looks up.

Why probes: a training n-gram that equals an eval n-gram contains, at some position
that is a multiple of ``k = n - m + 1``, an m-gram of that eval n-gram. The scan
therefore hashes only every k-th training position (k times less work) and verifies
each probe hit against the eval tokens, so the result is exactly the n-gram overlap.

Token keys are xxh3-64 hashes of the token text (stable across processes and
machines); a probe key combines the m token keys polynomially modulo 2**64. Keys
only select candidates: every candidate is compared token by token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from pytest_llmeval.contamination.normalize import Tokenizer

SENTINEL = "\x00"
SENTINEL_KEY = 1
_P = np.uint64(0x100000001B3)
_BITMAP_MAX_BITS = 25


@dataclass(frozen=True)
class EvalCase:
    """One eval case: a stable id, the text that is checked, and where it came from."""

    id: str
    text: str
    origin: str | None = None


def probe_length(n: int) -> int:
    """The probe m-gram length for n: long enough to be selective, short enough to stride."""
    return min(n, max(6, (n + 1) // 2))


def token_key(token: str) -> int:
    """Stable 64-bit key of one token; 0 means "not in the eval vocabulary", 1 the separator."""
    import xxhash

    k = xxhash.xxh3_64_intdigest(token.encode("utf-8", "surrogatepass"))
    return k + 2 if k < 2 else k


def token_keys(tokens: Sequence[str]) -> list[int]:
    """``token_key`` of many tokens (one import and attribute look-up for all)."""
    from xxhash import xxh3_64_intdigest

    out = [xxh3_64_intdigest(t.encode("utf-8", "surrogatepass")) for t in tokens]
    return [k + 2 if k < 2 else k for k in out]


def combine(keys: np.ndarray, starts: np.ndarray, m: int) -> np.ndarray:
    """Polynomial key of the m-grams of ``keys`` starting at ``starts`` (uint64, wraps)."""
    acc = keys[starts].copy()
    for i in range(1, m):
        acc *= _P
        acc += keys[starts + i]
    return acc


def _stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")``, computed by an in-place sort of unique values.

    Each key's low bits are replaced by its position, so that equal keys sort by
    position; two different keys that agree above those bits (rare) would come out of
    order, which is checked, and then the stable sort is used.
    """
    n = len(keys)
    bits = np.uint64(max(1, n.bit_length()))
    packed = ((keys >> bits) << bits) | np.arange(n, dtype=np.uint64)
    packed.sort()
    order = (packed & np.uint64((1 << int(bits)) - 1)).astype(np.int64)
    ranked = keys[order]
    if n > 1 and bool(np.any(ranked[1:] < ranked[:-1])):
        return np.argsort(keys, kind="stable")
    return order


class EvalIndex:
    """Eval cases tokenised, their unique n-grams, and a sorted table of probe keys.

    Built once, then shared read-only by every worker (fork) or shipped once per
    Dask worker. Memory is proportional to the eval side only.
    """

    def __init__(self, cases: Sequence[EvalCase], tokenizer: Tokenizer, n: int) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        self.n = n
        self.m = probe_length(n)
        self.k = n - self.m + 1
        self.tokenizer = tokenizer
        self.cases = list(cases)
        self.vocab: dict[str, int] = {SENTINEL: SENTINEL_KEY}
        self.case_tokens = [tokenizer.tokens(case.text) for case in self.cases]
        self._bounds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        vocab = self.vocab
        new = [t for t in dict.fromkeys(chain.from_iterable(self.case_tokens)) if t not in vocab]
        vocab.update(zip(new, token_keys(new), strict=True))
        lens = [len(t) for t in self.case_tokens]
        self._offsets = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=self._offsets[1:])
        self._flat_keys = np.fromiter(map(vocab.__getitem__, chain.from_iterable(self.case_tokens)),
                                      dtype=np.uint64, count=int(self._offsets[-1]))
        self._assign_uids()
        self._build_probes()
        del self._flat_keys, self._offsets

    def _assign_uids(self) -> None:
        """Number the distinct eval n-grams (by full key, then confirmed token by token)."""
        n = self.n
        flat, offsets = self._flat_keys, self._offsets
        counts = np.maximum(0, np.diff(offsets) - n + 1)
        total = int(counts.sum())
        case_of = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        before = np.cumsum(counts) - counts  # n-grams of the cases before each case
        pos = np.arange(total, dtype=np.int64) - before[case_of]
        starts = offsets[case_of] + pos
        keys = combine(flat, starts, n)
        _, first_idx, inverse = np.unique(keys, return_index=True, return_inverse=True)
        uids = inverse.astype(np.int64).reshape(-1)
        first = np.stack([case_of[first_idx], pos[first_idx]], axis=1)
        # A 64-bit key shared by two different n-grams would merge them: split such rare
        # collisions off so that every uid names exactly one token sequence.
        reps: dict[tuple[str, ...], int] = {}
        extra: list[tuple[int, int]] = []
        toks = self.case_tokens
        for i in np.flatnonzero(first_idx[uids] != np.arange(len(uids))).tolist():
            u = int(uids[i])
            c, p = int(case_of[i]), int(pos[i])
            fc, fp = (int(x) for x in (first[u] if u < len(first) else extra[u - len(first)]))
            if toks[c][p:p + n] != toks[fc][fp:fp + n]:
                g = tuple(toks[c][p:p + n])
                if g not in reps:
                    reps[g] = len(first) + len(extra)
                    extra.append((c, p))
                uids[i] = reps[g]
        self.first = np.concatenate([first, np.array(extra, dtype=np.int64).reshape(-1, 2)])
        self.case_uids = np.split(uids, np.cumsum(counts)[:-1].tolist()) if len(counts) else []

    def _build_probes(self) -> None:
        flat, offsets = self._flat_keys, self._offsets
        starts = offsets[self.first[:, 0]] + self.first[:, 1]
        n_uid = len(starts)
        # the m-gram key at every eval position, once; a probe is one of them
        mgram = combine(flat, np.arange(max(0, len(flat) - self.m + 1), dtype=np.int64), self.m)
        allk = np.concatenate([mgram[starts + j] for j in range(self.k)])
        order = _stable_order(allk)
        self.probe_keys = allk[order]
        del allk
        self.probe_uid = np.tile(np.arange(n_uid, dtype=np.int32), self.k)[order]
        self.probe_off = np.repeat(np.arange(self.k, dtype=np.int16), n_uid)[order]
        # Up to 16 slots per probe key (false-hit rate near 6%), capped at 32 MB so that
        # the random look-ups mostly stay in cache.
        bits = min(_BITMAP_MAX_BITS, max(16, int(len(self.probe_keys) * 16).bit_length()))
        self.bitmap = np.zeros(1 << bits, dtype=bool)
        self.bitmap[(self.probe_keys & np.uint64((1 << bits) - 1)).astype(np.int64)] = True

    def token_bounds(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """``[start, end)`` of each token of case ``c`` in its text (computed when a report
        needs them: only contaminated cases are shown with their spans)."""
        bounds = self._bounds.get(c)
        if bounds is None:
            spans = self.tokenizer.spans(self.cases[c].text)
            bounds = (np.array([s for _, s, _ in spans], dtype=np.int64),
                      np.array([e for _, _, e in spans], dtype=np.int64))
            self._bounds[c] = bounds
        return bounds

    @property
    def n_ngrams(self) -> int:
        """Number of unique eval n-grams."""
        return len(self.first)

    def ngram_text(self, uid: int) -> str:
        """The normalised tokens of unique n-gram ``uid``, joined by spaces."""
        c, p = self.first[uid]
        return " ".join(self.case_tokens[c][p:p + self.n])
