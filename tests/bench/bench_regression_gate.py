"""False-alarm rate and power of the regression gate (``compare_runs``), by simulation.

Two kinds of per-case outcome are simulated, each for several suite sizes n
and effect sizes (the share of cases the new model gets wrong that the old
one got right):

* pass/fail (``exact_match``, gated with the exact McNemar test): every case
  has its own probability of being right, and each run samples it afresh, as
  a sampled (temperature > 0) re-run of the same model would. This is the
  hard case for false alarms: many cases flip both ways by chance.
* a continuous score (``rougeL``-like, gated with the paired bootstrap): each
  case has a true score plus per-run noise; a "flipped" case drops to 30% of
  its score.

Effect 0 gives the false-alarm rate (the gate should fire in about alpha of
the runs, or fewer); the other effects give the power. Every comparison goes
through ``compare_runs`` on RunResult objects, as the plugin calls it.

    python tests/bench/bench_regression_gate.py            # ~2-4 minutes on 2 cores
    python tests/bench/bench_regression_gate.py --reps 100 # quicker, noisier
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pytest_llmeval.compare import compare_runs
from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult
from pytest_llmeval.stats import wilson

SIZES = (50, 200, 1000)
EFFECTS = (0.0, 0.02, 0.05, 0.10, 0.15)


def _run(name: str, values: np.ndarray, kind: str) -> RunResult:
    cases = [CaseResult(id=str(i), prompt="p", output=None, scores={name: float(v)})
             for i, v in enumerate(values)]
    agg = AggregateResult(name=name, value=float(values.mean()), n=len(values), metric=name,
                          details={"metric_kind": kind})
    return RunResult(suites=[SuiteResult(name="sim", file="sim", model="m",
                                         aggregates=[agg], cases=cases)])


def _binary_pair(n: int, effect: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    p = rng.beta(2.0, 1.0, n)  # per-case chance of a right answer, mean 2/3
    old = (rng.random(n) < p).astype(float)
    new = (rng.random(n) < p).astype(float)
    k = round(effect * n)
    if k:
        candidates = np.flatnonzero((old == 1) & (new == 1))
        new[rng.choice(candidates, size=min(k, len(candidates)), replace=False)] = 0.0
    return old, new


def _continuous_pair(n: int, effect: float,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    true = rng.beta(4.0, 3.0, n)
    old = np.clip(true + rng.normal(0, 0.05, n), 0, 1)
    new = np.clip(true + rng.normal(0, 0.05, n), 0, 1)
    k = round(effect * n)
    if k:
        new[rng.choice(n, size=k, replace=False)] *= 0.3
    return old, new


def simulate(kind: str, n: int, effect: float, reps: int, alpha: float,
             seed: int) -> tuple[float, float, float, float]:
    """Share of ``reps`` simulated comparisons flagged as regressions, its interval, ms per call."""
    rng = np.random.default_rng(seed)
    name, metric_kind, pair = (("exact_match", "proportion", _binary_pair) if kind == "pass/fail"
                               else ("rougeL", "mean", _continuous_pair))
    fired = 0
    spent = 0.0
    for r in range(reps):
        old, new = pair(n, effect, rng)
        a, b = _run(name, old, metric_kind), _run(name, new, metric_kind)
        t0 = time.perf_counter()
        fired += bool(compare_runs(a, b, alpha=alpha, seed=r).regressions)
        spent += time.perf_counter() - t0
    est = wilson(fired, reps)
    return est.value, est.low, est.high, 1000 * spent / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=400, help="simulated comparisons per cell")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"alpha={args.alpha}, {args.reps} simulated comparisons per cell, seed {args.seed}")
    print("rate = share of comparisons where the gate reported a regression "
          "(effect 0: false alarms; else: power), 95% Wilson interval\n")
    print("| outcome (test) | n | effect | rate | 95% interval | ms / comparison |")
    print("|---|---:|---:|---:|---|---:|")
    started = time.perf_counter()
    for kind in ("pass/fail", "continuous"):
        test = "McNemar" if kind == "pass/fail" else "paired bootstrap"
        for n in SIZES:
            for effect in EFFECTS:
                cell_seed = args.seed * 1_000_003 + n * 101 + round(effect * 100)
                rate, lo, hi, ms = simulate(kind, n, effect, args.reps, args.alpha, cell_seed)
                print(f"| {kind} ({test}) | {n} | {effect:.0%} | {rate:.3f} | "
                      f"[{lo:.3f}, {hi:.3f}] | {ms:.1f} |", flush=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
