"""Benchmark: time spent computing intervals in each example suite, from a cProfile of pytest.

Each ``example_suite/*.eval.yaml`` runs in its own ``pytest`` process under
cProfile (cold cache, so the models really generate). The "statistics" time of
a suite is the cumulative time of the functions that build intervals:
``stats.bootstrap_statistic``, ``stats.paired_bootstrap``, ``stats.bootstrap_mean``,
``stats.wilson`` and ``evaluate.corpus_statistic`` (which prepares the per-case
statistics); they do not call one another, so their sum counts nothing twice.
``_metric_gate`` (statistics plus per-case scoring and reports) and the whole
process are shown beside it.

The reference libraries (scipy.stats, scikit-learn, nltk's BLEU, sacrebleu) are
imported before profiling starts, so a suite's figure is its computation, not
whichever first import it happened to trigger (scipy.stats alone takes seconds
and is imported by the first Wilson interval, nltk or scikit-learn, once per
process); ``--cold-imports`` profiles them too.

``--pythonpath`` selects the package under test, so the same script measures
an older copy of the code (``git archive <commit> | tar -x -C DIR``) for a
before/after comparison. cProfile adds a fixed cost to every Python call, which
weighs most on the many small calls of a per-resample recomputation.

    HF_HUB_OFFLINE=1 python tests/bench/bench_example_stats.py [--pythonpath DIR] [--suites ...]
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAT_FUNCTIONS = (
    ("stats.py", "bootstrap_statistic"),
    ("stats.py", "paired_bootstrap"),
    ("stats.py", "bootstrap_mean"),
    ("stats.py", "wilson"),
    ("evaluate.py", "corpus_statistic"),
)


def cumulative(profile: Path, wanted: tuple[tuple[str, str], ...]) -> dict[str, tuple[int, float]]:
    """``name -> (calls, cumulative seconds)`` for functions whose file ends as given."""
    st = pstats.Stats(str(profile))
    out: dict[str, tuple[int, float]] = {}
    for (filename, _line, func), (_cc, nc, _tt, ct, _callers) in st.stats.items():  # type: ignore[attr-defined]
        for suffix, name in wanted:
            if func == name and filename.endswith(os.sep + suffix):
                calls, secs = out.get(name, (0, 0.0))
                out[name] = (calls + nc, secs + ct)
    return out


RUNNER = """
import cProfile, sys
if sys.argv[2] == "warm":
    import nltk.translate.bleu_score, sacrebleu.metrics, scipy.stats, sklearn.metrics
import pytest
profile = cProfile.Profile()
profile.enable()
try:
    code = pytest.main(sys.argv[3:])
finally:
    profile.disable()
    profile.dump_stats(sys.argv[1])
sys.exit(int(code))
"""


def run_suite(suite: Path, pythonpath: Path, workdir: Path, cold_imports: bool) -> dict[str, object]:
    prof = workdir / f"{suite.stem}.prof"
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-c", RUNNER, str(prof), "cold" if cold_imports else "warm", str(suite),
           "-p", "no:cacheprovider", "--llmeval-cache", "off", "-q"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"pytest on {suite} exited {proc.returncode}")
    stat = cumulative(prof, STAT_FUNCTIONS)
    gate = cumulative(prof, (("evaluate.py", "_metric_gate"),)).get("_metric_gate", (0, 0.0))
    return {"suite": suite.name, "wall": wall, "stats": sum(s for _c, s in stat.values()),
            "detail": stat, "metric_gate": gate[1], "last_line": proc.stdout.strip().splitlines()[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pythonpath", type=Path, default=ROOT, help="directory holding pytest_llmeval")
    parser.add_argument("--suites", nargs="*", type=Path,
                        default=sorted((ROOT / "example_suite").glob("*.eval.yaml")))
    parser.add_argument("--limit", type=float, default=0.3, help="target seconds of statistics per suite")
    parser.add_argument("--keep", type=Path, help="directory to keep the .prof files in")
    parser.add_argument("--cold-imports", action="store_true",
                        help="do not import the reference libraries before profiling")
    args = parser.parse_args()
    print(f"package: {args.pythonpath.resolve()}; libraries imported before profiling: "
          f"{'no' if args.cold_imports else 'yes'}")
    print(f"load before: {os.getloadavg()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp) if args.keep is None else args.keep.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        for suite in args.suites:
            row = run_suite(suite.resolve(), args.pythonpath.resolve(), workdir, args.cold_imports)
            rows.append(row)
            detail = ", ".join(f"{k} {c} calls {s:.3f}s" for k, (c, s) in sorted(row["detail"].items()))
            print(f"{row['suite']:<24} statistics {row['stats']:7.3f} s   _metric_gate "
                  f"{row['metric_gate']:7.3f} s   process {row['wall']:6.1f} s   ({row['last_line']})")
            print(f"    {detail}")
    print(f"load after: {os.getloadavg()}")
    worst = max(float(r["stats"]) for r in rows)
    print(f"largest statistics time: {worst:.3f} s (target < {args.limit} s per suite): "
          f"{'met' if worst < args.limit else 'NOT met'}")


if __name__ == "__main__":
    main()
