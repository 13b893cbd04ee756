"""Multiple choice: lm-evaluation-harness's MMLU prompt, acc/acc_norm picks, one batched call, clear errors."""

from __future__ import annotations

import csv
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from pytest_llmeval.errors import SpecError
from pytest_llmeval.gates.base import GateContext
from pytest_llmeval.gates.multiple_choice import _score_model
from pytest_llmeval.multiple_choice import MMLU_DESCRIPTION, Question, build_context, extract_choice, pick
from pytest_llmeval.spec import load_suite

ROOT = Path(__file__).resolve().parents[2]
BASE_MODEL = ROOT / "example_suite" / "models" / "base"


def test_prompt_is_lm_evaluation_harness_mmlu_format() -> None:
    shot = Question("d0", "  Ex?  ", ("x", "y", "z", "w"), 2, "high_school_biology")
    q = Question("t0", "What?\n", ("red", "blue", "green", "black"), 1, "high_school_biology")
    assert build_context(q, [shot], MMLU_DESCRIPTION) == (
        "The following are multiple choice questions (with answers) about high school biology.\n\n"
        "Ex?\nA. x\nB. y\nC. z\nD. w\nAnswer: C\n\n"
        "What?\nA. red\nB. blue\nC. green\nD. black\nAnswer:")


def test_acc_and_acc_norm_pick_as_lm_evaluation_harness() -> None:
    # argmax(lls) and argmax(lls / len(choice)), the first maximum on ties
    assert pick([-4.0, -6.0, -9.0], ["a", "bbbbbb", "ccc"]) == (0, 1)
    assert pick([-2.0, -2.0], ["x", "y"]) == (0, 0)


@pytest.mark.parametrize(("text", "index"), [
    ("B", 1), ("(C)", 2), ("Answer: D", 3), ("The answer is B.", 1), ("blue", 1), ("**B**", 1),
    ("I think it is C", 2), ("A dog is red", None), ("none of them", None), ("B or C", None),
])
def test_a_letter_is_extracted_from_generated_answers(text: str, index: int | None) -> None:
    q = Question("1", "Which?", ("red", "blue", "green", "black"), 1)
    assert extract_choice(text, q) == index


def write_suite(tmp_path: Path, body: str, cases: list[dict]) -> Path:
    (tmp_path / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    path = tmp_path / "mc.eval.yaml"
    path.write_text("cases: cases.jsonl\n" + body)
    return path


def test_questions_are_validated_at_collection_with_file_and_line(tmp_path: Path) -> None:
    good = {"id": "q1", "question": "2+2?", "choices": ["3", "4"], "answer": "B"}
    path = write_suite(tmp_path, "multiple_choice: {}\n", [good, {**good, "id": "q2", "answer": "E"}])
    with pytest.raises(SpecError) as err:
        load_suite(path)
    assert err.value.line == 2 and err.value.path.endswith("cases.jsonl")
    assert "'answer' must be the index of the right choice (0 to 1) or its label (A, B)" in err.value.message
    path = write_suite(tmp_path, "multiple_choice: {}\n", [{"id": "q1", "question": "2+2?", "answer": 0}])
    with pytest.raises(SpecError, match="'choices' must be a list of at least 2 choices"):
        load_suite(path)
    path = write_suite(tmp_path, "multiple_choice: {fewshot: 2}\n", [good])
    with pytest.raises(SpecError, match="fewshot needs examples: set 'fewshot_from'"):
        load_suite(path)


def test_choices_named_by_field_and_answer_by_text(tmp_path: Path) -> None:
    case = {"id": "q1", "question": "Sky?", "choices": "options", "options": ["green", "blue"], "answer": "blue"}
    suite = load_suite(write_suite(tmp_path, "multiple_choice: {}\n", [case]))
    assert suite.render(suite.cases[0]) == "Sky?\nA. green\nB. blue\nAnswer:"


def test_a_model_without_loglikelihoods_is_an_error_naming_the_suite_and_the_fix(tmp_path: Path) -> None:
    case = {"id": "q1", "question": "2+2?", "choices": ["3", "4"], "answer": 1}
    suite = load_suite(write_suite(tmp_path, "name: quiz\nmultiple_choice: {}\n", [case]))
    plan = next(g.plan for g in suite.gates if hasattr(g, "plan"))
    ctx = GateContext(suite=suite, cases=suite.cases, results=[], model_name="api")
    records = _score_model(object(), "api", list(plan.questions.values()), ["loglikelihood"], [None], plan, ctx)
    assert "suite 'quiz': scoring: loglikelihood needs a model with log-likelihoods" in records[0]["error"]
    assert "Use 'scoring: generate'" in records[0]["error"]


def hf_model():
    pytest.importorskip("torch")
    from pytest_llmeval.models.hf import load

    return load(str(BASE_MODEL), name="base", options={"num_threads": 1}, base_dir=ROOT)


def write_parity_data(root: Path, subjects: tuple[str, ...] = ("geo", "food")) -> tuple[list[dict], list[dict]]:
    """Questions with choices of different lengths (so acc_norm differs from acc), MMLU CSVs and JSONL.

    lm-evaluation-harness runs MMLU as one task per subject, each with its own dev examples; the
    parity run uses one subject so that its few-shot examples are the same questions as ours.
    """
    rng = random.Random(5)
    words = ["river", "market", "teacher", "garden", "winter", "station", "coffee", "letter", "bridge", "museum"]

    def q(i: int) -> dict:
        choices = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 4))) for _ in range(4)]
        return {"question": f"Which one fits item {i} best near the {rng.choice(words)}?", "choices": choices,
                "answer": rng.randrange(4), "subject": subjects[i % len(subjects)]}

    test, dev = [q(i) for i in range(40)], [q(100 + i) for i in range(10)]
    (root / "mmlu").mkdir(parents=True)
    for split, rows in (("test", test), ("dev", dev)):
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        for subj in subjects:
            with (root / "mmlu" / f"{subj}_{split}.csv").open("w", newline="") as f:
                csv.writer(f).writerows([r["question"], *r["choices"], "ABCD"[r["answer"]]]
                                        for r in rows if r["subject"] == subj)
    return test, dev


