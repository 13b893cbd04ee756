"""Benchmark: corpus-metric intervals from sufficient statistics vs recomputing the metric per resample.

A generated set of N cases (default 2,000) in three categories, with a model
and a baseline: chrF (sacrebleu), corpus BLEU (nltk) and macro F1 (scikit-learn)
on labels. For each metric, what a gate with a baseline and per-category rows
computes: the value and interval, each category's, the baseline's, and the
paired difference, all through ``pytest_llmeval.metrics.resample``. The time is
shown in two parts: the per-case pass (each case's statistics extracted from
the texts of both runs by the library, once, which the two point values need
anyway) and the intervals (resampling, category rows, paired difference).

The recomputation path (the library called on every resampled set of cases) is
timed in the same run on the first ``--recompute-resamples`` resamples of every
one of those bootstraps, which are the same resamples the statistics path
evaluates (same seed, drawn in the same order); its values are checked equal to
the statistics path's, and its time per resample is scaled to the full count.

    python tests/bench/bench_corpus_resample.py [--cases 2000] [--resamples 1000] [--recompute-resamples 10]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import time
from collections.abc import Callable, Sequence

import numpy as np

from pytest_llmeval.metrics import build_metric
from pytest_llmeval.metrics.base import Metric
from pytest_llmeval.metrics.resample import (
    Recompute,
    case_statistics,
    category_estimates,
    corpus_estimate,
    paired_corpus_delta,
)

CATEGORIES = ("news", "support", "legal")
LABELS = ("positive", "negative", "neutral", "mixed")


def vocabulary(rnd: random.Random, size: int = 400) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rnd.choice(letters) for _ in range(rnd.randint(2, 9))) for _ in range(size)]


def perturb(rnd: random.Random, words: list[str], vocab: list[str], rate: float) -> str:
    """Replace, drop or insert a share ``rate`` of the words."""
    out: list[str] = []
    for w in words:
        r = rnd.random()
        if r < rate / 3:
            continue
        if r < 2 * rate / 3:
            out.append(rnd.choice(vocab))
        elif r < rate:
            out += [w, rnd.choice(vocab)]
        else:
            out.append(w)
    return " ".join(out)


def make_cases(n: int, seed: int) -> dict[str, list]:
    rnd = random.Random(seed)
    vocab = vocabulary(rnd)
    weights = [1 / (i + 1) for i in range(len(vocab))]  # Zipf-like word frequencies
    refs, new, base, cats, y_true, y_new, y_base = [], [], [], [], [], [], []
    for _ in range(n):
        words = rnd.choices(vocab, weights, k=rnd.randint(6, 30))
        case_refs = [" ".join(words)]
        if rnd.random() < 0.3:
            case_refs.append(perturb(rnd, words, vocab, 0.3))
        refs.append(case_refs)
        new.append(perturb(rnd, words, vocab, 0.25))
        base.append(perturb(rnd, words, vocab, 0.6))
        cats.append(rnd.choice(CATEGORIES))
        label = rnd.choice(LABELS)
        y_true.append([label])
        y_new.append(label if rnd.random() < 0.8 else rnd.choice(LABELS))
        y_base.append(label if rnd.random() < 0.55 else rnd.choice(LABELS))
    return {"refs": refs, "new": new, "base": base, "cats": cats, "y_true": y_true, "y_new": y_new,
            "y_base": y_base}


def gate_with_statistics(metric: Metric, new: list[str], base: list[str], refs: list[list[str]],
                         cats: list[str], resamples: int, seed: int) -> dict[str, object]:
    """What the evaluator computes for one gate with a baseline and categories, via the new API."""
    return {
        "value": corpus_estimate(metric, new, refs, seed=seed, n_resamples=resamples),
        "categories": category_estimates(metric, new, refs, cats, seed=seed, n_resamples=resamples),
        "baseline": corpus_estimate(metric, base, refs, seed=seed, n_resamples=resamples),
        "delta": paired_corpus_delta(metric, base, new, refs, seed=seed, n_resamples=resamples),
    }


def draws(n: int, count: int, seed: int) -> np.ndarray:
    """The first ``count`` resamples that ``stats.bootstrap_statistic(n, ..., seed=seed)`` draws."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, n, size=n) for _ in range(count)])


def library_metric(metric: Metric) -> Metric:
    """The metric with its corpus value computed by the library itself on the texts.

    chrF's own corpus value comes from the same vectorised statistics as its interval
    (``metrics/ngrams.py``); the recomputation path is timed with sacrebleu's
    ``corpus_score``, what a resample cost before. nltk BLEU and F1 already call
    their library.
    """
    if metric.name != "chrf":
        return metric
    from sacrebleu.metrics import CHRF

    from pytest_llmeval.metrics.bleu import reference_streams

    sacre = CHRF(**metric.options)

    def corpus(predictions: Sequence[str], references: Sequence[list[str]]) -> float:
        return float(sacre.corpus_score(list(predictions), reference_streams(references)).score) / 100.0

    return dataclasses.replace(metric, score_corpus=corpus, score_cases=None)


