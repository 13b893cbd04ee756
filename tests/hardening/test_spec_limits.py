"""Inputs that used to stop every suite: deep nesting, huge integers, alias bombs, bad dates."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval.errors import SpecError
from pytest_llmeval.spec import MAX_DEPTH, load_suite

CASES = [
    ("deep.eval.yaml", "prompt: '{x}'\ncases:\n- x: " + "[" * 5000 + "]" * 5000 + "\n", 3, "nested more than"),
    ("deepmap.eval.yaml", "prompt: '{x}'\ncases:\n- x: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n", 3,
     "nested more than"),
    ("bigint.eval.yaml", "prompt: '{x}'\ncases:\n- x: 1\n- x: " + "9" * 5000 + "\n", 4, "5,000 digits"),
    ("bigint.eval.jsonl", '{"prompt": "a"}\n{"prompt": "b", "x": ' + "9" * 5000 + "}\n", 2, "4,300 digits"),
    ("deep.eval.jsonl", '{"prompt": "a", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n", 1,
     "nested more than"),
    ("deep200.eval.jsonl", '{"prompt": "a"}\n\n{"prompt": "b", "x": ' + "[" * 200 + "]" * 200 + "}\n", 3,
     "nested more than"),
    ("date.eval.yaml", "prompt: '{x}'\ncases:\n- x: 2024-13-45\n", 3, "month must be in 1..12"),
]


@pytest.mark.parametrize("name, text, line, message", CASES, ids=[c[0] for c in CASES])
def test_limits_are_spec_errors_with_file_and_line(tmp_path: Path, name: str, text: str, line: int,
                                                    message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_suite(path)
    assert info.value.path == str(path) and info.value.line == line
    assert message in info.value.message


def test_nested_aliases_stop_at_the_expansion_limit(tmp_path: Path) -> None:
    levels = ["  l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        levels.append(f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    path = tmp_path / "laughs.eval.yaml"
    path.write_text("prompt: '{x}'\ncases:\n- x: 1\n  anchors:\n" + "\n".join("  " + lv for lv in levels)
                    + "\n")
    with pytest.raises(SpecError, match="aliases expand to more than"):
        load_suite(path)


def test_nesting_up_to_the_limit_loads(tmp_path: Path) -> None:
    depth = MAX_DEPTH - 3  # the suite mapping, the cases list and the case take three levels
    path = tmp_path / "ok.eval.yaml"
    path.write_text("prompt: '{x}'\ncases:\n- x: " + "[" * depth + "]" * depth + "\n")
    assert len(load_suite(path).cases) == 1


def test_jsonl_lines_split_on_newlines_only(tmp_path: Path) -> None:
    path = tmp_path / "sep.eval.jsonl"
    path.write_bytes('{"prompt": "a\u2028b\u0085c\u2029d"}\r\n{"prompt": "e"}\n'.encode())
    suite = load_suite(path)
    assert [c.fields["prompt"] for c in suite.cases] == ["a\u2028b\u0085c\u2029d", "e"]
    assert [c.line for c in suite.cases] == [1, 2]


def test_csv_errors_name_the_line(tmp_path: Path) -> None:
    (tmp_path / "cases.csv").write_text("prompt\nok\n" + "x" * 200_000 + "\n")
    path = tmp_path / "csv.eval.yaml"
    path.write_text("prompt: '{prompt}'\ncases: cases.csv\n")
    with pytest.raises(SpecError, match="invalid CSV: field larger than field limit") as info:
        load_suite(path)
    assert info.value.line == 3
