"""Three shards merged give the values, intervals and verdicts of one unsharded run."""

from __future__ import annotations

import pytest

from pytest_llmeval.cli import main as llmeval
from scale.shard_helpers import case_records, gate_records, load, make_project


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", "-q", *args)


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    make_project(pytester)
    full = _run(pytester, "--llmeval-json", "full.json")
    assert full.ret in (0, 1), full.stdout.str()
    return pytester


@pytest.mark.parametrize("mode", [["--llmeval-shard-cases"],
                                  pytest.param([], marks=pytest.mark.slow)], ids=["by-case", "by-suite"])
def test_three_shards_merged_equal_one_unsharded_run(project: pytest.Pytester, mode: list[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for k in (1, 2, 3):
        res = _run(project, "--llmeval-shard", f"{k}/3", *mode, "--llmeval-json", f"shard{k}.json")
        assert res.ret in (0, 1, 5), res.stdout.str()
    monkeypatch.chdir(project.path)
    code = llmeval(["merge", "shard1.json", "shard2.json", "shard3.json", "-o", "merged.json"])
    full, merged = load(project.path / "full.json"), load(project.path / "merged.json")
    assert code == (1 if any(a["passed"] is False for s in full["suites"] for a in s["aggregates"]) else 0)
    want, got = gate_records(full), gate_records(merged)
    assert sorted(got) == sorted(want)
    assert len(want) > 20
    for key, agg in want.items():
        assert got[key] == agg, key
    assert case_records(merged) == case_records(full)  # latency aside: each run measures its own
    assert [s["warnings"] for s in merged["suites"]] == [s["warnings"] for s in full["suites"]]
    assert merged["usage"] == full["usage"]
