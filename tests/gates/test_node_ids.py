"""Node ids printed by `pytest -v` can be pasted back to select the item."""

from __future__ import annotations

import re

import pytest

from .conftest import write


def test_verbose_node_ids_select_their_items(evaldir: pytest.Pytester) -> None:
    write(evaldir, "sub/sentiment.eval.yaml", "model: python:toymodel:sentiment\nprompt: '{text}'\ncases:\n"
          "  - {id: sen-001, text: good, reference: positive}\n  - {id: sen.002, text: bad, reference: negative}\n"
          "metrics:\n  exact_match: {min: 0.5}\n")
    result = evaldir.runpytest("-v")
    ids = re.findall(r"^(\S+::\S+) .*PASSED", result.stdout.str(), re.M)
    assert sorted(ids) == sorted(["sub/sentiment.eval.yaml::case[sen-001]", "sub/sentiment.eval.yaml::case[sen.002]",
                                  "sub/sentiment.eval.yaml::exact_match"])
    for node_id in ids:
        again = evaldir.runpytest("-q", node_id)
        again.assert_outcomes(passed=1)
