"""Untrusted text made safe to show, and results files with capped outputs.

Model outputs (and anything a case or a judge reply carries) may hold terminal
control sequences (``ESC[2J`` clears the screen, OSC sequences retitle the
window, a bare CR overwrites the line being read), bidirectional overrides
that reorder what is shown, lone surrogates that make a terminal write fail,
and megabytes of text. :func:`display` escapes the first kinds and cuts the
last, saying how much was cut, so that whatever reaches a terminal, a failure
message or a report is readable and inert.

Results files keep full outputs by default. :func:`cap_outputs` is the opt-in
cap (``--llmeval-max-output-chars``): it cuts long model texts in a results
dict and records the cap under ``settings["output_cap"]``
(:data:`CAP_SETTING`), so a consumer that needs full outputs can refuse the
file with :func:`require_full_outputs`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pytest_llmeval.errors import ConfigError, ResultsFileError

DEFAULT_LIMIT = 2000
"""Characters of one text shown in a terminal line or failure message by default."""

CAP_SETTING = "output_cap"
"""Key under a results file's ``settings`` that records an output cap: ``{"max_chars": N, ...}``."""

# C0 controls except TAB and LF, DEL and the C1 controls (CSI, OSC, ... as single code points),
# the bidirectional marks/overrides/isolates and the zero-width and line/paragraph separators that
# change how a line reads, and lone surrogates (they cannot be encoded, so a write would fail).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2069\ufeff"
    "\ud800-\udfff]"
)
_UNSAFE_ONE_LINE = re.compile(_UNSAFE.pattern[:-1] + "\n\t]")
_NAMED = {"\r": "\\r", "\n": "\\n", "\t": "\\t", "\x1b": "\\x1b"}


def _escape_char(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str, *, multiline: bool = True) -> str:
    """``text`` with every control and reordering character written as a visible escape.

    Args:
        text: untrusted text.
        multiline: keep newlines and tabs (a failure message); ``False`` escapes them too
            (a table cell, a one-line label).
    """
    if multiline:
        text = text.replace("\r\n", "\n")
    pattern = _UNSAFE if multiline else _UNSAFE_ONE_LINE
    return pattern.sub(_escape_char, text)


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with the number of characters cut appended."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit:,} more characters cut]"


def display(text: Any, limit: int = DEFAULT_LIMIT, *, multiline: bool = True) -> str:
    """Untrusted text ready to show in a terminal, a failure message or a report.

    The text is cut to ``limit`` characters of the original (the count of characters
    cut is appended), then control sequences, CR, bidirectional overrides and lone
    surrogates are escaped (``\\x1b[2J`` is shown, not obeyed). ``None`` shows as
    ``(none)``; any other non-string is shown through ``str()``.

    Args:
        text: the untrusted value (a model output, a case field, a judge reply).
        limit: at most this many characters of the original are kept.
        multiline: keep newlines and tabs; ``False`` escapes them as well (one-line cells).
    """
    if text is None:
        return "(none)"
    s = text if isinstance(text, str) else str(text)
    if len(s) > limit:
        kept = escape(s[:limit], multiline=multiline)
        return f"{kept}... [{len(s) - limit:,} more characters cut]"
    return escape(s, multiline=multiline)


# --------------------------------------------------------------------------- capped results files

_CAPPED_CASE_KEYS = ("output", "baseline_output", "samples", "error", "checks", "judge")
"""Case fields that carry model (or judge) text and are cut by :func:`cap_outputs`."""


def cap_outputs(data: dict[str, Any], max_chars: int) -> dict[str, Any]:
    """A copy of a results dict whose model texts are cut to ``max_chars`` characters each.

    Every string in a case's ``output``, ``baseline_output``, ``samples``, ``error``,
    ``checks`` and ``judge`` longer than ``max_chars`` is cut (with the count of
    characters cut appended), and so are a multi-turn case's answers (each turn's
    ``output`` and ``baseline_output``, and the assistant messages of its ``prompt``);
    prompts, references and fields (the suite's own data) are kept whole. The cap is
    recorded as ``settings["output_cap"] = {"max_chars": N, "values_cut": k, "chars_cut": c}``
    so the file says it is not complete.

    Args:
        data: a results dict (``RunResult.to_dict()``); it is not modified.
        max_chars: the cap, a positive number of characters.

    Raises:
        ValueError: ``max_chars`` is not a positive integer.
    """
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1:
        raise ValueError(f"max_chars must be a positive integer, got {max_chars!r}")
    out = dict(data)
    tally = [0, 0]

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            if len(value) > max_chars:
                tally[0] += 1
                tally[1] += len(value) - max_chars
                return cut(value, max_chars)
            return value
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    suites = []
    for suite in data.get("suites") or []:
        suite = dict(suite)
        cases = []
        for case in suite.get("cases") or []:
            case = dict(case)
            for key in _CAPPED_CASE_KEYS:
                if key in case:
                    case[key] = walk(case[key])
            if isinstance(case.get("turns"), list):
                case["turns"] = [{k: walk(v) if k in ("output", "baseline_output") else v
                                  for k, v in t.items()} if isinstance(t, dict) else t for t in case["turns"]]
            if isinstance(case.get("prompt"), list):
                case["prompt"] = [{**m, "content": walk(m.get("content"))}
                                  if isinstance(m, dict) and m.get("role") == "assistant" else m
                                  for m in case["prompt"]]
            cases.append(case)
        suite["cases"] = cases
        suites.append(suite)
    out["suites"] = suites
    settings = copy.deepcopy(dict(data.get("settings") or {}))
    settings[CAP_SETTING] = {"max_chars": max_chars, "values_cut": tally[0], "chars_cut": tally[1]}
    out["settings"] = settings
    return out


def validate_output_cap(value: Any, option: str = "--llmeval-max-output-chars") -> int | None:
    """The cap an option asks for (``None``: keep full outputs), or a ConfigError naming the option."""
    if value is None:
        return None
    try:
        cap = int(value) if not isinstance(value, bool) and str(value).strip().isdigit() else -1
    except ValueError:
        cap = -1
    if cap < 1:
        raise ConfigError(f"{option}: expected a positive number of characters per output (e.g. "
                          f"10000), got {value!r}; leave it out to keep full outputs")
    return cap


def output_cap(settings: Any) -> dict[str, Any] | None:
    """The cap a results file records (``settings["output_cap"]``), or ``None`` when it has full outputs.

    Accepts a run's ``settings`` dict, a results dict, or a ``RunResult``.
    """
    if hasattr(settings, "settings"):
        settings = settings.settings
    elif isinstance(settings, dict) and "suites" in settings:
        settings = settings.get("settings")
    if not isinstance(settings, dict):
        return None
    cap = settings.get(CAP_SETTING)
    return cap if isinstance(cap, dict) else None


def require_full_outputs(run: Any, purpose: str, path: str | None = None) -> None:
    """Refuse a results file whose outputs were capped, for work that needs every character.

    Args:
        run: a ``RunResult``, a results dict or its ``settings``.
        purpose: what needs the full outputs, for the message ("re-scoring outputs").
        path: the file, for the message.

    Raises:
        ResultsFileError: the file was written with ``--llmeval-max-output-chars``.
    """
    cap = output_cap(run)
    if cap is None:
        return
    where = f"{path}: " if path else ""
    raise ResultsFileError(
        f"{where}{purpose} needs full model outputs, but this results file was written with "
        f"--llmeval-max-output-chars {cap.get('max_chars')} ({cap.get('values_cut', '?')} texts cut). "
        f"Rerun without --llmeval-max-output-chars to get a complete file."
    )
