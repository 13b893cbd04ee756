"""Streaming scan of training shards against the eval index, and the reduction to a report.

``scan_shard`` is a pure function of (index, shard, options) returning plain data, so
the local process pool and the Dask engine run the very same code, and ``reduce``
orders everything by (file, line) so the report does not depend on how the work was
split.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat

import numpy as np

from pytest_llmeval.contamination.fastpath import EncodedBlock, arrow_encoder
from pytest_llmeval.contamination.index import EvalIndex, combine
from pytest_llmeval.contamination.readers import (
    FAST_BLOCK_BYTES,
    Block,
    Shard,
    iter_blocks,
    line_pieces,
    parse_block,
    raw_blocks,
)
from pytest_llmeval.contamination.report import CaseReport, MatchSource, Span

_SNIPPET_CONTEXT = 40
_SNIPPET_MAX = 200


@dataclass(frozen=True)
class ScanOptions:
    """What counts and how results are capped.

    Attributes:
        train_fields: JSONL keys / parquet columns whose text counts (None: every string).
        min_overlap: fraction of a case's n-grams that must be found for it to count
            (0: any single n-gram, as the lesson does; 0.7: PaLM-style).
        max_doc_freq: ignore n-grams found in more than this many training records.
        max_sources: sources kept per case (and per n-gram while scanning).
    """

    train_fields: tuple[str, ...] | None = None
    min_overlap: float = 0.0
    max_doc_freq: int | None = None
    max_sources: int = 5


@dataclass
class ShardResult:
    """What one shard found: per matched n-gram, its record count and first sources."""

    file_index: int
    start: int
    n_lines: int
    nbytes: int
    n_records: int
    doc_counts: dict[int, int] = field(default_factory=dict)
    # uid -> [(line within shard, offset, snippet)], in shard order, capped
    sources: dict[int, list[tuple[int, int | None, str]]] = field(default_factory=dict)


def _snippet(text: str, start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return " ".join(text.split())[:_SNIPPET_MAX]
    s = " ".join(text[max(0, start - _SNIPPET_CONTEXT):end + _SNIPPET_CONTEXT].split())
    return s if len(s) <= _SNIPPET_MAX else s[:_SNIPPET_MAX - 3] + "..."


def _python_encode(index: EvalIndex, block: Block) -> EncodedBlock:
    """Token ids of a block read by the Python reader: one dict look-up per token."""
    toks = index.tokenizer.tokens_chunk(block.texts) if block.texts else []
    ids = np.fromiter(map(index.vocab.get, toks, repeat(0)), dtype=np.uint64, count=len(toks))
    return EncodedBlock(block.lines, block.texts, toks, ids, block.nbytes, block.n_lines)


def _encoded_blocks(index: EvalIndex, shard: Shard,
                    fields: Sequence[str] | None) -> Iterator[EncodedBlock]:
    """The shard's blocks as token ids: by pyarrow where that is exact, else in Python."""
    encoder = arrow_encoder(index, shard, fields)
    batches = encoder.parquet_blocks() if encoder is not None and shard.fmt == "parquet" \
        else None
    if batches is not None:
        yield from batches
        return
    if encoder is None or shard.fmt == "parquet":
        for block in iter_blocks(shard, fields):
            yield _python_encode(index, block)
        return
    line = 0
    for offset, data in raw_blocks(shard, FAST_BLOCK_BYTES):
        enc = encoder.encode(data, line)
        if enc is not None:
            line += enc.n_lines
            yield enc
            continue
        for piece_offset, piece in line_pieces(offset, data):
            enc = _python_encode(index, parse_block(shard, fields, piece_offset, piece, line))
            line += enc.n_lines
            yield enc


