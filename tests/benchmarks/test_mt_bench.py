"""MT-Bench end to end: all 80 questions, two turns, with the fake provider as model, baseline and judge.

The judge's requests are read back from the server's log: a second turn is judged with the
conversation before it (the model's own first answer), and the reference-guided categories
(math, reasoning, coding) with their references.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from plugin.conftest import evaldir, results, write  # noqa: F401 - fixtures

from pytest_llmeval.loaders import mt_bench
from pytest_llmeval.testing.fake_server import FakeLLMServer

pytest.importorskip("openai")

BLOCK = re.compile(r"----- BEGIN (?P<label>[^\n]*?) \(boundary (?P<b>\w+)\) -----\n(?P<body>.*?)\n"
                   r"----- END (?P=label) \(boundary (?P=b)\) -----", re.DOTALL)


def answer(model: str, messages: list[dict[str, str]]) -> str:
    """A deterministic answer naming the model, the turn and the question it answers."""
    users = [m["content"] for m in messages if m["role"] == "user"]
    digest = hashlib.sha1(users[-1].encode()).hexdigest()[:10]
    return f"{model} turn {len(users)} {digest}"


def responder(request) -> str:
    if request.model != "fake-judge":
        return answer(request.model, request.messages)
    blocks = {m["label"]: m["body"] for m in BLOCK.finditer(request.messages[0]["content"])}
    shown_first = [v for k, v in blocks.items()
                   if k == "RESPONSE A" or (k.startswith("ASSISTANT A,") and "JUDGE" in k)]
    if shown_first:
        winner = "A" if shown_first[0].startswith("fake-model") else "B"
        return json.dumps({"reasoning": "the fine-tuned answer", "winner": winner})
    judged = next(v for k, v in blocks.items() if k == "RESPONSE" or "THE ANSWER TO JUDGE" in k)
    return json.dumps({"reasoning": "ok", "score": 8 if " turn 2 " in judged else 6})


def test_all_80_questions_two_turns_judged_in_context(evaldir, monkeypatch):  # noqa: F811
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    cases = mt_bench.load(mt_bench.BUNDLED_QUESTIONS, {})
    assert len(cases) == 80 and all(len(c["turns"]) == 2 for c in cases)
    (evaldir.path / "mt_bench.jsonl").write_text("\n".join(json.dumps(c) for c in cases) + "\n")
    with FakeLLMServer(responder=responder) as server:
        opts = (f'{{base_url: "{server.openai_base_url}", api_key_env: FAKE_KEY, concurrency: 16, '
                f'max_retries: 2, retry_backoff: 0.01}}')
        write(evaldir, "mt.eval.yaml", f"""
            name: mt_bench
            model: openai:fake-model
            model_options: {opts}
            baseline: openai:fake-base
            baseline_options: {opts}
            generation: {{max_new_tokens: 64}}
            cases: mt_bench.jsonl
            judge:
              model: openai:fake-judge
              options: {opts}
              score: {{min_mean: 6.5}}
              pairwise: {{against: baseline, min_win_rate: 0.9}}
            """)
        result = evaldir.runpytest("-q", "--llmeval-json", "results.json")
        log = list(server.log)
    out = result.stdout.str()
    result.assert_outcomes(passed=82)
    suite = results(evaldir)["suites"][0]

    # generation: every case two turns, the second with the model's own first answer in its history
    gen = [r for r in log if r.model in ("fake-model", "fake-base")]
    assert len(gen) == 80 * 2 * 2
    for r in gen:
        if len([m for m in r.messages if m["role"] == "user"]) == 2:
            assert r.messages[1] == {"role": "assistant", "content": answer(r.model, r.messages[:1])}

    by_id = {c["id"]: c for c in suite["cases"]}
    judge_texts = [r.messages[0]["content"] for r in log if r.model == "fake-judge"]
    score_texts = [t for t in judge_texts if '"score"' in t]
    pair_texts = [t for t in judge_texts if '"winner"' in t]
    assert len(score_texts) == 160 and len(pair_texts) == 320
    refs = {c["id"]: c.get("reference") for c in cases}
    for case in cases:
        res = by_id[case["id"]]
        t1, t2 = (t["output"] for t in res["turns"])
        assert t1 == answer("fake-model", [{"role": "user", "content": case["turns"][0]}])
        assert res["output"] == t2 and res["turns"][1]["baseline_output"].startswith("fake-base turn 2")
        second = [t for t in score_texts if t2 in t]
        assert len(second) == 1 and t1 in second[0] and case["turns"][0] in second[0]
        first = [t for t in score_texts if t1 in t and t2 not in t]
        assert len(first) == 1
        pair_second = [t for t in pair_texts if t2 in t]
        assert len(pair_second) == 2 and all(t1 in t and res["turns"][0]["baseline_output"] in t
                                             for t in pair_second)
        if case["category"] in ("math", "reasoning", "coding"):
            ref1, ref2 = refs[case["id"]]
            assert ref1 in first[0] and ref1 in second[0] and ref2 in second[0]
        else:
            assert refs[case["id"]] is None and "REFERENCE" not in second[0]
        assert res["judge"]["score"]["score"] == 7.0
        assert [t["score"] for t in res["judge"]["score"]["turns"]] == [6.0, 8.0]

    aggs = {a["name"]: a for a in suite["aggregates"]}
    assert aggs["judge_score"]["value"] == 7.0 and aggs["judge_score"]["passed"] is True
    win = aggs["win_rate[openai:fake-model>openai:fake-base]"]
    assert win["value"] == 1.0 and win["n"] == 160 and win["details"]["n_cases"] == 80
    rows = {(r["kind"], r["category"]): r for r in suite["categories"]["judge_score"]}
    cats = {"coding", "extraction", "humanities", "math", "reasoning", "roleplay", "stem", "writing"}
    assert {c for k, c in rows if k == "category"} == cats
    assert all(rows[("category", c)]["n"] == 10 and rows[("category", c)]["value"] == 7.0 for c in cats)
    assert rows[("turn", "turn 1")]["value"] == 6.0 and rows[("turn", "turn 2")]["value"] == 8.0
    for label in ("math", "writing", "turn 1", "turn 2"):
        assert re.search(rf"^\s+{label}\s+\S+", out, re.MULTILINE), label
