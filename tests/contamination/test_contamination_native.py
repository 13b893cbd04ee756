"""The compiled passes (``_scan.pyx``) against pyarrow's validation and ``str.split``.

The scans through them are compared with the reference in test_contamination_fastpath.py
and test_contamination_unicode.py (each test there runs with and without them); these
tests pin the two passes down on their own: UTF-8 validation byte for byte as pyarrow's
``validate(full=True)``, the unsafe-character flags per record, and tokens split and
looked up as ``str.split()`` and a dict give them, over null slots and sliced arrays.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmeval.contamination import EvalCase, EvalIndex, Normalizer, make_tokenizer, native

pa = pytest.importorskip("pyarrow")

if not native.built():
    if os.environ.get("CI"):
        pytest.fail("the compiled scanner (_scan.pyx) is required in CI", pytrace=False)
    pytest.skip("the compiled scanner is not built", allow_module_level=True)


def _binary_as_string(values: list[bytes | None]) -> object:
    """A string array holding exactly these bytes (valid UTF-8 or not), nulls as None."""
    return pa.array(values, pa.binary()).view(pa.string())


def _pyarrow_valid(arr: object) -> bool:
    try:
        arr.validate(full=True)  # type: ignore[attr-defined]
    except pa.ArrowInvalid:
        return False
    return True


TRICKY = [b"", b"a", b"\x7f", b"\x80", b"\xbf", b"\xc0\xaf", b"\xc1\xbf", b"\xc2\x80",
          b"\xdf\xbf", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xe0\xa0\x80", b"\xed\x9f\xbf",
          b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xee\x80\x80", b"\xef\xbf\xbf",
          b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf", b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf",
          b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xff", b"\xfe",
          b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3\xa9", b"\xe2\x82\xac",
          b"\xf0\x9f\x98\x80", b"\xc3\x28", b"\xe2\x28\xa1", b"\xf0\x28\x8c\xbc"]


@pytest.mark.parametrize("prefix", [b"", b"ok ", b"\xc3\xa9"])
@pytest.mark.parametrize("piece", TRICKY)
def test_validation_agrees_with_pyarrow_on_every_edge_of_utf8(piece: bytes, prefix: bytes) -> None:
    arr = _binary_as_string([b"x", prefix + piece + b" y", None])
    got = native.unsafe_records(arr, 1, np.zeros(0x110000, dtype=np.uint8))
    assert (got is not None) == _pyarrow_valid(arr)
    try:
        (prefix + piece).decode("utf-8")
        python_ok = True
    except UnicodeDecodeError:
        python_ok = False
    assert (got is not None) == python_ok


def test_a_character_cut_between_two_slots_is_not_valid() -> None:
    """Two slots of one record, each holding half of "é": each slot is invalid, though
    the record's bytes side by side would decode."""
    arr = _binary_as_string([b"a \xc3", b"\xa9 b"])
    assert not _pyarrow_valid(arr)
    assert native.unsafe_records(arr, 2, np.zeros(0x110000, dtype=np.uint8)) is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=12) | st.none(), min_size=1, max_size=12))
def test_generated_bytes_are_judged_like_pyarrow(values: list[bytes | None]) -> None:
    arr = _binary_as_string(values)
    got = native.unsafe_records(arr, 1, np.zeros(0x110000, dtype=np.uint8))
    assert (got is not None) == _pyarrow_valid(arr)


def test_unsafe_flags_mark_records_holding_a_marked_code_point() -> None:
    unsafe = np.zeros(0x110000, dtype=np.uint8)
    for c in ("\u03a3", "\u00a0", "\x1c", "\U0001f600"):
        unsafe[ord(c)] = 1
    texts = ["plain", "ΟΔΟΣ x", "a\u00a0b", "x\x1cy", "smile \U0001f600", "σ ς", None, "é"]
    # two slots per record: the second slot of record r is texts[-1 - r]
    slots = [t for pair in zip(texts, reversed(texts), strict=True) for t in pair]
    arr = pa.array(slots, pa.string())
    got = native.unsafe_records(arr, 2, unsafe)
    marked = [t is not None and any(unsafe[ord(c)] for c in t) for t in slots]
    expected = [marked[2 * r] or marked[2 * r + 1] for r in range(len(texts))]
    assert got is not None and got.tolist() == expected
    # a null slot's bytes are not read, even where the array keeps bytes behind the null
    hidden = pa.StringArray.from_buffers(
        2, pa.py_buffer(np.array([0, 2, 3], dtype=np.int32).tobytes()),
        pa.py_buffer("Σ".encode() + b"a"), pa.py_buffer(np.packbits([0, 1], bitorder="little")))
    assert native.unsafe_records(hidden, 1, unsafe).tolist() == [False, False]


def _index(words: list[str], lowercase: bool = True) -> EvalIndex:
    return EvalIndex([EvalCase("v", " ".join(words))], make_tokenizer(None, Normalizer(
        lowercase=lowercase)), 2)


ASCII_SPACES = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"
# short and long tokens (one word of 8 bytes, several, and past the 32 words kept for the
# compare), in and out of the vocabulary, some differing from an entry in one byte only
WORDS = ["Word", "word", "WORD", "x", "é", "Straße", "中文", "a1", "", "zz", "\x01z",
         "Internationalization", "internationalizatioN", "internationalisation",
         "abcdefgh", "abcdefgH", "abcdefg", "abcdefghi", "Über-lang-wörter", "x" * 300,
         "X" * 299 + "y", "x" * 299 + "Y", "x" * 301]
