"""A fleet: several replicas of one served model behind one API model, balanced and failed over.

An ``openai:`` model (or any API model) with ``replicas: [url, {url: ..., concurrency: ...}, ...]``
sends each request to the replica with the fewest requests outstanding
relative to its ``concurrency`` (least outstanding requests), never more than
that many at once to one replica. A replica that refuses connections, times out
or drops a request is taken out for a back-off period that doubles with each
failed try (up to a cap) and is reset by a success; when it comes back it gets
one request at a time until one succeeds (a half-open circuit breaker). The
requests it held are retried on the other replicas by the model's retry loop,
which counts them.

Declaring a fleet asserts the replicas serve the same weights: answers are
cached under the fleet's model name and served model, not under any URL.

Each replica also draws on the run-wide budget of :mod:`pytest_llmeval.budget`
(its slots and ``retry-after`` are shared by xdist workers); a replica whose
provider asked to wait is skipped while others are free. Pytest-free.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmeval.budget import POLL_MAX, EndpointBudget, Slot, endpoint_budget
from pytest_llmeval.errors import ConfigError


@dataclass(frozen=True)
class Replica:
    """One declared replica: where it is and how many requests it takes at once."""

    url: str
    concurrency: int


def parse_replicas(value: Any, *, default_concurrency: int, ref: str) -> list[Replica]:
    """The ``replicas`` option -> replicas (URLs without a trailing ``/``).

    Raises:
        ConfigError: not a non-empty list of URLs or ``{url, concurrency}`` tables,
            a bad concurrency, or a URL listed twice; the message names the entry.
    """
    shape = "a list of URLs or {url: ..., concurrency: N} tables"
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{ref}: option 'replicas' must be {shape}, got {value!r}")
    out: list[Replica] = []
    for i, entry in enumerate(value):
        where = f"{ref}: replicas[{i}]"
        url: Any
        if isinstance(entry, str):
            url, concurrency = entry, default_concurrency
        elif isinstance(entry, dict):
            unknown = set(entry) - {"url", "concurrency"}
            if unknown:
                raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; a replica takes 'url' and "
                                  f"'concurrency'")
            url = entry.get("url")
            concurrency = entry.get("concurrency", default_concurrency)
            if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
                raise ConfigError(f"{where}: 'concurrency' must be an integer >= 1, got {concurrency!r}")
        else:
            raise ConfigError(f"{where}: expected a URL or a {{url, concurrency}} table, got {entry!r}")
        if not isinstance(url, str) or "://" not in url:
            raise ConfigError(f"{where}: 'url' must be an http(s) URL such as http://host:8000/v1, "
                              f"got {url!r}")
        url = url.strip().rstrip("/")
        if any(r.url == url for r in out):
            raise ConfigError(f"{where}: {url} is listed twice; give it a larger 'concurrency' instead")
        out.append(Replica(url, concurrency))
    return out


class Endpoint:
    """A replica's live state (guarded by its fleet's lock)."""

    def __init__(self, replica: Replica, budget: EndpointBudget, backoff: float) -> None:
        self.url = replica.url
        self.concurrency = replica.concurrency
        self.budget = budget
        self.outstanding = 0
        self.healthy = True
        self.down_until = 0.0
        self.backoff = backoff
        self.outages = 0
        self.last_error: str | None = None

    def capacity(self) -> int:
        """Requests it may hold now: its concurrency, or one while it proves it is back."""
        return self.concurrency if self.healthy else 1


@dataclass
class Lease:
    """A request's hold on one endpoint (and on a slot of the run-wide budget)."""

    endpoint: Endpoint
    slot: Slot

    @property
    def url(self) -> str:
        return self.endpoint.url


