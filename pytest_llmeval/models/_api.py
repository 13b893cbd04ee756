"""What the API backends (``openai:``, ``anthropic:``) share: options, keys, retries, usage.

A backend subclasses :class:`ApiModel` and supplies three things: how to build
its SDK client, how to make one call, and how to read an SDK exception
(:meth:`ApiModel._classify`). Everything else lives here:

- all requests of a :meth:`ApiModel.generate` call run at once on a thread pool,
  up to a limit shared by every model that talks to the same endpoint;
- each request retries on 429, 408/409, 5xx, timeouts, connection errors and
  malformed bodies, with exponential backoff and full jitter, honouring
  ``retry-after-ms`` / ``retry-after``; the SDK's own retries are off;
- a request that still fails gets a :class:`~pytest_llmeval.errors.ModelError`
  in its slot naming the status, the number of attempts and the last error;
- token usage and cost are counted for the run summary, and reported per
  request by :meth:`ApiModel.generate_with_info` together with the latency of
  the attempt that succeeded;
- the key is read from the environment, and never appears in
  ``describe()``, ``identity()``, errors or the cache; ``api_key_env = false``
  (or ``"none"``) is a server that needs no key;
- the endpoint in the model's identity (and so in every cache key) is the one
  the requests go to: the ``base_url`` option, else the SDK's environment
  variable (``OPENAI_BASE_URL``, ``ANTHROPIC_BASE_URL``), else the SDK's default;
- with ``replicas`` the model is a fleet (:mod:`.fleet`): requests are balanced
  over the replicas, a failed replica's requests are retried on the others, and
  the identity is the fleet's name and served model instead of a URL;
- the limits hold for the whole run: each endpoint's requests in flight and a
  provider's ``retry-after`` are shared by every thread and, under xdist, by
  every worker (:mod:`pytest_llmeval.budget`).

Threads with the synchronous SDK client were measured against ``AsyncOpenAI``
on one event loop (200 calls, 200 ms latency, 32 in flight, same server):
1.77 s and 0.54 s CPU for threads, 1.92 s and 0.62 s CPU for asyncio. Threads
are also free of the "an event loop is already running" problem, so they won.
"""

from __future__ import annotations

import difflib
import os
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llmeval.budget import EndpointBudget, endpoint_budget
from pytest_llmeval.errors import ConfigError, ModelError
from pytest_llmeval.models.base import (
    Generation,
    GenerationInfo,
    GenerationOutcome,
    GenerationRequest,
    ModelBase,
    OnGeneration,
    Progress,
)
from pytest_llmeval.models.fleet import Fleet, Lease, parse_replicas, shared_fleet

OnResult = Callable[[int, GenerationOutcome], None]
"""Called as ``on_result(index, outcome)`` from a worker thread as soon as a request finishes."""

NO_KEY = frozenset({"none"})
"""``api_key_env`` values (besides ``false`` and ``null``) that mean "this server needs no key"."""

PLACEHOLDER_KEY = "no-key-needed"
"""Sent when no key is configured: the SDKs refuse to build a client without one."""

RETRYABLE_STATUS = frozenset({408, 409, 429})
"""Retried besides every 5xx (409 is the providers' "conflict, try again")."""

MAX_RETRY_AFTER = 60.0
"""A server's ``retry-after`` is honoured up to this many seconds per wait."""


_CONNECT_ERRORS = frozenset({"ConnectError", "ConnectTimeout"})
"""httpx (and httpx2) errors raised before a request was sent: the server never saw it."""


class MissingAPIKey(ConfigError):
    """The environment variable that should hold an API key is unset or empty.

    Attributes:
        env_var: the variable's name (the only thing about the key that is ever shown).
    """

    def __init__(self, ref: str, env_var: str) -> None:
        self.env_var = env_var
        super().__init__(
            f"{ref}: no API key: the environment variable {env_var} is not set. Export it "
            f"(keys are read from the environment only), name another variable with the "
            f"'api_key_env' option, or set 'api_key_env = false' (YAML: false or null) for a "
            f"local server without keys."
        )


