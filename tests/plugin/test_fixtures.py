"""Fixtures and model references: conftest overrides change what YAML suites evaluate."""

from __future__ import annotations

import pytest

from .conftest import results, write

NO_MODEL_SUITE = """
prompt: "{text}"
cases: [{id: a, text: good, reference: positive}, {id: b, text: bad, reference: negative}]
metrics: {exact_match: {min: 1.0}}
"""


def test_suite_without_model_and_no_default_is_a_clear_error(evaldir: pytest.Pytester) -> None:
    write(evaldir, "s.eval.yaml", NO_MODEL_SUITE)
    result = evaldir.runpytest("-q")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(["*no model configured*--llmeval-model*llm_model fixture*"])


def test_cli_model_is_the_default(evaldir: pytest.Pytester) -> None:
    write(evaldir, "s.eval.yaml", NO_MODEL_SUITE)
    evaldir.runpytest("-q", "--llmeval-model", "python:toymodel:sentiment").assert_outcomes(passed=3)


def test_conftest_override_changes_what_yaml_suites_evaluate(evaldir: pytest.Pytester) -> None:
    write(evaldir, "s.eval.yaml", NO_MODEL_SUITE)
    evaldir.makeconftest("""
        import pytest

        @pytest.fixture(scope="session")
        def llm_model():
            return lambda prompt: "negative"
    """)
    result = evaldir.runpytest("-q", "--llmeval-model", "python:toymodel:sentiment",
                               "--llmeval-json", "results.json")
    result.assert_outcomes(passed=2, failed=1)
    outputs = {c["id"]: c["output"] for c in results(evaldir)["suites"][0]["cases"]}
    assert outputs == {"a": "negative", "b": "negative"}


def test_conftest_model_object_with_generate(evaldir: pytest.Pytester) -> None:
    write(evaldir, "s.eval.yaml", NO_MODEL_SUITE)
    evaldir.makeconftest("""
        import pytest
        from pytest_llmeval.models import ModelBase

        class Shouty(ModelBase):
            scheme = "test"
            def generate(self, requests):
                return ["positive" if "good" in r.prompt else "negative" for r in requests]

        @pytest.fixture(scope="session")
        def llm_model():
            return Shouty("shouty", "v1")
    """)
    result = evaldir.runpytest("-q", "--llmeval-json", "results.json")
    result.assert_outcomes(passed=3)
    assert results(evaldir)["suites"][0]["model"] == "shouty"


def test_named_models_from_pyproject(evaldir: pytest.Pytester) -> None:
    evaldir.makepyprojecttoml("""
        [tool.pytest.ini_options]
        llmeval_cache = "off"

        [tool.llmeval.models]
        tuned = "python:toymodel:sentiment"
        base = {ref = "python:toymodel:always_negative"}
    """)
    write(evaldir, "s.eval.yaml", "model: tuned\nbaseline: base\n" + NO_MODEL_SUITE)
    result = evaldir.runpytest("-q", "--llmeval-json", "results.json")
    result.assert_outcomes(passed=3)
    suite = results(evaldir)["suites"][0]
    assert suite["model"] == "tuned" and suite["baseline"] == "base"
    base = suite["aggregates"][0]["details"]["vs_baseline"]
    assert base["value"] == 0.5 and base["delta"] == 0.5
    result.stdout.fnmatch_lines(["*base model*base*0.500*", "*difference*+0.500*"])


def test_unknown_model_name_suggests(evaldir: pytest.Pytester) -> None:
    evaldir.makepyprojecttoml("""
        [tool.pytest.ini_options]
        llmeval_cache = "off"
        [tool.llmeval.models]
        finetuned = "python:toymodel:sentiment"
    """)
    write(evaldir, "s.eval.yaml", "model: finetund\n" + NO_MODEL_SUITE)
    result = evaldir.runpytest("-q")
    result.stdout.fnmatch_lines(["*unknown model 'finetund'*Did you mean 'finetuned'*"])
    result.assert_outcomes(errors=1)  # one collection error for the file, not one ERROR per item


def test_llm_generator_in_a_python_test(evaldir: pytest.Pytester) -> None:
    evaldir.makepyfile(test_gen="""
        def test_generate(llm_generator):
            assert llm_generator("a good day") == "positive"
            assert llm_generator.batch(["good", "bad"]) == ["positive", "negative"]
            assert llm_generator("x|y", stop=["|"]) == "neutral"
    """)
    evaldir.runpytest("-q", "--llmeval-model", "python:toymodel:sentiment").assert_outcomes(passed=1)


def test_llm_judge_without_configuration_is_a_clear_error(evaldir: pytest.Pytester) -> None:
    evaldir.makepyfile(test_judge="def test_j(llm_judge):\n    pass\n")
    result = evaldir.runpytest("-q")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no judge configured*--llmeval-judge*"])


def test_batch_and_async_python_models(evaldir: pytest.Pytester) -> None:
    evaldir.makepyfile(asyncmodel="""
        import asyncio
        async def gen(prompt):
            await asyncio.sleep(0.01)
            return prompt.upper()
    """)
    write(evaldir, "a.eval.yaml", """
        model: python:asyncmodel:gen
        prompt: "{text}"
        cases: [{id: a, text: hi, assert: [{equals: HI}]}]
    """)
    write(evaldir, "b.eval.yaml", """
        model: python:toymodel:batch_upper
        prompt: "{text}"
        cases: [{id: a, text: yo, assert: [{equals: YO}]}]
    """)
    evaldir.runpytest("-q").assert_outcomes(passed=2)
