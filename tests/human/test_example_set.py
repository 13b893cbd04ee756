"""The example blind set (example_suite/human): its ratings show the planted agreement, the set still
matches the rewrite suite's cases, and the same set rated carelessly fails its agreement gate."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from pytest_llmeval.gates.base import GateContext
from pytest_llmeval.gates.human import HumanSpec, HumanWinRateGate
from pytest_llmeval.human.analysis import analyse
from pytest_llmeval.human.blindset import load_blind_set, load_mapping
from pytest_llmeval.human.storage import export_ratings, load_ratings
from pytest_llmeval.results import CaseResult
from pytest_llmeval.spec import load_suite

EXAMPLE = Path(__file__).resolve().parents[2] / "example_suite"
HUMAN = EXAMPLE / "human"
TOLERANCE = 0.1
"""About 1.3 standard errors of kappa on 40 items with 3 raters at this agreement."""


def _simulator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("simulate_raters", HUMAN / "simulate_raters.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _ctx_reproducing_the_rated_outputs() -> GateContext:
    """The rewrite suite (same cases and prompt as human.eval.yaml) with a run that reproduces the
    outputs that were rated, as temperature 0 does."""
    suite = load_suite(EXAMPLE / "rewrite.eval.yaml")
    blind = load_blind_set(HUMAN)
    mapping = load_mapping(HUMAN, blind)
    by_id = blind.by_id
    results = []
    for case in suite.cases:
        it = by_id.get(case.id)
        model = base = f"output of {case.id}"
        if it is not None:
            a_model = mapping.a_is[case.id] == "model"
            model, base = (it.output_a, it.output_b) if a_model else (it.output_b, it.output_a)
        results.append(CaseResult(id=case.id, prompt=suite.render(case), output=model, baseline_output=base))
    return GateContext(suite=suite, cases=suite.cases, results=results, model_name="finetuned", seed=0)


def test_computed_agreement_is_the_planted_one() -> None:
    sim = _simulator()
    blind = load_blind_set(HUMAN)
    ratings = load_ratings(HUMAN / "ratings.jsonl", blind)
    # The committed ratings are what the script produces.
    assert [r.to_dict() | {"created_at": "", "updated_at": ""} for r in ratings] == [
        r.to_dict() for r in sim.simulate(blind, sim.KEEP, sim.SCORE_NOISE)]
    res = analyse(blind, load_mapping(HUMAN, blind), ratings)
    planted = sim.planted_kappa(blind, sim.KEEP)
    pref = res.agreement["preference"]
    assert pref.fleiss_kappa == pytest.approx(planted, abs=TOLERANCE)
    assert pref.alpha == pytest.approx(planted, abs=TOLERANCE)
    # Carol guesses most: she agrees least with the others.
    cohen = {frozenset(k): v for k, (v, _) in pref.cohen.items()}
    assert cohen[frozenset({"alice", "bob"})] > cohen[frozenset({"alice", "carol"})]
    assert cohen[frozenset({"alice", "bob"})] > cohen[frozenset({"bob", "carol"})]


def test_example_gates_pass_on_the_committed_ratings() -> None:
    ctx = _ctx_reproducing_the_rated_outputs()
    spec = HumanSpec(blind_set="human", ratings="human/ratings.jsonl", min_win_rate=0.6, confidence=0.95,
                     min_agreement={"alpha": 0.4})
    outcomes = [g.evaluate(ctx) for g in HumanWinRateGate.from_section(spec, suite_spec=None, line=None)]
    assert [o.verdict for o in outcomes] == ["pass", "pass"], [o.message for o in outcomes]


def test_the_same_set_rated_carelessly_fails_its_agreement_gate(tmp_path: Path) -> None:
    sim = _simulator()
    blind = load_blind_set(HUMAN)
    careless = {r: 0.1 for r in sim.KEEP}
    export_ratings(sim.simulate(blind, careless, {r: 2.0 for r in sim.KEEP}), tmp_path / "careless.jsonl", blind)
    ctx = _ctx_reproducing_the_rated_outputs()
    spec = HumanSpec(blind_set=str(HUMAN), ratings=str(tmp_path / "careless.jsonl"), min_win_rate=0.6,
                     min_agreement={"alpha": 0.4})
    _win, agree = (g.evaluate(ctx) for g in HumanWinRateGate.from_section(spec, suite_spec=None, line=None))
    assert agree.verdict == "fail", agree.message
    assert agree.aggregate.value < 0.2
    assert sim.planted_kappa(blind, careless) < 0.05
