"""One concurrency budget and one ``retry-after`` per endpoint for a whole run, across processes.

Under pytest-xdist every worker is a process with its own thread pool, so a
per-process limit of N requests in flight becomes N per worker. To keep
``concurrency`` (and ``--llmeval-concurrency``) a limit for the whole run, the
controller creates a *run directory* (:func:`create_run_directory`) and hands
it to its workers, which call :func:`use_directory`. In that directory each
endpoint has:

- N slot files ``slot-<i>.lock``; a request in flight holds an exclusive
  ``fcntl.flock`` on one of them. The kernel drops the lock when its holder
  exits, so a worker that crashes never leaks a slot, and no server process is
  needed;
- a ``not-before`` file holding a Unix time: when a provider answers with
  ``retry-after``, every process (and every thread) waits until then before its
  next request to that endpoint, instead of each worker learning it separately.

Without a run directory (a run without xdist) the budget is per process and in
memory; where ``fcntl`` is missing (Windows) :func:`create_run_directory`
returns None with a warning and each worker keeps its own limit, as before.
The environment variable ``LLMEVAL_BUDGET_DIR`` names a run directory too, so
separate runs on one machine can share a budget on purpose.

Pytest-free: :mod:`pytest_llmeval.plugin` does the wiring in a few lines.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType

from pytest_llmeval.errors import LLMEvalWarning

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

ENV_VAR = "LLMEVAL_BUDGET_DIR"
"""Names a run directory shared by every process that inherits it."""

SHARING_SUPPORTED = fcntl is not None
"""Whether this platform can share a budget between processes (``fcntl.flock``)."""

POLL_MIN = 0.002
POLL_MAX = 0.05
"""Bounds (s) of the growing pause between tries while every slot of an endpoint is taken elsewhere."""


class Slot:
    """One request's place in an endpoint's budget; :meth:`release` (or leaving the ``with``) frees it."""

    def __init__(self, budget: EndpointBudget | None = None, index: int = -1) -> None:
        self._budget = budget
        self._index = index

    def release(self) -> None:
        """Free the slot. Safe to call twice."""
        budget, self._budget = self._budget, None
        if budget is not None:
            budget._release(self._index)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


class EndpointBudget:
    """The budget of one endpoint: its slots and its "not before" time, shared when a directory is set.

    Args:
        key: what identifies the endpoint (scheme and URL); hashed into a directory name.
        directory: the run directory, or None for a budget of this process only.
    """

    def __init__(self, key: str, directory: Path | None) -> None:
        self.key = key
        self.directory = None if directory is None else directory / _dir_name(key)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fds: dict[int, int] = {}
        self._held: set[int] = set()
        self._not_before = 0.0

    @property
    def shared(self) -> bool:
        """Whether slots and waits are shared with other processes."""
        return self.directory is not None

    # -- slots -------------------------------------------------------------------------

    def try_acquire(self, limit: int) -> Slot | None:
        """A free slot among the first ``limit``, or None when other processes hold them all.

        A budget of this process only always succeeds: the in-process limits are
        the caller's (one semaphore per endpoint), this adds the other processes.
        """
        if self.directory is None or fcntl is None:
            return Slot()
        with self._lock:
            free = [i for i in range(limit) if i not in self._held]
            random.shuffle(free)  # spread processes over the files instead of all racing for slot 0
            for i in free:
                fd = self._fds.get(i)
                if fd is None:
                    fd = self._fds[i] = os.open(self.directory / f"slot-{i}.lock", os.O_RDWR | os.O_CREAT,
                                                0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue
                self._held.add(i)
                return Slot(self, i)
        return None

    def acquire(self, limit: int) -> Slot:
        """A slot among the first ``limit``, waiting (polling with a growing pause) while all are taken."""
        pause = POLL_MIN
        while True:
            slot = self.try_acquire(limit)
            if slot is not None:
                return slot
            time.sleep(pause * random.uniform(0.5, 1.0))
            pause = min(POLL_MAX, pause * 2)

    def _release(self, index: int) -> None:
        with self._lock:
            fd = self._fds.get(index)
            if fd is not None and fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._held.discard(index)

    # -- retry-after -------------------------------------------------------------------

    def not_before(self) -> float:
        """The Unix time before which no request should be sent (0 when there is none)."""
        t = self._not_before
        if self.directory is not None:
            try:
                t = max(t, float((self.directory / "not-before").read_text(encoding="ascii") or 0))
            except (OSError, ValueError):
                pass
        return t

    def defer(self, seconds: float) -> None:
        """Nobody sends to this endpoint for ``seconds`` from now (a provider's ``retry-after``).

        Only ever moves the time later. Shared through the ``not-before`` file,
        replaced atomically so a reader never sees half a number.
        """
        until = time.time() + max(0.0, seconds)
        with self._lock:
            self._not_before = max(self._not_before, until)
        if self.directory is not None and until > self.not_before() - 1e-6:
            tmp = self.directory / f"not-before.{os.getpid()}.{threading.get_ident()}"
            try:
                tmp.write_text(repr(until), encoding="ascii")
                os.replace(tmp, self.directory / "not-before")
            except OSError:
                pass  # the run directory is gone (the run is ending): this process still waits

    def wait(self) -> float:
        """Sleep until :meth:`not_before` (re-read after each sleep: another process may extend it).

        Returns:
            the seconds slept.
        """
        slept = 0.0
        while True:
            delay = self.not_before() - time.time()
            if delay <= 0:
                return slept
            time.sleep(delay)
            slept += delay

    def close(self) -> None:
        """Close this process's slot files (held slots are released by the close)."""
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()
            self._held.clear()


def _dir_name(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


_directory: Path | None = None
_configured = False
_budgets: dict[str, EndpointBudget] = {}
_budgets_lock = threading.Lock()


def use_directory(path: str | os.PathLike[str] | None) -> None:
    """Share this process's budgets through the run directory ``path`` (None: this process only).

    Budgets handed out before are closed and forgotten, so a model loaded later
    gets the new directory.
    """
    global _directory, _configured
    with _budgets_lock:
        for budget in _budgets.values():
            budget.close()
        _budgets.clear()
        _directory = Path(path) if path is not None and SHARING_SUPPORTED else None
        _configured = True


def shared_directory() -> Path | None:
    """The run directory in use: from :func:`use_directory`, else ``LLMEVAL_BUDGET_DIR``, else None."""
    if _configured:
        return _directory
    env = os.environ.get(ENV_VAR, "").strip()
    return Path(env) if env and SHARING_SUPPORTED else None


def endpoint_budget(key: str) -> EndpointBudget:
    """The budget of endpoint ``key`` in this process (one object per key, like the in-process limiter)."""
    with _budgets_lock:
        budget = _budgets.get(key)
        if budget is None:
            budget = _budgets[key] = EndpointBudget(key, shared_directory())
        return budget


def create_run_directory() -> Path | None:
    """A fresh run directory for the workers of one run, or None (with a warning) without ``fcntl``."""
    if not SHARING_SUPPORTED:
        warnings.warn(
            "llmeval: this platform has no fcntl.flock, so the concurrency limit and retry-after "
            "waits are per xdist worker, not for the whole run; lower --llmeval-concurrency to "
            "N / workers to stay under a provider's limit",
            LLMEvalWarning, stacklevel=2)
        return None
    return Path(tempfile.mkdtemp(prefix="llmeval-budget-"))


def remove_run_directory(path: str | os.PathLike[str] | None) -> None:
    """Delete a run directory made by :func:`create_run_directory` (missing is fine)."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
