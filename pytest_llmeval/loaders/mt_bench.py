"""MT-Bench: 80 two-turn questions in 8 categories, graded turn by turn by a judge.

Reads FastChat's ``question.jsonl`` (``question_id``, ``category``, ``turns``) and a
reference-answer file such as ``reference_answer_gpt-4.jsonl`` (``question_id`` and
``choices[0].turns``, one reference per turn). As MT-Bench does, references are given
to the judge only for the categories whose answers can be checked (math, reasoning,
coding): those turns are graded against the reference, the others on their own.

Each question becomes a multi-turn case::

    {"id": "81", "category": "writing", "turns": ["...", "..."]}
    {"id": "111", "category": "math", "turns": ["...", "..."], "reference": ["...", "..."]}

Options (``cases: {format: mt_bench, path: question.jsonl, ...}``):

- ``references``: the reference-answer file (relative to the question file). When not
  given, ``reference_answer_gpt-4.jsonl`` or ``reference_answer/gpt-4.jsonl`` beside the
  question file is used if present; ``references: none`` uses none.
- ``reference_categories``: the categories graded against a reference (default
  ``[math, reasoning, coding]``). A question of these categories without an entry in the
  reference file keeps the ``reference`` its own record carries, if any.
- ``categories``: keep only these categories.

The MT-Bench data ships with the package (:data:`BUNDLED_QUESTIONS`), Apache-2.0, from FastChat.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_llmeval.errors import SpecError
from pytest_llmeval.loaders._common import read_records, relative_to, require

FORMAT = "mt_bench"
QUESTION_FIELDS = ("question_id", "category", "turns")
QUESTIONS_EXPECTED = "fields question_id, category, turns (a list of user messages) and optional reference"
REFERENCES_EXPECTED = "fields question_id and choices (choices[0].turns: one reference answer per turn)"
REFERENCE_CATEGORIES = ("math", "reasoning", "coding")
"""The categories MT-Bench grades against a reference answer."""
OPTIONS = ("references", "reference_categories", "categories")

BUNDLED = Path(__file__).resolve().parent.parent / "data" / "mt_bench"
BUNDLED_QUESTIONS = BUNDLED / "question.jsonl"
BUNDLED_REFERENCES = BUNDLED / "reference_answer_gpt-4.jsonl"


def load(path: Path, options: dict[str, Any]) -> list[dict[str, Any]]:
    """MT-Bench questions as multi-turn case records (see the module docs for the options).

    Raises:
        SpecError: an unknown option, a missing or empty file, a record without the
            expected fields, or reference answers that do not match their question.
    """
    path = Path(path)
    _check_options(path, options)
    keep = _categories(path, options, "categories", None)
    ref_cats = set(_categories(path, options, "reference_categories", REFERENCE_CATEGORIES) or ())
    references = _load_references(path, options)
    cases: list[dict[str, Any]] = []
    for rec, line in read_records(path, fmt=FORMAT, expected=QUESTIONS_EXPECTED):
        qid = rec.get("question_id")
        where = f"question {qid!r}" if qid is not None else "a question"
        require(rec, QUESTION_FIELDS, fmt=FORMAT, expected=QUESTIONS_EXPECTED, path=path, line=line,
                where=where)
        turns, category = rec["turns"], rec["category"]
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t for t in turns):
            raise SpecError(f"{FORMAT}: {where}: 'turns' must be a non-empty list of user messages, got "
                            f"{turns!r}; expected {QUESTIONS_EXPECTED}", path=str(path), line=line,
                            key="turns")
        if not isinstance(category, str) or not category:
            raise SpecError(f"{FORMAT}: {where}: 'category' must be a non-empty string, got {category!r}; "
                            f"expected {QUESTIONS_EXPECTED}", path=str(path), line=line, key="category")
        if keep is not None and category not in keep:
            continue
        case: dict[str, Any] = {"id": str(qid), "category": category, "turns": list(turns)}
        if category in ref_cats:
            ref = references.get(str(qid), rec.get("reference"))
            if ref is not None:
                case["reference"] = _per_turn(ref, len(turns), where, path, line)
        cases.append(case)
    if not cases:
        raise SpecError(f"{FORMAT}: no question left after 'categories: {sorted(keep or [])}'",
                        path=str(path))
    return cases


def _check_options(path: Path, options: dict[str, Any]) -> None:
    for key in options:
        if key not in OPTIONS:
            raise SpecError(f"{FORMAT}: unknown option '{key}'; options: {', '.join(OPTIONS)}",
                            path=str(path), key=str(key))


def _categories(path: Path, options: dict[str, Any], key: str,
                default: tuple[str, ...] | None) -> list[str] | None:
    value = options.get(key, default)
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{FORMAT}: option '{key}' must be a list of category names, got {value!r}",
                        path=str(path), key=key)
    return list(value)


def _per_turn(ref: Any, n: int, where: str, path: Path, line: int) -> list[str | None]:
    if not isinstance(ref, list) or not all(r is None or isinstance(r, str) for r in ref):
        raise SpecError(f"{FORMAT}: {where}: the reference must be a list of answers, one per turn, got "
                        f"{ref!r}", path=str(path), line=line, key="reference")
    # a reference file may hold fewer turns than the question: the later turns have none
    return [*ref[:n], *[None] * (n - len(ref))]


def _load_references(path: Path, options: dict[str, Any]) -> dict[str, list[Any]]:
    """Question id -> per-turn references, from the reference-answer file (if any)."""
    if "references" in options:
        value = options["references"]
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            return {}
        ref_path = relative_to(path, value, "references", FORMAT)
        if not ref_path.is_file():
            raise SpecError(f"{FORMAT}: reference-answer file {str(ref_path)!r} not found (option "
                            f"'references', relative to the question file)", path=str(path),
                            key="references")
    else:
        found = [p for p in (path.parent / "reference_answer_gpt-4.jsonl",
                             path.parent / "reference_answer" / "gpt-4.jsonl") if p.is_file()]
        if not found:
            return {}
        ref_path = found[0]
    out: dict[str, list[Any]] = {}
    for rec, line in read_records(ref_path, fmt=f"{FORMAT} reference answers", expected=REFERENCES_EXPECTED):
        qid = rec.get("question_id")
        where = f"answer to question {qid!r}" if qid is not None else "an answer"
        require(rec, ("question_id", "choices"), fmt=f"{FORMAT} reference answers",
                expected=REFERENCES_EXPECTED, path=ref_path, line=line, where=where)
        choices = rec["choices"]
        turns = choices[0].get("turns") if isinstance(choices, list) and choices and isinstance(
            choices[0], dict) else None
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            raise SpecError(f"{FORMAT} reference answers: {where}: expected {REFERENCES_EXPECTED}, got "
                            f"choices={choices!r}"[:400], path=str(ref_path), line=line, key="choices")
        out[str(qid)] = list(turns)
    return out
