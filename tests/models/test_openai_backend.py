"""The openai: backend, driven through the real openai SDK against the loopback fake server."""

from __future__ import annotations

import json
import threading
import time

import pytest

from pytest_llmeval.errors import ConfigError, ModelError
from pytest_llmeval.models import GenerationParams, GenerationRequest, load_model
from pytest_llmeval.models._api import MissingAPIKey
from pytest_llmeval.models.openai_backend import OpenAIModel
from pytest_llmeval.testing.fake_server import FakeLLMServer, FakeRequest, Faults

KEY = "sk-test-openai-0123456789abcdef"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return KEY


def make(server: FakeLLMServer, **options: object) -> OpenAIModel:
    opts: dict[str, object] = {"base_url": server.openai_base_url, "retry_backoff": 0.01}
    opts.update(options)
    model = load_model("openai:fake-gpt", options=opts)
    assert isinstance(model, OpenAIModel)
    return model


def test_generates_in_request_order_and_counts_tokens() -> None:
    with FakeLLMServer(api_key=KEY) as server:
        model = make(server)
        out = model.generate([GenerationRequest(f"question {i}") for i in range(5)])
        usage = model.usage()
    assert out == [f"echo: question {i}" for i in range(5)]
    assert usage["requests"] == 5 and usage["retries"] == 0 and usage["failures"] == 0
    assert usage["input_tokens"] == 10 and usage["output_tokens"] == 15
    assert "cost_usd" not in usage


def test_request_carries_params_messages_and_json_mode() -> None:
    with FakeLLMServer() as server:
        model = make(server, extra_body={"repetition_penalty": 1.1})
        params = GenerationParams(
            max_new_tokens=5,
            temperature=0.7,
            top_p=0.9,
            top_k=40,
            stop=("\n",),
            seed=3,
            json_mode=True,
        )
        prompt = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
        model.generate([GenerationRequest(prompt, params)])
        body = server.log[0].body
    assert body["model"] == "fake-gpt"
    assert body["messages"] == prompt
    assert body["max_tokens"] == 5  # a base_url server gets max_tokens
    assert body["temperature"] == 0.7 and body["top_p"] == 0.9 and body["seed"] == 3
    assert body["stop"] == ["\n"]
    assert body["response_format"] == {"type": "json_object"}
    assert body["top_k"] == 40 and body["repetition_penalty"] == 1.1


def test_official_api_gets_max_completion_tokens() -> None:
    model = OpenAIModel("m", "gpt-x", {})
    kw = model.request_kwargs(GenerationRequest("hi", GenerationParams(max_new_tokens=7)))
    assert kw["max_completion_tokens"] == 7 and "max_tokens" not in kw


def test_requests_overlap_up_to_the_concurrency_limit() -> None:
    with FakeLLMServer(latency=0.15) as server:
        model = make(server, concurrency=6)
        out = model.generate([GenerationRequest(f"q{i}") for i in range(18)])
        assert server.max_in_flight == 6
    assert out == [f"echo: q{i}" for i in range(18)]