def run_suite(path: Path, model) -> dict:
    from pytest_llmeval.evaluate import SuiteEvaluator

    outcome = SuiteEvaluator(load_suite(path), model).run()
    assert outcome.fatal is None
    return outcome


def test_a_suite_is_scored_in_one_batched_call_and_never_generated(tmp_path: Path) -> None:
    model = hf_model()
    write_parity_data(tmp_path)
    suite = tmp_path / "m.eval.yaml"
    suite.write_text("cases: {format: mmlu, path: mmlu, split: test}\n"
                     "multiple_choice: {fewshot: 2, min_acc: 0.0, per_category: true}\n")
    calls: list[int] = []
    real = model.loglikelihood_batch
    model.loglikelihood_batch = lambda pairs: calls.append(len(pairs)) or real(pairs)  # type: ignore[method-assign]
    model.generate = lambda *a, **k: pytest.fail("a log-likelihood suite must not generate")  # type: ignore
    outcome = run_suite(suite, model)
    assert calls == [160]  # 40 questions x 4 choices, one call
    acc = outcome.gates["acc"]
    assert acc.aggregate.n == 40 and acc.aggregate.method == "wilson"
    assert {c.category for c in acc.categories} == {"geo", "food"}
    assert "macro" in acc.aggregate.details
    first = outcome.cases["food/test/0"]
    assert first.extra["multiple_choice"]["scoring"] == "loglikelihood"
    assert len(first.extra["multiple_choice"]["loglikelihoods"]) == 4


def lm_eval_command() -> list[str] | None:
    exe = os.environ.get("LLMEVAL_LM_EVAL") or shutil.which("lm_eval")
    return [exe] if exe else None


