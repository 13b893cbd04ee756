"""Ratings: one row per (rater, item) in SQLite, committed on every submit, exported to CSV/JSONL.

The database runs in WAL mode with ``synchronous=FULL``: a rating is on disk before the
rater sees the next item, so killing the server (even with SIGKILL) loses nothing that
was acknowledged. A rater who goes back and changes a rating updates their row (the
``revisions`` counter says how often); the first submission time is kept.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.human.blindset import PREFERENCES, BlindSet

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ratings (
    rater TEXT NOT NULL,
    item_id TEXT NOT NULL,
    scores TEXT NOT NULL,
    preference TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    revisions INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (rater, item_id)
);
"""


@dataclass(frozen=True)
class Rating:
    """One rater's rating of one item.

    Attributes:
        scores: ``{"A": {criterion: score}, "B": {criterion: score}}``.
        preference: ``"A"``, ``"B"`` or ``"tie"`` (blind labels; the mapping unblinds them).
    """

    rater: str
    item_id: str
    scores: dict[str, dict[str, int]]
    preference: str
    comment: str = ""
    created_at: str = ""
    updated_at: str = ""
    revisions: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"rater": self.rater, "item_id": self.item_id, "scores": self.scores,
                "preference": self.preference, "comment": self.comment, "created_at": self.created_at,
                "updated_at": self.updated_at, "revisions": self.revisions}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class RatingStore:
    """The ratings database of one blind set (a connection per operation: safe across threads)."""

    def __init__(self, path: str | Path, set_id: str) -> None:
        self.path = Path(path)
        self.set_id = set_id
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            # WAL is a property of the file: set once, it stays for every later connection.
            con.execute("PRAGMA journal_mode=WAL")
            con.executescript(_SCHEMA)
        finally:
            con.close()
        with self._connect() as con:
            row = con.execute("SELECT value FROM meta WHERE key = 'set_id'").fetchone()
            if row is None:
                con.execute("INSERT INTO meta VALUES ('set_id', ?)", (set_id,))
            elif row[0] != set_id:
                raise ConfigError(f"{self.path} holds ratings of blind set {row[0]}, not {set_id}: "
                                  "give this blind set its own --db")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA synchronous=FULL")
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        finally:
            con.close()

    def save(self, rating: Rating) -> Rating:
        """Insert or update a rating; committed (and synced) before this returns."""
        now = _now()
        with self._connect() as con:
            con.execute(
                "INSERT INTO ratings (rater, item_id, scores, preference, comment, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rater, item_id) DO UPDATE SET"
                " scores = excluded.scores, preference = excluded.preference, comment = excluded.comment,"
                " updated_at = excluded.updated_at, revisions = ratings.revisions + 1",
                (rating.rater, rating.item_id, json.dumps(rating.scores, sort_keys=True),
                 rating.preference, rating.comment, now, now))
        got = self.get(rating.rater, rating.item_id)
        assert got is not None
        return got

    def get(self, rater: str, item_id: str) -> Rating | None:
        with self._connect() as con:
            row = con.execute("SELECT * FROM ratings WHERE rater = ? AND item_id = ?",
                              (rater, item_id)).fetchone()
        return _row(row) if row else None

    def for_rater(self, rater: str) -> dict[str, Rating]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM ratings WHERE rater = ?", (rater,)).fetchall()
        return {r[1]: _row(r) for r in rows}

    def all(self) -> list[Rating]:
        with self._connect() as con:
            rows = con.execute("SELECT * FROM ratings ORDER BY item_id, rater").fetchall()
        return [_row(r) for r in rows]


def _row(r: Sequence[Any]) -> Rating:
    return Rating(r[0], r[1], json.loads(r[2]), r[3], r[4], r[5], r[6], r[7])


# --------------------------------------------------------------------------- export / import


def csv_columns(blind: BlindSet) -> list[str]:
    cols = ["rater", "item_id"]
    for side in ("A", "B"):
        cols += [f"{side}.{c.name}" for c in blind.rubric.criteria]
    return cols + ["preference", "comment", "created_at", "updated_at", "revisions"]