class Fleet:
    """Least-outstanding-requests balancing with back-off and failover over a model's replicas.

    Args:
        replicas: the replicas, in declared order (ties go to the earlier one).
        scheme: the backend (``openai``); with the URL it names each replica's budget.
        backoff: seconds a replica is out after its first failure; doubles per failure.
        backoff_max: the longest a replica is out at once.
    """

    def __init__(self, replicas: Sequence[Replica], *, scheme: str, backoff: float = 1.0,
                 backoff_max: float = 30.0) -> None:
        self.base_backoff = backoff
        self.backoff_max = max(backoff, backoff_max)
        self.endpoints = [Endpoint(r, endpoint_budget(f"{scheme} {r.url}"), backoff) for r in replicas]
        self._cond = threading.Condition()

    @property
    def capacity(self) -> int:
        """Requests the fleet takes at once when every replica is up."""
        return sum(e.concurrency for e in self.endpoints)

    def acquire(self) -> Lease | None:
        """Wait for a free replica and hold it; None when every replica is out.

        The least loaded replica (outstanding / capacity, then declared order) that
        is up, has room, is not under a ``retry-after`` and has a free run-wide slot
        wins. When every replica is out, this waits until the first comes back and
        returns None, so the caller counts a failed try against its retry budget.
        """
        with self._cond:
            while True:
                now = time.monotonic()
                wall = time.time()
                down = [e for e in self.endpoints if e.down_until > now]
                if len(down) == len(self.endpoints):
                    back = min(e.down_until for e in down)
                    while (left := back - time.monotonic()) > 0:
                        self._cond.wait(left)
                    return None
                ready = sorted((e for e in self.endpoints if e.down_until <= now
                                and e.outstanding < e.capacity() and e.budget.not_before() <= wall),
                               key=lambda e: e.outstanding / e.capacity())
                for e in ready:
                    slot = e.budget.try_acquire(e.concurrency)
                    if slot is not None:
                        e.outstanding += 1
                        return Lease(e, slot)
                self._cond.wait(self._next_change(now, wall, polling=bool(ready)))

    def _next_change(self, now: float, wall: float, *, polling: bool) -> float:
        """How long to sleep before looking again, besides being woken by a release."""
        waits = [e.down_until - now for e in self.endpoints if e.down_until > now]
        waits += [nb - wall for e in self.endpoints if (nb := e.budget.not_before()) > wall]
        if polling:  # slots held by other processes free up without a notification
            waits.append(POLL_MAX / 5)
        return max(0.001, min(waits, default=POLL_MAX))

    def release(self, lease: Lease, *, ok: bool, endpoint_error: str | None = None) -> None:
        """Give the lease back. ``endpoint_error``: the replica itself failed (it is taken out).

        Failures of one outage (the requests it held, failing together) count once:
        the back-off doubles only when a replica that was up fails.
        """
        e = lease.endpoint
        lease.slot.release()
        with self._cond:
            e.outstanding -= 1
            now = time.monotonic()
            if endpoint_error is not None:
                e.last_error = endpoint_error
                if e.down_until <= now:
                    e.down_until = now + e.backoff
                    e.backoff = min(self.backoff_max, e.backoff * 2)
                    e.healthy = False
                    e.outages += 1
                self._cond.notify_all()  # waiters re-plan: all down now, or another replica
            elif ok and not e.healthy and e.down_until <= now:
                e.healthy = True
                e.backoff = self.base_backoff
                self._cond.notify_all()  # its full capacity is back
            else:
                self._cond.notify()  # one slot freed: one waiter can take it

    def all_down(self) -> bool:
        """Every replica is out now."""
        with self._cond:
            now = time.monotonic()
            return all(e.down_until > now for e in self.endpoints)

    def describe_down(self) -> str:
        """Each replica with its last error and when it is tried again (for the all-down error)."""
        with self._cond:
            now = time.monotonic()
            parts = []
            for e in self.endpoints:
                state = (f"back in {e.down_until - now:.1f} s" if e.down_until > now
                         else "up" if e.healthy else "on trial")
                parts.append(f"{e.url} ({e.last_error or 'no error'}; {state})")
            return ", ".join(parts)

    def outages(self) -> dict[str, int]:
        """Times each replica was taken out."""
        with self._cond:
            return {e.url: e.outages for e in self.endpoints}


_fleets: dict[tuple[Any, ...], Fleet] = {}
_fleets_lock = threading.Lock()


def shared_fleet(replicas: Sequence[Replica], *, scheme: str, backoff: float = 1.0,
                 backoff_max: float = 30.0) -> Fleet:
    """The fleet of these replicas in this process, made once: models declaring the same replicas
    (a suite's model and a judge on one fleet) share its limits, its outage state and its balancing."""
    key = (scheme, tuple(replicas), backoff, backoff_max)
    with _fleets_lock:
        fleet = _fleets.get(key)
        if fleet is None:
            fleet = _fleets[key] = Fleet(replicas, scheme=scheme, backoff=backoff, backoff_max=backoff_max)
        return fleet