TASKS = {
    "parity_letter": """
dataset_kwargs: {{data_files: {{test: {root}/test.jsonl, dev: {root}/dev.jsonl}}}}
fewshot_split: dev
fewshot_config: {{sampler: first_n}}
doc_to_text: "{{{{question.strip()}}}}\\nA. {{{{choices[0]}}}}\\nB. {{{{choices[1]}}}}\\nC. {{{{choices[2]}}}}\\nD. {{{{choices[3]}}}}\\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
description: "The following are multiple choice questions (with answers) about {{{{subject}}}}.\\n\\n"
""",
    "parity_text": """
dataset_kwargs: {{data_files: {{test: {root}/test.jsonl}}}}
doc_to_text: "{{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
""",
}
SUITES = {
    "parity_letter": "cases: {format: mmlu, path: mmlu, split: test}\n"
                     "multiple_choice: {fewshot: 2}\n",
    "parity_text": "cases: {format: hf_export, path: test.jsonl}\nprompt: \"{question}\\nAnswer:\"\n"
                   "multiple_choice: {continuation: text, description: null}\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(TASKS))
def test_acc_and_acc_norm_equal_lm_evaluation_harness(tmp_path: Path, task: str) -> None:
    """Runs lm-evaluation-harness (``pip install lm-eval``; ``LLMEVAL_LM_EVAL`` names its ``lm_eval``) offline
    on the same questions and model, and compares every question's log-likelihoods and picks."""
    command = lm_eval_command()
    if command is None:
        why = "lm-evaluation-harness is not installed (pip install lm-eval, or set LLMEVAL_LM_EVAL)"
        if os.environ.get("CI"):  # .ci/run installs it: a skip there would be a check that did not run
            pytest.fail(why)
        pytest.skip(why)
    test, _ = write_parity_data(tmp_path, subjects=("geo",))
    head = "task: {task}\ndataset_path: json\ntest_split: test\noutput_type: multiple_choice\n" \
           "doc_to_target: answer\nmetric_list: [{{metric: acc}}, {{metric: acc_norm}}]\n"
    (tmp_path / f"{task}.yaml").write_text((head + TASKS[task]).format(task=task, root=tmp_path))
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_DATASETS_CACHE": str(tmp_path / "hf_cache")}
    shots = ["--num_fewshot", "2"] if task == "parity_letter" else []
    subprocess.run([*command, "--model", "hf", "--model_args", f"pretrained={BASE_MODEL},dtype=float32",
                    "--tasks", task, "--include_path", str(tmp_path), *shots, "--batch_size", "16",
                    "--device", "cpu", "--log_samples", "--output_path", str(tmp_path / "out")],
                   check=True, env=env, capture_output=True, timeout=900)
    samples_file = next((tmp_path / "out").rglob(f"samples_{task}_*.jsonl"))
    theirs = {int(s["doc_id"]): s for s in map(json.loads, samples_file.read_text().splitlines())}
    (tmp_path / f"{task}.eval.yaml").write_text(SUITES[task])
    outcome = run_suite(tmp_path / f"{task}.eval.yaml", hf_model())
    ours = list(outcome.cases.values())
    if task == "parity_letter":  # the MMLU loader reads subject by subject: match questions by text
        by_text = {c.fields["question"]: c for c in ours}
        ours = [by_text[row["question"]] for row in test]
    assert len(ours) == len(theirs) == 40
    for i, case in enumerate(ours):
        rec = case.extra["multiple_choice"]
        their_lls = [float(r[0][0]) for r in theirs[i]["resps"]]
        assert rec["loglikelihoods"] == pytest.approx(their_lls, abs=1e-4), i
        assert (rec["acc"], rec["acc_norm"]) == (theirs[i]["acc"], theirs[i]["acc_norm"]), i
    for name in ("acc", "acc_norm"):
        assert outcome.gates[name].aggregate.value == pytest.approx(
            sum(s[name] for s in theirs.values()) / len(theirs))


ANSWERS = {"2+2?": "The answer is B.", "Sky?": "(A)", "Grass?": "I am not sure"}


def test_generate_scoring_reads_the_letter_and_an_api_model_under_loglikelihood_errors(tmp_path: Path) -> None:
    from pytest_llmeval.evaluate import SuiteEvaluator
    from pytest_llmeval.models import load_model

    cases = [{"id": "q1", "question": "2+2?", "choices": ["3", "4"], "answer": 1},
             {"id": "q2", "question": "Sky?", "choices": ["blue", "red"], "answer": "A"},
             {"id": "q3", "question": "Grass?", "choices": ["green", "red"], "answer": 0}]
    (tmp_path / "answers_model.py").write_text(
        f"ANSWERS = {ANSWERS!r}\n\ndef answer(prompt):\n"
        "    return ANSWERS[prompt.rsplit('\\n\\n', 1)[-1].split('\\n', 1)[0]]\n")
    model = load_model("python:answers_model:answer", name="api", base_dir=tmp_path)
    path = write_suite(tmp_path, "name: quiz\nmultiple_choice: {scoring: generate, min_acc: 0.6}\n", cases)
    outcome = SuiteEvaluator(load_suite(path), model).run()
    acc = outcome.gates["acc"]
    assert set(outcome.gates) == {"acc"}  # acc_norm needs choice scores
    assert acc.aggregate.value == pytest.approx(2 / 3)
    assert acc.aggregate.details["no_choice_named"] == 1
    assert acc.verdict == "pass"
    path = write_suite(tmp_path, "name: quiz\nmultiple_choice: {scoring: loglikelihood}\n", cases)
    outcome = SuiteEvaluator(load_suite(path), model).run()
    assert outcome.gates["acc"].verdict == "error"
    assert "suite 'quiz': scoring: loglikelihood needs a model with log-likelihoods" in outcome.gates["acc"].message


def scored_context(tmp_path: Path, section: str, model_right: list[bool], base_right: list[bool]):
    """A suite of questions in two categories with the model's and baseline's picks already recorded."""
    from pytest_llmeval.gates.base import BaselineRun
    from pytest_llmeval.results import CaseResult

    cases = [{"id": f"q{i}", "question": f"Q{i}?", "choices": ["a", "b"], "answer": 0,
              "category": "alpha" if i % 2 else "beta"} for i in range(len(model_right))]
    suite = load_suite(write_suite(tmp_path, f"multiple_choice: {section}\n", cases))
    results = []
    for case, ok, b_ok in zip(suite.cases, model_right, base_right, strict=True):
        res = CaseResult(id=case.id, prompt="", output="", category=case.category)
        res.extra["multiple_choice"] = {"scoring": "loglikelihood", "pick": 0 if ok else 1, "answer": 0,
                                        "acc": float(ok), "acc_norm": float(ok),
                                        "baseline": {"acc": float(b_ok), "acc_norm": float(b_ok)}}
        results.append(res)
    ctx = GateContext(suite=suite, cases=suite.cases, results=results, model_name="m",
                      baseline=BaselineRun(name="base", outputs={}))
    return suite, ctx


def test_verdict_per_category_macro_and_the_paired_difference(tmp_path: Path) -> None:
    right = [True] * 30 + [i % 2 == 0 for i in range(30)]  # beta (even ids) always right, alpha half
    suite, ctx = scored_context(tmp_path, "{min_acc: 0.6, per_category: true, min_delta: 0.1}", right, [True] * 60)
    gate = next(g for g in suite.gates if g.name == "acc")
    outcome = gate.evaluate(ctx)
    agg = outcome.aggregate
    rows = {c.category: c for c in outcome.categories}
    assert agg.value == pytest.approx(45 / 60)
    assert rows["beta"].value == 1.0 and rows["alpha"].value == pytest.approx(15 / 30)
    assert rows["alpha"].passed is False and rows["beta"].passed is True
    assert agg.details["macro"]["value"] == pytest.approx(0.75)
    low, high = agg.details["macro"]["ci"]
    assert low < 0.75 < high
    vs = agg.details["vs_baseline"]
    assert vs["value"] == 1.0 and vs["delta"] == pytest.approx(-0.25)
    assert vs["delta_ci"][0] < -0.25 < vs["delta_ci"][1] < 0
    assert outcome.verdict == "fail"
    assert "categories below the threshold: alpha = 0.500 (n=30)" in outcome.message
    assert "vs base: delta -0.250" in outcome.message and "must be >= +0.1" in outcome.message


def test_a_baseline_that_could_not_be_scored_makes_min_delta_an_error(tmp_path: Path) -> None:
    from pytest_llmeval.gates.base import BaselineRun

    suite, ctx = scored_context(tmp_path, "{min_delta: 0.0}", [True] * 4, [True] * 4)
    ctx.baseline = BaselineRun(name="base", outputs={}, error="model failed to load")
    outcome = next(g for g in suite.gates if g.name == "acc").evaluate(ctx)
    assert outcome.verdict == "error"
    assert "min_delta needs the baseline's answers: model failed to load" in outcome.aggregate.error
