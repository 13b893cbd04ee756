"""Sharding and cache housekeeping: what a merge and a prune cost.

    python tests/bench/bench_shard_cache_admin.py [--cases 1200] [--entries 50000]

Merge: a suite of ``--cases`` cases (python model and baseline, a python judge, exact match per
category, ROUGE-L, chrF, F1 and the judge's score and win rate) run unsharded and as three
``--llmeval-shard-cases`` shards (each a fresh ``pytest`` process); then ``llmeval merge``. The
merge recomputes every gate of the suite (bootstraps included) without a model, so its time is
the gates' share of an unsharded run, plus reading and writing the files.

Cache: ``--entries`` entries of 1 kB; stats, a prune to half the size (least recently used), an
export and an import into an empty cache.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scale.shard_helpers import make_project_files  # noqa: E402

from pytest_llmeval.cache import Cache, cache_key  # noqa: E402


def _pytest(cwd: Path, *args: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=cwd,
                   env={**os.environ, "PYTHONPATH": f"{cwd}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"},
                   stdout=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def bench_merge(cases: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_project_files(root, n_qa=cases, n_short=10)
        full = _pytest(root, "evals/qa.eval.yaml", "--llmeval-json", "full.json")
        shards = [_pytest(root, "evals/qa.eval.yaml", "--llmeval-shard", f"{k}/3", "--llmeval-shard-cases",
                          "--llmeval-json", f"s{k}.json") for k in (1, 2, 3)]
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest_llmeval.cli", "merge", "s1.json", "s2.json", "s3.json",
                        "-o", "merged.json"], cwd=root, stdout=subprocess.DEVNULL, check=False)
        merge = time.perf_counter() - t
        print(f"merge: {cases} cases, 6 gates: unsharded run {full:.1f} s; shards {shards[0]:.1f} / "
              f"{shards[1]:.1f} / {shards[2]:.1f} s; llmeval merge {merge:.1f} s")


def bench_cache(entries: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with Cache(root / "a.sqlite3") as cache:
            value = {"text": "x" * 1000}
            t = time.perf_counter()
            for i in range(entries):
                cache.put("generate", cache_key(i), value)
            fill = time.perf_counter() - t
            t = time.perf_counter()
            st = cache.stats()
            stats_s = time.perf_counter() - t
            t = time.perf_counter()
            info = cache.export(root / "a.tar.gz")
            export_s = time.perf_counter() - t
            t = time.perf_counter()
            res = cache.prune(max_bytes=st.bytes // 2)
            prune_s = time.perf_counter() - t
        with Cache(root / "b.sqlite3") as cache:
            t = time.perf_counter()
            imp = cache.import_archive(root / "a.tar.gz")
            import_s = time.perf_counter() - t
        size = (root / "a.tar.gz").stat().st_size
        print(f"cache: {entries} entries of 1 kB ({st.bytes / 1e6:.1f} MB): put {fill:.1f} s, stats "
              f"{stats_s:.2f} s, prune to half {prune_s:.2f} s ({res.removed} removed, VACUUM included), export "
              f"{export_s:.2f} s ({size / 1e6:.2f} MB archive, {info.entries} entries), import into an "
              f"empty cache {import_s:.2f} s ({imp.added} added, verification pass included)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1200)
    parser.add_argument("--entries", type=int, default=50000)
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f}")
    bench_cache(args.entries)
    bench_merge(args.cases)
    print(f"load: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
