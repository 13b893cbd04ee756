"""The on-disk cache of generations and judge verdicts: one SQLite file in WAL mode.

Why SQLite in WAL mode: readers never block the writer and vice versa, so
xdist workers (separate processes) share one file safely; every finished
call is committed on its own, and a committed WAL transaction survives the
process being killed (``synchronous=NORMAL`` only risks the last commits on a
power loss, not on a crash), so an interrupted run resumes where it stopped.

Entries live in namespaces (``"generate"``, ``"judge"``, ...). A key is the
SHA-256 of the canonical JSON of a payload that must hold everything that
changes the answer; values are JSON. For generations, :class:`CachedModel`
builds the payload from the model's fingerprint and
:meth:`~pytest_llmeval.models.base.GenerationRequest.key_payload` (prompt,
parameters and the sample index, so repeated samples at temperature > 0 keep
distinct entries). Errors are never cached.

Modes: ``rw`` (default), ``ro`` (never writes: for CI jobs that restore a
cache; a miss still calls the model unless ``strict``, where a miss becomes a
:class:`~pytest_llmeval.errors.CacheError` in that request's slot) and ``off``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pytest_llmeval.errors import CacheError, ModelError
from pytest_llmeval.models.base import GenerationOutcome, GenerationRequest, Model

Mode = Literal["rw", "ro", "off"]

DEFAULT_DIRNAME = ".llmeval_cache"
DB_FILENAME = "cache.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0
"""How long a worker waits for another one's write lock before giving up."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    ns      TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID
"""


def cache_key(payload: Any) -> str:
    """SHA-256 of the canonical JSON of ``payload`` (sorted keys, no whitespace)."""
    try:
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except TypeError as exc:
        raise CacheError(f"cache key payload is not JSON-serialisable: {exc}") from exc
    return hashlib.sha256(blob.encode()).hexdigest()


def default_cache_dir(rootdir: Path) -> Path:
    """``<rootdir>/.llmeval_cache``: the cache's home unless ``--llmeval-cache`` says otherwise."""
    return Path(rootdir) / DEFAULT_DIRNAME


def open_cache(
    value: str | None, *, rootdir: Path, read_only: bool = False, strict: bool = False
) -> Cache:
    """The cache an ``--llmeval-cache DIR|off`` value names.

    Args:
        value: ``None`` for the default directory under ``rootdir``, ``"off"``, or a
            directory (relative paths resolve against the current directory).
        rootdir: the pytest rootdir.
        read_only: open in ``ro`` mode (never write).
        strict: with ``read_only``, a miss is an error instead of a model call.
    """
    if value is not None and value.strip().lower() == "off":
        return Cache(None, mode="off")
    directory = default_cache_dir(rootdir) if value is None else Path(value).expanduser().resolve()
    return Cache(directory / DB_FILENAME, mode="ro" if read_only else "rw", strict=strict)


