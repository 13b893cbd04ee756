"""Benchmark of the contamination scanner against the lesson's set-of-n-grams check.

``--part scale`` (default) generates a JSONL training file (default 1 GB) and 10,000
eval cases under /tmp, then measures, each in a fresh subprocess (so peak RSS is per
measurement):
  * the scanner at n=8 and n=13 on 1 and 2 worker processes (MB/s, peak RSS);
  * the scanner on a 100 MB prefix (memory must stay flat as the corpus grows);
  * the lesson's check on a 50 MB prefix (it cannot hold 1 GB).

``--part formats`` generates an ASCII and a mixed-script corpus (default 50 MB each;
Latin with accents, Cyrillic, Greek with capital and final sigma, CJK, Arabic,
Devanagari, emoji, about 2% of records holding a character the fast path hands to
the reference tokenizer: U+00A0, U+3000, U+2009, dotted capital I, capital sigma) as
JSONL, text and parquet, and 2,000 eval cases, then reports separately:
  * throughput of one process (scan only; MB per wall second and per CPU second),
    with the pure-Python path on the mixed corpus for comparison;
  * fixed cost: ``llmeval contamination`` end to end on a one-line training file
    (process start, imports, index of 2,000 cases, report written with --json),
    with its phases timed in process;
  * ``llmeval contamination`` end to end on each 50 MB corpus (process start included);
  * throughput on two 20 MB variants of the mixed JSONL, with a no-break space or a
    capital sigma in every record (the fast path's worst cases).

``--part phases`` times the fixed-cost phases (imports, index, empty scan, report) in
fresh processes, this checkout and ``--compare-src`` alternating, every round printed.

    python tests/bench/bench_contamination.py [--gb 1.0] [--keep]
    python tests/bench/bench_contamination.py --part formats [--mb 50] [--reps 3]
    python tests/bench/bench_contamination.py --part phases --reps 5 --compare-src /tmp/old
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


# -- formats: mixed-script corpora, fixed cost, end to end ---------------------------------

_SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyz",
    "accented": "abcdeéèêëfghiíïjklmnñoóöpqrsßtuúüvwxyzçàâ",
    "cyrillic": "абвгдежзийклмнопрстуфхцчшщъыьэюя",
    "greek": "αβγδεζηθικλμνξοπρστυφχψωάέήίόύώ",
    "cjk": "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可",
    "arabic": "ابتثجحخدذرزسشصضطظعغفقكلمنهوي",
    "devanagari": "कखगघङचछजझञटठडढणतथदधनपफबभमयरलवशषसह",
}
_EMOJI = ["😀", "👍", "🎉", "🚀", "❤️", "👩\u200d💻"]
# Characters the kernels treat differently from str.lower().split(): their records go
# through the reference tokenizer.
_RISKY = ["\u00a0", "\u3000", "\u2009", "İstanbul", "ΣΟΦΙΑ", "ΟΔΟΣ"]


def _mixed_words(rng: random.Random, count: int) -> list[str]:
    names = list(_SCRIPTS)
    weights = [40, 10, 12, 8, 12, 10, 8]
    words = []
    for _ in range(count):
        script = _SCRIPTS[rng.choices(names, weights)[0]]
        size = rng.randint(1, 4) if script is _SCRIPTS["cjk"] else rng.randint(2, 9)
        word = "".join(rng.choice(script) for _ in range(size))
        if rng.random() < 0.2:
            word = word.capitalize()  # Greek capitals end in a final sigma when lowered
        words.append(word)
    return words + _EMOJI


def generate_formats(dirname: Path, mb: float, n_eval: int = 2000,
                     seed: int = 0) -> dict[str, Path]:
    """ASCII and mixed-script corpora as JSONL, text and parquet, and their eval files."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out: dict[str, Path] = {}
    for kind in ("ascii", "mixed"):
        rng = random.Random(f"{seed}{kind}")
        words = _words(rng, 50_000) if kind == "ascii" else _mixed_words(rng, 50_000)
        weights = list(itertools.accumulate(1.0 / (i + 1) for i in range(len(words))))
        pool = [" ".join(rng.choices(words, cum_weights=weights, k=10)) for _ in range(50_000)]
        evals = [{"id": f"e{i}",
                  "instruction": " ".join(rng.choices(words, cum_weights=weights, k=20)),
                  "output": " ".join(rng.choices(words, cum_weights=weights, k=60))}
                 for i in range(n_eval)]
        out[f"{kind}-eval"] = dirname / f"{kind}-eval.jsonl"
        out[f"{kind}-eval"].write_text("".join(json.dumps(e, ensure_ascii=False) + "\n"
                                               for e in evals), encoding="utf-8")
        planted = rng.sample(range(n_eval), n_eval // 100)
        rows: list[dict[str, str]] = []
        written, i = 0, 0
        while written < mb * 1e6:
            ins = " ".join(rng.choices(pool, k=2))
            outp = " ".join(rng.choices(pool, k=6))
            if kind == "mixed" and rng.random() < 0.02:
                outp += rng.choice([" ", ""]) + rng.choice(_RISKY) + " " + rng.choice(pool)
            if i % 500 == 0 and planted:
                ev = evals[planted.pop()]
                outp += " " + " ".join(ev["output"].split()[10:40])
            row = {"instruction": ins.capitalize(), "output": outp}
            rows.append(row)
            written += len(json.dumps(row, ensure_ascii=False).encode()) + 1
            i += 1
        out[f"{kind}-jsonl"] = dirname / f"{kind}-train.jsonl"
        out[f"{kind}-jsonl"].write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                                for r in rows), encoding="utf-8")
        out[f"{kind}-text"] = dirname / f"{kind}-train.txt"
        out[f"{kind}-text"].write_text("".join(r["instruction"] + " " + r["output"] + "\n"
                                               for r in rows), encoding="utf-8")
        out[f"{kind}-parquet"] = dirname / f"{kind}-train.parquet"
        pq.write_table(pa.table({"instruction": [r["instruction"] for r in rows],
                                 "output": [r["output"] for r in rows]}),
                       out[f"{kind}-parquet"], row_group_size=50_000)
    return out


