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

Housekeeping (``llmeval cache stats|prune|clear|export|import``, and ``cache_max_size``
pruned at the end of a run): every entry records when it was last used (to the hour: a hit
refreshes it at most once an hour, so reads stay reads), and its size; pruning removes the
least recently used entries first, in one write transaction, so processes writing at the same
time wait for it (SQLite's lock) and lose nothing they write after it. An export is a
``.tar.gz`` of ``manifest.json`` (format, version, entry count, SHA-256 and size of the data)
and ``entries.jsonl``; an import checks the whole archive against its manifest before it
writes anything, and never replaces an entry that is as new as the archived one or newer.

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
import io
import json
import math
import os
import re
import sqlite3
import tarfile
import tempfile
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pytest_llmeval.errors import CacheError, ConfigError, LLMEvalWarning, ModelError
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

TOUCH_RESOLUTION_S = 3600.0
"""A hit refreshes an entry's last use only when it is older than this: LRU to the hour."""
ARCHIVE_FORMAT = "pytest-llmevals-cache"
ARCHIVE_VERSION = 1
_IMPORT_BATCH = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    ns      TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    created REAL NOT NULL,
    used    REAL,
    size    INTEGER,
    PRIMARY KEY (ns, key)
) WITHOUT ROWID
"""
_ENTRY_SIZE = "length(CAST(value AS BLOB)) + length(key) + length(ns)"
"""An entry's size in bytes (its value's UTF-8, key and namespace), computed where ``size`` is NULL."""


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
                _add_columns(conn)
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
                if found and self.writable:
                    self._touch(namespace, list(found))
        return [found.get(k) for k in keys]

    def _touch(self, namespace: str, keys: list[str]) -> None:
        """Record a use (best effort, at most once per :data:`TOUCH_RESOLUTION_S`): what LRU pruning keeps."""
        assert self._conn is not None
        now = time.time()
        try:
            for chunk in _chunks(keys, 500):
                marks = ",".join("?" * len(chunk))
                self._conn.execute(
                    f"UPDATE entries SET used = ? WHERE ns = ? AND key IN ({marks}) "
                    f"AND (used IS NULL OR used < ?)",
                    [now, namespace, *chunk, now - TOUCH_RESOLUTION_S])
        except sqlite3.Error:
            pass  # a refused write loses a timestamp, never an answer

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
                now = time.time()
                self._conn.execute(
                    "INSERT OR IGNORE INTO entries (ns, key, value, created, used, size) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (namespace, key, blob, now, now, _size(namespace, key, blob)),
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

    # -- housekeeping ---------------------------------------------------------------

    def _admin(self) -> sqlite3.Connection:
        if self._conn is None:
            raise CacheError(f"no cache at {self.path}" if self.mode != "off" else "the cache is off")
        return self._conn

    def _need_writable(self, what: str) -> sqlite3.Connection:
        conn = self._admin()
        if not self.writable:
            raise CacheError(f"cannot {what} the cache {self.path}: it is open read-only")
        return conn

    def stats(self) -> CacheStats:
        """Entries, their bytes per namespace, the file's size on disk, and the age of the entries."""
        conn = self._admin()
        with self._lock:
            rows = conn.execute(
                f"SELECT ns, count(*), sum(coalesce(size, {_ENTRY_SIZE})), min(created), max(created), "
                f"min(coalesce(used, created)) FROM entries GROUP BY ns ORDER BY ns").fetchall()
        assert self.path is not None
        disk = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
                   if p.exists())
        out = CacheStats(path=str(self.path), disk_bytes=disk)
        for ns, count, size, oldest, newest, lru in rows:
            out.namespaces[ns] = {"entries": int(count), "bytes": int(size or 0)}
            out.entries += int(count)
            out.bytes += int(size or 0)
            out.oldest = oldest if out.oldest is None else min(out.oldest, oldest)
            out.newest = newest if out.newest is None else max(out.newest, newest)
            out.least_recently_used = lru if out.least_recently_used is None else min(
                out.least_recently_used, lru)
        return out

    def prune(self, *, max_bytes: int | None = None, older_than_s: float | None = None,
              vacuum: bool = True, now: float | None = None) -> PruneResult:
        """Remove entries unused for ``older_than_s`` seconds, then the least recently used ones until
        the entries take at most ``max_bytes``; one write transaction (other writers wait for it).

        Args:
            max_bytes: the size the entries may keep (see :meth:`stats`), or None.
            older_than_s: remove entries last used longer ago than this, or None.
            vacuum: give the freed pages back to the file system afterwards (rewrites the file;
                without it SQLite reuses them for new entries).
            now: the current time (for tests).
        """
        conn = self._need_writable("prune")
        now = time.time() if now is None else now
        doomed: list[tuple[str, str, int]] = []
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(f"UPDATE entries SET size = {_ENTRY_SIZE} WHERE size IS NULL")
                if older_than_s is not None:
                    doomed += conn.execute(
                        "SELECT ns, key, size FROM entries WHERE coalesce(used, created) < ?",
                        (now - older_than_s,)).fetchall()
                if max_bytes is not None:
                    cutoff = now - older_than_s if older_than_s is not None else -math.inf
                    doomed += conn.execute(
                        "SELECT ns, key, size FROM (SELECT ns, key, size, sum(size) OVER (ORDER BY "
                        "coalesce(used, created) DESC, created DESC, ns, key ROWS UNBOUNDED PRECEDING) AS "
                        "running FROM entries WHERE coalesce(used, created) >= ?) WHERE running > ?",
                        (cutoff, max_bytes)).fetchall()
                conn.executemany("DELETE FROM entries WHERE ns = ? AND key = ?",
                                 [(ns, key) for ns, key, _ in doomed])
                kept, kept_bytes = conn.execute(
                    "SELECT count(*), coalesce(sum(size), 0) FROM entries").fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if doomed and vacuum:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                conn.execute("VACUUM")
        return PruneResult(removed=len(doomed), removed_bytes=sum(s for *_, s in doomed),
                           kept=int(kept), kept_bytes=int(kept_bytes))

    def clear(self) -> int:
        """Remove every entry (and give the space back); returns how many there were."""
        conn = self._need_writable("clear")
        with self._lock:
            n = conn.execute("DELETE FROM entries").rowcount
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
        return int(n)

    def export(self, archive: str | Path) -> ArchiveInfo:
        """Write every entry to ``archive`` (``.tar.gz``: ``manifest.json`` and ``entries.jsonl``),
        from one consistent snapshot, atomically (a temporary file renamed into place)."""
        conn = self._admin()
        target = Path(archive)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        count = 0
        size = 0
        namespaces: dict[str, int] = {}
        data_fd, data_tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".jsonl", dir=target.parent)
        tar_tmp: str | None = None
        try:
            with os.fdopen(data_fd, "wb") as fh, self._lock:
                conn.execute("BEGIN")
                try:
                    for ns, key, value, created, used in conn.execute(
                            "SELECT ns, key, value, created, used FROM entries ORDER BY ns, key"):
                        line = (json.dumps({"ns": ns, "key": key, "value": value, "created": created,
                                            "used": used}, ensure_ascii=False) + "\n").encode("utf-8")
                        fh.write(line)
                        digest.update(line)
                        count += 1
                        size += len(line)
                        namespaces[ns] = namespaces.get(ns, 0) + 1
                finally:
                    conn.execute("COMMIT")
            manifest = {"format": ARCHIVE_FORMAT, "version": ARCHIVE_VERSION,
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "source": str(self.path), "entries": count, "namespaces": namespaces,
                        "files": {"entries.jsonl": {"sha256": digest.hexdigest(), "bytes": size}}}
            blob = json.dumps(manifest, indent=2).encode("utf-8")
            fd, tar_tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                    info = tarfile.TarInfo("manifest.json")
                    info.size = len(blob)
                    info.mtime = int(time.time())
                    tar.addfile(info, io.BytesIO(blob))
                    tar.add(data_tmp, arcname="entries.jsonl", recursive=False)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tar_tmp, target)
            tar_tmp = None
        except OSError as exc:
            raise CacheError(f"cannot write the cache archive {target}: {exc.strerror or exc}") from exc
        finally:
            for tmp in (data_tmp, tar_tmp):
                if tmp is not None and os.path.exists(tmp):
                    os.unlink(tmp)
        return ArchiveInfo(path=str(target), entries=count, bytes=size, namespaces=namespaces)

    def import_archive(self, archive: str | Path) -> ImportResult:
        """Add an exported archive's entries.

        The whole archive is checked first (gzip and tar structure, manifest, the data's SHA-256,
        size and entry count, every line's shape); a corrupted one is refused before anything is
        written. An entry already here that is as new as the archived one, or newer, is kept.

        Raises:
            CacheError: the archive is corrupted or not a cache archive (the message says which
                check failed), or the cache cannot be written.
        """
        conn = self._need_writable("import into")
        path = Path(archive)
        manifest = _verify_archive(path)
        result = ImportResult(path=str(path), entries=int(manifest["entries"]))
        digest = hashlib.sha256()
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            with self._lock:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for e in batch:
                        row = conn.execute("SELECT created FROM entries WHERE ns = ? AND key = ?",
                                           (e["ns"], e["key"])).fetchone()
                        if row is not None and row[0] >= e["created"]:
                            result.kept_newer += 1
                            continue
                        conn.execute(
                            "INSERT OR REPLACE INTO entries (ns, key, value, created, used, size) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            (e["ns"], e["key"], e["value"], e["created"], e.get("used") or e["created"],
                             _size(e["ns"], e["key"], e["value"])))
                        if row is None:
                            result.added += 1
                        else:
                            result.replaced += 1
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            batch.clear()

        try:
            with _open_archive(path) as tar:
                for raw, entry in _entries(tar, path):
                    digest.update(raw)
                    batch.append(entry)
                    if len(batch) >= _IMPORT_BATCH:
                        flush()
                if batch:
                    flush()
        except sqlite3.Error as exc:
            raise CacheError(f"cannot import into the cache {self.path}: {exc}") from exc
        if digest.hexdigest() != manifest["files"]["entries.jsonl"]["sha256"]:
            raise CacheError(f"the cache archive {path} changed while it was imported; import it again")
        return result

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


