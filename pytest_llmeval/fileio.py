"""Writing output files (results, reports) so that a failure never leaves half a file, and reading results.

:func:`write_atomic` writes to a temporary file in the target's folder, flushes
it to disk and renames it over the target: readers see the old file or the new
one, never a mixture. When the disk is full, the folder is read-only or the
path is wrong, the temporary file is removed and a
:class:`~pytest_llmeval.errors.WriteError` says what failed and what to do;
the previous file, if any, is untouched.

:func:`read_results` loads a results file after checking its shape, so that a
hand-edited or truncated file is an error naming the file and the field.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ResultsFileError, WriteError
from pytest_llmeval.results import RESULTS_VERSION, RunResult

_HINTS = {
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted: free space or write elsewhere",
    errno.EFBIG: "the file is larger than this file system or process allows",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "permission denied: write elsewhere or fix the folder's permissions",
    errno.EPERM: "permission denied: write elsewhere or fix the folder's permissions",
}


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, what: str = "file") -> None:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; parent folders are created.

    Args:
        path: the file to write.
        data: its whole content.
        what: what the file is, for the error message ("results file", "HTML report").

    Raises:
        WriteError: the file could not be written (disk full, read-only, permissions...);
            no temporary file is left and an existing ``path`` is unchanged.
    """
    target = Path(path)
    blob = data.encode("utf-8") if isinstance(data, str) else data
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "wb") as fh:
            view = memoryview(blob)
            while view:
                written = fh.write(view)
                view = view[written:]
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        hint = _HINTS.get(exc.errno or 0, "")
        reason = exc.strerror or str(exc)
        raise WriteError(
            f"cannot write the {what} {target}: {reason}"
            + (f" ({hint})" if hint else "")
            + (". The previous file is unchanged" if target.exists() else ". Nothing was written")
        ) from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


# --------------------------------------------------------------------------- reading results files


def read_results(path: str | os.PathLike[str]) -> RunResult:
    """Load a results file, checking its shape first, so a hand-edited file gets a message, not a traceback.

    Every problem is a :class:`~pytest_llmeval.errors.ResultsFileError` naming the file
    and the place in it (``suites[0].aggregates[1].value: expected a number or null,
    got 'abc'``): a missing or unreadable file, invalid JSON, JSON nested too deep,
    the wrong top-level type or version, or a field of the wrong type.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ResultsFileError(f"results file not found: {p}") from None
    except OSError as exc:
        raise ResultsFileError(f"cannot read the results file {p}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ResultsFileError(f"{p}: not a results file (not UTF-8: {exc.reason} at byte "
                               f"{exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ResultsFileError(f"{p}: not a results file (invalid JSON at line {exc.lineno}, "
                               f"column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise ResultsFileError(f"{p}: not a results file (JSON nested too deeply)") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise ResultsFileError(f"{p}: not a results file ({exc})") from None
    check_results_shape(data, str(p))
    try:
        return RunResult.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ResultsFileError(f"{p}: not a valid results file: {exc}") from None


def check_results_shape(data: Any, where: str = "results") -> None:
    """Raise :class:`ResultsFileError` naming the first field whose type is wrong."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise ResultsFileError(f"{where}: not a results file: the top level must be a JSON object "
                               f"with 'version' and 'suites', got a JSON {_json_type(data)}")
    version = data.get("version")
    if version != RESULTS_VERSION:
        raise ResultsFileError(f"{where}: unsupported results file version {version!r} (this version "
                               f"of pytest-llmevals reads version {RESULTS_VERSION})")
    try:
        _run_shape().validate_python(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _loc(err["loc"])
        value = err.get("input")
        shown = repr(value) if not isinstance(value, (dict, list)) else f"a JSON {_json_type(value)}"
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ResultsFileError(f"{where}: not a valid results file: {loc}: {_expected(err)}, got "
                               f"{shown}") from None


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null",
            int: "number", float: "number"}.get(type(value), type(value).__name__)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-", "nullable", "list[", "dict[", "union[")) \
                or str(part) in ("str", "int", "float", "bool", "typed-dict", "constrained-float",
                                 "constrained-int"):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _expected(err: Any) -> str:
    kind = str(err.get("type", ""))
    if kind.startswith(("float", "int")):
        return "expected a number or null"
    if kind.startswith("string"):
        return "expected a string"
    if kind.startswith("bool"):
        return "expected true, false or null"
    if kind.startswith("dict") or kind == "model_type":
        return "expected a JSON object"
    if kind.startswith("list") or kind.startswith("tuple"):
        return "expected a JSON array"
    if kind == "missing":
        return "required field missing"
    if kind.startswith("too_") or kind.startswith("literal"):
        return str(err.get("msg", "invalid value")).lower()
    return str(err.get("msg", "invalid value"))


@functools.cache
def _run_shape() -> Any:
    """A pydantic validator of the results file's shape (types only; unknown keys are allowed)."""
    from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr, TypeAdapter

    Num = StrictFloat | StrictInt | None

    class _Open(BaseModel):
        model_config = ConfigDict(extra="allow")

    class Aggregate(_Open):
        name: StrictStr
        value: Num = None
        ci: tuple[Num, Num] | None = None
        n: StrictInt | None = 0
        threshold: Num = None
        op: StrictStr = "min"
        confidence: Num = None
        passed: StrictBool | None = None
        kind: StrictStr = "metric"
        metric: StrictStr | None = None
        category: StrictStr | None = None
        model: StrictStr | None = None
        error: StrictStr | None = None
        details: dict[str, Any] = {}
        partial: dict[str, Any] | None = None

    class Case(_Open):
        id: StrictStr
        output: StrictStr | None = None
        baseline_output: StrictStr | None = None
        scores: dict[str, Num] = {}
        status: StrictStr = "passed"
        error: StrictStr | None = None
        checks: list[Any] = []
        category: StrictStr | None = None
        tags: list[Any] = []
        samples: list[StrictStr | None] = []
        judge: dict[str, Any] = {}
        fields: dict[str, Any] = {}

    class Suite(_Open):
        name: StrictStr
        file: StrictStr = ""
        model: StrictStr | None = None
        baseline: StrictStr | None = None
        n_cases: StrictInt | None = 0
        suite_hash: StrictStr | None = None
        aggregates: list[Aggregate] = []
        categories: dict[str, list[Aggregate]] = {}
        cases: list[Case] = []
        reports: dict[str, StrictStr] = {}
        warnings: list[StrictStr] = []
        error: StrictStr | None = None
        split: dict[str, Any] | None = None

    class Run(_Open):
        suites: list[Suite] = []
        models: dict[str, dict[str, Any]] = {}
        settings: dict[str, Any] = {}
        usage: dict[str, Any] = {}
        plugin_version: StrictStr = "?"
        created: StrictStr = ""

    return TypeAdapter(Run)
