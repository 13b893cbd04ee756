"""A gate kind registered in a conftest.py works end to end, serially and under -n 2."""

from __future__ import annotations

import pytest

from .conftest import results, write

CONFTEST = '''
from pydantic import Field

from pytest_llmeval.gates import Gate, GateOutcome, GateSpec, register_gate


class MaxWordsSpec(GateSpec):
    max_words: float = Field(gt=0)


@register_gate
class MaxWordsGate(Gate):
    kind = "max_words"
    section = "max_words"
    Spec = MaxWordsSpec

    def evaluate(self, ctx):
        longest = max(len((r.output or "").split()) for r in ctx.results)
        agg = self.aggregate(value=float(longest), threshold=self.spec.max_words, op="max",
                             n=len(ctx.results))
        agg.passed = longest <= self.spec.max_words
        return GateOutcome(agg, message="" if agg.passed else f"longest output: {longest} words")
'''


def _suite(evaldir: pytest.Pytester, limit: float) -> None:
    evaldir.makeconftest(CONFTEST)
    write(evaldir, "w.eval.yaml", f"model: python:toymodel:echo\nprompt: '{{text}}'\ncases:\n"
          f"  - {{id: a, text: one two three}}\n  - {{id: b, text: four five}}\nmax_words: {{max_words: {limit}}}\n")


@pytest.mark.parametrize("limit, verdict", [(3, "pass"), (2, "fail")])
def test_user_gate_kind_end_to_end(evaldir: pytest.Pytester, dist: list[str], limit: float, verdict: str) -> None:
    _suite(evaldir, limit)
    result = evaldir.runpytest("-q", "--llmeval-json", "r.json", *dist)
    if verdict == "pass":
        result.assert_outcomes(passed=3)
    else:
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(["*longest output: 3 words*", "*FAILED w.eval.yaml::max_words*"])
    agg = results(evaldir, "r.json")["suites"][0]["aggregates"][0]
    assert agg["name"] == "max_words" and agg["kind"] == "max_words" and agg["value"] == 3.0


def test_user_gate_spec_is_validated_at_collection(evaldir: pytest.Pytester) -> None:
    _suite(evaldir, -1)
    result = evaldir.runpytest("-q")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*line 6: max_words.max_words*greater than 0*"])


def test_an_unknown_section_suggests_the_registered_kind(evaldir: pytest.Pytester) -> None:
    _suite(evaldir, 3)
    text = (evaldir.path / "w.eval.yaml").read_text().replace("max_words: {", "max_word: {")
    (evaldir.path / "w.eval.yaml").write_text(text)
    result = evaldir.runpytest("-q")
    result.stdout.fnmatch_lines(["*line 6: max_word: unknown key 'max_word'. Did you mean 'max_words'?"])
