"""Benchmark: a fleet of four loopback replicas, one slow and one killed midway, against the ideal.

Run:  python tests/bench/bench_fleet.py [--n 2000] [--latency 0.2] [--slow-latency 0.6]
      [--concurrency 8] [--kill-at 0.25] [--suite]

Four fake OpenAI-compatible servers run in their own processes (so their CPU does
not compete with the client for the GIL, as real replicas would not): two at
LATENCY, one at SLOW_LATENCY, and one at LATENCY that is SIGKILLed once it has
received the requests it would get in KILL_AT of the ideal time (watched through
its stats route, so the start-up of the client does not matter), dropping the
requests it holds. N generations go through one
``openai:`` fleet model with CONCURRENCY per replica.

The ideal wall time counts only the replicas alive at the end, at full use:
``N / sum(concurrency / latency)``; the killed replica's work before it died is
a bonus. A stricter ideal that credits the killed replica's share until it died
(``(N - its requests) / live rate``) is printed beside it. ``--no-kill`` runs the
four replicas to the end, against the ideal of all four. Printed: wall time, its ratio to the ideal, the requests retried from the
killed replica, each replica's answers, and the load average.

With ``--reference`` the same N then go to one replica at LATENCY whose
concurrency gives about the fleet's live rate (no fleet, nothing killed): its
ratio to its own ideal is what the client reaches on this machine at that rate,
the floor the fleet's ratio should be read against.

With ``--suite`` the same load runs as a suite through pytest (``llmeval`` plugin,
results file), and the results are checked: every case exactly once; the wall
time is then the whole pytest process, start-up and collection included.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "pytest_llmeval.testing.fake_server", "--latency",
                             str(latency)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"fake server did not start: {line!r}")
    return proc, line.split(" ", 1)[1] + "/v1"


def run_model(urls: list[str], args: argparse.Namespace) -> tuple[float, dict[str, Any], int]:
    from pytest_llmeval.models import GenerationRequest, load_model

    model = load_model("openai:bench", name="fleet", options={
        "api_key_env": False, "replicas": urls, "concurrency": args.concurrency, "endpoint_backoff": 0.5})
    start = time.perf_counter()
    out = model.generate([GenerationRequest(f"case {i}") for i in range(args.n)])
    wall = time.perf_counter() - start
    bad = sum(1 for i, o in enumerate(out) if o != f"echo: case {i}")
    return wall, model.usage(), bad


def run_suite(urls: list[str], args: argparse.Namespace) -> tuple[float, dict[str, Any], int]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        replicas = ", ".join(f'"{u}"' for u in urls)
        (d / "pyproject.toml").write_text(textwrap.dedent(f"""
            [tool.pytest.ini_options]
            llmeval_cache = "off"
            [tool.llmeval.models]
            pool = {{ref = "openai:bench", api_key_env = false, concurrency = {args.concurrency}, endpoint_backoff = 0.5, replicas = [{replicas}]}}
        """))
        (d / "cases.jsonl").write_text("".join(
            json.dumps({"id": f"c{i}", "text": f"case {i}", "reference": f"echo: case {i}"}) + "\n"
            for i in range(args.n)))
        (d / "big.eval.yaml").write_text("model: pool\nprompt: '{text}'\ncases: cases.jsonl\n"
                                         "metrics:\n  exact_match: {min: 1.0}\n")
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "--llmeval-json", "r.json"], cwd=d, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:])
        print("\n".join(line for line in proc.stdout.splitlines() if "retried from failed" in line))
        run = json.loads((d / "r.json").read_text())
        ids = [c["id"] for c in run["suites"][0]["cases"]]
        bad = len(ids) - len(set(ids)) + (args.n - len(set(ids)))
        return wall, run["usage"]["pool"], bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--slow-latency", type=float, default=0.6)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--kill-at", type=float, default=0.25, help="fraction of the ideal time")
    parser.add_argument("--no-kill", action="store_true", help="kill no replica (ideal over all four)")
    parser.add_argument("--suite", action="store_true", help="run the load as a suite through pytest")
    parser.add_argument("--reference", action="store_true", help="also one replica at the same rate")
    args = parser.parse_args()
    latencies = [args.latency, args.latency, args.slow_latency, args.latency]
    killed = None if args.no_kill else 1
    live_rate = sum(args.concurrency / lat for i, lat in enumerate(latencies) if i != killed)
    ideal = args.n / live_rate
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} CPUs)")
    servers = [start_server(lat) for lat in latencies]
    urls = [u for _, u in servers]
    victim, victim_url = servers[1]
    kill_after = int(args.kill_at * ideal * args.concurrency / latencies[1]) if killed else 10**9
    stop = threading.Event()

    def killer() -> None:
        while not stop.wait(0.01):
            try:
                with urllib.request.urlopen(victim_url.removesuffix("/v1") + "/_fake/stats", timeout=5) as r:
                    if json.loads(r.read())["count"] >= kill_after:
                        victim.send_signal(signal.SIGKILL)
                        return
            except OSError:
                pass

    watcher = threading.Thread(target=killer, daemon=True)
    try:
        watcher.start()
        cpu = time.process_time()
        wall, usage, bad = (run_suite if args.suite else run_model)(urls, args)
        cpu = time.process_time() - cpu
    finally:
        stop.set()
        for proc, _ in servers:
            proc.kill()
            proc.wait(timeout=10)
    killing = ("no replica killed" if killed is None else
               f"replica 1 SIGKILLed after {kill_after} requests (about {args.kill_at * ideal:.1f} s)")
    print(f"{args.n} requests; replicas at {latencies} s latency, {args.concurrency} in flight each; {killing}")
    print(f"wall {wall:.2f} s, ideal (live replicas only) {ideal:.2f} s, ratio {wall / ideal:.3f}"
          + ("" if args.suite else f"; client CPU {cpu:.2f} s"))
    if killed is not None:
        strict = (args.n - kill_after) / live_rate
        print(f"stricter ideal crediting the killed replica's {kill_after} requests: {strict:.2f} s, "
              f"ratio {wall / strict:.3f}")
    print(f"requests retried from the killed replica: {usage.get('failover_retries')}, rerouted before "
          f"sending: {usage.get('failover_reroutes')}; wrong or missing outputs: {bad}")
    for i, url in enumerate(urls):
        counts = usage.get("endpoints", {}).get(url, {})
        print(f"  replica {i} ({latencies[i]} s{', killed' if i == killed else ''}): answered "
              f"{counts.get('answered')}, failed {counts.get('failed')}")
    if args.reference:
        reference(args, live_rate)
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def reference(args: argparse.Namespace, rate: float) -> None:
    """One replica, no failure, at about ``rate`` requests/s: the client's own ratio at that load."""
    from pytest_llmeval.models import GenerationRequest, load_model

    concurrency = max(1, round(rate * args.latency))
    proc, url = start_server(args.latency)
    try:
        model = load_model("openai:bench", name="one", options={
            "api_key_env": False, "base_url": url, "concurrency": concurrency})
        start = time.perf_counter()
        out = model.generate([GenerationRequest(f"case {i}") for i in range(args.n)])
        wall = time.perf_counter() - start
    finally:
        proc.kill()
        proc.wait(timeout=10)
    ideal = args.n * args.latency / concurrency
    bad = sum(1 for i, o in enumerate(out) if o != f"echo: case {i}")
    print(f"reference: one replica at {args.latency} s, {concurrency} in flight: wall {wall:.2f} s, "
          f"ideal {ideal:.2f} s, ratio {wall / ideal:.3f}; wrong or missing outputs: {bad}")


if __name__ == "__main__":
    main()
