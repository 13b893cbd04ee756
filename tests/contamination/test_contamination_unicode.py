"""The fast path tokenises hostile Unicode exactly as the reference, ``normalizer(text).split()``.

Final sigma, the dotted capital I, ligatures, combining marks, every character
``str.split`` splits on, letters newer than Python's Unicode tables and mixed scripts,
in JSONL (raw and ``\\u``-escaped), text and parquet blocks, compared record by record
with the Python reader and ``WhitespaceTokenizer.tokens_chunk``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_llmeval.contamination import (
    EvalCase,
    EvalIndex,
    Normalizer,
    ScanOptions,
    fastpath,
    make_tokenizer,
    scan,
    scanner,
)
from pytest_llmeval.contamination.normalize import WhitespaceTokenizer
from pytest_llmeval.contamination.readers import Shard, _parquet_blocks, parse_block
from pytest_llmeval.contamination.scanner import _python_encode

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

FIELDS = ("instruction", "output")
# str.split's whitespace, spelled out: the set the reference splits on.
LISTED_WHITESPACE = (
    [chr(c) for c in (*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680)]
    + [chr(c) for c in range(0x2000, 0x200B)]
    + ["\u2028", "\u2029", "\u202f", "\u205f", "\u3000"])
SPLIT_WHITESPACE = [chr(c) for c in range(0x110000) if chr(c).isspace()]
HOSTILE = [
    "Σ", "ς", "σ", "ΣΑΣ", "ὈΔΥΣΣΕΎΣ", "ΌΣΟΣ", "ΑΣ.", "İ", "İstanbul", "I", "ı", "ǅ", "Ǆ",
    "ﬁ", "ﬂ", "ﬀ", "ﬃ", "ß", "ẞ", "e\u0301", "\u0301", "a\u0308\u0323", "\u0345", "ΐ",
    "K", "Ω", "Å", "\U00010400", "\ua7cb", "\U00010d50", "\u1c89", "ǰ", "Ⅻ", "ⓐ", "Ａ",
    "Привет", "МИР", "Ελληνικά", "中文字符", "العربية", "हिन्दी", "😀", "👩‍💻", "\x00",
    "a\x00b", "\ufeff", "\ufffd", "Straße", "İI", "ΣΣ", "word", "Word", "WORD", "x.y", '"q"',
]
NORMALIZERS = [Normalizer(), Normalizer(lowercase=False), Normalizer(nfkc=True)]
MEM = {"jsonl": Shard(0, "mem.jsonl", "jsonl", "gz", 0, 0, 0),
       "text": Shard(0, "mem.txt", "text", "gz", 0, 0, 0)}


def hostile_text(rng: random.Random, k: int) -> str:
    """Words from HOSTILE and plain ones, joined by any of str.split's whitespace."""
    out = []
    for _ in range(k):
        out.append(rng.choice(HOSTILE) if rng.random() < 0.6 else f"w{rng.randint(0, 50)}")
        out.append(rng.choice(SPLIT_WHITESPACE) if rng.random() < 0.4 else " ")
    return "".join(out[:-1])


def _index(words: list[str], normalizer: Normalizer, n: int = 2) -> EvalIndex:
    return EvalIndex([EvalCase("v", " ".join(words) or "x")], make_tokenizer(None, normalizer), n)


def _assert_same(fast: Any, py: Any) -> None:
    assert fast is not None, "the fast path did not take the block"
    assert list(fast.lines) == list(py.lines)
    assert (fast.nbytes, fast.n_lines) == (py.nbytes, py.n_lines)
    assert list(fast.texts) == list(py.texts)
    assert list(fast.toks) == list(py.toks)
    assert fast.ids.dtype == py.ids.dtype and np.array_equal(fast.ids, py.ids)


