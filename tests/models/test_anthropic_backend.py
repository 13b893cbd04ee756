"""The anthropic: backend, through the real anthropic SDK against the loopback fake server."""

from __future__ import annotations

import json

import pytest

from pytest_llmeval.errors import ConfigError, LLMEvalWarning, ModelError
from pytest_llmeval.models import GenerationParams, GenerationRequest, load_model
from pytest_llmeval.models._api import MissingAPIKey
from pytest_llmeval.models.anthropic_backend import AnthropicModel
from pytest_llmeval.testing.fake_server import FakeLLMServer, FakeRequest, Faults

KEY = "sk-ant-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    return KEY


def make(server: FakeLLMServer, **options: object) -> AnthropicModel:
    opts: dict[str, object] = {"base_url": server.anthropic_base_url, "retry_backoff": 0.01}
    opts.update(options)
    model = load_model("anthropic:fake-claude", options=opts)
    assert isinstance(model, AnthropicModel)
    return model


def test_generates_and_counts_tokens_with_the_key_sent() -> None:
    with FakeLLMServer(api_key=KEY) as server:
        model = make(server)
        out = model.generate([GenerationRequest(f"question {i}") for i in range(3)])
    assert out == [f"echo: question {i}" for i in range(3)]
    usage = model.usage()
    assert usage["requests"] == 3 and usage["input_tokens"] == 6 and usage["output_tokens"] == 9


def test_system_messages_go_to_the_system_parameter() -> None:
    with FakeLLMServer() as server:
        prompt = [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "again"},
        ]
        make(server).generate([GenerationRequest(prompt, GenerationParams(max_new_tokens=9))])
        body = server.log[0].body
    assert body["system"] == "be brief"
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["max_tokens"] == 9
    assert "temperature" not in body


def test_max_tokens_option_is_the_default_cap_and_part_of_identity() -> None:
    with FakeLLMServer() as server:
        model = make(server, max_tokens=77)
        model.generate([GenerationRequest("hi")])
        assert server.log[0].body["max_tokens"] == 77
    assert model.identity()["max_tokens"] == 77
    assert "max_tokens" not in AnthropicModel("m", "c", {}).identity()


def test_whitespace_stops_are_applied_locally() -> None:
    with FakeLLMServer(responder=lambda r: "line one\nline two END more") as server:
        [out] = make(server).generate(
            [GenerationRequest("x", GenerationParams(stop=("\n", "END")))]
        )
        body = server.log[0].body
    assert body["stop_sequences"] == ["END"]
    assert out == "line one"


def test_json_mode_uses_a_forced_tool_call() -> None:
    def responder(request: FakeRequest) -> str:
        return json.dumps({"score": 8, "reasoning": "fine"})

    with FakeLLMServer(responder=responder) as server:
        [out] = make(server).generate([GenerationRequest("rate", GenerationParams(json_mode=True))])
        body = server.log[0].body
    assert body["tool_choice"] == {"type": "tool", "name": "json_response"}
    assert isinstance(out, str) and json.loads(out) == {"score": 8, "reasoning": "fine"}


def test_json_mode_reply_without_tool_call_comes_back_as_text() -> None:
    with FakeLLMServer(responder=lambda r: "not json at all") as server:
        [out] = make(server).generate([GenerationRequest("rate", GenerationParams(json_mode=True))])
    assert out == "not json at all"


def test_sampling_params_are_not_sent_and_warn() -> None:
    with FakeLLMServer() as server:
        with pytest.warns(LLMEvalWarning, match="temperature, top_k"):
            make(server).generate(
                [GenerationRequest("x", GenerationParams(temperature=0.8, top_k=5))]
            )
        body = server.log[0].body
    assert not {"temperature", "top_p", "top_k"} & set(body)


def test_retries_429_500_and_reset_then_succeeds() -> None:
    with FakeLLMServer(faults=Faults(script=["429", "500", "reset"], retry_after=0.05)) as server:
        model = make(server)
        assert model.generate([GenerationRequest("x")]) == ["echo: x"]
        assert server.count == 4
    assert model.usage()["retries"] == 3


def test_retries_run_out_into_an_error() -> None:
    with FakeLLMServer(faults=Faults(rate_500=1.0)) as server:
        [out] = make(server, max_retries=2).generate([GenerationRequest("x")])
    assert isinstance(out, ModelError)
    assert "anthropic:fake-claude" in str(out) and "after 3 attempts" in str(out)
    assert "HTTP 500" in str(out)


def test_missing_key_and_bad_options() -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ANTHROPIC_API_KEY")
        with pytest.raises(MissingAPIKey, match="ANTHROPIC_API_KEY"):
            load_model("anthropic:claude-x")
    with pytest.raises(ConfigError, match="Did you mean 'max_tokens'"):
        load_model("anthropic:claude-x", options={"max_token": 5})


def test_key_never_appears_in_describe_or_errors() -> None:
    with FakeLLMServer(api_key="sk-ant-some-other-key") as server:
        model = make(server)
        [out] = model.generate([GenerationRequest("x")])
    assert isinstance(out, ModelError) and "HTTP 401" in str(out)
    assert KEY not in str(out) + json.dumps(model.describe()) + repr(model)


def test_generate_with_info_reports_the_messages_usage_and_latency() -> None:
    with FakeLLMServer(latency=0.1) as server:
        model = make(server, price={"input": 3.0, "output": 15.0})
        [(text, info)] = model.generate_with_info([GenerationRequest("one two")])
    assert text == "echo: one two"
    assert (info.input_tokens, info.output_tokens) == (2, 3)
    assert info.cost_usd == pytest.approx((2 * 3.0 + 3 * 15.0) / 1e6)
    assert info.latency_s is not None and info.latency_s >= 0.1


def test_fingerprint_covers_the_effective_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    default = AnthropicModel("m", "c", {})
    assert default.describe()["base_url"] == "https://api.anthropic.com"
    by_option = AnthropicModel("m", "c", {"base_url": "http://option-host:9000"})
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://env-host:9000")
    by_env = AnthropicModel("m", "c", {})
    assert len({default.fingerprint(), by_option.fingerprint(), by_env.fingerprint()}) == 3


def test_the_environment_endpoint_is_the_one_called(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeLLMServer() as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
        model = load_model("anthropic:fake-claude", options={"retry_backoff": 0.01})
        assert model.generate([GenerationRequest("via env")]) == ["echo: via env"]
        assert server.count == 1


def test_keyless_server_with_no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with FakeLLMServer() as server:
        for no_key in (False, "none"):
            assert make(server, api_key_env=no_key).generate([GenerationRequest("x")]) == ["echo: x"]
        assert {r.api_key for r in server.log} == {"no-key-needed"}
