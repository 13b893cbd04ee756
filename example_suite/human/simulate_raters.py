"""Build the example blind set and rate it with three seeded simulated raters.

    # 1. outputs of the example suite (model and baseline):
    HF_HUB_OFFLINE=1 python -m pytest example_suite --llmeval-json /tmp/ex.json -p no:cacheprovider
    # 2. the blind set of its rewrite suite, then the simulated ratings:
    python example_suite/human/simulate_raters.py --results /tmp/ex.json
    # or only re-rate the committed blind set:
    python example_suite/human/simulate_raters.py

A simulated rater sees only what a person would: the prompt, the reference and the
outputs A and B. Each item has a "true" preference, the output closer to the reference
(a tie when the two are about as close), and each output a true 1-5 quality from the
same closeness. A rater reports the true preference with probability ``keep`` and
otherwise a label drawn uniformly from A/B/tie; scores are the true quality plus that
rater's noise. The planted disagreement is in ``KEEP``: alice is careful, bob less so,
carol often guesses. ``planted_kappa`` gives the preference agreement these rates imply
(what Fleiss' kappa estimates), against which the computed value is tested.
"""

from __future__ import annotations

import argparse
import difflib
import random
import sys
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from pytest_llmeval.human.blindset import BlindItem, BlindSet, load_blind_set  # noqa: E402
from pytest_llmeval.human.storage import Rating, export_ratings  # noqa: E402

KEEP = {"alice": 0.95, "bob": 0.8, "carol": 0.55}
"""Probability that each rater reports the true preference (else a uniform guess)."""
SCORE_NOISE = {"alice": 0.3, "bob": 0.6, "carol": 1.2}
"""Standard deviation of each rater's score noise, in scale points."""
TIE_MARGIN = 0.05
SEED = 7
SUITE = "rewrite"


def closeness(output: str, reference: str) -> float:
    return difflib.SequenceMatcher(None, output.lower(), reference.lower()).ratio()


def reference_text(item: BlindItem) -> str:
    return item.reference if isinstance(item.reference, str) else (item.reference or [""])[0]


def true_preference(item: BlindItem) -> str:
    ref = reference_text(item)
    a, b = closeness(item.output_a, ref), closeness(item.output_b, ref)
    if abs(a - b) < TIE_MARGIN:
        return "tie"
    return "A" if a > b else "B"


def true_quality(output: str, reference: str) -> int:
    return max(1, min(5, 1 + round(4 * closeness(output, reference))))


def simulate(blind: BlindSet, keep: Mapping[str, float], noise: Mapping[str, float],
             seed: int = SEED) -> list[Rating]:
    """Each assigned (rater, item) rated once, deterministically for a seed."""
    ratings: list[Rating] = []
    by_id = blind.by_id
    for rater in sorted(blind.queues):
        rng = random.Random(f"{seed}:{rater}")
        for item_id in blind.queues[rater]:
            item = by_id[item_id]
            ref = reference_text(item)
            truth = true_preference(item)
            pref = truth if rng.random() < keep[rater] else rng.choice(["A", "B", "tie"])
            scores = {}
            for side, text in (("A", item.output_a), ("B", item.output_b)):
                q = true_quality(text, ref)
                scores[side] = {c.name: max(c.low, min(c.high, round(q + rng.gauss(0, noise[rater]))))
                                for c in blind.rubric.criteria}
            ratings.append(Rating(rater, item_id, scores, pref, ""))
    return ratings


def planted_kappa(blind: BlindSet, keep: Mapping[str, float]) -> float:
    """The chance-corrected agreement on the preference that ``keep`` implies.

    Two raters agree with probability ``k_r k_s + (1 - k_r k_s)/3``; each reports
    category c with probability ``k pi_c + (1 - k)/3`` where ``pi`` is the share of true
    labels. Kappa is ``(P_o - P_e)/(1 - P_e)`` averaged over pairs of raters.
    """
    truths = [true_preference(it) for it in blind.items]
    pi = {c: truths.count(c) / len(truths) for c in ("A", "B", "tie")}
    k_bar = sum(keep.values()) / len(keep)
    p_e = sum((k_bar * pi[c] + (1 - k_bar) / 3) ** 2 for c in pi)
    values = []
    for r, s in combinations(sorted(keep), 2):
        kk = keep[r] * keep[s]
        p_o = kk + (1 - kk) / 3
        values.append((p_o - p_e) / (1 - p_e))
    return sum(values) / len(values)


def build_blind_set(results: Path, out: Path, raters: Sequence[str]) -> None:
    from pytest_llmeval.human.blindset import cases_from_results, create_blind_set, write_blind_set
    from pytest_llmeval.results import load_results

    cases, model, baseline, _ = cases_from_results(load_results(results), SUITE)
    blind, mapping, _tokens = create_blind_set(cases, model=model, baseline=baseline, raters=raters,
                                               per_item=3, sample=40, seed=SEED,
                                               source={"suite": SUITE, "results": "example suite run"})
    # Simulated raters need no links: no tokens file is written for them.
    write_blind_set(out, blind, mapping, None, force=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=None,
                    help="a results file of the example suite: rebuild the blind set from it first")
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    if args.results is not None:
        build_blind_set(args.results, args.out, sorted(KEEP))
    blind = load_blind_set(args.out)
    ratings = simulate(blind, KEEP, SCORE_NOISE)
    export_ratings(ratings, args.out / "ratings.jsonl", blind)
    print(f"{len(ratings)} ratings of {len(blind.items)} items written to {args.out / 'ratings.jsonl'}; "
          f"planted preference kappa {planted_kappa(blind, KEEP):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
