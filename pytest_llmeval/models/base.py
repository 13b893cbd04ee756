"""The Model protocol every backend implements, and the request/params types it takes.

A model receives *all* of a suite's requests in one call so that a backend can
batch (local weights) or run them concurrently (API providers). A failure that
concerns one request is returned in that request's slot as an exception, so
the other cases keep their outputs; a failure of the whole backend raises.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Union, runtime_checkable

Message = dict[str, str]
Prompt = Union[str, list[Message]]  # noqa: UP007 - a runtime alias on Python 3.10 needs Union
"""Plain text, or chat messages ``[{"role": "system"|"user"|"assistant", "content": ...}]``."""


@dataclass(frozen=True)
class GenerationParams:
    """Decoding parameters. Greedy (``temperature=0``) unless a suite says otherwise."""

    max_new_tokens: int | None = None
    temperature: float = 0.0
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    json_mode: bool = False
    """Ask the backend for a JSON object (OpenAI ``response_format``, Anthropic prefill/tool use)."""

    def to_dict(self) -> dict[str, Any]:
        # Written out rather than dataclasses.asdict: this runs once per cache key.
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "top_k": self.top_k, "stop": list(self.stop), "seed": self.seed,
                "json_mode": self.json_mode}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationParams:
        data = dict(data)
        if "stop" in data and data["stop"] is not None:
            stop = data["stop"]
            data["stop"] = (stop,) if isinstance(stop, str) else tuple(stop)
        return cls(**data)


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: the prompt, its decoding parameters, and which sample it is.

    ``sample`` distinguishes repeated samples of the same prompt (``repeat: k``),
    so that caches keep one entry per sample when decoding is stochastic.
    """

    prompt: Prompt
    params: GenerationParams = field(default_factory=GenerationParams)
    sample: int = 0

    def key_payload(self) -> dict[str, Any]:
        """Everything about the request that changes the answer (for cache keys)."""
        return {"prompt": self.prompt, "params": self.params.to_dict(), "sample": self.sample}


GenerationOutcome = Union[str, BaseException]  # noqa: UP007


@runtime_checkable
class Model(Protocol):
    """What the evaluator needs from a model."""

    name: str

    def fingerprint(self) -> str:
        """A stable identity: changes whenever weights, adapter, tokenizer or endpoint change."""
        ...

    def describe(self) -> dict[str, Any]:
        """JSON-able identity recorded in the results file (no secrets)."""
        ...

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        """Outputs in request order; a per-request failure is an exception in its slot."""
        ...


class ModelBase:
    """Convenience base class: name, a describe() built from a dict, a hashed fingerprint."""

    scheme: str = "model"

    def __init__(self, name: str, target: str, options: dict[str, Any] | None = None) -> None:
        self.name = name
        self.target = target
        self.options = dict(options or {})

    def identity(self) -> dict[str, Any]:
        """Override to add what identifies the weights (hashes, revisions)."""
        return {"scheme": self.scheme, "target": self.target}

    def fingerprint(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.identity(), "fingerprint": self.fingerprint()}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (connections, GPU memory). Safe to call twice."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.scheme}:{self.target}>"


def messages_to_text(prompt: Prompt) -> str:
    """Flatten chat messages for a backend that has no chat template."""
    if isinstance(prompt, str):
        return prompt
    parts = []
    for m in prompt:
        role = m.get("role", "user")
        content = m.get("content", "")
        parts.append(content if role == "user" else f"{role.capitalize()}: {content}")
    return "\n\n".join(parts)


def apply_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the first stop sequence (the stop itself is dropped)."""
    cut = len(text)
    for s in stop:
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut]
