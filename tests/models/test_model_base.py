"""GenerationParams feed every cache key: their dict form must cover every field."""

from __future__ import annotations

from dataclasses import fields

from pytest_llmeval.models.base import GenerationParams, GenerationRequest, apply_stop, messages_to_text


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
