"""Token ids of training blocks computed by pyarrow's C++ kernels instead of per-record Python.

The Python path (``readers.parse_block`` + ``tokens_chunk`` + a dict look-up per token)
spends most of the scan in ``json.loads``, ``str.lower``, ``str.split`` and the dict.
This path reads a block with pyarrow (``pyarrow.json`` for JSONL, the raw lines for
text, record batches for parquet), lower-cases with ``utf8_lower`` (``ascii_lower`` on
ASCII), splits with ``ascii_split_whitespace`` and looks tokens up with ``index_in``,
producing the very same id array as the reference tokenizer
(``WhitespaceTokenizer.tokens_chunk``: ``normalizer(text).split()``).

Where the kernels can differ from the reference, the reference is used, record by
record. ``CharTable`` finds those characters at run time by comparing the kernels with
the reference tokenizer on every candidate code point (every character that Python or
pyarrow lower-cases, every character ``str.split`` splits on, every ASCII character):
the dotted capital I (Python lower-cases it to two code points), the capital sigma
(Python picks the final form from the context), the Unicode whitespace that
``ascii_split_whitespace`` keeps (U+0085, U+00A0, U+2000-U+200A, U+3000, ...), NUL
(the record separator), and letters whose lower case differs between Python's and
pyarrow's Unicode versions. A record whose chosen text holds one of them (found with
one RE2 character-class match per block) is tokenised by the reference; every other
record's tokens are a concatenation of per-character mappings that agree, so they are
the same.

Which inputs qualify:

* the whitespace tokenizer without punctuation stripping (with NFKC only ASCII text
  qualifies, where NFKC is the identity);
* JSONL with explicit ``train_fields`` (with "every string" the order of strings
  depends on each record's key order), text, and parquet whose chosen columns are
  strings;
* JSONL: every line empty or starting with ``{``, no raw control byte but newline, no
  ``}`` followed by the start of a second value, and pyarrow parses it with string (or
  null) values for every chosen field; anything it rejects (numbers, lists, duplicate
  keys, lone surrogate escapes, bad JSON) is left to the Python path, which reads nested
  values and raises the usual error on bad JSON;
* the chosen text of a block is valid UTF-8 (the Python path replaces invalid bytes).

Token strings and record texts are only built for the records that ``_verify`` looks
at, which are few.

Where the optional compiled module is built (``native.py``, ``_scan.pyx``), it takes the
place of five of these kernel passes: UTF-8 validation with the unsafe-character test in
one pass, splitting with the look-up in another, and the JSONL line checks in a third;
``utf8_lower`` and the JSON reader stay. The unsafe characters are the same (they are
defined by comparing the kernels' lower-casing with the reference), the results too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, overload

import numpy as np

from pytest_llmeval.contamination import native
from pytest_llmeval.contamination.index import SENTINEL, EvalIndex
from pytest_llmeval.contamination.normalize import Normalizer, WhitespaceTokenizer
from pytest_llmeval.contamination.readers import (
    FAST_BLOCK_BYTES,
    Shard,
    parquet_columns,
    parquet_file,
)

# "}" then the start of a value other than ",", "}" or "]": a possible second value on a
# line (or text inside a string, which only costs a fallback).
_SECOND_VALUE = re.compile(rb"}[ ]*[^ ,}\]\n]")
_OPEN_BRACE = ord("{")
_NEWLINE = ord("\n")
# Rows per parquet record batch: None sizes batches to about FAST_BLOCK_BYTES of the row
# group's uncompressed data (1,024-65,536 rows), so memory stays flat.
PARQUET_BATCH_ROWS: int | None = None
_CHUNK = 4096  # code points lower-cased at once while looking for candidates
# Above this share of records that the reference must tokenise, a block is tokenised by
# the reference alone: the kernels cost about 0.6 of the reference's time per record, so
# running both is slower than the reference from about 40% on.
REFERENCE_SHARE = 0.35
# After a block went to the Python path for that reason, this many further blocks of the
# same scan (per process: each pool worker counts its own) go there without the kernels
# being tried; what they cost (a JSON parse, validation, the regex) is then not wasted.
SKIP_AFTER_HANDOVER = 3
_HANDOVERS: weakref.WeakKeyDictionary[EvalIndex, list[int]] = weakref.WeakKeyDictionary()
# Below this share of unsafe records, they all go to the reference: a kernel pass of their
# own (each call has a fixed cost: index_in builds the vocabulary's hash set) costs more.
FIX_MIN_SHARE = 0.05
# Above this share of records with fixable characters only (Unicode spaces, the dotted
# capital I), the fixes are applied to the whole block rather than to those records.
FIX_WHOLE_SHARE = 0.25

_VOCABS: weakref.WeakKeyDictionary[EvalIndex, tuple[Any, np.ndarray]] = \
    weakref.WeakKeyDictionary()
_TABLES: dict[tuple[bool, bool], CharTable] = {}


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


class Kernels:
    """The few compute kernels this path calls, through ``pyarrow._compute.call_function``.

    ``import pyarrow.compute`` generates a Python wrapper for each of its hundreds of
    functions (40-60 ms, an eighth of a small scan's fixed cost); the functions
    themselves live in ``pyarrow._compute``, which imports in a few milliseconds.
    Array methods that call kernels (``take``, ``cast``) import ``pyarrow.compute``
    too, so they are called here instead. Where ``pyarrow._compute`` lacks a name this
    needs (a pyarrow that moved it), ``pyarrow.compute`` is used.
    """

    def __init__(self) -> None:
        try:
            from pyarrow._compute import (
                CastOptions,
                MatchSubstringOptions,
                ReplaceSubstringOptions,
                SetLookupOptions,
                SplitPatternOptions,
                call_function,
            )
        except ImportError:  # pragma: no cover - every pyarrow >= 14 has these
            import pyarrow.compute as pc

            call_function = pc.call_function
            CastOptions, MatchSubstringOptions = pc.CastOptions, pc.MatchSubstringOptions
            SetLookupOptions, SplitPatternOptions = pc.SetLookupOptions, pc.SplitPatternOptions
            ReplaceSubstringOptions = pc.ReplaceSubstringOptions
        self._call = call_function
        self._cast, self._match = CastOptions, MatchSubstringOptions
        self._lookup, self._split = SetLookupOptions, SplitPatternOptions
        self._replace = ReplaceSubstringOptions

    def ascii_lower(self, arr: Any) -> Any:
        return self._call("ascii_lower", [arr])

    def utf8_lower(self, arr: Any) -> Any:
        return self._call("utf8_lower", [arr])

    def ascii_split_whitespace(self, arr: Any) -> Any:
        return self._call("ascii_split_whitespace", [arr])

    def split_pattern(self, arr: Any, pattern: str) -> Any:
        return self._call("split_pattern", [arr], self._split(pattern))

    def match_substring_regex(self, arr: Any, pattern: str) -> Any:
        return self._call("match_substring_regex", [arr], self._match(pattern))

    def replace_substring_regex(self, arr: Any, pattern: str, replacement: str) -> Any:
        return self._call("replace_substring_regex", [arr], self._replace(pattern, replacement))

    def if_else(self, cond: Any, left: Any, right: Any) -> Any:
        return self._call("if_else", [cond, left, right])

    def list_flatten(self, arr: Any) -> Any:
        return self._call("list_flatten", [arr])

    def list_value_length(self, arr: Any) -> Any:
        return self._call("list_value_length", [arr])

    def binary_length(self, arr: Any) -> Any:
        return self._call("binary_length", [arr])

    def index_in(self, arr: Any, value_set: Any) -> Any:
        return self._call("index_in", [arr], self._lookup(value_set))

    def take(self, arr: Any, indices: Any) -> Any:
        return self._call("take", [arr, indices])

    def cast(self, arr: Any, target: Any) -> Any:
        return self._call("cast", [arr], self._cast(target))


_KERNELS: list[Kernels] = []


def kernels() -> Kernels:
    """The process's one ``Kernels`` (its option classes are looked up once)."""
    if not _KERNELS:
        _KERNELS.append(Kernels())
    return _KERNELS[0]


def _pyarrow(fmt: str = "jsonl") -> tuple[Any, Kernels, Any] | None:
    """``(pyarrow, Kernels, pyarrow.json or None)``, or None when the extra is not
    installed; ``pyarrow.json`` is imported for JSONL only."""
    try:
        import pyarrow as pa

        pc = kernels()
        if fmt != "jsonl":
            return pa, pc, None
        import pyarrow.json as pj
    except ImportError:
        return None
    return pa, pc, pj


def _all_code_points() -> np.ndarray:
    return np.concatenate([np.arange(0, 0xD800, dtype=np.uint32),
                           np.arange(0xE000, 0x110000, dtype=np.uint32)])


def _utf32(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


class CharTable:
    """The code points where the kernels may tokenise differently from the reference.

    Built once per process and normaliser (about 0.1 s, and only when a block holds
    text the ASCII checks do not clear): candidates are found with whole-range
    comparisons, then each candidate is tokenised in several contexts by both sides.
    """

    def __init__(self, normalizer: Normalizer, pa: Any, pc: Any) -> None:
        self.pa, self.pc = pa, pc
        self.lowercase = normalizer.lowercase
        self.nfkc = normalizer.nfkc
        self.reference = WhitespaceTokenizer(Normalizer(lowercase=normalizer.lowercase))
        self.ascii_unsafe = np.zeros(128, dtype=bool)
        self.ascii_unsafe[self.classify(list(range(128)))] = True
        self._pattern: str | None = None
        # unsafe code points that a fixed replacement makes safe (whitespace the kernels
        # keep -> " ", the dotted capital I -> its Python lower case), and the class of
        # the others ("" when there are none), which need the reference
        self._fixes: dict[int, str] = {}
        self._context: str | None = None
        self._table: np.ndarray | None = None

    def kernel_tokens(self, texts: list[str], ascii_only: bool = False) -> list[list[str]]:
        """The kernels' tokens of each text (empty strings dropped, as ``str.split``)."""
        arr = string_array(self.pa, texts)
        if self.lowercase:
            arr = self.pc.ascii_lower(arr) if ascii_only else self.pc.utf8_lower(arr)
        return [[t for t in toks if t]
                for toks in self.pc.ascii_split_whitespace(arr).to_pylist()]

    def classify(self, cps: list[int]) -> list[int]:
        """The code points among ``cps`` that some context tokenises differently."""
        contexts = ("{}", "a{}b", "A{}", "{}B", "x {} y")
        texts = [ctx.format(chr(c)) for c in cps for ctx in contexts]
        ref = [self.reference.tokens_chunk([t]) for t in texts]
        got: list[list[str] | None] = list(self.kernel_tokens(texts))
        if all(c < 128 for c in cps):  # ASCII blocks use the ascii_* kernels: both must agree
            ascii_got = self.kernel_tokens(texts, ascii_only=True)
            got = [g if g == a else None for g, a in zip(got, ascii_got, strict=True)]
        w = len(contexts)
        return [c for i, c in enumerate(cps) if ref[i * w:(i + 1) * w] != got[i * w:(i + 1) * w]]

    def _candidates(self) -> list[int]:
        """Every code point that either side lower-cases, or that ``str.split`` splits on."""
        cps = _all_code_points()
        text = cps.tobytes().decode("utf-32-le")
        found: set[int] = set(range(128))
        found.update(ord(m.group()) for m in re.finditer(r"\s", text))
        if self.lowercase:
            for i in range(0, len(text), _CHUNK):
                piece = text[i:i + _CHUNK]
                low = piece.lower()
                if len(low) == len(piece):
                    found.update(cps[i + np.flatnonzero(_utf32(low) != cps[i:i + _CHUNK])].tolist())
                else:  # a code point that lower-cases to several: compare one by one
                    found.update(ord(c) for c in piece if c.lower() != c)
            low = self.pc.utf8_lower(string_array(self.pa, [text])).to_pylist()[0]
            theirs = _utf32(low)
            if len(theirs) == len(cps):
                found.update(cps[np.flatnonzero(theirs != cps)].tolist())
            else:  # pragma: no cover - pyarrow lower-cases code point by code point
                found.update(ord(c) for c, d in zip(text, low, strict=False) if c != d)
        return sorted(found)

    def pattern(self) -> str:
        """An RE2 character class matching every unsafe code point.

        Finding the non-ASCII candidates takes about 0.1 s in each process that meets
        non-ASCII text (each pool worker too), so the result is kept in a small file
        (:func:`pattern_cache_path`) keyed by everything it depends on: the Python
        version and its Unicode database, the pyarrow version, the normaliser and this
        code's version of the classification.
        """
        if self._pattern is None:
            unsafe = [i for i in range(128) if self.ascii_unsafe[i]]
            if self.nfkc:  # NFKC is the identity on ASCII only
                ranges = [(c, c) for c in unsafe] + [(0x80, 0x10FFFF)]
                self._pattern = self._context = _character_class(ranges)
                return self._pattern
            key = self.cache_key()
            cached = _read_pattern(key)
            if cached is not None:
                self._pattern, self._fixes, self._context = cached
                return self._pattern
            unsafe = sorted(set(unsafe) | set(self.classify(
                [c for c in self._candidates() if c >= 128])))
            self._fixes = self.find_fixes(unsafe)
            self._pattern = _character_class(_ranges(unsafe))
            self._context = _character_class(_ranges([c for c in unsafe if c not in self._fixes]))
            _write_pattern(key, self._pattern, self._fixes, self._context)
        return self._pattern

    def find_fixes(self, unsafe: list[int]) -> dict[int, str]:
        """The unsafe code points that one replacement makes safe: in every context, the
        kernels' tokens of the text with the replacement equal the reference's tokens of
        the original. Tried: a space (whitespace that only ``str.split`` splits on), then
        the code point's own Python lower case (the dotted capital I)."""
        contexts = ("{}", "a{}b", "A{}", "{}B", "x {} y", "{}{}", "a{}{}b")
        tries = []
        for c in unsafe:
            char = chr(c)
            low = char.lower() if self.lowercase else char
            for r in dict.fromkeys((" ", low)):
                if r != char:
                    tries.append((c, r))
        ref = [self.reference.tokens_chunk([ctx.format(chr(c), chr(c))])
               for c, _ in tries for ctx in contexts]
        got = self.kernel_tokens([ctx.format(r, r) for _, r in tries for ctx in contexts])
        w = len(contexts)
        fixes: dict[int, str] = {}
        for i, (c, r) in enumerate(tries):
            if c not in fixes and ref[i * w:(i + 1) * w] == got[i * w:(i + 1) * w]:
                fixes[c] = r
        return fixes

    def unsafe_table(self) -> np.ndarray:
        """The unsafe code points as one byte per code point (``0x110000``), for the
        compiled pass (``native.unsafe_records``); built once from :meth:`pattern`."""
        if self._table is None:
            table = np.zeros(0x110000, dtype=np.uint8)
            for m in _CLASS_ITEM.finditer(self.pattern()):
                first = int(m.group(1), 16)
                last = int(m.group(2), 16) if m.group(2) else first
                table[first:last + 1] = 1
            self._table = table
        return self._table

    def fixes(self) -> dict[int, str]:
        """Unsafe code point -> the replacement that makes it safe (see ``find_fixes``)."""
        self.pattern()
        return self._fixes

    def context_pattern(self) -> str | None:
        """The character class of the unsafe code points no replacement makes safe
        (the capital sigma, whose lower case depends on its neighbours, ...), or None."""
        self.pattern()
        return self._context if self._context and self._context != "[]" else None

    def apply_fixes(self, arr: Any) -> Any:
        """``arr`` with every fixable code point replaced (a pass per replacement)."""
        groups: dict[str, list[int]] = {}
        for c, r in self.fixes().items():
            groups.setdefault(r, []).append(c)
        for r, cps in groups.items():
            arr = self.pc.replace_substring_regex(arr, _character_class(_ranges(sorted(cps))), r)
        return arr

    def cache_key(self) -> str:
        """What the pattern depends on, as the text its cache file records."""
        import unicodedata

        return json.dumps({"format": PATTERN_FORMAT, "python": list(sys.version_info[:3]),
                           "unicode": unicodedata.unidata_version,
                           "pyarrow": getattr(self.pa, "__version__", "?"),
                           "lowercase": self.lowercase, "nfkc": self.nfkc}, sort_keys=True)


# Bump when the classification of unsafe characters changes: cached patterns of an
# earlier format are then recomputed.
PATTERN_FORMAT = 2


def _ranges(cps: list[int]) -> list[tuple[int, int]]:
    """Sorted code points as runs ``(first, last)``."""
    ranges: list[tuple[int, int]] = []
    for c in cps:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1] = (ranges[-1][0], c)
        else:
            ranges.append((c, c))
    return ranges


def _character_class(ranges: list[tuple[int, int]]) -> str:
    return "[" + "".join(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}"
                         for a, b in ranges) + "]"


