"""``anthropic:<model>``: the Anthropic Messages API through the official ``anthropic`` SDK.

Concurrency, retries and usage live in :mod:`._api`; this module maps a
request onto the Messages API:

- ``system`` messages go into the ``system`` parameter (joined by blank lines);
- ``max_new_tokens`` is required by the API: when a suite leaves it unset, the
  ``max_tokens`` option (default 1024) is sent;
- JSON mode: the API has none, so the request forces a tool call whose input
  schema is any JSON object, and the tool input comes back as the JSON text (a
  reply without the tool call is returned as its text, for the caller to reject);
- stop sequences: the API rejects whitespace-only ones such as ``"\\n"``, so
  those are applied to the text afterwards instead of being sent;
- sampling parameters: the current Messages API version (the default of the
  ``anthropic`` SDK 2.x) rejects ``temperature``, ``top_p`` and ``top_k``, and
  the SDK no longer has them, so they are not sent; a suite that sets a
  non-default value gets an :class:`~pytest_llmeval.errors.LLMEvalWarning`.
  ``seed`` has no counterpart either. Repeated samples still get distinct
  cache entries (the sample index is part of the key).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import LLMEvalWarning, MissingDependency
from pytest_llmeval.models._api import ApiModel, Failure, opt_int, sdk_failure
from pytest_llmeval.models.base import (
    Generation,
    GenerationRequest,
    OnGeneration,
    Progress,
    apply_stop,
)

DEFAULT_MAX_TOKENS = 1024

JSON_TOOL = {
    "name": "json_response",
    "description": "Give the answer as a JSON object.",
    "input_schema": {"type": "object"},
}


class AnthropicModel(ApiModel):
    """A Claude model behind the Messages API (see the module docstring for the mapping)."""

    scheme = "anthropic"
    default_key_env = "ANTHROPIC_API_KEY"
    base_url_env = "ANTHROPIC_BASE_URL"
    default_base_url = "https://api.anthropic.com"
    extra_options = frozenset({"max_tokens"})

    def __init__(self, name: str, target: str, options: dict[str, Any]) -> None:
        super().__init__(name, target, options)
        self.max_tokens = opt_int(options, "max_tokens", DEFAULT_MAX_TOKENS, self.ref, minimum=1)

    def identity(self) -> dict[str, Any]:
        """As for every API model, plus ``max_tokens`` when changed: it caps unbounded replies."""
        ident = super().identity()
        if self.max_tokens != DEFAULT_MAX_TOKENS:
            ident["max_tokens"] = self.max_tokens
        return ident

    def _make_client(self, api_key: str, base_url: str) -> Any:
        sdk = _import_sdk()
        return sdk.Anthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=self.timeout,
            default_headers=self.headers or None,
        )

    def request_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for one request."""
        p = request.params
        if isinstance(request.prompt, str):
            system_parts: list[str] = []
            messages = [{"role": "user", "content": request.prompt}]
        else:
            system_parts = [
                m.get("content", "") for m in request.prompt if m.get("role") == "system"
            ]
            messages = [
                {"role": m.get("role", "user"), "content": m.get("content", "")}
                for m in request.prompt
                if m.get("role") != "system"
            ]
        kw: dict[str, Any] = {
            "model": self.target,
            "messages": messages,
            "max_tokens": p.max_new_tokens if p.max_new_tokens is not None else self.max_tokens,
        }
        if system_parts:
            kw["system"] = "\n\n".join(system_parts)
        sendable = [s for s in p.stop if s.strip()]
        if sendable:
            kw["stop_sequences"] = sendable
        if p.json_mode:
            kw["tools"] = [JSON_TOOL]
            kw["tool_choice"] = {"type": "tool", "name": JSON_TOOL["name"]}
        if self.extra_body:
            kw["extra_body"] = dict(self.extra_body)
        return kw

    def generate_with_info(
        self,
        requests: Sequence[GenerationRequest],
        progress: Progress | None = None,
        on_result: OnGeneration | None = None,
    ) -> list[Generation]:
        """As :meth:`ApiModel.generate_with_info`, warning once per call about unsendable sampling params."""
        unsent = sorted(
            {
                name
                for r in requests
                for name, set_ in (
                    ("temperature", r.params.temperature != 0),
                    ("top_p", r.params.top_p is not None),
                    ("top_k", r.params.top_k is not None),
                )
                if set_
            }
        )
        if unsent:
            warnings.warn(
                f"{self.ref}: the Messages API takes no sampling parameters; "
                f"{', '.join(unsent)} not sent",
                LLMEvalWarning,
                stacklevel=2,
            )
        return super().generate_with_info(requests, progress, on_result)

    def _call(self, client: Any, request: GenerationRequest) -> tuple[str, int | None, int | None]:
        resp = client.messages.create(**self.request_kwargs(request))
        text = ""
        for block in resp.content:
            if block.type == "tool_use" and request.params.json_mode:
                text = json.dumps(block.input)
                break
            if block.type == "text":
                text += block.text
        usage = resp.usage
        tokens_in = usage.input_tokens if usage is not None else None
        tokens_out = usage.output_tokens if usage is not None else None
        return apply_stop(text, request.params.stop), tokens_in, tokens_out

    def _classify(self, exc: Exception) -> Failure:
        return sdk_failure(exc, _import_sdk())


def _import_sdk() -> Any:
    try:
        import anthropic
    except ImportError as exc:
        raise MissingDependency("anthropic", "anthropic", "The anthropic: backend") from exc
    return anthropic


def load(target: str, *, name: str, options: dict[str, Any], base_dir: Path) -> AnthropicModel:
    """Build an ``anthropic:`` model (``base_dir`` is unused: the target is a model name)."""
    return AnthropicModel(name, target, options)