def scan_shard(index: EvalIndex, shard: Shard, options: ScanOptions) -> ShardResult:
    """Scan one shard; memory is one block of records plus the (shared) index."""
    res = ShardResult(shard.file_index, shard.start, 0, 0, 0)
    m, k = index.m, index.k
    probe_keys, bitmap = index.probe_keys, index.bitmap
    mask = np.uint64(len(bitmap) - 1)
    seen: set[tuple[int, int]] = set()
    for block in _encoded_blocks(index, shard, options.train_fields):
        line_base = res.n_lines
        res.n_lines += block.n_lines
        res.nbytes += block.nbytes
        res.n_records += len(block.lines)
        ids = block.ids
        total = len(ids)
        if total < m:
            continue
        bad = np.zeros(total + 1, dtype=np.int32)
        np.cumsum(ids <= 1, out=bad[1:])
        q = np.arange(0, total - m + 1, k, dtype=np.int64)
        q = q[bad[q + m] == bad[q]]
        if not len(q):
            continue
        keys = combine(ids, q, m)
        hit = bitmap[(keys & mask).astype(np.int64)]
        q, keys = q[hit], keys[hit]
        lo = np.searchsorted(probe_keys, keys, "left")
        # (a bitmap hit implies at least one probe key, so the clipped index is valid)
        found = probe_keys[np.minimum(lo, len(probe_keys) - 1)] == keys
        if not found.any():
            continue
        q, keys, lo = q[found], keys[found], lo[found]
        hi = np.searchsorted(probe_keys, keys, "right")
        _verify(index, options, res, block, q, lo, hi, line_base, seen)
    return res


def _verify(index: EvalIndex, options: ScanOptions, res: ShardResult, block: EncodedBlock,
            q: np.ndarray, lo: np.ndarray, hi: np.ndarray, line_base: int,
            seen: set[tuple[int, int]]) -> None:
    """Compare each probe hit token by token and record the matching n-grams."""
    n = index.n
    toks, ids = block.toks, block.ids
    total = len(toks)
    seps = np.flatnonzero(ids == 1)
    spans_cache: dict[int, list[tuple[str, int, int]] | None] = {}
    for p, uid in zip(*index.probe_pairs(q, lo, hi, total), strict=True):
        c, s = index.first[uid]
        if toks[p:p + n] != index.case_tokens[c][s:s + n]:
            continue
        r = int(np.searchsorted(seps, p))
        line = line_base + block.lines[r]
        if (line, uid) in seen:
            continue
        seen.add((line, uid))
        res.doc_counts[uid] = res.doc_counts.get(uid, 0) + 1
        srcs = res.sources.setdefault(uid, [])
        if len(srcs) >= options.max_sources:
            continue
        rec_start = int(seps[r - 1]) + 1 if r else 0
        text = block.texts[r]
        if r not in spans_cache:
            spans = index.tokenizer.spans(text)
            rec_end = int(seps[r]) if r < len(seps) else total
            ok = [t for t, _, _ in spans] == toks[rec_start:rec_end]
            spans_cache[r] = spans if ok else None
        rec_spans = spans_cache[r]
        t0 = p - rec_start
        if rec_spans is not None:
            start, end = rec_spans[t0][1], rec_spans[t0 + n - 1][2]
            srcs.append((line, start, _snippet(text, start, end)))
        else:
            srcs.append((line, None, _snippet(text, None, None)))


