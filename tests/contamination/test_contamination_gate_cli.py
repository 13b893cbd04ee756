"""The suite gate, the command line, the cleaned split and the Dask engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from contamination_helpers import make_data, write_jsonl

from pytest_llmeval.contamination import (
    EvalCase,
    EvalIndex,
    Normalizer,
    ScanOptions,
    make_tokenizer,
    scan,
)
from pytest_llmeval.contamination.gate import run_gate
from pytest_llmeval.contamination.readers import record_text
from pytest_llmeval.errors import ConfigError

LEAK = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron"


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "train.jsonl",
                [{"instruction": "some filler", "output": "prefix " + LEAK + " suffix"},
                 {"instruction": "other filler", "output": "more words"}])
    return tmp_path


CASES = [{"id": "clean", "text": "What is the capital of France?", "reference": "Paris"},
         {"id": "leaky", "text": "Recite: " + LEAK, "reference": "ok"}]


def test_gate_fails_and_names_case_span_and_source(suite: Path) -> None:
    out = run_gate({"train": ["data/*.jsonl"], "n": 8}, suite_dir=suite, cases=CASES)
    assert not out.passed
    assert (out.n_cases, out.n_contaminated) == (2, 1)
    assert "case leaky" in out.message and "train.jsonl:1" in out.message
    assert "alpha beta gamma" in out.message
    assert json.dumps(out.details)  # JSON-able
    assert [c["id"] for c in out.details["cases"] if c["contaminated"]] == ["leaky"]


def test_gate_passes_within_limit_and_on_clean_cases(suite: Path) -> None:
    assert run_gate({"train": "data/train.jsonl", "n": 8, "max_contaminated": 1},
                    suite_dir=suite, cases=CASES).passed
    assert run_gate({"train": "data/train.jsonl", "n": 8, "max_contaminated_fraction": 0.5},
                    suite_dir=suite, cases=CASES).passed
    assert run_gate({"train": "data/train.jsonl", "n": 8}, suite_dir=suite,
                    cases=CASES[:1]).passed


def test_gate_fields_select_raw_case_fields(suite: Path) -> None:
    cases = [{"id": "x", "text": LEAK, "reference": "", "question": "harmless question"}]
    assert run_gate({"train": "data/train.jsonl", "n": 8, "fields": ["question"]},
                    suite_dir=suite, cases=cases).passed


@pytest.mark.parametrize("config, match", [
    ({"train": "data/train.jsonl", "max_contaminted": 0}, "did you mean 'max_contaminated'"),
    ({"train": "data/missing.jsonl"}, "missing.jsonl.*not found"),
    ({"train": "nothing/*.jsonl"}, "matches no file"),
    ({"n": 8}, "contamination.train"),
    ({"train": "data/train.jsonl", "n": 0}, "contamination.n"),
    ({"train": "data/train.jsonl", "normalize": {"lower": True}}, "unknown option"),
])
def test_gate_config_errors(suite: Path, config: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        run_gate(config, suite_dir=suite, cases=CASES)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_llmeval.contamination.cli", *args],
                          capture_output=True, text=True)


def test_cli_exit_codes_json_and_clean_split(suite: Path, tmp_path: Path) -> None:
    evals = write_jsonl(tmp_path / "eval.jsonl",
                        [{"id": c["id"], "prompt": c["text"]} for c in CASES])
    train = str(suite / "data" / "train.jsonl")
    report, clean = tmp_path / "r.json", tmp_path / "clean.jsonl"
    res = _cli("--train", train, "--eval", str(evals), "-n", "8", "--json", str(report),
               "--write-clean", str(clean), "-j", "1")
    assert res.returncode == 1, res.stderr
    assert "case leaky" in res.stdout
    assert json.loads(report.read_text())["n_contaminated"] == 1
    assert [json.loads(x)["id"] for x in clean.read_text().splitlines()] == ["clean"]
    assert _cli("--train", train, "--eval", str(clean), "-n", "8").returncode == 0
    assert _cli("--train", train, "--eval", str(evals), "-n", "8",
                "--max-contaminated", "1").returncode == 0
    bad = _cli("--train", str(tmp_path / "nope.jsonl"), "--eval", str(evals))
    assert bad.returncode == 2 and "nope.jsonl" in bad.stderr


def test_add_parser_registers_subcommand(suite: Path, tmp_path: Path) -> None:
    import argparse

    from pytest_llmeval.contamination import cli

    parser = argparse.ArgumentParser(prog="llmeval")
    cli.add_parser(parser.add_subparsers(dest="command"))
    evals = write_jsonl(tmp_path / "e.jsonl", [{"id": "leaky", "q": LEAK}])
    args = parser.parse_args(["contamination", "--train", str(suite / "data" / "train.jsonl"),
                              "--eval", str(evals), "-n", "8", "-q", "-j", "1"])
    assert args.func(args) == 1


@pytest.mark.slow
def test_dask_engine_equals_local_engine(tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    train, evals = make_data(3)
    path = write_jsonl(tmp_path / "train.jsonl", train)
    cases = [EvalCase(e["id"], record_text(e, ("instruction", "output"))) for e in evals]
    index = EvalIndex(cases, make_tokenizer(None, Normalizer()), 8)
    opts = ScanOptions(train_fields=("instruction", "output"))
    local = scan(index, [path], opts, workers=2, shard_bytes=4000, progress=False).to_dict()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = scan(index, [path], opts, engine="dask", scheduler=client,
                      shard_bytes=4000, progress=False).to_dict()
    for d in (local, remote):
        d.pop("seconds")
        d.pop("engine")
    assert local["n_contaminated"] > 0
    assert local == remote