def export_ratings(ratings: Sequence[Rating], path: str | Path, blind: BlindSet,
                   fmt: str | None = None) -> Path:
    """Write ratings as CSV (one column per side and criterion) or JSONL (one rating per line)."""
    p = Path(path)
    fmt = fmt or p.suffix.lstrip(".").lower()
    if fmt not in ("csv", "jsonl"):
        raise ConfigError(f"export format must be csv or jsonl, got {fmt!r} (from {p.name})")
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        if fmt == "jsonl":
            for r in ratings:
                fh.write(json.dumps(r.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
        else:
            writer = csv.DictWriter(fh, fieldnames=csv_columns(blind))
            writer.writeheader()
            for r in ratings:
                row: dict[str, Any] = {"rater": r.rater, "item_id": r.item_id, "preference": r.preference,
                                       "comment": r.comment, "created_at": r.created_at,
                                       "updated_at": r.updated_at, "revisions": r.revisions}
                for side in ("A", "B"):
                    for c in blind.rubric.criteria:
                        row[f"{side}.{c.name}"] = r.scores.get(side, {}).get(c.name, "")
                writer.writerow(row)
    tmp.replace(p)
    return p


def load_ratings(path: str | Path, blind: BlindSet) -> list[Rating]:
    """Ratings from a ``ratings.db``, or a CSV/JSONL export; each one checked against the blind set.

    Raises:
        ConfigError: naming the file, line and field of the first bad rating.
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"ratings not found: {p}")
    suffix = p.suffix.lower()
    raw: list[tuple[int, Rating]] = []
    if suffix in (".db", ".sqlite", ".sqlite3"):
        raw = list(enumerate(RatingStore(p, blind.set_id).all(), 1))
    elif suffix == ".jsonl":
        for lineno, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                raw.append((lineno, Rating(str(d["rater"]), str(d["item_id"]), dict(d["scores"]),
                                           str(d["preference"]), str(d.get("comment") or ""),
                                           str(d.get("created_at") or ""), str(d.get("updated_at") or ""),
                                           int(d.get("revisions") or 1))))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise ConfigError(f"{p}:{lineno}: not a rating ({type(exc).__name__}: {exc})") from None
    elif suffix == ".csv":
        with open(p, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in csv_columns(blind)[:-3] if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(f"{p}: missing column(s) {missing}; export it with 'llmeval annotate "
                                  "export' from this blind set")
            for lineno, row in enumerate(reader, 2):
                try:
                    scores = {side: {c.name: int(row[f"{side}.{c.name}"]) for c in blind.rubric.criteria}
                              for side in ("A", "B")}
                except ValueError as exc:
                    raise ConfigError(f"{p}:{lineno}: a score is not an integer ({exc})") from None
                raw.append((lineno, Rating(row["rater"], row["item_id"], scores, row["preference"],
                                           row.get("comment") or "", row.get("created_at") or "",
                                           row.get("updated_at") or "", int(row.get("revisions") or 1))))
    else:
        raise ConfigError(f"{p}: ratings must be a .db (the rating app's database) or a .csv/.jsonl "
                          "export")
    out: list[Rating] = []
    seen: set[tuple[str, str]] = set()
    for lineno, r in raw:
        problem = check_rating(r, blind)
        if problem:
            raise ConfigError(f"{p}:{lineno}: {problem}")
        if (r.rater, r.item_id) in seen:
            raise ConfigError(f"{p}:{lineno}: rater {r.rater!r} rated item {r.item_id!r} twice")
        seen.add((r.rater, r.item_id))
        out.append(r)
    return out


def check_rating(r: Rating, blind: BlindSet) -> str | None:
    """Why a rating does not fit the blind set (unknown item or rater, score off the scale), or None."""
    if r.item_id not in blind.by_id:
        return f"item {r.item_id!r} is not in blind set {blind.set_id}"
    if r.rater not in blind.queues:
        return f"rater {r.rater!r} is not a rater of blind set {blind.set_id}"
    if r.item_id not in blind.queues[r.rater]:
        return f"item {r.item_id!r} was not assigned to rater {r.rater!r}"
    if r.preference not in PREFERENCES:
        return f"preference must be one of {', '.join(PREFERENCES)}, got {r.preference!r}"
    for side in ("A", "B"):
        got = r.scores.get(side)
        if not isinstance(got, dict):
            return f"no scores for output {side}"
        for c in blind.rubric.criteria:
            v = got.get(c.name)
            if isinstance(v, bool) or not isinstance(v, int) or not c.low <= v <= c.high:
                return f"{side}.{c.name} must be an integer from {c.low} to {c.high}, got {v!r}"
        extra = set(got) - {c.name for c in blind.rubric.criteria}
        if extra:
            return f"{side} has scores for unknown criteria {sorted(extra)}"
    return None