def reduce(index: EvalIndex, shards: Sequence[Shard], results: Sequence[ShardResult],
           options: ScanOptions) -> tuple[list[CaseReport], int, int]:
    """Merge shard results into per-case reports (independent of shard order).

    Returns:
        The case reports, the bytes scanned and the records scanned.
    """
    paths = {s.file_index: s.path for s in shards}
    ordered = sorted(results, key=lambda r: (r.file_index, r.start))
    base: dict[tuple[int, int], int] = {}
    running: dict[int, int] = {}
    for r in ordered:
        base[(r.file_index, r.start)] = running.get(r.file_index, 0)
        running[r.file_index] = running.get(r.file_index, 0) + r.n_lines
    counts: dict[int, int] = {}
    sources: dict[int, list[tuple[int, int, int, str]]] = {}
    for r in ordered:
        b = base[(r.file_index, r.start)]
        for uid, cnt in r.doc_counts.items():
            counts[uid] = counts.get(uid, 0) + cnt
        for uid, lst in r.sources.items():
            sources.setdefault(uid, []).extend(
                (r.file_index, b + line + 1, -1 if off is None else off, snip)
                for line, off, snip in lst)
    limit = options.max_doc_freq
    matched = np.zeros(index.n_ngrams, dtype=bool)
    boiler = np.zeros(index.n_ngrams, dtype=bool)
    for u, c in counts.items():
        (boiler if limit is not None and c > limit else matched)[u] = True
    # per-case counts in three array operations rather than a few per case
    sizes = np.diff(index.uid_offsets)
    flat = index.uids
    ends = index.uid_offsets[1:]
    hit_sum = np.concatenate(([0], np.cumsum(matched[flat])))
    boil_sum = np.concatenate(([0], np.cumsum(boiler[flat])))
    n_hit = hit_sum[ends] - hit_sum[ends - sizes]
    n_boil = boil_sum[ends] - boil_sum[ends - sizes]
    reports = []
    for c, (case, size, n_matched, n_boiler) in enumerate(zip(
            index.cases, sizes.tolist(), n_hit.tolist(), n_boil.tolist(), strict=True)):
        frac = n_matched / size if size else 0.0
        contaminated = n_matched > 0 and frac >= options.min_overlap
        if n_matched:
            uids = index.case_uids(c)
            hit = matched[uids]
            span = _longest(index, c, hit)
            srcs = _case_sources(index, uids[hit], sources, paths, options.max_sources)
        else:
            span, srcs = None, []
        reports.append(CaseReport(
            id=case.id, contaminated=contaminated, n_ngrams=size, n_matched=n_matched,
            fraction=round(frac, 6), longest_span=span, sources=srcs,
            n_boilerplate=n_boiler, origin=case.origin))
    return reports, sum(r.nbytes for r in results), sum(r.n_records for r in results)


def _longest(index: EvalIndex, c: int, hit: np.ndarray) -> Span | None:
    if not hit.any():
        return None
    n = index.n
    starts, ends = index.token_bounds(c)
    cover = np.zeros(len(starts) + 1, dtype=np.int64)
    for p in np.flatnonzero(hit).tolist():
        cover[p] += 1
        cover[p + n] -= 1
    covered = np.cumsum(cover[:-1]) > 0
    best, best_start, run_start = 0, 0, -1
    for t, on in enumerate(covered.tolist() + [False]):
        if on and run_start < 0:
            run_start = t
        elif not on and run_start >= 0:
            if t - run_start > best:
                best, best_start = t - run_start, run_start
            run_start = -1
    start, end = int(starts[best_start]), int(ends[best_start + best - 1])
    text = index.cases[c].text
    return Span(start, end, text[start:end], best)


def _case_sources(index: EvalIndex, uids: np.ndarray,
                  sources: dict[int, list[tuple[int, int, int, str]]], paths: dict[int, str],
                  cap: int) -> list[MatchSource]:
    rows: list[tuple[int, int, int, str, int]] = []
    for uid in dict.fromkeys(uids.tolist()):
        rows.extend((f, line, off, snip, uid) for f, line, off, snip in sources.get(uid, []))
    rows.sort(key=lambda r: (r[0], r[1], r[2], r[4]))
    out: list[MatchSource] = []
    seen: set[tuple[int, int]] = set()
    for f, line, off, snip, uid in rows:
        if (f, line) in seen:
            continue
        seen.add((f, line))
        out.append(MatchSource(paths[f], line, None if off < 0 else off, snip,
                               index.ngram_text(uid)))
        if len(out) >= cap:
            break
    return out
