"""A loopback HTTP server that speaks the OpenAI and Anthropic wire formats.

It lets tests (ours and users') drive the real ``openai`` and ``anthropic``
SDKs without touching the internet: ``POST /v1/chat/completions`` answers in
the Chat Completions format and ``POST /v1/messages`` in the Messages format,
both with ``usage``. Behaviour is scriptable: a latency, a responder that
writes the reply text, and injected faults (429 with ``retry-after``, 500,
a hang past the client's timeout, a malformed JSON body, a connection reset).

Example::

    with FakeLLMServer(latency=0.2, responder=lambda r: r.prompt.upper()) as server:
        model = load_model("openai:fake", options={"base_url": server.openai_base_url})
        ...
        assert server.count == 3

Everything the server does is bounded: waits (latency, hangs) end as soon as
the server closes, and closing shuts down every open connection.

For fleets of replicas, :meth:`FakeLLMServer.kill` makes a server die midway
like a crashed replica: it stops listening (new connections are refused) and
drops every request in flight without an answer; ``kill_when`` does it from
inside the server at a chosen moment (say, once it has eight requests in
flight). ``max_in_flight`` and ``answered`` are what a test checks a balancer
or a concurrency limit against.
"""

from __future__ import annotations

import json
import math
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Api = Literal["openai", "anthropic"]
STATS_PATH = "/_fake/stats"
FAULTS = ("429", "500", "hang", "malformed", "reset")
"""The fault names a fault script or a fault function may return (``None`` = answer normally)."""


@dataclass
class FakeRequest:
    """One request as the server received it, handed to responders and kept in the log.

    Attributes:
        api: ``"openai"`` or ``"anthropic"``, from the path.
        body: the parsed JSON body, as the SDK sent it.
        headers: request headers (lower-case names).
        index: arrival order, from 0.
        received_at: ``time.monotonic()`` at arrival.
        fault: the fault injected into this request, or ``None``.
    """

    api: Api
    body: dict[str, Any]
    headers: dict[str, str]
    index: int
    received_at: float
    fault: str | None = None

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def api_key(self) -> str | None:
        """The key the client sent (``x-api-key`` or a bearer token), or None when it sent none."""
        return _key_from(self.api, self.headers)

    @property
    def messages(self) -> list[dict[str, str]]:
        """Chat messages with their content flattened to text (system messages excluded)."""
        out = []
        for m in self.body.get("messages", []):
            if m.get("role") == "system":
                continue
            out.append({"role": str(m.get("role", "user")), "content": _text_of(m.get("content"))})
        return out

    @property
    def system(self) -> str | None:
        """The system prompt: Anthropic's ``system`` field, or OpenAI's system messages."""
        if self.api == "anthropic":
            s = self.body.get("system")
            return None if s is None else _text_of(s)
        parts = [
            _text_of(m.get("content"))
            for m in self.body.get("messages", [])
            if m.get("role") == "system"
        ]
        return "\n\n".join(parts) if parts else None

    @property
    def prompt(self) -> str:
        """The text of the last user message (what a simple responder answers)."""
        for m in reversed(self.messages):
            if m["role"] == "user":
                return m["content"]
        return ""