VOCAB = ["word", "x", "é", "straße", "Straße", "中文", "zz", "WORD", "\x01z",
         "internationalization", "abcdefgh", "abcdefghi", "über-lang-wörter", "x" * 300,
         "x" * 299 + "y"]


def _reference_keys(index: EvalIndex, texts: list[str | None], width: int, lowercase: bool,
                    skip: list[bool]) -> tuple[list[int], list[int]]:
    keys: list[int] = []
    counts: list[int] = []
    for r in range(len(texts) // width):
        if skip[r]:
            counts.append(0)
            continue
        toks = [t for s in texts[r * width:(r + 1) * width] if s is not None
                for t in (s.lower() if lowercase else s).split()]
        keys += [index.vocab.get(t, 0) for t in toks]
        counts.append(len(toks))
    return keys, counts


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.sampled_from(WORDS) |
                         st.text(alphabet=ASCII_SPACES, min_size=1, max_size=3),
                         max_size=10), min_size=1, max_size=16),
       st.sampled_from([1, 2]), st.booleans(), st.integers(0, 3), st.randoms())
def test_tokens_and_keys_are_str_split_and_the_vocab(pieces: list[list[str]], width: int,
                                                     lowercase: bool, start: int,
                                                     rng: random.Random) -> None:
    texts: list[str | None] = ["".join(p) if rng.random() > 0.1 else None for p in pieces]
    texts += [None] * (-len(texts) % width)
    index = _index(VOCAB, lowercase)
    table = native.vocab_table(index)
    arr = pa.array(["pad"] * start + texts, pa.string()).slice(start)  # offset != 0
    n_rec = len(texts) // width
    skip = [rng.random() < 0.2 for _ in range(n_rec)]
    # ASCII letters lower-cased by the pass itself only on ASCII text, as the scanner does
    ascii_text = all(t is None or t.isascii() for t in texts)
    lower_ascii = lowercase and ascii_text
    if lowercase and not lower_ascii:
        arr = pa.array([None if t is None else t.lower() for t in texts], pa.string())
    ids, counts = native.token_ids(arr, width, np.array(skip), lower_ascii, table)
    keys, ref_counts = _reference_keys(index, texts, width, lowercase, skip)
    assert ids.dtype == np.uint64 and ids.tolist() == keys
    assert counts.tolist() == ref_counts
    # with separators: key 1 after every record but the last, skipped records too
    ids, counts = native.token_ids(arr, width, np.array(skip), lower_ascii, table, separate=True)
    chunk: list[int] = []
    at = 0
    for r, c in enumerate(ref_counts):
        if r:
            chunk.append(1)
        chunk += keys[at:at + c]
        at += c
    assert ids.tolist() == chunk and counts.tolist() == ref_counts


def test_one_letter_tokens_fill_the_output_to_its_bound() -> None:
    """One-letter tokens between single spaces: the most tokens the bytes can hold, for
    which the output is sized."""
    index = _index(["a", "b"])
    text = " ".join(random.Random(0).choice("abc") for _ in range(100_000))
    for texts in ([text], [text, "a", "b"], [text[:-1], "", "c"]):
        ids, counts = native.token_ids(pa.array(texts, pa.string()), 1, None, True,
                                       native.vocab_table(index), separate=True)
        assert counts.tolist() == [len(t.split()) for t in texts]
        want = " \x00 ".join(texts).split()
        assert ids.tolist() == [1 if t == "\x00" else index.vocab.get(t, 0) for t in want]


def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMEVAL_NATIVE", "0")
    assert native.built() and not native.available()
    monkeypatch.setenv("LLMEVAL_NATIVE", "1")
    assert native.available()


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"{", b"}", b"]", b",", b" ", b"\n", b"\t", b"\x01", b"a",
                                 b"\xc3\xa9", b'"', b"}   ,", b"} x", b"{}\n", b"aaaaaaaaaaaa"]),
                max_size=40))
def test_jsonl_lines_are_those_of_the_numpy_check(pieces: list[bytes]) -> None:
    from pytest_llmeval.contamination.fastpath import jsonl_records

    data = b"".join(pieces)
    got, want = native.jsonl_lines(data), jsonl_records(data)
    assert (got is None) == (want is None), data
    if got is not None and want is not None:
        assert got[0].tolist() == want[0].tolist() and got[1] == want[1], data


def test_jsonl_lines_of_a_long_clean_block() -> None:
    from pytest_llmeval.contamination.fastpath import jsonl_records

    rng = random.Random(3)
    data = b"".join(b'{"instruction": "' + bytes(rng.choice(b"abc xyz") for _ in range(rng.randint(0, 90)))
                    + b'", "output": "x"}\n' if rng.random() > 0.1 else b"\n" for _ in range(3000))
    got, want = native.jsonl_lines(data), jsonl_records(data)
    assert got is not None and want is not None
    assert got[0].tolist() == want[0].tolist() and got[1] == want[1] == 3000


def test_a_vocabulary_token_that_is_not_utf8_is_left_out() -> None:
    """An eval case may hold a lone surrogate (Python text); no valid text holds one."""
    index = _index(["ok", "\ud800x", "fine"])
    table = native.vocab_table(index)
    assert len(table.keys) == 2 and len(table.offsets) == 3
    ids, counts = native.token_ids(pa.array(["ok fine nope"], pa.string()), 1, None, True, table)
    assert ids.tolist() == [index.vocab["ok"], index.vocab["fine"], 0]
