"""Cache housekeeping: stats, LRU prune, clear, verified export/import, and pruning beside live writers."""

from __future__ import annotations

import gzip
import io
import json
import multiprocessing
import sqlite3
import tarfile
import time
from pathlib import Path

import pytest

from pytest_llmeval.cache import Cache, cache_key, parse_age, parse_size
from pytest_llmeval.cli import main as llmeval
from pytest_llmeval.errors import CacheError, ConfigError
from scale.shard_helpers import SCALE_MODEL

DAY = 86400.0


def _fill(cache: Cache, ns: str, n: int, *, prefix: str = "k", size: int = 100) -> list[str]:
    keys = []
    for i in range(n):
        key = cache_key([prefix, i])
        assert cache.put(ns, key, {"text": "x" * size, "i": i})
        keys.append(key)
    return keys


def _age(path: Path, keys: list[str], seconds_ago: float) -> None:
    """Pretend the entries were made and last used ``seconds_ago``."""
    with sqlite3.connect(path) as conn:
        t = time.time() - seconds_ago
        conn.executemany("UPDATE entries SET used = ?, created = ? WHERE key = ?", [(t, t, k) for k in keys])


def _keys(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {k for (k,) in conn.execute("SELECT key FROM entries")}


def test_parse_size_and_age() -> None:
    assert parse_size("2GB") == 2_000_000_000
    assert parse_size("1.5GiB") == int(1.5 * 2**30)
    assert parse_size(" 500 mb ") == 500_000_000
    assert parse_size("4096") == parse_size(4096) == 4096
    assert parse_age("30d") == 30 * DAY and parse_age("12h") == 12 * 3600 and parse_age("2w") == 14 * DAY
    for bad in ("2XB", "-1GB", "lots", True):
        with pytest.raises(ConfigError, match="expected a size like 2GB"):
            parse_size(bad, "--max-size")
    with pytest.raises(ConfigError, match="--older-than: expected an age like 30d"):
        parse_age("30 days", "--older-than")


def test_stats_count_entries_and_bytes_per_namespace(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.sqlite3") as cache:
        _fill(cache, "generate", 5, size=100)
        _fill(cache, "judge", 2, size=10)
        st = cache.stats()
    assert st.entries == 7 and set(st.namespaces) == {"generate", "judge"}
    assert st.namespaces["generate"]["entries"] == 5
    one = len(json.dumps({"text": "x" * 100, "i": 0})) + 64 + len("generate")
    assert st.namespaces["generate"]["bytes"] == 5 * one
    assert st.bytes == sum(row["bytes"] for row in st.namespaces.values())
    assert st.disk_bytes > 0 and st.oldest <= st.newest


def test_prune_older_than_keeps_what_was_used_recently(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    with Cache(path) as cache:
        old = _fill(cache, "generate", 10, prefix="old")
        _age(path, old, 40 * DAY)
        assert cache.get_many("generate", old[:2])[0] is not None  # a hit refreshes its last use
        res = cache.prune(older_than_s=30 * DAY)
    assert res.removed == 8 and res.kept == 2
    assert _keys(path) == set(old[:2])


def test_prune_max_size_removes_least_recently_used_first(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    with Cache(path) as cache:
        keys = _fill(cache, "generate", 10, size=1000)
        for age, key in enumerate(reversed(keys)):  # keys[-1] used most recently
            _age(path, [key], (age + 1) * 3600.0)
        one = cache.stats().bytes // 10
        res = cache.prune(max_bytes=3 * one + one // 2)
    assert res.removed == 7 and res.kept == 3 and res.kept_bytes <= 3 * one + one // 2
    assert _keys(path) == set(keys[-3:])


def test_a_cache_written_before_the_columns_existed_is_pruned(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    with sqlite3.connect(path) as conn:  # the schema of earlier versions
        conn.execute("CREATE TABLE entries (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
                     "created REAL NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID")
        conn.execute("PRAGMA user_version=1")
        conn.executemany("INSERT INTO entries VALUES ('generate', ?, ?, ?)",
                         [(f"{i:064x}", json.dumps("out"), time.time() - (40 if i < 3 else 1) * DAY)
                          for i in range(5)])
    with Cache(path) as cache:
        assert cache.get_many("generate", [f"{4:064x}"]) == ["out"]
        assert cache.prune(older_than_s=30 * DAY).removed == 3
        assert cache.stats().entries == 2


def test_export_import_round_trip_never_replaces_newer_entries(tmp_path: Path) -> None:
    src, dst = tmp_path / "a.sqlite3", tmp_path / "b.sqlite3"
    with Cache(src) as cache:
        keys = _fill(cache, "generate", 6)
        _fill(cache, "judge", 2)
        _age(src, keys[:3], 10 * DAY)
        info = cache.export(tmp_path / "out" / "cache.tar.gz")
    assert info.entries == 8
    with Cache(dst) as cache:
        cache.put("generate", keys[0], "newer here")  # made after the archived one: kept
        cache.put("generate", keys[5], "older here")
        _age(dst, [keys[5]], 20 * DAY)  # older than the archived one: replaced
        res = cache.import_archive(tmp_path / "out" / "cache.tar.gz")
        assert (res.added, res.replaced, res.kept_newer) == (6, 1, 1)
        got = cache.get_many("generate", keys)
    assert got[0] == "newer here"
    assert got[5] == {"text": "x" * 100, "i": 5}
    assert got[1:5] == [{"text": "x" * 100, "i": i} for i in range(1, 5)]
    with Cache(dst) as cache:  # importing twice changes nothing
        again = cache.import_archive(tmp_path / "out" / "cache.tar.gz")
    assert (again.added, again.replaced, again.kept_newer) == (0, 0, 8)


def _archive(tmp_path: Path) -> Path:
    with Cache(tmp_path / "src.sqlite3") as cache:
        _fill(cache, "generate", 20)
        cache.export(tmp_path / "good.tar.gz")
    return tmp_path / "good.tar.gz"


def _retar(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


@pytest.mark.parametrize("damage, message", [
    ("flip", "corrupted cache archive"),
    ("truncate", "corrupted cache archive"),
    ("edit", "entries.jsonl does not match the checksum in its manifest"),
    ("drop_line", "does not match the checksum in its manifest"),
    ("no_manifest", "it has no manifest.json"),
    ("not_tar", "not a readable .tar.gz"),
    ("bad_line", "entries.jsonl line 2 is not a cache entry"),
])
def test_a_corrupted_archive_is_refused_and_nothing_is_imported(tmp_path: Path, damage: str,
                                                                message: str) -> None:
    good = _archive(tmp_path)
    bad = tmp_path / "bad.tar.gz"
    members = _members(good)
    lines = members["entries.jsonl"].splitlines(keepends=True)
    if damage == "flip":
        blob = bytearray(good.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        bad.write_bytes(bytes(blob))
    elif damage == "truncate":
        bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    elif damage == "edit":
        _retar(bad, {**members, "entries.jsonl": members["entries.jsonl"].replace(b"xxxxx", b"xxxxy", 1)})
    elif damage == "drop_line":
        _retar(bad, {**members, "entries.jsonl": b"".join(lines[1:])})
    elif damage == "no_manifest":
        _retar(bad, {"entries.jsonl": members["entries.jsonl"]})
    elif damage == "not_tar":
        bad.write_bytes(gzip.compress(b"just some text"))
    elif damage == "bad_line":
        _retar(bad, {**members, "entries.jsonl": lines[0] + b'{"ns": 1}\n' + b"".join(lines[2:])})
    path = tmp_path / "dst.sqlite3"
    with Cache(path) as cache:
        _fill(cache, "generate", 1, prefix="mine")
        with pytest.raises(CacheError, match=message) as err:
            cache.import_archive(bad)
        assert "nothing was imported" in str(err.value) or damage == "not_tar"
        assert cache.stats().entries == 1


def test_cache_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cdir = tmp_path / ".llmeval_cache"
    with Cache(cdir / "cache.sqlite3") as cache:
        old = _fill(cache, "generate", 4, prefix="old")
        _fill(cache, "generate", 3, prefix="new")
    _age(cdir / "cache.sqlite3", old, 45 * DAY)
    c = ["--cache", str(cdir)]
    assert llmeval(["cache", "stats", *c]) == 0
    assert "7 entries" in capsys.readouterr().out
    assert llmeval(["cache", "prune", *c, "--older-than", "30d", "--max-size", "2GB"]) == 0
    assert "removed 4 entries" in capsys.readouterr().out
    assert llmeval(["cache", "export", *c, str(tmp_path / "x.tar.gz")]) == 0
    assert llmeval(["cache", "clear", *c]) == 0
    assert "removed 3 entries" in capsys.readouterr().out
    assert llmeval(["cache", "import", *c, str(tmp_path / "x.tar.gz")]) == 0
    assert "3 added" in capsys.readouterr().out
    assert llmeval(["cache", "stats", *c, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["entries"] == 3
    assert llmeval(["cache", "prune", *c, "--max-size", "2XB"]) == 2
    assert "--max-size: expected a size like 2GB" in capsys.readouterr().err
    (tmp_path / "junk.tar.gz").write_bytes(b"junk")
    assert llmeval(["cache", "import", *c, str(tmp_path / "junk.tar.gz")]) == 2
    assert "corrupted cache archive" in capsys.readouterr().err
    assert llmeval(["cache", "stats", "--cache", str(tmp_path / "none")]) == 2
    assert "no cache at" in capsys.readouterr().err


def _writer(path: str, tag: str, n: int, started: str) -> None:
    import warnings as _w

    _w.simplefilter("error")  # a refused write would warn: make it fail this process instead
    with Cache(path) as cache:
        Path(started).touch()
        for i in range(n):
            key = cache_key([tag, i])
            if not cache.put("generate", key, {"text": "y" * 200, "i": i}):
                raise SystemExit(f"{tag}: write {i} refused")
            cache.get_many("generate", [key])
            time.sleep(0.002)


@pytest.mark.slow
def test_two_processes_write_while_a_prune_runs(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    with Cache(path) as cache:
        old = _fill(cache, "generate", 1500, prefix="old", size=300)
    _age(path, old, 60 * DAY)
    ctx = multiprocessing.get_context("spawn")
    flags = [tmp_path / "w1", tmp_path / "w2"]
    writers = [ctx.Process(target=_writer, args=(str(path), f"w{i}", 300, str(flags[i]))) for i in range(2)]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 60
    while not all(f.exists() for f in flags) and time.monotonic() < deadline:
        time.sleep(0.01)
    prunes = []
    with Cache(path) as cache:
        while any(w.is_alive() for w in writers):  # prune again and again while both write
            prunes.append(cache.prune(older_than_s=30 * DAY, max_bytes=10**9))
            time.sleep(0.05)  # SQLite's lock is not fair: a pruner that never pauses starves the writers
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    assert sum(p.removed for p in prunes) == 1500 and len(prunes) >= 2
    keys = _keys(path)
    assert keys == {cache_key([f"w{i}", j]) for i in range(2) for j in range(300)}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_cache_max_size_prunes_at_the_end_of_a_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(scalemodel=SCALE_MODEL)
    pytester.syspathinsert()
    pytester.makefile(".toml", pyproject='''
[tool.llmeval]
cache_max_size = "3kB"

[tool.llmeval.models]
m = {ref = "python:scalemodel:model", cache = true}
''')
    cases = "\n".join(json.dumps({"id": f"c{i}", "question": f"q {i} answer: word{i} " + "z" * 200,
                                  "reference": f"word{i}"}) for i in range(30))
    (pytester.path / "a.jsonl").write_text(cases + "\n", encoding="utf-8")
    (pytester.path / "a.eval.yaml").write_text('model: m\nprompt: "{question}"\ncases: a.jsonl\n'
                                                'metrics: {exact_match: {}}\n', encoding="utf-8")
    res = pytester.runpytest("-p", "no:cacheprovider", "-q")
    assert res.ret == 0, res.stdout.str()
    res.stdout.fnmatch_lines(["llmeval: cache over 3.0 kB: removed * least recently used entries*"])
    with Cache(pytester.path / ".llmeval_cache" / "cache.sqlite3", mode="ro") as cache:
        st = cache.stats()
    assert 0 < st.bytes <= 3000 and st.entries < 30
    (pytester.path / "pyproject.toml").write_text('[tool.llmeval]\ncache_max_size = "lots"\n', encoding="utf-8")
    res = pytester.runpytest("-p", "no:cacheprovider", "-q")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*?tool.llmeval? cache_max_size: expected a size like 2GB*"])
