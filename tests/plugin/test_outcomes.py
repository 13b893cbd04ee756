"""FAIL, ERROR and SKIP stay distinct; failure messages carry value, interval, n, threshold, cases."""

from __future__ import annotations

import pytest

from .conftest import results, sentiment_cases, write


def _suite(evaldir: pytest.Pytester, metrics: str, cases: str = "cases.jsonl", extra: str = "") -> None:
    lines = ["name: s", "model: python:toymodel:sentiment", 'prompt: "Review: {text}"', f"cases: {cases}",
             extra, "metrics:"] + [m.strip() and "  " + m.strip() for m in metrics.splitlines()]
    (evaldir.path / "s.eval.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_gate_failure_message_reads_like_an_assertion(evaldir: pytest.Pytester, dist: list[str]) -> None:
    write(evaldir, "cases.jsonl", sentiment_cases(6, 4, 10))
    _suite(evaldir, "  exact_match: {min: 0.9}")
    result = evaldir.runpytest("-q", *dist)
    result.assert_outcomes(passed=20, failed=1)
    result.stdout.fnmatch_lines([
        "*exact_match = 0.500 (95% CI [[]0.299, 0.701[]], wilson, n=20)*",
        "*required: >= 0.9*",
        "*worst cases (5 of 20):*",
        "*case[[]n*",
        "*prompt:*",
        "*output:*",
        "*neutral*",
        "*reference:*",
    ])


def test_confidence_gate_uses_the_lower_bound(evaldir: pytest.Pytester, dist: list[str]) -> None:
    write(evaldir, "cases.jsonl", sentiment_cases(9, 0, 1))
    # point value 0.9 clears 0.7, but the Wilson lower bound (0.596) does not
    _suite(evaldir, "  point: {metric: exact_match, min: 0.7}\n  lower: {metric: exact_match, min: 0.7, confidence: 0.95}")
    result = evaldir.runpytest("-q", "--llmeval-json", "results.json", *dist)
    result.assert_outcomes(passed=11, failed=1)
    result.stdout.fnmatch_lines(["*_ lower _*", "*lower bound must be >= 0.7*"])
    aggs = {a["name"]: a for a in results(evaldir)["suites"][0]["aggregates"]}
    assert aggs["point"]["passed"] is True and aggs["lower"]["passed"] is False
    assert aggs["lower"]["ci"][0] < 0.7 < aggs["lower"]["value"]


def test_model_exception_is_error_not_failure(evaldir: pytest.Pytester) -> None:
    write(evaldir, "cases.jsonl", '{"id": "ok", "text": "good", "reference": "positive"}\n'
                                  '{"id": "boom", "text": "explode", "reference": "positive"}\n')
    _suite(evaldir, "  exact_match: {min: 0.5}")
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=1, errors=2)
    # the error sections (pytest 7.4's short summary carries no message for errors)
    result.stdout.fnmatch_lines([
        "*_ ERROR at setup of case[[]boom[]] _*",
        "case 'boom': RuntimeError: model exploded*",
        "*_ ERROR at setup of exact_match _*",
        "*1 of 2 cases have no output*",
    ])


def test_unloadable_model_errors_every_item(evaldir: pytest.Pytester) -> None:
    write(evaldir, "s.eval.yaml", """
        model: python:toymodel:does_not_exist
        prompt: "{text}"
        cases: [{id: a, text: x, reference: y}]
        metrics: {exact_match: {min: 0.5}}
    """)
    result = evaldir.runpytest("-q")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*has no attribute 'does_not_exist'*"])


@pytest.mark.parametrize(("check", "ok"), [
    ("{contains: posit}", True), ("{contains: [pos, neg]}", False), ("{not_contains: neg}", True),
    ("{equals: positive}", True), ("{equals: POSITIVE, ignore_case: true}", True),
    ("{regex: '^pos.*e$'}", True), ("{is_json: true}", False), ("{max_length: 3}", False),
    ("{json_schema: {type: string}}", False), ("{python: 'checks_mod:starts_with_p'}", True),
])
def test_per_case_checks(evaldir: pytest.Pytester, check: str, ok: bool) -> None:
    evaldir.makepyfile(checks_mod="def starts_with_p(output, case):\n    return output.startswith('p')\n")
    write(evaldir, "s.eval.yaml", f"""
        model: python:toymodel:sentiment
        prompt: "{{text}}"
        cases: [{{id: a, text: good, assert: [{check}]}}]
    """)
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=1 if ok else 0, failed=0 if ok else 1)


