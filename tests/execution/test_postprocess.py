"""Completion post-processing: Markdown fences and the HumanEval stop sequences."""

from __future__ import annotations

from pytest_llmeval.execution.postprocess import postprocess, stop_at_next_def, strip_fences


def test_strip_fences_takes_the_first_python_block() -> None:
    text = "Here you go:\n```text\nnot code\n```\n```python\ndef f():\n    return 1\n```\nand ```py\nx\n```"
    assert strip_fences(text) == "def f():\n    return 1\n"


def test_strip_fences_unlabelled_and_tilde_blocks() -> None:
    assert strip_fences("```\nx = 1\n```") == "x = 1\n"
    assert strip_fences("~~~python\ny = 2\n~~~\n") == "y = 2\n"


def test_strip_fences_keeps_an_unclosed_block() -> None:
    assert strip_fences("```python\ndef f():\n    return 1") == "def f():\n    return 1"


def test_strip_fences_leaves_plain_code_alone() -> None:
    code = "    return sorted(x)\n"
    assert strip_fences(code) == code


def test_stop_at_next_def_cuts_at_the_next_top_level_statement() -> None:
    body = "    return x + 1\n\n\ndef helper():\n    pass\n"
    assert stop_at_next_def(body) == "    return x + 1\n\n"
    assert stop_at_next_def("    return 1\nif __name__ == '__main__':\n    main()") == "    return 1"
    assert stop_at_next_def("    return 1\nprint(f(2))") == "    return 1"
    assert stop_at_next_def("    return 1\n# tests\nassert f(1)") == "    return 1"


def test_stop_at_next_def_keeps_nested_definitions() -> None:
    body = "    def inner(y):\n        return y\n    return inner(x)\n"
    assert stop_at_next_def(body) == body


def test_postprocess_applies_fences_first() -> None:
    text = "```python\n    return 2\n\ndef g():\n    pass\n```"
    assert postprocess(text, strip_markdown=True, stop_at_def=True) == "    return 2\n"
    assert postprocess(text) == text


def test_stop_at_next_def_keeps_a_restated_function() -> None:
    full = "from typing import List\n\n\ndef f(x: List[int]) -> int:\n    return len(x)\n\n\nprint(f([1]))\n"
    assert stop_at_next_def(full) == "from typing import List\n\n\ndef f(x: List[int]) -> int:\n    return len(x)\n\n"
    two = "def f():\n    return 1\n\ndef g():\n    return 2\n"
    assert stop_at_next_def(two) == "def f():\n    return 1\n"
