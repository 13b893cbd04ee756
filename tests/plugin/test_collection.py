"""Eval files become items; bad files become clear collection errors for that file alone."""

from __future__ import annotations

import pytest

from .conftest import write

SUITE = """
name: sentiment
model: python:toymodel:sentiment
prompt: "Review: {text}\\nSentiment:"
cases:
  - {id: c1, text: good movie, reference: positive}
  - {id: c2, text: bad movie, reference: negative}
metrics:
  exact_match: {min: 0.5}
"""


def test_items_are_cases_and_gates_with_stable_ids(evaldir: pytest.Pytester) -> None:
    write(evaldir, "sent.eval.yaml", SUITE)
    result = evaldir.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([
        "sent.eval.yaml::case[[]c1[]]",
        "sent.eval.yaml::case[[]c2[]]",
        "sent.eval.yaml::exact_match",
    ])
    assert result.ret == 0


def test_k_selects_one_case_and_only_it_is_generated(evaldir: pytest.Pytester, monkeypatch) -> None:
    calls = evaldir.path / "calls.log"
    monkeypatch.setenv("LLMEVAL_TEST_CALLS", str(calls))
    write(evaldir, "sent.eval.yaml", SUITE)
    result = evaldir.runpytest("-k", "c2")
    result.assert_outcomes(passed=1, deselected=2)
    logged = calls.read_text().splitlines()
    assert len(logged) == 1 and "bad movie" in logged[0]


def test_ids_without_id_are_content_hashes_stable_across_order(evaldir: pytest.Pytester) -> None:
    write(evaldir, "a.eval.yaml", """
        model: python:toymodel:sentiment
        prompt: "{text}"
        cases: [{text: one, reference: x}, {text: two, reference: y}]
    """)
    first = evaldir.runpytest("--collect-only", "-q").stdout.lines
    write(evaldir, "a.eval.yaml", """
        model: python:toymodel:sentiment
        prompt: "{text}"
        cases: [{text: two, reference: y}, {text: one, reference: x}]
    """)
    second = evaldir.runpytest("--collect-only", "-q").stdout.lines
    ids1 = sorted(line for line in first if "case[" in line)
    ids2 = sorted(line for line in second if "case[" in line)
    assert len(ids1) == 2 and ids1 == ids2


def test_cases_from_jsonl_yaml_and_csv_files(evaldir: pytest.Pytester) -> None:
    write(evaldir, "data/c.jsonl", '{"id": "j1", "text": "good", "reference": "positive"}\n')
    write(evaldir, "data/c.yaml", "- {id: y1, text: bad, reference: negative}\n")
    write(evaldir, "data/c.csv", "id,text,reference\ns1,good stuff,positive\n")
    for ext in ("jsonl", "yaml", "csv"):
        write(evaldir, f"s_{ext}.eval.yaml", f"""
            model: python:toymodel:sentiment
            prompt: "{{text}}"
            cases: data/c.{ext}
            metrics: {{exact_match: {{min: 1.0}}}}
        """)
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=6)


