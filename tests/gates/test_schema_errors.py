"""Every schema problem is a collection error naming file:line and the key; the other suites still run."""

from __future__ import annotations

import pytest

from .conftest import write

HEAD = "model: python:toymodel:sentiment\nprompt: '{text}'\ncases:\n  - {id: a, text: good, reference: positive}\n"


@pytest.mark.parametrize("body, expected", [
    ("metrics:\n  exact_match: {min: 80}\n", "*bad.eval.yaml:6*metrics.exact_match: min: 80 is outside the "
                                              "range of 'exact_match' [[]0, 1[]]*"),
    ("metrics:\n  exact_match: {min: .nan}\n", "*line 6: metrics.exact_match.min*finite number*"),
    ("metrics:\n  exact_match: {min: -.inf}\n", "*line 6: metrics.exact_match.min*finite number*"),
    ("metrics:\n  exact_match: {min: -5}\n", "*outside the range*"),
    ("metrics:\n  exact_match: {max: .inf}\n", "*finite number*"),
    ("metrics:\n  rougeL: {case_min: -1}\n", "*case_min: -1 is outside the range*"),
    ("metrics:\n  exact_match: {max_regression: -1}\n", "*metrics.exact_match.max_regression*greater than or "
                                                         "equal to 0*"),
    ("metrics:\n  exact_match: {per_category: 'no'}\n", "*metrics.exact_match.per_category*true or false*"),
    ("metrics:\n  exact_match: {min: high}\n", "*metrics.exact_match.min*"),
    ("metrics:\n  exact_matc: {min: 0.5}\n", "*unknown metric 'exact_matc'*Did you mean 'exact_match'*"),
    ("metrics:\n  rougeL: {use_stemer: true}\n", "*bad.eval.yaml:6*metrics.rougeL*unknown option 'use_stemer'*Did you mean 'use_stemmer'*"),
    ("contamination: {trian: [x.jsonl]}\n", "*line 5: contamination.trian*unknown key*Did you mean "
                                             "'train'*"),
    ("contamination: {train: [x.jsonl], n: 0}\n", "*line 5: contamination.n*greater than or equal to 1*"),
    ("judge:\n  model: python:toymodel:sentiment\n  score: {scale: [1, 5]}\n",
     "*line 7: judge.score.scale*unknown key*"),
    ("judge:\n  model: x\n  score: {max_regression: -2}\n", "*judge.score.max_regression*"),
    ("judge:\n  model: x\n  score: {min_mean: 11}\n", "*min_mean: 11 is outside the judge's scale [[]1, 10[]]*"),
    ("judge:\n  model: x\n  pairwise: {min_win_rate: 60}\n", "*judge.pairwise.min_win_rate*less than or equal "
                                                              "to 1*"),
    ("judge:\n  model: x\n  options: {scale: [5, 1]}\n  score: {}\n", "*scale must be*lowest < highest*"),
    ("latency: {p95_ms: -3}\n", "*line 5: latency.p95_ms*greater than 0*"),
    ("latency: {}\n", "*latency*give at least one of*"),
    ("cost: {max_usd: .nan}\n", "*cost.max_usd*finite number*"),
    ("confidense: 0.9\n", "*line 5: confidense: unknown key 'confidense'. Did you mean 'confidence'?"),
    ("xfail: {exact_mach: flaky}\nmetrics:\n  exact_match: {}\n",
     "*xfail names 'exact_mach'*Did you mean 'exact_match'*"),
    ("metrics:\n  exact_match: {min: 0.5, max: 0.9}\n", "*give 'min' or 'max', not both*"),
])
def test_schema_error_is_a_collection_error_with_file_line(evaldir: pytest.Pytester, body: str,
                                                           expected: str) -> None:
    write(evaldir, "bad.eval.yaml", HEAD + body)
    write(evaldir, "good.eval.yaml", HEAD + "metrics:\n  exact_match: {min: 0.5}\n")
    result = evaldir.runpytest("-q")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ERROR collecting bad.eval.yaml*", expected])
    result.assert_outcomes(passed=2, errors=1)  # the good suite still ran
