"""The Judge interface shared by every judge backend, and its request types.

A backend implements two batched primitives: score a list of outputs, and
judge a list of pairs in one presentation order. This class builds single
calls, the swap of pairwise positions and the merging of both orders on top
of them, so every backend gets the same position-bias handling.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pytest_llmeval.errors import ConfigError, JudgeError
from pytest_llmeval.judge.verdicts import OrderVerdict, PairVerdict, ScoreVerdict, combine_orders
from pytest_llmeval.models.base import Prompt, messages_to_text

COMMON_OPTIONS = ("scale", "rubric", "swap", "prompt_score", "prompt_pairwise", "prompts")
DEFAULT_SCALE = (1, 10)
DEFAULT_RUBRIC_SCALE = (1, 5)


@dataclass(frozen=True)
class Turn:
    """An earlier turn of a conversation: the user's message, the answer given to it, its reference.

    A judge sees these before the turn it judges, so that a follow-up answer is judged in
    the context it replied to (MT-Bench's second-turn grading).
    """

    user: str
    answer: str
    reference: str | None = None


@dataclass(frozen=True)
class ScoreRequest:
    """One output to score. ``rubric`` overrides the judge's rubric for this request.

    ``history``: the conversation's earlier turns (empty for a single-turn case); ``prompt``
    is then the last user message and ``response`` the answer to judge.
    """

    prompt: Prompt
    response: str
    criteria: str | None = None
    reference: str | Sequence[str] | None = None
    rubric: Mapping[str, str] | None = None
    history: Sequence[Turn] = ()


@dataclass(frozen=True)
class CompareRequest:
    """One pair to compare. ``swap`` overrides the judge's ``swap`` option for this request.

    ``history_a``/``history_b``: the earlier turns of each side's own conversation (the same
    user messages, each side's own answers); empty for a single-turn case.
    """

    prompt: Prompt
    a: str
    b: str
    criteria: str | None = None
    reference: str | Sequence[str] | None = None
    swap: bool | None = None
    history_a: Sequence[Turn] = ()
    history_b: Sequence[Turn] = ()


@dataclass(frozen=True)
class ScoreItem:
    """A score request with everything resolved: flattened prompt, scale, rubric."""

    prompt: str
    response: str
    criteria: str | None
    reference: str | Sequence[str] | None
    scale: tuple[int, int]
    rubric: Mapping[str, str] | None
    history: tuple[Turn, ...] = ()


@dataclass(frozen=True)
class OrderItem:
    """One presentation order of a pair: ``first`` is shown as Response A (with its own history)."""

    prompt: str
    first_text: str
    second_text: str
    first: Literal["a", "b"]
    criteria: str | None
    reference: str | Sequence[str] | None
    first_history: tuple[Turn, ...] = ()
    second_history: tuple[Turn, ...] = ()


def check_options(options: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    """Raise ConfigError for an unknown option, with a did-you-mean."""
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, list(known), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{where}: unknown judge option '{key}'.{hint} "
                              f"Known options: {', '.join(sorted(known))}.")


def parse_scale(value: Any) -> tuple[int, int] | None:
    """``[lo, hi]`` with integers lo < hi, or None when not given."""
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or value[0] >= value[1]):
        raise ConfigError(f"judge option 'scale' must be [lowest, highest] integers, e.g. [1, 10]; "
                          f"got {value!r}")
    return int(value[0]), int(value[1])


def parse_rubric(value: Any, option: str = "rubric") -> dict[str, str] | None:
    """A rubric: a mapping criterion name -> description, or a list of names."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return {v: v for v in value}
    if isinstance(value, Mapping) and value and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        return dict(value)
    raise ConfigError(f"judge option '{option}' must map criterion names to descriptions, e.g. "
                      f"{{Accuracy: 'Is the information correct?'}}, or list names; got {value!r}")


class Judge:
    """Scores single outputs and compares pairs. Subclasses implement the two batch primitives.

    Attributes:
        name: how the judge is shown in results (its reference).
        scale: the explicit ``scale`` option, or None for the default (1-10, 1-5 with a rubric).
        rubric: the default rubric, or None.
        swap: judge pairs in both orders (default True).
    """

    kind = "judge"

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        self.name = name
        self.scale = parse_scale(options.get("scale"))
        self.rubric = parse_rubric(options.get("rubric"))
        swap = options.get("swap", True)
        if not isinstance(swap, bool):
            raise ConfigError(f"judge option 'swap' must be true or false, got {swap!r}")
        self.swap = swap

    def describe(self) -> dict[str, Any]:
        """JSON-able identity recorded in results."""
        return {"name": self.name, "kind": self.kind, "scale": list(self.scale or DEFAULT_SCALE),
                "rubric": self.rubric, "swap": self.swap}

    def _resolve(self, req: ScoreRequest) -> ScoreItem:
        rubric = parse_rubric(req.rubric) if req.rubric is not None else self.rubric
        scale = self.scale or (DEFAULT_RUBRIC_SCALE if rubric else DEFAULT_SCALE)
        return ScoreItem(messages_to_text(req.prompt), req.response, req.criteria,
                         req.reference, scale, rubric, tuple(req.history))

    def score(self, prompt: Prompt, response: str, criteria: str | None = None,
              reference: str | Sequence[str] | None = None) -> ScoreVerdict:
        """Score one output; raises JudgeError when no valid verdict could be had."""
        out = self.score_many([ScoreRequest(prompt, response, criteria, reference)])[0]
        if isinstance(out, BaseException):
            raise out
        return out

    def compare(self, prompt: Prompt, a: str, b: str, criteria: str | None = None,
                reference: str | Sequence[str] | None = None) -> PairVerdict:
        """Compare two outputs (both orders unless ``swap`` is off); JudgeError on failure."""
        out = self.compare_many([CompareRequest(prompt, a, b, criteria, reference)])[0]
        if isinstance(out, BaseException):
            raise out
        return out

    def score_many(self, requests: Sequence[ScoreRequest]) -> list[ScoreVerdict | BaseException]:
        """Score all requests in one batch; a failed one is an exception in its slot."""
        if not requests:
            return []
        return self._score_batch([self._resolve(r) for r in requests])

    def compare_many(self, requests: Sequence[CompareRequest]) -> list[PairVerdict | BaseException]:
        """Compare all pairs, every order of every pair in one batch."""
        items: list[OrderItem] = []
        spans: list[tuple[int, int]] = []
        for r in requests:
            prompt = messages_to_text(r.prompt)
            start = len(items)
            ha, hb = tuple(r.history_a), tuple(r.history_b)
            items.append(OrderItem(prompt, r.a, r.b, "a", r.criteria, r.reference, ha, hb))
            if self.swap if r.swap is None else r.swap:
                items.append(OrderItem(prompt, r.b, r.a, "b", r.criteria, r.reference, hb, ha))
            spans.append((start, len(items)))
        outcomes = self._order_batch(items) if items else []
        results: list[PairVerdict | BaseException] = []
        for r, (start, end) in zip(requests, spans, strict=True):
            parts = outcomes[start:end]
            errors = [p for p in parts if isinstance(p, BaseException)]
            if errors:
                results.append(errors[0] if len(errors) == 1 else JudgeError(
                    "both orders of the pair failed: " + " | ".join(str(e) for e in errors)))
                continue
            orders = [p for p in parts if isinstance(p, OrderVerdict)]
            results.append(combine_orders(orders, len(r.a), len(r.b)))
        return results

    def _score_batch(self, items: Sequence[ScoreItem]) -> list[ScoreVerdict | BaseException]:
        raise NotImplementedError

    def _order_batch(self, items: Sequence[OrderItem]) -> list[OrderVerdict | BaseException]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the judge's resources (its model)."""
