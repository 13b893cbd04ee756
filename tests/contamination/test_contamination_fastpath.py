"""The pyarrow fast path gives exactly what the Python reader and tokenizer give."""

from __future__ import annotations

import json
import random
import sys
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from contamination_helpers import make_data, write_jsonl
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
)
from pytest_llmeval.contamination import scanner as scanner_module
from pytest_llmeval.contamination.readers import Shard, line_pieces, parse_block, record_text
from pytest_llmeval.contamination.scanner import _python_encode
from pytest_llmeval.errors import SpecError

pa = pytest.importorskip("pyarrow")
pc = pytest.importorskip("pyarrow.compute")

FIELDS = ("instruction", "output")
# No file behind it: a compressed shard reports bad JSON by line without reading the file.
MEM_SHARD = Shard(0, "mem.jsonl", "jsonl", "gz", 0, 0, 0)


@pytest.fixture(autouse=True, scope="module")
def _kernels_for_every_block(scan_passes: str) -> Any:
    """Blocks here are small and often all hostile; a scan would hand them whole to the
    Python path (``REFERENCE_SHARE``, tested in test_contamination_unicode.py)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(fastpath, "REFERENCE_SHARE", 1.0)
        yield


def _hide_pyarrow(m: pytest.MonkeyPatch) -> None:
    """Make ``import pyarrow`` fail, as when the parquet extra is not installed."""
    for name in ("pyarrow", "pyarrow.compute", "pyarrow.json"):
        m.setitem(sys.modules, name, None)


@pytest.fixture
def no_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide_pyarrow(monkeypatch)


def _report(paths: list[Path], cases: list[EvalCase], n: int, fields: tuple[str, ...] | None,
            shard_bytes: int | None = None, normalizer: Normalizer | None = None) -> dict:
    index = EvalIndex(cases, make_tokenizer(None, normalizer or Normalizer()), n)
    report = scan(index, paths, ScanOptions(train_fields=fields), workers=1,
                  shard_bytes=shard_bytes, progress=False).to_dict()
    report.pop("seconds")
    return report


def _both(monkeypatch: pytest.MonkeyPatch, *args: Any, **kwargs: Any) -> tuple[dict, dict]:
    """The report with the fast path, then without pyarrow."""
    fast = _report(*args, **kwargs)
    with monkeypatch.context() as m:
        _hide_pyarrow(m)
        assert fastpath._pyarrow() is None
        slow = _report(*args, **kwargs)
    return fast, slow


def _count_fast_blocks(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Record, per block, whether the fast path encoded it."""
    used: list[bool] = []
    encode = fastpath.ArrowEncoder.encode

    def spy(self: fastpath.ArrowEncoder, data: bytes, line: int) -> Any:
        out = encode(self, data, line)
        used.append(out is not None)
        return out

    monkeypatch.setattr(fastpath.ArrowEncoder, "encode", spy)
    return used


# -- character-level agreement ------------------------------------------------------------

def test_ascii_kernels_agree_with_str_lower_and_split() -> None:
    """Every ASCII character a qualifying block can hold lower-cases and splits alike.

    The characters where they differ (0x1c-0x1f: ``str.split`` splits there, arrow does
    not) and NUL can only come from a ``\\u`` escape, which disqualifies a block.
    """
    differ = []
    for c in map(chr, range(128)):
        for s in (f"A{c}B c", f"{c}x{c}{c}Y{c}", c, f"{c} {c}"):
            got = pc.ascii_split_whitespace(pc.ascii_lower(pa.array([s]))).to_pylist()[0]
            if [t for t in got if t] != s.lower().split():
                differ.append(c)
    assert sorted(set(differ)) == ["\x1c", "\x1d", "\x1e", "\x1f"]


@pytest.mark.parametrize("escape", ["\\u001c", "\\u001f", "\\u0000", "\\u00a0", "\\u00e9",
                                    "\\u0130", "\\u03a3", "\\ud83d\\ude00"])
def test_unicode_escapes_give_the_python_tokens(escape: str) -> None:
    """Escaped characters reach the kernels too; those they treat differently fall back."""
    data = b'{"instruction": "A' + escape.encode() + b'b \\u03a3A\\u03a3 x"}\n'
    assert _check_block(data, FIELDS, Normalizer(), random.Random(0), 3)