class Cache:
    """A namespaced key -> JSON store in one SQLite file (see the module docstring).

    Thread-safe: one connection guarded by a lock, so an API backend's worker
    threads can store results as they finish. Process-safe through SQLite's
    WAL locking (each process opens its own ``Cache``).

    Attributes:
        hits, misses, writes: counters over this object's lifetime.
    """

    def __init__(self, path: str | Path | None, mode: Mode = "rw", *, strict: bool = False) -> None:
        if mode not in ("rw", "ro", "off"):
            raise CacheError(f"cache mode must be 'rw', 'ro' or 'off', got {mode!r}")
        if mode != "off" and path is None:
            raise CacheError(f"a cache in mode {mode!r} needs a path")
        if strict and mode != "ro":
            raise CacheError("strict applies to a read-only cache (mode='ro') only")
        self.path = Path(path) if path is not None else None
        self.mode: Mode = mode
        self.strict = strict
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if mode == "rw":
            self._conn = self._open_rw()
        elif mode == "ro" and self.path is not None and self.path.exists():
            self._conn = self._open_ro()

    # -- opening ------------------------------------------------------------------

    def _open_rw(self) -> sqlite3.Connection:
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            ignore = self.path.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text(
                    "# created by pytest-llmevals: the cache is not for version control\n*\n"
                )
        except OSError as exc:
            raise CacheError(
                f"cannot create the cache directory {self.path.parent}: {exc}. "
                f"Choose another with --llmeval-cache DIR, or --llmeval-cache off"
            ) from exc
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
                )
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
                self._check_version(conn, write=True)
                return conn
            except sqlite3.OperationalError as exc:
                # Several xdist workers creating the file at once can see "locked"
                # before the busy handler applies; retry until the deadline.
                if "locked" in str(exc) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise self._broken(exc) from exc
            except sqlite3.DatabaseError as exc:
                raise self._broken(exc) from exc

    def _open_ro(self) -> sqlite3.Connection:
        assert self.path is not None
        try:
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro",
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
            self._check_version(conn, write=False)
            return conn
        except sqlite3.DatabaseError as exc:
            raise self._broken(exc) from exc

    def _check_version(self, conn: sqlite3.Connection, *, write: bool) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and write:
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version not in (0, SCHEMA_VERSION):
            raise CacheError(
                f"{self.path}: cache schema version {version}, this version of "
                f"pytest-llmevals reads {SCHEMA_VERSION}. Delete the file to start afresh."
            )

    def _broken(self, exc: Exception) -> CacheError:
        return CacheError(
            f"cannot use the cache file {self.path}: {exc}. Delete it to start "
            f"afresh, or run with --llmeval-cache off"
        )

    # -- the store ------------------------------------------------------------------

    def get(self, namespace: str, key_payload: Any) -> Any | None:
        """The value stored for ``key_payload``, or ``None`` on a miss."""
        return self.get_many(namespace, [key_payload])[0]

    def get_many(self, namespace: str, key_payloads: Sequence[Any]) -> list[Any | None]:
        """Values for many payloads in one pass (``None`` for each miss)."""
        return self._get_keys(namespace, [cache_key(p) for p in key_payloads])

    def put(self, namespace: str, key_payload: Any, value: Any) -> None:
        """Store ``value`` (JSON, not ``None``), committed at once; a no-op unless ``rw``."""
        self._put_key(namespace, cache_key(key_payload), value)

    def _get_keys(self, namespace: str, keys: Sequence[str]) -> list[Any | None]:
        found: dict[str, Any] = {}
        if self._conn is not None and keys:
            with self._lock:
                for chunk in _chunks(list(dict.fromkeys(keys)), 500):
                    marks = ",".join("?" * len(chunk))
                    rows = self._conn.execute(
                        f"SELECT key, value FROM entries WHERE ns = ? AND key IN ({marks})",
                        [namespace, *chunk],
                    ).fetchall()
                    for k, v in rows:
                        found[k] = json.loads(v)
        out = [found.get(k) for k in keys]
        hits = sum(v is not None for v in out)
        with self._lock:
            self.hits += hits
            self.misses += len(out) - hits
        return out

    def _put_key(self, namespace: str, key: str, value: Any) -> None:
        if value is None:
            raise CacheError("cannot cache None (it reads back as a miss)")
        if self.mode != "rw" or self._conn is None:
            return
        blob = json.dumps(value, ensure_ascii=False)
        with self._lock:
            # Autocommit: each finished call is its own transaction, durable once this returns.
            try:
                self._conn.execute(
                    "INSERT OR IGNORE INTO entries (ns, key, value, created) VALUES (?, ?, ?, ?)",
                    (namespace, key, blob, time.time()),
                )
            except sqlite3.Error as exc:
                raise self._broken(exc) from exc
            self.writes += 1

    def count(self, namespace: str | None = None) -> int:
        """How many entries are stored (in ``namespace``, or in all)."""
        if self._conn is None:
            return 0
        with self._lock:
            if namespace is None:
                row = self._conn.execute("SELECT COUNT(*) FROM entries").fetchone()
            else:
                row = self._conn.execute(
                    "SELECT COUNT(*) FROM entries WHERE ns = ?", (namespace,)
                ).fetchone()
        return int(row[0])

    def stats(self) -> dict[str, Any]:
        """Mode, path and this run's hit/miss/write counters (for the run summary)."""
        with self._lock:
            return {
                "mode": self.mode,
                "path": str(self.path) if self.path else None,
                "hits": self.hits,
                "misses": self.misses,
                "writes": self.writes,
            }

    def close(self) -> None:
        """Close the connection. Safe to call twice."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> Cache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Cache {self.mode} {self.path}>"


class CachedModel:
    """A Model that answers from the cache and asks the wrapped model only for the misses.

    Each result is stored as soon as it exists: a model whose ``generate``
    takes ``on_result`` (the API backends) reports every finished request from
    its worker threads; any other model is called in chunks of ``chunk_size``
    requests, each stored before the next starts. Identical requests within a
    batch are generated once. Errors are returned, never stored.
    """

    def __init__(
        self, model: Model, cache: Cache, *, namespace: str = "generate", chunk_size: int = 64
    ) -> None:
        self.model = model
        self.cache = cache
        self.namespace = namespace
        self.chunk_size = chunk_size
        self.name = model.name
        self.hits = 0
        self.misses = 0
        self._progressive = "on_result" in inspect.signature(model.generate).parameters

    def fingerprint(self) -> str:
        return self.model.fingerprint()

    def describe(self) -> dict[str, Any]:
        return self.model.describe()

    def key_payload(
        self, request: GenerationRequest, fingerprint: str | None = None
    ) -> dict[str, Any]:
        """What a generation's cache key covers: the model's fingerprint and the request."""
        return {"model": fingerprint or self.model.fingerprint(), "request": request.key_payload()}

    def generate(self, requests: Sequence[GenerationRequest],
                 progress: Callable[[int], None] | None = None) -> list[GenerationOutcome]:
        """Cached outputs; ``progress(n)`` is called as results arrive (hits first, then each miss)."""
        fingerprint = self.model.fingerprint()
        keys = [cache_key(self.key_payload(r, fingerprint)) for r in requests]
        cached = self.cache._get_keys(self.namespace, keys)
        results: list[GenerationOutcome | None] = [
            v if isinstance(v, str) else None for v in cached
        ]
        groups: dict[str, list[int]] = {}
        for i, value in enumerate(results):
            if value is None:
                groups.setdefault(keys[i], []).append(i)
        self.hits += len(requests) - sum(len(g) for g in groups.values())
        if progress is not None:
            progress(len(requests) - sum(len(g) for g in groups.values()))
        self.misses += sum(len(g) for g in groups.values())
        if groups and self.cache.strict:
            for idxs in groups.values():
                for i in idxs:
                    results[i] = CacheError(
                        f"{self.name}: no cached output for this request and the cache is "
                        f"read-only and strict ({self.cache.path}); run once with a writable "
                        f"cache to fill it"
                    )
            groups = {}
        if groups:
            self._fill(requests, keys, list(groups.values()), results, progress)
        return [r if r is not None else ModelError(f"{self.name}: no output") for r in results]

    def _fill(
        self,
        requests: Sequence[GenerationRequest],
        keys: list[str],
        groups: list[list[int]],
        results: list[GenerationOutcome | None],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Generate one request per group of identical misses, storing each as it finishes."""
        todo = [requests[g[0]] for g in groups]
        done: set[int] = set()
        lock = threading.Lock()

        def store(j: int, outcome: GenerationOutcome) -> None:
            with lock:
                if j in done:
                    return
                done.add(j)
            if not isinstance(outcome, BaseException):
                self.cache._put_key(self.namespace, keys[groups[j][0]], outcome)
            for i in groups[j]:
                results[i] = outcome
            if progress is not None:
                progress(len(groups[j]))

        if self._progressive:
            outs = self.model.generate(todo, on_result=store)  # type: ignore[call-arg]
            self._check_len(outs, todo)
            for j, out in enumerate(outs):
                store(j, out)
            return
        for start in range(0, len(todo), self.chunk_size):
            chunk = todo[start : start + self.chunk_size]
            outs = self.model.generate(chunk)
            self._check_len(outs, chunk)
            for j, out in enumerate(outs):
                store(start + j, out)

    def _check_len(
        self, outs: Sequence[GenerationOutcome], asked: Sequence[GenerationRequest]
    ) -> None:
        if len(outs) != len(asked):
            raise ModelError(
                f"{self.name}: generate() returned {len(outs)} outputs for "
                f"{len(asked)} requests; it must return one per request, in order"
            )

    def usage(self) -> dict[str, Any]:
        """The wrapped model's usage (when it has any) plus this wrapper's cache hits and misses."""
        inner = getattr(self.model, "usage", None)
        base = dict(inner()) if callable(inner) else {}
        return {**base, "cache_hits": self.hits, "cache_misses": self.misses}

    def close(self) -> None:
        close = getattr(self.model, "close", None)
        if callable(close):
            close()

    def __getattr__(self, name: str) -> Any:
        # Scoring helpers of the wrapped model (loglikelihood, next_token_probs, ...) pass through.
        if name.startswith("_") or name == "model":
            raise AttributeError(name)
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"<CachedModel {self.model!r} {self.cache!r}>"


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