def hostile_variants(dirname: Path, mixed: Path, mb: float = 20.0) -> dict[str, Path]:
    """The mixed-script JSONL with, in every record, a no-break space before a colon (French
    typography; fixed by replacement) or a word with a capital sigma (only the reference
    lower-cases it): the fast path's worst cases."""
    out: dict[str, Path] = {}
    for kind, extra in (("nbsp", "\u00a0:"), ("sigma", " ΟΔΟΣ")):
        path = dirname / f"{kind}-train.jsonl"
        out[f"{kind}-jsonl"] = path
        if path.exists():
            continue
        written = 0
        with mixed.open(encoding="utf-8") as src, path.open("w", encoding="utf-8") as dst:
            for line in src:
                row = json.loads(line)
                row["instruction"] += extra
                text = json.dumps(row, ensure_ascii=False) + "\n"
                dst.write(text)
                written += len(text.encode())
                if written >= mb * 1e6:
                    break
    return out


def _vm_hwm_mb() -> float:
    """Peak RSS of this process since exec (``ru_maxrss`` would include the parent's)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _existing(d: Path) -> dict[str, Path] | None:
    """The corpora of an earlier ``--keep`` run in ``d``, if all are there."""
    names = {f"{k}-eval": f"{k}-eval.jsonl" for k in ("ascii", "mixed")}
    names.update({f"{k}-{fmt}": f"{k}-train.{ext}" for k in ("ascii", "mixed")
                  for fmt, ext in (("jsonl", "jsonl"), ("text", "txt"), ("parquet", "parquet"))})
    files = {k: d / v for k, v in names.items()}
    return files if all(p.exists() for p in files.values()) else None


def measure_throughput(train: Path, evals: Path, n: int, path: str) -> dict[str, float]:
    """One process scanning ``train`` (index built first, not timed); ``path``: "compiled"
    (the fast path with the compiled passes, where built), "kernels" (pyarrow's kernels
    alone) or "python"."""
    os.environ["LLMEVAL_NATIVE"] = "0" if path == "kernels" else "1"
    from pytest_llmeval.contamination import (
        EvalCase,
        EvalIndex,
        Normalizer,
        ScanOptions,
        make_tokenizer,
        scan,
        scanner,
    )
    from pytest_llmeval.contamination.readers import read_records

    if path == "python":
        scanner.arrow_encoder = lambda *args: None  # type: ignore[assignment]
    cases = [EvalCase(str(r["id"]), text) for _, r, text in read_records(evals, FIELDS)]
    index = EvalIndex(cases, make_tokenizer(None, Normalizer()), n)
    cpu0 = time.process_time()
    report = scan(index, [train], ScanOptions(train_fields=FIELDS), workers=1, progress=False)
    cpu = time.process_time() - cpu0
    mb = report.bytes_scanned / 1e6
    try:
        from pytest_llmeval.contamination import native
        compiled = int(native.available() and path == "compiled")
    except ImportError:  # a checkout from before the compiled passes
        compiled = 0
    return {"mb": mb, "wall_s": report.seconds, "cpu_s": cpu, "mb_per_s": mb / report.seconds,
            "mb_per_cpu_s": mb / cpu, "contaminated": report.n_contaminated,
            "peak_mb": _vm_hwm_mb(), "compiled": compiled}


def measure_phases(evals: Path, n: int, out: Path) -> dict[str, float]:
    """The fixed costs in process: imports, index of the eval cases, report written."""
    t0 = time.perf_counter()
    import numpy  # noqa: F401

    from pytest_llmeval.contamination import (
        cli,  # noqa: F401
        fastpath,
    )
    from pytest_llmeval.contamination.engines import scan
    from pytest_llmeval.contamination.gate import outcome
    from pytest_llmeval.contamination.index import EvalIndex
    from pytest_llmeval.contamination.normalize import Normalizer, make_tokenizer
    from pytest_llmeval.contamination.scanner import ScanOptions

    if hasattr(fastpath, "Kernels"):
        fastpath._pyarrow("jsonl")  # pyarrow, its kernels and its JSON reader, as a scan imports them
    else:  # a checkout from before the kernels were called without pyarrow.compute
        import pyarrow.compute  # noqa: F401
        import pyarrow.json  # noqa: F401
    t1 = time.perf_counter()
    cases = cli._load_cases([evals], FIELDS, "id")
    index = EvalIndex(cases, make_tokenizer(None, Normalizer()), n)
    t2 = time.perf_counter()
    empty = out.with_suffix(".empty.jsonl")
    empty.write_text("")
    report = scan(index, [empty], ScanOptions(train_fields=FIELDS), workers=1, progress=False)
    t3 = time.perf_counter()
    verdict = outcome(report, None, 1.0)
    report.write_json(out, verdict.details)
    report.describe()
    t4 = time.perf_counter()
    return {"imports_s": t1 - t0, "index_s": t2 - t1, "empty_scan_s": t3 - t2,
            "report_s": t4 - t3}


def _cli_run(train: Path, evals: Path, n: int, workers: int | None, out: Path,
             src: str | None = None) -> dict[str, float]:
    """``llmeval contamination`` in a fresh process: wall and CPU seconds, start included
    (``src``: the checkout to import the package from, default this one)."""
    cmd = [sys.executable, "-m", "pytest_llmeval.cli", "contamination", "--train", str(train),
           "--eval", str(evals), "--train-fields", ",".join(FIELDS), "-n", str(n), "-q",
           "--no-progress", "--json", str(out), "--max-contaminated-fraction", "1"]
    if workers:
        cmd += ["-j", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=src) if src else None
    # run outside any checkout: `python -m` puts the working directory ahead of PYTHONPATH
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out.parent)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {res.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": wall, "cpu_s": cpu}


def formats_main(args: argparse.Namespace, d: Path) -> None:
    t0 = time.perf_counter()
    files = _existing(d) or generate_formats(d, args.mb)
    print(f"generated {args.mb:g} MB per corpus and format in {time.perf_counter() - t0:.0f} s "
          f"({os.cpu_count()} CPUs visible); load {os.getloadavg()}", flush=True)
    n, reps = 13, args.reps
    files.update(hostile_variants(d, files["mixed-jsonl"], min(args.mb, 20.0)))
    files["nbsp-eval"] = files["sigma-eval"] = files["mixed-eval"]

    def best(rows: list[dict[str, float]], key: str) -> dict[str, float]:
        return min(rows, key=lambda r: r[key])

    skip = set(args.skip.split(","))
    print("\n# fixed cost: llmeval contamination on a one-line training file, 2,000 cases "
          f"(best of {reps}; runs of the two checkouts alternate)")
    here = str(Path(__file__).resolve().parents[2])
    srcs = [here] + ([str(args.compare_src)] if args.compare_src else [])
    for kind in ("ascii", "mixed") if "fixed" not in skip else ():
        one = d / f"{kind}-one.jsonl"
        with files[f"{kind}-jsonl"].open(encoding="utf-8") as f:
            one.write_text(f.readline(), encoding="utf-8")
        runs: dict[str, list[dict[str, float]]] = {s: [] for s in srcs}
        for _ in range(reps):
            for src in srcs:
                runs[src].append(_cli_run(one, files[f"{kind}-eval"], n, 1, d / "r.json", src))
        phases = [_sub("phases", str(files[f"{kind}-eval"]), str(n), str(d / "p.json"))
                  for _ in range(reps)]
        for src in srcs:
            r = best(runs[src], "wall_s")
            label = "this checkout" if src == here else src
            print(f"{kind:6s} {label:16s} end to end wall={r['wall_s']:.3f} s "
                  f"cpu={r['cpu_s']:.3f} s", flush=True)
        print(f"{kind:6s} this checkout, phases in process (best of each): "
              + " ".join(f"{k}={min(x[k] for x in phases):.3f}" for k in phases[0]), flush=True)

    print(f"\n# throughput, one process, scan only (best of {reps}); the fast path with the "
          "compiled passes and with pyarrow's kernels alone (LLMEVAL_NATIVE=0) alternate")
    for kind, fmt, py in [("ascii", "jsonl", False), ("ascii", "text", False),
                          ("ascii", "parquet", False), ("mixed", "jsonl", False),
                          ("mixed", "text", False), ("mixed", "parquet", False),
                          ("mixed", "jsonl", True), ("mixed", "text", True),
                          ("mixed", "parquet", True), ("nbsp", "jsonl", False),
                          ("nbsp", "jsonl", True), ("sigma", "jsonl", False),
                          ("sigma", "jsonl", True)] if "throughput" not in skip else []:
        paths = ["python"] if py else ["compiled", "kernels"]
        rows: dict[str, list[dict[str, float]]] = {p: [] for p in paths}
        for _ in range(1 if py else reps):
            for path in paths:
                rows[path].append(_sub("throughput", str(files[f"{kind}-{fmt}"]),
                                       str(files[f"{kind}-eval"]), str(n), path))
        for path in paths:
            r = best(rows[path], "cpu_s")
            label = f"{kind} {fmt} ({path})"
            print(f"{label:28s} " + " ".join(f"{k}={v:,.2f}" if isinstance(v, float) else
                                             f"{k}={v}" for k, v in r.items()), flush=True)

    print(f"\n# llmeval contamination end to end, process start included (best of {reps}; "
          "runs of the two checkouts alternate)")
    for kind in ("ascii", "mixed") if "e2e" not in skip else ():
        for fmt in ("jsonl", "text", "parquet"):
            train = files[f"{kind}-{fmt}"]
            size = train.stat().st_size / 1e6
            for workers in (1, None):
                e2e: dict[str, list[dict[str, float]]] = {src: [] for src in srcs}
                for _ in range(reps):
                    for src in srcs:
                        e2e[src].append(_cli_run(train, files[f"{kind}-eval"], n, workers,
                                                 d / "r.json", src))
                for src in srcs:
                    r = best(e2e[src], "wall_s")
                    label = "" if src == here else f" [{src}]"
                    print(f"{kind} {fmt:8s} -j {workers or 'all':3} {size:6.1f} MB "
                          f"wall={r['wall_s']:.2f} s ({size / r['wall_s']:.1f} MB/s) "
                          f"cpu={r['cpu_s']:.2f} s ({size / r['cpu_s']:.1f} MB/cpu-s){label}",
                          flush=True)
    print(f"\nload after: {os.getloadavg()}")


def _sub(kind: str, *args: str, src: str | None = None) -> dict[str, float]:
    """One measurement in a fresh process; ``src``: the checkout to import the package from
    (run outside any checkout, since ``python -m`` and ``-c`` put the working directory first)."""
    env = dict(os.environ, PYTHONPATH=src) if src else None
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure", kind, *args],
                         check=True, capture_output=True, text=True, env=env,
                         cwd=tempfile.gettempdir() if src else None)
    return json.loads(out.stdout.strip().splitlines()[-1])


def phases_main(args: argparse.Namespace, d: Path) -> None:
    """The fixed-cost phases in fresh processes, this checkout and --compare-src alternating,
    every round printed (the machine's noise shows as the spread)."""
    files = _existing(d) or generate_formats(d, args.mb)
    here = str(Path(__file__).resolve().parents[2])
    srcs = [here] + ([str(args.compare_src)] if args.compare_src else [])
    print(f"# fixed-cost phases, 2,000 cases, {args.reps} rounds; load {os.getloadavg()}")
    for kind in ("mixed", "ascii"):
        for i in range(args.reps):
            for src in srcs:
                r = _sub("phases", str(files[f"{kind}-eval"]), "13", str(d / "p.json"), src=src)
                label = "this checkout" if src == here else src
                print(f"{kind:6s} round {i + 1} {label:16s} " + " ".join(
                    f"{k}={v:.3f}" for k, v in r.items()) + f" total={sum(r.values()):.3f}",
                    flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--dir", type=Path, default=None)
    ap.add_argument("--part", choices=("scale", "formats", "phases"), default="scale")
    ap.add_argument("--mb", type=float, default=50.0, help="corpus size for --part formats")
    ap.add_argument("--reps", type=int, default=3, help="repetitions (best kept), formats")
    ap.add_argument("--compare-src", type=Path, default=None,
                    help="another checkout whose fixed cost is measured alongside (formats)")
    ap.add_argument("--skip", default="", help="formats parts to skip: fixed,throughput,e2e")
    ap.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure and args.measure[0] == "phases":
        _, evals, n, out = args.measure
        print(json.dumps(measure_phases(Path(evals), int(n), Path(out))))
        return
    if args.measure:
        kind, train, evals, n, *rest = args.measure
        if kind == "throughput":
            res = measure_throughput(Path(train), Path(evals), int(n), rest[0])
        elif kind == "scanner":
            res = measure_scanner(Path(train), Path(evals), int(n), int(rest[0]))
        else:
            res = measure_lesson(Path(train), Path(evals), int(n))
        print(json.dumps(res))
        return
    d = args.dir or Path(tempfile.mkdtemp(prefix="llmeval-bench-", dir="/tmp"))
    d.mkdir(parents=True, exist_ok=True)
    if args.part in ("formats", "phases"):
        try:
            (formats_main if args.part == "formats" else phases_main)(args, d)
        finally:
            if not args.keep:
                for p in d.iterdir():
                    p.unlink()
                if not args.dir:
                    d.rmdir()
        return
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