@dataclass(frozen=True)
class Failure:
    """What went wrong with one attempt, as the retry loop needs to know it."""

    message: str
    retryable: bool
    status: int | None = None
    retry_after: float | None = None
    endpoint_failed: bool = False
    """The endpoint itself failed (refused the connection, timed out, dropped it): not the request."""
    in_flight: bool = False
    """The request had been sent when the endpoint failed, so the server may have seen it."""


_ALL_DOWN = Failure(message="every endpoint of the fleet is down", retryable=True, endpoint_failed=True)
"""The failure of a try that found no replica up (it waited for the first to come back)."""


class Usage:
    """Thread-safe counters of one model's API traffic (printed in the run summary)."""

    def __init__(self, price: dict[str, float] | None) -> None:
        self._lock = threading.Lock()
        self._price = price
        self.requests = 0
        self.attempts = 0
        self.failures = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.failover_retries = 0
        self.failover_reroutes = 0
        self.endpoints: dict[str, dict[str, int]] | None = None

    def track_endpoints(self, urls: Sequence[str]) -> None:
        """Count answers and endpoint failures per URL (fleets only)."""
        self.endpoints = {u: {"answered": 0, "failed": 0} for u in urls}

    def attempt(self) -> None:
        with self._lock:
            self.attempts += 1

    def finished(self, *, ok: bool, input_tokens: int = 0, output_tokens: int = 0) -> None:
        with self._lock:
            self.requests += 1
            self.failures += 0 if ok else 1
            self.input_tokens += input_tokens
            self.output_tokens += output_tokens

    def endpoint_result(self, url: str, *, ok: bool) -> None:
        if self.endpoints is not None:
            with self._lock:
                self.endpoints[url]["answered" if ok else "failed"] += 1

    def failover(self, *, in_flight: bool) -> None:
        """A request is retried on another replica: it was in flight there, or never got through."""
        with self._lock:
            if in_flight:
                self.failover_retries += 1
            else:
                self.failover_reroutes += 1

    def cost(self, input_tokens: int | None, output_tokens: int | None) -> float | None:
        """Dollars for one request, or None without a ``price`` or without token counts."""
        if self._price is None or input_tokens is None or output_tokens is None:
            return None
        return (input_tokens * self._price["input"] + output_tokens * self._price["output"]) / 1e6

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            d: dict[str, Any] = {
                "requests": self.requests,
                "attempts": self.attempts,
                "retries": self.attempts - self.requests,
                "failures": self.failures,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
            }
            cost = self.cost(self.input_tokens, self.output_tokens)
            if cost is not None:
                d["cost_usd"] = cost
            if self.endpoints is not None:
                d["failover_retries"] = self.failover_retries
                d["failover_reroutes"] = self.failover_reroutes
                d["endpoints"] = {u: dict(c) for u, c in self.endpoints.items()}
            return d


class _Limiter:
    """A counting semaphore for one endpoint, sized by the strictest model that uses it.

    Models join with their ``concurrency`` and leave on ``close()`` or when they
    are garbage-collected, so a model loaded once with a small limit does not
    throttle later runs in the same process.
    """

    def __init__(self) -> None:
        self._members: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
        self._busy = 0
        self._cond = threading.Condition()

    def join(self, member: object, concurrency: int) -> None:
        with self._cond:
            self._members[member] = concurrency

    def leave(self, member: object) -> None:
        with self._cond:
            self._members.pop(member, None)
            self._cond.notify_all()

    @property
    def limit(self) -> int:
        """Requests in flight allowed now: the strictest member's concurrency."""
        with self._cond:
            return min(self._members.values(), default=1)

    def __enter__(self) -> None:
        with self._cond:
            while self._busy >= min(self._members.values(), default=1):
                self._cond.wait()
            self._busy += 1

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify()


_limiters: dict[tuple[str, str], _Limiter] = {}
_limiters_lock = threading.Lock()


def provider_limiter(scheme: str, base_url: str | None) -> _Limiter:
    """The limiter shared by every model of ``scheme`` at ``base_url`` in this process."""
    key = (scheme, base_url or "default")
    with _limiters_lock:
        return _limiters.setdefault(key, _Limiter())


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    import email.utils  # only a date-valued retry-after needs it

    try:
        when = email.utils.parsedate_to_datetime(ra)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{6,})")