def _encode_both(fmt: str, data: bytes, normalizer: Normalizer, rng: random.Random,
                 fields: tuple[str, ...] = FIELDS, spy: Any = None,
                 fast_calls: list[int] | None = None) -> tuple[Any, Any]:
    """The fast encoding of a raw block, and the Python reader's plus the reference's.
    ``spy`` is called before the fast encoding and returns a list that it fills; what it
    holds when the fast encoding ends is copied to ``fast_calls``."""
    shard = MEM[fmt]
    py_block = parse_block(shard, fields, 0, data, 4)
    words = sorted(set(" ".join(py_block.texts).split()))
    index = _index(rng.sample(words, min(len(words) // 2, 2000)) + ["İ", "σας"], normalizer)
    encoder = fastpath.arrow_encoder(index, shard, fields)
    assert encoder is not None
    encoder.table.pattern()  # built before any spy is installed
    seen = spy() if spy is not None else None
    fast = encoder.encode(data, 4)
    if seen is not None and fast_calls is not None:
        fast_calls.extend(seen)
    return fast, _python_encode(index, py_block)


def _check(fmt: str, data: bytes, normalizer: Normalizer, rng: random.Random,
           fields: tuple[str, ...] = FIELDS) -> None:
    _assert_same(*_encode_both(fmt, data, normalizer, rng, fields))


@pytest.fixture(autouse=True, scope="module")
def _kernels_for_every_block(scan_passes: str) -> Any:
    """These tests compare the kernels with the reference on blocks full of hostile text,
    which a scan hands whole to the Python path (``REFERENCE_SHARE``): here the kernels
    take every block. ``test_blocks_mostly_for_the_reference_go_to_the_python_path``
    checks the hand-over."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(fastpath, "REFERENCE_SHARE", 1.0)
        yield


def _count_reference_records(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Texts handed to the reference tokenizer (per call), to show the fallback is per record."""
    calls: list[int] = []
    real = WhitespaceTokenizer.tokens_chunk

    def spy(self: WhitespaceTokenizer, texts: list[str]) -> list[str]:
        calls.append(len(texts))
        return real(self, texts)

    monkeypatch.setattr(WhitespaceTokenizer, "tokens_chunk", spy)
    return calls


def test_listed_whitespace_is_what_str_split_splits_on() -> None:
    assert sorted(LISTED_WHITESPACE) == SPLIT_WHITESPACE


@pytest.mark.parametrize("normalizer", NORMALIZERS, ids=["lower", "keep-case", "nfkc"])
@pytest.mark.parametrize("fmt, ensure_ascii", [("text", False), ("jsonl", False),
                                               ("jsonl", True)])
def test_hostile_blocks_encode_like_the_reference(monkeypatch: pytest.MonkeyPatch, fmt: str,
                                                  ensure_ascii: bool,
                                                  normalizer: Normalizer) -> None:
    rng = random.Random(f"{fmt}{ensure_ascii}{normalizer}")
    plain = [f"w{i} Word Straße Привет 中文字符" for i in range(200)]
    texts = [hostile_text(rng, rng.randint(0, 30)) for _ in range(300)] + plain
    rng.shuffle(texts)
    if fmt == "text":
        data = "\n".join(t.replace("\n", " ").replace("\r", " ") for t in texts).encode()
    else:
        data = "".join(json.dumps({"instruction": t[:9], "output": t[9:]},
                                  ensure_ascii=ensure_ascii) + "\n" for t in texts).encode()
    calls: list[int] = []
    fast, py = _encode_both(fmt, data, normalizer, rng,
                            spy=lambda: _count_reference_records(monkeypatch), fast_calls=calls)
    _assert_same(fast, py)
    assert set(calls) <= {1}, "the fast path falls back record by record"
    # the 200 plain records need no fallback, except under NFKC (non-ASCII letters);
    # Unicode whitespace and the dotted capital I are replaced and stay with the kernels,
    # the capital sigma (and letters whose case differs between Unicode versions) not
    if normalizer.nfkc:
        assert 0 < len(calls) <= 500
    elif normalizer.lowercase:
        sigma = sum("Σ" in t or "\ua7cb" in t or "\U00010d50" in t or "\u1c89" in t
                    for t in texts)
        assert 0 < len(calls) == sigma < 300
    else:
        assert calls == []


@pytest.mark.parametrize(("least", "whole"), [(0.0, 0.0), (0.0, 1.0), (1.1, 1.0)],
                         ids=["fixes-on-the-block", "fixes-apart", "too-few-to-fix"])
@pytest.mark.parametrize("normalizer", NORMALIZERS[:2], ids=["lower", "keep-case"])
def test_unicode_spaces_and_dotted_i_stay_with_the_kernels(
        monkeypatch: pytest.MonkeyPatch, least: float, whole: float,
        normalizer: Normalizer) -> None:
    """Records whose only unsafe characters have a fixed replacement (whitespace that only
    str.split splits on -> a space, İ -> its Python lower case) are tokenised by the
    kernels, whether the replacement runs over the block or over those records alone;
    below FIX_MIN_SHARE of the records, the reference takes them."""
    monkeypatch.setattr(fastpath, "FIX_WHOLE_SHARE", whole)
    monkeypatch.setattr(fastpath, "FIX_MIN_SHARE", least)
    rng = random.Random(f"fix{whole}{normalizer}")
    fixable = [c for c in SPLIT_WHITESPACE if c not in "\t\n\x0b\x0c\r "] + ["İ", "İstanbul", "\x00"]
    texts = [" ".join(rng.choice(fixable + ["Word", "Straße", "Привет", "w1", "ﬁ"])
                      for _ in range(rng.randint(0, 12))) for _ in range(300)]
    texts += ["plain w2 Word"] * 50 + ["ΟΔΟΣ w3"] * 10  # and a few for the reference
    rng.shuffle(texts)
    data = "".join(json.dumps({"instruction": t[:7], "output": t[7:]}) + "\n" for t in texts)
    calls: list[int] = []
    fast, py = _encode_both("jsonl", data.encode(), normalizer, rng,
                            spy=lambda: _count_reference_records(monkeypatch), fast_calls=calls)
    _assert_same(fast, py)
    if least > 1:  # every record with an unsafe character goes to the reference
        chars = {c for c in fixable if len(c) == 1 and c != "İ"} | (
            {"İ", "Σ"} if normalizer.lowercase else set())  # without lower-casing both agree
        unsafe = sum(any(c in t for c in chars) for t in texts)
        assert len(calls) == unsafe > 200
    else:
        assert len(calls) == (10 if normalizer.lowercase else 0)  # only the sigma records


def test_blocks_mostly_for_the_reference_go_to_the_python_path(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """When more than REFERENCE_SHARE of a block's records hold a character only the
    reference tokenises right (the capital sigma), the whole block takes the Python path,
    which is faster than the kernels plus the reference; results are the same."""
    monkeypatch.setattr(fastpath, "REFERENCE_SHARE", 0.35)
    rng = random.Random(7)
    greek = [f"ΟΔΟΣ w{rng.randint(0, 9)} ΣΑΣ Word" for _ in range(60)]
    latin = [f"plain w{rng.randint(0, 9)} Word\u00a0x" for _ in range(40)]
    for records, fast_expected in ((greek + latin, False), (greek[:20] + latin, True)):
        data = "".join(json.dumps({"instruction": t, "output": "more words"}) + "\n"
                       for t in records).encode()
        fast, py = _encode_both("jsonl", data, Normalizer(), rng)
        if fast_expected:
            _assert_same(fast, py)
        else:
            assert fast is None
    # after a hand-over, the next SKIP_AFTER_HANDOVER blocks of the scan go there directly
    index = _index(["plain", "word"], Normalizer())
    encoder = fastpath.arrow_encoder(index, MEM["jsonl"], FIELDS)
    assert encoder is not None
    greek_block = "".join(json.dumps({"instruction": t}) + "\n" for t in greek).encode()
    plain_block = "".join(json.dumps({"instruction": t}) + "\n" for t in latin).encode()
    assert encoder.encode(greek_block, 0) is None
    taken = [encoder.encode(plain_block, 0) is not None
             for _ in range(fastpath.SKIP_AFTER_HANDOVER + 1)]
    assert taken == [False] * fastpath.SKIP_AFTER_HANDOVER + [True]

    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"instruction": t, "output": "x"}) + "\n"
                            for t in greek + latin), encoding="utf-8")
    cases = [EvalCase("g", greek[0] + " " + greek[1]), EvalCase("l", latin[0])]

    def report() -> dict[str, Any]:
        index = EvalIndex(cases, make_tokenizer(None, Normalizer()), 3)
        out = scan(index, [path], ScanOptions(train_fields=FIELDS), workers=1,
                   progress=False).to_dict()
        out.pop("seconds")
        return out

    fast_report = report()
    with monkeypatch.context() as m:
        _no_fast_path(m)
        assert report() == fast_report
    assert fast_report["n_contaminated"] == 2


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.lists(st.sampled_from(HOSTILE + SPLIT_WHITESPACE + list("aZ{}\"\\")),
                               max_size=12).map("".join), min_size=1, max_size=8),
       fmt=st.sampled_from(["text", "jsonl"]), ensure_ascii=st.booleans(),
       normalizer=st.sampled_from(NORMALIZERS), pick=st.randoms(use_true_random=False))
