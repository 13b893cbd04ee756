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

A cache never costs a run its outputs. A read-only cache on a read-only mount
opens the file ``immutable`` when SQLite cannot create its ``-shm`` file there;
a writable cache whose folder or disk refuses writes (read-only mount, disk
full, quota) warns once with :class:`~pytest_llmeval.errors.LLMEvalWarning`
and goes on without storing: every generated output is still returned.
"""

from __future__ import annotations

import errno
import hashlib
import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pytest_llmeval.errors import CacheError, LLMEvalWarning, ModelError
from pytest_llmeval.models.base import (
    Generation,
    GenerationInfo,
    GenerationOutcome,
    GenerationRequest,
    Model,
    as_model_base,
)

Mode = Literal["rw", "ro", "off"]

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


class Cache:
    """A namespaced key -> JSON store in one SQLite file (see the module docstring).

    Keys are :func:`cache_key` digests of what the answer depends on. Thread-safe:
    one connection guarded by a lock, so an API backend's worker threads can store
    results as they finish. Process-safe through SQLite's WAL locking (each process
    opens its own ``Cache``).

    Attributes:
        path: the SQLite file (``None`` when ``off``).
        mode: ``rw``, ``ro`` or ``off`` as asked.
        strict: with ``ro``, a miss is an error instead of a model call.
        writable: whether :meth:`put` stores; ``False`` in ``ro``/``off`` mode and once a
            write has failed (disk full, read-only mount), after a warning.
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
        self.writable = mode == "rw"
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        if mode == "rw":
            self._conn = self._open_rw()
        elif mode == "ro" and self.path is not None and self.path.exists():
            self._conn = self._open_ro()

    # -- opening ------------------------------------------------------------------

    def _open_rw(self) -> sqlite3.Connection | None:
        assert self.path is not None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            ignore = self.path.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text(
                    "# created by pytest-llmevals: the cache is not for version control\n*\n"
                )
        except OSError as exc:
            if _is_write_refusal(exc):
                return self._fall_back_to_read_only(exc)
            raise CacheError(
                f"cannot create the cache directory {self.path.parent}: {exc}. "
                f"Choose another with --llmeval-cache DIR, or --llmeval-cache off"
            ) from exc
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            conn: sqlite3.Connection | None = None
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
                if conn is not None:
                    conn.close()
                # Several xdist workers creating the file at once can see "locked"
                # before the busy handler applies; retry until the deadline.
                if "locked" in str(exc) and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                if _is_sqlite_write_refusal(exc):
                    return self._fall_back_to_read_only(exc)
                raise self._broken(exc) from exc
            except sqlite3.DatabaseError as exc:
                if conn is not None:
                    conn.close()
                raise self._broken(exc) from exc

    def _fall_back_to_read_only(self, exc: BaseException) -> sqlite3.Connection | None:
        """A cache that cannot be written is still read: warn, and use it as ``ro``."""
        self.writable = False
        self._warn_unwritable(exc)
        if self.path is not None and self.path.exists():
            return self._open_ro()
        return None

    def _open_ro(self) -> sqlite3.Connection:
        """Open without writing; ``immutable`` when SQLite cannot create its -shm file (read-only mount).

        ``mode=ro`` still needs the WAL index (``-shm``) beside the file: on a
        read-only mount without one, opening fails. Such a file cannot change under
        us, so ``immutable=1`` (no locks, no -shm) is safe there. An existing
        ``-wal`` (a run killed before checkpointing) is read by the first form.
        """
        assert self.path is not None
        first: sqlite3.Error | None = None
        for query in ("mode=ro", "mode=ro&immutable=1"):
            conn: sqlite3.Connection | None = None
            try:
                conn = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?{query}",
                    uri=True,
                    timeout=BUSY_TIMEOUT_S,
                    isolation_level=None,
                    check_same_thread=False,
                )
                conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
                self._check_version(conn, write=False)
                return conn
            except sqlite3.OperationalError as exc:
                if conn is not None:
                    conn.close()
                if first is None and "unable to open" in str(exc):
                    first = exc
                    continue
                raise self._broken(exc) from exc
            except sqlite3.DatabaseError as exc:
                if conn is not None:
                    conn.close()
                raise self._broken(exc) from exc
        raise self._broken(first or sqlite3.OperationalError("unable to open database file"))

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

    def _warn_unwritable(self, exc: BaseException) -> None:
        warnings.warn(
            f"the cache {self.path} cannot be written ({exc}): this run goes on without storing "
            f"new outputs (every output is still used). Free disk space, or use "
            f"--llmeval-cache DIR elsewhere, --llmeval-cache-readonly, or --llmeval-cache off",
            LLMEvalWarning,
            stacklevel=3,
        )

    # -- the store ------------------------------------------------------------------

    def get_many(self, namespace: str, keys: Sequence[str]) -> list[Any | None]:
        """The values stored under ``keys`` (:func:`cache_key` digests), ``None`` for each miss."""
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
        return [found.get(k) for k in keys]

    def put(self, namespace: str, key: str, value: Any) -> bool:
        """Store ``value`` (JSON, not ``None``) under ``key``, committed at once.

        Returns whether it was stored: ``False`` unless the cache is writable. A write
        the disk refuses (full, read-only, I/O error) warns once and turns writing off,
        so the caller keeps its value and the run goes on.
        """
        if value is None:
            raise CacheError("cannot cache None (it reads back as a miss)")
        if not self.writable or self._conn is None:
            return False
        blob = json.dumps(value, ensure_ascii=False)
        with self._lock:
            if not self.writable:
                return False
            # Autocommit: each finished call is its own transaction, durable once this returns.
            try:
                self._conn.execute(
                    "INSERT OR IGNORE INTO entries (ns, key, value, created) VALUES (?, ?, ?, ?)",
                    (namespace, key, blob, time.time()),
                )
            except sqlite3.Error as exc:
                self.writable = False
                failure: sqlite3.Error | None = exc
            else:
                failure = None
        if failure is not None:
            self._warn_unwritable(failure)
            return False
        return True

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


