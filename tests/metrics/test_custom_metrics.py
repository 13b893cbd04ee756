"""python:module:function user metrics: kinds, keyword options and errors a user can act on."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.metrics import build_metric
from pytest_llmeval.metrics.custom import python_metric

USER_MODULE = """
def keyword_hit(prediction, references, keyword="cat"):
    return float(keyword in prediction)

def overlap(prediction, references):
    return len(set(prediction.split()) & set(references[0].split())) / 2

def total_words(predictions, references_list):
    return sum(len(p.split()) for p in predictions)

def is_short(prediction, references, limit=3):
    return len(prediction.split()) <= limit

def text(prediction, references):
    return "high"

def half(prediction, references):
    return 0.5

def not_a_number(prediction, references):
    return float("nan")

CONSTANT = 3
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"user_metrics_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_mean_kind_is_the_default_and_averages(user_module: str) -> None:
    metric = build_metric(f"python:{user_module}:overlap")
    assert metric.kind == "mean" and metric.name == f"python:{user_module}:overlap"
    assert metric.corpus(["a b", "a x"], [["a b"], ["a b"]]) == pytest.approx(0.75)


def test_options_are_passed_as_keyword_arguments(user_module: str) -> None:
    metric = build_metric(f"python:{user_module}:keyword_hit", {"keyword": "dog"})
    assert metric.score_case is not None
    assert metric.score_case("a dog", ["x"]) == 1.0
    assert metric.score_case("a cat", ["x"]) == 0.0
    assert metric.options["keyword"] == "dog"


def test_proportion_kind_accepts_bools(user_module: str) -> None:
    metric = build_metric(f"python:{user_module}:is_short", {"kind": "proportion", "limit": 2})
    assert metric.kind == "proportion"
    assert metric.case_scores(["a b", "a b c"], [[], []]) == [1.0, 0.0]


def test_corpus_kind_gets_all_predictions(user_module: str) -> None:
    metric = build_metric(f"python:{user_module}:total_words", {"kind": "corpus"})
    assert metric.kind == "corpus" and metric.score_case is None
    assert metric.corpus(["a b", "c"], [["x"], ["y"]]) == 3.0


def test_direction_and_reference_flags_are_not_passed_to_the_function(user_module: str) -> None:
    metric = build_metric(
        f"python:{user_module}:overlap", {"higher_is_better": False, "needs_reference": False}
    )
    assert metric.higher_is_better is False and metric.needs_reference is False


def test_missing_module_names_the_target_and_the_fix() -> None:
    with pytest.raises(ConfigError, match="cannot import module 'no_such_mod_xyz'.*conftest.py"):
        build_metric("python:no_such_mod_xyz:fn")


def test_missing_function_suggests_a_close_name(user_module: str) -> None:
    with pytest.raises(ConfigError, match="has no attribute 'keyword_hits'.*'keyword_hit'"):
        build_metric(f"python:{user_module}:keyword_hits")


def test_non_callable_is_refused(user_module: str) -> None:
    with pytest.raises(ConfigError, match="'CONSTANT' .* is not callable"):
        build_metric(f"python:{user_module}:CONSTANT")


@pytest.mark.parametrize("target", ["justamodule", "mod:", ":fn", "a:b:c"])
def test_malformed_target_shows_the_expected_form(target: str) -> None:
    with pytest.raises(ConfigError, match="expected 'python:module:function'"):
        build_metric(f"python:{target}")


def test_option_the_function_does_not_take_is_refused_at_build_time(user_module: str) -> None:
    with pytest.raises(ConfigError, match="cannot be called.*Did you mean 'keyword'"):
        build_metric(f"python:{user_module}:keyword_hit", {"keywrd": "dog"})


def test_bad_kind_lists_the_kinds(user_module: str) -> None:
    with pytest.raises(ConfigError, match="option 'kind' must be one of 'mean', 'proportion'"):
        build_metric(f"python:{user_module}:overlap", {"kind": "median"})


def test_non_number_result_names_the_function_and_the_value(user_module: str) -> None:
    metric = build_metric(f"python:{user_module}:text")
    assert metric.score_case is not None
    with pytest.raises(
        ConfigError, match=rf"'python:{user_module}:text' must return a number.*'high'"
    ):
        metric.score_case("x", ["y"])


def test_nan_result_is_refused(user_module: str) -> None:
    metric = build_metric(f"python:{user_module}:not_a_number")
    assert metric.score_case is not None
    with pytest.raises(ConfigError, match="returned nan; it must return a finite number"):
        metric.score_case("x", ["y"])


def test_proportion_must_be_zero_or_one(user_module: str) -> None:
    metric = build_metric(f"python:{user_module}:half", {"kind": "proportion"})
    assert metric.score_case is not None
    with pytest.raises(ConfigError, match="must return 0 or 1.*returned 0.5"):
        metric.score_case("x", ["y"])


def test_module_that_fails_to_import_reports_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_user_metric_mod.py").write_text("def f(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ConfigError, match="importing module 'broken_user_metric_mod' raised Syntax"
    ):
        build_metric("python:broken_user_metric_mod:f")


def test_the_module_is_found_in_base_dirs(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "metric_beside_suite.py").write_text("def hit(p, refs):\n    return float(p in refs)\n")
    metric = python_metric("metric_beside_suite:hit", base_dirs=[suite, tmp_path])
    assert metric.score_case is not None and metric.score_case("a", ["a"]) == 1.0
    with pytest.raises(ConfigError, match=rf"cannot import module 'metric_elsewhere'.*{suite}"):
        python_metric("metric_elsewhere:hit", base_dirs=[suite, tmp_path])
