"""The loopback fake provider server: wire formats, backlog, faults and bounded shutdown."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from pytest_llmeval.testing.fake_server import FakeLLMServer, FakeRequest, Faults


def post(url: str, body: dict[str, Any], timeout: float = 10) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_openai_wire_format_with_usage_stop_and_length() -> None:
    with FakeLLMServer(responder=lambda r: "one two three four\nfive") as server:
        status, reply = post(
            f"{server.openai_base_url}/chat/completions",
            {
                "model": "m",
                "messages": [{"role": "user", "content": "a b"}],
                "stop": ["\n"],
                "max_tokens": 2,
            },
        )
    assert status == 200 and reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["content"] == "one two"
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"] == {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}


def test_anthropic_wire_format_and_request_helpers() -> None:
    seen: list[FakeRequest] = []

    def responder(request: FakeRequest) -> str:
        seen.append(request)
        return "ok"

    with FakeLLMServer(responder=responder) as server:
        status, reply = post(
            f"{server.anthropic_base_url}/v1/messages",
            {
                "model": "c",
                "max_tokens": 5,
                "system": "sys",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
            },
        )
    assert status == 200 and reply["type"] == "message"
    assert reply["content"] == [{"type": "text", "text": "ok"}]
    assert reply["usage"] == {"input_tokens": 3, "output_tokens": 1}
    assert (seen[0].api, seen[0].system, seen[0].prompt) == ("anthropic", "sys", "hi there")


def test_error_bodies_follow_each_provider() -> None:
    with FakeLLMServer(faults=Faults(script=["429", "500"], retry_after=1.5)) as server:
        s1, b1 = post(f"{server.openai_base_url}/chat/completions", {"model": "m", "messages": []})
        s2, b2 = post(f"{server.anthropic_base_url}/v1/messages", {"model": "m", "messages": []})
    assert (s1, b1["error"]["type"]) == (429, "rate_limit_error")
    assert (s2, b2["type"], b2["error"]["type"]) == (500, "error", "api_error")


def test_backlog_takes_many_simultaneous_clients() -> None:
    assert FakeLLMServer.request_queue_size >= 256
    results: list[int] = []
    lock = threading.Lock()
    with FakeLLMServer(latency=0.2) as server:

        def client() -> None:
            status, _ = post(
                f"{server.openai_base_url}/chat/completions",
                {"model": "m", "messages": [{"role": "user", "content": "x"}]},
            )
            with lock:
                results.append(status)

        threads = [threading.Thread(target=client) for _ in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert server.max_in_flight > 32
    assert results == [200] * 64


def test_close_ends_hung_requests() -> None:
    errors: list[BaseException] = []
    server = FakeLLMServer(faults=Faults(rate_hang=1.0, hang_seconds=60)).start()

    def client() -> None:
        try:
            post(
                f"{server.openai_base_url}/chat/completions",
                {"model": "m", "messages": []},
                timeout=30,
            )
        except Exception as exc:
            errors.append(exc)

    t = threading.Thread(target=client)
    t.start()
    while server.count == 0:
        time.sleep(0.01)
    start = time.monotonic()
    server.close()
    t.join(timeout=10)
    assert not t.is_alive() and time.monotonic() - start < 5
    assert errors  # the hung client got a closed connection, not a reply


def test_bad_fault_plans_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        Faults(script=["404"])
    with pytest.raises(ValueError, match="more than 1"):
        Faults(rate_429=0.7, rate_500=0.5)


def test_stats_endpoint_reports_counters() -> None:
    with FakeLLMServer() as server:
        post(f"{server.openai_base_url}/chat/completions", {"model": "m", "messages": []})
        with urllib.request.urlopen(f"{server.url}/_fake/stats", timeout=10) as resp:
            stats = json.loads(resp.read())
    assert stats == {"count": 1, "outcomes": {"ok": 1}, "max_in_flight": 1}


def test_the_log_shows_which_key_each_request_carried() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 5}
    with FakeLLMServer() as server:
        for path, headers in (("/v1/chat/completions", {"authorization": "Bearer sk-a"}),
                              ("/v1/messages", {"x-api-key": "sk-b"}),
                              ("/v1/messages", {})):
            req = urllib.request.Request(server.url + path, data=json.dumps(body).encode(),
                                         headers={"content-type": "application/json", **headers})
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200
        keys = [r.api_key for r in server.log]
    assert keys == ["sk-a", "sk-b", None]
