"""AlpacaEval end to end: the model against each instruction's reference output, with the LC win rate gate."""

from __future__ import annotations

import json
import re

import pytest
from plugin.conftest import evaldir, results, write  # noqa: F401 - fixtures

from pytest_llmeval.loaders import alpaca_eval
from pytest_llmeval.testing.fake_server import FakeLLMServer

pytest.importorskip("openai")

BLOCK = re.compile(r"----- BEGIN RESPONSE (?P<pos>[AB]) \(boundary \w+\) -----\n(?P<body>.*?)\n-----", re.DOTALL)


RANK = {"model answer is right": 2, "reference answer text": 1, "model answer is wrong": 0}


def responder(request) -> str:
    """The model is right on three instructions in four; the judge ranks right > reference > wrong.

    Every answer has the reference's length, so the length-controlled win rate is the win rate.
    """
    if request.model == "fake-judge":
        shown = {m["pos"]: RANK[m["body"]] for m in BLOCK.finditer(request.messages[0]["content"])}
        return json.dumps({"reasoning": "ranked", "winner": "A" if shown["A"] > shown["B"] else "B"})
    return "model answer is wrong" if int(request.prompt.split()[-1]) % 4 == 0 else "model answer is right"


def test_win_rate_against_the_reference_outputs_with_a_length_controlled_gate(evaldir, monkeypatch):  # noqa: F811
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    monkeypatch.setenv("COLUMNS", "200")  # the summary's rows on one line each
    records = [{"instruction": f"Answer question {i}", "output": "reference answer text",
                "generator": "ref-model", "dataset": "helpful_base" if i % 2 else "koala"} for i in range(40)]
    (evaldir.path / "alpaca_eval.json").write_text(json.dumps(records))
    cases = alpaca_eval.load(evaldir.path / "alpaca_eval.json", {})
    (evaldir.path / "alpaca.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    with FakeLLMServer(responder=responder) as server:
        opts = f'{{base_url: "{server.openai_base_url}", api_key_env: FAKE_KEY, max_retries: 2}}'
        write(evaldir, "alpaca.eval.yaml", f"""
            model: openai:fake-model
            model_options: {opts}
            cases: alpaca.jsonl
            judge:
              model: openai:fake-judge
              options: {opts}
              pairwise: {{against: reference, min_win_rate: 0.7, min_lc_win_rate: 0.8}}
            """)
        result = evaldir.runpytest("-q", "--llmeval-json", "results.json")
        log = list(server.log)
    assert not [r for r in log if r.model not in ("fake-model", "fake-judge")]  # no baseline model is asked
    judge_texts = [r.messages[0]["content"] for r in log if r.model == "fake-judge"]
    assert len(judge_texts) == 80 and all("reference answer text" in t for t in judge_texts)
    suite = results(evaldir)["suites"][0]
    win = suite["aggregates"][0]
    assert win["name"] == "win_rate[openai:fake-model>reference]"
    d = win["details"]
    assert (d["wins"], d["losses"], d["ties"]) == (30, 10, 0) and win["value"] == 0.75
    assert d["consistency_rate"] == 1.0  # both orders of every pair agree
    # the win rate clears 0.7, the length-controlled one (equal lengths: the same 0.75) fails 0.8
    assert d["lc_win_rate"] == pytest.approx(0.75, abs=1e-3) and d["lc_passed"] is False
    assert win["passed"] is False
    result.assert_outcomes(passed=40, failed=1)
    result.stdout.fnmatch_lines(["*win_rate[[]openai:fake-model>reference[]]*0.750*>= 0.7*FAIL*",
                                 "*length-controlled*0.750*>= 0.8*FAIL*"])
    case = next(c for c in suite["cases"] if c["id"] == "2")
    assert case["baseline_output"] == "reference answer text" and case["category"] == "helpful_base"
