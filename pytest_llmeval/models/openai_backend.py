"""``openai:<model>``: the OpenAI Chat Completions API, or any OpenAI-compatible server.

Compatible servers (vLLM, TGI, llama.cpp, Ollama) are reached with the
``base_url`` option. Requests run through the official ``openai`` SDK with its
own retries off; concurrency, retries and usage live in :mod:`._api`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_llmeval.errors import MissingDependency
from pytest_llmeval.models._api import ApiModel, Failure, sdk_failure
from pytest_llmeval.models.base import GenerationRequest, apply_stop


class OpenAIModel(ApiModel):
    """A chat model behind the Chat Completions API.

    The official API gets ``max_completion_tokens`` (its reasoning models refuse
    ``max_tokens``); any other endpoint (``base_url`` or ``OPENAI_BASE_URL``) gets ``max_tokens``, which every
    compatible server understands. ``top_k`` is not an OpenAI parameter: when a
    suite sets it, it is sent in the body for servers such as vLLM that accept it.
    """

    scheme = "openai"
    default_key_env = "OPENAI_API_KEY"
    base_url_env = "OPENAI_BASE_URL"
    default_base_url = "https://api.openai.com/v1"

    def _make_client(self, api_key: str, base_url: str) -> Any:
        sdk = _import_sdk()
        return sdk.OpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=self.timeout,
            default_headers=self.headers or None,
        )

    def request_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for one request."""
        p = request.params
        messages = (
            [{"role": "user", "content": request.prompt}]
            if isinstance(request.prompt, str)
            else [dict(m) for m in request.prompt]
        )
        kw: dict[str, Any] = {
            "model": self.target,
            "messages": messages,
            "temperature": p.temperature,
        }
        if p.max_new_tokens is not None:
            official = self.endpoint == self.default_base_url
            kw["max_completion_tokens" if official else "max_tokens"] = p.max_new_tokens
        if p.top_p is not None:
            kw["top_p"] = p.top_p
        if p.stop:
            kw["stop"] = list(p.stop)
        if p.seed is not None:
            kw["seed"] = p.seed
        if p.json_mode:
            kw["response_format"] = {"type": "json_object"}
        extra = dict(self.extra_body)
        if p.top_k is not None:
            extra["top_k"] = p.top_k
        if extra:
            kw["extra_body"] = extra
        return kw

    def _call(self, client: Any, request: GenerationRequest) -> tuple[str, int | None, int | None]:
        resp = client.chat.completions.create(**self.request_kwargs(request))
        message = resp.choices[0].message
        text = (
            message.content
            if message.content is not None
            else (getattr(message, "refusal", None) or "")
        )
        usage = resp.usage
        tokens_in = usage.prompt_tokens if usage is not None else None
        tokens_out = usage.completion_tokens if usage is not None else None
        return apply_stop(text, request.params.stop), tokens_in, tokens_out

    def _classify(self, exc: Exception) -> Failure:
        return sdk_failure(exc, _import_sdk())


def _import_sdk() -> Any:
    try:
        import openai
    except ImportError as exc:
        raise MissingDependency("openai", "openai", "The openai: backend") from exc
    return openai


def load(target: str, *, name: str, options: dict[str, Any], base_dir: Path) -> OpenAIModel:
    """Build an ``openai:`` model (``base_dir`` is unused: the target is a model name)."""
    return OpenAIModel(name, target, options)
