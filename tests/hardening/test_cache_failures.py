"""The cache on a read-only mount and on a full disk: warnings, never lost outputs or ERROR items."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_llmeval.cache import Cache, CachedModel
from pytest_llmeval.models.base import GenerationRequest

from .confine import run_confined

pytestmark = pytest.mark.filterwarnings("error::pytest_llmeval.errors.LLMEvalWarning")

SCRIPT_PRELUDE = textwrap.dedent("""
    import json, sys, warnings
    from pathlib import Path
    from pytest_llmeval.cache import Cache, CachedModel
    from pytest_llmeval.models.base import GenerationRequest, ModelBase

    class Echo(ModelBase):
        scheme = "echo"
        def __init__(self, size=0):
            super().__init__("echo", "m")
            self.asked = 0
            self.size = size
        def generate(self, requests):
            self.asked += len(requests)
            return [f"out:{r.prompt}" + "x" * self.size for r in requests]

    folder = Path(sys.argv[1])
    report = {}
""")


def _fill(folder: Path, prompts: list[str]) -> None:
    """A cache with these prompts stored, closed normally (WAL checkpointed, -wal/-shm removed)."""
    script = SCRIPT_PRELUDE + textwrap.dedent(f"""
        with Cache(folder / "cache.sqlite3") as c:
            CachedModel(Echo(), c).generate([GenerationRequest(p) for p in {prompts!r}])
    """)
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", script, str(folder)], check=True)
    assert sorted(p.name for p in folder.iterdir()) == [".gitignore", "cache.sqlite3"]


def _run(kind: str, folder: Path, body: str, size: str = "256k") -> tuple[dict, str, str]:
    proc, method = run_confined(kind, folder, SCRIPT_PRELUDE + textwrap.dedent(body)
                                + "\nprint(json.dumps(report))\n", size=size)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr, method


def test_readonly_cache_on_a_read_only_mount_reads_every_entry(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    _fill(folder, ["a", "b"])
    report, _, method = _run("ro", folder, """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Cache(folder / "cache.sqlite3", mode="ro") as c:
                model = Echo()
                report["out"] = CachedModel(model, c).generate(
                    [GenerationRequest(p) for p in ["a", "b", "c"]])
                report["asked"] = model.asked
        report["warnings"] = [str(w.message) for w in caught]
        report["files"] = sorted(p.name for p in folder.iterdir())
    """)
    print(method)
    assert report["out"] == ["out:a", "out:b", "out:c"]
    assert report["asked"] == 1  # only the miss
    assert report["warnings"] == []
    assert report["files"] == [".gitignore", "cache.sqlite3"]


def test_strict_readonly_cache_on_a_read_only_mount_serves_hits(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    _fill(folder, ["a"])
    report, _, _ = _run("ro", folder, """
        with Cache(folder / "cache.sqlite3", mode="ro", strict=True) as c:
            out = CachedModel(Echo(), c).generate([GenerationRequest("a"), GenerationRequest("z")])
        report["out"] = [o if isinstance(o, str) else type(o).__name__ for o in out]
    """)
    assert report["out"] == ["out:a", "CacheError"]


def test_writable_cache_on_a_read_only_mount_warns_and_still_reads(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    _fill(folder, ["a"])
    report, _, _ = _run("ro", folder, """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Cache(folder / "cache.sqlite3") as c:
                model = Echo()
                report["out"] = CachedModel(model, c).generate(
                    [GenerationRequest("a"), GenerationRequest("b")])
                report["asked"] = model.asked
                report["writable"] = c.writable
        report["warnings"] = [str(w.message) for w in caught]
    """)
    assert report["out"] == ["out:a", "out:b"] and report["asked"] == 1
    assert report["writable"] is False
    assert len(report["warnings"]) == 1 and "cannot be written" in report["warnings"][0]


def test_full_disk_keeps_every_generated_output_and_warns_once(tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    folder.mkdir()
    report, _, method = _run("full", folder, """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with Cache(folder / "cache.sqlite3") as c:
                model = Echo(size=20_000)
                cached = CachedModel(model, c, chunk_size=4)
                out = cached.generate([GenerationRequest(str(i)) for i in range(60)])
                report["ok"] = out == [f"out:{i}" + "x" * 20_000 for i in range(60)]
                report["writable"] = c.writable
                # what did get stored is still served
                again = cached.generate([GenerationRequest("0")])
                report["again"] = again[0] == "out:0" + "x" * 20_000
        report["warnings"] = [str(w.message) for w in caught]
    """)
    print(method)
    assert report["ok"] and report["again"]
    assert report["writable"] is False
    assert len(report["warnings"]) == 1
    message = report["warnings"][0]
    assert "cannot be written" in message and ("full" in message or "too large" in message), message


def test_put_on_a_read_only_cache_is_refused_without_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    Cache(path).close()
    with Cache(path, mode="ro") as ro:
        assert ro.put("generate", "k", "v") is False
    with Cache(path) as rw:
        out = CachedModel(_Const(), rw).generate([GenerationRequest("a")])
        assert out == ["const"] and rw.writable


class _Const:
    name = "const"

    def fingerprint(self) -> str:
        return "const"

    def describe(self) -> dict[str, str]:
        return {}

    def generate(self, requests):  # type: ignore[no-untyped-def]
        return ["const" for _ in requests]
