"""Per-case checks (``assert:`` lists): each returns ``None`` when it holds, else a message."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.importing import import_target
from pytest_llmeval.spec import Case, Check


def _text(value: Any, ignore_case: bool) -> str:
    s = str(value)
    return s.lower() if ignore_case else s


@lru_cache(maxsize=256)
def _import_callable(target: str, base_dirs: tuple[Path, ...] = ()) -> Callable[..., Any]:
    """The check's function, imported once per (target, directories): checks run once per case."""
    return import_target(target, base_dirs=base_dirs, what=f"check 'python: {target}'")


def run_check(check: Check, output: str, case: Case, *, base_dirs: Sequence[Path] = ()) -> str | None:
    """Evaluate one check on one output. Returns the failure message, or None when it holds.

    ``base_dirs``: where a ``python:`` check's module is looked for before ``sys.path``
    (the suite file's directory, then the rootdir).
    """
    ic = bool(check.options.get("ignore_case", False))
    custom = check.options.get("message")
    msg = _evaluate(check, output, case, ic, tuple(base_dirs))
    if msg is not None and custom:
        return f"{custom} ({msg})"
    return msg


def _evaluate(check: Check, output: str, case: Case, ic: bool, base_dirs: tuple[Path, ...]) -> str | None:
    kind, value = check.kind, check.value
    if kind == "equals":
        if _text(output.strip(), ic) != _text(str(value).strip(), ic):
            return f"expected output == {str(value)!r}, got {output!r}"
    elif kind in ("contains", "not_contains"):
        needles = [value] if isinstance(value, str) else list(value)
        hay = _text(output, ic)
        for needle in needles:
            found = _text(needle, ic) in hay
            if kind == "contains" and not found:
                return f"expected output to contain {needle!r}, got {output!r}"
            if kind == "not_contains" and found:
                return f"expected output not to contain {needle!r}, got {output!r}"
    elif kind == "regex":
        if re.search(value, output, flags=re.IGNORECASE if ic else 0) is None:
            return f"expected output to match /{value}/, got {output!r}"
    elif kind == "is_json":
        try:
            json.loads(output)
            ok = True
        except (json.JSONDecodeError, ValueError) as exc:
            ok, err = False, str(exc)
        if value and not ok:
            return f"expected valid JSON, got {output!r} ({err})"
        if not value and ok:
            return f"expected output not to be JSON, got {output!r}"
    elif kind == "json_schema":
        try:
            doc = json.loads(output)
        except (json.JSONDecodeError, ValueError) as exc:
            return f"expected JSON matching the schema, got invalid JSON {output!r} ({exc})"
        from jsonschema import Draft202012Validator

        errors = sorted(Draft202012Validator(value).iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.path) or "(root)"
            return f"JSON does not match the schema at {where}: {e.message}; output {output!r}"
    elif kind == "max_length":
        if len(output) > value:
            return f"expected at most {value} characters, got {len(output)}: {output!r}"
    elif kind == "python":
        fn = _import_callable(value, base_dirs)
        try:
            result = fn(output, case.fields | {"id": case.id, "reference": case.reference_display})
        except AssertionError as exc:
            return f"{value}: {exc or 'assertion failed'}"
        if isinstance(result, tuple):
            ok, why = result
            return None if ok else f"{value}: {why}"
        if result is None or result is True:
            return None
        if result is False:
            return f"{value} returned False for output {output!r}"
        if isinstance(result, str):
            return f"{value}: {result}"
        raise ConfigError(f"check python {value} returned {result!r}; return True/False, None, "
                          f"(ok, message) or raise AssertionError")
    return None
