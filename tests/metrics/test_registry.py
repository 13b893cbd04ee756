"""The metric registry: names, "did you mean" errors, option validation, cheap import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.metrics import Metric, build_metric, metric_names

ALL_NAMES = set(
    "exact_match accuracy contains length precision recall f1 bleu sentence_bleu sacrebleu chrf "
    "rouge rouge1 rouge2 rougeL rougeLsum".split()
)


def test_every_family_is_registered() -> None:
    assert ALL_NAMES <= set(metric_names())


@pytest.mark.parametrize("name", sorted(ALL_NAMES))
def test_every_metric_builds_with_defaults_and_scores(name: str) -> None:
    metric = build_metric(name)
    assert isinstance(metric, Metric)
    assert metric.name == name
    value = metric.corpus(["the cat sat on the mat"], [["the cat sat on the mat"]])
    assert value == pytest.approx(6.0 if name == "length" else 1.0)


def test_misspelt_metric_name_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'rouge'"):
        build_metric("rogue")


def test_misspelt_option_name_suggests_the_right_one() -> None:
    with pytest.raises(ConfigError, match="unknown option 'varient'.*Did you mean 'variant'"):
        build_metric("rouge", {"varient": "rouge1"})


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("rouge", {"variant": "rougeX"}, "option 'variant' must be one of 'rouge1'"),
        ("rouge", {"measure": "f1"}, "option 'measure' must be one of"),
        ("rouge1", {"use_stemmer": "yes"}, "option 'use_stemmer' must be true or false"),
        ("f1", {"average": "binary"}, "option 'average' must be one of 'macro', 'micro'"),
        ("f1", {"labels": []}, "option 'labels' must list at least one label"),
        ("exact_match", {"normalize": ["case", "accents"]}, "option 'normalize' must be one of"),
        ("exact_match", {"normalize": "cas"}, "Did you mean 'case'"),
        ("bleu", {"smoothing": "method9"}, "option 'smoothing' must be one of 'method0'"),
        ("bleu", {"max_n": 0}, "option 'max_n' must be an integer between 1 and 10"),
        ("bleu", {"max_n": 2, "weights": [0.5, 0.5]}, "give 'max_n' or 'weights', not both"),
        ("bleu", {"weights": [-1, 2]}, "option 'weights' must be a non-empty list"),
        ("bleu", {"tokenize": "spm"}, "option 'tokenize' must be one of 'whitespace', '13a'"),
        ("sacrebleu", {"tokenize": "spm"}, "option 'tokenize' must be one of '13a'"),
        ("chrf", {"char_order": 0}, "option 'char_order' must be an integer >= 1"),
        ("length", {"unit": "tokens"}, "option 'unit' must be one of 'words', 'characters'"),
    ],
)
def test_bad_option_values_name_the_option_and_the_allowed_values(
    name: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        build_metric(name, options)
    assert f"metric '{name}'" in str(info.value)


def test_building_metrics_does_not_import_reference_libraries_until_needed() -> None:
    code = (
        "import sys\n"
        "from pytest_llmeval.metrics import metric_names\n"
        "metric_names()\n"
        "heavy = {'sklearn', 'nltk', 'sacrebleu', 'rouge_score', 'scipy'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