def pattern_cache_dir() -> Path | None:
    """Where unsafe-character patterns are kept: ``$LLMEVAL_CACHE_HOME`` (``off`` keeps
    none), else ``$XDG_CACHE_HOME/pytest-llmeval``, else ``~/.cache/pytest-llmeval``."""
    value = os.environ.get("LLMEVAL_CACHE_HOME")
    if value is not None:
        return None if value.strip().lower() in ("", "off", "0", "false", "no") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-llmeval"


def pattern_cache_path(key: str) -> Path | None:
    home = pattern_cache_dir()
    if home is None:
        return None
    import hashlib

    return home / f"unsafe-chars-{hashlib.sha256(key.encode()).hexdigest()[:20]}.json"


def _read_pattern(key: str) -> tuple[str, dict[int, str], str] | None:
    """The cached ``(pattern, fixes, context pattern)`` for ``key``; None when there is
    none, or it is unreadable or records another key (then it is recomputed and
    rewritten)."""
    path = pattern_cache_path(key)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    pattern, context, fixes = data.get("pattern"), data.get("context"), data.get("fixes")
    if not (isinstance(pattern, str) and isinstance(context, str)
            and _CLASS.fullmatch(pattern) and _CLASS.fullmatch(context)):
        return None
    if not isinstance(fixes, dict) or not all(
            isinstance(k, str) and k.isdigit() and isinstance(v, str) and 0 < len(v) <= 4
            for k, v in fixes.items()):
        return None
    return pattern, {int(k): v for k, v in fixes.items()}, context


