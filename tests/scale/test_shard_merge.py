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


def test_shard_options_are_checked(pytester: pytest.Pytester) -> None:
    make_project(pytester, n_qa=6, n_short=3)
    for args, message in ((["--llmeval-shard", "4/3"], "*--llmeval-shard: the shard K of K/N must be between 1*"),
                          (["--llmeval-shard", "x"], "*--llmeval-shard: expected K/N*"),
                          (["--llmeval-shard-cases"], "*--llmeval-shard-cases needs --llmeval-shard K/N*"),
                          (["--llmeval-shard", "1/2", "--llmeval-durations", "nope.json"],
                           "*durations file not found: nope.json*"),
                          (["--llmeval-shard", "1/2", "--llmeval-shard-cases", "--llmeval-compare", "x.json"],
                           "*compare the merged run instead*")):
        res = _run(pytester, *args)
        assert res.ret == pytest.ExitCode.USAGE_ERROR
        res.stderr.fnmatch_lines([message])


def test_a_case_shard_defers_split_gates_and_records_the_shard(pytester: pytest.Pytester) -> None:
    make_project(pytester, n_qa=9, n_short=6)
    # short's exact_match (min 0.99) fails over the whole suite; a shard decides nothing about it
    res = _run(pytester, "-rs", "--llmeval-shard", "1/3", "--llmeval-shard-cases", "--llmeval-json", "s1.json")
    assert res.ret == 0, res.stdout.str()
    res.stdout.fnmatch_lines([
        "*shard 1/3: 8 gates of suites split over the shards*",
        "SKIPPED*deferred to 'llmeval merge': this shard (1/3) holds 2 of the suite's 6 cases; over them "
        "exact_match = 0.500 ?0.095, 0.905? (below the threshold here)"])
    data = load(pytester.path / "s1.json")
    assert data["settings"]["shard"] == {"shard": "1/3", "index": 1, "total": 3, "mode": "cases",
                                         "durations": None, "metrics": []}
    qa = next(s for s in data["suites"] if s["name"] == "qa")
    assert qa["split"]["shard"] == "1/3" and qa["split"]["cases"] == 3
    assert qa["split"]["baseline"] == {"name": "python:scalemodel:base", "error": None}
    assert {a["partial"]["of"] for a in qa["aggregates"]} == {9}
    assert all(r["partial"] for rows in qa["categories"].values() for r in rows)
    # llmeval report does not fail a shard on its partial gates
    assert llmeval(["report", str(pytester.path / "s1.json"), "--markdown", str(pytester.path / "s.md")]) == 0


def test_merged_run_reports_and_compares_like_an_unsharded_one(project: pytest.Pytester,
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    for k in (1, 2):
        _run(project, "--llmeval-shard", f"{k}/2", "--llmeval-shard-cases", "--llmeval-json", f"c{k}.json")
    monkeypatch.chdir(project.path)
    assert llmeval(["merge", "c1.json", "c2.json", "-o", "merged.json", "--html", "merged.html"]) == 1
    out = capsys.readouterr().out
    assert "short::exact_match 0.769 [0.497, 0.918] n=13 FAIL" in out
    assert "merged 2 results files: 2 suites, 54 cases, 8 gates; written to merged.json" in out
    assert "exact_match" in (project.path / "merged.html").read_text(encoding="utf-8")
    assert llmeval(["report", "merged.json", "--markdown", "merged.md"]) == 1  # the failing gate
    assert llmeval(["report", "full.json", "--markdown", "full.md"]) == 1
    assert llmeval(["compare", "full.json", "merged.json"]) == 0  # same cases, same verdicts: no change
    assert "regressed" not in capsys.readouterr().out.split("\n")[0]


@pytest.mark.slow
def test_case_shards_under_xdist_merge_to_the_serial_run(project: pytest.Pytester,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("xdist")
    for k in (1, 2, 3):
        _run(project, "-n", "2", "--llmeval-shard", f"{k}/3", "--llmeval-shard-cases", "--llmeval-json",
             f"x{k}.json")
    monkeypatch.chdir(project.path)
    llmeval(["merge", "x1.json", "x2.json", "x3.json", "-o", "merged.json"])
    assert gate_records(load(project.path / "merged.json")) == gate_records(load(project.path / "full.json"))


def test_durations_are_stored_and_used(pytester: pytest.Pytester) -> None:
    make_project(pytester, n_qa=6, n_short=3)
    project = pytester
    res = _run(project, "--llmeval-shard", "1/2", "--llmeval-store-durations", "durations.json",
               "--llmeval-json", "d1.json")
    res.stdout.fnmatch_lines(["*durations written to durations.json*"])
    recorded = load(project.path / "durations.json")
    assert set(recorded) <= {"evals/qa.eval.yaml", "evals/short.eval.yaml", "test_plain.py"}
    assert all(v >= 0 for v in recorded.values())
    res = _run(project, "--llmeval-shard", "2/2", "--llmeval-durations", "durations.json",
               "--llmeval-json", "d2.json")
    assert res.ret in (0, 1)
    assert load(project.path / "d2.json")["settings"]["shard"]["durations"] == "durations.json"
