"""Benchmark of the contamination scanner against the lesson's set-of-n-grams check.

Generates a JSONL training file (default 1 GB) and 10,000 eval cases under /tmp,
then measures, each in a fresh subprocess (so peak RSS is per measurement):
  * the scanner at n=8 and n=13 on 1 and 2 worker processes (MB/s, peak RSS);
  * the scanner on a 100 MB prefix (memory must stay flat as the corpus grows);
  * the lesson's check on a 50 MB prefix (it cannot hold 1 GB).

    python tests/bench/bench_contamination.py [--gb 1.0] [--keep]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIELDS = ("instruction", "output")


def _words(rng: random.Random, count: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(count)]


def generate(dirname: Path, gb: float, n_eval: int = 10_000, seed: int = 0) -> tuple[Path, Path]:
    """Write train.jsonl (~gb GB) and eval.jsonl; about 1% of eval cases are planted."""
    rng = random.Random(seed)
    words = _words(rng, 50_000)
    weights = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(words))))
    pool = [" ".join(rng.choices(words, cum_weights=weights, k=10)) for _ in range(100_000)]
    evals = []
    for i in range(n_eval):
        evals.append({"id": f"e{i}",
                      "instruction": " ".join(rng.choices(words, cum_weights=weights, k=20)),
                      "output": " ".join(rng.choices(words, cum_weights=weights, k=60))})
    eval_path = dirname / "eval.jsonl"
    eval_path.write_text("".join(json.dumps(e) + "\n" for e in evals))
    train_path = dirname / "train.jsonl"
    target = int(gb * 1e9)
    planted = rng.sample(range(n_eval), n_eval // 100)
    written, i = 0, 0
    with train_path.open("w") as f:
        while written < target:
            ins = " ".join(rng.choices(pool, k=2))
            out = " ".join(rng.choices(pool, k=6))
            if i % 2000 == 0 and planted:
                ev = evals[planted.pop()]
                out = out + " " + " ".join(ev["output"].split()[10:40])
            line = json.dumps({"instruction": ins.capitalize(), "output": out}) + "\n"
            f.write(line)
            written += len(line)
            i += 1
    return train_path, eval_path


def prefix(path: Path, mb: int) -> Path:
    """The first ``mb`` MB of whole lines of ``path``."""
    out = path.with_name(f"train_{mb}mb.jsonl")
    with path.open("rb") as src, out.open("wb") as dst:
        dst.write(src.read(mb * 1_000_000))
        dst.write(src.readline())
    return out


def _peak_mb() -> tuple[float, float]:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return self_kb / 1024, kids_kb / 1024


def measure_scanner(train: Path, evals: Path, n: int, workers: int) -> dict[str, float]:
    from pytest_llmeval.contamination import (
        EvalCase,
        EvalIndex,
        Normalizer,
        ScanOptions,
        make_tokenizer,
        scan,
    )
    from pytest_llmeval.contamination.readers import read_records

    t0 = time.perf_counter()
    cases = [EvalCase(str(r["id"]), text) for _, r, text in read_records(evals, FIELDS)]
    index = EvalIndex(cases, make_tokenizer(None, Normalizer()), n)
    t_index = time.perf_counter() - t0
    report = scan(index, [train], ScanOptions(train_fields=FIELDS), workers=workers,
                  progress=False)
    parent, worker = _peak_mb()
    mb = train.stat().st_size / 1e6
    return {"mb": mb, "index_s": t_index, "scan_s": report.seconds,
            "mb_per_s": mb / report.seconds, "contaminated": report.n_contaminated,
            "peak_parent_mb": parent, "peak_worker_mb": worker}


def measure_lesson(train: Path, evals: Path, n: int) -> dict[str, float]:
    t0 = time.perf_counter()
    with train.open() as f:
        train_rows = [json.loads(line) for line in f]
    eval_rows = [json.loads(line) for line in evals.open()]

    def grams(text: str) -> set[tuple[str, ...]]:
        w = text.lower().split()
        return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}

    seen: set[tuple[str, ...]] = set()
    for ex in train_rows:
        seen.update(grams(ex.get("instruction", "") + " " + ex.get("output", "")))
    bad = [i for i, ex in enumerate(eval_rows)
           if grams(ex.get("instruction", "") + " " + ex.get("output", "")) & seen]
    dt = time.perf_counter() - t0
    mb = train.stat().st_size / 1e6
    return {"mb": mb, "scan_s": dt, "mb_per_s": mb / dt, "contaminated": len(bad),
            "peak_parent_mb": _peak_mb()[0]}


def _sub(kind: str, *args: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--measure", kind, *args],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        kind, train, evals, n, *rest = args.measure
        if kind == "scanner":
            res = measure_scanner(Path(train), Path(evals), int(n), int(rest[0]))
        else:
            res = measure_lesson(Path(train), Path(evals), int(n))
        print(json.dumps(res))
        return
    d = args.dir or Path(tempfile.mkdtemp(prefix="llmeval-bench-", dir="/tmp"))
    d.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    train, evals = generate(d, args.gb)
    print(f"generated {train.stat().st_size / 1e6:,.0f} MB in {time.perf_counter() - t0:.0f} s "
          f"({os.cpu_count()} CPUs visible)", flush=True)
    p100, p50 = prefix(train, 100), prefix(train, 50)
    rows = []
    try:
        for label, kind, path, n, w in [
            ("lesson check_contamination, 50 MB", "lesson", p50, 8, None),
            ("scanner 50 MB, n=8, 1 proc", "scanner", p50, 8, 1),
            ("scanner 100 MB, n=13, 1 proc", "scanner", p100, 13, 1),
            ("scanner full, n=8, 1 proc", "scanner", train, 8, 1),
            ("scanner full, n=8, 2 procs", "scanner", train, 8, 2),
            ("scanner full, n=13, 1 proc", "scanner", train, 13, 1),
            ("scanner full, n=13, 2 procs", "scanner", train, 13, 2),
        ]:
            extra = [str(w)] if w else []
            res = _sub(kind, str(path), str(evals), str(n), *extra)
            rows.append((label, res))
            print(f"{label:36s} " + " ".join(f"{k}={v:,.1f}" if isinstance(v, float) else
                                              f"{k}={v}" for k, v in res.items()), flush=True)
    finally:
        if not args.keep:
            for p in (train, evals, p100, p50):
                p.unlink(missing_ok=True)
            if not args.dir:
                d.rmdir()


if __name__ == "__main__":
    main()
