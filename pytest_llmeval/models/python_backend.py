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
import inspect
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ModelError
from pytest_llmeval.importing import import_target as _import_target
from pytest_llmeval.models.base import (
    Generation,
    GenerationInfo,
    GenerationOutcome,
    GenerationRequest,
    ModelBase,
    OnGeneration,
    Progress,
    apply_stop,
)

_OWN_OPTIONS = {"batch", "concurrency", "pass_params", "version"}


def import_target(target: str, base_dir: Path, what: str) -> Callable[..., Any]:
    """Positional form of :func:`pytest_llmeval.importing.import_target` with one base directory."""
    return _import_target(target, base_dirs=[base_dir], what=what)


class PythonModel(ModelBase):
    """Wraps a user callable; per-request exceptions land in that request's slot.

    Latency is the wall time of each call of the function (for a batch function,
    the call's time divided by the number of prompts); tokens and cost are unknown.
    """

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

    def generate_with_info(self, requests: Sequence[GenerationRequest], progress: Progress | None = None,
                           on_result: OnGeneration | None = None) -> list[Generation]:
        """Outputs with the wall time of each call (a batch function's time split evenly)."""
        if not requests:
            return []
        if self.batch:
            out = self._generate_batch(requests)
            if progress is not None:
                progress(len(requests))
        elif self.is_async:
            out = _run_async(self._generate_async(requests, progress))
        else:
            out = []
            for req in requests:
                start = time.perf_counter()
                try:
                    value = self.fn(req.prompt, **self._call_kwargs(req))
                except Exception as exc:  # noqa: BLE001 - a user model may raise anything; it is that case's ERROR
                    out.append(Generation(exc, GenerationInfo()))
                else:
                    out.append(self._timed(value, req, time.perf_counter() - start))
                if progress is not None:
                    progress(1)
        if on_result is not None:
            for i, generation in enumerate(out):
                on_result(i, generation)
        return out

    def _generate_batch(self, requests: Sequence[GenerationRequest]) -> list[Generation]:
        prompts = [r.prompt for r in requests]
        kw = self._call_kwargs(requests[0])
        start = time.perf_counter()
        result = self.fn(prompts, **kw)
        if inspect.isawaitable(result):
            result = _run_async(result)
        share = (time.perf_counter() - start) / len(prompts)
        if not isinstance(result, (list, tuple)) or len(result) != len(prompts):
            got = f"{type(result).__name__} of length {len(result)}" if isinstance(result, (list, tuple)) \
                else type(result).__name__
            raise ModelError(f"python:{self.target} (batch) must return a list of {len(prompts)} outputs, "
                             f"got {got}")
        return [Generation(r, GenerationInfo()) if isinstance(r, BaseException)
                else self._timed(r, req, share) for r, req in zip(result, requests, strict=True)]

    async def _generate_async(self, requests: Sequence[GenerationRequest],
                              progress: Progress | None) -> list[Generation]:
        sem = asyncio.Semaphore(self.concurrency)

        async def one(req: GenerationRequest) -> Generation:
            async with sem:
                start = time.perf_counter()
                try:
                    value = await self.fn(req.prompt, **self._call_kwargs(req))
                except Exception as exc:  # noqa: BLE001
                    generation = Generation(exc, GenerationInfo())
                else:
                    generation = self._timed(value, req, time.perf_counter() - start)
                if progress is not None:
                    progress(1)
                return generation

        return list(await asyncio.gather(*(one(r) for r in requests)))

    def _timed(self, value: Any, req: GenerationRequest, seconds: float) -> Generation:
        outcome = self._finish(value, req)
        info = GenerationInfo() if isinstance(outcome, BaseException) else GenerationInfo(latency_s=seconds)
        return Generation(outcome, info)

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


def load(target: str, *, name: str, options: dict[str, Any], base_dir: Path,
         search_dirs: Sequence[Path] = ()) -> PythonModel:
    """Build a ``python:`` model; the module is looked for in ``base_dir``, ``search_dirs``, sys.path."""
    fn = _import_target(target, base_dirs=[base_dir, *search_dirs], what=f"model 'python:{target}'")
    return PythonModel(fn, name=name, target=target, options=options)
