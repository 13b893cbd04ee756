"""Latency and cost gates over the per-request records of the results file."""

from __future__ import annotations

import json

import pytest

from .conftest import results, write


def _outputs(evaldir: pytest.Pytester, latencies: list[float], costs: list[float | None]) -> None:
    lines = []
    for i, (lat, cost) in enumerate(zip(latencies, costs, strict=True)):
        rec = {"id": f"c{i}", "output": "ok", "latency_s": lat}
        if cost is not None:
            rec["cost_usd"] = cost
        lines.append(json.dumps(rec))
    write(evaldir, "outs.jsonl", "\n".join(lines) + "\n")
    cases = "\n".join(f"  - {{id: c{i}, text: t{i}}}" for i in range(len(latencies)))
    write(evaldir, "lc.eval.yaml", "model: outputs:outs.jsonl\nprompt: '{text}'\ncases:\n" + cases + "\n"
          "latency: {p50_ms: 150, p95_ms: 900}\ncost: {max_usd: 0.05}\n")


def test_latency_and_cost_pass_and_are_recorded(evaldir: pytest.Pytester, dist: list[str]) -> None:
    _outputs(evaldir, [0.1] * 19 + [0.5], [0.001] * 20)
    result = evaldir.runpytest("-q", "--llmeval-json", "r.json", *dist)
    result.assert_outcomes(passed=22)
    suite = results(evaldir, "r.json")["suites"][0]
    aggs = {a["name"]: a for a in suite["aggregates"]}
    assert aggs["latency"]["details"]["percentiles"]["p50_ms"]["value"] == pytest.approx(100.0)
    assert aggs["cost"]["value"] == pytest.approx(0.02)
    assert suite["cases"][0]["requests"][0]["latency_s"] == pytest.approx(0.1)
    assert suite["cases"][0]["requests"][0]["cost_usd"] == pytest.approx(0.001)


def test_latency_over_its_limit_fails_with_the_percentile(evaldir: pytest.Pytester) -> None:
    _outputs(evaldir, [0.1] * 10 + [1.0] * 10, [0.001] * 20)
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=21, failed=1)
    result.stdout.fnmatch_lines(["*latency over its limits*p50_ms = 550.0 ms > 150 ms*p95_ms = 1000 ms > 900 ms*"])


def test_cost_over_budget_fails(evaldir: pytest.Pytester) -> None:
    _outputs(evaldir, [0.1] * 20, [0.01] * 20)
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=21, failed=1)
    result.stdout.fnmatch_lines(["*cost over budget: total $0.200 > $0.05*"])


def test_unknown_cost_is_an_error_not_a_pass(evaldir: pytest.Pytester) -> None:
    _outputs(evaldir, [0.1] * 20, [None] * 20)
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=21, errors=1)
    result.stdout.fnmatch_lines(["*cost of 20 request(s) is unknown*price*"])