def _write_pattern(key: str, pattern: str, fixes: dict[int, str], context: str) -> None:
    """Keep the pattern for the next process; a cache that cannot be written (read-only
    home, full disk) only costs the next process the computation."""
    path = pattern_cache_path(key)
    if path is None:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    record = {"key": key, "pattern": pattern, "context": context,
              "fixes": {str(c): r for c, r in sorted(fixes.items())}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(record), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


# what a cached pattern may look like: a character class of \x{..} items and ranges
_CLASS = re.compile(r"\[(?:\\x\{[0-9a-f]{1,6}\}(?:-\\x\{[0-9a-f]{1,6}\})?)*\]")
_CLASS_ITEM = re.compile(r"\\x\{([0-9a-f]{1,6})\}(?:-\\x\{([0-9a-f]{1,6})\})?")


def char_table(normalizer: Normalizer, pa: Any, pc: Any) -> CharTable:
    """The (cached) CharTable for ``normalizer``."""
    key = (normalizer.lowercase, normalizer.nfkc)
    table = _TABLES.get(key)
    if table is None:
        table = _TABLES[key] = CharTable(normalizer, pa, pc)
    return table


def _vocab(index: EvalIndex, pa: Any) -> tuple[Any, np.ndarray]:
    """The vocab entries as an arrow array (tokens that are not valid UTF-8 cannot occur in
    arrow text and are left out) and their keys followed by 0 for "not found"; cached."""
    cached = _VOCABS.get(index)
    if cached is None:
        tokens, keys = index.vocab_tokens, index.vocab_keys
        try:
            strings = string_array(pa, tokens)
        except UnicodeEncodeError:
            ok = [i for i, t in enumerate(tokens) if _encodable(t)]
            strings = string_array(pa, [tokens[i] for i in ok])
            keys = keys[np.array(ok, dtype=np.int64)]
        keys = np.append(keys, np.uint64(0))
        cached = (strings, keys)
        _VOCABS[index] = cached
    return cached


def string_array(pa: Any, texts: Sequence[str]) -> Any:
    """``pa.array(texts, pa.string())`` built from its buffers.

    pyarrow's ``pa.array``, ``pa.scalar`` and ``to_numpy`` import pandas when it is
    installed (to check for pandas input): 0.3-0.4 s, more than the rest of a small
    scan's fixed cost. Building arrays from buffers and reading them through
    :func:`numbers` never does. Raises ``UnicodeEncodeError`` on a lone surrogate.
    """
    encoded = [t.encode("utf-8") for t in texts]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    total = int(lengths.sum())
    large = total >= 1 << 31
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64 if large else np.int32)
    np.cumsum(lengths, out=offsets[1:])
    cls = pa.LargeStringArray if large else pa.StringArray
    return cls.from_buffers(len(encoded), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded)))


