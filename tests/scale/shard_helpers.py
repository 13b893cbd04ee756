"""Suites for the sharding and merge tests: a baseline, a python judge, per-category gates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# pytester runs pytest in this process and drops the modules a run imported; C extensions such as
# numpy cannot be loaded twice, so the libraries the plugin imports lazily are imported here once.
import numpy  # noqa: F401
import pydantic  # noqa: F401
import pytest
import scipy.stats  # noqa: F401
import sklearn.metrics  # noqa: F401

SCALE_MODEL = '''
import zlib


def _h(text):
    return zlib.crc32(text.encode()) % 100


def _text(prompt):
    return prompt if isinstance(prompt, str) else " ".join(m["content"] for m in prompt)


def model(prompt):
    """Right about 70% of the time, deterministically, with wording that varies."""
    text = _text(prompt)
    answer = text.rsplit("answer:", 1)[-1].strip()
    h = _h(text)
    if h < 70:
        return answer
    if h < 85:
        return answer + " indeed"
    return "no idea at all"


def base(prompt):
    text = _text(prompt)
    answer = text.rsplit("answer:", 1)[-1].strip()
    return answer if _h(text + "b") < 40 else "something else"


def judge(kind, prompt=None, response=None, reference=None, response_a=None, response_b=None):
    if kind == "score":
        ref = reference if isinstance(reference, str) else ""
        overlap = len(set(response.split()) & set(ref.split()))
        return {"score": 1 + min(9, overlap * 3 + _h(response) % 3), "reasoning": "overlap"}
    a, b = len(set(response_a.split()) & set((reference or "").split())), \\
        len(set(response_b.split()) & set((reference or "").split()))
    return "A" if a > b else "B" if b > a else "tie"
'''

CATEGORIES = ("alpha", "beta", "gamma")


def qa_cases(n: int, prefix: str) -> str:
    lines = []
    for i in range(n):
        answer = f"word{i % 7} thing{i % 5} item{i}"
        lines.append(json.dumps({"id": f"{prefix}{i:03d}", "question": f"q {prefix} {i} answer: {answer}",
                                 "reference": answer, "category": CATEGORIES[i % 3]}))
    return "\n".join(lines) + "\n"


QA_SUITE = """
name: qa
model: python:scalemodel:model
baseline: python:scalemodel:base
prompt: "{question}"
cases: qa.jsonl
metrics:
  exact_match: {min: 0.3, per_category: true}
  rougeL: {min: 0.4, confidence: 0.9}
  f1_macro: {metric: f1, average: macro}
  chrf: {min: 0.2}
judge:
  model: python:scalemodel:judge
  score: {min_mean: 3}
  pairwise: {min_win_rate: 0.5, confidence: 0.9}
"""

SHORT_SUITE = """
name: short
model: python:scalemodel:model
prompt: "{question}"
cases: short.jsonl
metrics:
  exact_match: {min: 0.99}
  bleu: {smoothing: method1, min: 0.1}
"""

PLAIN_TESTS = """
def test_one():
    assert 1 + 1 == 2


def test_two():
    assert "a".upper() == "A"
"""


def make_project(pytester: pytest.Pytester, n_qa: int = 41, n_short: int = 13) -> None:
    """Two suites (one with a baseline, a python judge and per-category gates) and a plain test file."""
    make_project_files(pytester.path, n_qa, n_short)
    pytester.syspathinsert()


def make_project_files(root: Path, n_qa: int = 41, n_short: int = 13) -> None:
    """The files of :func:`make_project` under ``root`` (the model module importable from ``root``)."""
    (root / "scalemodel.py").write_text(SCALE_MODEL, encoding="utf-8")
    (root / "pytest.ini").write_text("[pytest]\nllmeval_cache = off\n", encoding="utf-8")
    (root / "evals").mkdir()
    (root / "evals" / "qa.jsonl").write_text(qa_cases(n_qa, "qa"), encoding="utf-8")
    (root / "evals" / "qa.eval.yaml").write_text(QA_SUITE.lstrip(), encoding="utf-8")
    (root / "evals" / "short.jsonl").write_text(qa_cases(n_short, "s"), encoding="utf-8")
    (root / "evals" / "short.eval.yaml").write_text(SHORT_SUITE.lstrip(), encoding="utf-8")
    (root / "test_plain.py").write_text(PLAIN_TESTS.lstrip(), encoding="utf-8")


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def gate_records(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every gate and category row of a results dict, keyed by (suite file, row)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for suite in run["suites"]:
        for agg in suite["aggregates"]:
            out[(suite["file"], agg["name"])] = agg
        for name, rows in suite["categories"].items():
            for row in rows:
                out[(suite["file"], f"{name}[{row['category']}]")] = row
    return out


def case_records(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Every case record, keyed by (suite file, case id), without the measured latencies."""
    out = {}
    for s in run["suites"]:
        for c in s["cases"]:
            c = dict(c)
            c["requests"] = [{k: v for k, v in r.items() if k != "latency_s"} for r in c["requests"]]
            out[(s["file"], c["id"])] = c
    return out
