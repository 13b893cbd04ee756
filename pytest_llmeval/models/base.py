"""The Model protocol every backend implements, the request/params types it takes, and ModelBase.

A model receives *all* of a suite's requests in one call so that a backend can
batch (local weights) or run them concurrently (API providers). A failure that
concerns one request is returned in that request's slot as an exception, so
the other cases keep their outputs; a failure of the whole backend raises.

:class:`Model` is the minimum a user object must provide. :class:`ModelBase`
declares everything callers use beyond it, each with a default, so that callers
call instead of probing: ``generate(requests, progress=None)``,
``generate_with_info`` (per-request latency, tokens and cost as
:class:`GenerationInfo`), ``usage()``, ``close()``, ``unwrap()`` and
``capabilities``. :func:`as_model_base` gives any :class:`Model` that surface.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, NamedTuple, Protocol, Union, runtime_checkable

from pytest_llmeval.errors import ModelError

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
    ``case_id`` tells models that answer by case (``outputs:``) which case it is.
    """

    prompt: Prompt
    params: GenerationParams = field(default_factory=GenerationParams)
    sample: int = 0
    case_id: str | None = None
    """The case this request belongs to: ``outputs:`` models answer by it. Not part of the cache key."""

    def key_payload(self) -> dict[str, Any]:
        """Everything about the request that changes the answer (for cache keys)."""
        return {"prompt": self.prompt, "params": self.params.to_dict(), "sample": self.sample}


GenerationOutcome = Union[str, BaseException]  # noqa: UP007


@dataclass(frozen=True)
class GenerationInfo:
    """What one generation cost: time, tokens, money, and whether it came from the cache.

    ``None`` means "not known" (not measured, or the backend does not report it),
    never zero. What ``latency_s`` measures depends on the backend (see the README,
    "Latency, tokens and cost"): the successful HTTP attempt for API models, the
    batch's wall time divided by its size for batched local models, the function
    call for ``python:`` models, what the file says for ``outputs:`` models.

    A cache hit keeps the figures recorded when the answer was generated, with
    ``cached=True``: a latency gate still sees the model's latency, and a cost
    figure for *this run* leaves cached generations out.
    """

    latency_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    cached: bool = False

    def as_cached(self) -> GenerationInfo:
        """The same figures, marked as replayed from the cache."""
        return replace(self, cached=True)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form (results file, cache rows, xdist payloads); every key always present."""
        return {"latency_s": self.latency_s, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "cost_usd": self.cost_usd, "cached": self.cached}

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "generation info") -> GenerationInfo:
        """Parse :meth:`to_dict` output (missing keys are unknown), rejecting wrong types and negatives.

        Raises:
            ValueError: a field has the wrong type or a negative/non-finite value;
                the message names ``where`` and the field.
        """
        if not isinstance(data, dict):
            raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
        unknown = set(data) - {"latency_s", "input_tokens", "output_tokens", "cost_usd", "cached"}
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")
        cached = data.get("cached", False)
        if not isinstance(cached, bool):
            raise ValueError(f"{where}: 'cached' must be true or false, got {cached!r}")
        return cls(latency_s=_non_negative(data, "latency_s", float, where),
                   input_tokens=_non_negative(data, "input_tokens", int, where),
                   output_tokens=_non_negative(data, "output_tokens", int, where),
                   cost_usd=_non_negative(data, "cost_usd", float, where), cached=cached)


def _non_negative(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    v = data.get(key)
    if v is None:
        return None
    ok_type = isinstance(v, int) if kind is int else isinstance(v, (int, float))
    if isinstance(v, bool) or not ok_type or not math.isfinite(v) or v < 0:
        what = "a non-negative integer" if kind is int else "a non-negative number"
        raise ValueError(f"{where}: '{key}' must be {what} or null, got {v!r}")
    return kind(v)


class Generation(NamedTuple):
    """One request's result: the text (or the exception in its slot) and what it cost."""

    outcome: GenerationOutcome
    info: GenerationInfo


