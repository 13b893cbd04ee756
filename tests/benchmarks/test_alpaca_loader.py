"""The AlpacaEval loader: instructions with the reference model's outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmeval.errors import SpecError
from pytest_llmeval.loaders import LOADERS, alpaca_eval

RECORDS = [
    {"instruction": "Name a fruit.", "output": "An apple.", "generator": "ref-model", "dataset": "helpful_base"},
    {"instruction": "Say hi.", "output": "Hello!", "generator": "ref-model", "dataset": "koala"},
    {"instruction": "Count to 3.", "output": "1, 2, 3", "generator": "ref-model", "dataset": "helpful_base"},
]


def write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_instructions_become_prompts_and_outputs_references(tmp_path):
    cases = alpaca_eval.load(write(tmp_path / "alpaca_eval.json", RECORDS), {})
    assert cases[0] == {"id": "1", "prompt": "Name a fruit.", "reference": "An apple.",
                        "category": "helpful_base", "generator": "ref-model"}
    assert [c["id"] for c in cases] == ["1", "2", "3"]
    assert [c["id"] for c in alpaca_eval.load(tmp_path / "alpaca_eval.json",
                                              {"datasets": ["helpful_base"], "limit": 1})] == ["1"]
    lines = tmp_path / "eval.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    assert alpaca_eval.load(lines, {}) == cases
    assert LOADERS["alpaca_eval"] == "pytest_llmeval.loaders.alpaca_eval:load"


@pytest.mark.parametrize("data, message", [
    ({"instruction": "x", "output": "y"}, "got a JSON dict"),
    ([], "the list is empty"),
    ([{"instruction": "x"}], "record 1 has no 'output'"),
    ([{"prompt": "x", "completion": "y"}], "record 1 has no 'instruction', 'output' .*its fields: completion, prompt"),
    ([{"instruction": "", "output": "y"}], "'instruction' must be non-empty text"),
    (["x"], "record 1 is a str"),
])
def test_a_wrong_layout_names_the_file_and_the_expected_fields(tmp_path, data, message):
    path = write(tmp_path / "alpaca_eval.json", data)
    with pytest.raises(SpecError, match=message) as info:
        alpaca_eval.load(path, {})
    assert info.value.path == str(path) and "instruction, output" in str(info.value)


def test_empty_and_invalid_files_and_options(tmp_path):
    empty = tmp_path / "a.json"
    empty.write_text("  \n")
    with pytest.raises(SpecError, match="the file is empty; expected a JSON list of objects"):
        alpaca_eval.load(empty, {})
    broken = tmp_path / "b.json"
    broken.write_text('[{"instruction": "x",\n "output": }]')
    with pytest.raises(SpecError, match="invalid JSON") as info:
        alpaca_eval.load(broken, {})
    assert info.value.line == 2
    with pytest.raises(SpecError, match="option 'limit' must be a positive integer"):
        alpaca_eval.load(write(tmp_path / "c.json", RECORDS), {"limit": 0})
    with pytest.raises(SpecError, match="unknown option 'subset'"):
        alpaca_eval.load(tmp_path / "c.json", {"subset": "x"})