class ApiModel(ModelBase):
    """Base class of the API backends (see the module docstring).

    Subclasses set ``scheme``, ``default_key_env`` and implement ``_make_client``,
    ``_call`` and ``_classify``.
    """

    default_key_env = ""
    base_url_env = ""
    """The environment variable the SDK reads its endpoint from when none is passed."""
    default_base_url = ""
    """The SDK's endpoint when neither the option nor the variable is set."""
    streams_results = True
    extra_options: frozenset[str] = frozenset()
    """Options a subclass accepts besides the common ones."""

    COMMON_OPTIONS = frozenset(
        {
            "base_url",
            "api_key_env",
            "concurrency",
            "timeout",
            "max_retries",
            "retry_backoff",
            "retry_backoff_max",
            "price",
            "extra_body",
            "headers",
            "replicas",
            "endpoint_backoff",
            "endpoint_backoff_max",
        }
    )

    def __init__(self, name: str, target: str, options: dict[str, Any]) -> None:
        super().__init__(name, target, options)
        self.ref = f"{self.scheme}:{target}"
        self._check_options(options)
        self.base_url: str | None = _opt_str(options, "base_url", self.ref)
        self.endpoint = self.effective_base_url()
        self.concurrency = opt_int(options, "concurrency", 8, self.ref, minimum=1)
        self.timeout = _opt_float(options, "timeout", 60.0, self.ref)
        self.max_retries = opt_int(options, "max_retries", 6, self.ref, minimum=0)
        self.retry_backoff = _opt_float(options, "retry_backoff", 0.5, self.ref)
        self.retry_backoff_max = _opt_float(options, "retry_backoff_max", 30.0, self.ref)
        self.extra_body = _opt_dict(options, "extra_body", self.ref)
        self.headers = {str(k): str(v) for k, v in _opt_dict(options, "headers", self.ref).items()}
        self.price = _parse_price(options.get("price"), self.ref)
        self._api_key = self._resolve_key(options)
        self._usage = Usage(self.price)
        self.fleet: Fleet | None = None
        if options.get("replicas") is not None:
            self.fleet = self._make_fleet(options)
            self.endpoint = self.fleet.endpoints[0].url
            self._usage.track_endpoints([e.url for e in self.fleet.endpoints])
        else:
            for key in ("endpoint_backoff", "endpoint_backoff_max"):
                if key in options:
                    raise ConfigError(f"{self.ref}: option '{key}' applies to a fleet only; declare "
                                      f"'replicas' or drop it")
        self._limiter = provider_limiter(self.scheme, self.endpoint)
        if self.fleet is None:  # a fleet keeps its replicas' limits itself
            self._limiter.join(self, self.concurrency)
        self._budget: EndpointBudget = endpoint_budget(f"{self.scheme} {self.endpoint}")
        self._clients: dict[str, Any] = {}
        self._client_lock = threading.Lock()

    def _make_fleet(self, options: dict[str, Any]) -> Fleet:
        if self.base_url is not None:
            raise ConfigError(f"{self.ref}: options 'base_url' and 'replicas' exclude each other: list "
                              f"every endpoint under 'replicas'")
        replicas = parse_replicas(options["replicas"], default_concurrency=self.concurrency, ref=self.ref)
        backoff = _opt_float(options, "endpoint_backoff", 1.0, self.ref)
        backoff_max = _opt_float(options, "endpoint_backoff_max", 30.0, self.ref)
        return shared_fleet(replicas, scheme=self.scheme, backoff=backoff, backoff_max=backoff_max)

    # -- identity and reporting -------------------------------------------------

    def effective_base_url(self) -> str:
        """Where requests go: the option, else the SDK's variable, else its default (no trailing /).

        The SDKs read the same variable themselves; the client is built with this
        value, so the endpoint identified is the one called.
        """
        url = self.base_url or os.environ.get(self.base_url_env, "").strip() or self.default_base_url
        return url.rstrip("/")

    def identity(self) -> dict[str, Any]:
        """Scheme, model, effective endpoint (and ``extra_body`` when set: it changes answers); no key.

        The endpoint is the one requests go to (see :meth:`effective_base_url`), so
        answers recorded from one server are never replayed for another. A fleet is
        identified by its name and served model instead: its replicas serve the same
        weights, so an answer is the same whichever replica gave it, and adding or
        moving a replica keeps the cache.
        """
        ident: dict[str, Any] = {"scheme": self.scheme, "model": self.target}
        if self.fleet is not None:
            ident["fleet"] = self.name
        else:
            ident["base_url"] = self.endpoint
        if self.extra_body:
            ident["extra_body"] = self.extra_body
        return ident

    def describe(self) -> dict[str, Any]:
        """As :meth:`ModelBase.describe`, plus a fleet's replicas (recorded, not part of the identity)."""
        d = super().describe()
        if self.fleet is not None:
            d["replicas"] = [{"url": e.url, "concurrency": e.concurrency} for e in self.fleet.endpoints]
        return d

    def usage(self) -> dict[str, Any]:
        """Requests, attempts, retries, failures, tokens (and ``cost_usd`` with a ``price``)."""
        return self._usage.as_dict()

    def close(self) -> None:
        """Close the SDK clients and stop counting toward the endpoint's limit."""
        self._limiter.leave(self)
        with self._client_lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            client.close()

    # -- generation --------------------------------------------------------------

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        progress: Progress | None = None,
        on_result: OnResult | None = None,
    ) -> list[GenerationOutcome]:
        """Run every request concurrently (up to the provider's limit), in request order.

        ``on_result(index, outcome)`` is called as soon as each request finishes, so a
        caller (the cache) can keep finished work even if the process dies mid-batch;
        ``progress(1)`` likewise.
        """
        each = None if on_result is None else (lambda i, g: on_result(i, g.outcome))
        return [g.outcome for g in self.generate_with_info(requests, progress, each)]

    def generate_with_info(
        self,
        requests: Sequence[GenerationRequest],
        progress: Progress | None = None,
        on_result: OnGeneration | None = None,
    ) -> list[Generation]:
        """As :meth:`generate`, with each request's latency, tokens and cost.

        ``latency_s`` is the wall time of the attempt that succeeded (the HTTP call,
        not the wait for a concurrency slot, earlier failed attempts or backoff);
        tokens are the provider's ``usage``; ``cost_usd`` needs the ``price`` option.
        A failed request carries an empty :class:`GenerationInfo`.
        """
        results: list[Generation] = [Generation(ModelError("not run"), GenerationInfo())] * len(requests)
        if not requests:
            return results
        from concurrent.futures import ThreadPoolExecutor  # kept off the import path of cached runs

        if self.fleet is None:
            self._limiter.join(self, self.concurrency)  # again, in case close() came before

        def run(i: int) -> None:
            generation = self._one(requests[i])
            results[i] = generation
            if on_result is not None:
                on_result(i, generation)
            if progress is not None:
                progress(1)

        capacity = self.fleet.capacity if self.fleet is not None else self.concurrency
        workers = min(capacity, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=self.scheme) as pool:
            futures = [pool.submit(run, i) for i in range(len(requests))]
            try:
                for f in futures:
                    f.result()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        return results

    def _one(self, request: GenerationRequest) -> Generation:
        """One request with retries (and failover in a fleet); returns the text or a ModelError."""
        attempts = 0
        while True:
            attempts += 1
            self._usage.attempt()
            if self.fleet is not None:
                outcome, budget = self._attempt_fleet(request)
            else:
                outcome, budget = self._attempt_single(request)
            if isinstance(outcome, Generation):
                return outcome
            failure = outcome
            if failure.retry_after is not None and budget is not None:
                budget.defer(min(failure.retry_after, MAX_RETRY_AFTER))
            if not failure.retryable or attempts > self.max_retries:
                self._usage.finished(ok=False)
                return Generation(ModelError(self._give_up_message(failure, attempts)), GenerationInfo())
            if self.fleet is not None and failure.endpoint_failed:
                if failure is not _ALL_DOWN:
                    self._usage.failover(in_flight=failure.in_flight)
                continue  # the fleet routes around the failed replica (or waited for one to return)
            if failure.retry_after is None:
                time.sleep(self._backoff(attempts))
            # with a retry-after, the shared "not before" time makes every request wait

    def _attempt_single(self, request: GenerationRequest) -> tuple[Generation | Failure, EndpointBudget]:
        """One try at the model's one endpoint, within its in-process and run-wide limits."""
        with self._limiter, self._budget.acquire(self._limiter.limit):
            self._budget.wait()
            return self._call_timed(self._get_client(self.endpoint), request), self._budget

    def _attempt_fleet(
        self, request: GenerationRequest
    ) -> tuple[Generation | Failure, EndpointBudget | None]:
        """One try on the fleet's least loaded replica; a replica failure takes that replica out."""
        assert self.fleet is not None
        lease: Lease | None = self.fleet.acquire()
        if lease is None:
            return _ALL_DOWN, None
        outcome: Generation | Failure = Failure(message="interrupted", retryable=False)
        try:
            outcome = self._call_timed(self._get_client(lease.url), request)
        finally:
            error = outcome.message if isinstance(outcome, Failure) and outcome.endpoint_failed else None
            self.fleet.release(lease, ok=isinstance(outcome, Generation), endpoint_error=error)
        self._usage.endpoint_result(lease.url, ok=isinstance(outcome, Generation))
        return outcome, lease.endpoint.budget

    def _call_timed(self, client: Any, request: GenerationRequest) -> Generation | Failure:
        """One HTTP call: the generation with its info, or the classified failure (never raises)."""
        try:
            start = time.perf_counter()
            text, tokens_in, tokens_out = self._call(client, request)
            latency = time.perf_counter() - start
        except Exception as exc:  # classified here; nothing escapes a worker
            return self._classify(exc)
        self._usage.finished(ok=True, input_tokens=tokens_in or 0, output_tokens=tokens_out or 0)
        info = GenerationInfo(latency_s=latency, input_tokens=tokens_in, output_tokens=tokens_out,
                              cost_usd=self._usage.cost(tokens_in, tokens_out))
        return Generation(text, info)

    def _give_up_message(self, failure: Failure, attempts: int) -> str:
        status = f"HTTP {failure.status}" if failure.status else "no HTTP status"
        tried = f"after {attempts} attempt{'s' if attempts > 1 else ''}"
        why = "" if failure.retryable else " (not retryable)"
        if self.fleet is not None and (failure is _ALL_DOWN or (failure.endpoint_failed
                                                                  and self.fleet.all_down())):
            n = len(self.fleet.endpoints)
            return self.redact(
                f"{self.ref} (fleet '{self.name}'): request failed {tried}: all {n} endpoints are down: "
                f"{self.fleet.describe_down()}. Check that the servers are running and reachable, or "
                f"raise 'max_retries' / 'endpoint_backoff_max' to wait longer for them")
        return self.redact(
            f"{self.ref}: request failed {tried}{why}; last error: {status}: {failure.message}")

    def _backoff(self, attempt: int) -> float:
        """Full jitter over an exponential cap (a ``retry-after`` is waited for through the budget)."""
        cap = min(self.retry_backoff_max, self.retry_backoff * 2 ** (attempt - 1))
        return random.uniform(0, cap)

    def _get_client(self, base_url: str) -> Any:
        """The SDK client for ``base_url``, built on first use: a fully cached run never imports the SDK."""
        with self._client_lock:
            client = self._clients.get(base_url)
            if client is None:
                client = self._clients[base_url] = self._make_client(self._api_key or PLACEHOLDER_KEY,
                                                                     base_url)
            return client

    def redact(self, text: str) -> str:
        """``text`` with the key (and anything that looks like a provider key) masked."""
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return _KEYLIKE.sub("sk-***", text)

    # -- for subclasses ----------------------------------------------------------

    def _make_client(self, api_key: str, base_url: str) -> Any:
        """Build the SDK client at ``base_url`` with ``max_retries=0`` and ``timeout=self.timeout``."""
        raise NotImplementedError

    def _call(self, client: Any, request: GenerationRequest) -> tuple[str, int | None, int | None]:
        """One API call: (text, input tokens, output tokens; None when not reported). Raise on failure."""
        raise NotImplementedError

    def _classify(self, exc: Exception) -> Failure:
        """Turn an exception from :meth:`_call` into a :class:`Failure`."""
        raise NotImplementedError

    # -- configuration -------------------------------------------------------------

    def _check_options(self, options: dict[str, Any]) -> None:
        known = self.COMMON_OPTIONS | self.extra_options
        for key in options:
            if key == "api_key":
                raise ConfigError(
                    f"{self.ref}: option 'api_key' is not accepted: keys are read from the "
                    f"environment only. Export the key as {self.default_key_env} or name the "
                    f"variable with 'api_key_env'."
                )
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(
                    f"{self.ref}: unknown option '{key}'.{hint} "
                    f"Known options: {', '.join(sorted(known))}."
                )

    def _resolve_key(self, options: dict[str, Any]) -> str | None:
        """The key from the environment, or None when ``api_key_env`` is false, null or "none"."""
        env = options.get("api_key_env", self.default_key_env)
        if env is None or env is False or (isinstance(env, str) and env.strip().lower() in NO_KEY):
            return None
        if not isinstance(env, str) or not env.strip():
            raise ConfigError(
                f"{self.ref}: option 'api_key_env' must be the name of an environment variable "
                f"holding the key, or false (TOML, YAML), null (YAML) or \"none\" for a server that "
                f"needs no key; got {env!r}"
            )
        env = env.strip()
        key = os.environ.get(env, "").strip()
        if not key:
            raise MissingAPIKey(self.ref, env)
        return key


