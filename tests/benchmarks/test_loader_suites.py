"""Suites that name the MT-Bench and AlpacaEval loaders: the bundled data loads, a wrong layout is a
collection error of that file (naming the expected fields) while the other suites still run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from plugin.conftest import evaldir, write  # noqa: F401 - fixtures

from pytest_llmeval.errors import SpecError
from pytest_llmeval.loaders.mt_bench import BUNDLED_QUESTIONS, BUNDLED_REFERENCES
from pytest_llmeval.spec import load_suite


def test_a_suite_reads_the_bundled_mt_bench_files(tmp_path: Path) -> None:
    shutil.copy(BUNDLED_QUESTIONS, tmp_path / "question.jsonl")
    shutil.copy(BUNDLED_REFERENCES, tmp_path / "reference_answer_gpt-4.jsonl")
    (tmp_path / "mt.eval.yaml").write_text("cases: {format: mt_bench, path: question.jsonl}\n")
    suite = load_suite(tmp_path / "mt.eval.yaml")
    assert len(suite.cases) == 80
    assert all(c.turns is not None and len(c.turns) == 2 for c in suite.cases)
    cats = {c.category for c in suite.cases}
    assert cats == {"writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities"}
    with_refs = {c.category for c in suite.cases if c.turn_references}
    assert with_refs == {"math", "reasoning", "coding"}


@pytest.mark.parametrize(("fmt", "content", "expected"), [
    ("mt_bench", '{"question_id": 1, "turns": ["hi"]}\n', "question_id, category, turns"),
    ("mt_bench", "", "question_id, category, turns"),
    ("alpaca_eval", json.dumps([{"output": "x"}]), "instruction, output"),
    ("alpaca_eval", "", "instruction, output"),
])
def test_a_wrong_layout_is_a_collection_error_naming_the_fields(evaldir, fmt: str, content: str,  # noqa: F811
                                                                 expected: str) -> None:
    (evaldir.path / "data.json").write_text(content)
    write(evaldir, "bad.eval.yaml", f"cases: {{format: {fmt}, path: data.json}}\n")
    write(evaldir, "good.eval.yaml", """
        model: python:toymodel:sentiment
        prompt: "{text}"
        cases: [{text: "a great film", reference: positive}]
        """)
    result = evaldir.runpytest("-q", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "bad.eval.yaml" in out and expected in out
    assert "data.json" in out  # the file whose layout is wrong
    result.assert_outcomes(passed=1, errors=1)  # the broken file is an error; the other suite ran


def test_load_suite_error_names_the_data_file(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text('{"question_id": 1, "category": "math"}\n')
    (tmp_path / "m.eval.yaml").write_text("cases: {format: mt_bench, path: q.jsonl}\n")
    with pytest.raises(SpecError) as err:
        load_suite(tmp_path / "m.eval.yaml")
    assert "turns" in err.value.message and err.value.path.endswith("q.jsonl")
