"""Throughput of the execution sandbox: HumanEval's canonical solutions, n samples each.

Runs 164 problems x ``--samples`` copies of the canonical solution through
:class:`~pytest_llmeval.execution.sandbox.Sandbox` (every layer bubblewrap provides)
and reports wall time, samples per second, the CPU time of the whole process tree
(this process, the zygotes and every sample, counted when reaped), and the load
average before and after. With ``--fresh N`` it also times N samples started the
simple way (``bwrap`` + a fresh interpreter per sample) for a ratio in the same run.

The physical limit is CPU: each sample forks two processes and runs the tests, so on
a shared machine the wall time follows the load; CPU seconds / cores is the floor.

    python tests/bench/bench_execution.py                 # 164 x 10 on every usable core
    python tests/bench/bench_execution.py --samples 2 --fresh 50
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time

from pytest_llmeval.execution import Limits, Sandbox, job_for, load_humaneval


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _fresh(n: int) -> float:
    """Seconds per sample when each one starts bwrap and a fresh interpreter (no tests run)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return float("nan")
    argv = [bwrap, "--unshare-net", "--unshare-pid", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev",
            "--proc", "/proc", "--tmpfs", "/tmp", "--", os.path.realpath(sys.executable), "-I", "-S", "-c",
            "import json, ast, resource"]
    start = time.perf_counter()
    for _ in range(n):
        subprocess.run(argv, check=True)  # noqa: S603 - fixed argv
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10, help="copies of each problem (n)")
    parser.add_argument("--workers", type=int, default=None, help="concurrent samples (default: usable CPUs)")
    parser.add_argument("--fresh", type=int, default=0, help="also time N fresh-interpreter samples")
    args = parser.parse_args()

    problems = load_humaneval()
    jobs = [job_for(p, p["canonical_solution"], "humaneval") for p in problems] * args.samples
    load_before = os.getloadavg()
    cpu0 = _cpu()
    start = time.perf_counter()
    with Sandbox(Limits(timeout_s=20.0), workers=args.workers) as sandbox:
        started = time.perf_counter() - start
        results = sandbox.run(jobs)
        info = sandbox.info
    wall = time.perf_counter() - start
    cpu = _cpu() - cpu0
    load_after = os.getloadavg()
    passed = sum(r.passed for r in results)
    durations = sorted(r.duration_s for r in results)
    print(f"sandbox: {info.describe()}; workers: {info.workers}; cores: {os.cpu_count()}")
    print(f"samples: {len(jobs)} ({len(problems)} problems x {args.samples}); passed: {passed}")
    print(f"wall: {wall:.1f} s (pool start {started:.2f} s); {len(jobs) / wall:.0f} samples/s")
    print(f"cpu (process tree): {cpu:.1f} s = {1000 * cpu / len(jobs):.1f} ms per sample; "
          f"floor on {info.workers} cores: {cpu / info.workers:.1f} s")
    print(f"per-sample wall: median {1000 * durations[len(durations) // 2]:.0f} ms, "
          f"p99 {1000 * durations[int(len(durations) * 0.99)]:.0f} ms")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}; "
          f"after: {' '.join(f'{x:.2f}' for x in load_after)}")
    if args.fresh:
        per = _fresh(args.fresh)
        print(f"fresh bwrap + interpreter per sample (startup only): {1000 * per:.0f} ms; "
              f"this run: {1000 * wall / len(jobs) * info.workers:.0f} ms per sample per worker")
    if passed != len(jobs):
        raise SystemExit(f"{len(jobs) - passed} canonical solutions did not pass")


if __name__ == "__main__":
    main()
