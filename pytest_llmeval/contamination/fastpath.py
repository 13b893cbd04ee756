"""Token ids of JSONL blocks computed by pyarrow's C++ kernels instead of per-record Python.

The Python path (``readers.parse_block`` + ``tokens_chunk`` + a dict look-up per token)
spends most of the scan in ``json.loads``, ``str.split`` and the dict. This path
parses a block with ``pyarrow.json``, lower-cases and splits with ``ascii_*`` kernels
and looks tokens up with ``index_in``, producing the very same id array.

It is used only where the result is provably the same, and a block that does not
qualify goes through the Python path:

* the whitespace tokenizer without punctuation stripping (NFKC is the identity on
  ASCII), JSONL input and explicit ``train_fields`` (with "every string" the order of
  strings depends on each record's key order);
* a block of ASCII bytes with no control byte but newline and no ``\\u`` escape, so
  every string is ASCII without NUL or ``\\x1c-\\x1f``: there ``str.lower``/``str.split``
  and ``ascii_lower``/``ascii_split_whitespace`` agree (the tests check every character);
* every line empty or starting with ``{``, and no ``}`` followed by the start of a
  second value, so each line is one object (pyarrow would accept several per line, and
  crashes on a line that is a bare ``null``);
* pyarrow parses it with string (or null) values for every chosen field; anything it
  rejects (numbers, lists, duplicate keys, bad JSON) is left to the Python path, which
  reads nested values and raises the usual error on bad JSON.

Token strings and record texts are only built for the records that ``_verify`` looks
at, which are few.
"""

from __future__ import annotations

import io
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np

from pytest_llmeval.contamination.index import SENTINEL, EvalIndex
from pytest_llmeval.contamination.normalize import WhitespaceTokenizer
from pytest_llmeval.contamination.readers import Shard

# "}" then the start of a value other than ",", "}" or "]": a possible second value on a
# line (or text inside a string, which only costs a fallback).
_SECOND_VALUE = re.compile(rb"}[ ]*[^ ,}\]\n]")
_OPEN_BRACE = ord("{")
_NEWLINE = ord("\n")

_VOCABS: weakref.WeakKeyDictionary[EvalIndex, tuple[Any, np.ndarray]] = \
    weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class EncodedBlock:
    """A block ready to scan: record lines, the chunk's token ids, tokens and texts on demand.

    ``ids`` holds one key per token, ``0`` for tokens outside the eval vocabulary and
    ``1`` for the separator between records, exactly as ``tokens_chunk`` and the vocab
    give them; ``toks`` and ``texts`` are the matching token strings and record texts.
    """

    lines: Sequence[int]
    texts: Sequence[str]
    toks: Sequence[str]
    ids: np.ndarray
    nbytes: int
    n_lines: int