def int_array(pa: Any, values: np.ndarray) -> Any:
    """An int64 arrow array of ``values``, from its buffer (see :func:`string_array`)."""
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(data), [None, pa.py_buffer(data)])


def bool_array(pa: Any, mask: np.ndarray) -> Any:
    """A boolean arrow array of ``mask``, from its bits (see :func:`string_array`)."""
    bits = np.packbits(np.asarray(mask, dtype=bool), bitorder="little")
    return pa.BooleanArray.from_buffers(pa.bool_(), len(mask), [None, pa.py_buffer(bits)])


_NUMPY_TYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
                "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32,
                "uint64": np.uint64, "double": np.float64, "float": np.float32}


def numbers(arr: Any, fill: Any = None) -> np.ndarray:
    """A boolean or fixed-width arrow array as numpy, read from its buffers (see
    :func:`string_array`); nulls become ``fill`` (without ``fill``, nulls are an error)."""
    if hasattr(arr, "combine_chunks"):
        arr = arr.combine_chunks()
    n, start = len(arr), arr.offset
    if arr.type == "bool":
        bits = np.frombuffer(arr.buffers()[1], dtype=np.uint8) if n else np.zeros(0, np.uint8)
        out = np.unpackbits(bits, bitorder="little", count=start + n)[start:].astype(bool)
    else:
        dtype = _NUMPY_TYPES[str(arr.type)]
        out = np.frombuffer(arr.buffers()[1], dtype=dtype)[start:start + n] if n \
            else np.zeros(0, dtype=dtype)
    if arr.null_count:
        if fill is None:
            raise ValueError("numbers(): the array holds nulls and no fill value was given")
        valid = np.frombuffer(arr.buffers()[0], dtype=np.uint8)
        valid = np.unpackbits(valid, bitorder="little", count=start + n)[start:].astype(bool)
        out = np.where(valid, out, np.asarray(fill, dtype=out.dtype))
    return out


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def jsonl_records(data: bytes) -> tuple[np.ndarray, int] | None:
    """0-based lines of the records of a JSONL block (lines starting with ``{``) and its
    number of lines; None when the block does not qualify: a raw control byte other than
    the newline, a line neither empty nor starting with ``{``, or a ``}`` followed by the
    start of a second value (``_SECOND_VALUE``). ``native.jsonl_lines`` does the same in
    one compiled pass."""
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


