"""Plain pytest tests that use the plugin's fixtures directly, next to the eval files.

``llm_model`` is the fine-tuned example model and ``llm_baseline`` the base
model (both configured for this directory). The cases come from the same
held-out eval files as the suites, never from the training split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.stats import wilson

DATA = Path(__file__).parent / "data"
LABELS = ["positive", "negative", "neutral"]


def cases(task: str, n: int | None = None) -> list[dict[str, Any]]:
    with (DATA / f"{task}.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return rows[:n] if n else rows


def sentiment_prompt(case: dict[str, Any]) -> str:
    return f"Review: {case['text']}\nSentiment:"


@pytest.mark.parametrize("case", cases("extraction", 5), ids=lambda c: c["id"])
def test_extraction_returns_a_well_formed_record(llm_generator: Any, case: dict[str, Any]) -> None:
    out = llm_generator(f"Text: {case['text']}\nJSON:", max_new_tokens=32, stop=["\n"])
    record = json.loads(out)
    assert sorted(record) == ["age", "city", "name"]
    assert isinstance(record["age"], int) and 18 <= record["age"] <= 89


def test_batch_of_sentiment_labels_stays_in_the_label_set(llm_generator: Any) -> None:
    outputs = llm_generator.batch([sentiment_prompt(c) for c in cases("sentiment", 20)],
                                  max_new_tokens=4, stop=["\n"])
    assert [o.strip() for o in outputs if o.strip() not in LABELS] == []


def test_chat_rewrite_uses_casual_words(llm_generator: Any) -> None:
    messages = [{"role": "system", "content": "Rewrite the message in a casual style."},
                {"role": "user", "content": "I would like to purchase the beverages this evening. "
                                            "Kind regards, Nora."}]
    out = llm_generator(messages, max_new_tokens=24)
    assert "buy" in out and "purchase" not in out


def test_finetuned_beats_base_on_sentiment_with_confidence(llm_model: Any,
                                                           llm_baseline: Any) -> None:
    """Wilson intervals of the two accuracies must not overlap."""
    from pytest_llmeval.models.base import GenerationParams, GenerationRequest

    rows = cases("sentiment")
    params = GenerationParams(max_new_tokens=4, stop=("\n",))
    requests = [GenerationRequest(sentiment_prompt(c), params) for c in rows]
    accuracy = {}
    for label, model in (("finetuned", llm_model), ("base", llm_baseline)):
        outputs = model.generate(requests)
        correct = sum(isinstance(o, str) and o.strip() == c["reference"]
                      for o, c in zip(outputs, rows, strict=True))
        accuracy[label] = wilson(correct, len(rows))
    assert accuracy["finetuned"].low > accuracy["base"].high, accuracy


def test_loglikelihood_ranks_the_right_label_first(llm_model: Any) -> None:
    """Multiple-choice scoring (MMLU-style): the reference label has the highest log-likelihood."""
    if not hasattr(llm_model, "loglikelihood"):
        pytest.skip(f"{llm_model!r} has no log-likelihood scoring")
    rows = cases("sentiment", 30)
    hits = 0
    for case in rows:
        scores = llm_model.loglikelihood(sentiment_prompt(case), [" " + label for label in LABELS])
        hits += LABELS[scores.index(max(scores))] == case["reference"]
    assert hits / len(rows) >= 0.9
