"""``python:module:function`` as a judge: your own code decides the verdicts.

The function is called once per verdict as ``fn(kind, **fields)``:

- ``kind == "score"``: fields ``prompt``, ``response``, ``criteria``, ``reference``,
  ``scale`` (``(lo, hi)``), ``rubric`` (a dict or None) and ``history`` (the earlier
  turns of a multi-turn case, ``[{"user", "answer", "reference"}, ...]``; empty for a
  single-turn case, and then ``prompt`` is the last user message). Return a number on
  the scale, ``{"score": x, "reasoning": "..."}``, with a rubric
  ``{"scores": {name: x, ...}, "reasoning": "..."}``, or such an object as JSON text.
- ``kind == "compare"``: fields ``prompt``, ``response_a``, ``response_b`` (in the
  order shown; with ``swap`` on, each pair is asked twice, swapped),
  ``criteria``, ``reference``, ``history_a`` and ``history_b`` (each side's earlier
  turns, as ``history``). Return ``"A"``, ``"B"``, ``"tie"``,
  ``{"winner": ..., "reasoning": ...}`` or that object as JSON text.

Only the fields the function's signature accepts are passed (all of them when
it takes ``**kwargs``). A coroutine function runs its calls concurrently
(``concurrency``, default 16). Exceptions and invalid returns become that
verdict's JudgeError; there is no repair retry, since a function gives the same
answer twice.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError, JudgeError
from pytest_llmeval.importing import import_target
from pytest_llmeval.judge.base import COMMON_OPTIONS, Judge, OrderItem, ScoreItem, Turn, check_options
from pytest_llmeval.judge.verdicts import (
    WINNERS,
    OrderVerdict,
    ScoreVerdict,
    VerdictError,
    parse_pair,
    parse_score,
)

PYTHON_OPTIONS = tuple(o for o in COMMON_OPTIONS if not o.startswith("prompt")) + ("concurrency",)


class PythonJudge(Judge):
    """Verdicts from a user function (sync or async)."""

    kind = "python"

    def __init__(self, fn: Callable[..., Any], name: str, options: Mapping[str, Any]) -> None:
        check_options(options, PYTHON_OPTIONS, f"judge {name!r}")
        super().__init__(name, options)
        self.fn = fn
        self.is_async = inspect.iscoroutinefunction(fn)
        concurrency = options.get("concurrency", 16)
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise ConfigError(f"judge option 'concurrency' must be a positive integer, "
                              f"got {concurrency!r}")
        self.concurrency = concurrency
        params = inspect.signature(fn).parameters.values()
        self._takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
        self._accepts = {p.name for p in params}

    def _kwargs(self, fields: dict[str, Any]) -> dict[str, Any]:
        if self._takes_all:
            return fields
        return {k: v for k, v in fields.items() if k in self._accepts}

    def _call_all(self, kind: str, calls: Sequence[dict[str, Any]]) -> list[Any]:
        """Run every call; an exception is returned in its slot."""
        if not self.is_async:
            out: list[Any] = []
            for fields in calls:
                try:
                    out.append(self.fn(kind, **self._kwargs(fields)))
                except Exception as exc:
                    out.append(exc)
            return out

        async def run() -> list[Any]:
            sem = asyncio.Semaphore(self.concurrency)

            async def one(fields: dict[str, Any]) -> Any:
                async with sem:
                    return await self.fn(kind, **self._kwargs(fields))

            return await asyncio.gather(*(one(f) for f in calls), return_exceptions=True)

        return asyncio.run(run())

    def _score_batch(self, items: Sequence[ScoreItem]) -> list[ScoreVerdict | BaseException]:
        calls = [{"prompt": i.prompt, "response": i.response, "criteria": i.criteria,
                  "reference": i.reference, "scale": i.scale,
                  "rubric": dict(i.rubric) if i.rubric else None, "history": _turns(i.history)}
                 for i in items]
        results: list[ScoreVerdict | BaseException] = []
        for item, value in zip(items, self._call_all("score", calls), strict=True):
            results.append(self._wrap(value, partial(_to_score, item=item)))
        return results

    def _order_batch(self, items: Sequence[OrderItem]) -> list[OrderVerdict | BaseException]:
        calls = [{"prompt": i.prompt, "response_a": i.first_text, "response_b": i.second_text,
                  "criteria": i.criteria, "reference": i.reference,
                  "history_a": _turns(i.first_history), "history_b": _turns(i.second_history)}
                 for i in items]
        results: list[OrderVerdict | BaseException] = []
        for item, value in zip(items, self._call_all("compare", calls), strict=True):
            results.append(self._wrap(value, partial(_to_order, item=item)))
        return results

    def _wrap(self, value: Any, convert: Callable[[Any], Any]) -> Any:
        if isinstance(value, BaseException):
            err = JudgeError(f"judge function {self.name!r} raised "
                             f"{type(value).__name__}: {value}")
            err.__cause__ = value
            return err
        try:
            return convert(value)
        except VerdictError as exc:
            return JudgeError(f"judge function {self.name!r} returned an invalid verdict: {exc}",
                              raw=repr(value))


def _turns(history: Sequence[Turn]) -> list[dict[str, Any]]:
    return [{"user": t.user, "answer": t.answer, "reference": t.reference} for t in history]


def _number(value: Any, lo: int, hi: int, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise VerdictError(f"{what} must be a number from {lo} to {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise VerdictError(f"{what} must be from {lo} to {hi}, got {value}")
    return float(value)


def _to_score(value: Any, item: ScoreItem) -> ScoreVerdict:
    lo, hi = item.scale
    rubric = list(item.rubric) if item.rubric else None
    if isinstance(value, str):
        return parse_score(value, item.scale, rubric)
    if not isinstance(value, Mapping):
        if rubric:
            raise VerdictError("with a rubric, return {'scores': {criterion: score}, "
                               "'reasoning': '...'}")
        return ScoreVerdict(_number(value, lo, hi, "the score"), "", item.scale, None, repr(value))
    raw = json.dumps(value, default=str)
    reasoning = value.get("reasoning", "")
    if not isinstance(reasoning, str):
        raise VerdictError("'reasoning' must be a string")
    if rubric:
        scores = value.get("scores")
        if not isinstance(scores, Mapping) or set(scores) != set(rubric):
            raise VerdictError(f"'scores' must map exactly the rubric's criteria {rubric} "
                               f"to numbers, got {scores!r}")
        per = {k: _number(scores[k], lo, hi, f"scores[{k!r}]") for k in rubric}
        return ScoreVerdict(sum(per.values()) / len(per), reasoning, item.scale, per, raw)
    if "score" not in value:
        raise VerdictError(f"the returned dict needs a 'score' key, got keys {sorted(value)}")
    return ScoreVerdict(_number(value["score"], lo, hi, "'score'"), reasoning, item.scale,
                        None, raw)


def _to_order(value: Any, item: OrderItem) -> OrderVerdict:
    if isinstance(value, str) and value in WINNERS:
        return OrderVerdict(item.first, value, "", value)  # type: ignore[arg-type]
    if isinstance(value, str):
        return parse_pair(value, item.first)
    if isinstance(value, Mapping):
        winner = value.get("winner")
        reasoning = value.get("reasoning", "")
        if winner not in WINNERS or not isinstance(reasoning, str):
            raise VerdictError(f"return {{'winner': 'A'|'B'|'tie', 'reasoning': str}}, "
                               f"got {dict(value)!r}")
        return OrderVerdict(item.first, winner, reasoning, json.dumps(value, default=str))
    raise VerdictError(f"return 'A', 'B', 'tie' or {{'winner': ..., 'reasoning': ...}}, "
                       f"got {value!r}")


def load(target: str, *, name: str, options: Mapping[str, Any], base_dir: Path,
         search_dirs: Sequence[Path] = ()) -> PythonJudge:
    """A judge from ``python:module:function``, looked for in ``base_dir``, ``search_dirs``, sys.path."""
    fn = import_target(target, base_dirs=[base_dir, *search_dirs], what=f"judge 'python:{target}'")
    return PythonJudge(fn, name, options)