def test_bare_jsonl_suite_uses_ini_default_metrics(evaldir: pytest.Pytester) -> None:
    evaldir.makeini("[pytest]\nllmeval_cache = off\nllmeval_model = python:toymodel:sentiment\n"
                    "llmeval_metrics =\n    exact_match>=0.9\n")
    write(evaldir, "quick.eval.jsonl",
          '{"id": "a", "prompt": "good day", "reference": "positive"}\n'
          '{"id": "b", "prompt": "bad day", "reference": "positive"}\n')
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*quick.eval.jsonl::exact_match*"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("name: x\nprompt: [unclosed\n", ["*bad.eval.yaml:*invalid YAML*"]),
        ("", ["*bad.eval.yaml*empty suite file*"]),
        ("- just\n- a list\n", ["*must be a YAML mapping*"]),
        ("promt: '{text}'\ncases: [{text: a}]\n", ["*line 1*unknown key 'promt'*Did you mean 'prompt'*"]),
        ("prompt: '{text}'\ncases: [{txt: a}]\n",
         ["*bad.eval.yaml:2*case*uses {text} but the case has no 'text' field*Did you mean 'txt'*"]),
        ("prompt: '{text}'\ncases:\n  - {id: a, text: x}\n  - {id: a, text: y}\n",
         ["*bad.eval.yaml:4*duplicate case id 'a'*first at line 3*"]),
        ("prompt: '{text}'\ncases: [{text: a, reference: b}]\nmetrics:\n  exact_mach: {min: 1}\n",
         ["*bad.eval.yaml:4*unknown metric 'exact_mach'*Did you mean 'exact_match'*"]),
        ("prompt: '{text}'\ncases: missing.jsonl\n", ["*cases file 'missing.jsonl' not found*"]),
        ("prompt: '{text}'\ncases: [{text: a}]\nrepeat: zero\n", ["*line 3*repeat*valid integer*"]),
        ("prompt: '{text}'\ncases: [{text: a, assert: [{contain: x}]}]\n",
         ["*check*must have exactly one of*Did you mean 'contains'*"]),
        ("prompt: '{text}'\ncases: [{text: a, assert: [{regex: '('}]}]\n", ["*invalid regex*"]),
        ("prompt: '{text}'\nprompt: '{x}'\ncases: [{text: a}]\n", ["*bad.eval.yaml:2*duplicate key 'prompt'*"]),
    ],
)
def test_bad_suite_is_a_clear_collection_error_and_others_still_run(
        evaldir: pytest.Pytester, content: str, expected: list[str]) -> None:
    write(evaldir, "bad.eval.yaml", content)
    write(evaldir, "good.eval.yaml", SUITE)
    result = evaldir.runpytest("-q")
    result.stdout.fnmatch_lines(expected)
    result.assert_outcomes(passed=3, errors=1)
    assert "Traceback" not in result.stdout.str()
    assert "pytest_llmeval/" not in result.stdout.str()


def test_non_utf8_file_names_line(evaldir: pytest.Pytester) -> None:
    (evaldir.path / "bin.eval.yaml").write_bytes(b"prompt: '{text}'\ncases: [{text: \xff\xfe}]\n")
    result = evaldir.runpytest("-q")
    result.stdout.fnmatch_lines(["*bin.eval.yaml:2*not valid UTF-8*"])
    result.assert_outcomes(errors=1)


def test_malformed_jsonl_cases_file_names_line(evaldir: pytest.Pytester) -> None:
    write(evaldir, "c.jsonl", '{"text": "a"}\n{"text": oops}\n')
    write(evaldir, "s.eval.yaml", "prompt: '{text}'\ncases: c.jsonl\n")
    result = evaldir.runpytest("-q")
    result.stdout.fnmatch_lines(["*c.jsonl:2*invalid JSON*"])


def test_custom_patterns_ini(evaldir: pytest.Pytester) -> None:
    evaldir.makeini("[pytest]\nllmeval_cache = off\nllmeval_patterns = *.llm.yaml\n")
    write(evaldir, "x.llm.yaml", SUITE)
    write(evaldir, "y.eval.yaml", SUITE)
    result = evaldir.runpytest("--collect-only", "-q")
    out = result.stdout.str()
    assert "x.llm.yaml::exact_match" in out and "y.eval.yaml" not in out


def test_no_eval_files_means_no_summary(evaldir: pytest.Pytester) -> None:
    evaldir.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = evaldir.runpytest("-q")
    result.assert_outcomes(passed=1)
    assert "llmeval summary" not in result.stdout.str()


def test_categories_and_tags_are_keywords(evaldir: pytest.Pytester) -> None:
    write(evaldir, "s.eval.yaml", """
        model: python:toymodel:sentiment
        prompt: "{text}"
        cases:
          - {id: a, text: good, category: food, tags: [smoke]}
          - {id: b, text: bad, category: film}
          - {id: c, text: meh, category: film, tags: [smoke]}
    """)
    evaldir.runpytest("-q", "-k", "food").assert_outcomes(passed=1, deselected=2)
    evaldir.runpytest("-q", "-k", "smoke").assert_outcomes(passed=2, deselected=1)


@pytest.mark.parametrize("xdist", [[], ["-p", "no:xdist"]])
def test_strict_markers_with_and_without_xdist(evaldir: pytest.Pytester, xdist: list[str]) -> None:
    write(evaldir, "s.eval.yaml", SUITE)
    # a subprocess: in-process runs share pytest.mark's configuration with the outer run
    evaldir.runpytest_subprocess("-q", "--strict-markers", *xdist).assert_outcomes(passed=3)
