"""Usage and cache counters of a run split over workers equal a serial run's."""

from __future__ import annotations

import json

import pytest

from .conftest import sentiment_cases, write


def _suites(evaldir: pytest.Pytester) -> None:
    evaldir.makeini("[pytest]\nllmeval_cache = .cache\n")
    write(evaldir, "cases.jsonl", sentiment_cases(30, 30))
    for name in ("a", "b", "c"):
        write(evaldir, f"{name}.eval.yaml", "model: python:toymodel:sentiment\nmodel_options: {cache: true}\n"
              "prompt: '{text}'\ncases: cases.jsonl\nmetrics:\n  exact_match: {}\n")


def _usage(evaldir: pytest.Pytester, *args: str) -> dict:
    result = evaldir.runpytest("-q", "--llmeval-json", "r.json", *args)
    assert result.ret == 0, result.stdout.str()
    return json.loads((evaldir.path / "r.json").read_text())["usage"]


def test_xdist_usage_equals_serial_usage(evaldir: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    _suites(evaldir)
    cold = _usage(evaldir)  # the first suite fills the cache, the others hit it
    warm_serial = _usage(evaldir)
    warm_xdist = _usage(evaldir, "-n", "2")
    name = "python:toymodel:sentiment"
    assert cold[name]["cache_misses"] == 60 and cold[name]["cache_hits"] == 120
    assert warm_serial[name]["cache_hits"] == 180
    assert warm_xdist == warm_serial
