"""The human and judge-calibration gates on hand-built contexts (the evaluator is not needed)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from human_helpers import make_blind, rate, run_results, write_suite
from pydantic import ValidationError

from pytest_llmeval.errors import LLMEvalWarning
from pytest_llmeval.gates.base import GateContext
from pytest_llmeval.gates.human import HumanAgreementGate, HumanOutcome, HumanSpec, HumanWinRateGate
from pytest_llmeval.gates.judge_calibration import JudgeCalibrationGate, JudgeCalibrationSpec
from pytest_llmeval.human.storage import export_ratings


def _ctx(suite, results=None) -> GateContext:  # type: ignore[no-untyped-def]
    return GateContext(suite=suite, cases=suite.cases, results=results or run_results(suite),
                       model_name="finetuned", seed=3)


def _gates(spec: HumanSpec) -> dict[str, object]:
    return {g.kind: g for g in HumanWinRateGate.from_section(spec, suite_spec=None, line=4)}


@pytest.fixture
def rated(tmp_path: Path):  # type: ignore[no-untyped-def]
    suite = write_suite(tmp_path, 30)
    blind, mapping, _ = make_blind(tmp_path / "blind", suite)
    export_ratings(rate(blind, mapping, model_wins=0.8, keep=0.9), tmp_path / "ratings.jsonl", blind)
    return suite, blind, mapping


def test_spec_validates_thresholds_and_refuses_nan() -> None:
    with pytest.raises(ValidationError, match="finite number"):
        HumanSpec(blind_set="b", ratings="r.jsonl", min_win_rate=math.nan)
    with pytest.raises(ValidationError, match="outside the range"):
        HumanSpec(blind_set="b", ratings="r.jsonl", min_win_rate=1.5)
    with pytest.raises(ValidationError, match="outside the range"):
        HumanSpec(blind_set="b", ratings="r.jsonl", min_agreement={"alpha": 2})
    with pytest.raises(ValidationError, match="alpha' and/or 'kappa"):
        HumanSpec(blind_set="b", ratings="r.jsonl", min_agreement={})
    with pytest.raises(ValidationError, match="Extra inputs"):
        HumanSpec(blind_set="b", ratings="r.jsonl", min_winrate=0.5)
    with pytest.raises(ValidationError, match="finite number"):
        JudgeCalibrationSpec(min_kappa=math.nan)
    with pytest.raises(ValidationError, match="outside the range"):
        JudgeCalibrationSpec(min_kappa=-1.5)


def test_section_declares_a_win_rate_gate_and_an_agreement_gate() -> None:
    spec = HumanSpec(blind_set="b", ratings="r.jsonl", min_win_rate=0.6, min_agreement={"alpha": 0.4})
    gates = HumanWinRateGate.from_section(spec, suite_spec=None, line=4)
    assert [g.name for g in gates] == ["human_win_rate", "human_agreement[preference]"]
    assert len(HumanWinRateGate.from_section(HumanSpec(blind_set="b", ratings="r"), suite_spec=None,
                                             line=None)) == 1


def test_human_win_rate_gate_passes_and_fails_on_the_unblinded_majority(rated) -> None:  # type: ignore[no-untyped-def]
    suite, blind, mapping = rated
    ok = HumanWinRateGate("human_win_rate", HumanSpec(blind_set="blind", ratings="ratings.jsonl",
                                                      min_win_rate=0.6), None).evaluate(_ctx(suite))
    assert isinstance(ok, HumanOutcome) and ok.verdict == "pass", ok.message
    assert 0.6 < ok.aggregate.value <= 1 and ok.aggregate.n == 30
    res = ok.results
    assert res.wins + res.losses + res.ties == 30
    assert "W/L/T" in ok.message and "sign test" in ok.message
    # Unblinding is right: the model's criterion scores (5) beat the baseline's (2) whatever the A/B order.
    assert res.criteria["accuracy"]["model"].value == 5 and res.criteria["accuracy"]["baseline"].value == 2
    high = HumanWinRateGate("human_win_rate", HumanSpec(blind_set="blind", ratings="ratings.jsonl",
                                                        min_win_rate=0.99), None).evaluate(_ctx(suite))
    assert high.verdict == "fail" and "FAILED" in high.message
    strict = HumanWinRateGate("human_win_rate", HumanSpec(blind_set="blind", ratings="ratings.jsonl",
                                                          min_win_rate=ok.aggregate.value,
                                                          confidence=0.95), None).evaluate(_ctx(suite))
    assert strict.verdict == "fail"  # the interval's lower bound is below the point value


def test_agreement_gate_fails_when_raters_disagree(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, 40)
    blind, mapping, _ = make_blind(tmp_path / "blind", suite)
    export_ratings(rate(blind, mapping, model_wins=0.5, keep=0.15, seed=5), tmp_path / "noisy.jsonl", blind)
    export_ratings(rate(blind, mapping, model_wins=0.5, keep=0.95, seed=5), tmp_path / "clean.jsonl", blind)
    for file, verdict in (("noisy.jsonl", "fail"), ("clean.jsonl", "pass")):
        spec = HumanSpec(blind_set="blind", ratings=file, min_agreement={"alpha": 0.4, "kappa": 0.4})
        out = _gates(spec)["human_agreement"].evaluate(_ctx(suite))  # type: ignore[attr-defined]
        assert out.verdict == verdict, out.message
    noisy = _gates(HumanSpec(blind_set="blind", ratings="noisy.jsonl", min_agreement={"alpha": 0.4}))
    failed = noisy["human_agreement"].evaluate(_ctx(suite))  # type: ignore[attr-defined]
    assert failed.verdict == "fail" and "Krippendorff's alpha" in failed.message
    assert "disagree too much" in failed.message
    assert failed.aggregate.value < 0.4


def test_agreement_on_a_criterion_and_an_unknown_one(rated) -> None:  # type: ignore[no-untyped-def]
    suite, _, _ = rated
    spec = HumanSpec(blind_set="blind", ratings="ratings.jsonl", min_agreement={"alpha": 0.5, "on": "fluency"})
    out = HumanAgreementGate("human_agreement[fluency]", spec, None).evaluate(_ctx(suite))
    assert out.verdict == "pass" and out.aggregate.value == pytest.approx(1.0)
    spec = HumanSpec(blind_set="blind", ratings="ratings.jsonl", min_agreement={"alpha": 0.5, "on": "wit"})
    out = HumanAgreementGate("human_agreement[wit]", spec, None).evaluate(_ctx(suite))
    assert out.verdict == "error" and "'wit' is neither" in out.message


def test_stale_blind_set_is_an_error_that_says_so(rated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    suite, _, _ = rated
    spec = HumanSpec(blind_set="blind", ratings="ratings.jsonl", min_win_rate=0.5)
    gate = HumanWinRateGate("human_win_rate", spec, None)
    # A case the suite no longer has.
    fewer = write_suite(tmp_path, 29)
    out = gate.evaluate(_ctx(fewer))
    assert out.verdict == "error"
    assert "is stale" in out.message and "case 'c29' is no longer in the suite" in out.message
    # A prompt that changed.
    results = run_results(suite)
    results[3].prompt = "Say number three"
    out = gate.evaluate(_ctx(suite, results))
    assert out.verdict == "error" and "case 'c03': its prompt changed" in out.message
    # Temperature 0: an output that differs from the rated one.
    results = run_results(suite)
    results[4].output = "a different output"
    out = gate.evaluate(_ctx(suite, results))
    assert out.verdict == "error" and "finetuned's output differs" in out.message
    assert "temperature 0" in out.message


def test_with_sampling_changed_outputs_are_a_warning(tmp_path: Path) -> None:
    suite = write_suite(tmp_path, 12, temperature=0.7)
    blind, mapping, _ = make_blind(tmp_path / "blind", suite)
    export_ratings(rate(blind, mapping, model_wins=1.0, keep=1.0), tmp_path / "r.jsonl", blind)
    results = run_results(suite)
    results[0].baseline_output = "something else"
    gate = HumanWinRateGate("human_win_rate", HumanSpec(blind_set="blind", ratings="r.jsonl",
                                                        min_win_rate=0.5), None)
    with pytest.warns(LLMEvalWarning, match="base's output differs"):
        out = gate.evaluate(_ctx(suite, results))
    assert out.verdict == "pass" and out.aggregate.details["stale_warnings"]


def test_bad_ratings_file_is_an_error_naming_the_line(rated, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    suite, _, _ = rated
    lines = (tmp_path / "ratings.jsonl").read_text().splitlines()
    lines[2] = lines[2].replace('"preference": "', '"preference": "X')
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    out = HumanWinRateGate("human_win_rate", HumanSpec(blind_set="blind", ratings="bad.jsonl"),
                           None).evaluate(_ctx(suite))
    assert out.verdict == "error" and "bad.jsonl:3: preference must be one of" in out.message
    out = HumanWinRateGate("human_win_rate", HumanSpec(blind_set="nowhere", ratings="bad.jsonl"),
                           None).evaluate(_ctx(suite))
    assert out.verdict == "error" and "blind set not found" in out.message


def _with_judge(suite, verdicts: dict[str, str], consistent: bool = True):  # type: ignore[no-untyped-def]
    results = run_results(suite)
    for r in results:
        if r.id in verdicts:
            r.judge["pairwise"] = {"verdict": verdicts[r.id], "winner": "A", "consistent": consistent}
    return results


def test_judge_calibration_compares_the_judge_with_the_human_majority(rated) -> None:  # type: ignore[no-untyped-def]
    suite, _, _ = rated
    human = HumanWinRateGate("human_win_rate", HumanSpec(blind_set="blind", ratings="ratings.jsonl"), None)
    ctx = _ctx(suite)
    ctx.gates["human_win_rate"] = human.evaluate(ctx)
    majority = ctx.gates["human_win_rate"].results.majority
    # A judge that agrees with the people everywhere.
    ctx.results = _with_judge(suite, majority)
    out = JudgeCalibrationGate("judge_calibration", JudgeCalibrationSpec(min_kappa=0.4), None).evaluate(ctx)
    assert out.verdict == "pass", out.message
    assert out.aggregate.value == pytest.approx(1.0)
    assert out.aggregate.details["raw_agreement"] == 1.0
    assert out.aggregate.details["position_consistency"] == 1.0
    assert "judge vs humans on 30 items" in out.aggregate.details["summary"]
    # A judge that says the opposite of the people.
    flip = {"win": "loss", "loss": "win", "tie": "win"}
    ctx.results = _with_judge(suite, {k: flip[v] for k, v in majority.items()}, consistent=False)
    out = JudgeCalibrationGate("judge_calibration", JudgeCalibrationSpec(min_kappa=0.4), None).evaluate(ctx)
    assert out.verdict == "fail" and out.aggregate.value < 0
    assert out.aggregate.details["position_consistency"] == 0.0
    assert "Cohen's kappa" in out.message


def test_judge_calibration_errors_without_human_results_or_judge_verdicts(rated) -> None:  # type: ignore[no-untyped-def]
    suite, _, _ = rated
    gate = JudgeCalibrationGate("judge_calibration", JudgeCalibrationSpec(min_kappa=0.4), None)
    ctx = _ctx(suite)
    out = gate.evaluate(ctx)
    assert out.verdict == "error" and "add a 'human:' section" in out.message
    ctx.gates["human_win_rate"] = HumanWinRateGate(
        "human_win_rate", HumanSpec(blind_set="blind", ratings="ratings.jsonl"), None).evaluate(ctx)
    out = gate.evaluate(ctx)
    assert out.verdict == "error" and "no verdict for 30 of the 30" in out.message
    assert "judge: {pairwise" in out.message
    assert JudgeCalibrationGate.run_after == ("win_rate", "human_win_rate")


def test_judge_calibration_row_shows_what_its_threshold_is_about(rated) -> None:  # type: ignore[no-untyped-def]
    suite, _, _ = rated
    ctx = _ctx(suite)
    ctx.gates["human_win_rate"] = HumanWinRateGate(
        "human_win_rate", HumanSpec(blind_set="blind", ratings="ratings.jsonl"), None).evaluate(ctx)
    majority = ctx.gates["human_win_rate"].results.majority
    first = next(iter(majority))
    judge = dict(majority)
    judge[first] = "tie" if majority[first] != "tie" else "win"  # one disagreement in 30
    ctx.results = _with_judge(suite, judge)
    by_agreement = JudgeCalibrationGate("judge_calibration", JudgeCalibrationSpec(min_agreement=0.9),
                                        None).evaluate(ctx)
    assert by_agreement.aggregate.method == "raw_agreement" and by_agreement.verdict == "pass"
    assert by_agreement.aggregate.value == pytest.approx(29 / 30)
    by_kappa = JudgeCalibrationGate("judge_calibration", JudgeCalibrationSpec(min_kappa=0.4, min_agreement=0.99),
                                    None).evaluate(ctx)
    assert by_kappa.aggregate.method == "cohen_kappa" and by_kappa.verdict == "fail"
    assert "raw agreement 97% < 99%" in by_kappa.message
    report_only = JudgeCalibrationGate("judge_calibration", JudgeCalibrationSpec(), None).evaluate(ctx)
    assert report_only.verdict == "none" and report_only.report


def test_json_schema_of_the_sections_states_the_ranges() -> None:
    human = HumanSpec.model_json_schema(mode="validation")
    assert human["properties"]["min_win_rate"]["maximum"] == 1
    assert set(human["required"]) == {"blind_set", "ratings"}
    calib = JudgeCalibrationSpec.model_json_schema(mode="validation")
    assert calib["properties"]["min_kappa"]["minimum"] == -1
