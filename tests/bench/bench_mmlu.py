"""An MMLU-sized multiple-choice run through the product's path, on the example model, on this CPU.

    python tests/bench/bench_mmlu.py                       # all 14,042 questions, 5-shot
    python tests/bench/bench_mmlu.py --questions 1000      # the first 1,000 (subject by subject)

Synthesises MMLU's layout in a temporary directory (57 subjects, ``<subject>_test.csv`` holding
14,042 questions in all as MMLU's test split does, ``<subject>_dev.csv`` with 5 each), with
questions and choices of MMLU-like length (question 30-90 words, choices 1-12 words), then
times what ``pytest`` does for a suite ``cases: {format: mmlu, ...}`` with ``multiple_choice:
{fewshot: 5}``: ``load_suite`` (read, validate, render every 5-shot prompt) and
``SuiteEvaluator.run`` (one batched ``loglikelihood_batch`` call of 4 pairs per question, the
gates). The model is the example suite's base model (``hf:``, ~1.2 M parameters, a 256-token
window: 5-shot MMLU prompts are cut from the left to it, as lm-evaluation-harness does).
Prints one ``BENCH {json}`` line.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
MMLU_TEST = 14_042
SUBJECTS = 57
WORDS = ("the of a to in is which that for on with as by at from an be this are or it not have what "
         "energy cell law market theorem value force river reaction protein court contract vector "
         "species voltage matrix enzyme income policy molecule integral tissue").split()


def sentence(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def synthesize(root: Path, seed: int = 0) -> None:
    rng = random.Random(seed)
    per = [MMLU_TEST // SUBJECTS + (i < MMLU_TEST % SUBJECTS) for i in range(SUBJECTS)]
    for i, n in enumerate(per):
        subject = f"subject_{i:02d}"
        for split, count in (("test", n), ("dev", 5)):
            with (root / f"{subject}_{split}.csv").open("w", newline="") as f:
                csv.writer(f).writerows(
                    [sentence(rng, 30, 90) + "?", *(sentence(rng, 1, 12) for _ in range(4)), rng.choice("ABCD")]
                    for _ in range(count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=MMLU_TEST)
    parser.add_argument("--fewshot", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compare-plain", action="store_true",
                        help="also time loglikelihood_batch alone on the same pairs")
    args = parser.parse_args()
    from pytest_llmeval.evaluate import SuiteEvaluator
    from pytest_llmeval.models.hf import load
    from pytest_llmeval.spec import load_suite

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "mmlu").mkdir()
        synthesize(root / "mmlu")
        suite_file = root / "mmlu.eval.yaml"
        suite_file.write_text(json.dumps({
            "cases": {"format": "mmlu", "path": "mmlu", "split": "test"},
            "multiple_choice": {"fewshot": args.fewshot, "min_acc": 0.0}}))
        t0 = time.perf_counter()
        suite = load_suite(suite_file)  # all 14,042 questions: collection is always measured in full
        t_load = time.perf_counter() - t0
        assert len(suite.cases) == MMLU_TEST
        suite.cases = suite.cases[:args.questions]
        model = load(str(ROOT / "example_suite/models/base"), name="base",
                     options={"batch_size": args.batch_size, "num_threads": args.threads}, base_dir=ROOT)
        model.loglikelihood_batch([("warm", " up")])  # load the weights outside the timing
        t0 = time.perf_counter()
        outcome = SuiteEvaluator(suite, model).run()
        t_run = time.perf_counter() - t0
        assert outcome.fatal is None, outcome.fatal
        acc = outcome.gates["acc"].aggregate
        assert acc.n == len(suite.cases), acc
        n = len(suite.cases)
        t_plain = None
        if args.compare_plain:  # the same pairs straight into the backend: the product's overhead is the rest
            from pytest_llmeval.multiple_choice import requests_for

            plan = next(g.plan for g in suite.gates if hasattr(g, "plan"))
            pairs = [p for c in suite.cases for p in requests_for(plan.questions[c.id], plan.prompts[c.id],
                                                                   "letter")]
            t0 = time.perf_counter()
            model.loglikelihood_batch(pairs)
            t_plain = round(time.perf_counter() - t0, 2)
        record = {"questions": n, "pairs": 4 * n, "fewshot": args.fewshot, "batch_size": args.batch_size,
                  "threads": args.threads, "load_suite_s": round(t_load, 2), "score_s": round(t_run, 2),
                  "questions_per_s": round(n / t_run, 1), "pairs_per_s": round(4 * n / t_run, 1),
                  "extrapolated_14042_s": round(t_run * MMLU_TEST / n, 0), "acc": acc.value,
                  "plain_loglikelihood_batch_s": t_plain,
                  "load_average": os.getloadavg()}
        print("BENCH " + json.dumps(record))


if __name__ == "__main__":
    main()
