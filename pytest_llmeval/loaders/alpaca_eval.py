"""AlpacaEval: instructions with a reference model's outputs, for a win rate against them.

Reads AlpacaEval's evaluation set, a JSON list of ``{"instruction", "output",
"generator", "dataset"}`` (``alpaca_eval.json``; a ``.jsonl`` file with one such object
per line works too). Each instruction becomes a case whose prompt is the instruction
and whose reference is the reference model's ``output``; a pairwise judge with
``against: reference`` compares the evaluated model's answer with it, and
``min_lc_win_rate`` gates the length-controlled win rate::

    {"id": "1", "prompt": "...", "reference": "...", "category": "helpful_base",
     "generator": "gpt4_1106_preview"}

Cases are numbered in file order from 1 (the set has no ids of its own). ``dataset``
becomes the category, so the summary has a row per source set.

Options: ``limit`` (keep the first N instructions), ``datasets`` (keep only these).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_llmeval.errors import SpecError
from pytest_llmeval.loaders._common import read_json, read_records, require

FORMAT = "alpaca_eval"
FIELDS = ("instruction", "output")
EXPECTED = ("a JSON list of objects with fields instruction, output (the reference model's answer) "
            "and optional generator, dataset")
OPTIONS = ("limit", "datasets")


def load(path: Path, options: dict[str, Any]) -> list[dict[str, Any]]:
    """AlpacaEval records as single-turn cases with the reference output as ``reference``.

    Raises:
        SpecError: an unknown option, a missing or empty file, a file that is not a list
            of objects, or a record without ``instruction``/``output`` (or with empty ones).
    """
    path = Path(path)
    for key in options:
        if key not in OPTIONS:
            raise SpecError(f"{FORMAT}: unknown option '{key}'; options: {', '.join(OPTIONS)}",
                            path=str(path), key=str(key))
    limit = options.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise SpecError(f"{FORMAT}: option 'limit' must be a positive integer, got {limit!r}",
                        path=str(path), key="limit")
    datasets = options.get("datasets")
    if datasets is not None and (not isinstance(datasets, list)
                                 or not all(isinstance(d, str) for d in datasets)):
        raise SpecError(f"{FORMAT}: option 'datasets' must be a list of dataset names, got {datasets!r}",
                        path=str(path), key="datasets")
    records = _records(path)
    cases: list[dict[str, Any]] = []
    for index, (rec, line) in enumerate(records, 1):
        where = f"record {index}"
        require(rec, FIELDS, fmt=FORMAT, expected=EXPECTED, path=path, line=line, where=where)
        for key in FIELDS:
            if not isinstance(rec[key], str) or not rec[key].strip():
                raise SpecError(f"{FORMAT}: {where}: '{key}' must be non-empty text, got {rec[key]!r}; "
                                f"expected {EXPECTED}", path=str(path), line=line, key=key)
        dataset = rec.get("dataset")
        if datasets is not None and dataset not in datasets:
            continue
        case: dict[str, Any] = {"id": str(index), "prompt": rec["instruction"], "reference": rec["output"]}
        if isinstance(dataset, str) and dataset:
            case["category"] = dataset
        if isinstance(rec.get("generator"), str):
            case["generator"] = rec["generator"]
        cases.append(case)
        if limit is not None and len(cases) >= limit:
            break
    if not cases:
        raise SpecError(f"{FORMAT}: no record left after 'datasets: {datasets}'", path=str(path))
    return cases


def _records(path: Path) -> list[tuple[dict[str, Any], int | None]]:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return [(r, line) for r, line in read_records(path, fmt=FORMAT, expected=EXPECTED)]
    data = read_json(path, fmt=FORMAT, expected=EXPECTED)
    if not isinstance(data, list):
        raise SpecError(f"{FORMAT}: expected {EXPECTED}, got a JSON {type(data).__name__}", path=str(path),
                        line=1)
    if not data:
        raise SpecError(f"{FORMAT}: the list is empty; expected {EXPECTED}", path=str(path), line=1)
    out: list[tuple[dict[str, Any], int | None]] = []
    for index, rec in enumerate(data, 1):
        if not isinstance(rec, dict):
            raise SpecError(f"{FORMAT}: record {index} is a {type(rec).__name__}; expected {EXPECTED}",
                            path=str(path))
        out.append((rec, None))
    return out
