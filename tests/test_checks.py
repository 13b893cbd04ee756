"""python: checks resolve their module like every other python: reference."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmeval.checks import run_check
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.spec import Case, Check


@pytest.fixture
def suite_dir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "chk_rules.py").write_text(textwrap.dedent('''
        def short(output, case):
            return len(output) <= case["limit"] or f"{len(output)} characters"
    '''), encoding="utf-8")
    before = set(sys.modules)
    yield tmp_path
    for mod in set(sys.modules) - before:
        del sys.modules[mod]


def case() -> Case:
    return Case(id="c1", fields={"limit": 5}, reference=None, checks=[])


def test_a_python_check_is_found_beside_the_suite(suite_dir: Path) -> None:
    check = Check("python", "chk_rules:short")
    assert run_check(check, "tiny", case(), base_dirs=[suite_dir]) is None
    assert run_check(check, "far too long", case(), base_dirs=[suite_dir]) == \
        "chk_rules:short: 12 characters"


def test_a_misspelt_check_function_gets_a_suggestion(suite_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"check 'python: chk_rules:shrt'.*Did you mean 'short'"):
        run_check(Check("python", "chk_rules:shrt"), "x", case(), base_dirs=[suite_dir])


def test_a_missing_check_module_names_where_it_was_looked_for(suite_dir: Path) -> None:
    with pytest.raises(ConfigError, match=rf"cannot import module 'chk_nowhere'.*{suite_dir}"):
        run_check(Check("python", "chk_nowhere:f"), "x", case(), base_dirs=[suite_dir])
