"""Shared builders: a suite, its run results and a blind set that matches them."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.human.blindset import SourceCase, create_blind_set, write_blind_set
from pytest_llmeval.human.storage import Rating
from pytest_llmeval.results import CaseResult
from pytest_llmeval.spec import Suite, load_suite

CRITERIA = ("accuracy", "relevance", "format_compliance", "fluency")


def need(what: str) -> None:
    """Skip on a developer's machine, fail in CI, when a component CI installs is missing."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(what, allow_module_level=True)


def write_suite(dir_: Path, n: int, temperature: float = 0.0) -> Suite:
    lines = ["name: tiny", "model: finetuned", "baseline: base",
             f"generation: {{temperature: {temperature}}}", "cases:"]
    for i in range(n):
        lines.append(f"  - {{id: c{i:02d}, prompt: 'Say number {i}', category: {'odd' if i % 2 else 'even'}}}")
    path = dir_ / "tiny.eval.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_suite(path)


def model_output(i: int) -> str:
    return f"number {i}"


def baseline_output(i: int) -> str:
    return f"I think it is {i}, maybe"


def run_results(suite: Suite) -> list[CaseResult]:
    out = []
    for i, case in enumerate(suite.cases):
        out.append(CaseResult(id=case.id, prompt=suite.render(case), output=model_output(i),
                              baseline_output=baseline_output(i), category=case.category))
    return out


def source_cases(suite: Suite) -> list[SourceCase]:
    return [SourceCase(r.id, r.prompt, r.output or "", r.baseline_output or "", None, r.category)
            for r in run_results(suite)]


def make_blind(dir_: Path, suite: Suite, raters: tuple[str, ...] = ("alice", "bob", "carol"),
               per_item: int = 3, seed: int = 0) -> tuple[Any, Any, dict[str, str]]:
    blind, mapping, tokens = create_blind_set(source_cases(suite), model="finetuned", baseline="base",
                                              raters=list(raters), per_item=per_item, seed=seed)
    write_blind_set(dir_, blind, mapping, tokens)
    return blind, mapping, tokens


def rate(blind: Any, mapping: Any, *, model_wins: float, keep: float, seed: int = 1) -> list[Rating]:
    """Ratings where each rater prefers the model on a share of items (per item truth), keeping it with
    probability ``keep`` and guessing otherwise."""
    rng = random.Random(seed)
    truth = {it.id: ("model" if rng.random() < model_wins else "baseline") for it in blind.items}
    out = []
    for rater, queue in blind.queues.items():
        for item_id in queue:
            side = truth[item_id]
            label = "A" if mapping.a_is[item_id] == side else "B"
            if rng.random() >= keep:
                label = rng.choice(["A", "B", "tie"])
            good = {c: 5 for c in CRITERIA}
            bad = {c: 2 for c in CRITERIA}
            a_model = mapping.a_is[item_id] == "model"
            scores = {"A": good if a_model else bad, "B": bad if a_model else good}
            out.append(Rating(rater, item_id, scores, label, ""))
    return out
