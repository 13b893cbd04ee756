"""Pairwise judge throughput against the loopback fake server.

500 pairwise verdicts with position swap (1,000 judge calls) at 200 ms latency
and concurrency 32, compared with the ideal wall time (ceil(calls / concurrency)
x latency) and with the lesson's approach: one judge call per pair, sequential,
through the OpenAI SDK on the same server.

    python tests/bench/bench_judge.py [--pairs 500] [--latency 0.2] [--concurrency 32]
                                      [--baseline-pairs 500]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import tempfile
import time
from pathlib import Path

from pytest_llmeval.judge import load_judge
from pytest_llmeval.judge.base import CompareRequest
from pytest_llmeval.testing.fake_server import FakeLLMServer

_A = re.compile(r"RESPONSE A \(boundary [0-9a-f]+\) -----\n(.*?)\n----- END", re.DOTALL)


def responder(request) -> str:
    """Longer response wins (any judge prompt with a Response A section)."""
    text = request.prompt
    m = _A.search(text)
    a_len = len(m.group(1)) if m else len(text) % 7
    return json.dumps({"reasoning": "compared", "winner": "A" if a_len % 2 else "B"})


def lesson_compare_loop(client, pairs: list[tuple[str, str, str]]) -> list[dict]:
    """The lesson's baseline: one judge call per pair, one after the other, no swap."""
    results = []
    for prompt, a, b in pairs:
        judge_prompt = (
            "You are an expert evaluator. Compare these two AI responses and determine which "
            f"is better based on: overall quality\n\nUser Prompt: {prompt}\n\n"
            f"Response A: {a}\n\nResponse B: {b}\n\n"
            'Respond with JSON: {"winner": "A" or "B" or "tie", "reasoning": "brief explanation"}')
        reply = client.chat.completions.create(
            model="judge", messages=[{"role": "user", "content": judge_prompt}],
            response_format={"type": "json_object"}, temperature=0)
        results.append(json.loads(reply.choices[0].message.content))
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--baseline-pairs", type=int, default=500)
    args = ap.parse_args()
    pairs = [(f"Question {i}?", "answer " * (1 + i % 5), "reply " * (1 + i % 3))
             for i in range(args.pairs)]
    with FakeLLMServer(latency=args.latency, responder=responder) as server:
        judge = load_judge("openai:judge", base_dir=Path(tempfile.gettempdir()), options={
            "base_url": server.openai_base_url, "api_key_env": None,
            "concurrency": args.concurrency})
        judge.compare("warm-up", "a", "b")  # SDK import and client construction
        server.reset_stats()
        t0 = time.perf_counter()
        verdicts = judge.compare_many([CompareRequest(p, a, b) for p, a, b in pairs])
        ours = time.perf_counter() - t0
        calls = server.count
        peak = server.max_in_flight
        errors = sum(isinstance(v, BaseException) for v in verdicts)

        import openai

        client = openai.OpenAI(base_url=server.openai_base_url, api_key="unused", max_retries=0)
        t0 = time.perf_counter()
        lesson_compare_loop(client, pairs[:args.baseline_pairs])
        base = time.perf_counter() - t0
    ideal = math.ceil(calls / args.concurrency) * args.latency
    base_full = base * args.pairs / args.baseline_pairs
    print(f"pairs={args.pairs} judge calls={calls} latency={args.latency}s "
          f"concurrency={args.concurrency} peak in flight={peak} errors={errors}")
    print(f"compare_many (swap, {calls} calls): {ours:.2f} s; ideal {ideal:.2f} s; "
          f"ratio {ours / ideal:.2f}x ideal")
    note = "" if args.baseline_pairs == args.pairs else \
        f" (measured on {args.baseline_pairs} pairs: {base:.2f} s, scaled)"
    print(f"lesson's sequential llm_judge_compare loop ({args.pairs} calls, no swap): "
          f"{base_full:.2f} s{note}; speed-up {base_full / ours:.1f}x with twice the calls")


if __name__ == "__main__":
    main()
