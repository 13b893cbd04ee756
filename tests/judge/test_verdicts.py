from __future__ import annotations

import pytest

from pytest_llmeval.judge.verdicts import (
    OrderVerdict,
    VerdictError,
    combine_orders,
    parse_pair,
    parse_score,
)


def test_parse_score_accepts_exact_object_and_code_fence():
    v = parse_score('{"reasoning": "ok", "score": 7}', (1, 10))
    assert (v.score, v.reasoning, v.scale, v.rubric) == (7.0, "ok", (1, 10), None)
    fenced = parse_score('```json\n{"reasoning": "ok", "score": 3}\n```', (1, 10))
    assert fenced.score == 3.0


@pytest.mark.parametrize("raw, problem", [
    ('{"reasoning": "x", "score": 11}', "from 1 to 10"),
    ('{"reasoning": "x", "score": 0}', "from 1 to 10"),
    ('{"reasoning": "x", "score": 7.5}', "integer"),
    ('{"reasoning": "x", "score": true}', "integer"),
    ('{"reasoning": "x", "score": "7"}', "integer"),
    ('{"score": 7}', "missing keys ['reasoning']"),
    ('{"reasoning": "x", "score": 7, "extra": 1}', "unexpected keys ['extra']"),
    ('Sure! {"reasoning": "x", "score": 7}', "single JSON object"),
    ('{"reasoning": "x", "score": 7} and more', "not valid JSON"),
    ('{"reasoning": 5, "score": 7}', "'reasoning' must be a string"),
    ('[7]', "single JSON object"),
])
def test_parse_score_rejects_anything_else(raw, problem):
    with pytest.raises(VerdictError) as info:
        parse_score(raw, (1, 10))
    assert problem in str(info.value)


def test_parse_score_rubric_needs_exactly_the_criteria():
    v = parse_score('{"reasoning": "r", "scores": {"Accuracy": 4, "Fluency": 2}}', (1, 5),
                    ["Accuracy", "Fluency"])
    assert v.rubric == {"Accuracy": 4.0, "Fluency": 2.0}
    assert v.score == 3.0
    with pytest.raises(VerdictError, match="missing keys"):
        parse_score('{"reasoning": "r", "scores": {"Accuracy": 4}}', (1, 5),
                    ["Accuracy", "Fluency"])
    with pytest.raises(VerdictError, match="from 1 to 5"):
        parse_score('{"reasoning": "r", "scores": {"Accuracy": 6, "Fluency": 2}}', (1, 5),
                    ["Accuracy", "Fluency"])


def test_parse_pair_and_swapped_order_maps_back_to_caller_labels():
    assert parse_pair('{"reasoning": "r", "winner": "A"}', "a").winner == "A"
    swapped = parse_pair('{"reasoning": "r", "winner": "A"}', "b")
    assert swapped.shown_winner == "A" and swapped.winner == "B"
    assert parse_pair('{"reasoning": "r", "winner": "tie"}', "b").winner == "tie"
    with pytest.raises(VerdictError, match="winner"):
        parse_pair('{"reasoning": "r", "winner": "a"}', "a")


def test_disagreeing_orders_make_a_tie():
    first = OrderVerdict("a", "A", "first is better")
    second = OrderVerdict("b", "A", "first is better")  # position bias: caller's b
    pair = combine_orders([first, second], 10, 20)
    assert pair.winner == "tie" and pair.consistent is False
    agree = combine_orders([first, OrderVerdict("b", "B", "second")], 10, 20)
    assert agree.winner == "A" and agree.consistent is True
    single = combine_orders([first], 10, 20)
    assert single.consistent is None and single.winner == "A"
    assert pair.to_dict()["orders"][1]["winner"] == "B"
