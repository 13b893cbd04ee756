"""The compiled passes of the fast path (``_scan.pyx``), when the optional module is built.

pyarrow's kernels take five passes over a block after parsing it: UTF-8 validation, an
RE2 match for unsafe characters, lower-casing, splitting and a hash look-up of every
token (``index_in``, which also builds the vocabulary's hash set on every call). The
compiled module does validation and the unsafe-character test in one pass, and
splitting and the look-up in another (with ASCII lower-casing folded in), against a
table of the vocabulary built once per eval index. Lower-casing non-ASCII text stays
with ``utf8_lower``, so the unsafe-character table (``CharTable``, built by comparing
the kernels with the reference) still says where the two could differ.

The string-array buffer readers (``offsets_of``, ``values_of``) live here too: the
passes read arrow's buffers directly, and the kernels' path reads them the same way.

``LLMEVAL_NATIVE=0`` switches the module off (the kernels alone are then used, as
where it could not be built); ``available()`` says whether it is in use.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_llmeval.contamination.index import EvalIndex

try:
    from pytest_llmeval.contamination import _scan  # type: ignore[attr-defined]
except ImportError:  # not built: no C compiler where the package was installed
    _scan = None

_OFF = ("0", "off", "false", "no")


def built() -> bool:
    """Whether the compiled module was built and imports."""
    return _scan is not None


def available() -> bool:
    """Whether the compiled passes are in use: built, and not switched off with
    ``LLMEVAL_NATIVE=0``."""
    return _scan is not None and os.environ.get("LLMEVAL_NATIVE", "1").strip().lower() not in _OFF


@dataclass(frozen=True)
class VocabTable:
    """The eval vocabulary as UTF-8 bytes with offsets, its keys, and a hash table of it
    (``_scan.build_table``)."""

    table: np.ndarray
    offsets: np.ndarray
    data: np.ndarray
    keys: np.ndarray


_TABLES: weakref.WeakKeyDictionary[EvalIndex, VocabTable] = weakref.WeakKeyDictionary()


def vocab_table(index: EvalIndex) -> VocabTable:
    """The (cached) table of ``index``'s vocabulary. Tokens that are not valid UTF-8 (a
    lone surrogate) cannot occur in valid text and are left out, as from the kernels'."""
    cached = _TABLES.get(index)
    if cached is None:
        tokens = index.vocab_tokens
        keys = np.ascontiguousarray(index.vocab_keys, dtype=np.uint64)
        found = _utf8_joined(tokens)
        if found is None:  # a token that is not UTF-8, or holds NUL: one by one
            encoded: list[bytes] = []
            keep: list[int] = []
            for i, token in enumerate(tokens):
                try:
                    encoded.append(token.encode("utf-8"))
                except UnicodeEncodeError:
                    continue
                keep.append(i)
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
            offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
            np.cumsum(lengths, out=offsets[1:])
            data = np.frombuffer(b"".join(encoded), dtype=np.uint8)
            if len(keep) != len(keys):
                keys = keys[np.array(keep, dtype=np.int64)]
        else:
            data, offsets = found
        # 8 bytes of padding: the compare reads entries eight bytes at a time
        data = np.concatenate([data, np.zeros(8, dtype=np.uint8)])
        assert _scan is not None
        cached = VocabTable(_scan.build_table(offsets, data), offsets, data, keys)
        _TABLES[index] = cached
    return cached


def _utf8_joined(tokens: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
    """The tokens' UTF-8 bytes end to end and their offsets, from one encode of the tokens
    joined by NUL; None when one is not UTF-8 or holds a NUL itself."""
    try:
        blob = "\x00".join(tokens).encode("utf-8")
    except UnicodeEncodeError:
        return None
    raw = np.frombuffer(blob, dtype=np.uint8)
    seps = np.flatnonzero(raw == 0)
    if len(seps) != max(len(tokens) - 1, 0):
        return None
    offsets = np.empty(len(tokens) + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:-1] = seps - np.arange(len(seps))
    offsets[-1] = len(raw) - len(seps)
    return raw[raw != 0], offsets


def offsets_of(arr: Any) -> np.ndarray:
    """The value offsets of a string array (``len + 1`` of them), read from its buffer."""
    dtype = np.int64 if arr.type == "large_string" else np.int32
    if not len(arr):
        return np.zeros(1, dtype=dtype)
    off = np.frombuffer(arr.buffers()[1], dtype=dtype)
    return off[arr.offset:arr.offset + len(arr) + 1]


def values_of(arr: Any, off: np.ndarray) -> np.ndarray:
    """The bytes of a string array's values, ``off`` being its :func:`offsets_of`."""
    buf = arr.buffers()[2]
    first, last = int(off[0]), int(off[-1])
    if buf is None or last <= first:
        return np.empty(0, dtype=np.uint8)
    return np.frombuffer(buf, dtype=np.uint8)[first:last]


def slots_of(arr: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A string array's bytes, its offsets from 0 (int64), and its validity (one byte per
    slot; empty when every slot is valid)."""
    n = len(arr)
    off = offsets_of(arr)
    values = values_of(arr, off)
    first = int(off[0])
    offsets = off.astype(np.int64)
    if first:
        offsets -= first
    if not arr.null_count:
        return values, offsets, np.empty(0, dtype=np.uint8)
    bits = np.frombuffer(arr.buffers()[0], dtype=np.uint8)
    valid = np.unpackbits(bits, bitorder="little", count=arr.offset + n)[arr.offset:]
    return values, offsets, np.ascontiguousarray(valid, dtype=np.uint8)


def unsafe_records(arr: Any, width: int, unsafe: np.ndarray) -> np.ndarray | None:
    """Per record of ``width`` slots, whether it holds a code point marked in ``unsafe``
    (``0x110000`` bytes); None when a slot is not valid UTF-8."""
    assert _scan is not None
    values, offsets, valid = slots_of(arr)
    flags = _scan.check_records(values, offsets, width, valid, unsafe)
    return None if flags is None else flags.view(bool)


def token_ids(arr: Any, width: int, skip: np.ndarray | None, lower_ascii: bool,
              vocab: VocabTable, separate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The keys of the tokens of every record not in ``skip``, and each record's token
    count (0 for the skipped ones). ``arr`` is normalised already, but for ASCII letters
    when ``lower_ascii``. ``separate``: the separator's key (1) follows every record but
    the last, as in a scanned chunk."""
    assert _scan is not None
    values, offsets, valid = slots_of(arr)
    flags = np.empty(0, dtype=np.uint8) if skip is None \
        else np.ascontiguousarray(skip, dtype=bool).view(np.uint8)
    result: tuple[np.ndarray, np.ndarray] = _scan.tokenize(
        values, offsets, width, valid, flags, lower_ascii, vocab.table, vocab.offsets,
        vocab.data, vocab.keys, separate)
    return result


def jsonl_lines(data: bytes) -> tuple[np.ndarray, int] | None:
    """The 0-based lines of a JSONL block's records (lines starting with ``{``) and its
    number of lines; None when the block does not qualify (``_scan.jsonl_lines``)."""
    assert _scan is not None
    found: tuple[np.ndarray, int] | None = _scan.jsonl_lines(data)
    return found
