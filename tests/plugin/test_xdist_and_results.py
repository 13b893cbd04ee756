"""Serial and -n 2 runs give the same verdicts and values; the results file and JUnit XML carry scores."""

from __future__ import annotations

import json

import pytest

from .conftest import results, sentiment_cases, write


def _suites(evaldir: pytest.Pytester) -> None:
    for k, (g, b, n) in enumerate([(30, 20, 10), (5, 5, 5), (12, 3, 9)]):
        write(evaldir, f"cases{k}.jsonl", sentiment_cases(g, b, n))
        write(evaldir, f"s{k}.eval.yaml", f"""
            model: python:toymodel:sentiment
            prompt: "Review: {{text}}"
            cases: cases{k}.jsonl
            metrics:
              exact_match: {{min: 0.7}}
              f1: {{min: 0.5, average: macro}}
              rougeL: {{metric: rouge, min: 0.1}}
        """)
    evaldir.makepyfile(test_plain="import pytest\n@pytest.mark.parametrize('i', range(6))\n"
                                  "def test_p(i):\n    assert i >= 0\n")


def _verdicts(path) -> dict:
    data = json.loads(path.read_text())
    return {(s["file"], a["name"]): (a["passed"], round(a["value"], 12), [round(x, 12) for x in a["ci"]])
            for s in data["suites"] for a in s["aggregates"]}


@pytest.mark.slow
def test_xdist_gives_the_serial_verdicts_and_generates_each_case_once(
        evaldir: pytest.Pytester, monkeypatch) -> None:
    pytest.importorskip("xdist")
    _suites(evaldir)
    calls = evaldir.path / "calls.log"
    monkeypatch.setenv("LLMEVAL_TEST_CALLS", str(calls))
    serial = evaldir.runpytest_subprocess("-q", "-p", "no:cacheprovider", "--llmeval-json", "serial.json")
    n_serial = len(calls.read_text().splitlines())
    calls.unlink()
    par = evaldir.runpytest_subprocess("-q", "-n", "2", "-p", "no:cacheprovider",
                                       "--llmeval-json", "par.json")
    n_par = len(calls.read_text().splitlines())
    calls.unlink()
    par4 = evaldir.runpytest_subprocess("-q", "-n", "4", "-p", "no:cacheprovider",
                                        "--llmeval-json", "par4.json")
    n_par4 = len(calls.read_text().splitlines())
    assert serial.ret == par.ret == par4.ret == 1
    assert n_serial == n_par == n_par4 == 60 + 15 + 24
    assert _verdicts(evaldir.path / "serial.json") == _verdicts(evaldir.path / "par.json")
    assert _verdicts(evaldir.path / "serial.json") == _verdicts(evaldir.path / "par4.json")
    assert par.stdout.str().count("llmeval summary") == 1
    s_out = serial.parseoutcomes()
    p_out = par.parseoutcomes()
    assert s_out["passed"] == p_out["passed"] and s_out["failed"] == p_out["failed"]
    ser_cases = {c["id"]: c for s in results(evaldir, "serial.json")["suites"] for c in s["cases"]}
    par_cases = {c["id"]: c for s in results(evaldir, "par.json")["suites"] for c in s["cases"]}
    for cases in (ser_cases, par_cases):  # request timings are measurements, not results
        for c in cases.values():
            assert len(c.pop("requests")) == max(1, len(c["samples"]))
    assert ser_cases == par_cases


def test_results_file_shape(evaldir: pytest.Pytester) -> None:
    write(evaldir, "cases.jsonl", sentiment_cases(3, 2, 1))
    write(evaldir, "s.eval.yaml", """
        name: sentiment
        model: python:toymodel:sentiment
        prompt: "Review: {text}"
        cases: cases.jsonl
        metrics: {exact_match: {min: 0.5}, f1: {average: macro}}
    """)
    evaldir.runpytest("-q", "--llmeval-json", "out/results.json")
    data = results(evaldir, "out/results.json")
    assert data["version"] == 1 and data["plugin_version"]
    suite = data["suites"][0]
    assert suite["name"] == "sentiment" and suite["file"] == "s.eval.yaml" and suite["n_cases"] == 6
    em = next(a for a in suite["aggregates"] if a["name"] == "exact_match")
    assert em["value"] == pytest.approx(5 / 6) and em["threshold"] == 0.5 and em["passed"] is True
    assert em["ci"][0] < em["value"] < em["ci"][1]
    f1 = next(a for a in suite["aggregates"] if a["name"] == "f1")
    assert f1["passed"] is None and "precision" in suite["reports"]["f1"]
    case = suite["cases"][0]
    assert set(case) >= {"id", "prompt", "output", "reference", "scores"}
    assert case["scores"]["exact_match"] in (0.0, 1.0)
    assert "python:toymodel:sentiment" in data["models"]
    assert data["models"]["python:toymodel:sentiment"]["fingerprint"]


def test_intervals_are_reproducible(evaldir: pytest.Pytester) -> None:
    write(evaldir, "cases.jsonl", sentiment_cases(20, 10, 10))
    write(evaldir, "s.eval.yaml", """
        model: python:toymodel:sentiment
        prompt: "{text}"
        cases: cases.jsonl
        metrics: {rougeL: {metric: rouge}, f1: {}}
    """)
    evaldir.runpytest("-q", "--llmeval-json", "a.json")
    evaldir.runpytest("-q", "--llmeval-json", "b.json")
    assert _verdicts(evaldir.path / "a.json") == _verdicts(evaldir.path / "b.json")


def test_junitxml_carries_scores(evaldir: pytest.Pytester) -> None:
    write(evaldir, "cases.jsonl", sentiment_cases(3, 1))
    write(evaldir, "s.eval.yaml", """
        model: python:toymodel:sentiment
        prompt: "{text}"
        cases: cases.jsonl
        metrics: {exact_match: {min: 0.5}}
    """)
    evaldir.runpytest("-q", "--junitxml", "junit.xml")
    xml = (evaldir.path / "junit.xml").read_text()
    assert '<property name="llmeval.exact_match" value="1.0"' in xml
    assert 'name="llmeval.exact_match.ci"' in xml
    assert "llmeval_payload" not in xml and "'suite':" not in xml