def test_lone_surrogate_escapes_go_through_the_python_path() -> None:
    index = EvalIndex([EvalCase("x", "a b")], make_tokenizer(None, Normalizer()), 2)
    encoder = fastpath.arrow_encoder(index, MEM_SHARD, FIELDS)
    assert encoder is not None
    assert encoder.encode(b'{"instruction": "a b"}\n', 0) is not None
    assert encoder.encode(b'{"instruction": "a\\ud800 b"}\n', 0) is None


def test_fast_path_only_where_it_is_exact(tmp_path: Path) -> None:
    cases = [EvalCase("x", "a b")]
    ws = EvalIndex(cases, make_tokenizer(None, Normalizer(nfkc=True)), 2)
    punct = EvalIndex(cases, make_tokenizer(None, Normalizer(strip_punctuation=True)), 2)
    text = Shard(0, "t.txt", "text", None, 0, 0, 0)
    assert fastpath.arrow_encoder(ws, MEM_SHARD, FIELDS) is not None
    assert fastpath.arrow_encoder(ws, MEM_SHARD, None) is None
    assert fastpath.arrow_encoder(ws, text, FIELDS) is not None
    assert fastpath.arrow_encoder(ws, text, None) is not None
    assert fastpath.arrow_encoder(punct, MEM_SHARD, FIELDS) is None
    assert fastpath.arrow_encoder(punct, text, None) is None


# -- block-level equality -----------------------------------------------------------------

_ASCII = st.lists(st.tuples(
    st.sampled_from(["", " ", "  ", "\t", "\n", "\r\n", "\x0c", "\x08"]),
    st.sampled_from(["a", "B", "cat", "CAT", "x.y", "{}", "[1]", "\\", '"q"', "09", "a:b,"]),
), min_size=1, max_size=10).map(lambda parts: "".join(sep + word for sep, word in parts))
_WILD = st.text(st.sampled_from(list("aB {}\"\\") + ["\t", "\x0b", "\x1c", "\x1f", "\x00", "\x85",
                                                      "\u00a0", "\u2003", "ß", "İ", "Σ", "ﬁ",
                                                      "Ａ"]), max_size=25)
_NESTED = st.one_of(st.integers(), st.booleans(), st.lists(_ASCII, max_size=2),
                   st.lists(st.fixed_dictionaries({"role": _ASCII, "content": _ASCII}),
                            max_size=2))
# Clean records qualify for the fast path (string or null fields, anything elsewhere);
# wild ones mostly do not (non-string fields, non-ASCII text, control characters).
_CLEAN = st.fixed_dictionaries({"output": st.one_of(_ASCII, _ASCII, st.none())},
                               optional={"instruction": st.one_of(_ASCII, st.none()),
                                         "other": _NESTED})
_WILD_RECORD = st.dictionaries(st.sampled_from(["instruction", "output", "other"]),
                               st.one_of(_ASCII, st.none(), _WILD, _NESTED))


@st.composite
def _line(draw: st.DrawFn, clean: bool) -> str:
    """A JSONL line: an object or a blank line, or (unless clean) something odd or broken."""
    kinds = ["obj"] * 8 + ["blank"] + ([] if clean else ["spaces", "odd", "broken"])
    kind = draw(st.sampled_from(kinds))
    if kind == "blank":
        return ""
    if kind == "spaces":
        return " " * draw(st.integers(1, 3))
    if kind == "odd":
        return draw(st.sampled_from(['["x"]', '"x"', "5", " {}", '{"output": "a"} {"output": "b"}',
                                    '{"output": "a"}{}', '{"output": "a", "output": "b"}',
                                    '{"output": "\\ud800 a"}', '{"other": NaN, "output": "a b"}']))
    line = json.dumps(draw(_CLEAN if clean else _WILD_RECORD), ensure_ascii=draw(st.booleans()),
                      separators=draw(st.sampled_from([(", ", ": "), (",", ":")])))
    if kind == "broken":
        cut = draw(st.integers(0, len(line)))
        return line[:cut] + draw(st.sampled_from(["", ",", "}", "x", " null"]))
    return line


_BLOCKS = st.one_of(st.lists(_line(clean=True), min_size=2, max_size=12),
                    st.lists(_line(clean=False), max_size=12))