def recompute_sample(metric: Metric, new: list[str], base: list[str], refs: list[list[str]],
                     cats: list[str], resamples: int, k: int, seed: int) -> tuple[float, float, int]:
    """Time the library per resample on the first ``k`` resamples of each bootstrap of the gate.

    Returns (measured seconds, seconds scaled to ``resamples`` per bootstrap, number of values
    compared with the statistics path, all equal or this raises).
    """
    library = library_metric(metric)
    jobs: list[tuple[Sequence[str], Sequence[list[str]]]] = [(new, refs), (base, refs)]
    for cat in CATEGORIES:
        keep = [i for i, c in enumerate(cats) if c == cat]
        jobs.append(([new[i] for i in keep], [refs[i] for i in keep]))
    measured = scaled = 0.0
    compared = 0
    # the paired difference evaluates both runs on each resample of all cases: two more bootstraps
    for preds, case_refs in [*jobs, (base, refs), (new, refs)]:
        slow: Callable[[np.ndarray], float] = Recompute(library, preds, case_refs)
        fast = case_statistics(metric, preds, case_refs)
        assert fast is not None
        idx = draws(len(preds), k, seed)
        start = time.perf_counter()
        slow_values = [slow(row) for row in idx]
        spent = time.perf_counter() - start
        start = time.perf_counter()
        slow(np.arange(len(preds)))  # the point value, computed once per bootstrap
        point = time.perf_counter() - start
        fast_values = fast.batch(idx)
        if not np.allclose(fast_values, slow_values, rtol=0.0, atol=1e-12, equal_nan=True):
            raise AssertionError(f"{metric.name}: statistics and recomputation differ")
        compared += k
        measured += spent + point
        scaled += spent / k * resamples + point
    return measured, scaled, compared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--resamples", type=int, default=1000, help="per bootstrap (the evaluator uses 1000)")
    parser.add_argument("--recompute-resamples", type=int, default=10,
                        help="resamples per bootstrap timed on the recomputation path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=float, default=3.0, help="target seconds for all statistics")
    args = parser.parse_args()
    data = make_cases(args.cases, args.seed)
    metrics = [
        ("chrf", build_metric("chrf"), data["new"], data["base"], data["refs"]),
        ("bleu", build_metric("bleu"), data["new"], data["base"], data["refs"]),
        ("f1 macro", build_metric("f1", {"average": "macro"}), data["y_new"], data["y_base"],
         data["y_true"]),
    ]
    print(f"{args.cases} cases, {len(CATEGORIES)} categories, {args.resamples} resamples per bootstrap; "
          f"load {os.getloadavg()}")
    total_fast = total_scaled = total_pass = 0.0
    for name, metric, new, base, refs in metrics:
        # The per-case pass over both runs' texts, which the two point values need anyway; the
        # metric remembers each case's statistics, so the gate below reuses them.
        start = time.perf_counter()
        case_statistics(metric, new, refs)
        case_statistics(metric, base, refs)
        per_case = time.perf_counter() - start
        start = time.perf_counter()
        result = gate_with_statistics(metric, new, base, refs, data["cats"], args.resamples, args.seed)
        intervals = time.perf_counter() - start
        fast = per_case + intervals
        total_pass += per_case
        if name == "chrf":
            # the same per-case statistics extracted by sacrebleu itself, one text at a time
            from sacrebleu.metrics import CHRF

            from pytest_llmeval.metrics.bleu import reference_streams

            sacre = CHRF(**metric.options)
            start = time.perf_counter()
            library_rows = [sacre._extract_corpus_statistics(run, reference_streams(refs)) for run in (new, base)]
            library_pass = time.perf_counter() - start
            same = all(np.array_equal(np.asarray(rows), case_statistics(metric, run, refs).table)  # type: ignore[union-attr]
                       for rows, run in zip(library_rows, (new, base), strict=True))
            print(f"chrf      per-case pass: vectorised {per_case:.2f} s, sacrebleu's extraction "
                  f"{library_pass:.2f} s ({library_pass / per_case:.1f}x), statistics equal: {same}")
        measured, scaled, compared = recompute_sample(metric, new, base, refs, data["cats"], args.resamples,
                                                      args.recompute_resamples, args.seed)
        total_fast += fast
        total_scaled += scaled
        value, delta = result["value"], result["delta"]
        print(f"{name:<9} statistics {fast:6.2f} s (per-case pass {per_case:5.2f} s, intervals "
              f"{intervals:5.2f} s) | recomputation {measured:6.2f} s for "
              f"{args.recompute_resamples} resamples per bootstrap, {scaled:8.1f} s scaled to "
              f"{args.resamples}: {scaled / fast:6.0f}x | {compared} resample values equal | "
              f"value {value.value:.4f} [{value.low:.4f}, {value.high:.4f}], "  # type: ignore[attr-defined]
              f"delta {delta.value:+.4f} [{delta.low:+.4f}, {delta.high:+.4f}]")  # type: ignore[attr-defined]
    print(f"all three gates: statistics {total_fast:.2f} s, of which the per-case pass {total_pass:.2f} s "
          f"and intervals {total_fast - total_pass:.2f} s (target < {args.limit} s: "
          f"{'met' if total_fast < args.limit else 'NOT met'}), recomputation {total_scaled:.0f} s scaled, "
          f"{total_scaled / total_fast:.0f}x; load {os.getloadavg()}")


if __name__ == "__main__":
    main()
