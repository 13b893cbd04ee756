"""``llmeval merge`` refuses what it cannot merge honestly, with a message naming the files and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.cli import main as llmeval
from pytest_llmeval.errors import ResultsFileError
from pytest_llmeval.merge import MergeError, merge_files
from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult
from pytest_llmeval.sanitize import cap_outputs
from scale.shard_helpers import make_project


def _run(index: int, case_ids: list[str], *, file: str = "evals/a.eval.yaml", seed: int = 0,
         fingerprint: str = "f" * 16, total: int = 2, mode: str = "suites") -> RunResult:
    suite = SuiteResult(name="a", file=file, model="m", n_cases=len(case_ids), suite_hash="h",
                        cases=[CaseResult(id=c, prompt="p", output="o" * 50) for c in case_ids],
                        aggregates=[AggregateResult(name="exact_match", value=1.0, n=len(case_ids))])
    settings = {"model": None, "seed": seed, "python": "3.11", "concurrency": 8,
                "shard": {"shard": f"{index}/{total}", "index": index, "total": total, "mode": mode}}
    return RunResult(suites=[suite] if case_ids else [], settings=settings,
                     models={"m": {"name": "m", "fingerprint": fingerprint}})


def _save(tmp_path: Path, name: str, run: RunResult | dict[str, Any]) -> str:
    path = tmp_path / name
    data = run.to_dict() if isinstance(run, RunResult) else run
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_two_shards_of_whole_suites_merge(tmp_path: Path) -> None:
    a = _save(tmp_path, "a.json", _run(1, ["x", "y"]))
    b = _save(tmp_path, "b.json", _run(2, ["z"], file="evals/b.eval.yaml"))
    run = merge_files([a, b], rootdir=tmp_path)
    assert [s.file for s in run.suites] == ["evals/a.eval.yaml", "evals/b.eval.yaml"]
    assert run.settings["merged"]["shards"] == ["1/2", "2/2"]
    assert "shard" not in run.settings


def test_refuses_runs_of_different_models(tmp_path: Path) -> None:
    a = _save(tmp_path, "a.json", _run(1, ["x"]))
    b = _save(tmp_path, "b.json", _run(2, ["y"], file="evals/b.eval.yaml", fingerprint="0" * 16))
    with pytest.raises(MergeError, match=r"a.json and .*b.json are runs of different models: 'm' is "
                                         r"fingerprint ffff"):
        merge_files([a, b], rootdir=tmp_path)


def test_refuses_runs_with_different_settings(tmp_path: Path) -> None:
    a = _save(tmp_path, "a.json", _run(1, ["x"]))
    b = _save(tmp_path, "b.json", _run(2, ["y"], file="evals/b.eval.yaml", seed=7))
    with pytest.raises(MergeError, match="different settings: 'seed' is 0 in one and 7 in the other"):
        merge_files([a, b], rootdir=tmp_path)


def test_refuses_a_case_present_twice(tmp_path: Path) -> None:
    a = _save(tmp_path, "a.json", _run(1, ["x", "y"]))
    b = _save(tmp_path, "b.json", _run(2, ["y"]))
    with pytest.raises(MergeError, match=r"overlapping shards: case 'y' of evals/a.eval.yaml is in both "
                                         r".*a.json and .*b.json"):
        merge_files([a, b], rootdir=tmp_path)


def test_refuses_the_same_shard_twice_and_a_missing_shard(tmp_path: Path) -> None:
    a = _save(tmp_path, "a.json", _run(1, ["x"], total=3))
    b = _save(tmp_path, "b.json", _run(1, ["y"], file="evals/b.eval.yaml", total=3))
    with pytest.raises(MergeError, match=r"overlapping shards: .*a.json and .*b.json are both shard 1/3"):
        merge_files([a, b], rootdir=tmp_path)
    c = _save(tmp_path, "c.json", _run(3, ["y"], file="evals/b.eval.yaml", total=3))
    with pytest.raises(MergeError, match=r"shard 2/3 missing: give the results file of every shard"):
        merge_files([a, c], rootdir=tmp_path)


def test_refuses_shards_of_different_plans(tmp_path: Path) -> None:
    a = _save(tmp_path, "a.json", _run(1, ["x"]))
    b = _save(tmp_path, "b.json", _run(2, ["y"], file="evals/b.eval.yaml", mode="cases"))
    with pytest.raises(MergeError, match="shards of different plans"):
        merge_files([a, b], rootdir=tmp_path)


def test_refuses_a_capped_results_file(tmp_path: Path) -> None:
    a = _save(tmp_path, "a.json", _run(1, ["x"]))
    b = _save(tmp_path, "b.json", cap_outputs(_run(2, ["y"], file="evals/b.eval.yaml").to_dict(), 10))
    with pytest.raises(ResultsFileError, match=r"b.json: merging results files needs full model outputs, "
                                               r"but this results file was written with "
                                               r"--llmeval-max-output-chars 10"):
        merge_files([a, b], rootdir=tmp_path)


def test_refuses_a_garbage_file_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _save(tmp_path, "a.json", _run(1, ["x"]))
    junk = tmp_path / "junk.json"
    junk.write_bytes(b"\x00\x01 not json {")
    code = llmeval(["merge", a, str(junk), "-o", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert code == 2
    assert "junk.json: not a results file" in err
    assert not (tmp_path / "out.json").exists()
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    assert llmeval(["merge", a, str(tmp_path / "list.json"), "-o", str(tmp_path / "out.json")]) == 2
    assert "the top level must be a JSON object" in capsys.readouterr().err


def test_refuses_a_split_suite_whose_file_changed_or_is_missing(pytester: pytest.Pytester) -> None:
    make_project(pytester, n_qa=9, n_short=4)
    for k in (1, 2):
        pytester.runpytest("-p", "no:cacheprovider", "-q", "evals/short.eval.yaml", "--llmeval-shard", f"{k}/2",
                           "--llmeval-shard-cases", "--llmeval-json", f"s{k}.json")
    files = [str(pytester.path / "s1.json"), str(pytester.path / "s2.json")]
    with pytest.raises(MergeError, match=r"evals/short.eval.yaml was split over shards .* not at "):
        merge_files(files, rootdir=pytester.path / "elsewhere")
    suite = pytester.path / "evals" / "short.eval.yaml"
    suite.write_text(suite.read_text(encoding="utf-8").replace("0.99", "0.5"), encoding="utf-8")
    with pytest.raises(MergeError, match=r"evals/short.eval.yaml changed since the run \(suite hash"):
        merge_files(files, rootdir=pytester.path)


def test_refuses_a_split_suite_with_a_gate_kind_that_cannot_be_recomputed(pytester: pytest.Pytester) -> None:
    make_project(pytester, n_qa=9, n_short=4)
    pytester.makeconftest('''
from pytest_llmeval.gates import Gate, GateOutcome, GateSpec, register_gate


class WordsSpec(GateSpec):
    max_words: float


@register_gate
class WordsGate(Gate):
    kind = "words"
    section = "words"
    Spec = WordsSpec

    def evaluate(self, ctx):
        longest = max(len((r.output or "").split()) for r in ctx.results)
        agg = self.aggregate(value=float(longest), threshold=self.spec.max_words, op="max",
                             n=len(ctx.results))
        agg.passed = longest <= self.spec.max_words
        return GateOutcome(agg)
''')
    suite = pytester.path / "evals" / "short.eval.yaml"
    suite.write_text(suite.read_text(encoding="utf-8") + "words: {max_words: 10}\n", encoding="utf-8")
    for k in (1, 2):
        res = pytester.runpytest("-p", "no:cacheprovider", "-q", "evals/short.eval.yaml", "--llmeval-shard",
                                 f"{k}/2", "--llmeval-shard-cases", "--llmeval-json", f"s{k}.json")
        assert res.ret in (0, 1), res.stdout.str()
    # such a suite is never split: it ran whole in one shard, and its gates were decided there
    shards = [json.loads((pytester.path / f"s{k}.json").read_text(encoding="utf-8")) for k in (1, 2)]
    assert sorted(len(s["suites"]) for s in shards) == [0, 1]
    whole = next(s for s in shards if s["suites"])["suites"][0]
    assert whole.get("split") is None and len(whole["cases"]) == 4
    assert all("partial" not in a for a in whole["aggregates"])
    # and a split one (as a file of another version could hold) is refused, naming the kind
    run = RunResult.from_dict(shards[0] if shards[0]["suites"] else shards[1])
    halves = []
    for k, ids in ((1, whole["cases"][:2]), (2, whole["cases"][2:])):
        part = RunResult.from_dict(run.to_dict())
        part.settings["shard"] = {"shard": f"{k}/2", "index": k, "total": 2, "mode": "cases"}
        s = part.suites[0]
        s.cases = [c for c in s.cases if c.id in {i["id"] for i in ids}]
        s.split = {"shard": f"{k}/2", "cases": 2, "baseline": None}
        for a in s.aggregates:
            a.partial = {"shard": f"{k}/2", "cases": 2, "of": 4}
        halves.append(_save(pytester.path, f"h{k}.json", part))
    with pytest.raises(MergeError, match=r"gate kind 'words' cannot be recomputed from the results file"):
        merge_files(halves, rootdir=pytester.path)
