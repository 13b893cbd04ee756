"""A whole eval suite through pytest against the loopback provider: cold, warm cache, and instant model.

    python tests/bench/bench_suite_cache.py [--cases 500] [--latency 0.2] [--concurrency 32]

Cold: 500 generations by the model, 500 by the baseline and 1,000 pairwise judge
calls (500 pairs, both orders; a pair of identical outputs gives the same prompt in
both orders, which is sent once) over the real openai SDK at 200 ms latency.
Warm: the same run again with the cache from the cold run (expected: zero requests).
Instant: the same suite with ``python:`` model, baseline and judge that answer at once.
Each run is a fresh ``pytest`` process; the ratio warm / instant is the target (<= 1.3x).
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

from pytest_llmeval.testing.fake_server import FakeLLMServer

INSTANT = '''
def model(prompt):
    return "positive" if "good" in prompt else "negative"

def base(prompt):
    return "negative"

def judge(kind, prompt=None, response_a=None, response_b=None, **_):
    return {"winner": "A" if response_a == "positive" else "B", "reasoning": "instant"}
'''


def responder(request) -> str:
    text = request.prompt
    if '"winner"' in text:
        return json.dumps({"reasoning": "fake", "winner": "A"})
    if request.model == "b":  # the baseline: always the same label
        return "negative"
    return "positive" if "good" in text else "negative"


def suite(model: str, baseline: str, judge: str, opts: str) -> str:
    return (f"model: {model}\nmodel_options: {opts}\nbaseline: {baseline}\nbaseline_options: {opts}\n"
            "prompt: \"Review: {text}\"\ngeneration: {max_new_tokens: 4}\ncases: cases.jsonl\n"
            "metrics: {exact_match: {min: 0.5}}\n"
            f"judge:\n  model: {judge}\n  options: {opts}\n"
            "  pairwise: {against: baseline, min_win_rate: 0.0}\n")


def run(root: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root)],
                          cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
        raise SystemExit("pytest failed")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=int, default=500)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()
    env = {**os.environ, "FAKE_KEY": "sk-bench"}
    with tempfile.TemporaryDirectory() as tmp, \
            FakeLLMServer(latency=args.latency, responder=responder) as server:
        root = Path(tmp)
        api, inst = root / "api", root / "instant"
        for d in (api, inst):
            d.mkdir()
            (d / "pytest.ini").write_text("[pytest]\n")
            with (d / "cases.jsonl").open("w") as fh:
                for i in range(args.cases):
                    word = "good" if i % 2 else "bad"
                    fh.write(json.dumps({"id": f"c{i}", "text": f"{word} item {i}",
                                         "reference": "positive" if i % 2 else "negative"}) + "\n")
        opts = (f'{{base_url: "{server.openai_base_url}", api_key_env: FAKE_KEY, '
                f'concurrency: {args.concurrency}}}')
        (api / "s.eval.yaml").write_text(suite("openai:m", "openai:b", "openai:j", opts))
        (inst / "instmodels.py").write_text(INSTANT)
        (inst / "s.eval.yaml").write_text(
            suite("python:instmodels:model", "python:instmodels:base", "python:instmodels:judge", "{}"))
        before = server.count
        cold = run(api, env)
        cold_requests = server.count - before
        before = server.count
        warm = run(api, env)
        warm_requests = server.count - before
        instant = run(inst, env)
    print(f"{args.cases} cases: {2 * args.cases} generations + {2 * args.cases} judge calls, "
          f"{args.latency * 1000:.0f} ms latency, concurrency {args.concurrency}")
    ideal = cold_requests * args.latency / args.concurrency
    print(f"  cold run (openai SDK, fake server): {cold:6.2f} s, {cold_requests} requests "
          f"(identical judge prompts are sent once; ideal {ideal:.2f} s; model, baseline and "
          f"judge run one after another, in one pytest process)")
    print(f"  warm cache:                         {warm:6.2f} s, {warm_requests} requests")
    print(f"  instant python: models and judge:   {instant:6.2f} s")
    print(f"  warm / instant: {warm / instant:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
