"""The fleet balancer alone: least outstanding requests, back-off, half-open trial, all-down."""

from __future__ import annotations

import itertools
import threading
import time
import uuid

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.models.fleet import Fleet, Replica, parse_replicas

_ports = itertools.count(20000)


def fleet(*concurrency: int, backoff: float = 0.2, backoff_max: float = 1.0) -> Fleet:
    """A fleet of fresh URLs under a scheme of its own.

    A replica's run-wide budget is named by scheme and URL, and under xdist the workers
    share budgets: with the same URLs in two workers, a lease another worker's test
    left unreleased held this one's slots (a run hung in the all-down test).
    """
    replicas = [Replica(f"http://127.0.0.1:{next(_ports)}/v1", c) for c in concurrency]
    return Fleet(replicas, scheme=f"test-{uuid.uuid4().hex}", backoff=backoff,
                 backoff_max=backoff_max)


def test_least_outstanding_relative_to_concurrency_spreads_and_fills() -> None:
    f = fleet(2, 2, 4)
    a, b, c = (e.url for e in f.endpoints)
    leases = [f.acquire() for _ in range(8)]
    assert all(lease is not None for lease in leases)
    picked = [lease.url for lease in leases if lease is not None]
    # idle replicas first (declared order on ties), then the least loaded relative to its capacity
    assert picked[:3] == [a, b, c]
    assert picked.count(a) == 2 and picked.count(b) == 2 and picked.count(c) == 4
    assert [e.outstanding for e in f.endpoints] == [2, 2, 4]


def test_a_released_slot_goes_to_the_replica_that_freed_it_when_the_others_are_full() -> None:
    f = fleet(1, 1)
    first, second = f.acquire(), f.acquire()
    assert first is not None and second is not None
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(f.acquire().url))  # type: ignore[union-attr]
    waiter.start()
    time.sleep(0.05)
    assert not got, "both replicas are full: the third request must wait"
    f.release(second, ok=True)
    waiter.join(timeout=5)
    assert got == [second.url]


def test_a_failed_replica_is_out_for_its_backoff_which_doubles_to_the_cap_and_resets() -> None:
    f = fleet(2, 2, backoff=0.1, backoff_max=0.3)
    bad, good = f.endpoints
    lease = f.acquire()
    assert lease is not None and lease.endpoint is bad
    f.release(lease, ok=False, endpoint_error="connection refused")
    assert bad.outages == 1 and not bad.healthy and bad.backoff == pytest.approx(0.2)
    # while it is out, everything goes to the other replica
    leases = [f.acquire() for _ in range(2)]
    assert {lease.url for lease in leases if lease} == {good.url}
    for held in leases:
        f.release(held, ok=True)  # type: ignore[arg-type]
    time.sleep(0.12)
    trial = f.acquire()
    assert trial is not None and trial.endpoint is bad  # back, and idle: least outstanding
    # half-open: one request at a time until one succeeds
    assert bad.capacity() == 1
    assert f.acquire().endpoint is good  # type: ignore[union-attr]
    f.release(trial, ok=False, endpoint_error="connection refused")
    assert bad.outages == 2 and bad.backoff == pytest.approx(0.3)  # doubled, capped at 0.3
    time.sleep(0.21)
    trial = f.acquire()
    assert trial is not None and trial.endpoint is bad
    f.release(trial, ok=False, endpoint_error="timed out")
    assert bad.backoff == pytest.approx(0.3)
    time.sleep(0.31)
    trial = f.acquire()
    assert trial is not None and trial.endpoint is bad
    f.release(trial, ok=True)
    assert bad.healthy and bad.capacity() == 2 and bad.backoff == pytest.approx(0.1)


def test_the_requests_of_one_outage_take_the_replica_out_once() -> None:
    f = fleet(4, 4, backoff=0.5)
    bad = f.endpoints[0]
    leases = [f.acquire() for _ in range(8)]
    on_bad = [lease for lease in leases if lease is not None and lease.endpoint is bad]
    assert len(on_bad) == 4
    for lease in on_bad:  # the four in flight fail together
        f.release(lease, ok=False, endpoint_error="connection reset")
    assert bad.outages == 1 and bad.backoff == pytest.approx(1.0)
    assert bad.outstanding == 0


def test_all_down_waits_for_the_first_to_return_then_reports_none() -> None:
    f = fleet(1, 1, backoff=0.15)
    for _ in range(2):
        lease = f.acquire()
        assert lease is not None
        f.release(lease, ok=False, endpoint_error="connection refused")
    assert f.all_down()
    start = time.monotonic()
    assert f.acquire() is None
    waited = time.monotonic() - start
    assert 0.1 <= waited < 2.0
    assert not f.all_down()
    text = f.describe_down()
    assert all(e.url in text for e in f.endpoints) and "connection refused" in text


def test_a_replica_under_retry_after_is_skipped_while_another_is_free() -> None:
    f = fleet(2, 2)
    slow, other = f.endpoints
    slow.budget.defer(0.2)
    picked = [f.acquire() for _ in range(2)]
    assert {lease.url for lease in picked if lease} == {other.url}
    start = time.monotonic()
    third = f.acquire()  # the other is full: wait for the retry-after to pass
    assert third is not None and third.endpoint is slow
    assert time.monotonic() - start >= 0.1


@pytest.mark.parametrize(("value", "message"), [
    ([], "must be a list of URLs"),
    ("http://a/v1", "must be a list of URLs"),
    (["localhost:8000"], "replicas[0]: 'url' must be an http(s) URL"),
    ([{"url": "http://a/v1", "concurrency": 0}], "replicas[0]: 'concurrency' must be an integer >= 1"),
    ([{"url": "http://a/v1", "weight": 2}], "replicas[0]: unknown key(s) ['weight']"),
    (["http://a/v1", "http://a/v1/"], "replicas[1]: http://a/v1 is listed twice"),
    ([3], "replicas[0]: expected a URL"),
])
def test_bad_replicas_are_config_errors_naming_the_entry(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_replicas(value, default_concurrency=8, ref="openai:m")
    assert message in str(err.value) and str(err.value).startswith("openai:m")


def test_replicas_take_the_model_concurrency_unless_they_set_their_own() -> None:
    got = parse_replicas(["http://a/v1/", {"url": "http://b/v1", "concurrency": 3}], default_concurrency=5,
                         ref="openai:m")
    assert got == [Replica("http://a/v1", 5), Replica("http://b/v1", 3)]
