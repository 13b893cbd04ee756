"""Plugin overhead: an eval suite vs a plain parametrized pytest test doing the same work.

    python tests/bench/bench_plugin_overhead.py [--cases 10000] [--collect-cases 100000] [--startup-runs 15]

Measures, in one run on this machine:
  1. 10,000 cases with an instant ``python:`` model and exact_match + rougeL gates, vs a plain
     ``@pytest.mark.parametrize`` test over the same cases computing the same scores with
     rouge-score directly (wall time of each pytest process, and the ratio);
  2. collecting a 100,000-case ``*.eval.jsonl`` suite (``--collect-only``);
  3. pytest start-up with and without the plugin on a directory with no eval files.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the model was fine tuned on legal documents for contract analysis and review of clauses "
         "risk terms payment dates parties obligations summary report quickly").split()

MODEL = '''
def answer(prompt):
    # instant model: echo the case's text after the marker
    return prompt.split("Text: ", 1)[1]
'''

PLAIN_TEST = '''
import json
import pytest
from rouge_score import rouge_scorer

CASES = [json.loads(line) for line in open({path!r}, encoding="utf-8")]
SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
RESULTS = []


def answer(prompt):
    return prompt.split("Text: ", 1)[1]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case):
    out = answer("Summarise.\\nText: " + case["text"])
    em = float(out.strip() == case["reference"].strip())
    rl = SCORER.score(case["reference"], out)["rougeL"].fmeasure
    RESULTS.append((em, rl))


def test_gates():
    assert sum(e for e, _ in RESULTS) / len(RESULTS) >= 0.0
    assert sum(r for _, r in RESULTS) / len(RESULTS) >= 0.0
'''


def make_cases(n: int, path: Path, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
            ref = text if rng.random() < 0.5 else " ".join(rng.choice(WORDS) for _ in range(12))
            fh.write(json.dumps({"id": f"c{i}", "text": text, "reference": ref}) + "\n")


LAST_OUTPUT = [""]


def run(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 5):
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    LAST_OUTPUT[0] = proc.stdout
    return wall


def collected_in() -> float:
    """pytest's own 'N tests collected in X s' figure from the last run."""
    import re

    m = re.search(r"collected in ([0-9.]+)s", LAST_OUTPUT[0])
    return float(m.group(1)) if m else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--collect-cases", type=int, default=100_000)
    ap.add_argument("--startup-runs", type=int, default=15)
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pytest.ini").write_text("[pytest]\nllmeval_cache = off\n")
        suite_dir = root / "suite"
        plain_dir = root / "plain"
        suite_dir.mkdir()
        plain_dir.mkdir()
        cases = root / "cases.jsonl"
        make_cases(args.cases, cases)
        (suite_dir / "benchmodel.py").write_text(MODEL)
        (suite_dir / "bench.eval.yaml").write_text(
            "model: python:benchmodel:answer\nprompt: \"Summarise.\\nText: {text}\"\n"
            f"cases: {cases}\nmetrics:\n  exact_match: {{min: 0.0}}\n  rougeL: {{min: 0.0}}\n")
        (plain_dir / "test_plain.py").write_text(PLAIN_TEST.replace("{path!r}", repr(str(cases))))
        base = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
        t_plain = run(base + ["-p", "no:llmeval", str(plain_dir)], root)
        t_suite = run(base + [str(suite_dir)], root)
        print(f"{args.cases} cases, exact_match + rougeL")
        print(f"  plain parametrized test (rouge-score directly): {t_plain:7.2f} s "
              f"({t_plain / args.cases * 1000:.2f} ms/case)")
        print(f"  pytest_llmeval suite:                          {t_suite:7.2f} s "
              f"({t_suite / args.cases * 1000:.2f} ms/case)")
        print(f"  ratio plugin / plain: {t_suite / t_plain:.2f}x (target <= 1.5x)")

        big = root / "big"
        big.mkdir()
        big_cases = big / "big.eval.jsonl"
        make_cases(args.collect_cases, big_cases, seed=1)
        with big_cases.open("r", encoding="utf-8") as fh:
            rows = [json.loads(line) for line in fh]
        with big_cases.open("w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps({"id": r["id"], "prompt": r["text"], "reference": r["reference"]}) + "\n")
        t_collect = run(base + ["--collect-only", "--llmeval-model", "python:x:y", str(big)], root)
        c_collect = collected_in()
        plain_big = root / "plainbig"
        plain_big.mkdir()
        (plain_big / "test_big.py").write_text(
            "import json, pytest\n"
            f"CASES = [json.loads(l) for l in open({str(big_cases)!r}, encoding='utf-8')]\n"
            "@pytest.mark.parametrize('case', CASES, ids=[c['id'] for c in CASES])\n"
            "def test_case(case):\n    pass\n")
        t_plain_collect = run(base + ["-p", "no:llmeval", "--collect-only", str(plain_big)], root)
        c_plain_collect = collected_in()
        print(f"collect {args.collect_cases} cases from one *.eval.jsonl: collection {c_collect:.2f} s "
              f"(pytest's 'collected in'; target < 5 s), whole process {t_collect:.2f} s")
        print(f"  same cases as a plain parametrized test: collection {c_plain_collect:.2f} s, "
              f"whole process {t_plain_collect:.2f} s")

        empty = root / "empty"
        empty.mkdir()
        (empty / "test_nothing.py").write_text("def test_ok():\n    pass\n")
        with_p, without_p = [], []
        for _ in range(args.startup_runs):
            without_p.append(run(base + ["-p", "no:llmeval", str(empty)], root))
            with_p.append(run(base + [str(empty)], root))
        m_with, m_without = statistics.median(with_p), statistics.median(without_p)
        print(f"pytest start-up, no eval files (median of {args.startup_runs}): without plugin "
              f"{m_without * 1000:.0f} ms, with plugin {m_with * 1000:.0f} ms, "
              f"added {(m_with - m_without) * 1000:+.0f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
