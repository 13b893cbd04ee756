"""The MT-Bench loader: FastChat's question and reference-answer files as multi-turn cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmeval.errors import SpecError
from pytest_llmeval.loaders import LOADERS, mt_bench
from pytest_llmeval.spec import build_cases


def jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_the_bundled_questions_become_80_two_turn_cases_with_references_where_mt_bench_uses_them():
    cases = mt_bench.load(mt_bench.BUNDLED_QUESTIONS, {})
    assert len(cases) == 80 and len({c["id"] for c in cases}) == 80
    refs = {json.loads(line)["question_id"]: json.loads(line)["choices"][0]["turns"]
            for line in mt_bench.BUNDLED_REFERENCES.read_text().splitlines()}
    for case in cases:
        if case["category"] in ("math", "reasoning", "coding"):
            assert case["reference"] == refs[int(case["id"])]
        else:  # e.g. roleplay question 95 carries a 'reference' of its own that MT-Bench does not grade by
            assert "reference" not in case
    built = build_cases([(c, None) for c in cases], mt_bench.BUNDLED_QUESTIONS, [], [])
    assert all(len(c.turns or []) == 2 for c in built)
    assert sum(c.turn_references is not None for c in built) == 30
    assert LOADERS["mt_bench"] == "pytest_llmeval.loaders.mt_bench:load"


def test_options_choose_the_reference_file_and_the_categories(tmp_path):
    q = jsonl(tmp_path / "q.jsonl", [
        {"question_id": 1, "category": "math", "turns": ["a", "b"]},
        {"question_id": 2, "category": "writing", "turns": ["c", "d"]},
        {"question_id": 3, "category": "math", "turns": ["e", "f"], "reference": ["own", "ref"]}])
    (tmp_path / "refs").mkdir()
    jsonl(tmp_path / "refs" / "judge.jsonl", [{"question_id": 1, "choices": [{"index": 0, "turns": ["r1"]}]}])
    cases = mt_bench.load(q, {"references": "refs/judge.jsonl"})
    assert cases[0]["reference"] == ["r1", None]  # a shorter reference list leaves later turns without one
    assert "reference" not in cases[1] and cases[2]["reference"] == ["own", "ref"]
    assert [c["id"] for c in mt_bench.load(q, {"categories": ["writing"]})] == ["2"]
    assert "reference" not in mt_bench.load(q, {"references": None})[0]


@pytest.mark.parametrize("records, message", [
    ([{"question_id": 1, "turns": ["a"]}], "question 1 has no 'category'"),
    ([{"id": 1, "category": "x", "prompt": "a"}], "a question has no 'question_id', 'turns'"),
    ([{"question_id": 1, "category": "x", "turns": "a"}], "'turns' must be a non-empty list"),
    ([["question_id", "category", "turns"]], "expected a JSON object"),
])
def test_a_wrong_layout_names_the_file_line_and_the_expected_fields(tmp_path, records, message):
    path = jsonl(tmp_path / "question.jsonl", records)
    with pytest.raises(SpecError, match=message) as info:
        mt_bench.load(path, {})
    err = info.value
    assert err.path == str(path) and err.line == 1
    assert "question_id, category, turns" in str(err)


def test_an_empty_file_and_a_broken_reference_file_are_spec_errors(tmp_path):
    empty = tmp_path / "question.jsonl"
    empty.write_text("\n")
    with pytest.raises(SpecError, match="the file is empty; expected.*question_id, category, turns"):
        mt_bench.load(empty, {})
    q = jsonl(tmp_path / "q.jsonl", [{"question_id": 1, "category": "math", "turns": ["a", "b"]}])
    bad = jsonl(tmp_path / "reference_answer_gpt-4.jsonl", [{"question_id": 1, "turns": ["r"]}])
    with pytest.raises(SpecError, match="has no 'choices'.*choices\\[0\\].turns") as info:
        mt_bench.load(q, {})  # found beside the question file
    assert info.value.path == str(bad)
    with pytest.raises(SpecError, match="reference-answer file .*nope.jsonl' not found"):
        mt_bench.load(q, {"references": "nope.jsonl"})
    with pytest.raises(SpecError, match="unknown option 'refs'"):
        mt_bench.load(q, {"refs": "x"})