def _check_block(data: bytes, fields: tuple[str, ...], normalizer: Normalizer,
                 pick: random.Random, first_line: int) -> bool:
    """Assert the fast encoding of ``data`` equals the Python one; True if it was used."""
    try:
        block = parse_block(MEM_SHARD, fields, 0, data, first_line)
    except SpecError:
        block = None
    words = sorted(set(" ".join(block.texts).split())) if block else []
    vocab_text = " ".join(pick.sample(words, len(words) // 2)) + " b İ"
    index = EvalIndex([EvalCase("v", vocab_text)], make_tokenizer(None, normalizer), 2)
    encoder = fastpath.arrow_encoder(index, MEM_SHARD, fields)
    assert encoder is not None
    fast = encoder.encode(data, first_line)
    if block is None:
        assert fast is None, "the fast path accepted what json.loads rejects"
        return False
    if fast is None:
        return False
    py = _python_encode(index, block)
    assert list(fast.lines) == list(py.lines)
    assert (fast.nbytes, fast.n_lines) == (py.nbytes, py.n_lines)
    assert fast.ids.dtype == py.ids.dtype and np.array_equal(fast.ids, py.ids)
    assert len(fast.toks) == len(py.toks) and list(fast.toks) == list(py.toks)
    assert list(fast.texts) == list(py.texts)
    for _ in range(5):
        a, b = sorted(pick.randint(-2, len(py.toks) + 2) for _ in range(2))
        assert fast.toks[a:b] == py.toks[a:b]
    return True


_FIELD_CHOICES = [FIELDS, ("output",), ("output", "output", "instruction"), ("missing",)]
_NORMALIZERS = [Normalizer(), Normalizer(lowercase=False), Normalizer(nfkc=True)]


@settings(max_examples=300, deadline=None)
@given(lines=_BLOCKS, newline=st.booleans(), fields=st.sampled_from(_FIELD_CHOICES),
       normalizer=st.sampled_from(_NORMALIZERS), pick=st.randoms(use_true_random=False),
       first_line=st.integers(0, 50))
def test_encoded_block_equals_python_encoding(lines: list[str], newline: bool,
                                              fields: tuple[str, ...], normalizer: Normalizer,
                                              pick: random.Random, first_line: int) -> None:
    data = ("\n".join(lines) + ("\n" if newline and lines else "")).encode("utf-8")
    _check_block(data, fields, normalizer, pick, first_line)


_WORDS = ["a", "B", "cat", "CAT", "x.y", "{a", "b},", "[1]", "\\", '"q"', "a:b,"] + [f"W{i}" for i in range(40)]
_SEPS = [" ", " ", " ", "  ", "\t", "\n", "\r\n", "\x0c", "\x08"]


def _text(rng: random.Random) -> str:
    text = "".join(rng.choice(_SEPS) + rng.choice(_WORDS) for _ in range(rng.randint(0, 30)))
    return text[rng.randint(0, 1):]


def _block_from(rng: random.Random) -> bytes:
    """A block of 50-400 qualifying lines: string, null or missing fields, blank lines."""
    lines = []
    for _ in range(rng.randint(50, 400)):
        if rng.random() < 0.05:
            lines.append("")
            continue
        rec: dict[str, Any] = {}
        for f in ("instruction", "output", "other"):
            x = rng.random()
            if x < 0.8:
                rec[f] = _text(rng) if f != "other" else [1, {"k": _text(rng)}]
            elif x < 0.9:
                rec[f] = None
        keys = list(rec)
        rng.shuffle(keys)
        lines.append(json.dumps({k: rec[k] for k in keys},
                                separators=rng.choice([(", ", ": "), (",", ":")])))
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("seed", range(40))
def test_large_clean_blocks_encode_alike(seed: int) -> None:
    """Hundreds of qualifying lines per block (hypothesis favours small examples)."""
    rng = random.Random(seed)
    data = _block_from(rng)
    assert _check_block(data, rng.choice(_FIELD_CHOICES[:3]), rng.choice(_NORMALIZERS), rng,
                        rng.randint(0, 9))


def test_typical_blocks_take_the_fast_path() -> None:
    index = EvalIndex([EvalCase("x", "a b")], make_tokenizer(None, Normalizer()), 2)
    encoder = fastpath.arrow_encoder(index, MEM_SHARD, FIELDS)
    assert encoder is not None
    rows = [{"instruction": "Say A b", "output": "x\ty"}, {"output": None, "n": [1, {"k": "v"}]}, {}]
    data = ("\n".join(json.dumps(r) for r in rows) + "\n\n").encode()
    enc = encoder.encode(data, 10)
    assert enc is not None
    assert list(enc.lines) == [10, 11, 12] and enc.n_lines == 4
    assert list(enc.texts) == ["Say A b x\ty", "", ""]
    assert list(enc.toks) == ["say", "a", "b", "x", "y", "\x00", "\x00"]


# -- scan-level equality ------------------------------------------------------------------

def _ascii(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with their non-ASCII letters dropped (typical English training data)."""
    return [{k: v.encode("ascii", "ignore").decode() if isinstance(v, str) else v
             for k, v in row.items()} for row in rows]


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), n=st.integers(2, 13), shard=st.integers(300, 6000))
def test_scan_report_is_the_same_without_pyarrow(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path_factory: pytest.TempPathFactory,
                                                 seed: int, n: int, shard: int) -> None:
    train, evals = make_data(seed, n_train=120, n_eval=20, plant=8, n=n)
    train, evals = _ascii(train), _ascii(evals)
    rng = random.Random(seed)
    for row in rng.sample(train, 10):
        row.pop(rng.choice(FIELDS))
    lines = [json.dumps(r) for r in train]
    for i in rng.sample(range(len(lines)), 4):  # non-ASCII text: the fast path
        lines[i] = json.dumps({"output": "ünï ΣΑΣ " + train[i].get("output", "")},
                              ensure_ascii=rng.random() < 0.5)
    for i in rng.sample(range(len(lines)), 3):  # these shards take the Python path
        lines[i] = json.dumps({"output": ["x", train[i].get("output", "")]})
    for i in sorted(rng.sample(range(len(lines)), 5), reverse=True):
        lines.insert(i, "")
    path = tmp_path_factory.mktemp("s") / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cases = [EvalCase(e["id"], record_text(e, FIELDS)) for e in evals]
    used = _count_fast_blocks(monkeypatch)
    fast, slow = _both(monkeypatch, [path], cases, n, FIELDS, shard_bytes=shard)
    assert fast == slow
    assert any(used) and not all(used)


def test_mixed_multi_block_file_keeps_lines_and_results(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    """A 2.6 MB file (three blocks) where one block falls back and some lines are blank."""
    train, evals = make_data(3, n_train=5000, n_eval=40, plant=30)
    ascii_train = _ascii(train)
    rows = []
    for i in range(10_000):
        row = dict(ascii_train[i % 5000])
        if i == 7000:  # a chat-style nested field
            row["output"] = [{"role": "user", "content": row["output"]}]
        rows.append(json.dumps(train[i % 5000], ensure_ascii=False) if 3000 <= i < 3100
                    else json.dumps(row))
        if i % 977 == 0:
            rows.append("")
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert path.stat().st_size > 2 << 20
    cases = [EvalCase(e["id"], record_text(e, FIELDS)) for e in _ascii(evals)]
    monkeypatch.setattr(scanner_module, "FAST_BLOCK_BYTES", 1 << 20)  # three blocks, not one
    used = _count_fast_blocks(monkeypatch)
    fast, slow = _both(monkeypatch, [path], cases, 8, FIELDS, shard_bytes=64 << 20)
    assert fast == slow
    assert used == [True, False, True]  # non-ASCII in the first, a list in the second
    assert sum(c["contaminated"] for c in fast["cases"]) > 0


def test_a_refused_fast_block_is_parsed_in_pieces_with_its_line_numbers(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """One 8 MB fast-path block refused (a nested field on its last line) falls back to the
    Python reader in 1 MB pieces: same results, same line numbers as the Python path."""
    train, evals = make_data(5, n_train=4000, n_eval=30, plant=20)
    rows = [json.dumps(r) for r in _ascii(train)] * 3
    rows[-1] = json.dumps({"instruction": "x", "output": [{"role": "user", "content": "y"}]})
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert path.stat().st_size > 1 << 20
    pieces: list[int] = []
    real = scanner_module.parse_block

    def spy(shard, fields, offset, data, line):  # type: ignore[no-untyped-def]
        pieces.append(len(data))
        return real(shard, fields, offset, data, line)

    monkeypatch.setattr(scanner_module, "parse_block", spy)
    cases = [EvalCase(e["id"], record_text(e, FIELDS)) for e in _ascii(evals)]
    fast, slow = _both(monkeypatch, [path], cases, 8, FIELDS, shard_bytes=64 << 20)
    assert fast == slow
    assert sum(c["contaminated"] for c in fast["cases"]) > 0
    assert len(pieces) >= 2 and max(pieces) < (1 << 20) + 4096


def test_line_pieces_cut_at_line_ends_and_cover_the_block() -> None:
    data = b"".join(b"x" * (i % 7) + b"\n" for i in range(1000))
    pieces = list(line_pieces(100, data, piece_bytes=50))
    assert b"".join(p for _o, p in pieces) == data
    assert all(p.endswith(b"\n") for _o, p in pieces)
    assert [o for o, _p in pieces] == [100 + sum(len(p) for _o, p in pieces[:i]) for i in range(len(pieces))]
    assert list(line_pieces(0, b"one long line without end", piece_bytes=4)) == [
        (0, b"one long line without end")]


@pytest.mark.parametrize("line", ['{"instruction": "a"} {"output": "b"}', "null",
                                  '{"instruction": "a",}', '{"instruction": "a"}}', '"text"'])
def test_bad_json_raises_the_same_error_either_way(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path, line: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"instruction": "ok"}\n\n' + line + "\n")
    cases = [EvalCase("x", "a b c")]
    errors = []
    for hide in (False, True):
        with monkeypatch.context() as m:
            if hide:
                _hide_pyarrow(m)
            try:
                report = _report([path], cases, 2, FIELDS)
            except SpecError as exc:
                errors.append(str(exc))
            else:
                errors.append(json.dumps(report))
    assert errors[0] == errors[1]
    assert ("t.jsonl:3" in errors[0]) == (line not in ("null", '"text"'))


def test_without_pyarrow_the_python_path_scans(no_pyarrow: None, tmp_path: Path) -> None:
    train, evals = make_data(1)
    path = write_jsonl(tmp_path / "train.jsonl", train)
    cases = [EvalCase(e["id"], record_text(e, FIELDS)) for e in evals]
    index = EvalIndex(cases, make_tokenizer(None, Normalizer()), 8)
    assert fastpath.arrow_encoder(index, MEM_SHARD, FIELDS) is None
    report = scan(index, [path], ScanOptions(train_fields=FIELDS), workers=1, progress=False)
    assert report.n_contaminated > 0


def test_a_scan_does_not_import_pandas_or_pyarrow_compute(tmp_path: Path) -> None:
    """pyarrow's pa.array, pa.scalar and to_numpy import pandas when it is installed: 0.3-0.4 s
    of a small scan's fixed cost. The fast path builds and reads arrays from buffers. And
    ``import pyarrow.compute`` (also done by ``Array.take`` and ``cast``) costs 40-60 ms:
    the kernels are called through ``pyarrow._compute``."""
    pytest.importorskip("pandas")  # installed with the dev extra; without it nothing to show
    train, evals = make_data(11, n_train=300, n_eval=20, plant=5)
    mixed = [dict(r, output=r.get("output", "") + " Straße İstanbul ΣΊΣΥΦΟΣ\u00a0x") for r in train]
    write_jsonl(tmp_path / "train.jsonl", mixed)
    (tmp_path / "train.txt").write_text("\n".join(r["output"] for r in mixed) + "\n", encoding="utf-8")
    write_jsonl(tmp_path / "eval.jsonl", evals)
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({f: pa.array([r.get(f, "") for r in mixed], pa.large_string()) for f in FIELDS})
    pq.write_table(table, tmp_path / "train.parquet")  # large_string: the cast kernel runs
    code = f"""
import sys
from pathlib import Path
from pytest_llmeval.contamination import EvalCase, EvalIndex, Normalizer, ScanOptions, make_tokenizer, scan
from pytest_llmeval.contamination import fastpath
from pytest_llmeval.contamination.readers import read_records
fast = []
encode, blocks = fastpath.ArrowEncoder._encode_slots, fastpath.ArrowEncoder._parquet_batches
def spy(self, *args, **kwargs):
    out = encode(self, *args, **kwargs)
    fast.append(out is not None)
    return out
fastpath.ArrowEncoder._encode_slots = spy
fastpath.REFERENCE_SHARE = 1.0  # every record here holds a capital sigma
d = Path({str(tmp_path)!r})
cases = [EvalCase(str(i), t) for i, (_, _r, t) in enumerate(read_records(d / "eval.jsonl", {FIELDS!r}))]
index = EvalIndex(cases, make_tokenizer(None, Normalizer()), 8)
for name in ("train.jsonl", "train.txt", "train.parquet"):
    report = scan(index, [d / name], ScanOptions(train_fields={tuple(FIELDS)!r}), workers=1, progress=False)
    assert report.records_scanned > 0 and report.n_contaminated > 0, name
print(len(fast), all(fast), "pandas" in sys.modules, "pyarrow.compute" in sys.modules)
"""
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    blocks, all_fast, pandas, compute = out.stdout.split()
    assert int(blocks) >= 3 and all_fast == "True", out.stdout + out.stderr
    assert (pandas, compute) == ("False", "False"), out.stdout + out.stderr


def test_arrays_built_and_read_from_buffers_equal_pyarrows_own() -> None:
    """string_array, bool_array, int_array and numbers() stand in for pa.array / to_numpy."""
    texts = ["", "a b", "Straße", "中文", "x" * 300]
    assert fastpath.string_array(pa, texts).to_pylist() == texts
    with pytest.raises(UnicodeEncodeError):
        fastpath.string_array(pa, ["ok", "\ud800"])
    mask = np.array([True, False, True, True, False, False, False, True, True], dtype=bool)
    assert fastpath.bool_array(pa, mask).to_pylist() == mask.tolist()
    assert fastpath.numbers(fastpath.bool_array(pa, mask)[3:]).tolist() == mask[3:].tolist()
    values = np.arange(10, dtype=np.int64) * 7
    arr = fastpath.int_array(pa, values)
    assert arr.to_pylist() == values.tolist()
    assert fastpath.numbers(arr[2:7]).tolist() == values[2:7].tolist()
    with_nulls = pa.array([3, None, 5, None], pa.int32())
    assert fastpath.numbers(with_nulls, fill=-1).tolist() == [3, -1, 5, -1]
    assert fastpath.numbers(with_nulls[1:], fill=0).tolist() == [0, 5, 0]
    with pytest.raises(ValueError, match="nulls"):
        fastpath.numbers(with_nulls)
    bools = pa.array([True, None, False, True])
    assert fastpath.numbers(bools, fill=False).tolist() == [True, False, False, True]
    assert fastpath.numbers(pa.chunked_array([pa.array([1.5]), pa.array([2.5])])).tolist() == [1.5, 2.5]


def test_the_unsafe_character_pattern_is_computed_once_and_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The non-ASCII candidates cost about 0.1 s per process: the pattern is kept in a file
    keyed by what it depends on; another key, a damaged file or ``off`` recompute it."""
    monkeypatch.setenv("LLMEVAL_CACHE_HOME", str(tmp_path / "cache"))
    calls: list[int] = []
    candidates = fastpath.CharTable._candidates

    def spy(self: fastpath.CharTable) -> list[int]:
        calls.append(1)
        return candidates(self)

    monkeypatch.setattr(fastpath.CharTable, "_candidates", spy)

    def fresh() -> fastpath.CharTable:
        return fastpath.CharTable(Normalizer(), pa, fastpath.Kernels())

    first = fresh().pattern()
    assert len(calls) == 1 and "\\x{130}" in first and "\\x{3a3}" in first  # İ and Σ
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].name.startswith("unsafe-chars-")
    assert fresh().pattern() == first and len(calls) == 1  # read, not recomputed

    record = json.loads(files[0].read_text())
    assert json.loads(record["key"])["unicode"] == unicodedata.unidata_version
    for damaged in ("not json", json.dumps({"key": "another", "pattern": "[\\x{41}]"}),
                    json.dumps({"key": record["key"], "pattern": "[a-z]|.*"}),
                    json.dumps({"key": record["key"], "pattern": None}),
                    json.dumps(dict(record, fixes={"160": 5})),
                    json.dumps(dict(record, context="[.*]"))):
        files[0].write_text(damaged)
        assert fresh().pattern() == first
        assert json.loads(files[0].read_text()) == record  # rewritten
    assert len(calls) == 7

    # another normaliser has a key (and file) of its own
    other = fastpath.CharTable(Normalizer(lowercase=False), pa, fastpath.Kernels()).pattern()
    assert len(calls) == 8 and len(list((tmp_path / "cache").iterdir())) == 2
    assert other != first

    monkeypatch.setenv("LLMEVAL_CACHE_HOME", "off")
    assert fresh().pattern() == first and len(calls) == 9
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the directory would go")
    monkeypatch.setenv("LLMEVAL_CACHE_HOME", str(blocked))
    assert fresh().pattern() == first and len(calls) == 10  # computed, nothing kept
