"""The eval-side index: every eval n-gram, and the shorter "probe" m-grams the scan looks up.

Why probes: a training n-gram that equals an eval n-gram contains, at some position
that is a multiple of ``k = n - m + 1``, an m-gram of that eval n-gram. The scan
therefore hashes only every k-th training position (k times less work) and verifies
each probe hit against the eval tokens, so the result is exactly the n-gram overlap.

The probe table is keyed by eval position: one entry per position whose m-gram lies
in the first occurrence of some eval n-gram (about one per eval token), rather than one
per (n-gram, offset) pair (k per n-gram). A hit at position ``f`` stands for every
n-gram whose first occurrence starts at ``f - j`` for ``0 <= j < k`` (``first_at``),
which are exactly the pairs a per-pair table would list.

Token keys are xxh3-64 hashes of the token text (stable across processes and
machines); a probe key combines the m token keys polynomially modulo 2**64. Keys
only select candidates: every candidate is compared token by token.
"""

from __future__ import annotations

from collections import defaultdict
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
        self.case_tokens = [tokenizer.tokens(case.text) for case in self.cases]
        self._bounds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Each distinct token gets the next small id on first sight, in one pass in C (the
        # defaultdict's factory runs for new tokens only); the sentinel is id 0.
        ids: defaultdict[str, int] = defaultdict()
        ids.default_factory = ids.__len__
        ids[SENTINEL] = 0
        lens = [len(t) for t in self.case_tokens]
        self._offsets = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=self._offsets[1:])
        self._flat_ids = np.fromiter(map(ids.__getitem__, chain.from_iterable(self.case_tokens)),
                                     dtype=np.int64, count=int(self._offsets[-1]))
        # the eval vocabulary in first-seen order (the sentinel apart), and its keys
        self.vocab_tokens = list(ids)[1:]
        keys = token_keys(self.vocab_tokens)
        self.vocab: dict[str, int] = {SENTINEL: SENTINEL_KEY}
        self.vocab.update(zip(self.vocab_tokens, keys, strict=True))
        self.vocab_keys = np.array(keys, dtype=np.uint64)
        self._flat_keys = np.concatenate(([np.uint64(SENTINEL_KEY)], self.vocab_keys))[self._flat_ids]
        self._assign_uids()
        self._build_probes()
        del self._flat_keys, self._flat_ids, self._offsets

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
        # np.unique(keys, return_index=True, return_inverse=True), from one in-place sort
        order = _stable_order(keys)
        ranked = keys[order]
        new = np.ones(total, dtype=bool)
        np.not_equal(ranked[1:], ranked[:-1], out=new[1:])
        uids = np.empty(total, dtype=np.int64)
        uids[order] = np.cumsum(new) - 1
        first_idx = order[new]  # equal keys sort by position: the first occurrence
        first = np.stack([case_of[first_idx], pos[first_idx]], axis=1)
        # A 64-bit key shared by two different n-grams would merge them: split such rare
        # collisions off so that every uid names exactly one token sequence.
        # Repeats are compared by exact token ids, a chunk at a time; the few that differ
        # from their uid's first occurrence are split off by their tokens.
        reps: dict[tuple[str, ...], int] = {}
        extra: list[tuple[int, int]] = []
        toks = self.case_tokens
        repeats = np.flatnonzero(first_idx[uids] != np.arange(len(uids)))
        step = max(1, (1 << 20) // max(n, 1))
        within = np.arange(n, dtype=np.int64)
        differ = []
        for a in range(0, len(repeats), step):
            rep = repeats[a:a + step]
            here = self._flat_ids[starts[rep][:, None] + within]
            there = self._flat_ids[starts[first_idx[uids[rep]]][:, None] + within]
            differ.append(rep[np.any(here != there, axis=1)])
        for i in (np.concatenate(differ).tolist() if differ else []):
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
        # every eval n-gram's uid, case after case; case c's are uids[uid_offsets[c]:...[c+1]]
        self.uids = uids
        self.uid_offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.uid_offsets[1:])

    def _build_probes(self) -> None:
        flat, offsets = self._flat_keys, self._offsets
        starts = offsets[self.first[:, 0]] + self.first[:, 1]
        m, k, size = self.m, self.k, len(flat)
        # the uid whose first occurrence starts at each eval position (-1: none)
        self.first_at = np.full(size, -1, dtype=np.int32 if len(starts) < 1 << 31 else np.int64)
        self.first_at[starts] = np.arange(len(starts))
        covered = np.zeros(size + k, dtype=bool)
        for j in range(k):
            covered[starts + j] = True
        pos = np.flatnonzero(covered[:max(0, size - m + 1)])
        keys = combine(flat, pos, m)
        order = _stable_order(keys)  # equal keys by position: hits come in position order
        self.probe_keys = keys[order]
        self.probe_pos = pos[order]
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

    def case_uids(self, c: int) -> np.ndarray:
        """The uid of each n-gram of case ``c``, in order (a view into ``uids``)."""
        return self.uids[self.uid_offsets[c]:self.uid_offsets[c + 1]]

    def probe_pairs(self, q: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    total: int) -> tuple[list[int], list[int]]:
        """The candidate (training start, uid) pairs of probe hits.

        Training position ``q[i]`` matched the probe entries ``lo[i]:hi[i]``; each entry's
        eval position ``f`` yields the n-grams whose first occurrence starts at ``f - j``,
        found in training at ``q[i] - j`` (kept when the n-gram fits in ``total``
        tokens). In order of ``q``, then entry, then ``j``: for one uid, as the training
        position grows.
        """
        count = hi - lo
        before = np.cumsum(count) - count  # entries of the hits before each hit
        entries = np.arange(int(count.sum()), dtype=np.int64) + np.repeat(lo - before, count)
        at = np.repeat(q, count)
        j = np.arange(self.k, dtype=np.int64)
        start = self.probe_pos[entries][:, None] - j  # eval start of each candidate
        train = at[:, None] - j
        uid = np.where(start >= 0, self.first_at[np.maximum(start, 0)], -1)
        keep = (uid >= 0) & (train >= 0) & (train + self.n <= total)
        return train[keep].tolist(), uid[keep].tolist()

    @property
    def n_ngrams(self) -> int:
        """Number of unique eval n-grams."""
        return len(self.first)

    def ngram_text(self, uid: int) -> str:
        """The normalised tokens of unique n-gram ``uid``, joined by spaces."""
        c, p = self.first[uid]
        return " ".join(self.case_tokens[c][p:p + self.n])
