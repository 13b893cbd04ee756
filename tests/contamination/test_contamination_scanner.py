"""Scanner exactness against the lesson's check, reports, inputs and options."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pytest
import zstandard
from contamination_helpers import lesson_check, make_data, write_jsonl
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmeval.contamination import (
    EvalCase,
    EvalIndex,
    Normalizer,
    ScanOptions,
    make_tokenizer,
    scan,
)
from pytest_llmeval.contamination.readers import record_text

FIELDS = ("instruction", "output")


def _scan(train_paths: list[Path], evals: list[dict], n: int = 8, workers: int = 1,
          shard_bytes: int | None = None, normalizer: Normalizer | None = None, **opts):
    cases = [EvalCase(e["id"], record_text(e, FIELDS)) for e in evals]
    index = EvalIndex(cases, make_tokenizer(None, normalizer or Normalizer()), n)
    return scan(index, train_paths, ScanOptions(train_fields=FIELDS, **opts), workers=workers,
                shard_bytes=shard_bytes, progress=False)


@pytest.mark.parametrize("seed", range(4))
def test_contaminated_set_equals_lesson_check_at_n8(tmp_path: Path, seed: int) -> None:
    train, evals = make_data(seed)
    path = write_jsonl(tmp_path / "train.jsonl", train)
    report = _scan([path], evals)
    expected = lesson_check(train, evals, n=8)
    assert expected, "the generator must plant some overlaps"
    assert [i for i, c in enumerate(report.cases) if c.contaminated] == expected


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 14), shard=st.integers(200, 5000))
def test_any_sharding_gives_the_lesson_result(tmp_path_factory, seed: int, n: int,
                                              shard: int) -> None:
    train, evals = make_data(seed, n_train=80, n_eval=20, plant=6, n=n)
    path = write_jsonl(tmp_path_factory.mktemp("h") / "train.jsonl", train)
    report = _scan([path], evals, n=n, shard_bytes=shard)
    got = [i for i, c in enumerate(report.cases) if c.contaminated]
    assert got == lesson_check(train, evals, n=n)


@pytest.mark.parametrize("n", [3, 8])
def test_colliding_keys_change_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       n: int) -> None:
    """Keys only select candidates: with every token's key the same, so that all n-grams
    and all probes share one key, the index still numbers each distinct n-gram once
    (repeats confirmed by token) and the scan reports what it reports with real keys."""
    from pytest_llmeval.contamination import index as index_module

    train, evals = make_data(3, n_train=50, n_eval=20, plant=8, n=n)
    evals += [dict(e, id=f"again{e['id']}") for e in evals[:8]]  # repeated n-grams
    path = write_jsonl(tmp_path / "train.jsonl", train)
    real = _scan([path], evals, n=n, max_sources=3).to_dict()
    real_index = EvalIndex([EvalCase(e["id"], record_text(e, FIELDS)) for e in evals],
                           make_tokenizer(None, Normalizer()), n)
    monkeypatch.setattr(index_module, "token_keys", lambda tokens: [7] * len(tokens))
    colliding = _scan([path], evals, n=n, max_sources=3).to_dict()
    same_index = EvalIndex([EvalCase(e["id"], record_text(e, FIELDS)) for e in evals],
                           make_tokenizer(None, Normalizer()), n)
    assert len(set(same_index.vocab.values())) == 2  # the separator and the one key
    for d in (real, colliding):
        d.pop("seconds")
    assert colliding == real
    assert same_index.n_ngrams == real_index.n_ngrams
    assert [same_index.ngram_text(u) for u in same_index.uids.tolist()] == \
        [real_index.ngram_text(u) for u in real_index.uids.tolist()]
    assert [i for i, c in enumerate(real["cases"]) if c["contaminated"]] == \
        lesson_check(train, evals, n=n)


def test_process_pool_matches_single_process(tmp_path: Path) -> None:
    train, evals = make_data(7)
    path = write_jsonl(tmp_path / "train.jsonl", train)
    one = _scan([path], evals).to_dict()
    two = _scan([path], evals, workers=2, shard_bytes=3000).to_dict()
    for d in (one, two):
        d.pop("seconds")
    assert one == two


def test_report_gives_span_fraction_and_source_line(tmp_path: Path) -> None:
    leak = "the quick brown fox jumps over the lazy dog near the river bank today"
    evals = [{"id": "a", "instruction": "Intro words here. " + leak.upper(), "output": "x"},
             {"id": "b", "instruction": "nothing in common at all with training", "output": ""}]
    train = [{"instruction": "unrelated", "output": "filler"},
             {"instruction": "prefix text " + leak, "output": "tail"}]
    path = write_jsonl(tmp_path / "t.jsonl", train)
    report = _scan([path], evals, n=5)
    a, b = report.cases
    assert a.contaminated and not b.contaminated
    assert a.longest_span is not None
    assert a.longest_span.text == leak.upper()
    assert a.longest_span.tokens == 14
    assert a.n_matched == 10 and a.n_ngrams == 14
    src = a.sources[0]
    assert (src.file, src.line) == (str(path), 2)
    assert train[1]["instruction"][src.offset:].startswith("the quick brown fox jumps")
    assert "quick brown fox" in src.snippet


def test_min_overlap_requires_a_fraction_of_ngrams(tmp_path: Path) -> None:
    words = [f"t{i}" for i in range(30)]
    evals = [{"id": "half", "instruction": " ".join(words), "output": ""}]
    train = [{"instruction": " ".join(words[:15]), "output": ""}]
    path = write_jsonl(tmp_path / "t.jsonl", train)
    assert _scan([path], evals, n=5).cases[0].contaminated
    assert not _scan([path], evals, n=5, min_overlap=0.7).cases[0].contaminated
    assert _scan([path], evals, n=5, min_overlap=0.4).cases[0].fraction == pytest.approx(11 / 26)


def test_max_doc_freq_ignores_boilerplate(tmp_path: Path) -> None:
    boiler = "as an ai language model i cannot do that"
    evals = [{"id": "x", "instruction": boiler, "output": "fresh words only here"}]
    train = [{"instruction": f"{boiler} {i}", "output": ""} for i in range(5)]
    path = write_jsonl(tmp_path / "t.jsonl", train)
    assert _scan([path], evals, n=6).cases[0].contaminated
    case = _scan([path], evals, n=6, max_doc_freq=3).cases[0]
    assert not case.contaminated and case.n_boilerplate > 0


def test_normalisation_options(tmp_path: Path) -> None:
    evals = [{"id": "x", "instruction": "Hello, world! this is ﬁne text", "output": ""}]
    train = [{"instruction": "hello world this is fine text", "output": ""}]
    path = write_jsonl(tmp_path / "t.jsonl", train)
    assert not _scan([path], evals, n=6).cases[0].contaminated
    norm = Normalizer(nfkc=True, strip_punctuation=True)
    assert _scan([path], evals, n=6, normalizer=norm).cases[0].contaminated
    assert not _scan([path], [{"id": "y", "instruction": "HELLO WORLD THIS IS FINE TEXT"}],
                     n=6, normalizer=Normalizer(lowercase=False)).cases[0].contaminated


def test_unicode_whitespace_and_nul_split_like_str_split(tmp_path: Path) -> None:
    evals = [{"id": "x", "instruction": "a\u00a0b\u2003c\x00d e f", "output": ""}]
    train = [{"instruction": "zz a b c d e f zz", "output": ""}]
    path = write_jsonl(tmp_path / "t.jsonl", train)
    assert _scan([path], evals, n=6).cases[0].contaminated


def test_compressed_text_and_parquet_inputs(tmp_path: Path) -> None:
    leak = "one two three four five six seven eight nine"
    evals = [{"id": "x", "instruction": leak, "output": ""}]
    line = json.dumps({"instruction": "pre " + leak, "output": ""}) + "\n"
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(("{}\n" + line).encode()))
    zst = tmp_path / "b.jsonl.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(line.encode()))
    txt = tmp_path / "c.txt"
    txt.write_text("nothing\nnothing\n" + leak.upper() + "\n")
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    par = tmp_path / "d.parquet"
    pq.write_table(pa.table({"instruction": ["x", leak], "n": [1, 2]}), par)
    for path, line_no in ((gz, 2), (zst, 1), (txt, 3), (par, 2)):
        case = _scan([path], evals, n=8).cases[0]
        assert case.contaminated, path
        assert case.sources[0].line == line_no, path


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    from pytest_llmeval.errors import SpecError

    path = tmp_path / "t.jsonl"
    path.write_text('{"instruction": "ok"}\n{"instruction": broken\n')
    with pytest.raises(SpecError, match=r"t\.jsonl:2"):
        _scan([path], [{"id": "x", "instruction": "a b c"}], n=2)


def test_model_tokenizer_from_local_tokenizer_json(tmp_path: Path) -> None:
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {w: i for i, w in enumerate(["[UNK]", "red", "green", "blue", "cat", "dog", "sat"])}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    tokenizer = make_tokenizer(str(tmp_path), Normalizer())
    evals = [EvalCase("x", "Red green blue cat dog")]
    train = write_jsonl(tmp_path / "t.jsonl", [{"text": "sat red green blue cat dog sat"}])
    report = scan(EvalIndex(evals, tokenizer, 5), [train], ScanOptions(), workers=1,
                  progress=False)
    assert report.cases[0].contaminated
    assert report.cases[0].longest_span.text == "Red green blue cat dog"


def test_cases_without_ngrams_report_zero_beside_contaminated_ones(tmp_path: Path) -> None:
    leak = "one two three four five six seven"
    evals = [{"id": "short", "instruction": "too short"}, {"id": "leak", "instruction": leak},
             {"id": "empty", "instruction": ""}, {"id": "clean", "instruction": leak[::-1]}]
    path = write_jsonl(tmp_path / "t.jsonl", [{"instruction": "x " + leak, "output": ""}])
    cases = _scan([path], evals, n=5).cases
    assert [(c.n_ngrams, c.n_matched, c.contaminated) for c in cases] == [
        (0, 0, False), (3, 3, True), (0, 0, False), (3, 0, False)]
    assert cases[1].sources and not cases[3].sources and cases[3].longest_span is None


def test_json_report_equals_to_dict_with_one_case_per_line(tmp_path: Path) -> None:
    train, evals = make_data(2, n_eval=12)
    path = write_jsonl(tmp_path / "train.jsonl", train)
    report = _scan([path], evals)
    out = tmp_path / "r" / "report.json"
    report.write_json(out)
    assert json.loads(out.read_text(encoding="utf-8")) == report.to_dict()
    assert any(c.sources for c in report.cases)
    assert [c.to_dict() for c in report.cases] == [dataclasses.asdict(c) for c in report.cases]
    case_lines = [x for x in out.read_text(encoding="utf-8").splitlines() if '"id": ' in x]
    assert [json.loads(x.strip().rstrip(","))["id"] for x in case_lines] == [
        c.id for c in report.cases]