def _is_write_refusal(exc: OSError) -> bool:
    return exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT)


def _is_sqlite_write_refusal(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("readonly", "read-only", "disk is full", "disk i/o error",
                                   "unable to open database file"))


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
        return [g.outcome for g in self.generate_with_info(requests, progress=progress)]

    def generate_with_info(self, requests: Sequence[GenerationRequest],
                           progress: Callable[[int], None] | None = None,
                           on_result: Any = None) -> list[Generation]:
        """Cached outputs with their request records: a hit is marked ``cached`` and keeps the
        original request's tokens and cost (its latency is not this run's); a miss is measured
        by the wrapped model and stored with its record."""
        fingerprint = self.model.fingerprint()
        keys = [cache_key(self.key_payload(r, fingerprint)) for r in requests]
        results: list[Generation | None] = [_from_row(v) for v in self.cache.get_many(self.namespace, keys)]
        groups: dict[str, list[int]] = {}
        for i, value in enumerate(results):
            if value is None:
                groups.setdefault(keys[i], []).append(i)
        n_missing = sum(len(g) for g in groups.values())
        self.hits += len(requests) - n_missing
        self.misses += n_missing
        if progress is not None:
            progress(len(requests) - n_missing)
        if groups and self.cache.strict:
            for idxs in groups.values():
                for i in idxs:
                    results[i] = Generation(CacheError(
                        f"{self.name}: no cached output for this request and the cache is "
                        f"read-only and strict ({self.cache.path}); run once with a writable "
                        f"cache to fill it"), GenerationInfo())
            groups = {}
        if groups:
            self._fill(requests, keys, list(groups.values()), results, progress)
        out = [r if r is not None else Generation(ModelError(f"{self.name}: no output"), GenerationInfo())
               for r in results]
        if on_result is not None:
            for i, g in enumerate(out):
                on_result(i, g)
        return out

    def _fill(
        self,
        requests: Sequence[GenerationRequest],
        keys: list[str],
        groups: list[list[int]],
        results: list[Generation | None],
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Generate one request per group of identical misses, storing each as it finishes."""
        todo = [requests[g[0]] for g in groups]
        done: set[int] = set()
        lock = threading.Lock()
        model = as_model_base(self.model)

        def store(j: int, generation: Generation) -> None:
            with lock:
                if j in done:
                    return
                done.add(j)
            if not isinstance(generation.outcome, BaseException):
                self.cache.put(self.namespace, keys[groups[j][0]],
                               {"text": generation.outcome, "info": generation.info.to_dict()})
            for k, i in enumerate(groups[j]):
                # identical requests generated once: the copies are answers this run did not pay for
                results[i] = generation if k == 0 else Generation(generation.outcome,
                                                                  generation.info.as_cached())
            if progress is not None:
                progress(len(groups[j]))

        if model.capabilities.streams_results:
            outs = model.generate_with_info(todo, on_result=store)
            self._check_len([g.outcome for g in outs], todo)
            for j, out in enumerate(outs):
                store(j, out)
            return
        for start in range(0, len(todo), self.chunk_size):
            chunk = todo[start : start + self.chunk_size]
            outs = model.generate_with_info(chunk)
            self._check_len([g.outcome for g in outs], chunk)
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


def _from_row(value: Any) -> Generation | None:
    """A cache row as a replayed generation: a plain text (rows written before request records
    were kept) or ``{"text": ..., "info": {...}}``; anything else is a miss."""
    if isinstance(value, str):
        return Generation(value, GenerationInfo(cached=True))
    if isinstance(value, dict) and isinstance(value.get("text"), str):
        try:
            info = GenerationInfo.from_dict(value.get("info") or {}, where="cache row")
        except ValueError:
            info = GenerationInfo()
        return Generation(value["text"], info.as_cached())
    return None


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
