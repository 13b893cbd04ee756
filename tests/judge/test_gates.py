from __future__ import annotations

from pathlib import Path

import pytest
from judge_fakes import ScriptedModel, blocks, longer_wins, score_by_length

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.judge.gates import JudgeCase, run_pairwise_gate, run_score_gate
from pytest_llmeval.judge.llm import LLMJudge


def judge(responder, **options) -> LLMJudge:
    return LLMJudge(ScriptedModel(responder), "scripted", options, Path("."))


def cases(outputs, baselines=None):
    baselines = baselines or [None] * len(outputs)
    return [JudgeCase(f"c{i}", f"prompt {i}", o, b, None)
            for i, (o, b) in enumerate(zip(outputs, baselines, strict=True))]


def test_score_gate_passes_and_fails_on_the_mean():
    outs = ["x" * 75] * 9 + ["x" * 5]  # scores 8 x9 and 1
    passed = run_score_gate(judge(score_by_length), cases(outs), {"min_mean": 7},
                            confidence=0.95, seed=1)
    agg = passed.aggregate
    assert agg.kind == "judge_score" and agg.name == "judge_score" and agg.n == 10
    assert agg.value == pytest.approx(7.3) and agg.passed is True and agg.error is None
    assert agg.ci[0] <= 7.3 <= agg.ci[1]
    assert agg.details["histogram"] == {"1": 1, "8": 9}
    assert passed.per_case["c9"]["score"] == 1.0
    failed = run_score_gate(judge(score_by_length), cases(outs), {"min": 7.5},
                            confidence=0.95, seed=1)
    assert failed.aggregate.passed is False
    msg = failed.message
    assert "judge_score = 7.300" in msg and "n=10" in msg and ">= 7.5" in msg
    assert msg.index("case[c9] score 1") < msg.index("case[c0] score 8")
    assert "length 5" in msg  # the judge's reasoning


def test_score_gate_with_confidence_needs_the_lower_bound_to_clear():
    outs = ["x" * 75] * 9 + ["x" * 5]
    out = run_score_gate(judge(score_by_length), cases(outs), {"min_mean": 7.2, "confidence": 0.9},
                         confidence=0.95, seed=1)
    agg = out.aggregate
    assert agg.confidence == 0.9 and agg.value > 7.2 and agg.ci[0] < 7.2
    assert agg.passed is False and "lower bound of the 90% interval" in out.message


def test_score_gate_errors_when_a_verdict_or_an_output_is_missing():
    def responder(conv):
        if "broken" in blocks(conv[0]["content"])["RESPONSE"]:
            return "no JSON here"
        return '{"reasoning": "ok", "score": 9}'

    out = run_score_gate(judge(responder), cases(["fine", "broken", None]), {"min_mean": 1},
                         confidence=0.95, seed=0)
    agg = out.aggregate
    assert agg.passed is None and agg.value is None
    assert "case[c1]" in agg.error and "no JSON here" in agg.error
    assert "case[c2]" in agg.error and "no output" in agg.error
    assert out.per_case["c0"]["score"] == 9.0 and "error" in out.per_case["c1"]


def test_score_gate_rubric_means():
    def responder(conv):
        return '{"reasoning": "r", "scores": {"Accuracy": 5, "Fluency": 3}}'

    out = run_score_gate(judge(responder), cases(["a", "b"]),
                         {"rubric": {"Accuracy": "correct?", "Fluency": "natural?"}, "min_mean": 3},
                         confidence=0.95, seed=0)
    assert out.aggregate.value == 4.0 and out.aggregate.passed is True
    assert out.aggregate.details["rubric_means"] == {"Accuracy": 5.0, "Fluency": 3.0}
    assert out.aggregate.details["scale"] == [1, 5]


def test_pairwise_gate_reports_wins_and_lists_lost_cases():
    model = ["long answer here"] * 6 + ["no", "meh"]
    base = ["short"] * 6 + ["a longer baseline answer", "baseline wins again"]
    out = run_pairwise_gate(judge(longer_wins), cases(model, base),
                            {"against": "baseline", "min_win_rate": 0.8, "criteria": "quality"},
                            model_name="finetuned", baseline_name="base", confidence=0.95, seed=0)
    agg = out.aggregate
    assert agg.name == "win_rate[finetuned>base]" and agg.kind == "win_rate"
    assert agg.value == pytest.approx(6 / 8) and agg.passed is False
    d = agg.details
    assert (d["wins"], d["losses"], d["ties"]) == (6, 2, 0)
    assert d["consistency_rate"] == 1.0 and d["first_position_preference"] == 0.5
    assert d["sign_test_p"] == pytest.approx(0.2890625)
    assert d["mean_len_winner"] > d["mean_len_loser"]
    assert 0 <= d["lc_win_rate"] <= 1
    msg = out.message
    assert "W/L/T 6/2/0" in msg and "cases finetuned lost (2)" in msg
    assert "a longer baseline answer" in msg and "meh" in msg and "A has 2 chars" in msg
    assert out.per_case["c6"]["verdict"] == "loss" and out.per_case["c0"]["verdict"] == "win"


def test_pairwise_gate_without_swap_and_with_missing_baseline_output():
    out = run_pairwise_gate(judge(longer_wins), cases(["aa", "bb"], ["a", None]),
                            {"min_win_rate": 0.5, "swap": False}, model_name="ft",
                            baseline_name="base", confidence=0.95, seed=0)
    assert out.aggregate.passed is None and "base produced no output" in out.aggregate.error


@pytest.mark.parametrize("config, message", [
    ({"min_mena": 7}, "Did you mean 'min_mean'"),
    ({"min_mean": 7, "min": 6}, "either 'min_mean' or 'min'"),
    ({"min_mean": "high"}, "valid number"),
    ({"confidence": 95}, "confidence: Input should be less than 1"),
])
def test_bad_score_gate_config(config, message):
    with pytest.raises(ConfigError, match=message):
        run_score_gate(judge(score_by_length), cases(["x"]), config, confidence=0.95, seed=0)


def test_bad_pairwise_gate_config():
    with pytest.raises(ConfigError, match="min_win_rate: Input should be less than or equal to 1"):
        run_pairwise_gate(judge(longer_wins), cases(["x"], ["y"]), {"min_win_rate": 60},
                          model_name="ft", baseline_name="base", confidence=0.95, seed=0)
