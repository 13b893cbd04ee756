"""Multiple-choice questions: the prompt format, few-shot examples, and how a choice is picked.

The format is lm-evaluation-harness's MMLU task (``lm_eval/tasks/mmlu/default``)::

    The following are multiple choice questions (with answers) about <subject>.

    <example question>
    A. <choice>
    B. <choice>
    ...
    Answer: <letter of the example's answer>

    <question, stripped>
    A. <choice>
    ...
    Answer:

with each choice scored as the continuation ``" A"``, ``" B"``... (or ``" " + choice
text`` with ``continuation: text``). From the summed log-probabilities, ``acc`` picks
the most likely continuation and ``acc_norm`` the most likely per character of the
choice string (lm-evaluation-harness's ``process_results`` for ``multiple_choice``:
``argmax(lls / len(choice))``, the first maximum on ties). Models that only generate
are scored on the letter extracted from their answer (:func:`extract_choice`).

Nothing here imports pytest or a model backend.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MMLU_DESCRIPTION = "The following are multiple choice questions (with answers) about {subject}."
"""lm-evaluation-harness's MMLU description (its ``_generate_configs.py``), followed by a blank line."""
TARGET_DELIMITER = " "
FEWSHOT_DELIMITER = "\n\n"


@dataclass(frozen=True)
class Question:
    """One multiple-choice question: text, choices, the index of the right one, its subject."""

    id: str
    text: str
    choices: tuple[str, ...]
    answer: int
    subject: str | None = None
    prompt: str | None = None
    """The question rendered by the suite's own ``prompt:`` template, used as it stands."""

    @property
    def labels(self) -> str:
        return LETTERS[: len(self.choices)]


def subject_name(category: str | None) -> str:
    """``high_school_biology`` -> ``high school biology`` (as lm-evaluation-harness writes it)."""
    return " ".join((category or "").split("_"))


def format_question(q: Question) -> str:
    """``question.strip()``, one ``X. choice`` line per choice, then ``Answer:`` (or the own prompt)."""
    if q.prompt is not None:
        return q.prompt
    lines = [q.text.strip()] + [
        f"{label}. {choice}" for label, choice in zip(q.labels, q.choices, strict=True)
    ]
    return "\n".join(lines) + "\nAnswer:"


def choice_strings(q: Question, continuation: str) -> list[str]:
    """What each choice is scored as, before the target delimiter: its letter or its text."""
    return list(q.labels) if continuation == "letter" else list(q.choices)


def build_context(
    q: Question, shots: Sequence[Question], description: str | None, continuation: str = "letter"
) -> str:
    """The prompt a question is scored after: description, labelled examples, the question.

    A description that names ``{subject}`` is left out for a question without a subject.
    """
    head = ""
    if description and (q.subject is not None or "{subject}" not in description):
        head = description.format(subject=subject_name(q.subject)) + FEWSHOT_DELIMITER
    examples = "".join(
        format_question(s) + TARGET_DELIMITER + choice_strings(s, continuation)[s.answer] + FEWSHOT_DELIMITER
        for s in shots
    )
    return head + examples + format_question(q)


def requests_for(q: Question, context: str, continuation: str) -> list[tuple[str, str]]:
    """The (context, continuation) pairs of one question, one per choice."""
    return [(context, TARGET_DELIMITER + c) for c in choice_strings(q, continuation)]


def pick(logprobs: Sequence[float], strings: Sequence[str]) -> tuple[int, int]:
    """``(acc pick, acc_norm pick)``: argmax of the log-likelihoods, and of them per character."""
    lls = np.asarray(logprobs, dtype=float)
    lengths = np.asarray([float(len(s)) for s in strings])
    return int(np.argmax(lls)), int(np.argmax(lls / lengths))


def sample_shots(q: Question, pool: Sequence[Question], k: int, sampler: str, seed: int) -> list[Question]:
    """``k`` examples for a question: from the pool's questions of the same subject when it has any.

    ``first_n`` takes the first ``k`` in file order (lm-evaluation-harness's MMLU sampler);
    ``random`` draws ``k`` with ``random.Random(seed)`` (the suite's seed and the question's
    id, so each question's draw is reproducible on its own). The question itself is never
    its own example.
    """
    if k == 0:
        return []
    same = [s for s in pool if s.subject == q.subject and s.id != q.id] if q.subject is not None else []
    candidates = same or [s for s in pool if s.id != q.id]
    if sampler == "first_n":
        return candidates[:k]
    rng = random.Random(f"{seed}:{q.id}")
    return rng.sample(candidates, min(k, len(candidates)))


_ANSWER_IS = re.compile(r"(?i)\banswer\s*(?:is|:)?\s*[:\-]?\s*\(?\**([A-Z])\**\)?(?![A-Za-z])")
_LEADING = re.compile(r"^\s*[\(\[\*]*([A-Z])(?:[\)\]\.\:\*,]|\s*$)")
# a capital letter on its own, but not the article "A" or the pronoun "I" opening a sentence
_STANDALONE = re.compile(r"(?<![A-Za-z])\(?([A-Z])\)?(?![A-Za-z'])(\s+[a-z])?")


def extract_choice(text: str, q: Question) -> int | None:
    """The choice a generated answer names: a letter (``B``, ``(B)``, ``Answer: B``, ``The answer is
    B.``) or the exact text of one choice; ``None`` when it names none or several.

    Tried in order: an explicit "answer is/answer:" letter, a letter that opens the reply, the
    reply being one choice's text, then a single stand-alone label letter anywhere in the reply.
    """
    labels = q.labels
    for pattern in (_ANSWER_IS, _LEADING):
        m = pattern.search(text)
        if m and m.group(1) in labels:
            return labels.index(m.group(1))
    stripped = text.strip().rstrip(".").strip().lower()
    exact = [i for i, c in enumerate(q.choices) if c.strip().lower() == stripped]
    if len(exact) == 1:
        return exact[0]
    found = {
        m.group(1)
        for m in _STANDALONE.finditer(text)
        if m.group(1) in labels and not (m.group(2) and m.group(1) in "AI")
    }
    if len(found) == 1:
        return labels.index(found.pop())
    return None
