"""Where shards are scanned: in process, on a local process pool, or on a Dask cluster.

Every engine runs ``scan_shard`` on the same shard plan and hands the results to the
same ``reduce``, so they give identical reports.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.contamination.index import EvalIndex
from pytest_llmeval.contamination.readers import Shard, plan_shards
from pytest_llmeval.contamination.report import ScanReport
from pytest_llmeval.contamination.scanner import ScanOptions, ShardResult, reduce, scan_shard
from pytest_llmeval.errors import ConfigError, MissingDependency

ENGINES = ("local", "dask")
_MIN_SHARD = 4 << 20
_MAX_SHARD = 64 << 20

# The index a forked pool worker reads: set in the parent before the pool starts, so
# children share its pages instead of receiving a pickled copy per task.
_WORKER_INDEX: EvalIndex | None = None


def default_workers() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS / Windows
        return os.cpu_count() or 1


class Progress:
    """A one-line progress display with MB/s on stderr (only when it is a terminal)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self._last = 0.0

    def update(self, nbytes: int) -> None:
        self.done += nbytes
        now = time.perf_counter()
        if self.enabled and (now - self._last > 0.2 or self.done >= self.total):
            self._last = now
            rate = self.done / max(now - self.t0, 1e-9) / 1e6
            pct = 100.0 * self.done / self.total if self.total else 100.0
            sys.stderr.write(f"\rcontamination: {self.done / 1e6:,.0f}/{self.total / 1e6:,.0f} "
                             f"MB ({pct:3.0f}%) {rate:,.1f} MB/s")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _pool_scan(args: tuple[Shard, ScanOptions]) -> ShardResult:
    assert _WORKER_INDEX is not None
    return scan_shard(_WORKER_INDEX, *args)


def _run_local(index: EvalIndex, shards: Sequence[Shard], options: ScanOptions, workers: int,
               on_done: Callable[[ShardResult], None]) -> list[ShardResult]:
    global _WORKER_INDEX
    results: list[ShardResult] = []
    if workers <= 1 or len(shards) <= 1:
        for shard in shards:
            results.append(scan_shard(index, shard, options))
            on_done(results[-1])
        return results
    import multiprocessing  # (only a pool needs it)

    methods = multiprocessing.get_all_start_methods()
    if "fork" not in methods:  # pragma: no cover - no fork: each worker gets its own copy
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(workers, initializer=_set_index, initargs=(index,)) as pool:
            for r in pool.imap_unordered(_pool_scan, [(s, options) for s in shards]):
                results.append(r)
                on_done(r)
        return results
    _WORKER_INDEX = index
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for r in pool.imap_unordered(_pool_scan, [(s, options) for s in shards]):
                results.append(r)
                on_done(r)
    finally:
        _WORKER_INDEX = None
    return results


def _set_index(index: EvalIndex) -> None:  # pragma: no cover - spawn platforms only
    global _WORKER_INDEX
    _WORKER_INDEX = index


def _run_dask(index: EvalIndex, shards: Sequence[Shard], options: ScanOptions,
              scheduler: Any, workers: int,
              on_done: Callable[[ShardResult], None]) -> list[ShardResult]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise MissingDependency("dask[distributed]", "dask", "The Dask engine") from exc
    cluster = None
    own_client = not isinstance(scheduler, Client)
    if isinstance(scheduler, Client):
        client = scheduler
    elif scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        idx = client.scatter(index, broadcast=True)
        futures = client.map(scan_shard, [idx] * len(shards), list(shards),
                             [options] * len(shards), pure=False)
        results = []
        for fut in as_completed(futures):
            r = fut.result()
            results.append(r)
            on_done(r)
        return results
    finally:
        if own_client:
            client.close()
        if cluster is not None:
            cluster.close()


def scan(index: EvalIndex, train_paths: Sequence[Path], options: ScanOptions, *,
         engine: str = "local", workers: int | None = None, scheduler: Any = None,
         progress: bool | None = None, shard_bytes: int | None = None,
         settings: dict[str, Any] | None = None) -> ScanReport:
    """Scan training files against the index and return the per-case report.

    Args:
        engine: ``local`` (process pool on this machine) or ``dask``.
        workers: processes for ``local`` / workers of a local Dask cluster (default: cores).
        scheduler: Dask scheduler address or ``Client``; None starts a local cluster.
        progress: show progress with MB/s (default: when stderr is a terminal).
        shard_bytes: size of byte-range shards (default: a few per worker, 4-64 MB).
        settings: extra settings recorded in the report.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine {engine!r} is not known; use one of {', '.join(ENGINES)}")
    workers = workers or default_workers()
    total = sum(p.stat().st_size for p in train_paths)
    if shard_bytes is None:
        shard_bytes = min(_MAX_SHARD, max(_MIN_SHARD, total // (workers * 4) + 1))
    shards = plan_shards(train_paths, shard_bytes)
    bar = Progress(sum(s.size for s in shards),
                   sys.stderr.isatty() if progress is None else progress)
    t0 = time.perf_counter()
    try:
        if engine == "dask":
            results = _run_dask(index, shards, options, scheduler, workers,
                                lambda r: bar.update(r.nbytes))
        else:
            results = _run_local(index, shards, options, workers, lambda r: bar.update(r.nbytes))
    finally:
        bar.close()
    cases, nbytes, nrec = reduce(index, shards, results, options)
    info = {"n": index.n, "min_overlap": options.min_overlap,
            "max_doc_freq": options.max_doc_freq,
            "train_fields": list(options.train_fields) if options.train_fields else None,
            "tokenizer": index.tokenizer.name,
            "normalize": index.tokenizer.normalizer.to_dict()}
    info.update(settings or {})
    return ScanReport(info, [str(p) for p in train_paths], cases, nbytes, nrec,
                      time.perf_counter() - t0, engine, {"workers": workers,
                                                         "shards": len(shards)})
