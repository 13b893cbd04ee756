"""Judge verdicts: the frozen records a judge returns, and strict parsing of raw replies.

Parsing is deliberately strict: the whole reply (surrounding whitespace and one
Markdown code fence aside) must be one JSON object with exactly the expected
keys, scores must be integers inside the scale. A verdict that a judged output
smuggled into the judge's reply next to other text is therefore never taken for
the judge's own verdict.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Winner = Literal["A", "B", "tie"]
WINNERS: tuple[str, ...] = ("A", "B", "tie")

_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n(?P<body>.*)\n```\Z", re.DOTALL)


class VerdictError(ValueError):
    """A reply is not a valid verdict; the message says what was wrong (fed back in the repair)."""


@dataclass(frozen=True)
class ScoreVerdict:
    """A single-output score.

    Attributes:
        score: the score (the mean of the criteria scores when a rubric is used;
            a probability-weighted score for G-Eval style local judges).
        reasoning: the judge's explanation.
        scale: the ``(lowest, highest)`` score allowed.
        rubric: per-criterion scores when the judge scored against a rubric.
        raw: the judge's raw reply (the repaired one when a repair was needed).
        repaired: the first reply was invalid and the repair retry produced this one.
        greedy_score: with a probability-weighted score, the score the judge wrote.
    """

    score: float
    reasoning: str
    scale: tuple[int, int]
    rubric: dict[str, float] | None = None
    raw: str = ""
    repaired: bool = False
    greedy_score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"score": self.score, "reasoning": self.reasoning,
                             "scale": list(self.scale), "raw": self.raw}
        if self.rubric is not None:
            d["rubric"] = dict(self.rubric)
        if self.repaired:
            d["repaired"] = True
        if self.greedy_score is not None:
            d["greedy_score"] = self.greedy_score
        return d


@dataclass(frozen=True)
class OrderVerdict:
    """One presentation order of a pair: which position won, as the judge saw it.

    Attributes:
        first: which caller output was shown in position A (``"a"`` or ``"b"``).
        shown_winner: ``"A"``, ``"B"`` or ``"tie"`` in the positions shown.
        reasoning: the judge's explanation.
        raw: the raw reply.
        repaired: the repair retry produced it.
    """

    first: Literal["a", "b"]
    shown_winner: Winner
    reasoning: str
    raw: str = ""
    repaired: bool = False

    @property
    def winner(self) -> Winner:
        """The winner in the caller's labelling (``"A"`` is the caller's ``a``)."""
        if self.first == "a" or self.shown_winner == "tie":
            return self.shown_winner
        return "B" if self.shown_winner == "A" else "A"

    def to_dict(self) -> dict[str, Any]:
        return {"first": self.first, "shown_winner": self.shown_winner, "winner": self.winner,
                "reasoning": self.reasoning, "raw": self.raw, "repaired": self.repaired}


@dataclass(frozen=True)
class PairVerdict:
    """A pairwise comparison in the caller's labelling (``A`` is ``a``, ``B`` is ``b``).

    With both orders judged, two disagreeing verdicts make a tie (``consistent``
    is False). ``consistent`` is None when only one order was judged.
    """

    winner: Winner
    orders: tuple[OrderVerdict, ...]
    consistent: bool | None
    len_a: int = 0
    len_b: int = 0

    @property
    def reasoning(self) -> str:
        """All orders' reasoning, labelled, for failure messages."""
        if len(self.orders) == 1:
            return self.orders[0].reasoning
        return "\n".join(f"[{'a' if o.first == 'a' else 'b'} shown first] {o.reasoning}"
                         for o in self.orders)

    def to_dict(self) -> dict[str, Any]:
        return {"winner": self.winner, "consistent": self.consistent,
                "orders": [o.to_dict() for o in self.orders],
                "len_a": self.len_a, "len_b": self.len_b}


def combine_orders(orders: Sequence[OrderVerdict], len_a: int, len_b: int) -> PairVerdict:
    """Merge the verdicts of one or two orders: disagreement counts as a tie."""
    winners = {o.winner for o in orders}
    if len(orders) == 1:
        return PairVerdict(orders[0].winner, tuple(orders), None, len_a, len_b)
    consistent = len(winners) == 1
    winner: Winner = orders[0].winner if consistent else "tie"
    return PairVerdict(winner, tuple(orders), consistent, len_a, len_b)


def _load_object(raw: str) -> dict[str, Any]:
    text = raw.strip()
    m = _FENCE.match(text)
    if m:
        text = m.group("body").strip()
    if not text.startswith("{"):
        raise VerdictError("the reply must be a single JSON object and nothing else")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VerdictError(f"the reply is not valid JSON ({exc.msg} at char {exc.pos})") from None
    if not isinstance(obj, dict):
        raise VerdictError("the reply must be a JSON object")
    return obj


def _check_keys(obj: Mapping[str, Any], expected: Sequence[str]) -> None:
    keys = set(obj)
    if keys != set(expected):
        missing = sorted(set(expected) - keys)
        extra = sorted(keys - set(expected))
        parts = []
        if missing:
            parts.append(f"missing keys {missing}")
        if extra:
            parts.append(f"unexpected keys {extra}")
        raise VerdictError(f"the JSON object must have exactly the keys {list(expected)}: "
                           + ", ".join(parts))


def _int_in_range(value: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise VerdictError(f"{what} must be an integer from {lo} to {hi}, got {value!r}")
    if not lo <= value <= hi:
        raise VerdictError(f"{what} must be an integer from {lo} to {hi}, got {value}")
    return int(value)


def _reasoning(obj: Mapping[str, Any]) -> str:
    r = obj["reasoning"]
    if not isinstance(r, str):
        raise VerdictError(f"'reasoning' must be a string, got {type(r).__name__}")
    return r


def parse_score(raw: str, scale: tuple[int, int],
                rubric: Sequence[str] | None = None) -> ScoreVerdict:
    """Parse ``{"reasoning": str, "score": int}`` or, with a rubric,
    ``{"reasoning": str, "scores": {criterion: int, ...}}`` (exactly the rubric's names).

    Raises:
        VerdictError: anything else, with the reason.
    """
    obj = _load_object(raw)
    lo, hi = scale
    if rubric:
        _check_keys(obj, ("reasoning", "scores"))
        scores = obj["scores"]
        if not isinstance(scores, dict):
            raise VerdictError("'scores' must be an object mapping each criterion to an integer")
        _check_keys(scores, list(rubric))
        per = {name: float(_int_in_range(scores[name], lo, hi, f"scores[{name!r}]"))
               for name in rubric}
        mean = sum(per.values()) / len(per)
        return ScoreVerdict(mean, _reasoning(obj), (lo, hi), per, raw)
    _check_keys(obj, ("reasoning", "score"))
    score = _int_in_range(obj["score"], lo, hi, "'score'")
    return ScoreVerdict(float(score), _reasoning(obj), (lo, hi), None, raw)


def parse_pair(raw: str, first: Literal["a", "b"]) -> OrderVerdict:
    """Parse ``{"reasoning": str, "winner": "A" | "B" | "tie"}`` for one presentation order.

    Raises:
        VerdictError: anything else, with the reason.
    """
    obj = _load_object(raw)
    _check_keys(obj, ("reasoning", "winner"))
    w = obj["winner"]
    if w not in WINNERS:
        raise VerdictError(f"'winner' must be one of \"A\", \"B\" or \"tie\", got {w!r}")
    return OrderVerdict(first, w, _reasoning(obj), raw)
