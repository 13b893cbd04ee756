"""The on-disk cache: keys, modes, CachedModel, durability under SIGKILL, sharing by processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from pytest_llmeval.cache import Cache, CachedModel, cache_key
from pytest_llmeval.errors import CacheError, ModelError
from pytest_llmeval.models.base import (
    GenerationOutcome,
    GenerationParams,
    GenerationRequest,
    ModelBase,
)


class CountingModel(ModelBase):
    """Answers ``"<target>:<prompt>"``; fails prompts starting with ``fail``; records every call."""

    scheme = "counting"

    def __init__(self, target: str = "m") -> None:
        super().__init__("counting", target)
        self.calls: list[list[str]] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        self.calls.append([str(r.prompt) for r in requests])
        return [
            ModelError("boom") if str(r.prompt).startswith("fail") else f"{self.target}:{r.prompt}"
            for r in requests
        ]

    @property
    def asked(self) -> int:
        return sum(len(c) for c in self.calls)


def stored(path: Path | None, namespace: str | None = None) -> int:
    """How many entries the file holds, read with sqlite3 itself (not through the cache)."""
    assert path is not None
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        if namespace is None:
            return int(conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])
        return int(conn.execute("SELECT COUNT(*) FROM entries WHERE ns = ?", (namespace,)).fetchone()[0])


def get(cache: Cache, namespace: str, payload: object) -> object:
    return cache.get_many(namespace, [cache_key(payload)])[0]


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    c = Cache(tmp_path / "c" / "cache.sqlite3")
    yield c
    c.close()


def test_put_get_roundtrip_by_namespace(cache: Cache) -> None:
    assert get(cache, "judge", {"a": 1}) is None
    assert cache.put("judge", cache_key({"a": 1, "b": [1, 2]}), {"winner": "A"}) is True
    assert get(cache, "judge", {"b": [1, 2], "a": 1}) == {"winner": "A"}  # key order is irrelevant
    assert get(cache, "generate", {"a": 1, "b": [1, 2]}) is None
    keys = [cache_key({"a": 1, "b": [1, 2]}), cache_key({"a": 2})]
    assert cache.get_many("judge", keys) == [{"winner": "A"}, None]
    assert stored(cache.path) == 1
    assert cache.path is not None and (
        cache.path.parent / ".gitignore"
    ).read_text().strip().endswith("*")


def test_key_is_canonical_and_rejects_non_json() -> None:
    assert cache_key({"x": 1, "y": "é"}) == cache_key({"y": "é", "x": 1})
    assert cache_key({"x": 1}) != cache_key({"x": 1.5})
    with pytest.raises(CacheError, match="not JSON-serialisable"):
        cache_key({"x": object()})


def test_cached_model_calls_only_for_misses(cache: Cache) -> None:
    model = CountingModel()
    cached = CachedModel(model, cache)
    first = cached.generate([GenerationRequest("a"), GenerationRequest("b")])
    second = cached.generate(
        [GenerationRequest("a"), GenerationRequest("c"), GenerationRequest("b")]
    )
    assert first == ["m:a", "m:b"] and second == ["m:a", "m:c", "m:b"]
    assert model.calls == [["a", "b"], ["c"]]
    assert cached.usage() == {"cache_hits": 2, "cache_misses": 3}


@pytest.mark.parametrize(
    "changed",
    [
        GenerationRequest("a", GenerationParams(temperature=0.7)),
        GenerationRequest("a", GenerationParams(max_new_tokens=5)),
        GenerationRequest("a", GenerationParams(stop=("\n",))),
        GenerationRequest("a", GenerationParams(json_mode=True)),
        GenerationRequest("a", sample=1),
        GenerationRequest([{"role": "user", "content": "a"}]),
    ],
)
def test_anything_that_changes_the_answer_changes_the_key(
    cache: Cache, changed: GenerationRequest
) -> None:
    model = CountingModel()
    cached = CachedModel(model, cache)
    cached.generate([GenerationRequest("a")])
    cached.generate([changed])
    assert model.asked == 2


def test_repeated_samples_keep_distinct_entries(cache: Cache) -> None:
    hot = GenerationParams(temperature=1.0)
    cached = CachedModel(CountingModel(), cache)
    cached.generate([GenerationRequest("a", hot, sample=k) for k in range(3)])
    assert stored(cache.path, "generate") == 3


def test_another_model_fingerprint_misses(cache: Cache) -> None:
    CachedModel(CountingModel("one"), cache).generate([GenerationRequest("a")])
    other = CountingModel("two")
    assert CachedModel(other, cache).generate([GenerationRequest("a")]) == ["two:a"]
    assert other.asked == 1


def test_errors_are_returned_not_cached(cache: Cache) -> None:
    model = CountingModel()
    cached = CachedModel(model, cache)
    out = cached.generate([GenerationRequest("fail-1"), GenerationRequest("ok")])
    assert isinstance(out[0], ModelError) and out[1] == "m:ok"
    cached.generate([GenerationRequest("fail-1")])
    assert model.calls[-1] == ["fail-1"]
    assert stored(cache.path) == 1


def test_identical_requests_in_a_batch_are_generated_once(cache: Cache) -> None:
    model = CountingModel()
    out = CachedModel(model, cache).generate([GenerationRequest("a")] * 3)
    assert out == ["m:a"] * 3 and model.asked == 1


def test_plain_models_are_called_in_chunks_stored_as_they_finish(cache: Cache) -> None:
    model = CountingModel()
    CachedModel(model, cache, chunk_size=2).generate([GenerationRequest(str(i)) for i in range(5)])
    assert [len(c) for c in model.calls] == [2, 2, 1]


def test_streaming_models_store_each_result_as_it_finishes(cache: Cache) -> None:
    from pytest_llmeval.models.base import Generation, GenerationInfo, ModelBase

    class Streaming(ModelBase):
        streams_results = True

        def __init__(self) -> None:
            super().__init__("m", "m")
            self.calls: list[list[str]] = []

        def generate_with_info(self, requests, progress=None, on_result=None):  # type: ignore[override]
            self.calls.append([str(r.prompt) for r in requests])
            outs = [Generation(f"m:{r.prompt}", GenerationInfo(latency_s=0.1, cost_usd=0.01)) for r in requests]
            for i, g in enumerate(outs):
                on_result(i, g)
                # stored before generate returns: the cache already has it
                assert stored(cache.path) == i + 1
            return outs

    model = Streaming()
    cached = CachedModel(model, cache)
    first = cached.generate_with_info([GenerationRequest(str(i)) for i in range(4)])
    assert [g.outcome for g in first] == [f"m:{i}" for i in range(4)] and len(model.calls) == 1
    assert not any(g.info.cached for g in first) and first[0].info.latency_s == 0.1
    again = cached.generate_with_info([GenerationRequest("1")])
    assert len(model.calls) == 1  # a hit: recorded as cached, with the original request's cost
    assert again[0].outcome == "m:1" and again[0].info.cached and again[0].info.cost_usd == 0.01


def test_wrong_output_count_is_an_error(cache: Cache) -> None:
    class Short(CountingModel):
        def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
            return ["only one"]

    with pytest.raises(ModelError, match="returned 1 outputs for 2 requests"):
        CachedModel(Short(), cache).generate([GenerationRequest("a"), GenerationRequest("b")])


def test_read_only_mode_never_writes(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    with Cache(path) as rw:
        CachedModel(CountingModel(), rw).generate([GenerationRequest("a")])
    mtime = path.stat().st_mtime_ns
    with Cache(path, mode="ro") as ro:
        model = CountingModel()
        out = CachedModel(model, ro).generate([GenerationRequest("a"), GenerationRequest("b")])
        assert out == ["m:a", "m:b"] and model.calls == [["b"]]
        assert ro.put("generate", cache_key({"x": 1}), "v") is False and not ro.writable
    assert stored(path) == 1
    assert path.stat().st_mtime_ns == mtime


def test_strict_read_only_miss_is_an_error_in_its_slot(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    with Cache(path) as rw:
        CachedModel(CountingModel(), rw).generate([GenerationRequest("a")])
    with Cache(path, mode="ro", strict=True) as ro:
        model = CountingModel()
        out = CachedModel(model, ro).generate([GenerationRequest("a"), GenerationRequest("b")])
    assert out[0] == "m:a"
    assert isinstance(out[1], CacheError) and "read-only and strict" in str(out[1])
    assert model.calls == []


def test_read_only_without_a_file_is_all_misses(tmp_path: Path) -> None:
    with Cache(tmp_path / "none.sqlite3", mode="ro") as ro:
        assert get(ro, "generate", {"a": 1}) is None
    assert not (tmp_path / "none.sqlite3").exists()


def test_off_mode_stores_nothing(tmp_path: Path) -> None:
    off = Cache(None, mode="off")
    model = CountingModel()
    cached = CachedModel(model, off)
    cached.generate([GenerationRequest("a")])
    cached.generate([GenerationRequest("a")])
    assert model.asked == 2 and off.mode == "off"
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="mode must be"):
        Cache(tmp_path / "a", mode="wr")  # type: ignore[arg-type]
    with pytest.raises(CacheError, match="strict applies"):
        Cache(tmp_path / "a", strict=True)
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CacheError, match="junk.sqlite3.*--llmeval-cache off"):
        Cache(junk)


def test_api_key_is_not_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_llmeval.models import load_model
    from pytest_llmeval.testing.fake_server import FakeLLMServer

    key = "sk-never-stored-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    path = tmp_path / "cache.sqlite3"
    with FakeLLMServer() as server, Cache(path) as cache:
        model = load_model("openai:m", options={"base_url": server.openai_base_url})
        CachedModel(model, cache).generate([GenerationRequest("hello")])
    assert stored(path) == 1
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert key.encode() not in blob


# -- durability and sharing across processes ------------------------------------------------

CHILD = textwrap.dedent("""
    import sys, threading
    from pytest_llmeval.cache import Cache, CachedModel
    from pytest_llmeval.models import GenerationRequest, load_model

    lock = threading.Lock()

    class Reporting(Cache):
        # prints each key once its row is committed, so the parent knows what is durable
        def put(self, namespace, key, value):
            assert super().put(namespace, key, value)
            with lock:
                sys.stdout.write(key + "\\n")
                sys.stdout.flush()

    base_url, path, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = load_model("openai:m", options={"base_url": base_url, "concurrency": 4})
    CachedModel(model, Reporting(path)).generate([GenerationRequest(f"q{i}") for i in range(n)])
    print("DONE", flush=True)