class ArrowEncoder:
    """Encodes qualifying blocks of one shard; ``encode`` returns None for the others."""

    def __init__(self, index: EvalIndex, shard: Shard, fields: Sequence[str] | None,
                 mods: tuple[Any, Any, Any]):
        self.pa, self.pc, self.pj = mods
        self.index = index
        self.shard = shard
        self.fields = list(fields) if fields else None
        tok = index.tokenizer
        assert isinstance(tok, WhitespaceTokenizer)
        self.tokenizer = tok
        self.lowercase = tok.normalizer.lowercase
        self.table = char_table(tok.normalizer, self.pa, self.pc)
        # the compiled passes (validation with the unsafe-character test, and splitting
        # with the look-up) when built, else pyarrow's kernels alone
        self._compiled = native.available()
        if shard.fmt == "jsonl":
            assert fields
            unique = list(dict.fromkeys(fields))
            self.columns = [unique.index(f) for f in fields]  # a field may be chosen twice
            self.parse_options = self.pj.ParseOptions(
                explicit_schema=self.pa.schema([(f, self.pa.string()) for f in unique]),
                unexpected_field_behavior="ignore")

    @property
    def native(self) -> native.VocabTable | None:
        """The vocabulary table of the compiled passes (built at the first block), or None
        where they are not in use."""
        return native.vocab_table(self.index) if self._compiled else None

    # -- readers --------------------------------------------------------------------------

    def _jsonl_records(self, data: bytes) -> tuple[np.ndarray, int] | None:
        """0-based lines of the records of a qualifying JSONL block, and its number of lines."""
        if self.native is not None:
            return native.jsonl_lines(data)
        return jsonl_records(data)

    def encode(self, data: bytes, line: int) -> EncodedBlock | None:
        """The JSONL or text block whose first line is ``line``, or None if it does not
        qualify."""
        skip = _HANDOVERS.setdefault(self.index, [0])
        if skip[0] > 0:  # the last block went to the Python path whole: so do the next few
            skip[0] -= 1
            return None
        if self.shard.fmt == "text":
            return self._encode_text(data, line)
        found = self._jsonl_records(data)
        if found is None:
            return None
        lines, n_lines = found
        if not len(lines):
            return EncodedBlock([], [], [], np.empty(0, dtype=np.uint64), len(data), n_lines)
        pa = self.pa
        try:
            table = self.pj.read_json(
                io.BytesIO(data), parse_options=self.parse_options,
                read_options=self.pj.ReadOptions(use_threads=False, block_size=len(data) + 1))
        except pa.ArrowException:
            return None
        if table.num_rows != len(lines):  # one object per line is checked above; stay safe
            return None
        cols = [table.column(i).combine_chunks() for i in range(table.num_columns)]
        slots = self._record_major([cols[c] for c in self.columns], len(lines))
        ascii_raw = data.isascii() and b"\\u" not in data
        # no raw control byte but the record separator (checked above) and no escape: the
        # strings hold no ASCII whitespace other than the space
        spaces_only = b"\\" not in data
        return self._encode_slots(slots, len(self.columns), (lines + line).tolist(),
                                  len(data), n_lines, ascii_raw, spaces_only=spaces_only)

    def _record_major(self, cols: list[Any], n_rec: int) -> Any:
        """One string (or null) per (record, field): record r owns ``[r*w, (r+1)*w)``."""
        if len(cols) == 1:
            return cols[0]
        order = (np.arange(n_rec, dtype=np.int64)[:, None] +
                 np.arange(len(cols), dtype=np.int64)[None, :] * n_rec).reshape(-1)
        return self.pc.take(self.pa.concat_arrays(cols), int_array(self.pa, order))

    def _encode_text(self, data: bytes, line: int) -> EncodedBlock | None:
        """Every line a record; each record's string keeps its newline (whitespace)."""
        if not data:
            return EncodedBlock([], [], [], np.empty(0, dtype=np.uint64), 0, 0)
        raw = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(raw == _NEWLINE) + 1
        if not data.endswith(b"\n"):
            ends = np.append(ends, len(data))
        if ends[-1] >= 1 << 31:  # pragma: no cover - blocks are about 1 MB
            return None
        offsets = np.concatenate(([0], ends)).astype(np.int32)
        slots = self.pa.StringArray.from_buffers(len(ends), self.pa.py_buffer(offsets),
                                                 self.pa.py_buffer(data))
        n = len(ends)
        return self._encode_slots(slots, 1, range(line, line + n), len(data), n,
                                  data.isascii(), strip_newline=True)

    def parquet_blocks(self) -> Iterator[EncodedBlock] | None:
        """The shard's row group in record batches, or None when a chosen column is not text."""
        pa = self.pa
        pf = parquet_file(self.shard.path)
        cols = parquet_columns(pf, self.fields, self.shard.path)
        types = [pf.schema_arrow.field(c).type for c in cols]
        if not cols or not all(pa.types.is_string(t) or pa.types.is_large_string(t)
                               for t in types):
            return None
        return self._parquet_batches(pf, cols)

    def _parquet_batches(self, pf: Any, cols: list[str]) -> Iterator[EncodedBlock]:
        pa, shard = self.pa, self.shard
        total = pf.metadata.row_group(shard.start).num_rows
        done, counted = 0, 0
        batch_rows = PARQUET_BATCH_ROWS
        if batch_rows is None:
            group = pf.metadata.row_group(shard.start)
            per_row = max(group.total_byte_size // max(total, 1), 1)
            batch_rows = min(65536, max(1024, FAST_BLOCK_BYTES // per_row))
        batches = pf.iter_batches(batch_size=batch_rows, row_groups=[shard.start],
                                  columns=cols, use_threads=False)
        for batch in batches:
            n = batch.num_rows
            arrays = [self.pc.cast(a, pa.string()) if a.type != pa.string() else a
                      for a in batch.columns]
            slots = self._record_major(arrays, n)
            done += n
            # the row group's size, shared out by rows so that the total stays exact
            nbytes = shard.size * done // max(total, 1) - counted
            counted += nbytes
            rows = range(done - n, done)
            enc = self._encode_slots(slots, len(arrays), rows, nbytes, n, False)
            if enc is None:  # not UTF-8: decode as the Python path does (and fail alike)
                texts = [" ".join(v for v in row if v is not None)
                         for row in zip(*(a.to_pylist() for a in arrays), strict=True)]
                enc = self._python_block(rows, texts, nbytes, n)
            yield enc

    # -- encoding -------------------------------------------------------------------------

    def _python_block(self, lines: Sequence[int], texts: list[str], nbytes: int,
                      n_lines: int) -> EncodedBlock:
        toks = self.tokenizer.tokens_chunk(texts) if texts else []
        vocab = self.index.vocab
        ids = np.fromiter(map(vocab.get, toks, repeat(0)), dtype=np.uint64, count=len(toks))
        return EncodedBlock(lines, texts, toks, ids, nbytes, n_lines)

    def _unsafe_records(self, slots: Any, values: np.ndarray, width: int,
                        ascii_only: bool) -> np.ndarray | None:
        """Records whose text the reference must tokenise (None: none of them)."""
        if ascii_only:
            unsafe_ascii = self.table.ascii_unsafe
            seen = values if unsafe_ascii[32:].any() else values[values < 32]
            if not unsafe_ascii[seen].any():
                return None
        unsafe: np.ndarray = numbers(self.pc.match_substring_regex(
            slots, self.table.pattern()), fill=False)
        if width > 1:
            unsafe = np.asarray(unsafe.reshape(-1, width).any(axis=1))
        return unsafe if unsafe.any() else None

    def _encode_slots(self, slots: Any, width: int, lines: Sequence[int], nbytes: int,
                      n_lines: int, ascii_hint: bool, strip_newline: bool = False,
                      spaces_only: bool = False) -> EncodedBlock | None:
        """Token ids of records given as ``width`` record-major string slots each.

        ``spaces_only``: the caller knows the strings hold no ASCII whitespace but the
        space (else it is looked for, except in text lines, which end in a newline). The
        split is then ``split_pattern(" ")``, a third faster than
        ``ascii_split_whitespace``; the empty strings it gives between repeated spaces
        are dropped like the ones at the ends.
        """
        pa, pc = self.pa, self.pc
        n_rec = len(slots) // width
        texts = _Texts(slots, width, strip_newline)
        if not n_rec:
            return EncodedBlock(lines, texts, [], np.empty(0, dtype=np.uint64), nbytes, n_lines)
        values = native.values_of(slots, native.offsets_of(slots))
        ascii_only = bool(ascii_hint or not values.size or int(values.max()) < 128)
        # Text that is not UTF-8 goes to the Python path, which decodes with replacement.
        # ASCII is UTF-8. (utf8_lower rejects some invalid input but passes encoded
        # surrogates, overlong forms and code points above U+10FFFF: not a validator.)
        if ascii_only:
            unsafe = self._unsafe_records(slots, values, width, True)
        elif self.native is not None:  # validation and the unsafe test in one pass
            flags = native.unsafe_records(slots, width, self.table.unsafe_table())
            if flags is None:
                return None
            unsafe = flags if flags.any() else None
        else:
            try:
                slots.validate(full=True)
            except pa.ArrowInvalid:
                return None
            unsafe = self._unsafe_records(slots, values, width, False)
        fixed, whole = None, False
        if unsafe is not None:
            unsafe, fixed, whole = self._split_fixable(slots, unsafe, width)
        if unsafe is not None and np.count_nonzero(unsafe) > REFERENCE_SHARE * n_rec:
            # most records need the reference: the Python path alone is faster, and the
            # next blocks of this scan are likely alike
            _HANDOVERS.setdefault(self.index, [0])[0] = SKIP_AFTER_HANDOVER
            return None
        # many fixable records: one replacement pass over the block (a no-op on the others,
        # which hold no unsafe character) instead of a kernel pass of their own
        slots_in = self.table.apply_fixes(slots) if whole else slots
        if fixed is not None:  # their slots are tokenised apart, from the fixed text
            nulled = unsafe.copy() if unsafe is not None else np.zeros(n_rec, dtype=bool)
            nulled[fixed.rows] = True
        else:
            nulled = unsafe
        # the compiled pass lower-cases ASCII letters itself
        lower_ascii = self.native is not None and ascii_only and self.lowercase
        if self.lowercase and not lower_ascii:
            text = pc.ascii_lower(slots_in) if ascii_only else pc.utf8_lower(slots_in)
        else:
            text = slots_in
        if nulled is not None and self.native is None:
            text = pc.if_else(bool_array(pa, np.repeat(nulled, width)),
                              pa.nulls(len(text), pa.string()), text)
        if self.native is None and not spaces_only and not strip_newline \
                and not bool((values < 14).any()):
            spaces_only = True  # no tab, newline, vertical tab, form feed or return
        if self.native is not None:
            return self._assemble_compiled(text, width, unsafe, nulled, fixed, lower_ascii,
                                           lines, texts, nbytes, n_lines)
        flat, flat_off, kernel_off, tok_ids = self._split_ids(text, width, spaces_only)
        override: dict[int, list[str]] = {}
        if nulled is not None:
            # the records the kernels may get wrong, tokenised by the reference at once,
            # and the fixed ones, from their own kernel pass
            counts = np.diff(kernel_off)
            rows, ref_ids, ref_counts, override = self._nulled_ids(texts, unsafe, fixed)
            counts[rows] = ref_counts
            rec_off = np.zeros(n_rec + 1, dtype=np.int64)
            np.cumsum(counts, out=rec_off[1:])
            merged = np.empty(int(rec_off[-1]), dtype=np.uint64)
            shift = np.repeat(rec_off[:-1] - kernel_off[:-1], np.diff(kernel_off))
            merged[np.arange(len(tok_ids)) + shift] = tok_ids
            at = np.repeat(rec_off[rows] - np.cumsum(counts[rows]) + counts[rows], counts[rows])
            merged[at + np.arange(len(ref_ids))] = ref_ids
            tok_ids = merged
        else:
            rec_off = kernel_off
        ids = np.ones(len(tok_ids) + n_rec - 1, dtype=np.uint64)
        is_tok = np.ones(len(ids), dtype=bool)
        is_tok[rec_off[1:-1] + np.arange(n_rec - 1)] = False
        ids[is_tok] = tok_ids
        return EncodedBlock(lines, texts, _Tokens(flat, flat_off, rec_off, len(ids), override,
                                                  fixed, texts, self.tokenizer.tokens_chunk),
                            ids, nbytes, n_lines)

    def _assemble_compiled(self, text: Any, width: int, unsafe: np.ndarray | None,
                           nulled: np.ndarray | None, fixed: _Fixed | None,
                           lower_ascii: bool, lines: Sequence[int], texts: _Texts,
                           nbytes: int, n_lines: int) -> EncodedBlock:
        """The block's ids from the compiled pass, which writes the separators itself; the
        ids of the records it skipped (``nulled``) are inserted at their places."""
        assert self.native is not None
        ids, counts = native.token_ids(text, width, nulled, lower_ascii, self.native,
                                       separate=True)
        override: dict[int, list[str]] = {}
        if nulled is not None:
            rows, ref_ids, ref_counts, override = self._nulled_ids(texts, unsafe, fixed)
            # record r starts after the tokens and separators of the records before it
            starts = np.zeros(len(counts), dtype=np.int64)
            np.cumsum(counts[:-1] + 1, out=starts[1:])
            ids = np.insert(ids, np.repeat(starts[rows], ref_counts), ref_ids)
            counts[rows] = ref_counts
        rec_off = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=rec_off[1:])
        return EncodedBlock(lines, texts, _Tokens(None, rec_off, rec_off, len(ids), override,
                                                  fixed, texts, self.tokenizer.tokens_chunk),
                            ids, nbytes, n_lines)

    def _nulled_ids(self, texts: _Texts, unsafe: np.ndarray | None, fixed: _Fixed | None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, list[str]]]:
        """The records left out of the main pass, in record order: those the reference
        tokenises and the fixed ones (their own kernel pass). Returns their numbers, their
        ids end to end, each one's token count, and the reference's tokens by record
        (where it built them)."""
        rows = np.flatnonzero(unsafe) if unsafe is not None else np.empty(0, np.int64)
        ref_ids, ref_counts, override = self._reference_ids(texts.many(rows), rows)
        if fixed is not None:  # both sets of records, in record order
            owner = np.concatenate([np.repeat(rows, ref_counts),
                                    np.repeat(fixed.rows, fixed.counts)])
            ref_ids = np.concatenate([ref_ids, fixed.ids])[np.argsort(owner, kind="stable")]
            rows, ref_counts = (np.concatenate([rows, fixed.rows]),
                                np.concatenate([ref_counts, fixed.counts]))
            order = np.argsort(rows, kind="stable")
            rows, ref_counts = rows[order], ref_counts[order]
        return rows, ref_ids, ref_counts, override

    def _reference_ids(self, texts: list[str], rows: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray, dict[int, list[str]]]:
        """The reference's token keys of ``texts`` (records ``rows``), each one's token
        count, and their tokens by record (empty with the compiled pass: ``_Tokens``
        tokenises a record with the reference when asked).

        With the compiled pass, the reference's tokens are joined by single spaces and
        looked up there: the same tokens (they hold no ASCII whitespace), without a dict
        look-up per token in Python.
        """
        reference = self.tokenizer.tokens_chunk
        if self.native is not None:
            joined = [" ".join(reference([t])) for t in texts]
            ids, counts = native.token_ids(string_array(self.pa, joined), 1, None, False,
                                           self.native)
            return ids, counts, {}
        ref_toks = [reference([t]) for t in texts]
        ref_counts = np.array([len(t) for t in ref_toks], dtype=np.int64)
        flat_ref = [t for toks in ref_toks for t in toks]
        ref_ids = np.fromiter(map(self.index.vocab.get, flat_ref, repeat(0)),
                              dtype=np.uint64, count=len(flat_ref))
        return ref_ids, ref_counts, dict(zip(rows.tolist(), ref_toks, strict=True))

    def _split_fixable(self, slots: Any, unsafe: np.ndarray,
                       width: int) -> tuple[np.ndarray | None, _Fixed | None, bool]:
        """Of the unsafe records, those whose every unsafe character has a fixed replacement
        (see ``CharTable.find_fixes``) are tokenised by the kernels from their fixed text;
        the others stay with the reference. Returns the reference's records (None: none),
        the fixed records' tokens (None: none, or fixed with the whole block), and whether
        the whole block is to be fixed instead."""
        table, pa, pc = self.table, self.pa, self.pc
        n_rec = len(unsafe)
        rows = np.flatnonzero(unsafe)
        if not table.fixes() or len(rows) < FIX_MIN_SHARE * n_rec:
            return unsafe, None, False  # a few records: the reference costs less
        within = np.arange(width, dtype=np.int64)
        sub = pc.take(slots, int_array(pa, (rows[:, None] * width + within).reshape(-1)))
        context = table.context_pattern()
        left: np.ndarray | None = None  # the records that stay with the reference
        if context is not None:
            hard = np.asarray(numbers(pc.match_substring_regex(sub, context), fill=False)
                              .reshape(-1, width).any(axis=1))
            if hard.all():
                return unsafe, None, False
            keep = np.flatnonzero(~hard)
            sub = pc.take(sub, int_array(pa, (keep[:, None] * width + within).reshape(-1)))
            if hard.any():
                left = np.zeros_like(unsafe)
                left[rows[hard]] = True
            rows = rows[keep]
        if len(rows) > FIX_WHOLE_SHARE * n_rec:
            return left, None, True
        text = table.apply_fixes(sub)
        if self.lowercase:
            text = pc.utf8_lower(text)
        flat, flat_off, kernel_off, ids = self._split_ids(text, width, False)
        return left, _Fixed(rows, np.diff(kernel_off), ids, flat, flat_off), False

    def _split_ids(self, text: Any, width: int,
                   spaces_only: bool) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray]:
        """Split normalised record-major slots (``width`` per record) into tokens and look
        them up. Returns the tokens (with empty strings; None from the compiled pass,
        which builds no token strings), each record's first index among them and among
        the non-empty ones (``n + 1`` each), and the non-empty tokens' keys.
        ``spaces_only``: the text holds no ASCII whitespace but the space."""
        if self.native is not None:
            ids, counts = native.token_ids(text, width, None, False, self.native)
            kernel_off = np.zeros(len(counts) + 1, dtype=np.int64)
            np.cumsum(counts, out=kernel_off[1:])
            return None, kernel_off, kernel_off, ids
        pc = self.pc
        split = pc.split_pattern(text, " ") if spaces_only else pc.ascii_split_whitespace(text)
        flat = pc.list_flatten(split)
        slot_off = np.zeros(len(text) + 1, dtype=np.int64)
        np.cumsum(numbers(pc.list_value_length(split), fill=0), out=slot_off[1:])
        # ascii_split_whitespace gives "" at the ends of a string; str.split() does not.
        empty = np.flatnonzero(numbers(pc.binary_length(flat)) == 0)
        flat_off = slot_off[::width]
        kernel_off = flat_off - np.searchsorted(empty, flat_off)  # non-empty tokens
        vocab, keys = _vocab(self.index, self.pa)
        found_at = numbers(pc.index_in(flat, value_set=vocab), fill=len(vocab))
        return flat, flat_off, kernel_off, np.delete(keys[found_at], empty)


