"""``python:module:function``: any user function as a model.

The function may take one prompt and return one string (``str -> str``), or
take the list of prompts and return a list (``list -> list``, declared with
``batch: true`` or detected from a ``prompts`` first parameter); it may be a
coroutine function, in which case the requests run concurrently (``concurrency``
option, default 16). Keyword options other than the backend's own are passed to
the function.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import inspect
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError, ModelError
from pytest_llmeval.models.base import GenerationOutcome, GenerationRequest, ModelBase, apply_stop

_OWN_OPTIONS = {"batch", "concurrency", "pass_params", "version"}


def import_target(target: str, base_dir: Path, what: str) -> Callable[..., Any]:
    """Import ``module:attr`` (``module`` may be dotted); the suite's directory is importable."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what}: expected 'python:module:function', got 'python:{target}'")
    added = str(base_dir) not in sys.path
    if added:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{what}: cannot import module '{module_name}' ({exc}); it must be importable "
                          f"from {base_dir} or the PYTHONPATH") from None
    finally:
        if added:
            sys.path.remove(str(base_dir))
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise ConfigError(f"{what}: module '{module_name}' has no attribute '{attr}'")
    if not callable(obj):
        raise ConfigError(f"{what}: '{target}' is not callable")
    return obj  # type: ignore[no-any-return]


class PythonModel(ModelBase):
    """Wraps a user callable; per-request exceptions land in that request's slot."""

    scheme = "python"

    def __init__(self, fn: Callable[..., Any], *, name: str, target: str,
                 options: dict[str, Any]) -> None:
        super().__init__(name, target, options)
        self.fn = fn
        self.kwargs = {k: v for k, v in options.items() if k not in _OWN_OPTIONS}
        self.concurrency = int(options.get("concurrency", 16))
        self.pass_params = bool(options.get("pass_params", False))
        self.is_async = inspect.iscoroutinefunction(fn)
        batch = options.get("batch")
        if batch is None:
            params = list(inspect.signature(fn).parameters)
            batch = bool(params) and params[0] in ("prompts", "batch", "inputs")
        self.batch = bool(batch)

    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {"scheme": self.scheme, "target": self.target, "kwargs": self.kwargs}
        if "version" in self.options:
            ident["version"] = self.options["version"]
        else:
            try:
                src = inspect.getsource(self.fn)
                ident["source_sha"] = hashlib.sha256(src.encode()).hexdigest()[:16]
            except (OSError, TypeError):
                pass
        return ident

    def _call_kwargs(self, req: GenerationRequest) -> dict[str, Any]:
        kw = dict(self.kwargs)
        if self.pass_params:
            kw["params"] = req.params
        return kw

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        if not requests:
            return []
        if self.batch:
            return self._generate_batch(requests)
        if self.is_async:
            return _run_async(self._generate_async(requests))
        out: list[GenerationOutcome] = []
        for req in requests:
            try:
                out.append(self._finish(self.fn(req.prompt, **self._call_kwargs(req)), req))
            except Exception as exc:  # noqa: BLE001 - a user model may raise anything; it is that case's ERROR
                out.append(exc)
        return out

    def _generate_batch(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        prompts = [r.prompt for r in requests]
        kw = self._call_kwargs(requests[0])
        result = self.fn(prompts, **kw)
        if inspect.isawaitable(result):
            result = _run_async(result)
        if not isinstance(result, (list, tuple)) or len(result) != len(prompts):
            got = f"{type(result).__name__} of length {len(result)}" if isinstance(result, (list, tuple)) \
                else type(result).__name__
            raise ModelError(f"python:{self.target} (batch) must return a list of {len(prompts)} outputs, "
                             f"got {got}")
        return [r if isinstance(r, BaseException) else self._finish(r, req)
                for r, req in zip(result, requests, strict=True)]

    async def _generate_async(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        sem = asyncio.Semaphore(self.concurrency)

        async def one(req: GenerationRequest) -> GenerationOutcome:
            async with sem:
                try:
                    return self._finish(await self.fn(req.prompt, **self._call_kwargs(req)), req)
                except Exception as exc:  # noqa: BLE001
                    return exc

        return list(await asyncio.gather(*(one(r) for r in requests)))

    def _finish(self, value: Any, req: GenerationRequest) -> GenerationOutcome:
        if not isinstance(value, str):
            return ModelError(f"python:{self.target} returned {type(value).__name__} ({value!r:.80}), "
                              f"expected str")
        return apply_stop(value, req.params.stop) if req.params.stop else value


def _run_async(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def load(target: str, *, name: str, options: dict[str, Any], base_dir: Path) -> PythonModel:
    fn = import_target(target, base_dir, f"model python:{target}")
    return PythonModel(fn, name=name, target=target, options=options)