def test_generated_blocks_encode_like_the_reference(texts: list[str], fmt: str,
                                                   ensure_ascii: bool, normalizer: Normalizer,
                                                   pick: random.Random) -> None:
    if fmt == "text":
        data = "\n".join(t.replace("\n", "\u2028").replace("\r", "\x0b") for t in texts)
    else:
        data = "\n".join(json.dumps({"output": t, "instruction": t[::-1]},
                                    ensure_ascii=ensure_ascii) for t in texts) + "\n"
    fast, py = _encode_both(fmt, data.encode(), normalizer, pick)
    if fast is None:  # text such as '}x' inside a string looks like a second JSON value
        assert fmt == "jsonl" and fastpath._SECOND_VALUE.search(data.encode())
    else:
        _assert_same(fast, py)


def _write_parquet(path: Path, rows: list[dict[str, Any]], row_group_size: int = 64) -> Path:
    pq.write_table(pa.table({"instruction": [r["instruction"] for r in rows],
                             "output": [r["output"] for r in rows],
                             "n": list(range(len(rows)))}), path,
                   row_group_size=row_group_size)
    return path


@pytest.mark.parametrize("fields", [FIELDS, ("output",), None])
def test_parquet_batches_encode_like_the_reference(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path, fields: Any) -> None:
    rng = random.Random(7)
    rows = [{"instruction": hostile_text(rng, 5) if i % 5 else None,
             "output": hostile_text(rng, rng.randint(0, 20))} for i in range(300)]
    path = _write_parquet(tmp_path / "t.parquet", rows, row_group_size=300)
    shard = Shard(0, str(path), "parquet", None, 0, 1, path.stat().st_size)
    (py_block,) = _parquet_blocks(shard, fields)
    index = _index(sorted(set(" ".join(py_block.texts).split()))[::2], Normalizer())
    encoder = fastpath.arrow_encoder(index, shard, fields)
    assert encoder is not None
    monkeypatch.setattr(fastpath, "PARQUET_BATCH_ROWS", 300)  # one batch, as the Python block
    batches = list(encoder.parquet_blocks() or [])
    assert len(batches) == 1
    _assert_same(batches[0], _python_encode(index, py_block))


