"""``llmeval view``: how long the runs page takes for a folder of results files.

Writes N results files (one suite, C cases, four gates each), then times the index page
through the app (Starlette's test client, no network): the first request parses every
file, later ones re-read only what changed (nothing here). Run:

    python tests/bench/bench_viewer.py            # --runs 50 --cases 200 --repeat 5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "report"))


def main() -> None:
    from conftest import build_run
    from starlette.testclient import TestClient

    from pytest_llmeval.viewer.app import create_app

    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--cases", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        size = 0
        for i in range(args.runs):
            run = build_run(args.cases, worse_from=None if i % 3 else args.cases // 2, seed=i)
            run.created = f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00"
            run.save(folder / f"run{i:03d}.json")
            size += (folder / f"run{i:03d}.json").stat().st_size
        client = TestClient(create_app(folder, last=args.runs))
        t0 = time.perf_counter()
        first = client.get("/")
        cold = time.perf_counter() - t0
        assert first.status_code == 200 and first.text.count('class="run"') == args.runs
        warm = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            client.get("/")
            warm.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        cmp = client.get("/compare?old=run001.json&new=run000.json")
        compare = time.perf_counter() - t0
        assert cmp.status_code == 200
        print(f"{args.runs} results files, {args.cases} cases each, {size / 1e6:.1f} MB")
        print(f"runs page, first request (parses every file): {cold * 1000:.0f} ms")
        print(f"runs page, later requests (median of {args.repeat}): {sorted(warm)[len(warm) // 2] * 1000:.0f} ms")
        print(f"comparison of two runs: {compare * 1000:.0f} ms")


if __name__ == "__main__":
    main()
