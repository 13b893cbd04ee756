"""The regression gate: paired tests between two runs, tolerances, and what it reports."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pytest_llmeval.compare import compare_runs
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult, load_results


def _run(correct: np.ndarray, *, suite: str = "qa", ids: list[str] | None = None,
         extra_aggs: list[AggregateResult] | None = None, **run_kw: object) -> RunResult:
    """A run of one suite whose exact_match per case is ``correct``."""
    ids = ids or [f"c{i}" for i in range(len(correct))]
    cases = [CaseResult(id=i, prompt=f"question {i}", output="right" if ok else f"wrong {i}",
                        reference="right", scores={"exact_match": float(ok)})
             for i, ok in zip(ids, correct, strict=True)]
    agg = AggregateResult(name="exact_match", value=float(np.mean(correct)), n=len(correct),
                          threshold=0.5, passed=True, metric="exact_match",
                          details={"metric_kind": "proportion"})
    s = SuiteResult(name=suite, file=f"evals/{suite}.eval.yaml", model="ft", n_cases=len(cases),
                    suite_hash="abc", aggregates=[agg, *(extra_aggs or [])], cases=cases)
    return RunResult(suites=[s], **run_kw)  # type: ignore[arg-type]


def test_identical_runs_show_no_significant_change() -> None:
    correct = np.random.default_rng(1).random(200) < 0.7
    cmp = compare_runs(_run(correct), _run(correct))
    gate = cmp.gate("qa", "exact_match")
    assert gate is not None
    assert not gate.regressed and not gate.improved
    assert gate.test == "McNemar exact"
    assert gate.p_value == 1.0 and gate.delta == 0.0
    assert cmp.passed and cmp.regressions == []
    assert "no significant regression" in cmp.format_text()


def test_false_alarm_rate_of_same_model_reruns_stays_near_alpha() -> None:
    # The same model sampled twice: each case is right with its own probability.
    rng = np.random.default_rng(7)
    alarms = 0
    trials = 200
    for seed in range(trials):
        p = rng.random(200)
        old = rng.random(200) < p
        new = rng.random(200) < p
        alarms += bool(compare_runs(_run(old), _run(new), seed=seed).regressions)
    assert alarms / trials <= 0.08


def test_planted_regression_of_15_percent_is_caught_and_named() -> None:
    rng = np.random.default_rng(3)
    old = rng.random(200) < 0.8
    new = old.copy()
    flipped = rng.choice(np.flatnonzero(old), size=30, replace=False)  # 15% of 200
    new[flipped] = False
    cmp = compare_runs(_run(old), _run(new))
    gate = cmp.gate("qa", "exact_match")
    assert gate is not None and gate.regressed
    assert gate.n_worse == 30 and gate.n_better == 0
    assert gate.p_adjusted is not None and gate.p_adjusted < 0.05
    assert {c.id for c in gate.worse_cases} == {f"c{i}" for i in flipped}
    assert all(c.old_score == 1.0 and c.new_score == 0.0 for c in gate.worse_cases)
    text = cmp.format_text(max_cases=3)
    assert "REGRESSED" in text and "30 cases got worse" in text
    first = gate.worse_cases[0]
    assert f"case {first.id}" in text and f"wrong {first.id}" in text
    msg = cmp.failure_message(gate)
    assert "evals/qa.eval.yaml::exact_match regressed" in msg and "McNemar" in msg and "30 worse" in msg
    assert "| this run" in msg  # outputs side by side


def test_better_cases_are_reported_and_improvement_detected() -> None:
    old = np.array([False] * 100 + [True] * 100)
    new = np.ones(200, dtype=bool)
    cmp = compare_runs(_run(old), _run(new))
    gate = cmp.gate("qa", "exact_match")
    assert gate is not None and gate.improved and not gate.regressed
    assert gate.n_better == 100 and len(gate.better_cases) == 50  # capped, count complete
    assert "100 cases got better" in cmp.format_text()


def test_missing_and_new_cases_and_suites_are_listed() -> None:
    old = _run(np.ones(5, dtype=bool), ids=["a", "b", "c", "d", "e"])
    new = _run(np.ones(5, dtype=bool), ids=["a", "b", "c", "x", "y"])
    new.suites.append(SuiteResult(name="extra", file="e.eval.yaml", model="ft"))
    old.suites.append(SuiteResult(name="gone", file="g.eval.yaml", model="ft"))
    cmp = compare_runs(old, new)
    qa = cmp.suite("qa")
    assert qa is not None
    assert qa.missing_cases == ["d", "e"] and qa.new_cases == ["x", "y"]
    assert cmp.new_suites == ["extra"] and cmp.missing_suites == ["gone"]
    gate = cmp.gate("qa", "exact_match")
    assert gate is not None and gate.n_paired == 3
    text = cmp.format_text()
    assert "2 cases missing from the new run: d, e" in text
    assert "2 new cases (not compared): x, y" in text
    assert "suite gone: missing from the new run" in text


def test_small_drop_beyond_tolerance_fails_without_significance() -> None:
    old = np.array([True] * 20)
    new = np.array([True] * 18 + [False] * 2)  # 2 flips: far from significant
    assert not compare_runs(_run(old), _run(new)).regressions
    cmp = compare_runs(_run(old), _run(new), max_regression=0.05)
    gate = cmp.gate("qa", "exact_match")
    assert gate is not None and gate.regressed
    assert "more than max_regression 0.05" in gate.reason


def test_per_aggregate_tolerance_overrides_the_run_default() -> None:
    old, new = _run(np.array([True] * 20)), _run(np.array([True] * 18 + [False] * 2))
    new.suites[0].aggregates[0].details["max_regression"] = 0.2
    cmp = compare_runs(old, new, max_regression=0.01)
    gate = cmp.gate("qa", "exact_match")
    assert gate is not None and gate.tolerance == 0.2 and not gate.regressed
    assert gate.reason == "no significant change"


def _scored_run(scores: np.ndarray, judge: list[dict[str, object]] | None = None,
                verdicts: list[str] | None = None) -> RunResult:
    n = len(scores)
    cases = []
    for i in range(n):
        j: dict[str, object] = dict(judge[i]) if judge else {}
        if verdicts:
            j["pairwise"] = {"winner": verdicts[i]}
        cases.append(CaseResult(id=str(i), prompt="p", output=f"o{i}",
                                scores={"rougeL": float(scores[i]), "bleu": float(scores[i])},
                                judge=j))
    aggs = [
        AggregateResult(name="rougeL", value=float(np.mean(scores)), metric="rougeL",
                        details={"metric_kind": "mean"}),
        AggregateResult(name="bleu", value=float(np.mean(scores)) * 0.9, metric="bleu",
                        details={"metric_kind": "corpus"}),
    ]
    if judge:
        aggs.append(AggregateResult(name="judge_score", kind="judge_score",
                                    value=float(np.mean([d["score"] for d in judge]))))  # type: ignore[misc]
    if verdicts:
        aggs.append(AggregateResult(name="win_rate[ft>base]", kind="win_rate", model="ft",
                                    value=sum(v == "ft" for v in verdicts) / n))
    suite = SuiteResult(name="gen", file="gen.eval.yaml", model="ft", baseline="base",
                        aggregates=aggs, cases=cases)
    return RunResult(suites=[suite])


def test_continuous_and_corpus_metrics_use_a_paired_bootstrap() -> None:
    rng = np.random.default_rng(0)
    old = rng.uniform(0.3, 0.9, 300)
    same = compare_runs(_scored_run(old), _scored_run(old + rng.normal(0, 0.01, 300)))
    worse = compare_runs(_scored_run(old), _scored_run(old - 0.1))
    for name in ("rougeL", "bleu"):
        g_same, g_worse = same.gate("gen", name), worse.gate("gen", name)
        assert g_same is not None and g_worse is not None
        assert g_worse.test.startswith("paired bootstrap")
        assert not g_same.regressed
        assert g_worse.regressed and g_worse.p_value is not None and g_worse.p_value < 0.01
    corpus = worse.gate("gen", "bleu")
    assert corpus is not None and corpus.test == "paired bootstrap (per-case scores)"
    assert corpus.delta == pytest.approx(-0.09)  # corpus values, not per-case means


def test_judge_scores_use_a_sign_test_on_per_case_differences() -> None:
    n = 60
    old_j = [{"score": 7, "reasoning": "fine"} for _ in range(n)]
    new_j = [{"score": 7 if i % 3 else 4, "reasoning": "worse"} for i in range(n)]
    cmp = compare_runs(_scored_run(np.full(n, 0.5), old_j), _scored_run(np.full(n, 0.5), new_j))
    gate = cmp.gate("gen", "judge_score")
    assert gate is not None and gate.test == "sign test on scores"
    assert gate.n_worse == 20 and gate.n_better == 0 and gate.regressed
    # The unchanged metrics of the same suite are not flagged.
    assert [g.name for g in cmp.regressions] == ["judge_score"]


def test_win_rate_uses_a_sign_test_on_verdict_changes() -> None:
    n = 80
    old_v = ["ft"] * 60 + ["tie"] * 20
    new_v = ["base"] * 30 + ["ft"] * 30 + ["tie"] * 20
    cmp = compare_runs(_scored_run(np.full(n, 0.5), verdicts=old_v),
                       _scored_run(np.full(n, 0.5), verdicts=new_v))
    gate = cmp.gate("gen", "win_rate[ft>base]")
    assert gate is not None and gate.test == "sign test on verdicts"
    assert gate.n_worse == 30 and gate.regressed
    assert gate.worse_cases[0].old_score == 1.0 and gate.worse_cases[0].new_score == 0.0


def test_lower_is_better_aggregates_regress_when_they_rise() -> None:
    def run(flags: list[int]) -> RunResult:
        cases = [CaseResult(id=str(i), prompt="p", output="o", scores={"toxicity": float(f)})
                 for i, f in enumerate(flags)]
        agg = AggregateResult(name="toxicity", value=float(np.mean(flags)), op="max",
                              threshold=0.2, details={"metric_kind": "proportion"})
        return RunResult(suites=[SuiteResult(name="s", file="s", model="m",
                                             aggregates=[agg], cases=cases)])

    cmp = compare_runs(run([0] * 100), run([1] * 30 + [0] * 70))
    gate = cmp.gate("s", "toxicity")
    assert gate is not None and not gate.higher_is_better
    assert gate.regressed and gate.n_worse == 30
    back = compare_runs(run([1] * 30 + [0] * 70), run([0] * 100)).gate("s", "toxicity")
    assert back is not None and back.improved and not back.regressed


def test_holm_correction_spans_every_gate_of_the_run() -> None:
    # One borderline McNemar result (p ~ 0.03): significant alone, not among many gates.
    old = np.array([True] * 100)
    new = np.array([True] * 95 + [False] * 5)
    single = compare_runs(_run(old), _run(new)).gate("qa", "exact_match")
    assert single is not None and single.regressed
    extra = [AggregateResult(name=f"m{i}", value=0.5) for i in range(4)]
    runs = (_run(old, extra_aggs=extra), _run(new, extra_aggs=extra))
    for run in runs:
        for c in run.suites[0].cases:
            c.scores.update({f"m{i}": 0.5 for i in range(4)})
    many = compare_runs(*runs)
    gate = many.gate("qa", "exact_match")
    assert gate is not None and gate.p_value == pytest.approx(single.p_value)
    assert gate.p_adjusted == pytest.approx(min(1.0, 5 * single.p_value))  # type: ignore[operator]
    assert not gate.regressed


def test_errored_aggregates_are_a_comparison_error_not_a_pass() -> None:
    old = _run(np.ones(10, dtype=bool))
    new = _run(np.zeros(10, dtype=bool))
    new.suites[0].aggregates[0].value = None
    new.suites[0].aggregates[0].error = "judge unreachable"
    cmp = compare_runs(old, new)
    gate = cmp.gate("qa", "exact_match")
    assert gate is not None and gate.status == "error" and gate.p_value is None
    assert gate.error is not None and "judge unreachable" in gate.error
    assert not cmp.passed and [r.status for r in cmp.results] == ["error"]


def test_incomparable_runs_are_warned_about() -> None:
    old = _run(np.ones(10, dtype=bool), plugin_version="0.9.0",
               models={"ft": {"fingerprint": "aaa"}, "judge": {"fingerprint": "j1"}},
               settings={"seed": 1, "json": "a.json", "model": "hf:old", "python": "3.10"})
    new = _run(np.ones(10, dtype=bool), plugin_version="1.0.0",
               models={"ft": {"fingerprint": "bbb"}, "judge": {"fingerprint": "j2"}},
               settings={"seed": 2, "json": "b.json", "model": "hf:new", "python": "3.11"})
    new.suites[0].suite_hash = "def"
    cmp = compare_runs(old, new)
    text = "\n".join(cmp.warnings)
    assert "plugin version 0.9.0 -> 1.0.0" in text
    assert "model 'judge'" in text and "not comparable" in text
    assert "setting 'seed' differs" in text
    assert "'json'" not in text and "'python'" not in text and "'model'" not in text
    assert any("setting 'model' differs" in n for n in cmp.notes)
    assert any("model 'ft' changed" in n for n in cmp.notes)  # the change under test
    qa = cmp.suite("qa")
    assert qa is not None and any("suite definition changed" in w for w in qa.warnings)


def test_comparison_is_plain_json_and_works_on_saved_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(5)
    old = rng.random(50) < 0.9
    new = old & (rng.random(50) < 0.5)
    _run(old).save(tmp_path / "old.json")
    _run(new).save(tmp_path / "new.json")
    cmp = compare_runs(load_results(tmp_path / "old.json"), load_results(tmp_path / "new.json"))
    data = json.loads(json.dumps(cmp.to_dict(), allow_nan=False))
    assert data["passed"] is False
    gate = data["suites"][0]["gates"][0]
    assert gate["regressed"] is True and gate["worse_cases"][0]["old_output"] == "right"


def test_comparison_is_reproducible_for_a_seed() -> None:
    rng = np.random.default_rng(2)
    old = rng.uniform(0, 1, 100)
    new = old + rng.normal(-0.02, 0.1, 100)
    a = compare_runs(_scored_run(old), _scored_run(new), seed=4).gate("gen", "rougeL")
    b = compare_runs(_scored_run(old), _scored_run(new), seed=4).gate("gen", "rougeL")
    assert a is not None and b is not None and a.p_value == b.p_value


def test_bad_alpha_is_rejected() -> None:
    run = _run(np.ones(3, dtype=bool))
    with pytest.raises(ConfigError, match="alpha"):
        compare_runs(run, run, alpha=1.5)