def _no_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scanner, "arrow_encoder", lambda *args: None)


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl-escaped", "text", "parquet"])
def test_scan_of_a_hostile_corpus_matches_the_python_path(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path, fmt: str) -> None:
    rng = random.Random(fmt)
    evals = [{"id": f"e{i}", "instruction": hostile_text(rng, 12),
              "output": hostile_text(rng, 12)} for i in range(30)]
    train = [{"instruction": hostile_text(rng, rng.randint(0, 10)),
              "output": hostile_text(rng, rng.randint(0, 40))} for _ in range(3000)]
    for i in range(0, 3000, 150):  # plant eval text, in upper case half of the time
        ev = evals[i // 150]
        piece = (ev["instruction"] + " " + ev["output"])[:120]
        train[i]["output"] += " " + (piece.upper() if i % 300 else piece)
    if fmt == "text":
        path = tmp_path / "train.txt"
        path.write_text("".join(" ".join((r["instruction"] + " " + r["output"]).splitlines())
                                + "\n" for r in train), encoding="utf-8")
    elif fmt == "parquet":
        path = _write_parquet(tmp_path / "train.parquet", train, row_group_size=1000)
    else:
        path = tmp_path / "train.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=fmt.endswith("escaped")) + "\n"
                                for r in train), encoding="utf-8")
    cases = [EvalCase(e["id"], e["instruction"] + " " + e["output"]) for e in evals]

    def report() -> dict[str, Any]:
        index = EvalIndex(cases, make_tokenizer(None, Normalizer()), 6)
        out = scan(index, [path], ScanOptions(train_fields=FIELDS), workers=1,
                   shard_bytes=1 << 18, progress=False).to_dict()
        out.pop("seconds")
        return out

    used: list[bool] = []
    real = fastpath.ArrowEncoder._encode_slots

    def spy(self: fastpath.ArrowEncoder, *args: Any, **kwargs: Any) -> Any:
        out = real(self, *args, **kwargs)
        used.append(out is not None)
        return out

    with monkeypatch.context() as m:
        m.setattr(fastpath.ArrowEncoder, "_encode_slots", spy)
        fast = report()
    with monkeypatch.context() as m:
        _no_fast_path(m)
        slow = report()
    assert used and all(used)
    assert fast == slow
    assert fast["n_contaminated"] >= 10