@dataclass(frozen=True)
class _Fixed:
    """Records tokenised from their fixed text: their numbers, token counts and ids, and
    the kernels' tokens (with empty strings) at ``flat_off[i]:flat_off[i + 1]``."""

    rows: np.ndarray
    counts: np.ndarray
    ids: np.ndarray
    flat: Any
    flat_off: np.ndarray


class _Texts(Sequence[str]):
    """Record texts built on demand: the non-null field strings joined by a space."""

    def __init__(self, slots: Any, width: int, strip_newline: bool = False) -> None:
        self.slots, self.width, self.strip_newline = slots, width, strip_newline

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
        return self._join(self.slots[r * w:(r + 1) * w].to_pylist())

    def _join(self, values: list[str | None]) -> str:
        text = " ".join(v for v in values if v is not None)
        if self.strip_newline and text.endswith("\n"):
            text = text[:-1]
        return text

    def many(self, rows: np.ndarray) -> list[str]:
        """The texts of ``rows`` with one conversion of their strings."""
        if not len(rows):
            return []
        w = self.width
        at = (np.asarray(rows, dtype=np.int64)[:, None] * w + np.arange(w)).reshape(-1)
        import pyarrow

        values = kernels().take(self.slots, int_array(pyarrow, at)).to_pylist()
        return [self._join(values[i * w:(i + 1) * w]) for i in range(len(rows))]


