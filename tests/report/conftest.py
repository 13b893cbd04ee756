"""Runs built in code for the report tests: a baseline and a new run with hostile outputs."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_llmeval.compare import Comparison, compare_runs
from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult

HOSTILE = [
    "<script>window.__pwned = 1</script>",
    "</script><script>window.__pwned = 2</script>",
    '<img src=x onerror="window.__pwned = 3">',
    "<!-- <script>window.__pwned = 4</script>",
    "| pipes | and `ticks` **bold** [link](http://example.invalid)",
]


def build_run(n: int = 40, *, worse_from: int | None = None, seed: int = 0) -> RunResult:
    """A run of suite ``qa``; cases from index ``worse_from`` on get every answer wrong."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        right = i % 4 != 3 and (worse_from is None or i < worse_from)
        output = HOSTILE[i] if i < len(HOSTILE) else ("Paris" if right else f"Lyon {i}")
        rouge = float(np.clip(rng.normal(0.8 if right else 0.3, 0.1), 0, 1))
        score = 8 if right else 3
        cases.append(CaseResult(
            id=f"case-{i:03d}",
            prompt=[{"role": "system", "content": "Answer briefly."},
                    {"role": "user", "content": f"Capital of France? #{i} <b>bold?</b>"}],
            output=output, reference="Paris", baseline_output="Paris, I think",
            scores={"exact_match": float(right), "rougeL": rouge},
            status="failed" if i == 7 else "passed", category="geo" if i % 2 else "misc",
            checks=[{"check": "contains: Paris", "passed": i != 7, "line": 12,
                     "message": "output does not contain 'Paris' <script>window.__pwned = 7</script>"
                     if i == 7 else None}],
            requests=[{"latency_s": 0.2 + i / 1000, "input_tokens": 20 + i, "output_tokens": 5,
                       "cost_usd": 0.0001, "cached": False}],
            judge={"score": {"score": score,
                             "reasoning": f"reason {i} <script>window.__pwned = 5</script>"},
                   "pairwise": {"verdict": "win" if right else "loss",
                                "winner": "A" if right else "B"}}))
    em = float(np.mean([c.scores["exact_match"] for c in cases]))
    rl = float(np.mean([c.scores["rougeL"] for c in cases]))
    js = float(np.mean([c.judge["score"]["score"] for c in cases]))
    wins = sum(c.judge["pairwise"]["verdict"] == "win" for c in cases)
    aggs = [
        AggregateResult(name="exact_match", value=em, ci=(em - 0.1, min(1.0, em + 0.1)), n=n,
                        threshold=0.6, passed=em >= 0.6, metric="exact_match", method="wilson",
                        details={"metric_kind": "proportion", "interval_confidence": 0.95,
                                 "vs_baseline": {"model": "base", "value": 0.55, "ci": [0.4, 0.7],
                                                 "delta": em - 0.55, "delta_ci": [em - 0.7, em - 0.4]}}),
        AggregateResult(name="rougeL", value=rl, ci=(rl - 0.05, rl + 0.05), n=n, metric="rougeL",
                        details={"metric_kind": "mean"}),
        AggregateResult(name="judge_score", kind="judge_score", value=js, ci=(js - 0.5, js + 0.5),
                        n=n, threshold=6.0, passed=js >= 6.0),
        AggregateResult(name="win_rate[ft>base]", kind="win_rate", model="ft", value=wins / n,
                        ci=(wins / n - 0.1, wins / n + 0.1), n=n, threshold=0.5,
                        passed=wins / n >= 0.5,
                        details={"wins": wins, "ties": 0, "losses": n - wins, "lc_win_rate": 0.41,
                                 "min_lc_win_rate": 0.5, "lc_passed": False, "sign_test_p": 0.0004,
                                 "consistency_rate": 0.9, "first_position_preference": 0.55}),
    ]
    categories = {"exact_match": []}
    for cat in ("geo", "misc"):
        vals = [c.scores["exact_match"] for c in cases if c.category == cat]
        v = float(np.mean(vals))
        categories["exact_match"].append(AggregateResult(
            name="exact_match", value=v, ci=(max(0.0, v - 0.15), min(1.0, v + 0.15)), n=len(vals),
            kind="category", category=cat, metric="exact_match", threshold=0.6))
    suite = SuiteResult(name="qa <script>window.__pwned = 6</script>", file="evals/qa.eval.yaml",
                        model="ft", baseline="base", n_cases=n, suite_hash="h1",
                        aggregates=aggs, categories=categories, cases=cases)
    return RunResult(suites=[suite], models={"ft": {"scheme": "hf", "target": "out/ft",
                                                    "fingerprint": "f" * 32}})


@pytest.fixture
def baseline_run() -> RunResult:
    return build_run()


@pytest.fixture
def new_run() -> RunResult:
    return build_run(worse_from=20)


@pytest.fixture
def comparison(baseline_run: RunResult, new_run: RunResult) -> Comparison:
    return compare_runs(baseline_run, new_run)
