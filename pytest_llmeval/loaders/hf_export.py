"""Files exported from Hugging Face ``datasets`` (``to_parquet`` / ``to_json``), read without ``datasets``.

``path`` is a ``.parquet``, ``.jsonl`` or ``.json`` (JSON Lines, as ``Dataset.to_json``
writes) file, or a directory of them (a hub snapshot such as ``cais/mmlu``'s
``all/test-00000-of-00001.parquet``). Parquet is read with pyarrow (the ``parquet`` extra).

Options:
    split: keep the files whose name starts with it (``test`` keeps ``test-00000-of-00001.parquet``).
    columns: the columns every row must have (default ``[question, choices, answer]``, cais/mmlu's).
    category: the column that becomes each case's category (default ``subject`` when present).
    subjects: keep only rows whose category is one of these.
    id: the column that holds each case's id (default: ``<file stem>/<row>``).
    limit: at most this many rows in all.

Each row becomes a case with every column as a field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import SpecError
from pytest_llmeval.loaders import check_options

DEFAULT_COLUMNS = ("question", "choices", "answer")
SUFFIXES = (".parquet", ".jsonl", ".json")
OPTIONS = {
    "split": "file-name prefix (test, validation, dev...)",
    "columns": "columns every row must have (default question, choices, answer)",
    "category": "column used as the category (default subject)",
    "subjects": "categories to keep",
    "id": "column holding the case id",
    "limit": "at most this many rows",
}


def load(path: Path, options: dict[str, Any]) -> list[dict[str, Any]]:
    """Every row of the export's files (in name order) as a case dict."""
    check_options(options, OPTIONS, "hf_export", path)
    columns = options.get("columns", list(DEFAULT_COLUMNS))
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise SpecError(
            f"cases.columns must be a list of column names, got {columns!r}",
            path=str(path),
            key="cases.columns",
        )
    split = options.get("split")
    files = (
        [path]
        if path.is_file()
        else sorted(
            f
            for f in path.rglob("*")
            if f.suffix in SUFFIXES and (split is None or f.name.startswith(str(split)))
        )
    )
    if not files:
        raise SpecError(
            f"no {'/'.join(SUFFIXES)} files{f' named {split}*' if split else ''} here; expected a "
            f"Hugging Face export with columns {', '.join(columns)}",
            path=str(path),
        )
    category = options.get("category", "subject")
    subjects = options.get("subjects")
    id_col = options.get("id")
    limit = options.get("limit")
    cases: list[dict[str, Any]] = []
    for file in files:
        rows = _rows(file, columns)
        for i, row in enumerate(rows):
            missing = [c for c in columns if c not in row]
            if missing:
                raise SpecError(
                    f"row {i + 1} has no column '{missing[0]}'; expected columns {', '.join(columns)}, "
                    f"found {', '.join(sorted(row)) or 'none'}",
                    path=str(file),
                )
            case = dict(row)
            if category in row and row[category] is not None:
                case["category"] = str(row[category])
            if subjects is not None and case.get("category") not in subjects:
                continue
            case["id"] = str(row[id_col]) if id_col is not None and id_col in row else f"{file.stem}/{i}"
            cases.append(case)
            if limit is not None and len(cases) >= limit:
                return cases
    if not cases:
        raise SpecError(
            f"no rows{' for the chosen subjects' if subjects else ''}; expected a Hugging Face export "
            f"with columns {', '.join(columns)}",
            path=str(path),
        )
    return cases


def _rows(file: Path, columns: list[str]) -> list[dict[str, Any]]:
    if file.suffix == ".parquet":
        return _parquet_rows(file, columns)
    from pytest_llmeval.spec import read_jsonl

    records = read_jsonl(file)
    if len(records) == 1 and isinstance(records[0][0], list):  # a .json file holding one array
        records = [(r, 1) for r in records[0][0]]
    rows = []
    for value, line in records:
        if not isinstance(value, dict):
            raise SpecError(
                f"expected one JSON object per line with columns {', '.join(columns)}, got "
                f"{type(value).__name__}",
                path=str(file),
                line=line,
            )
        rows.append(value)
    if not rows:
        raise SpecError(f"empty file; expected JSON lines with columns {', '.join(columns)}", path=str(file))
    return rows


def _parquet_rows(file: Path, columns: list[str]) -> list[dict[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SpecError(
            "reading parquet needs pyarrow: pip install 'pytest-llmevals[parquet]' (or export the "
            "dataset with to_json)",
            path=str(file),
        ) from None
    try:
        table = pq.read_table(file)
    except Exception as exc:  # noqa: BLE001 - pyarrow's own errors: not a parquet file, truncated
        raise SpecError(
            f"cannot read as parquet: {exc}; expected a Hugging Face export with columns "
            f"{', '.join(columns)}",
            path=str(file),
        ) from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise SpecError(
            f"no column '{missing[0]}'; expected columns {', '.join(columns)}, found "
            f"{', '.join(table.column_names) or 'none'}",
            path=str(file),
        )
    if table.num_rows == 0:
        raise SpecError(f"empty table; expected rows with columns {', '.join(columns)}", path=str(file))
    return json.loads(json.dumps(table.to_pylist(), default=str))
