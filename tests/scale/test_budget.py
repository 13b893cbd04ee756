"""The run-wide budget primitive: slots shared by processes through flock, a shared retry-after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from pytest_llmeval import budget
from pytest_llmeval.budget import EndpointBudget
from pytest_llmeval.errors import LLMEvalWarning

needs_flock = pytest.mark.skipif(not budget.SHARING_SUPPORTED, reason="no fcntl.flock on this platform")

HOLDER = textwrap.dedent('''
    import json, sys, threading, time
    from pathlib import Path
    from pytest_llmeval.budget import EndpointBudget

    directory, limit, threads, rounds, hold, out = sys.argv[1:7]
    b = EndpointBudget("openai http://shared/v1", Path(directory))
    events = []
    lock = threading.Lock()

    def work():
        for _ in range(int(rounds)):
            with b.acquire(int(limit)):
                start = time.monotonic()  # after the lock is held
                time.sleep(float(hold))
                end = time.monotonic()  # before it is released
            with lock:
                events.append((start, end))

    ts = [threading.Thread(target=work) for _ in range(int(threads))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    Path(out).write_text(json.dumps(events))
''')


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end before a start at the same time)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = current = 0
    for _, delta in events:
        current += delta
        best = max(best, current)
    return best


@needs_flock
def test_two_processes_never_hold_more_than_the_limit_together(tmp_path: Path) -> None:
    limit = 3
    procs = [subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "run"), str(limit), "5", "6",
                               "0.01", str(tmp_path / f"p{i}.json")], env=_env()) for i in range(2)]
    for p in procs:
        assert p.wait(timeout=60) == 0
    intervals = [tuple(x) for i in range(2) for x in json.loads((tmp_path / f"p{i}.json").read_text())]
    assert len(intervals) == 2 * 5 * 6
    # ten threads asked for three slots: the limit was reached, and never passed
    assert max_overlap(intervals) == limit  # type: ignore[arg-type]


@needs_flock
def test_a_slot_held_by_a_killed_process_is_free_again(tmp_path: Path) -> None:
    script = textwrap.dedent('''
        import sys, time
        from pathlib import Path
        from pytest_llmeval.budget import EndpointBudget
        slot = EndpointBudget("k", Path(sys.argv[1])).acquire(1)
        print("HELD", flush=True)
        time.sleep(60)
    ''')
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=_env(), stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "HELD"
        mine = EndpointBudget("k", tmp_path)
        assert mine.try_acquire(1) is None
    finally:
        proc.kill()
        proc.wait(timeout=10)
    deadline = time.monotonic() + 5
    slot = None
    while slot is None and time.monotonic() < deadline:
        slot = mine.try_acquire(1)
    assert slot is not None
    slot.release()
    mine.close()


def test_threads_of_one_process_share_the_slots_too(tmp_path: Path) -> None:
    if not budget.SHARING_SUPPORTED:
        pytest.skip("no fcntl.flock on this platform")
    b = EndpointBudget("threads", tmp_path)
    first, second = b.try_acquire(2), b.try_acquire(2)
    assert first is not None and second is not None and b.try_acquire(2) is None
    second.release()
    second.release()  # twice is harmless
    third = b.try_acquire(2)
    assert third is not None and b.try_acquire(2) is None
    b.close()


def test_without_a_directory_the_budget_is_this_process_alone() -> None:
    b = EndpointBudget("local", None)
    assert not b.shared
    slots = [b.try_acquire(1) for _ in range(5)]
    assert all(s is not None for s in slots)  # the in-process semaphore is what limits here


@needs_flock
def test_a_retry_after_in_one_process_makes_another_wait(tmp_path: Path) -> None:
    script = textwrap.dedent('''
        import sys, time
        from pathlib import Path
        from pytest_llmeval.budget import EndpointBudget
        b = EndpointBudget("openai http://limited/v1", Path(sys.argv[1]))
        print(round(b.wait(), 3), flush=True)
    ''')
    teller = EndpointBudget("openai http://limited/v1", tmp_path)
    teller.defer(0.6)
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=_env(), capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert time.monotonic() - start >= 0.5
    slept = float(out)
    assert 0 < slept <= 0.6


def test_a_retry_after_only_moves_later_and_every_thread_waits() -> None:
    b = EndpointBudget("waits", None)
    b.defer(0.3)
    b.defer(0.05)  # a shorter wait does not cut the longer one
    assert b.not_before() - time.time() > 0.2
    deadline = b.not_before()
    woke: list[float] = []

    def wait() -> None:
        b.wait()
        woke.append(time.time())

    threads = [threading.Thread(target=wait) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    # every thread returns only once the later time has passed, however late it started
    # (on a loaded machine a thread may start well after the defer, and wait less)
    assert len(woke) == 3 and all(w >= deadline for w in woke)
    assert b.wait() == 0


def test_without_flock_the_run_directory_degrades_to_per_process_with_a_warning(monkeypatch) -> None:
    monkeypatch.setattr(budget, "SHARING_SUPPORTED", False)
    with pytest.warns(LLMEvalWarning, match="per xdist worker"):
        assert budget.create_run_directory() is None


def test_a_run_directory_is_made_and_removed() -> None:
    if not budget.SHARING_SUPPORTED:
        pytest.skip("no fcntl.flock on this platform")
    path = budget.create_run_directory()
    assert path is not None and path.is_dir()
    EndpointBudget("x", path).try_acquire(1)
    budget.remove_run_directory(path)
    assert not path.exists()
