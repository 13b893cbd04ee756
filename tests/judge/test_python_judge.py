from __future__ import annotations

import textwrap

import pytest

from pytest_llmeval.errors import ConfigError, JudgeError
from pytest_llmeval.judge import load_judge
from pytest_llmeval.judge.base import CompareRequest, ScoreRequest

MODULE = '''
import asyncio

def simple(kind, prompt, response=None, response_a=None, response_b=None, reference=None):
    if kind == "score":
        if response == "raise":
            raise RuntimeError("judge exploded")
        if response == "bad":
            return {"score": 99}
        if response == "json":
            return '{"reasoning": "from json", "score": 4}'
        return {"score": len(response), "reasoning": "length"}
    return "A" if len(response_a) > len(response_b) else "B"

async def coro(kind, **fields):
    await asyncio.sleep(0.01)
    if kind == "score":
        return 5
    return {"winner": "A", "reasoning": "always the first"}

def rubric(kind, rubric, **_):
    return {"scores": {k: 3 for k in rubric}, "reasoning": "middle"}
'''


@pytest.fixture
def base_dir(tmp_path):
    (tmp_path / "my_judges_mod.py").write_text(textwrap.dedent(MODULE))
    return tmp_path


def test_sync_function_scores_and_compares(base_dir):
    judge = load_judge("python:my_judges_mod:simple", base_dir=base_dir)
    assert judge.score("q", "abc").score == 3.0
    assert judge.score("q", "json").reasoning == "from json"
    v = judge.compare("q", "long answer", "short")
    assert v.winner == "A" and v.consistent is True


def test_exceptions_and_invalid_returns_are_per_verdict_errors(base_dir):
    judge = load_judge("python:my_judges_mod:simple", base_dir=base_dir)
    ok, raised, bad = judge.score_many([ScoreRequest("q", "abc"), ScoreRequest("q", "raise"),
                                        ScoreRequest("q", "bad")])
    assert ok.score == 3.0
    assert isinstance(raised, JudgeError) and "judge exploded" in str(raised)
    assert isinstance(bad, JudgeError) and "from 1 to 10" in str(bad) and "99" in str(bad)


def test_async_function_runs_and_position_bias_shows_as_tie(base_dir):
    judge = load_judge("python:my_judges_mod:coro", options={"concurrency": 4},
                       base_dir=base_dir)
    assert [v.score for v in judge.score_many([ScoreRequest("q", "x")] * 3)] == [5.0] * 3
    pair = judge.compare_many([CompareRequest("q", "x", "y")])[0]
    assert pair.winner == "tie" and pair.consistent is False


def test_rubric_function(base_dir):
    judge = load_judge("python:my_judges_mod:rubric", options={"rubric": ["Accuracy", "Fluency"]},
                       base_dir=base_dir)
    v = judge.score("q", "r")
    assert v.rubric == {"Accuracy": 3.0, "Fluency": 3.0} and v.scale == (1, 5)


def test_unknown_option_and_bad_reference(base_dir):
    with pytest.raises(ConfigError, match="Did you mean 'scale'"):
        load_judge("python:my_judges_mod:simple", options={"scael": [1, 5]}, base_dir=base_dir)
    with pytest.raises(ConfigError, match="cannot import module"):
        load_judge("python:no_such_module_xyz:fn", base_dir=base_dir)
    with pytest.raises(ConfigError, match="invalid judge reference"):
        load_judge("gpt-4o", base_dir=base_dir)
    with pytest.raises(ConfigError, match="Did you mean 'similarity:'"):
        load_judge("similarty:", base_dir=base_dir)


def test_the_judge_module_is_also_found_in_search_dirs(base_dir, tmp_path_factory):
    from pytest_llmeval.judge import python_judge

    suite_dir = tmp_path_factory.mktemp("suite")
    judge = python_judge.load("my_judges_mod:simple", name="j", options={}, base_dir=suite_dir,
                              search_dirs=[base_dir])
    assert judge.score("p", "abc", criteria="c").score == 3
