"""Benchmark: the plugin's ROUGE-L against an unmodified rouge_score.RougeScorer.

Scores N (prediction, reference) pairs of summary-like sentences both ways,
checks that every score is identical, and prints both times and the speedup.
The plugin's metric is built inside the timed region, so its caches start cold.

    python tests/bench/bench_rouge.py [--n 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import time

SUBJECTS = [
    "The company",
    "Researchers",
    "The committee",
    "Local officials",
    "The new model",
    "Several analysts",
    "The government",
    "Engineers at the plant",
    "The report",
    "Hospital staff",
    "The court",
    "Investors",
    "The city council",
    "Scientists",
]
VERBS = [
    "announced",
    "reported",
    "is considering",
    "rejected",
    "approved",
    "warned about",
    "were investigating",
    "has been developing",
    "criticized",
    "welcomed",
    "delayed",
    "are expecting",
    "described",
    "questioned",
    "released",
    "predicted",
]
OBJECTS = [
    "a sharp increase in quarterly earnings",
    "new regulations for financial markets",
    "the proposed changes to healthcare funding",
    "rising temperatures across the region",
    "a partnership with international suppliers",
    "the results of the clinical trials",
    "plans for additional housing developments",
    "security vulnerabilities in the software",
    "the decision to postpone the elections",
    "significant improvements in accuracy",
    "growing concerns among residents",
    "the findings published on Tuesday",
    "lower interest rates for small businesses",
    "an investigation into the accident",
]
TAILS = [
    "",
    " after months of negotiations",
    " despite strong opposition",
    " on Monday",
    " according to a statement",
    ", officials said",
    " in a surprising move",
    " following the recent protests",
    " while markets remained volatile",
    " as demand continued growing",
    " amid ongoing uncertainty",
]


def sentence(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}{rng.choice(TAILS)}."


def pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """Reference summaries of 1-3 sentences; predictions share some content with them."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ref = " ".join(sentence(rng) for _ in range(rng.randint(1, 3)))
        words = ref.split()
        pred_words = [w for w in words if rng.random() > 0.25]
        pred_words += sentence(rng).split()[: rng.randint(0, 8)]
        out.append((" ".join(pred_words), ref))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from rouge_score import rouge_scorer

    from pytest_llmeval.metrics import build_metric

    data = pairs(args.n, args.seed)

    start = time.perf_counter()
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    baseline = [scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in data]
    t_base = time.perf_counter() - start

    start = time.perf_counter()
    metric = build_metric("rougeL")
    assert metric.score_case is not None
    ours = [metric.score_case(pred, [ref]) for pred, ref in data]
    t_ours = time.perf_counter() - start

    mismatches = sum(a != b for a, b in zip(baseline, ours, strict=True))
    assert mismatches == 0, f"{mismatches} of {len(data)} scores differ from rouge_score"
    print(f"pairs: {len(data)}  (rougeL F-measure, use_stemmer=True; scores identical)")
    print(f"rouge_score.RougeScorer.score: {t_base:8.3f} s")
    print(f"pytest_llmeval rougeL:         {t_ours:8.3f} s")
    print(f"speedup:                       {t_base / t_ours:8.2f}x")


if __name__ == "__main__":
    main()