Progress = Callable[[int], None]
"""Called as ``progress(n)`` when ``n`` more requests have finished (possibly from worker threads)."""

OnGeneration = Callable[[int, Generation], None]
"""Called as ``on_result(index, generation)`` as soon as request ``index`` has finished."""


@dataclass(frozen=True)
class Capabilities:
    """What a model can do beyond ``generate``, declared so callers need not probe.

    Attributes:
        streams_results: ``generate_with_info(..., on_result=...)`` (and the API
            backends' ``generate(..., on_result=...)``) report each request as soon as
            it finishes, from worker threads. A cache can send all its misses at
            once and still store each as it arrives; otherwise it should send them
            in chunks and store after each.
        needs_case_ids: answers by :attr:`GenerationRequest.case_id` (``outputs:``);
            a request without one gets an error in its slot.
        next_token_probs: ``unwrap().next_token_probs(prompts, candidates)`` exists.
        loglikelihood: ``unwrap().loglikelihood(context, continuations)`` and
            ``loglikelihood_many(pairs)`` exist.
    """

    streams_results: bool = False
    needs_case_ids: bool = False
    next_token_probs: bool = False
    loglikelihood: bool = False


@runtime_checkable
class Model(Protocol):
    """What a model must provide: the minimum a fixture may return (see :class:`ModelBase`)."""

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


@dataclass
class _InfoCollector:
    """Per-request figures a backend reports through :meth:`ModelBase.record_batch` during one call."""

    owner: object
    infos: dict[int, GenerationInfo]


_collector: ContextVar[_InfoCollector | None] = ContextVar("llmeval_generation_info", default=None)