@pytest.mark.slow
@pytest.mark.parametrize("normalizer", NORMALIZERS[:2], ids=["lower", "keep-case"])
def test_every_code_point_encodes_like_the_reference(normalizer: Normalizer) -> None:
    """Each code point, alone and next to letters, as its own text record."""
    rng = random.Random(0)
    cps = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000 and c != 0x0A]
    for start in range(0, len(cps), 1 << 16):
        chars = [chr(c) for c in cps[start:start + (1 << 16)]]
        lines = [f"{c} A{c}b a{c} {c}B x{c}{c}Y Σ{c}" for c in chars]
        _check("text", "\n".join(lines).encode("utf-8"), normalizer, rng)


def _reference_spans(normalizer: Normalizer, text: str) -> list[tuple[str, int, int]]:
    """Each raw whitespace token normalised on its own, with its place in the text."""
    out: list[tuple[str, int, int]] = []
    pos = 0
    clean = text.replace("\x00", " ")
    for raw in clean.split():
        start = clean.find(raw, pos)
        pos = start + len(raw)
        out.extend((tok, start, pos) for tok in normalizer(raw).split())
    return out


@settings(max_examples=300, deadline=None)
@given(words=st.lists(st.sampled_from(HOSTILE + SPLIT_WHITESPACE + ["ab", "Cd"]), max_size=30),
       normalizer=st.sampled_from(NORMALIZERS))
def test_eval_spans_equal_the_token_by_token_reference(words: list[str],
                                                       normalizer: Normalizer) -> None:
    text = "".join(words)
    assert WhitespaceTokenizer(normalizer).spans(text) == _reference_spans(normalizer, text)


def test_lower_case_neither_makes_nor_removes_whitespace() -> None:
    """What the one-pass ``spans`` relies on, checked for every code point."""
    for c in map(chr, range(0x110000)):
        if 0xD800 <= ord(c) < 0xE000:
            continue
        low = c.lower()
        assert low.isspace() if c.isspace() else (low and not any(x.isspace() for x in low)), c


@pytest.mark.parametrize("normalizer", NORMALIZERS, ids=["lower", "keep-case", "nfkc"])
@pytest.mark.parametrize("fmt", ["text", "jsonl"])
@pytest.mark.parametrize("bad", [b"\xff", b"caf\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"],
                         ids=["ff", "truncated", "surrogate", "above-max", "overlong"])
def test_blocks_that_are_not_utf8_are_read_like_the_python_path(fmt: str, normalizer: Normalizer,
                                                                bad: bytes) -> None:
    """Invalid UTF-8 anywhere in a block (also in a record with an unsafe character, or of
    the kinds pyarrow's utf8_lower lets through) leaves the block to the Python reader,
    which decodes with replacement."""
    rng = random.Random(f"{fmt}{normalizer}{bad!r}")
    texts = [f"w{i} Word Straße Привет" for i in range(50)]
    raw = [t.encode() for t in texts]
    raw[7] = b"Stra\xc3\x9fe " + bad + b" more"
    raw[21] = "İstanbul ΣΊΣΥΦΟΣ ".encode() + bad  # with a character the kernels hand back
    if fmt == "text":
        data = b"\n".join(raw) + b"\n"
    else:
        data = b"".join(b'{"instruction": "' + r[:4] + b'", "output": "' + r[4:] + b'"}\n' for r in raw)
    fast, py = _encode_both(fmt, data, normalizer, rng)
    assert fast is None
    assert "\ufffd" in " ".join(py.texts)  # the Python reader replaced the bad bytes