def _pyarrow() -> tuple[Any, Any, Any] | None:
    """``(pyarrow, pyarrow.compute, pyarrow.json)``, or None when the extra is not installed."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.json as pj
    except ImportError:
        return None
    return pa, pc, pj


def _vocab(index: EvalIndex, pa: Any) -> tuple[Any, np.ndarray]:
    """The ASCII vocab entries (a qualifying block has no other tokens) as an arrow array,
    and their keys followed by 0 for "not found"; cached per index."""
    cached = _VOCABS.get(index)
    if cached is None:
        items = [(t, k) for t, k in index.vocab.items() if t.isascii()]
        keys = np.array([k for _, k in items] + [0], dtype=np.uint64)
        cached = (pa.array([t for t, _ in items], pa.string()), keys)
        _VOCABS[index] = cached
    return cached


class ArrowEncoder:
    """Encodes qualifying raw JSONL blocks of one shard; ``encode`` returns None otherwise."""

    def __init__(self, index: EvalIndex, fields: Sequence[str], mods: tuple[Any, Any, Any]):
        self.pa, self.pc, self.pj = mods
        unique = list(dict.fromkeys(fields))
        self.columns = [unique.index(f) for f in fields]  # a field may be chosen twice
        self.parse_options = self.pj.ParseOptions(
            explicit_schema=self.pa.schema([(f, self.pa.string()) for f in unique]),
            unexpected_field_behavior="ignore")
        self.lowercase = index.tokenizer.normalizer.lowercase
        self.vocab, self.keys = _vocab(index, self.pa)

    def _records(self, data: bytes) -> tuple[np.ndarray, int] | None:
        """0-based lines of the records of a qualifying block, and its number of lines."""
        # (one-byte search first: memchr is much faster than a two-byte search)
        if not data.isascii() or (b"\\" in data and b"\\u" in data):
            return None
        raw = np.frombuffer(data, dtype=np.uint8)
        newlines = np.flatnonzero(raw == _NEWLINE)
        if np.count_nonzero(raw < 32) != len(newlines) or _SECOND_VALUE.search(data):
            return None
        starts = np.concatenate(([0], newlines + 1))
        if starts[-1] == len(data):
            starts = starts[:-1]
        first = raw[starts]  # a newline here means an empty line
        record = first == _OPEN_BRACE
        if not np.all(record | (first == _NEWLINE)):
            return None
        return np.flatnonzero(record), len(starts)

    def encode(self, data: bytes, line: int) -> EncodedBlock | None:
        """The block whose first line is ``line``, or None when it does not qualify."""
        found = self._records(data)
        if found is None:
            return None
        lines, n_lines = found
        if not len(lines):
            return EncodedBlock([], [], [], np.empty(0, dtype=np.uint64), len(data), n_lines)
        pa, pc = self.pa, self.pc
        try:
            table = self.pj.read_json(
                io.BytesIO(data), parse_options=self.parse_options,
                read_options=self.pj.ReadOptions(use_threads=False, block_size=len(data) + 1))
        except pa.ArrowException:
            return None
        if table.num_rows != len(lines):  # one object per line is checked above; stay safe
            return None
        cols = [table.column(i).combine_chunks() for i in range(table.num_columns)]
        n_rec, width = len(lines), len(self.columns)
        # One string (or null) per (record, field), record-major: record r owns slots
        # [r * width, (r + 1) * width), in the order of the chosen fields.
        if width == 1:
            slots = cols[self.columns[0]]
        else:
            order = (np.arange(n_rec, dtype=np.int64)[:, None] +
                     np.array(self.columns, dtype=np.int64)[None, :] * n_rec).reshape(-1)
            slots = pa.concat_arrays(cols).take(pa.array(order))
        text = pc.ascii_lower(slots) if self.lowercase else slots
        split = pc.ascii_split_whitespace(text)
        flat = pc.list_flatten(split)
        # ascii_split_whitespace keeps "" at the ends of a string; str.split() does not.
        slot_off = np.zeros(len(slots) + 1, dtype=np.int64)
        np.cumsum(pc.fill_null(pc.list_value_length(split), 0).to_numpy(), out=slot_off[1:])
        empty = np.flatnonzero(pc.binary_length(flat).to_numpy() == 0)
        rec_off = slot_off[::width] - np.searchsorted(empty, slot_off[::width])
        found_at = pc.fill_null(pc.index_in(flat, value_set=self.vocab), len(self.vocab))
        tok_ids = np.delete(self.keys[found_at.to_numpy()], empty)
        ids = np.ones(len(tok_ids) + n_rec - 1, dtype=np.uint64)
        is_tok = np.ones(len(ids), dtype=bool)
        is_tok[rec_off[1:-1] + np.arange(n_rec - 1)] = False
        ids[is_tok] = tok_ids
        return EncodedBlock((lines + line).tolist(), _Texts(slots, width),
                            _Tokens(flat, slot_off[::width], rec_off, len(ids)),
                            ids, len(data), n_lines)


class _Texts(Sequence[str]):
    """Record texts built on demand: the non-null field strings joined by a space."""

    def __init__(self, slots: Any, width: int) -> None:
        self.slots, self.width = slots, width

    def __len__(self) -> int:
        return len(self.slots) // self.width

    @overload
    def __getitem__(self, r: int) -> str: ...
    @overload
    def __getitem__(self, r: slice) -> list[str]: ...
    def __getitem__(self, r: int | slice) -> str | list[str]:
        if isinstance(r, slice):
            return [self[i] for i in range(*r.indices(len(self)))]
        if not -len(self) <= r < len(self):
            raise IndexError(r)
        r %= len(self)
        w = self.width
        return " ".join(v for v in self.slots[r * w:(r + 1) * w].to_pylist() if v is not None)


class _Tokens(Sequence[str]):
    """The chunk's token strings (records separated by the sentinel) built per record."""

    def __init__(self, flat: Any, flat_off: np.ndarray, rec_off: np.ndarray, total: int):
        self.flat, self.flat_off, self.total = flat, flat_off, total
        self.starts = rec_off[:-1] + np.arange(len(rec_off) - 1)  # chunk position of each
        self._cache: dict[int, list[str]] = {}

    def __len__(self) -> int:
        return self.total

    def _record(self, r: int) -> list[str]:
        toks = self._cache.get(r)
        if toks is None:
            a, b = int(self.flat_off[r]), int(self.flat_off[r + 1])
            toks = [t for t in self.flat[a:b].to_pylist() if t]
            self._cache[r] = toks
        return toks

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if not isinstance(i, slice):
            j = i + self.total if i < 0 else i
            if not 0 <= j < self.total:
                raise IndexError(i)
            return self._span(j, j + 1)[0]
        a, b, step = i.indices(self.total)
        if step != 1:
            return [self[j] for j in range(a, b, step)]
        return self._span(a, b) if a < b else []

    def _span(self, a: int, b: int) -> list[str]:
        """Tokens ``[a, b)`` of the chunk, ``0 <= a < b <= len(self)``."""
        r0 = r = int(np.searchsorted(self.starts, a, "right")) - 1
        out: list[str] = []
        last = len(self.starts) - 1
        while r <= last and self.starts[r] < b:
            out.extend(self._record(r))
            if r < last:
                out.append(SENTINEL)
            r += 1
        base = int(self.starts[r0])
        return out[a - base:b - base]


def arrow_encoder(index: EvalIndex, shard: Shard,
                  fields: Sequence[str] | None) -> ArrowEncoder | None:
    """An encoder for ``shard`` when the fast path applies to it, else None."""
    tok = index.tokenizer
    if (shard.fmt != "jsonl" or not fields or not isinstance(tok, WhitespaceTokenizer)
            or tok.normalizer.strip_punctuation):
        return None
    mods = _pyarrow()
    return None if mods is None else ArrowEncoder(index, fields, mods)
