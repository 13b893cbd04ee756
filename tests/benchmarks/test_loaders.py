"""Loaders read standard benchmark files; a file of the wrong layout is a collection error naming the columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmeval.errors import SpecError
from pytest_llmeval.loaders import LOADERS, get_loader, load_cases
from pytest_llmeval.spec import load_suite

ROWS = [["What is 2+2?", "3", "4", "5", "6", "B"], ["Capital of France?", "Paris", "Rome", "Oslo", "Bern", "A"]]


def write_mmlu(root: Path, subject: str = "arithmetic", split: str = "test", rows: list[list[str]] = ROWS) -> Path:
    import csv

    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{subject}_{split}.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return root


def test_registry_is_a_plain_dict_of_lazy_targets() -> None:
    assert {"mmlu", "hf_export"} <= set(LOADERS)
    assert callable(get_loader("mmlu"))
    with pytest.raises(SpecError, match="unknown cases format 'mmlx'.*Did you mean 'mmlu'"):
        get_loader("mmlx")


def test_mmlu_reads_subjects_and_splits(tmp_path: Path) -> None:
    write_mmlu(tmp_path / "data" / "test")
    write_mmlu(tmp_path / "data" / "dev", split="dev", rows=ROWS[:1])
    cases, _ = load_cases({"format": "mmlu", "path": "data", "split": "test"}, tmp_path)
    assert cases[0] == {"id": "arithmetic/test/0", "category": "arithmetic", "question": "What is 2+2?",
                        "choices": ["3", "4", "5", "6"], "answer": "B"}
    dev, _ = load_cases({"format": "mmlu", "path": "data", "split": "dev"}, tmp_path)
    assert len(dev) == 1


@pytest.mark.parametrize(("rows", "message"), [
    ([["What?", "a", "b", "c", "B"]], "row has 5 cells; MMLU files have headerless rows of 6 cells: "
                                      "question,A,B,C,D,answer"),
    ([["prompt", "opt1", "opt2", "opt3", "opt4", "label"], *ROWS], "answer cell 'label' is not a letter A-D"),
    ([], "no questions in the file; expected headerless rows of 6 cells: question,A,B,C,D,answer"),
])
def test_mmlu_wrong_layout_names_the_file_and_the_columns(tmp_path: Path, rows: list, message: str) -> None:
    write_mmlu(tmp_path, rows=rows)
    with pytest.raises(SpecError) as err:
        load_cases({"format": "mmlu", "path": "."}, tmp_path)
    assert message in err.value.message
    assert err.value.path is not None and err.value.path.endswith("arithmetic_test.csv")


def test_mmlu_unknown_subject_and_option(tmp_path: Path) -> None:
    write_mmlu(tmp_path)
    with pytest.raises(SpecError, match="no test file for subject 'arithmetik'.*Did you mean 'arithmetic'"):
        load_cases({"format": "mmlu", "path": ".", "subjects": ["arithmetik"]}, tmp_path)
    with pytest.raises(SpecError, match="unknown option 'subject' of format 'mmlu'. Did you mean 'subjects'"):
        load_cases({"format": "mmlu", "path": ".", "subject": ["arithmetic"]}, tmp_path)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


HF_ROWS = [{"question": "2+2?", "subject": "math", "choices": ["3", "4"], "answer": 1},
           {"question": "Red?", "subject": "colour", "choices": ["yes", "no"], "answer": 0}]


def test_hf_export_jsonl_and_parquet_read_alike(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    write_jsonl(tmp_path / "test.jsonl", HF_ROWS)
    pq.write_table(pa.Table.from_pylist(HF_ROWS), tmp_path / "test-00000-of-00001.parquet")
    from_json, _ = load_cases({"format": "hf_export", "path": "test.jsonl"}, tmp_path)
    from_parquet, _ = load_cases({"format": "hf_export", "path": "test-00000-of-00001.parquet"}, tmp_path)
    strip = [{k: v for k, v in c.items() if k != "id"} for c in from_json]
    assert strip == [{k: v for k, v in c.items() if k != "id"} for c in from_parquet]
    assert from_json[0]["category"] == "math"
    only, _ = load_cases({"format": "hf_export", "path": ".", "split": "test", "subjects": ["colour"]}, tmp_path)
    assert [c["question"] for c in only] == ["Red?", "Red?"]  # one from each file


def test_hf_export_missing_column_and_empty_files(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    write_jsonl(tmp_path / "bad.jsonl", [{"question": "q", "options": ["a", "b"], "answer": 0}])
    with pytest.raises(SpecError, match="no column 'choices'; expected columns question, choices, answer, found "
                                        "answer, options, question"):
        load_cases({"format": "hf_export", "path": "bad.jsonl"}, tmp_path)
    pq.write_table(pa.Table.from_pylist([{"prompt": "q", "answer": 1}]), tmp_path / "bad.parquet")
    with pytest.raises(SpecError, match="no column 'question'; expected columns question, choices, answer"):
        load_cases({"format": "hf_export", "path": "bad.parquet"}, tmp_path)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(SpecError, match="empty file; expected JSON lines with columns question, choices, answer"):
        load_cases({"format": "hf_export", "path": "empty.jsonl"}, tmp_path)
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(SpecError, match="cannot read as parquet.*expected a Hugging Face export"):
        load_cases({"format": "hf_export", "path": "junk.parquet"}, tmp_path)


def test_a_suite_names_a_loader_and_its_errors_are_collection_errors(tmp_path: Path) -> None:
    write_mmlu(tmp_path / "mmlu")
    suite_file = tmp_path / "m.eval.yaml"
    suite_file.write_text("cases: {format: mmlu, path: mmlu}\nmultiple_choice: {min_acc: 0.5}\n")
    suite = load_suite(suite_file)
    assert [c.id for c in suite.cases] == ["arithmetic/test/0", "arithmetic/test/1"]
    assert suite.cases[0].category == "arithmetic"
    assert "The following are multiple choice questions (with answers) about arithmetic." in suite.render(
        suite.cases[0])
    suite_file.write_text("cases: {format: mmlu, path: nowhere}\nmultiple_choice: {}\n")
    with pytest.raises(SpecError) as err:
        load_suite(suite_file)
    assert err.value.path == str(suite_file) and err.value.line == 1
    assert "cases path 'nowhere' not found" in err.value.message