def test_json_checks_pass_on_json_output(evaldir: pytest.Pytester) -> None:
    write(evaldir, "s.eval.yaml", """
        model: python:toymodel:echo
        prompt: "{payload}"
        assert: [{is_json: true}]
        cases:
          - {id: good, payload: '{"name": "Ada", "age": 36}',
             assert: [{json_schema: {type: object, required: [name, age], properties: {age: {type: integer}}}}]}
          - {id: bad, payload: '{"name": "Ada", "age": "old"}',
             assert: [{json_schema: {type: object, properties: {age: {type: integer}}}}]}
    """)
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*does not match the schema at age*"])


def test_per_case_metric_minimum_fails_only_that_case(evaldir: pytest.Pytester) -> None:
    write(evaldir, "cases.jsonl", sentiment_cases(3, 0, 1))
    _suite(evaldir, "  exact_match: {case_min: 1}")
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*_ case[[]n0[]] _*", "*exact_match = 0.000 is below the per-case minimum 1*"])


def test_per_category_gate_requires_every_category(evaldir: pytest.Pytester, dist: list[str]) -> None:
    write(evaldir, "cases.jsonl", sentiment_cases(10, 10, 2))
    _suite(evaldir, "  overall: {metric: exact_match, min: 0.8}\n  each: {metric: exact_match, min: 0.8, per_category: true}")
    result = evaldir.runpytest("-q", "--llmeval-json", "results.json", *dist)
    result.assert_outcomes(passed=23, failed=1)
    result.stdout.fnmatch_lines(["*categories below the threshold: other = 0.000 (n=2)*"])
    suite = results(evaldir)["suites"][0]
    cats = {c["category"]: c["value"] for c in suite["categories"]["overall"]}
    assert cats == {"neg": 1.0, "other": 0.0, "pos": 1.0}


def test_repeat_samples_each_case(evaldir: pytest.Pytester, monkeypatch, dist: list[str]) -> None:
    calls = evaldir.path / "calls.log"
    monkeypatch.setenv("LLMEVAL_TEST_CALLS", str(calls))
    write(evaldir, "cases.jsonl", sentiment_cases(2, 1))
    _suite(evaldir, "  exact_match: {min: 0.5}", extra="repeat: 3")
    result = evaldir.runpytest("-q", "--llmeval-json", "results.json", *dist)
    result.assert_outcomes(passed=4)
    assert len(calls.read_text().splitlines()) == 9
    suite = results(evaldir)["suites"][0]
    assert all(len(c["samples"]) == 3 and c["scores"]["pass_rate"] == 1.0 for c in suite["cases"])
    assert suite["aggregates"][0]["details"]["n_predictions"] == 9


def test_messages_template_and_system(evaldir: pytest.Pytester) -> None:
    write(evaldir, "s.eval.yaml", """
        model: python:toymodel:echo
        system: "You classify."
        messages:
          - {role: user, content: "Say {word}"}
        cases: [{id: a, word: hi, assert: [{equals: Say hi}]}]
    """)
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=1)


def test_stop_sequences_cut_python_outputs(evaldir: pytest.Pytester) -> None:
    write(evaldir, "s.eval.yaml", """
        model: python:toymodel:echo
        prompt: "{text}"
        generation: {stop: ["|"]}
        cases: [{id: a, text: "keep|drop", assert: [{equals: keep}]}]
    """)
    evaldir.runpytest("-q").assert_outcomes(passed=1)


def test_outputs_backend_evaluates_precomputed_outputs(evaldir: pytest.Pytester) -> None:
    write(evaldir, "outs.jsonl", '{"id": "a", "output": "positive"}\n{"id": "b", "output": "positive"}\n')
    write(evaldir, "s.eval.yaml", """
        model: outputs:outs.jsonl
        prompt: "{text}"
        cases: [{id: a, text: x, reference: positive}, {id: b, text: y, reference: negative},
                {id: c, text: z, reference: negative}]
        metrics: {exact_match: {min: 0.1}}
    """)
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(["*no output for case 'c'*outs.jsonl*"])


def test_progress_shows_in_the_terminal_but_not_with_q(evaldir: pytest.Pytester) -> None:
    write(evaldir, "cases.jsonl", sentiment_cases(2, 1))
    _suite(evaldir, "  exact_match: {min: 0.5}")
    loud = evaldir.runpytest()
    loud.stdout.fnmatch_lines(["s.eval.yaml [[]python:toymodel:sentiment: 3/3 in *s[]] .*"])
    quiet = evaldir.runpytest("-q")
    assert "3/3 in" not in quiet.stdout.str()
    quiet.assert_outcomes(passed=4)
