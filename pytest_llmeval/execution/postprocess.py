"""Turn a model's completion into the code that is executed.

Two options, both off unless a suite asks for them (``execute.postprocess``):

- ``strip_fences``: keep the code inside the first fenced block (```` ```python ... ``` ````),
  for chat models that wrap code in Markdown;
- ``stop_at_next_def``: cut the completion where a new top-level statement starts
  (``def``, ``class``, ``if``, ``print``, ``#``, ``assert``...), the stop sequences of the
  HumanEval paper, for base models that continue past the function body; a completion
  that restates the function keeps it and is cut after it.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.-]*)[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.S | re.M)
_OPEN_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+.-]*)[^\n]*\n(.*)\Z", re.S | re.M)
HUMANEVAL_STOPS = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#", "\nassert ", '\n"""', "\n@")
"""Where a new top-level statement starts: the paper's stop sequences, decorators, module docstrings."""
_CODE_LANGS = {"", "python", "py", "python3", "py3"}


def strip_fences(text: str) -> str:
    """The code of the first fenced Python (or unlabelled) block; the text itself when there is none.

    An unclosed fence (a reply cut by ``max_new_tokens``) keeps everything after it.
    """
    for match in _FENCE.finditer(text):
        if match.group(2).lower() in _CODE_LANGS:
            return match.group(3)
    unclosed = _OPEN_FENCE.search(text)
    if unclosed and unclosed.group(2).lower() in _CODE_LANGS:
        return unclosed.group(3)
    return text


def stop_at_next_def(text: str, stops: tuple[str, ...] = HUMANEVAL_STOPS) -> str:
    """Cut ``text`` where the next top-level statement begins.

    A continuation of the prompt (an indented body) is cut at the first stop. A completion that
    restates the function (imports, then ``def``) keeps that definition and is cut after it.
    """
    start = _own_definition(text)
    cut = len(text)
    for stop in stops:
        i = text.find(stop, start)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


def _own_definition(text: str) -> int:
    """Where the search for a stop begins: after the first line of a leading top-level ``def``."""
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if line.startswith(("def ", "async def ", "class ")):
            return offset + len(line) - 1
        if stripped and not line.startswith(("import ", "from ", "#", "@")):
            return 0
        offset += len(line)
    return 0


def postprocess(text: str, *, strip_markdown: bool = False, stop_at_def: bool = False) -> str:
    """Apply the chosen steps, fences first."""
    if strip_markdown:
        text = strip_fences(text)
    if stop_at_def:
        text = stop_at_next_def(text)
    return text