def _text_of(content: Any) -> str:
    """Message content as text: a string, or the text of a list of content blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content)


Responder = Callable[[FakeRequest], str]
FaultFn = Callable[[FakeRequest], str | None]


def echo_responder(request: FakeRequest) -> str:
    """The default responder: ``"echo: <last user message>"``."""
    return f"echo: {request.prompt}"


@dataclass
class Faults:
    """Which faults to inject, by script then by rate.

    Attributes:
        script: faults for the first requests in arrival order (``"429"``, ``"500"``,
            ``"hang"``, ``"malformed"``, ``"reset"`` or ``None`` for a normal answer);
            after the script runs out, the rates apply.
        rate_429, rate_500, rate_hang, rate_malformed, rate_reset: probability of each
            fault per request (drawn from a generator seeded with ``seed``).
        retry_after: seconds a 429 asks the client to wait; sent both as
            ``retry-after`` (whole seconds, rounded up) and ``retry-after-ms``.
        hang_seconds: how long a hung request stays silent (ends early when the server closes).
    """

    script: Sequence[str | None] = ()
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_hang: float = 0.0
    rate_malformed: float = 0.0
    rate_reset: float = 0.0
    retry_after: float = 0.05
    hang_seconds: float = 30.0
    seed: int = 0
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for f in self.script:
            if f is not None and f not in FAULTS:
                raise ValueError(f"unknown fault {f!r} in script; expected one of {FAULTS} or None")
        total = (
            self.rate_429 + self.rate_500 + self.rate_hang + self.rate_malformed + self.rate_reset
        )
        if total > 1.0:
            raise ValueError(f"fault rates add up to {total:.2f}, more than 1")
        self._rng = random.Random(self.seed)

    def decide(self, request: FakeRequest) -> str | None:
        """The fault for the ``request.index``-th request (call under the server's lock)."""
        if request.index < len(self.script):
            return self.script[request.index]
        u = self._rng.random()
        for name, rate in (
            ("429", self.rate_429),
            ("500", self.rate_500),
            ("hang", self.rate_hang),
            ("malformed", self.rate_malformed),
            ("reset", self.rate_reset),
        ):
            if u < rate:
                return name
            u -= rate
        return None


class _Handler(BaseHTTPRequestHandler):
    """Serves one connection (keep-alive: many requests) for :class:`FakeLLMServer`."""

    protocol_version = "HTTP/1.1"
    server: FakeLLMServer
    timeout = 15.0  # idle keep-alive connections close after this many seconds

    def setup(self) -> None:
        super().setup()
        self.server._track_connection(self.connection, add=True)

    def finish(self) -> None:
        self.server._track_connection(self.connection, add=False)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence per-request logging (the server keeps its own log)."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        """``GET /_fake/stats``: the counters, for a server running in another process."""
        if self.path.split("?", 1)[0] != STATS_PATH:
            self._send_json(404, {"error": {"message": f"no route for {self.path}"}})
            return
        self._send_json(200, self.server.stats())

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        srv = self.server
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        path = self.path.split("?", 1)[0].rstrip("/")
        api: Api | None = (
            "openai"
            if path.endswith("/chat/completions")
            else "anthropic"
            if path.endswith("/messages")
            else None
        )
        if api is None:
            self._send_json(
                404, {"error": {"message": f"no route for {path}", "type": "not_found"}}
            )
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_error(api, 400, "invalid_request_error", "request body is not JSON")
            return
        if body.get("stream"):
            self._send_error(api, 400, "invalid_request_error", "FakeLLMServer does not stream")
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        if srv.api_key is not None and _key_from(api, headers) != srv.api_key:
            self._send_error(api, 401, "authentication_error", "invalid API key")
            return
        request = srv._register(api, body, headers)
        with srv._in_flight():
            self._serve(request)

    def _serve(self, request: FakeRequest) -> None:
        srv = self.server
        if srv.killed:  # a dead replica answers nothing
            self.close_connection = True
            return
        fault = request.fault
        if fault in ("reset", "hang", "malformed"):
            srv._count_outcome(fault)
        if fault == "reset":
            # SO_LINGER 0 then close: the peer gets a TCP RST instead of a response.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if fault == "hang":
            srv._closing.wait(srv._hang_seconds())
            self.close_connection = True
            return
        if fault == "429":
            ra = srv._retry_after()
            self._send_error(
                request.api,
                429,
                "rate_limit_error",
                "rate limited (fake)",
                {"retry-after": str(max(1, math.ceil(ra))), "retry-after-ms": str(int(ra * 1000))},
            )
            return
        if fault == "500":
            kind = "server_error" if request.api == "openai" else "api_error"
            self._send_error(request.api, 500, kind, "internal error (fake)")
            return
        if srv.latency > 0 and srv._closing.wait(srv.latency):
            self.close_connection = True
            return
        try:
            text = srv.responder(request)
        except Exception as exc:  # a responder bug must surface, not hang the client
            srv.responder_errors.append(exc)
            self._send_error(request.api, 500, "api_error", f"responder raised {exc!r}")
            return
        payload = (
            _openai_reply(request, text)
            if request.api == "openai"
            else _anthropic_reply(request, text)
        )
        if fault == "malformed":
            blob = json.dumps(payload).encode()
            self._send_raw(200, blob[: len(blob) // 2], "application/json")
            return
        srv._count_outcome("ok")  # before the write: a client that has its reply sees it counted
        if not self._send_json(200, payload):
            srv._count_outcome("ok", -1)  # the reply never got out (a kill, or the client gave up)

    def _send_error(
        self, api: Api, status: int, kind: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        self.server._count_outcome(str(status))
        body = (
            {"error": {"message": message, "type": kind, "code": None}}
            if api == "openai"
            else {"type": "error", "error": {"type": kind, "message": message}}
        )
        self._send_json(status, body, headers)

    def _send_json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> bool:
        return self._send_raw(status, json.dumps(body).encode(), "application/json", headers)

    def _send_raw(
        self, status: int, blob: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> bool:
        """Write a reply; False when the connection broke first (the client timed out, or a kill)."""
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(blob)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(blob)
            self.wfile.flush()
        except OSError:  # the client gave up (timeout) before the reply
            self.close_connection = True
            return False
        return True


def _key_from(api: Api, headers: dict[str, str]) -> str | None:
    """The key a request carries: ``x-api-key`` (older Anthropic SDKs) or a bearer token."""
    if api == "anthropic" and "x-api-key" in headers:
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


def _count_tokens(text: str) -> int:
    """A stand-in tokenizer: whitespace-separated words."""
    return len(text.split())


def _apply_limits(text: str, stops: Sequence[str], max_tokens: int | None) -> tuple[str, bool]:
    """Cut ``text`` at the first stop sequence and at ``max_tokens`` words; say if it was cut."""
    for s in stops:
        if s and s in text:
            text = text[: text.index(s)]
    words = text.split(" ")
    if max_tokens is not None and _count_tokens(text) > max_tokens:
        return " ".join(words[:max_tokens]), True
    return text, False


def _prompt_tokens(request: FakeRequest) -> int:
    return sum(_count_tokens(m["content"]) for m in request.messages) + _count_tokens(
        request.system or ""
    )


def _openai_reply(request: FakeRequest, text: str) -> dict[str, Any]:
    body = request.body
    stop = body.get("stop") or []
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    text, truncated = _apply_limits(text, [stop] if isinstance(stop, str) else stop, max_tokens)
    p, c = _prompt_tokens(request), _count_tokens(text)
    return {
        "id": f"chatcmpl-fake-{request.index}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "length" if truncated else "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
    }


def _anthropic_reply(request: FakeRequest, text: str) -> dict[str, Any]:
    body = request.body
    text, truncated = _apply_limits(text, body.get("stop_sequences") or [], body.get("max_tokens"))
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    stop_reason = "max_tokens" if truncated else "end_turn"
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool":
        # A forced tool call: a JSON-object reply becomes the tool's input, as a real
        # model would produce; anything else stays text, like a model ignoring the tool.
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            content = [
                {
                    "type": "tool_use",
                    "id": f"toolu_fake_{request.index}",
                    "name": choice.get("name", "tool"),
                    "input": obj,
                }
            ]
            stop_reason = "tool_use"
    return {
        "id": f"msg_fake_{request.index}",
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": _prompt_tokens(request), "output_tokens": _count_tokens(text)},
    }


class FakeLLMServer(ThreadingHTTPServer):
    """A loopback server for ``/v1/chat/completions`` and ``/v1/messages`` (see module docs).

    Args:
        latency: seconds each normal (and malformed) reply waits before it is sent.
        responder: request -> reply text; default :func:`echo_responder`.
        faults: a :class:`Faults` plan, or a function request -> fault name or ``None``.
        api_key: when set, requests without this key get a 401 (checks the SDK sent it).
        kill_when: called with the server each time a request starts being served; when it
            returns true the server is :meth:`kill`-ed (that request is dropped too).

    Attributes:
        log: every routed request, in arrival order.
        outcomes: counts of replies by kind (``"ok"``, ``"429"``, ``"500"``, ...).
        max_in_flight: the most requests served at the same time (shows real concurrency).
        responder_errors: exceptions the responder raised (each also answered with a 500).
    """

    daemon_threads = True
    request_queue_size = 1024  # listen backlog: the stdlib default of 5 resets connections
    allow_reuse_address = True

    def __init__(
        self,
        *,
        latency: float = 0.0,
        responder: Responder | None = None,
        faults: Faults | FaultFn | None = None,
        api_key: str | None = None,
        kill_when: Callable[[FakeLLMServer], bool] | None = None,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.kill_when = kill_when
        self._killed = threading.Event()
        self._closed = False
        self.latency = latency
        self.responder: Responder = responder or echo_responder
        self.faults = faults
        self.api_key = api_key
        self.log: list[FakeRequest] = []
        self.outcomes: Counter[str] = Counter()
        self.responder_errors: list[BaseException] = []
        self.max_in_flight = 0
        self._current = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for the OpenAI SDK (it appends ``/chat/completions``)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for the Anthropic SDK (it appends ``/v1/messages``)."""
        return self.url

    @property
    def count(self) -> int:
        """How many requests reached a provider route."""
        with self._lock:
            return len(self.log)

    @property
    def answered(self) -> int:
        """How many requests got a normal (200) reply, fully written to the client."""
        with self._lock:
            return self.outcomes["ok"]

    @property
    def in_flight(self) -> int:
        """Requests being served right now."""
        with self._lock:
            return self._current

    @property
    def killed(self) -> bool:
        """Whether :meth:`kill` has run."""
        return self._killed.is_set()

    def stats(self) -> dict[str, Any]:
        """Request count, outcomes and peak concurrency (also served at ``GET /_fake/stats``).

        ``outcomes["ok"]`` is :attr:`answered`.
        """
        with self._lock:
            return {
                "count": len(self.log),
                "outcomes": dict(self.outcomes),
                "max_in_flight": self.max_in_flight,
            }

    def reset_stats(self) -> None:
        """Forget the log and counters (a fault script starts over: it goes by arrival index)."""
        with self._lock:
            self.log.clear()
            self.outcomes.clear()
            self.max_in_flight = 0

    def start(self) -> FakeLLMServer:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="FakeLLMServer",
                daemon=True,
            )
            self._thread.start()
        return self

    def kill(self) -> None:
        """Die like a crashed replica: refuse new connections, drop every request in flight unanswered.

        The listening socket is closed (a client's connect is refused), waits end
        at once and every open connection is shut down, so the requests in flight
        get no reply. The counters stay readable. Safe to call twice, and from a
        handler thread (``kill_when`` does).
        """
        with self._lock:
            if self._killed.is_set():
                return
            self._killed.set()
            self._closing.set()
        self._stop_serving()

    def close(self) -> None:
        """Stop serving, end every wait and close every open connection. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._closing.set()
        self._stop_serving()

    def _stop_serving(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self.shutdown()
            if thread is not threading.current_thread():
                thread.join(timeout=5)
        self.server_close()
        with self._lock:
            conns = list(self._connections)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _retry_after(self) -> float:
        return self.faults.retry_after if isinstance(self.faults, Faults) else 0.05

    def _hang_seconds(self) -> float:
        return self.faults.hang_seconds if isinstance(self.faults, Faults) else 30.0

    def _register(self, api: Api, body: dict[str, Any], headers: dict[str, str]) -> FakeRequest:
        with self._lock:
            request = FakeRequest(api, body, headers, len(self.log), time.monotonic())
            self.log.append(request)
            if isinstance(self.faults, Faults):
                request.fault = self.faults.decide(request)
        if callable(self.faults) and not isinstance(self.faults, Faults):
            fault = self.faults(request)
            if fault is not None and fault not in FAULTS:
                raise ValueError(
                    f"fault function returned {fault!r}; expected one of {FAULTS} or None"
                )
            request.fault = fault
        return request

    def _count_outcome(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.outcomes[kind] += n

    @contextmanager
    def _in_flight(self) -> Iterator[None]:
        with self._lock:
            self._current += 1
            self.max_in_flight = max(self.max_in_flight, self._current)
        try:
            if self.kill_when is not None and not self._killed.is_set() and self.kill_when(self):
                self.kill()
            yield
        finally:
            with self._lock:
                self._current -= 1

    def _track_connection(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve until interrupted: ``python -m pytest_llmeval.testing.fake_server --latency 0.2``.

    Prints ``READY <url>`` once listening, so a script can start it in another
    process (the benchmarks do, to keep the server's CPU off the client's GIL).
    """
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per reply")
    for name in ("429", "500", "hang", "malformed", "reset"):
        parser.add_argument(
            f"--rate-{name}",
            type=float,
            default=0.0,
            help=f"fraction of requests answered with the '{name}' fault",
        )
    parser.add_argument("--retry-after", type=float, default=0.05, help="seconds a 429 asks for")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    faults = Faults(
        rate_429=args.rate_429,
        rate_500=args.rate_500,
        rate_hang=args.rate_hang,
        rate_malformed=args.rate_malformed,
        rate_reset=args.rate_reset,
        retry_after=args.retry_after,
        seed=args.seed,
    )
    with FakeLLMServer(latency=args.latency, faults=faults) as server:
        print(f"READY {server.url}", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
