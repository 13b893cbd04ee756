"""Suites for end-to-end report tests: a toy sentiment model and suites of it (pytester)."""

from __future__ import annotations

import json
import re

import pytest

MODEL = '''
import time
from pytest_llmeval.models import loading


def sentiment(prompt):
    text = prompt if isinstance(prompt, str) else " ".join(m["content"] for m in prompt)
    return "positive" if "good" in text else "negative" if "bad" in text else "neutral"


_LOADED = []


def slow_loader(prompt):
    """A model that loads its weights on first use, and says so."""
    if not _LOADED:
        with loading("toy:weights"):
            time.sleep(0.05)
        _LOADED.append(1)
    return sentiment(prompt)
'''


def cases(n_good: int = 30, n_bad: int = 20, n_neutral: int = 10) -> str:
    rows = [{"id": f"g{i}", "text": f"a good thing {i}", "reference": "positive", "category": "pos"}
            for i in range(n_good)]
    rows += [{"id": f"b{i}", "text": f"a bad thing {i}", "reference": "negative", "category": "neg"}
             for i in range(n_bad)]
    rows += [{"id": f"n{i}", "text": f"a thing {i}", "reference": "positive", "category": "other"}
             for i in range(n_neutral)]
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def suite(name: str, model: str = "python:toymodel:sentiment", baseline: str | None = None,
          cases_file: str = "cases.jsonl") -> str:
    base = f"baseline: {baseline}\n" if baseline else ""
    return (f"name: {name}\nmodel: {model}\n{base}prompt: \"Review: {{text}}\"\ncases: {cases_file}\n"
            "metrics:\n  exact_match: {min: 0.9}\n  f1: {min: 0.5, average: macro}\n"
            "  rougeL: {metric: rouge, min: 0.1}\n")


def project(pytester: pytest.Pytester, suites: dict[str, str], n_good: int = 30) -> pytest.Pytester:
    pytester.makepyfile(toymodel=MODEL)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nllmeval_cache = off\n")
    (pytester.path / "cases.jsonl").write_text(cases(n_good), encoding="utf-8")
    for file, text in suites.items():
        (pytester.path / file).write_text(text, encoding="utf-8")
    return pytester


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def section(lines: list[str], title: str) -> list[str]:
    """The lines of a ``=== title ===`` section up to the next ``===`` line (colour or not)."""
    plain = [ANSI.sub("", line) for line in lines]
    start = next(i for i, line in enumerate(plain) if title in line and line.startswith("="))
    end = next((i for i in range(start + 1, len(plain)) if plain[i].startswith("==")), len(plain))
    return lines[start:end]
