"""MMLU's CSV files (Hendrycks et al.'s ``data.tar``): ``<subject>_<split>.csv``, one question per row.

Layout: a directory holding ``<subject>_test.csv`` / ``<subject>_dev.csv`` / ``<subject>_val.csv``,
directly or under ``test/``, ``dev/``, ``val/`` (as the tarball unpacks). Each row has no
header and six cells: ``question, A, B, C, D, answer`` with the answer a letter A-D. The
dev split (five questions per subject) holds the few-shot examples.

Options: ``subjects`` (a list; default every subject found), ``split`` (``test``, ``dev``,
``val``/``validation``; default ``test``), ``limit`` (at most this many questions per subject).

Each case: ``id`` ``<subject>/<split>/<row>``, ``category`` the subject, ``question``,
``choices`` (the four texts) and ``answer`` (the letter).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import SpecError
from pytest_llmeval.loaders import check_options

COLUMNS = ("question", "A", "B", "C", "D", "answer")
EXPECTED = "headerless rows of 6 cells: question,A,B,C,D,answer (answer a letter A-D)"
OPTIONS = {
    "subjects": "list of subjects (default: all found)",
    "split": "test | dev | val (default test)",
    "limit": "at most this many questions per subject",
}
SPLITS = {"test": "test", "dev": "dev", "val": "val", "validation": "val"}


def load(path: Path, options: dict[str, Any]) -> list[dict[str, Any]]:
    """The questions of the chosen subjects and split, subject by subject in name order."""
    check_options(options, OPTIONS, "mmlu", path)
    split_opt = options.get("split", "test")
    split = SPLITS.get(str(split_opt))
    if split is None:
        raise SpecError(
            f"cases.split: '{split_opt}' is not an MMLU split; use test, dev or val",
            path=str(path),
            key="cases.split",
        )
    limit = options.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise SpecError(
            f"cases.limit must be a positive integer, got {limit!r}", path=str(path), key="cases.limit"
        )
    files = _files(path, split)
    subjects = options.get("subjects")
    if subjects is not None:
        if isinstance(subjects, str):
            subjects = [subjects]
        if not isinstance(subjects, list) or not all(isinstance(s, str) for s in subjects):
            raise SpecError(
                f"cases.subjects must be a list of subject names, got {subjects!r}",
                path=str(path),
                key="cases.subjects",
            )
        missing = [s for s in subjects if s not in files]
        if missing:
            import difflib

            close = difflib.get_close_matches(missing[0], sorted(files), n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise SpecError(
                f"no {split} file for subject '{missing[0]}' ({missing[0]}_{split}.csv).{hint} "
                f"Subjects found: {', '.join(sorted(files)) or 'none'}",
                path=str(path),
                key="cases.subjects",
            )
        chosen = list(dict.fromkeys(subjects))
    else:
        chosen = sorted(files)
    if not chosen:
        raise SpecError(
            f"no MMLU files for split '{split}': expected <subject>_{split}.csv here or under "
            f"{split}/, with {EXPECTED}",
            path=str(path),
        )
    cases: list[dict[str, Any]] = []
    for subject in chosen:
        cases += read_subject(files[subject], subject, split, limit)
    return cases


def _files(path: Path, split: str) -> dict[str, Path]:
    suffix = f"_{split}.csv"
    if path.is_file():
        if not path.name.endswith(suffix):
            raise SpecError(f"an MMLU file is named <subject>{suffix} for split '{split}'", path=str(path))
        return {path.name[: -len(suffix)]: path}
    found: dict[str, Path] = {}
    for folder in (path, path / split):
        if folder.is_dir():
            for f in sorted(folder.glob(f"*{suffix}")):
                found.setdefault(f.name[: -len(suffix)], f)
    return found


def read_subject(file: Path, subject: str, split: str, limit: int | None = None) -> list[dict[str, Any]]:
    """One subject's rows as cases; a row of the wrong shape is a SpecError naming its line."""
    from pytest_llmeval.spec import read_text

    text = read_text(file)
    reader = csv.reader(io.StringIO(text))
    cases: list[dict[str, Any]] = []
    try:
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if not cases and [c.strip().lower() for c in row] == [c.lower() for c in COLUMNS]:
                continue  # a header row written by a converter: the columns are the expected ones
            if len(row) != len(COLUMNS):
                raise SpecError(
                    f"row has {len(row)} cells; MMLU files have {EXPECTED}", path=str(file), line=line
                )
            answer = row[5].strip().upper()
            if answer not in ("A", "B", "C", "D"):
                raise SpecError(
                    f"answer cell {row[5]!r} is not a letter A-D (a header row, or not an MMLU file?); "
                    f"expected {EXPECTED}",
                    path=str(file),
                    line=line,
                )
            cases.append(
                {
                    "id": f"{subject}/{split}/{len(cases)}",
                    "category": subject,
                    "question": row[0],
                    "choices": row[1:5],
                    "answer": answer,
                }
            )
            if limit is not None and len(cases) >= limit:
                break
    except csv.Error as exc:
        raise SpecError(
            f"invalid CSV: {exc}; expected {EXPECTED}", path=str(file), line=reader.line_num + 1
        ) from None
    if not cases:
        raise SpecError(f"no questions in the file; expected {EXPECTED}", path=str(file))
    return cases