@dataclass
class CacheStats:
    """What ``llmeval cache stats`` shows. ``bytes``: the entries' own size (what ``max_size``
    limits); ``disk_bytes``: the SQLite files on disk (with pages freed but not given back)."""

    path: str
    entries: int = 0
    bytes: int = 0
    disk_bytes: int = 0
    namespaces: dict[str, dict[str, int]] = field(default_factory=dict)
    oldest: float | None = None
    newest: float | None = None
    least_recently_used: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PruneResult:
    removed: int
    removed_bytes: int
    kept: int
    kept_bytes: int


@dataclass
class ArchiveInfo:
    path: str
    entries: int
    bytes: int
    namespaces: dict[str, int]


@dataclass
class ImportResult:
    path: str
    entries: int
    added: int = 0
    replaced: int = 0
    kept_newer: int = 0


def _size(ns: str, key: str, value: str) -> int:
    return len(value.encode("utf-8")) + len(key) + len(ns.encode("utf-8"))


def _add_columns(conn: sqlite3.Connection) -> None:
    """Files written before entries recorded their last use and size get the two columns."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(entries)")}
    for column, kind in (("used", "REAL"), ("size", "INTEGER")):
        if column not in have:
            try:
                conn.execute(f"ALTER TABLE entries ADD COLUMN {column} {kind}")
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another process added it first
                    raise


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(value: Any, where: str = "size") -> int:
    """``"2GB"`` (10^9), ``"1.5GiB"`` (2^30), ``"500MB"``, ``"4096"`` or a number of bytes, as bytes.

    Raises:
        ConfigError: anything else, naming ``where``.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return int(value)
    m = _SIZE.match(str(value)) if isinstance(value, str) else None
    if m is None or m.group(2).lower() not in _UNITS:
        raise ConfigError(f"{where}: expected a size like 2GB, 500MB or 1.5GiB, got {value!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def parse_age(value: Any, where: str = "age") -> float:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"2w"``, ``"45s"`` as seconds.

    Raises:
        ConfigError: anything else, naming ``where``.
    """
    m = _AGE.match(str(value))
    if m is None:
        raise ConfigError(f"{where}: expected an age like 30d, 12h, 90m or 2w, got {value!r}")
    return float(m.group(1)) * _AGE_UNITS[m.group(2).lower()]


def format_size(n: float) -> str:
    """Bytes for people: ``1.5 GB`` (decimal units, as ``parse_size`` reads ``GB``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _corrupt(path: Path, why: str) -> CacheError:
    return CacheError(f"corrupted cache archive {path}: {why}; nothing was imported. Export it again "
                      f"(llmeval cache export FILE) or restore a good copy")


def _open_archive(path: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(path, mode="r:gz")
    except FileNotFoundError:
        raise CacheError(f"cache archive not found: {path}") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _corrupt(path, f"not a readable .tar.gz ({exc})") from None


def _read_manifest(tar: tarfile.TarFile, path: Path) -> dict[str, Any]:
    try:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise KeyError("manifest.json")
        manifest = json.loads(member.read().decode("utf-8"))
    except KeyError:
        raise _corrupt(path, "it has no manifest.json (not an archive of 'llmeval cache export')") from None
    except (ValueError, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _corrupt(path, f"manifest.json cannot be read ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != ARCHIVE_FORMAT:
        raise _corrupt(path, f"manifest.json does not describe a {ARCHIVE_FORMAT} archive")
    if manifest.get("version") != ARCHIVE_VERSION:
        raise CacheError(f"{path}: cache archive version {manifest.get('version')!r}; this version of "
                         f"pytest-llmevals reads version {ARCHIVE_VERSION}")
    files = manifest.get("files")
    data = files.get("entries.jsonl") if isinstance(files, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("sha256"), str) \
            or not isinstance(data.get("bytes"), int) or not isinstance(manifest.get("entries"), int):
        raise _corrupt(path, "manifest.json lacks the checksum, size or entry count of entries.jsonl")
    return manifest


def _entries(tar: tarfile.TarFile, path: Path) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Each line of ``entries.jsonl`` (its bytes, and the entry), shape-checked."""
    try:
        member = tar.extractfile("entries.jsonl")
    except KeyError:
        raise _corrupt(path, "it has no entries.jsonl") from None
    if member is None:
        raise _corrupt(path, "entries.jsonl is not a file")
    stream: IO[bytes] = member
    lineno = 0
    try:
        for raw in stream:
            lineno += 1
            try:
                e = json.loads(raw.decode("utf-8"))
                ok = (isinstance(e, dict) and isinstance(e.get("ns"), str) and isinstance(e.get("key"), str)
                      and isinstance(e.get("value"), str) and isinstance(e.get("created"), (int, float))
                      and isinstance(e.get("used"), (int, float, type(None))))
                if ok:
                    json.loads(e["value"])
            except ValueError:
                ok = False
            if not ok:
                raise _corrupt(path, f"entries.jsonl line {lineno} is not a cache entry")
            yield raw, e
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise _corrupt(path, f"entries.jsonl cannot be read past line {lineno} ({exc})") from None


def _verify_archive(path: Path) -> dict[str, Any]:
    """The manifest of an archive whose data matches it (checksum, size, count); else CacheError."""
    with _open_archive(path) as tar:
        manifest = _read_manifest(tar, path)
        expected = manifest["files"]["entries.jsonl"]
        digest = hashlib.sha256()
        size = count = 0
        for raw, _ in _entries(tar, path):
            digest.update(raw)
            size += len(raw)
            count += 1
    if digest.hexdigest() != expected["sha256"] or size != expected["bytes"]:
        raise _corrupt(path, "entries.jsonl does not match the checksum in its manifest")
    if count != manifest["entries"]:
        raise _corrupt(path, f"entries.jsonl holds {count} entries, its manifest says {manifest['entries']}")
    return manifest


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
