"""Benchmark: MT-Bench's 80 two-turn questions generated in rounds vs one conversation at a time.

Run:  python tests/bench/bench_multiturn.py [--latency 0.2] [--concurrency 16]

Against the loopback fake server (its own process, LATENCY seconds per reply), through the
``openai:`` backend:

- ``rounds``: the evaluator's multi-turn generation (every turn 1 in one concurrent call,
  then every turn 2), for all 80 questions; its floor is two rounds of
  ``ceil(80 / CONCURRENCY) * LATENCY``.
- ``sequential``: the lesson's loop extended to conversations: for each question, turn 1,
  then turn 2 with the first answer in the messages, one blocking request after another.

Both runs send the same 160 requests (checked on the server's counter).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")

from bench_api import server_process, server_stats  # noqa: E402


def rounds(url: str, concurrency: int) -> tuple[float, int]:
    from pytest_llmeval.evaluate import SuiteEvaluator
    from pytest_llmeval.loaders import mt_bench
    from pytest_llmeval.models import GenerationRequest, load_model
    from pytest_llmeval.spec import Suite, SuiteSpec, build_cases

    cases = build_cases([(c, None) for c in mt_bench.load(mt_bench.BUNDLED_QUESTIONS, {})],
                        mt_bench.BUNDLED_QUESTIONS, [], [])
    suite = Suite(name="mt_bench", path=mt_bench.BUNDLED_QUESTIONS, spec=SuiteSpec(cases=[]), cases=cases,
                  gates=[], suite_hash="", template_fields=[])
    model = load_model("openai:bench", options={"base_url": f"{url}/v1", "concurrency": concurrency})
    model.generate([GenerationRequest("warm-up")])  # import and connect outside the timing
    start = time.perf_counter()
    out = SuiteEvaluator(suite, model).run()
    wall = time.perf_counter() - start
    assert all(len(c.turns) == 2 and c.output for c in out.cases.values())
    return wall, len(out.cases)


def sequential(url: str) -> float:
    import openai

    from pytest_llmeval.loaders import mt_bench

    client = openai.OpenAI(base_url=f"{url}/v1", max_retries=0)
    start = time.perf_counter()
    for case in mt_bench.load(mt_bench.BUNDLED_QUESTIONS, {}):
        messages: list[dict[str, str]] = []
        for turn in case["turns"]:
            messages.append({"role": "user", "content": turn})
            reply = client.chat.completions.create(model="bench", temperature=0, messages=messages)
            messages.append({"role": "assistant", "content": reply.choices[0].message.content or ""})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with server_process(args.latency) as url:
        before = server_stats(url)["count"] + 1  # the warm-up request
        wall, n = rounds(url, args.concurrency)
        mid = server_stats(url)["count"]
        seq = sequential(url)
        after = server_stats(url)["count"]
    floor = 2 * math.ceil(n / args.concurrency) * args.latency
    print(json.dumps({"questions": n, "requests_rounds": mid - before, "requests_sequential": after - mid,
                      "rounds_s": round(wall, 3), "floor_s": round(floor, 3),
                      "ratio_to_floor": round(wall / floor, 2), "sequential_s": round(seq, 2),
                      "speedup": round(seq / wall, 1), "load": os.getloadavg()[0]}, indent=1))


if __name__ == "__main__":
    main()
