"""Helpers of the execution tests: start a sandbox or skip (fail in CI), build a gate context by hand."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.errors import SandboxUnavailable
from pytest_llmeval.execution.sandbox import Limits, Sandbox
from pytest_llmeval.gates.base import BaselineRun, GateContext
from pytest_llmeval.gates.pass_at_k import ExecuteSpec, PassAtKGate
from pytest_llmeval.results import CaseResult
from pytest_llmeval.spec import Case, Suite, SuiteSpec


def context(records: list[dict[str, Any]], samples: list[list[str | None]], *, repeat: int | None = None,
            baseline: dict[str, str | None] | None = None, categories: list[str] | None = None,
            id_field: str = "task_id") -> GateContext:
    """One case per record (its fields as the case's fields), with the given samples as outputs."""
    n = repeat or max(len(s) for s in samples)
    cases, results = [], []
    for i, (rec, outs) in enumerate(zip(records, samples, strict=True)):
        cid = str(rec.get(id_field, i))
        cat = categories[i] if categories else None
        cases.append(Case(id=cid, fields=dict(rec), reference=None, checks=[], category=cat, line=i + 1,
                          source="cases.jsonl"))
        res = CaseResult(id=cid, prompt=rec.get("prompt"), output=outs[0], category=cat)
        if len(outs) > 1:
            res.samples = list(outs)
        results.append(res)
    suite = Suite(name="code", path=Path("code.eval.yaml"), spec=SuiteSpec(cases=[], repeat=n), cases=cases,
                  gates=[], suite_hash="test", template_fields=[])
    base = BaselineRun(name="base", outputs=baseline) if baseline is not None else None
    return GateContext(suite=suite, cases=cases, results=results, model_name="model", baseline=base, seed=0)


def gates(section: dict[str, Any], repeat: int = 1) -> list[PassAtKGate]:
    spec = ExecuteSpec.model_validate(section)
    return PassAtKGate.from_section(spec, suite_spec=SuiteSpec(cases=[], repeat=repeat), line=3)  # type: ignore[return-value]


def run(section: dict[str, Any], ctx: GateContext) -> dict[str, Any]:
    """Prepare and evaluate every gate of a section; outcomes by name."""
    gs = gates(section, repeat=ctx.suite.spec.repeat)
    for g in gs:
        g.prepare_cases(ctx)
    return {g.name: g.evaluate(ctx) for g in gs}


def require(what: str, why: str) -> None:
    """Skip on a developer machine, fail in CI (``CI`` set), when a component CI installs is missing."""
    message = f"{what} is unavailable here: {why}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message, allow_module_level=True)


def start_sandbox(limits: Limits, **kwargs: object) -> Sandbox:
    try:
        return Sandbox(limits, **kwargs)  # type: ignore[arg-type]
    except SandboxUnavailable as exc:
        require("the execution sandbox (bubblewrap)", str(exc))
        raise


def import_or_require(module: str) -> Any:
    """Import a module of the 'code' extra; skip without it (fail in CI, which installs it)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        require(f"the 'code' extra ({module})", f"{exc}; pip install 'pytest-llmevals[code]'")
