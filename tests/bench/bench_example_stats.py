"""Benchmark: time spent computing intervals in each example suite.

Each ``example_suite/*.eval.yaml`` runs in its own ``pytest`` process (cold
cache, so the models really generate). Before pytest starts, the functions that
build intervals are wrapped with timers: ``stats.bootstrap_statistic``,
``stats.paired_bootstrap``, ``stats.bootstrap_mean``, ``stats.wilson`` and
``gates.metric.corpus_statistic`` (which prepares the per-case statistics). They do
not call one another, so their sum, the suite's "statistics" time, counts
nothing twice; both wall-clock and process CPU time are summed (CPU time is
what a shared, busy machine distorts least). ``MetricGate.evaluate`` (statistics plus per-case scores
and reports) and the whole process are shown beside it. Timers, unlike a
profiler, add no cost to each Python call, which would weigh most on the many
small calls of a per-resample recomputation.

The reference libraries (scipy.stats, scikit-learn, nltk's BLEU, sacrebleu) are
imported before the run, so a suite's figure is its computation, not whichever
first import it happened to trigger (scipy.stats alone takes seconds and is
imported by the first Wilson interval, nltk or scikit-learn, once per process);
``--cold-imports`` leaves them to the run.

``--pythonpath`` selects the package under test, so the same script measures
an older copy of the code (``git archive <commit> | tar -x -C DIR``) for a
before/after comparison.

    HF_HUB_OFFLINE=1 python tests/bench/bench_example_stats.py [--pythonpath DIR] [--suites ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

RUNNER = r"""
import json, sys, time
sys.path.insert(0, sys.argv[3])  # the package under test, ahead of the working directory
if sys.argv[2] == "warm":
    import nltk.translate.bleu_score, sacrebleu.metrics, scipy.stats, sklearn.metrics
import pytest
from pytest_llmeval import evaluate, stats
from pytest_llmeval.gates import metric as metric_gate

totals = {}

def timed(owner, name):
    inner = getattr(owner, name)
    def wrapper(*args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        try:
            return inner(*args, **kwargs)
        finally:
            calls, secs, cpu_secs = totals.get(name, (0, 0.0, 0.0))
            totals[name] = (calls + 1, secs + time.perf_counter() - start,
                            cpu_secs + time.process_time() - cpu)
    setattr(owner, name, wrapper)

for name in ("bootstrap_statistic", "paired_bootstrap", "bootstrap_mean", "wilson"):
    timed(stats, name)
timed(metric_gate, "corpus_statistic")
timed(metric_gate.MetricGate, "evaluate")
try:
    code = pytest.main(sys.argv[4:])
finally:
    with open(sys.argv[1], "w") as fh:
        json.dump({"package": evaluate.__file__, "totals": totals}, fh)
sys.exit(int(code))
"""
STATISTICS = ("bootstrap_statistic", "paired_bootstrap", "bootstrap_mean", "wilson", "corpus_statistic")


def run_suite(suite: Path, pythonpath: Path, workdir: Path, cold_imports: bool) -> dict[str, object]:
    out = workdir / f"{suite.stem}.json"
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-c", RUNNER, str(out), "cold" if cold_imports else "warm", str(pythonpath), str(suite),
           "-p", "no:cacheprovider", "--llmeval-cache", "off", "-q"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"pytest on {suite} exited {proc.returncode}")
    result = json.loads(out.read_text())
    if not Path(result["package"]).resolve().is_relative_to(pythonpath):
        raise SystemExit(f"the run imported {result['package']}, not the package under {pythonpath}")
    totals = {k: tuple(v) for k, v in result["totals"].items()}
    detail = {k: v for k, v in totals.items() if k in STATISTICS}
    return {"suite": suite.name, "wall": wall, "stats": sum(s for _c, s, _cpu in detail.values()),
            "cpu": sum(cpu for _c, _s, cpu in detail.values()),
            "detail": detail, "metric_gate": totals.get("evaluate", (0, 0.0, 0.0))[1],
            "last_line": proc.stdout.strip().splitlines()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pythonpath", type=Path, default=ROOT, help="directory holding pytest_llmeval")
    parser.add_argument("--suites", nargs="*", type=Path,
                        default=sorted((ROOT / "example_suite").glob("*.eval.yaml")))
    parser.add_argument("--limit", type=float, default=0.3, help="target seconds of statistics per suite")
    parser.add_argument("--cold-imports", action="store_true",
                        help="do not import the reference libraries before the run")
    args = parser.parse_args()
    print(f"package: {args.pythonpath.resolve()}; libraries imported before the run: "
          f"{'no' if args.cold_imports else 'yes'}")
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for suite in args.suites:
            row = run_suite(suite.resolve(), args.pythonpath.resolve(), Path(tmp), args.cold_imports)
            rows.append(row)
            detail = ", ".join(f"{k} {c} calls {s:.3f}s" for k, (c, s, _cpu) in sorted(row["detail"].items()))
            print(f"{row['suite']:<24} statistics {row['stats']:8.3f} s (CPU {row['cpu']:.3f} s)   metric gates "
                  f"{row['metric_gate']:8.3f} s   process {row['wall']:6.1f} s   ({row['last_line']})")
            if detail:
                print(f"    {detail}")
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    worst = max(float(r["stats"]) for r in rows)
    worst_cpu = max(float(r["cpu"]) for r in rows)
    print(f"largest statistics time: {worst:.3f} s, CPU {worst_cpu:.3f} s (target < {args.limit} s per suite): "
          f"{'met' if worst < args.limit else 'NOT met'} on the clock, "
          f"{'met' if worst_cpu < args.limit else 'NOT met'} in CPU time")


if __name__ == "__main__":
    main()