def status_failure(status: int, message: str, headers: Any) -> Failure:
    """A Failure for an HTTP error status (retryable: 408, 409, 429 and every 5xx)."""
    return Failure(
        message=message,
        status=status,
        retryable=status in RETRYABLE_STATUS or status >= 500,
        retry_after=parse_retry_after(headers),
    )


def sdk_failure(exc: Exception, sdk: Any) -> Failure:
    """Classify an exception from the ``openai`` or ``anthropic`` SDK (they share error names).

    Status errors retry on 408/409/429/5xx; timeouts and connection errors (resets
    included) retry; a body that is not valid JSON (``ValueError`` while parsing)
    retries too, since it is usually a truncated reply. Anything else is a bug or a
    bad request and does not retry.
    """
    if isinstance(exc, sdk.APIStatusError):
        return status_failure(exc.status_code, str(exc.message), exc.response.headers)
    if isinstance(exc, (sdk.APITimeoutError, sdk.APIConnectionError)):
        cause = exc.__cause__ or exc.__context__
        sent = cause is None or type(cause).__name__ not in _CONNECT_ERRORS
        if isinstance(exc, sdk.APITimeoutError):
            return Failure(message=f"timed out ({exc})", retryable=True, endpoint_failed=True, in_flight=sent)
        detail = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        return Failure(message=f"connection error{detail}", retryable=True, endpoint_failed=True,
                       in_flight=sent)
    if isinstance(exc, ValueError):
        return Failure(
            message=f"malformed response body ({type(exc).__name__}: {exc})", retryable=True
        )
    return Failure(message=f"{type(exc).__name__}: {exc}", retryable=False)


