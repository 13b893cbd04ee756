"""The example code suite's data through the pass_at_k gate (as the suite file declares it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from execution_helpers import context, run

SUITE = Path(__file__).parents[2] / "example_suite" / "code"


def _load() -> tuple[dict, list[dict], list[list[str]]]:
    suite = yaml.safe_load((SUITE / "humaneval.eval.yaml").read_text())
    problems = [json.loads(line) for line in (SUITE / "data" / "problems.jsonl").read_text().splitlines()]
    outputs: dict[str, dict[int, str]] = {}
    for line in (SUITE / "data" / "completions.jsonl").read_text().splitlines():
        rec = json.loads(line)
        outputs.setdefault(rec["id"], {})[rec["sample"]] = rec["output"]
    samples = [[outputs[p["id"]][s] for s in range(suite["repeat"])] for p in problems]
    return suite, problems, samples


def test_example_suite_passes_its_gates() -> None:
    suite, problems, samples = _load()
    ctx = context(problems, samples, id_field="id")
    out = run(suite["execute"], ctx)
    assert out["pass@1"].aggregate.value == pytest.approx(22 / 40)
    assert out["pass@4"].aggregate.value == pytest.approx(9 / 10)
    assert out["pass@1"].verdict == "pass" and out["pass@4"].verdict == "pass"
    assert [r.extra["execution"]["passed"] for r in ctx.results] == [4, 4, 3, 3, 2, 2, 2, 1, 1, 0]
    last = ctx.results[-1].extra["execution"]["samples"][-1]
    assert last["status"] == "timeout"


def test_without_postprocessing_the_chat_shaped_answers_fail() -> None:
    suite, problems, samples = _load()
    section = {**suite["execute"], "postprocess": {"strip_fences": False, "stop_at_next_def": False}}
    ctx = context(problems[:3], samples[:3], id_field="id")
    out = run(section, ctx)
    # Of the first three problems' 11 right answers, the fenced and the trailing-print ones now fail.
    assert out["pass@1"].aggregate.value < 11 / 12
    reasons = " ".join(s["reason"] for r in ctx.results for s in r.extra["execution"]["samples"])
    assert "SyntaxError" in reasons and "failed to load" in reasons
