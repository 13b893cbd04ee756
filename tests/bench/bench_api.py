"""Benchmark of the API backends and the cache against the loopback fake server.

Run:  python tests/bench/bench_api.py [--parts generate,faults,warm_cache] [--n 500]
      [--latency 0.2] [--concurrency 32] [--sequential-subset 25] [--full-sequential]
      [--scheme openai|anthropic]

Parts (each a function registered in PARTS, so more can be added, e.g. the
pairwise judge half):

- ``generate``: N generations through the openai: (or anthropic:) backend at
  LATENCY seconds per reply and CONCURRENCY in flight, against the ideal N * LATENCY / CONCURRENCY,
  beside the lesson's sequential loop (one ``chat.completions.create`` after
  another, through the openai SDK whatever ``--scheme`` says) on the same server:
  measured on a subset and extrapolated, or in full with ``--full-sequential``.
- ``faults``: the same with 20% 429s (retry-after 50 ms) and 10% 500s injected:
  every output is text or an error, and the retry counts.
- ``warm_cache``: N generations through CachedModel with a warm cache, in a fresh
  process: zero server requests, and wall time beside the same process with an
  instant in-process model (the floor any run has to pay).

The server runs in its own process (``python -m pytest_llmeval.testing.fake_server``)
so that its CPU does not compete with the client for the GIL, as a real remote
server would not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
os.environ.setdefault("ANTHROPIC_API_KEY", "sk-ant-bench-not-a-real-key")


PROMPT = "Review {}: the product was fine, arrived on time.\nSentiment:"


@contextmanager
def server_process(latency: float, *extra: str) -> Iterator[str]:
    """Start the fake server in a child process; yield its URL."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_llmeval.testing.fake_server",
            "--latency",
            str(latency),
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("READY "):
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield line.split(" ", 1)[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def base_url(args: argparse.Namespace, url: str) -> str:
    """The SDK's ``base_url``: OpenAI's includes ``/v1``, Anthropic's does not."""
    return f"{url}/v1" if args.scheme == "openai" else url


def server_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_fake/stats", timeout=10) as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


def prompts(n: int) -> list[str]:
    return [PROMPT.format(i) for i in range(n)]


def sequential_lesson_loop(url: str, texts: list[str]) -> float:
    """The lesson's approach: one blocking request after another. Returns seconds."""
    import openai

    client = openai.OpenAI(base_url=f"{url}/v1", max_retries=0)
    start = time.perf_counter()
    for text in texts:
        client.chat.completions.create(
            model="bench", temperature=0, messages=[{"role": "user", "content": text}]
        )
    return time.perf_counter() - start


def part_generate(args: argparse.Namespace) -> dict[str, Any]:
    from pytest_llmeval.models import GenerationRequest, load_model

    ideal = args.n * args.latency / args.concurrency
    with server_process(args.latency) as url:
        model = load_model(
            f"{args.scheme}:bench",
            options={"base_url": base_url(args, url), "concurrency": args.concurrency},
        )
        model.generate([GenerationRequest("warm-up")])  # import and connect outside the timing
        requests = [GenerationRequest(p) for p in prompts(args.n)]
        before = server_stats(url)["count"]
        start = time.perf_counter()
        out = model.generate(requests)
        wall = time.perf_counter() - start
        served = server_stats(url)["count"] - before
        seq_n = args.n if args.full_sequential else min(args.sequential_subset, args.n)
        seq = sequential_lesson_loop(url, prompts(seq_n))
    errors = sum(isinstance(o, BaseException) for o in out)
    seq_full = seq * args.n / seq_n
    return {
        "requests": args.n,
        "served": served,
        "errors": errors,
        "wall_s": round(wall, 3),
        "ideal_s": round(ideal, 3),
        "ratio_to_ideal": round(wall / ideal, 3),
        "sequential_s": round(seq_full, 2),
        "sequential_measured": f"{seq_n} requests in {seq:.2f} s"
        + ("" if seq_n == args.n else f", x{args.n / seq_n:g}"),
        "speedup_vs_sequential": round(seq_full / wall, 1),
    }


def part_faults(args: argparse.Namespace) -> dict[str, Any]:
    from pytest_llmeval.models import GenerationRequest, load_model
    from pytest_llmeval.models._api import ApiModel

    faults = "--rate-429 0.2 --rate-500 0.1 --retry-after 0.05 --seed 1".split()
    with server_process(args.latency, *faults) as url:
        model = load_model(
            f"{args.scheme}:bench",
            options={
                "base_url": base_url(args, url),
                "concurrency": args.concurrency,
                "retry_backoff": 0.1,
            },
        )
        assert isinstance(model, ApiModel)
        start = time.perf_counter()
        out = model.generate([GenerationRequest(p) for p in prompts(args.n)])
        wall = time.perf_counter() - start
        stats = server_stats(url)
    texts = sum(isinstance(o, str) for o in out)
    errors = sum(isinstance(o, BaseException) for o in out)
    return {
        "requests": args.n,
        "texts": texts,
        "errors": errors,
        "every_slot_text_or_error": texts + errors == args.n,
        "wall_s": round(wall, 3),
        "usage": model.usage(),
        "server_outcomes": stats["outcomes"],
    }


WARM_CHILD = textwrap.dedent("""
    import json, sys, time
    t0 = time.perf_counter()
    from pytest_llmeval.cache import Cache, CachedModel
    from pytest_llmeval.models import GenerationRequest, ModelBase, load_model

    class Instant(ModelBase):
        scheme = "python"
        def generate(self, requests):
            return [f"echo: {r.prompt}" for r in requests]

    kind, url, path, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    text = "Review {}: the product was fine, arrived on time.\\nSentiment:"
    requests = [GenerationRequest(text.format(i)) for i in range(n)]
    if kind == "instant":
        model = Instant("instant", "bench:instant")
    else:
        model = CachedModel(load_model("openai:bench", options={"base_url": url + "/v1"}),
                            Cache(path))
    t1 = time.perf_counter()
    out = model.generate(requests)
    t2 = time.perf_counter()
    assert all(isinstance(o, str) for o in out)
    print(json.dumps({"generate_s": t2 - t1, "in_process_s": t2 - t0,
                      "openai_imported": "openai" in sys.modules}))
""")


def part_warm_cache(args: argparse.Namespace) -> dict[str, Any]:
    from pytest_llmeval.cache import Cache, CachedModel
    from pytest_llmeval.models import GenerationRequest, load_model

    with tempfile.TemporaryDirectory() as tmp, server_process(0.0) as url:
        path = str(Path(tmp) / "cache.sqlite3")
        cold = CachedModel(
            load_model(
                "openai:bench", options={"base_url": f"{url}/v1", "concurrency": args.concurrency}
            ),
            Cache(path),
        )
        cold.generate([GenerationRequest(p) for p in prompts(args.n)])
        cold.cache.close()
        before = server_stats(url)["count"]

        def child(kind: str) -> dict[str, Any]:
            start = time.perf_counter()
            res = subprocess.run(
                [sys.executable, "-c", WARM_CHILD, kind, url, path, str(args.n)],
                capture_output=True,
                text=True,
                check=True,
            )
            data: dict[str, Any] = json.loads(res.stdout)
            data["process_s"] = time.perf_counter() - start
            return data

        runs = {kind: [child(kind) for _ in range(3)] for kind in ("warm", "instant")}
        after = server_stats(url)["count"]

    def best(kind: str, field: str) -> float:
        return min(r[field] for r in runs[kind])

    return {
        "requests": args.n,
        "server_requests_warm": after - before,
        "openai_sdk_imported_warm": any(r["openai_imported"] for r in runs["warm"]),
        "warm_process_s": round(best("warm", "process_s"), 3),
        "instant_process_s": round(best("instant", "process_s"), 3),
        "ratio_process": round(best("warm", "process_s") / best("instant", "process_s"), 3),
        "warm_generate_ms": round(best("warm", "generate_s") * 1000, 2),
        "instant_generate_ms": round(best("instant", "generate_s") * 1000, 2),
    }


PARTS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "generate": part_generate,
    "faults": part_faults,
    "warm_cache": part_warm_cache,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts", default=",".join(PARTS), help="comma-separated, of: " + ", ".join(PARTS)
    )
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument(
        "--scheme",
        choices=("openai", "anthropic"),
        default="openai",
        help="backend for the generate and faults parts",
    )
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sequential-subset", type=int, default=25)
    parser.add_argument("--full-sequential", action="store_true")
    args = parser.parse_args()
    for name in args.parts.split(","):
        print(json.dumps({"part": name, **PARTS[name](args)}), flush=True)


if __name__ == "__main__":
    main()