def test_models_on_one_endpoint_share_the_strictest_limit() -> None:
    with FakeLLMServer(latency=0.1) as server:
        wide, narrow = make(server, concurrency=8), make(server, concurrency=3)
        threads = [
            threading.Thread(
                target=m.generate, args=([GenerationRequest(f"{i}") for i in range(9)],)
            )
            for m in (wide, narrow)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert server.count == 18
        assert server.max_in_flight == 3


def test_429_waits_for_retry_after() -> None:
    with FakeLLMServer(faults=Faults(script=["429"], retry_after=0.3)) as server:
        model = make(server)
        out = model.generate([GenerationRequest("x")])
        first, second = server.log
    assert out == ["echo: x"]
    assert second.received_at - first.received_at >= 0.3
    assert model.usage()["retries"] == 1


def test_500_then_success() -> None:
    with FakeLLMServer(faults=Faults(script=["500", "500"])) as server:
        model = make(server)
        assert model.generate([GenerationRequest("x")]) == ["echo: x"]
        assert server.outcomes["500"] == 2
    assert model.usage()["attempts"] == 3


def test_hang_times_out_and_errors_after_max_retries() -> None:
    with FakeLLMServer(faults=Faults(rate_hang=1.0)) as server:
        model = make(server, timeout=0.3, max_retries=2)
        start = time.monotonic()
        [out] = model.generate([GenerationRequest("x")])
        elapsed = time.monotonic() - start
        assert server.count == 3
    assert isinstance(out, ModelError)
    msg = str(out)
    assert "openai:fake-gpt" in msg and "after 3 attempts" in msg and "timed out" in msg
    assert elapsed < 5
    assert model.usage()["failures"] == 1


def test_malformed_body_is_retried_then_reported() -> None:
    with FakeLLMServer(faults=Faults(script=["malformed"])) as server:
        assert make(server).generate([GenerationRequest("x")]) == ["echo: x"]
    with FakeLLMServer(faults=Faults(rate_malformed=1.0)) as server:
        [out] = make(server, max_retries=1).generate([GenerationRequest("x")])
    assert isinstance(out, ModelError)
    assert "malformed response body" in str(out) and "after 2 attempts" in str(out)


def test_connection_reset_is_retried() -> None:
    with FakeLLMServer(faults=Faults(script=["reset", "reset"])) as server:
        model = make(server)
        assert model.generate([GenerationRequest("x")]) == ["echo: x"]
        assert server.outcomes["reset"] == 2
    assert model.usage()["retries"] == 2


def test_one_failing_request_keeps_the_others() -> None:
    def fail_poison(request: FakeRequest) -> str | None:
        return "500" if request.prompt == "poison" else None

    with FakeLLMServer(faults=fail_poison) as server:
        out = make(server, max_retries=1).generate(
            [GenerationRequest(p) for p in ("a", "poison", "b")]
        )
    assert out[0] == "echo: a" and out[2] == "echo: b"
    assert isinstance(out[1], ModelError) and "HTTP 500" in str(out[1])


def test_on_result_reports_each_request_as_it_finishes() -> None:
    seen: dict[int, object] = {}
    with FakeLLMServer() as server:
        out = make(server).generate(
            [GenerationRequest(f"q{i}") for i in range(4)], on_result=seen.__setitem__
        )
    assert seen == dict(enumerate(out))


def test_wrong_key_is_not_retried_and_never_shown() -> None:
    with FakeLLMServer(api_key="sk-the-server-wants-another-one") as server:
        model = make(server)
        [out] = model.generate([GenerationRequest("x")])
        assert server.outcomes["401"] == 1
    assert isinstance(out, ModelError)
    assert "HTTP 401" in str(out) and "not retryable" in str(out)
    assert KEY not in str(out)


def test_key_never_appears_in_identity_or_repr() -> None:
    with FakeLLMServer() as server:
        model = make(server)
        shown = json.dumps(model.describe()) + json.dumps(model.identity()) + repr(model)
    assert KEY not in shown
    assert model.describe()["base_url"] == server.openai_base_url
    assert model.redact(f"Incorrect API key provided: {KEY}") == "Incorrect API key provided: ***"


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(MissingAPIKey, match="OPENAI_API_KEY") as info:
        load_model("openai:gpt-x")
    assert info.value.env_var == "OPENAI_API_KEY"
    assert isinstance(info.value, ConfigError)
    monkeypatch.setenv("MY_KEY", "")
    with pytest.raises(MissingAPIKey, match="MY_KEY"):
        load_model("openai:gpt-x", options={"api_key_env": "MY_KEY"})


def test_keyless_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with FakeLLMServer() as server:
        model = make(server, api_key_env=False)
        assert model.generate([GenerationRequest("x")]) == ["echo: x"]


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'concurrency'"):
        load_model("openai:gpt-x", options={"concurency": 4})
    with pytest.raises(ConfigError, match="environment only"):
        load_model("openai:gpt-x", options={"api_key": KEY})
    with pytest.raises(ConfigError, match="'timeout' must be a number"):
        load_model("openai:gpt-x", options={"timeout": "soon"})
    with pytest.raises(ConfigError, match="'price' must be"):
        load_model("openai:gpt-x", options={"price": {"input": 1.0}})


def test_price_gives_cost() -> None:
    with FakeLLMServer() as server:
        model = make(server, price={"input": 2.0, "output": 10.0})
        model.generate([GenerationRequest("one two three")])
    usage = model.usage()
    assert (usage["input_tokens"], usage["output_tokens"]) == (3, 4)
    assert usage["cost_usd"] == pytest.approx((3 * 2.0 + 4 * 10.0) / 1e6)


def test_identity_changes_with_endpoint_not_with_concurrency() -> None:
    a = OpenAIModel("m", "gpt-x", {"base_url": "http://a/v1", "concurrency": 2})
    b = OpenAIModel("m", "gpt-x", {"base_url": "http://a/v1", "concurrency": 16})
    c = OpenAIModel("m", "gpt-x", {"base_url": "http://b/v1"})
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_a_closed_model_no_longer_limits_its_endpoint() -> None:
    with FakeLLMServer(latency=0.1) as server:
        make(server, concurrency=1).close()
        wide = make(server, concurrency=6)
        wide.generate([GenerationRequest(f"{i}") for i in range(12)])
        assert server.max_in_flight == 6


def test_generate_with_info_reports_latency_tokens_and_cost_per_request() -> None:
    with FakeLLMServer(latency=0.15) as server:
        model = make(server, price={"input": 2.0, "output": 10.0}, concurrency=4)
        results = model.generate_with_info([GenerationRequest("one two three"), GenerationRequest("x")])
    (text, info), (_, short) = results
    assert text == "echo: one two three"
    assert (info.input_tokens, info.output_tokens) == (3, 4)
    assert info.cost_usd == pytest.approx((3 * 2.0 + 4 * 10.0) / 1e6)
    assert (short.input_tokens, short.output_tokens) == (1, 2)
    assert info.latency_s is not None and 0.15 <= info.latency_s < 2.0
    assert not info.cached


def test_latency_is_the_successful_attempt_not_the_retries() -> None:
    with FakeLLMServer(faults=Faults(script=["429"], retry_after=0.5)) as server:
        [(text, info)] = make(server).generate_with_info([GenerationRequest("x")])
    assert text == "echo: x"
    assert info.latency_s is not None and info.latency_s < 0.5  # the 0.5 s wait is not the model's


def test_a_failed_request_carries_no_figures_and_cost_needs_a_price() -> None:
    def fail_poison(request: FakeRequest) -> str | None:
        return "500" if request.prompt == "poison" else None

    with FakeLLMServer(faults=fail_poison) as server:
        (ok, okinfo), (err, info) = make(server, max_retries=0).generate_with_info(
            [GenerationRequest("fine"), GenerationRequest("poison")])
    assert ok == "echo: fine" and okinfo.cost_usd is None and okinfo.output_tokens == 2
    assert isinstance(err, ModelError)
    assert info.latency_s is None and info.input_tokens is None and info.cost_usd is None


def test_progress_ticks_once_per_finished_request() -> None:
    ticks: list[int] = []
    with FakeLLMServer() as server:
        make(server).generate([GenerationRequest(f"q{i}") for i in range(5)], progress=ticks.append)
    assert ticks == [1] * 5


def test_fingerprint_covers_the_effective_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    default = OpenAIModel("m", "gpt-x", {})
    assert default.describe()["base_url"] == "https://api.openai.com/v1"
    by_option = OpenAIModel("m", "gpt-x", {"base_url": "http://option-host:8000/v1"})
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env-host:8000/v1")
    by_env = OpenAIModel("m", "gpt-x", {})
    assert by_env.describe()["base_url"] == "http://env-host:8000/v1"
    assert len({default.fingerprint(), by_option.fingerprint(), by_env.fingerprint()}) == 3
    # the option wins over the variable, as in the SDK; a trailing slash is the same endpoint
    assert OpenAIModel("m", "gpt-x", {"base_url": "http://option-host:8000/v1/"}).fingerprint() == \
        by_option.fingerprint()
    # the same server named through the variable or the option is the same model
    monkeypatch.setenv("OPENAI_BASE_URL", "http://option-host:8000/v1")
    assert OpenAIModel("m", "gpt-x", {}).fingerprint() == by_option.fingerprint()


def test_the_environment_endpoint_is_the_one_called(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeLLMServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
        model = load_model("openai:fake-gpt", options={"retry_backoff": 0.01})
        out = model.generate([GenerationRequest("via env", GenerationParams(max_new_tokens=3))])
        body = server.log[0].body
    assert out == ["echo: via env"]
    assert model.describe()["base_url"] == server.openai_base_url
    assert body["max_tokens"] == 3 and "max_completion_tokens" not in body  # not the official API


@pytest.mark.parametrize("no_key", [False, None, "none", "NONE"])
def test_keyless_spellings_send_a_placeholder_not_an_environment_key(
        monkeypatch: pytest.MonkeyPatch, no_key: object) -> None:
    with FakeLLMServer() as server:
        model = make(server, api_key_env=no_key)  # OPENAI_API_KEY is set: it must not be sent
        assert model.generate([GenerationRequest("x")]) == ["echo: x"]
        sent = server.log[0].api_key
    assert sent == "no-key-needed"


def test_an_empty_api_key_env_is_an_error_that_names_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"'api_key_env' must be .* or false .* \"none\""):
        load_model("openai:gpt-x", options={"api_key_env": ""})
    with pytest.raises(ConfigError, match="'api_key_env' must be"):
        load_model("openai:gpt-x", options={"api_key_env": True})