class ModelBase:
    """Base class of every backend: identity helpers and the full, declared model surface.

    A backend implements ``generate(requests, progress=None)`` or
    ``generate_with_info(requests, progress=None, on_result=None)``; the other is
    derived. A subclass whose ``generate`` takes no ``progress`` gets it added (the
    whole call counts as done when it returns), so every ``ModelBase`` can be called
    as ``generate(requests, progress=...)``.
    """

    scheme: str = "model"
    streams_results: ClassVar[bool] = False
    """See :class:`Capabilities`; a backend that reports each request as it finishes sets it."""
    needs_case_ids: ClassVar[bool] = False
    """See :class:`Capabilities`; ``outputs:`` sets it."""

    def __init__(self, name: str, target: str, options: dict[str, Any] | None = None) -> None:
        self.name = name
        self.target = target
        self.options = dict(options or {})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("generate")
        if own is not None and not _accepts(own, "progress"):
            cls.generate = _add_progress(own)  # type: ignore[method-assign]

    # -- identity --------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """Override to add what identifies the weights (hashes, revisions)."""
        return {"scheme": self.scheme, "target": self.target}

    def fingerprint(self) -> str:
        blob = json.dumps(self.identity(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:32]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self.identity(), "fingerprint": self.fingerprint()}

    @property
    def capabilities(self) -> Capabilities:
        """What this model can do besides generating (see :class:`Capabilities`)."""
        inner = self.unwrap()
        return Capabilities(
            streams_results=type(self).streams_results,
            needs_case_ids=type(self).needs_case_ids,
            next_token_probs=callable(getattr(inner, "next_token_probs", None)),
            loglikelihood=callable(getattr(inner, "loglikelihood", None)),
        )

    # -- generation ------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest],
                 progress: Progress | None = None) -> list[GenerationOutcome]:
        """Outputs in request order; a per-request failure is an exception in its slot.

        ``progress(n)`` is called as requests finish. Derived from
        :meth:`generate_with_info` when a backend implements only that.
        """
        if type(self).generate_with_info is ModelBase.generate_with_info:
            raise NotImplementedError(f"{type(self).__name__} must implement generate() or "
                                      f"generate_with_info()")
        return [g.outcome for g in self.generate_with_info(requests, progress)]

    def generate_with_info(self, requests: Sequence[GenerationRequest], progress: Progress | None = None,
                           on_result: OnGeneration | None = None) -> list[Generation]:
        """Outputs with their :class:`GenerationInfo`, in request order.

        The default runs :meth:`generate` and times it: each answer's ``latency_s``
        is the call's wall time divided by the number of requests, unless the
        backend reported finer figures with :meth:`record_batch` during the call.
        Failed requests carry an empty info. ``on_result(i, generation)`` is called
        for every request (as it finishes when ``capabilities.streams_results``,
        otherwise once the call returns).
        """
        collector = _InfoCollector(self, {})
        token = _collector.set(collector)
        start = time.perf_counter()
        try:
            outcomes = self.generate(requests, progress=progress)
        finally:
            _collector.reset(token)
        elapsed = time.perf_counter() - start
        if len(outcomes) != len(requests):
            raise ModelError(f"{self.name}: generate() returned {len(outcomes)} outputs for "
                             f"{len(requests)} requests; it must return one per request, in order")
        share = elapsed / len(requests) if requests else 0.0
        out: list[Generation] = []
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, BaseException):
                info = GenerationInfo()
            else:
                info = collector.infos.get(i) or GenerationInfo(latency_s=share)
            out.append(Generation(outcome, info))
            if on_result is not None:
                on_result(i, out[-1])
        return out

    def record_batch(self, indices: Sequence[int], seconds: float, *,
                     input_tokens: Sequence[int | None] | None = None,
                     output_tokens: Sequence[int | None] | None = None) -> None:
        """Report from inside ``generate`` that the requests at ``indices`` ran as one batch.

        Each gets ``seconds / len(indices)`` as its latency (and its token counts,
        when given) in :meth:`generate_with_info`. Call it from the thread that runs
        ``generate``; outside a ``generate_with_info`` call it does nothing. Batched
        local backends (``hf:``) call it once per batch.
        """
        collector = _collector.get()
        if collector is None or collector.owner is not self or not indices:
            return
        share = seconds / len(indices)
        for k, i in enumerate(indices):
            collector.infos[i] = GenerationInfo(
                latency_s=share,
                input_tokens=input_tokens[k] if input_tokens is not None else None,
                output_tokens=output_tokens[k] if output_tokens is not None else None)

    # -- resources and reporting -----------------------------------------------------

    def usage(self) -> dict[str, Any]:
        """Run totals for the summary (requests, tokens, cost...); empty when there is nothing to say."""
        return {}

    def unwrap(self) -> Any:
        """The backend itself, under any wrappers (a cache): where scoring helpers live."""
        return self

    def close(self) -> None:
        """Release resources (connections, GPU memory). Safe to call twice."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.scheme}:{self.target}>"


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _add_progress(generate: Callable[..., Any]) -> Callable[..., Any]:
    """``generate(self, requests, ...)`` -> the same, plus a keyword ``progress=None``.

    Other parameters (an API backend's ``on_result``) pass through unchanged; the
    whole call counts as progress when it returns.
    """

    @functools.wraps(generate)
    def with_progress(self: Any, requests: Sequence[GenerationRequest], *args: Any,
                      progress: Progress | None = None, **kwargs: Any) -> list[GenerationOutcome]:
        outcomes = generate(self, requests, *args, **kwargs)
        if progress is not None:
            progress(len(requests))
        return outcomes  # type: ignore[no-any-return]

    sig = inspect.signature(generate)
    extra = inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=None)
    with_progress.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[*sig.parameters.values(), extra])
    return with_progress


class _AdaptedModel(ModelBase):
    """A :class:`Model` that is not a :class:`ModelBase`, given the full surface by delegation."""

    scheme = "custom"

    def __init__(self, model: Model) -> None:
        super().__init__(model.name, type(model).__name__)
        self.model = model
        self._takes_progress = _accepts(model.generate, "progress")

    def fingerprint(self) -> str:
        return self.model.fingerprint()

    def describe(self) -> dict[str, Any]:
        return self.model.describe()

    def generate(self, requests: Sequence[GenerationRequest],
                 progress: Progress | None = None) -> list[GenerationOutcome]:
        if self._takes_progress:
            return self.model.generate(requests, progress=progress)  # type: ignore[call-arg]
        outcomes = self.model.generate(requests)
        if progress is not None:
            progress(len(requests))
        return outcomes

    def usage(self) -> dict[str, Any]:
        fn = getattr(self.model, "usage", None)
        return dict(fn()) if callable(fn) else {}

    def unwrap(self) -> Any:
        return self.model

    def close(self) -> None:
        fn = getattr(self.model, "close", None)
        if callable(fn):
            fn()

    def __repr__(self) -> str:
        return f"<model {self.model!r}>"


def as_model_base(model: Model) -> ModelBase:
    """``model`` itself when it is a :class:`ModelBase`, else a delegating :class:`ModelBase`.

    Callers that accept user models (fixtures) call this once, then call the
    declared methods without probing.
    """
    if isinstance(model, ModelBase):
        return model
    if not isinstance(model, Model):
        raise TypeError(f"expected a Model (name, fingerprint(), describe(), generate(requests)), "
                        f"got {type(model).__name__}")
    return _AdaptedModel(model)


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


# --------------------------------------------------------------------------- loading announcements

LoadListener = Callable[[str, bool], None]
"""Called as ``listener(what, True)`` when a model starts loading and ``(what, False)`` when done."""
_LOAD_LISTENER: ContextVar[LoadListener | None] = ContextVar("llmeval_load_listener", default=None)


@contextlib.contextmanager
def loading(what: str) -> Iterator[None]:
    """Announce that ``what`` (``hf:models/base``) is loading, so progress can say so before counting.

    Backends whose first call loads weights wrap that load in it; a ``python:`` model can too.
    Without a listener (outside a suite's evaluation) nothing is announced. Either way the
    cyclic garbage collector is paused for the load (see :func:`settle_heap`).
    """
    import gc

    listener = _LOAD_LISTENER.get()
    if listener is not None:
        listener(what, True)
    paused = settling() and gc.isenabled()
    if paused:
        gc.disable()  # a load allocates a library stack at once: full passes over it are wasted
    try:
        yield
    finally:
        if paused:
            gc.enable()
        if listener is not None:
            listener(what, False)


_SETTLED_MODULES = 0
"""``len(sys.modules)`` when :func:`settle_heap` last froze the heap."""


def settling() -> bool:
    """Whether :func:`settle_heap` runs (``LLMEVAL_GC_FREEZE=0`` turns it off)."""
    return os.environ.get("LLMEVAL_GC_FREEZE", "1") != "0"


def settle_heap() -> None:
    """Take a library stack just imported out of the cyclic garbage collector's full passes.

    A backend calls this after importing its libraries and before building a model;
    :func:`loading` pauses the collector for the whole load. Importing torch,
    transformers and peft leaves about 600,000 objects the collector tracks, alive for
    the whole run. Every full collection, the interpreter's own and pytest's five at its
    end, walked all of them again: 0.3 s each on a 2-core machine, 3 s of the example
    suite's 20. One collection here frees the imports' own garbage, then
    ``gc.freeze()`` moves every survivor to the permanent generation, which later
    collections skip. It runs only when at least 200 modules were imported since the
    last time, so a model built by an earlier load is not frozen by each later one.
    Frozen objects are still freed by reference counting (a transformers model is
    freed that way); only a reference cycle among them that becomes garbage later is
    kept until the process ends. ``LLMEVAL_GC_FREEZE=0`` turns this off.
    """
    global _SETTLED_MODULES
    if not settling() or len(sys.modules) - _SETTLED_MODULES < 200:
        return
    import gc

    gc.collect()
    gc.freeze()
    _SETTLED_MODULES = len(sys.modules)


@contextlib.contextmanager
def listen_for_loading(listener: LoadListener | None) -> Iterator[None]:
    """Send the :func:`loading` announcements made in this context (this thread) to ``listener``."""
    token = _LOAD_LISTENER.set(listener)
    try:
        yield
    finally:
        _LOAD_LISTENER.reset(token)
