"""How faithful and how cheap the per-request GenerationInfo is.

Run:  python tests/bench/bench_generation_info.py [--n 300] [--latency 0.2] [--concurrency 16]
      [--python-n 100000]

- ``api``: N requests through ``openai:`` against the fake server in its own
  process (LATENCY seconds per reply, CONCURRENCY in flight). Reports the
  distribution of ``latency_s`` beside the server's fixed latency: what the
  figure adds on top of the server is the SDK and HTTP overhead of one attempt.
- ``python``: an instant ``python:`` model over PYTHON_N requests through
  ``generate_with_info`` vs a bare loop calling the same function (best of 3
  each): the backend's whole cost per request, timing and records included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")

from bench_api import server_process  # noqa: E402


def part_api(args: argparse.Namespace) -> None:
    from pytest_llmeval.models import GenerationRequest, load_model

    with server_process(args.latency) as url:
        model = load_model("openai:bench", options={"base_url": f"{url}/v1", "concurrency": args.concurrency})
        requests = [GenerationRequest(f"Review {i}: fine.") for i in range(args.n)]
        start = time.perf_counter()
        results = model.generate_with_info(requests)
        wall = time.perf_counter() - start
        model.close()
    lat = sorted(g.info.latency_s for g in results if g.info.latency_s is not None)
    over = [x - args.latency for x in lat]
    print(f"api: {len(lat)}/{args.n} timed, wall {wall:.2f} s (ideal {args.n * args.latency / args.concurrency:.2f} s)")
    print(f"  latency_s median {statistics.median(lat) * 1000:.1f} ms, p95 {lat[int(0.95 * len(lat)) - 1] * 1000:.1f} ms,"
          f" max {lat[-1] * 1000:.1f} ms; over the server's {args.latency * 1000:.0f} ms: median"
          f" {statistics.median(over) * 1000:.1f} ms, min {over[0] * 1000:.1f} ms")


def part_python(args: argparse.Namespace) -> None:
    from pytest_llmeval.models import GenerationRequest
    from pytest_llmeval.models.python_backend import PythonModel

    model = PythonModel(str.upper, name="instant", target="<str.upper>", options={})
    requests = [GenerationRequest(f"p{i}") for i in range(args.python_n)]

    def best(fn) -> float:  # type: ignore[no-untyped-def]
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn(requests)
            times.append(time.perf_counter() - start)
        return min(times)

    def bare(reqs):  # type: ignore[no-untyped-def]
        return [str.upper(r.prompt) for r in reqs]

    plain, info = best(bare), best(model.generate_with_info)
    n = args.python_n
    print(f"python: bare loop {plain:.3f} s, generate_with_info {info:.3f} s: "
          f"{(info - plain) / n * 1e6:.2f} us/request added")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--python-n", type=int, default=100_000)
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f}")
    part_api(args)
    part_python(args)


if __name__ == "__main__":
    main()
