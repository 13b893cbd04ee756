"""Test helpers: a scripted judge model that records calls and answers via a responder."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from pytest_llmeval.models.base import GenerationOutcome, GenerationRequest, ModelBase

Responder = Callable[[list[dict[str, str]]], "str | BaseException"]

BLOCK = re.compile(r"----- BEGIN (?P<label>[A-Z0-9 ]+) \(boundary (?P<b>[0-9a-f]+)\) -----\n"
                   r"(?P<body>.*?)\n----- END (?P=label) \(boundary (?P=b)\) -----", re.DOTALL)


def blocks(text: str) -> dict[str, str]:
    """The data blocks of a rendered judge prompt, by label (as a judge would read them)."""
    return {m.group("label"): m.group("body") for m in BLOCK.finditer(text)}


class ScriptedModel(ModelBase):
    """A Model whose replies come from ``responder(conversation)``."""

    scheme = "scripted"

    def __init__(self, responder: Responder) -> None:
        super().__init__("scripted-judge", "scripted")
        self.responder = responder
        self.calls: list[list[GenerationRequest]] = []

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        self.calls.append(list(requests))
        return [self.responder(list(r.prompt)) for r in requests]  # type: ignore[arg-type]


def longer_wins(conv: list[dict[str, str]]) -> str:
    """A consistent pairwise judge: the longer response wins; equal length is a tie."""
    b = blocks(conv[0]["content"])
    a_len, b_len = len(b["RESPONSE A"]), len(b["RESPONSE B"])
    winner = "tie" if a_len == b_len else ("A" if a_len > b_len else "B")
    return f'{{"reasoning": "A has {a_len} chars, B has {b_len}", "winner": "{winner}"}}'


def score_by_length(conv: list[dict[str, str]]) -> str:
    """A score judge: score = min(10, 1 + len(response) // 10)."""
    response = blocks(conv[0]["content"])["RESPONSE"]
    return f'{{"reasoning": "length {len(response)}", "score": {min(10, 1 + len(response) // 10)}}}'
