"""The request types and ModelBase: cache-key coverage, the declared surface, per-request info."""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import fields

import pytest

from pytest_llmeval.errors import ModelError
from pytest_llmeval.models.base import (
    Capabilities,
    Generation,
    GenerationInfo,
    GenerationOutcome,
    GenerationParams,
    GenerationRequest,
    ModelBase,
    apply_stop,
    as_model_base,
    messages_to_text,
)


def test_to_dict_covers_every_field_and_round_trips() -> None:
    params = GenerationParams(max_new_tokens=5, temperature=0.7, top_p=0.9, top_k=4, stop=("\n",),
                              seed=3, json_mode=True)
    d = params.to_dict()
    assert list(d) == [f.name for f in fields(GenerationParams)]
    assert GenerationParams.from_dict(d) == params


def test_request_key_payload_changes_with_sample_and_params() -> None:
    base = GenerationRequest("hi").key_payload()
    assert GenerationRequest("hi", sample=1).key_payload() != base
    assert GenerationRequest("hi", GenerationParams(temperature=0.5)).key_payload() != base


def test_apply_stop_and_flattening() -> None:
    assert apply_stop("a|b\nc", ["\n", "|"]) == "a"
    assert messages_to_text([{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]) == \
        "System: s\n\nu"


# --------------------------------------------------------------------------- the declared surface


class OldStyle(ModelBase):
    """A backend written against the old contract: generate(requests) and nothing else."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__("old", "old")
        self.delay = delay

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        time.sleep(self.delay)
        return [ModelError("bad prompt") if r.prompt == "bad" else f"out:{r.prompt}" for r in requests]


class Batched(ModelBase):
    """A batched backend that reports each batch's time through record_batch (as hf: can)."""

    def __init__(self, batch_size: int, per_batch: float) -> None:
        super().__init__("batched", "b")
        self.batch_size, self.per_batch = batch_size, per_batch

    def generate(self, requests: Sequence[GenerationRequest],
                 progress: Callable[[int], None] | None = None) -> list[GenerationOutcome]:
        out: list[GenerationOutcome] = []
        for start in range(0, len(requests), self.batch_size):
            chunk = list(range(start, min(start + self.batch_size, len(requests))))
            self.record_batch(chunk, self.per_batch * (start // self.batch_size + 1),
                              output_tokens=[3] * len(chunk))
            out.extend(f"b{i}" for i in chunk)
        return out


def test_a_generate_without_progress_gets_it_declared_and_honoured() -> None:
    model = OldStyle()
    assert "progress" in inspect.signature(model.generate).parameters
    seen: list[int] = []
    assert model.generate([GenerationRequest("a"), GenerationRequest("b")], progress=seen.append) == \
        ["out:a", "out:b"]
    assert seen == [2]
    assert model.generate([GenerationRequest("c")]) == ["out:c"]  # the old call still works


def test_other_parameters_of_an_old_generate_pass_through() -> None:
    class WithHook(ModelBase):
        def generate(self, requests, on_result=None):  # type: ignore[no-untyped-def]
            for i, r in enumerate(requests):
                on_result(i, r.prompt)
            return [r.prompt for r in requests]

    got: list[tuple[int, object]] = []
    ticks: list[int] = []
    out = WithHook("h", "h").generate([GenerationRequest("x")], on_result=lambda i, o: got.append((i, o)),
                                      progress=ticks.append)
    assert out == ["x"] and got == [(0, "x")] and ticks == [1]
    assert list(inspect.signature(WithHook.generate).parameters) == ["self", "requests", "on_result",
                                                                     "progress"]


def test_default_generate_with_info_splits_the_call_time_and_leaves_errors_empty() -> None:
    model = OldStyle(delay=0.2)
    results = model.generate_with_info([GenerationRequest(p) for p in ("a", "bad", "c", "d")])
    assert [g.outcome for g in results][::2] == ["out:a", "out:c"]
    assert isinstance(results[1].outcome, ModelError) and results[1].info == GenerationInfo()
    latencies = [g.info.latency_s for g in results if g.info.latency_s is not None]
    assert len(latencies) == 3 and len(set(latencies)) == 1
    assert 0.05 <= latencies[0] < 0.2  # a quarter of a call that took at least 0.2 s
    assert all(g.info.input_tokens is None and not g.info.cached for g in results)


def test_record_batch_gives_each_request_its_batch_share() -> None:
    model = Batched(batch_size=2, per_batch=0.1)
    results = model.generate_with_info([GenerationRequest(str(i)) for i in range(5)])
    assert [g.info.latency_s for g in results] == pytest.approx([0.05, 0.05, 0.1, 0.1, 0.3])
    assert {g.info.output_tokens for g in results} == {3}
    # outside generate_with_info, record_batch is a no-op
    assert model.generate([GenerationRequest("x")]) == ["b0"]


def test_record_batch_of_a_nested_model_does_not_leak_into_the_outer_call() -> None:
    inner = Batched(batch_size=1, per_batch=5.0)

    class Outer(ModelBase):
        def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
            return inner.generate(requests)

    results = Outer("o", "o").generate_with_info([GenerationRequest("x")])
    assert results[0].info.latency_s is not None and results[0].info.latency_s < 5.0


def test_generate_with_info_reports_each_result_and_checks_the_count() -> None:
    got: list[int] = []
    OldStyle().generate_with_info([GenerationRequest("a"), GenerationRequest("b")],
                                  on_result=lambda i, g: got.append(i))
    assert got == [0, 1]

    class Short(ModelBase):
        def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
            return ["one"]

    with pytest.raises(ModelError, match="returned 1 outputs for 2 requests"):
        Short("s", "s").generate_with_info([GenerationRequest("a"), GenerationRequest("b")])


def test_generate_is_derived_from_generate_with_info() -> None:
    class InfoOnly(ModelBase):
        def generate_with_info(self, requests, progress=None, on_result=None):  # type: ignore[no-untyped-def]
            return [Generation(f"i:{r.prompt}", GenerationInfo(latency_s=1.0)) for r in requests]

    assert InfoOnly("i", "i").generate([GenerationRequest("q")]) == ["i:q"]
    with pytest.raises(NotImplementedError, match="must implement generate"):
        ModelBase("n", "t").generate([GenerationRequest("q")])


def test_defaults_of_the_optional_methods() -> None:
    model = OldStyle()
    assert model.usage() == {}
    assert model.unwrap() is model
    model.close()
    model.close()
    assert model.capabilities == Capabilities()


def test_capabilities_follow_what_the_backend_has() -> None:
    class Scoring(OldStyle):
        streams_results = True

        def next_token_probs(self, prompts, candidates):  # type: ignore[no-untyped-def]
            return [{c: 0.5 for c in candidates} for _ in prompts]

    caps = Scoring().capabilities
    assert caps.streams_results and caps.next_token_probs
    assert not caps.loglikelihood and not caps.needs_case_ids


def test_as_model_base_adapts_a_plain_protocol_object() -> None:
    class Plain:
        name = "plain"
        closed = 0

        def fingerprint(self) -> str:
            return "fp"

        def describe(self) -> dict[str, object]:
            return {"name": "plain"}

        def generate(self, requests):  # type: ignore[no-untyped-def]
            return [r.prompt.upper() for r in requests]

        def usage(self) -> dict[str, int]:
            return {"requests": 1}

        def close(self) -> None:
            self.closed += 1

    plain = Plain()
    model = as_model_base(plain)
    ticks: list[int] = []
    assert model.generate([GenerationRequest("a")], progress=ticks.append) == ["A"] and ticks == [1]
    [(text, info)] = model.generate_with_info([GenerationRequest("b")])
    assert text == "B" and info.latency_s is not None
    assert (model.name, model.fingerprint(), model.describe()) == ("plain", "fp", {"name": "plain"})
    assert model.usage() == {"requests": 1} and model.unwrap() is plain
    model.close()
    assert plain.closed == 1
    already = OldStyle()
    assert as_model_base(already) is already
    with pytest.raises(TypeError, match="expected a Model"):
        as_model_base(object())  # type: ignore[arg-type]


def test_case_id_is_not_part_of_the_cache_key() -> None:
    assert GenerationRequest("hi", case_id="c1").key_payload() == GenerationRequest("hi").key_payload()


def test_generation_info_round_trips_and_rejects_bad_values() -> None:
    info = GenerationInfo(latency_s=0.25, input_tokens=3, output_tokens=4, cost_usd=1e-5)
    assert GenerationInfo.from_dict(info.to_dict()) == info
    assert GenerationInfo.from_dict(json.loads(json.dumps(info.as_cached().to_dict()))) == \
        GenerationInfo(0.25, 3, 4, 1e-5, cached=True)
    assert GenerationInfo.from_dict({}) == GenerationInfo()
    for bad, field in [({"latency_s": -1}, "latency_s"), ({"input_tokens": 1.5}, "input_tokens"),
                       ({"output_tokens": True}, "output_tokens"), ({"cost_usd": "1"}, "cost_usd"),
                       ({"latency_s": float("nan")}, "latency_s"), ({"cached": 1}, "cached")]:
        with pytest.raises(ValueError, match=f"out.jsonl:3: '{field}'"):
            GenerationInfo.from_dict(bad, where="out.jsonl:3")
    with pytest.raises(ValueError, match="unknown field"):
        GenerationInfo.from_dict({"latency": 1})