class _Tokens(Sequence[str]):
    """The chunk's token strings (records separated by the sentinel) built per record.

    From the kernels' token array ``flat``; where the compiled pass built none (``flat``
    None), from the reference tokenizer on the record's text, which gives the same
    tokens for every record the kernels tokenise (that is what makes them safe).
    """

    def __init__(self, flat: Any, flat_off: np.ndarray, rec_off: np.ndarray, total: int,
                 override: dict[int, list[str]], fixed: _Fixed | None = None,
                 texts: Sequence[str] = (), reference: Any = None):
        self.flat, self.flat_off, self.total = flat, flat_off, total
        self.texts, self.reference = texts, reference
        self.starts = rec_off[:-1] + np.arange(len(rec_off) - 1)  # chunk position of each
        self._cache: dict[int, list[str]] = dict(override)
        self._fixed = fixed
        self._fixed_at = {} if fixed is None else {r: i for i, r in enumerate(fixed.rows.tolist())}

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[str]:
        return iter(self._span(0, self.total) if self.total else [])

    def _record(self, r: int) -> list[str]:
        toks = self._cache.get(r)
        if toks is None:
            i = self._fixed_at.get(r)
            if i is not None:
                assert self._fixed is not None
                flat, off, at = self._fixed.flat, self._fixed.flat_off, i
            else:
                flat, off, at = self.flat, self.flat_off, r
            if flat is None:
                toks = self.reference([self.texts[r]])
            else:
                a, b = int(off[at]), int(off[at + 1])
                toks = [t for t in flat[a:b].to_pylist() if t]
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
        r0 = int(np.searchsorted(self.starts, a, "right")) - 1
        r1 = int(np.searchsorted(self.starts, b, "left"))  # records r0 .. r1 - 1
        if r1 - r0 > 8 and self.flat is None and self.texts:  # one conversion of their texts
            todo = [r for r in range(r0, r1) if r not in self._cache]
            for r, text in zip(todo, self.texts.many(np.array(todo, dtype=np.int64))  # type: ignore[attr-defined]
                               if todo else [], strict=True):
                self._cache[r] = self.reference([text])
        if r1 - r0 > 8 and self.flat is not None:  # many records: one conversion of their tokens
            lo, hi = int(self.flat_off[r0]), int(self.flat_off[r1])
            strings = self.flat[lo:hi].to_pylist()
            for r in range(r0, r1):
                if r not in self._cache and r not in self._fixed_at:
                    a_r, b_r = int(self.flat_off[r]) - lo, int(self.flat_off[r + 1]) - lo
                    self._cache[r] = [t for t in strings[a_r:b_r] if t]
        out: list[str] = []
        last = len(self.starts) - 1
        for r in range(r0, r1):
            out.extend(self._record(r))
            if r < last:
                out.append(SENTINEL)
        base = int(self.starts[r0])
        return out[a - base:b - base]


def arrow_encoder(index: EvalIndex, shard: Shard,
                  fields: Sequence[str] | None) -> ArrowEncoder | None:
    """An encoder for ``shard`` when the fast path applies to it, else None."""
    tok = index.tokenizer
    if not isinstance(tok, WhitespaceTokenizer) or tok.normalizer.strip_punctuation:
        return None
    if shard.fmt == "jsonl" and not fields:
        return None
    mods = _pyarrow(shard.fmt)
    return None if mods is None else ArrowEncoder(index, shard, fields, mods)