""")


@pytest.mark.slow
def test_sigkill_mid_run_loses_no_finished_call_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_llmeval.models import load_model
    from pytest_llmeval.testing.fake_server import FakeLLMServer

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    path = tmp_path / "cache.sqlite3"
    n = 60
    with FakeLLMServer(latency=0.1) as server:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, server.openai_base_url, str(path), str(n)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        reported = [child.stdout.readline().strip() for _ in range(12)]
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL and "DONE" not in reported

        with Cache(path) as cache:
            kept = stored(path, "generate")
            assert [k for k in reported if cache.get_many("generate", [k]) == [None]] == []
            assert 12 <= kept < n
            server.reset_stats()
            model = load_model(
                "openai:m", options={"base_url": server.openai_base_url, "concurrency": 8}
            )
            out = CachedModel(model, cache).generate([GenerationRequest(f"q{i}") for i in range(n)])
            assert server.count == n - kept
            assert stored(path, "generate") == n
    assert out == [f"echo: q{i}" for i in range(n)]


WRITER = textwrap.dedent("""
    import sys
    from pytest_llmeval.cache import Cache, cache_key
    path, me = sys.argv[1], int(sys.argv[2])
    with Cache(path) as cache:
        for i in range(300):
            assert cache.put("generate", cache_key({"i": i}), f"v{i}")           # shared keys
            own = cache_key({"writer": me, "i": i})
            assert cache.put("judge", own, [me, i])                              # own keys
            assert cache.get_many("judge", [own]) == [[me, i]]
""")


def test_concurrent_writer_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "cache.sqlite3"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(w)], stderr=subprocess.PIPE, text=True
        )
        for w in range(4)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    assert stored(path, "generate") == 300 and stored(path, "judge") == 1200
    with Cache(path) as cache:
        assert get(cache, "judge", {"writer": 3, "i": 299}) == [3, 299]
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


@pytest.mark.slow
def test_xdist_workers_share_the_cache(pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    path = pytester.path / "shared.sqlite3"
    pytester.makepyfile(
        test_writes=f"""
        import os, pytest
        from pytest_llmeval.cache import Cache, cache_key

        @pytest.mark.parametrize("block", range(4))
        def test_block(block):
            with Cache({str(path)!r}) as cache:
                worker = os.environ["PYTEST_XDIST_WORKER"]
                for i in range(100):
                    assert cache.put("generate", cache_key({{"block": block, "i": i}}), worker)
    """
    )
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:cacheprovider", "-p", "no:llmeval")
    result.assert_outcomes(passed=4)
    assert stored(path, "generate") == 400
    with Cache(path, mode="ro") as cache:
        workers = {get(cache, "generate", {"block": b, "i": 0}) for b in range(4)}
    assert workers and workers <= {"gw0", "gw1"}
