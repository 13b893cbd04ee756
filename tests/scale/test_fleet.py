"""Fleets through the real openai SDK against loopback fake replicas: failover, counts, identity."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack

import pytest

from pytest_llmeval.errors import ConfigError, ModelError
from pytest_llmeval.models import GenerationRequest, load_model
from pytest_llmeval.report.terminal import failover_line
from pytest_llmeval.testing.fake_server import FakeLLMServer, Faults

pytest.importorskip("openai")


def fleet_model(servers: list[FakeLLMServer], name: str = "fleet", **options: object):
    opts: dict[str, object] = {"api_key_env": False, "replicas": [s.openai_base_url for s in servers],
                               "concurrency": 4, "endpoint_backoff": 0.1, "retry_backoff": 0.01}
    opts.update(options)
    return load_model("openai:served-model", name=name, options=opts)


def test_a_replica_killed_midway_loses_no_request_and_the_retries_are_counted() -> None:
    n = 200
    with ExitStack() as stack:
        fast = [stack.enter_context(FakeLLMServer(latency=0.005)) for _ in range(2)]
        slow = stack.enter_context(FakeLLMServer(latency=0.03))
        # from its 25th request on it stops answering, and dies once it holds a full load of them:
        # every request it drops was sent and received, none was in transit
        doomed = stack.enter_context(FakeLLMServer(
            latency=0.005, faults=lambda r: "hang" if r.index >= 24 else None,
            kill_when=lambda s: s.count >= 28 and s.in_flight >= 4))
        servers = [fast[0], doomed, slow, fast[1]]
        model = fleet_model(servers)
        out = model.generate([GenerationRequest(f"case {i}") for i in range(n)])
        usage = model.usage()
    assert out == [f"echo: case {i}" for i in range(n)]  # every case, once, in order
    assert doomed.killed
    dropped = doomed.count - doomed.answered
    assert dropped == 4
    # the only requests served twice are the ones the killed replica held, and the run says how many
    assert usage["failover_retries"] == dropped
    assert sum(s.count for s in servers) == n + usage["failover_retries"]
    assert sum(s.answered for s in servers) == n
    assert {u: c["answered"] for u, c in usage["endpoints"].items()} == {
        s.openai_base_url: s.answered for s in servers}
    assert usage["endpoints"][doomed.openai_base_url]["failed"] == dropped + usage["failover_reroutes"]
    # least outstanding requests: the slow replica takes fewer than the fast ones
    assert slow.answered < min(s.answered for s in fast)
    assert doomed.answered == 24
    assert all(s.max_in_flight <= 4 for s in servers)


def test_when_every_replica_is_down_each_request_fails_naming_them_after_its_retries() -> None:
    with FakeLLMServer() as a, FakeLLMServer() as b:
        a.kill()
        b.kill()
        model = fleet_model([a, b], max_retries=3, endpoint_backoff=0.02, endpoint_backoff_max=0.05)
        start = time.monotonic()
        out = model.generate([GenerationRequest("q1"), GenerationRequest("q2")])
        elapsed = time.monotonic() - start
        usage = model.usage()
    assert elapsed < 10
    for err in out:
        assert isinstance(err, ModelError)
        text = str(err)
        assert "fleet 'fleet'" in text and "failed after 4 attempts" in text
        assert "all 2 endpoints are down" in text
        assert a.openai_base_url in text and b.openai_base_url in text
        assert "ConnectError" in text
    assert usage["failures"] == 2 and usage["attempts"] == 8
    assert usage["failover_retries"] == 0  # nothing was ever sent


def test_a_timed_out_replica_is_taken_out_and_its_request_answered_elsewhere() -> None:
    with FakeLLMServer(faults=Faults(script=["hang"], hang_seconds=5)) as hung, FakeLLMServer() as ok:
        model = fleet_model([hung, ok], timeout=0.3, concurrency=1)
        out = model.generate([GenerationRequest("only")])
        usage = model.usage()
    assert out == ["echo: only"]
    assert usage["failover_retries"] == 1  # it was in flight on the hung replica
    assert hung.count == 1 and ok.answered == 1


def test_a_retry_after_on_one_replica_sends_the_retry_to_another_at_once() -> None:
    with FakeLLMServer(faults=Faults(script=["429"], retry_after=2.0)) as limited, FakeLLMServer() as ok:
        model = fleet_model([limited, ok], concurrency=1)
        start = time.monotonic()
        out = model.generate([GenerationRequest("x")])
        elapsed = time.monotonic() - start
        usage = model.usage()
    assert out == ["echo: x"] and elapsed < 1.5
    assert limited.count == 1 and ok.count == 1
    assert usage["failover_retries"] == 0 and usage["retries"] == 1


def test_a_fleet_is_identified_by_its_name_and_served_model_not_its_urls() -> None:
    one = load_model("openai:m", name="pool", options={"api_key_env": False,
                                                       "replicas": ["http://h1:8000/v1", "http://h2:8000/v1"]})
    moved = load_model("openai:m", name="pool", options={"api_key_env": False,
                                                         "replicas": [{"url": "http://h3:9000/v1",
                                                                       "concurrency": 2}]})
    other_name = load_model("openai:m", name="pool-b", options={"api_key_env": False,
                                                               "replicas": ["http://h1:8000/v1"]})
    other_model = load_model("openai:m2", name="pool", options={"api_key_env": False,
                                                               "replicas": ["http://h1:8000/v1"]})
    assert one.fingerprint() == moved.fingerprint()
    assert len({one.fingerprint(), other_name.fingerprint(), other_model.fingerprint()}) == 3
    assert "h1" not in json.dumps(one.identity())
    assert one.describe()["replicas"] == [{"url": "http://h1:8000/v1", "concurrency": 8},
                                          {"url": "http://h2:8000/v1", "concurrency": 8}]
    # outside a fleet a URL keeps its own identity
    a = load_model("openai:m", name="pool", options={"api_key_env": False, "base_url": "http://h1:8000/v1"})
    b = load_model("openai:m", name="pool", options={"api_key_env": False, "base_url": "http://h2:8000/v1"})
    assert a.fingerprint() != b.fingerprint()


def test_models_declaring_the_same_replicas_share_one_fleet_and_its_limits() -> None:
    opts = {"api_key_env": False, "replicas": ["http://shared-1:8000/v1", "http://shared-2:8000/v1"]}
    model = load_model("openai:m", name="model", options=dict(opts))
    judge = load_model("openai:m", name="judge", options=dict(opts))
    other = load_model("openai:m", name="judge", options={**opts, "concurrency": 2})
    assert model.fleet is judge.fleet and other.fleet is not model.fleet


def test_fleet_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="'base_url' and 'replicas' exclude each other"):
        load_model("openai:m", options={"api_key_env": False, "base_url": "http://a/v1",
                                        "replicas": ["http://b/v1"]})
    with pytest.raises(ConfigError, match="'endpoint_backoff' applies to a fleet only"):
        load_model("openai:m", options={"api_key_env": False, "endpoint_backoff": 1})
    with pytest.raises(ConfigError, match=r"replicas\[0\]"):
        load_model("openai:m", options={"api_key_env": False, "replicas": ["nope"]})


def test_a_killed_fake_server_drops_what_it_holds_and_refuses_new_connections() -> None:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}).encode()
    with FakeLLMServer(latency=5.0) as server:
        url = f"{server.openai_base_url}/chat/completions"
        errors: list[BaseException] = []

        def call() -> None:
            req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except (OSError, urllib.error.URLError) as exc:
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        while server.in_flight < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.in_flight == 3 and server.max_in_flight == 3
        start = time.monotonic()
        server.kill()
        for t in threads:
            t.join(timeout=5)
        assert time.monotonic() - start < 3  # the 5 s replies were not waited for
        assert len(errors) == 3 and server.killed
        assert server.count == 3 and server.answered == 0
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=2)


def test_the_summary_line_names_the_retried_requests_of_fleets_only() -> None:
    assert failover_line("pool", {"failover_retries": 3, "failover_reroutes": 2}) == (
        "llmeval: pool: 3 requests retried from failed endpoints (2 more rerouted before they were sent)")
    assert failover_line("pool", {"failover_retries": 1, "failover_reroutes": 0}) == (
        "llmeval: pool: 1 request retried from failed endpoints")
    assert failover_line("single", {"requests": 5, "retries": 2}) is None
