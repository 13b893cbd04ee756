"""What the benchmark loaders share: reading a JSON Lines or JSON file into records, with errors
that name the file, the line and the fields the format expects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import SpecError


def read_records(path: Path, *, fmt: str, expected: str) -> list[tuple[dict[str, Any], int]]:
    """The JSON objects of a ``.jsonl`` file, each with its line number.

    Raises:
        SpecError: the file is missing, empty, not JSON Lines, or a line is not an object;
            the message names ``fmt`` and the ``expected`` fields.
    """
    from pytest_llmeval.spec import read_jsonl

    rows = read_jsonl(Path(path))
    if not rows:
        raise SpecError(f"{fmt}: the file is empty; expected one JSON object per line with {expected}",
                        path=str(path))
    for value, line in rows:
        if not isinstance(value, dict):
            raise SpecError(f"{fmt}: expected a JSON object with {expected}, got {type(value).__name__}",
                            path=str(path), line=line)
    return rows


def read_json(path: Path, *, fmt: str, expected: str) -> Any:
    """A whole ``.json`` file, parsed (errors name the line and column)."""
    from pytest_llmeval.spec import read_text

    text = read_text(Path(path))
    if not text.strip():
        raise SpecError(f"{fmt}: the file is empty; expected {expected}", path=str(path))
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{fmt}: invalid JSON at column {exc.colno}: {exc.msg}; expected {expected}",
                        path=str(path), line=exc.lineno) from None
    except RecursionError:
        raise SpecError(f"{fmt}: JSON nested too deeply to read; expected {expected}",
                        path=str(path)) from None


def require(record: dict[str, Any], fields: tuple[str, ...], *, fmt: str, expected: str, path: Path,
            line: int | None, where: str) -> None:
    """Every field of ``fields`` is present, or a SpecError naming the missing ones and the layout."""
    missing = [f for f in fields if f not in record]
    if missing:
        have = ", ".join(sorted(map(str, record))) or "none"
        raise SpecError(f"{fmt}: {where} has no {', '.join(repr(m) for m in missing)} (its fields: {have}); "
                        f"expected {expected}", path=str(path), line=line, key=missing[0])


def relative_to(path: Path, value: Any, option: str, fmt: str) -> Path:
    """An option naming a file: absolute, or relative to the folder of the loaded file."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise SpecError(f"{fmt}: option '{option}' must be a file path, got {value!r}", path=str(path))
    p = Path(value)
    return p if p.is_absolute() else Path(path).parent / p