def _opt_str(options: dict[str, Any], key: str, ref: str) -> str | None:
    v = options.get(key)
    if v is not None and not isinstance(v, str):
        raise ConfigError(f"{ref}: option '{key}' must be a string, got {v!r}")
    return v


def opt_int(options: dict[str, Any], key: str, default: int, ref: str, *, minimum: int) -> int:
    v = options.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"{ref}: option '{key}' must be an integer >= {minimum}, got {v!r}")
    return v


def _opt_float(options: dict[str, Any], key: str, default: float, ref: str) -> float:
    v = options.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
        raise ConfigError(f"{ref}: option '{key}' must be a number of seconds >= 0, got {v!r}")
    return float(v)


def _opt_dict(options: dict[str, Any], key: str, ref: str) -> dict[str, Any]:
    v = options.get(key) or {}
    if not isinstance(v, dict):
        raise ConfigError(f"{ref}: option '{key}' must be a mapping, got {v!r}")
    return dict(v)


def _parse_price(price: Any, ref: str) -> dict[str, float] | None:
    """``{input: $/1M tokens, output: $/1M tokens}`` -> floats, or None when absent."""
    if price is None:
        return None
    if (
        not isinstance(price, dict)
        or set(price) != {"input", "output"}
        or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
            for v in price.values()
        )
    ):
        raise ConfigError(
            f"{ref}: option 'price' must be {{input: <$ per 1M input tokens>, "
            f"output: <$ per 1M output tokens>}}, got {price!r}"
        )
    return {"input": float(price["input"]), "output": float(price["output"])}
