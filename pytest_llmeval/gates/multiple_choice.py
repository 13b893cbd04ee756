"""The ``acc`` and ``acc_norm`` gates: multiple-choice questions, scored by log-likelihood or by generation.

A suite opts in with a ``multiple_choice:`` section::

    cases: {format: mmlu, path: data/mmlu, split: test}   # or any cases file / inline cases
    multiple_choice:
      scoring: loglikelihood      # or generate (API models); a case's own 'scoring:' field overrides
      question: question          # the case field holding the question text
      choices: choices            # the field holding each question's list, or one list for every question
      answer: answer              # the answer field: an index (0-based), a label ("B") or the choice's text
      continuation: letter        # score " A", " B"... (MMLU), or "text": " " + the choice's text
      description: "The following are multiple choice questions (with answers) about {subject}."
      fewshot: 5                  # labelled examples before each question
      fewshot_from: null          # a cases file or loader mapping; default: the loader's dev split
      fewshot_sampler: first_n    # first_n (lm-evaluation-harness's MMLU) or random (seeded)
      min_acc: 0.6                # gate on accuracy (argmax of the summed log-probabilities)
      min_acc_norm: null          # gate on acc_norm (argmax per character of the choice string)
      confidence: null            # the interval's lower bound must clear the threshold
      per_category: false         # also gate each category (MMLU: each subject)
      min_delta: null             # against the baseline: accuracy minus the baseline's must be >= this

The section validates every question when the suite is collected (a case without
choices, an answer that names no choice: a collection error with file:line) and
renders each question's prompt (:mod:`pytest_llmeval.multiple_choice`). Questions scored
by log-likelihood are not generated: ``prepare_cases`` scores all of them, every choice of
every question, in one batched ``loglikelihood_batch`` call per model (and the baseline's),
and records per case ``extra["multiple_choice"]`` (the log-likelihoods, the acc and
acc_norm picks) and ``scores["acc"]``/``scores["acc_norm"]``. ``evaluate`` gives the
accuracy with its Wilson interval, one row per category, the macro accuracy (mean over
categories) in the details, and with a baseline the paired difference and its interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import Field, field_validator

from pytest_llmeval.errors import SpecError
from pytest_llmeval.gates.base import (
    Gate,
    GateContext,
    GateOutcome,
    GateSpec,
    check_in_range,
    error_outcome,
    fail_on_categories,
)
from pytest_llmeval.gates.registry import register_gate
from pytest_llmeval.gates.text import threshold_rule
from pytest_llmeval.multiple_choice import (
    MMLU_DESCRIPTION,
    Question,
    build_context,
    choice_strings,
    extract_choice,
    pick,
    requests_for,
    sample_shots,
)
from pytest_llmeval.results import AggregateResult

if TYPE_CHECKING:
    from pytest_llmeval.spec import Case, Suite, SuiteSpec

EXTRA_KEY = "multiple_choice"
SCORINGS = ("loglikelihood", "generate")
WORST_CATEGORIES = 5


class MultipleChoiceSpec(GateSpec):
    """The ``multiple_choice:`` section."""

    scoring: Literal["loglikelihood", "generate"] = "loglikelihood"
    question: str = "question"
    choices: str | list[str] = "choices"
    answer: str = "answer"
    continuation: Literal["letter", "text"] = "letter"
    description: str | None = MMLU_DESCRIPTION
    fewshot: int = Field(default=0, ge=0, le=64)
    fewshot_from: str | dict[str, Any] | None = None
    fewshot_sampler: Literal["first_n", "random"] = "first_n"
    min_acc: float | None = None
    min_acc_norm: float | None = None
    confidence: float | None = Field(default=None, gt=0, lt=1)
    per_category: bool = False
    min_delta: float | None = None

    @field_validator("min_acc", "min_acc_norm")
    @classmethod
    def _share(cls, v: float | None) -> float | None:
        return check_in_range(v, 0.0, 1.0, "the accuracy threshold")

    @field_validator("min_delta")
    @classmethod
    def _delta(cls, v: float | None) -> float | None:
        return check_in_range(v, -1.0, 1.0, "min_delta")


@dataclass
class Plan:
    """The section's questions and prompts, shared by its gates (built once, at collection)."""

    spec: MultipleChoiceSpec
    questions: dict[str, Question] = field(default_factory=dict)
    prompts: dict[str, str] = field(default_factory=dict)
    scoring: dict[str, str] = field(default_factory=dict)
    scored_for: Any = None
    """The GateContext whose models were scored, so sibling gates score once."""
    sources: list[Path] = field(default_factory=list)
    """Files the few-shot examples were read from (they belong to the suite's hash)."""

    def by_loglikelihood(self) -> set[str]:
        return {cid for cid, s in self.scoring.items() if s == "loglikelihood"}


@register_gate
class MultipleChoiceGate(Gate):
    """Accuracy on multiple-choice questions (``acc``, or ``acc_norm`` when ``norm``)."""

    kind = "multiple_choice"
    section = "multiple_choice"
    Spec = MultipleChoiceSpec
    description = (
        "multiple-choice accuracy: log-likelihood of each choice (acc, acc_norm) or a generated letter"
    )

    def __init__(
        self, name: str, spec: Any, line: int | None = None, *, plan: Plan | None = None, norm: bool = False
    ) -> None:
        super().__init__(name, spec, line)
        self.plan = plan if plan is not None else Plan(spec)
        self.norm = norm

    @classmethod
    def from_section(cls, spec: Any, *, suite_spec: SuiteSpec, line: int | None) -> list[Gate]:
        """``acc`` always, and ``acc_norm`` (log-likelihood scoring only; it needs choice scores)."""
        plan = Plan(spec)
        gates: list[Gate] = [cls("acc", spec, line, plan=plan)]
        if spec.scoring == "loglikelihood":
            gates.append(cls("acc_norm", spec, line, plan=plan, norm=True))
        return gates

    @property
    def needs_baseline(self) -> bool:
        return True

    @property
    def threshold(self) -> float | None:
        return self.spec.min_acc_norm if self.norm else self.spec.min_acc

    # ------------------------------------------------------------------ scoring

    def prepare_cases(self, ctx: GateContext) -> None:
        """Score every question once per run (sibling gates share it): models, then the baseline."""
        plan = self.plan
        if plan.scored_for is ctx:
            return
        plan.scored_for = ctx
        score_cases(ctx, plan)

    # ------------------------------------------------------------------ verdict

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        from pytest_llmeval import stats

        spec: MultipleChoiceSpec = self.spec
        key = "acc_norm" if self.norm else "acc"
        found = [r.extra.get(EXTRA_KEY) for r in ctx.results]
        records: list[dict[str, Any]] = [rec for rec in found if isinstance(rec, dict)]
        if len(records) != len(found):
            return error_outcome(
                self.name, self.kind, "the questions were not scored (prepare_cases did not run)"
            )
        failed = [
            (r.id, rec["error"]) for r, rec in zip(ctx.results, records, strict=True) if rec.get("error")
        ]
        if failed:
            return error_outcome(
                self.name,
                self.kind,
                f"{len(failed)} of {len(records)} questions could not be "
                f"scored: case '{failed[0][0]}': {failed[0][1]}",
            )
        correct = np.array([float(rec[key]) for rec in records])
        confidence = spec.confidence or ctx.confidence
        est = stats.wilson(float(correct.sum()), len(correct), confidence)
        threshold = self.threshold
        agg = self.aggregate(
            value=est.value,
            ci=(est.low, est.high),
            n=est.n,
            threshold=threshold,
            op="min",
            confidence=spec.confidence,
            model=ctx.model_name,
            method=est.method,
            metric=key,
        )
        scorings = sorted({rec["scoring"] for rec in records})
        agg.details.update(
            {
                "interval_confidence": confidence,
                "scoring": ", ".join(scorings),
                "fewshot": spec.fewshot,
                "continuation": spec.continuation,
            }
        )
        unparsed = sum(1 for rec in records if rec.get("pick") is None)
        if unparsed:
            agg.details["no_choice_named"] = unparsed
        if threshold is not None:
            agg.passed = stats.clears(est, threshold, "min", spec.confidence)
        categories = self._categories(ctx, correct, confidence)
        if categories:
            agg.details["macro"] = macro_accuracy(categories, confidence)
        if spec.per_category and threshold is not None:
            fail_on_categories(agg, categories)
        if ctx.baseline is not None:
            self._vs_baseline(agg, ctx, correct, records, key, confidence)
        message = self._failure_message(agg, categories) if agg.passed is False else ""
        return GateOutcome(agg, categories=categories, message=message)

    def _categories(self, ctx: GateContext, correct: np.ndarray, confidence: float) -> list[AggregateResult]:
        from pytest_llmeval import stats

        spec = self.spec
        threshold = self.threshold
        cats = sorted({c.category for c in ctx.cases if c.category is not None})
        index: dict[str, list[int]] = {c: [] for c in cats}
        for i, case in enumerate(ctx.cases):
            if case.category is not None:
                index[case.category].append(i)
        rows = []
        for cat in cats:
            sub = correct[index[cat]]
            est = stats.wilson(float(sub.sum()), len(sub), confidence)
            row = AggregateResult(
                name=self.name,
                value=est.value,
                ci=(est.low, est.high),
                n=est.n,
                method=est.method,
                category=cat,
                kind="category",
                metric=self.name,
                threshold=threshold,
                op="min",
                confidence=spec.confidence,
                model=ctx.model_name,
            )
            if spec.per_category and threshold is not None:
                row.passed = stats.clears(est, threshold, "min", spec.confidence)
            rows.append(row)
        return rows

    def _vs_baseline(
        self,
        agg: AggregateResult,
        ctx: GateContext,
        correct: np.ndarray,
        records: Sequence[Any],
        key: str,
        confidence: float,
    ) -> None:
        """The baseline's accuracy on the same questions, and the paired difference with its interval."""
        from pytest_llmeval import stats

        assert ctx.baseline is not None
        base = [rec.get("baseline") for rec in records]
        if ctx.baseline.error or any(b is None or b.get("error") for b in base):
            why = ctx.baseline.error or next((b.get("error") for b in base if b and b.get("error")), None)
            agg.details["baseline_error"] = why or "the baseline was not scored"
            if self.spec.min_delta is not None:
                agg.error = f"min_delta needs the baseline's answers: {agg.details['baseline_error']}"
            return
        b_correct = np.array([float(b[key]) for b in base])
        b_est = stats.wilson(float(b_correct.sum()), len(b_correct), confidence)
        delta = stats.paired_bootstrap(
            len(correct),
            lambda idx: float(b_correct[idx].mean()),
            lambda idx: float(correct[idx].mean()),
            confidence,
            seed=ctx.seed,
        )
        agg.details["vs_baseline"] = {
            "model": ctx.baseline.name,
            "value": b_est.value,
            "ci": [b_est.low, b_est.high],
            "delta": delta.value,
            "delta_ci": [delta.low, delta.high],
        }
        if self.spec.min_delta is not None:
            agg.details["min_delta"] = self.spec.min_delta
            ok = stats.clears(delta, self.spec.min_delta, "min", self.spec.confidence)
            agg.passed = ok if agg.passed is None else agg.passed and ok

    def _failure_message(self, agg: AggregateResult, categories: list[AggregateResult]) -> str:
        lo, hi = agg.ci or (math.nan, math.nan)
        lines = [f"{self.name} = {agg.value:.3f} [{lo:.3f}, {hi:.3f}] over {agg.n} questions"]
        if self.threshold is not None:
            lines.append(threshold_rule("min", self.threshold, self.spec.confidence))
        failing = [c for c in categories if c.passed is False]
        if failing:
            lines.append(
                "categories below the threshold: "
                + ", ".join(f"{c.category} = {c.value:.3f} (n={c.n})" for c in failing[:WORST_CATEGORIES])
                + (" ..." if len(failing) > WORST_CATEGORIES else "")
            )
        vs = agg.details.get("vs_baseline")
        if vs is not None and "min_delta" in agg.details:
            lines.append(
                f"vs {vs['model']}: delta {vs['delta']:+.3f} [{vs['delta_ci'][0]:+.3f}, "
                f"{vs['delta_ci'][1]:+.3f}] must be >= {agg.details['min_delta']:+g}"
            )
        return "\n".join(lines)


def macro_accuracy(categories: list[AggregateResult], confidence: float) -> dict[str, Any]:
    """The mean of the categories' accuracies, with a normal interval from their binomial variances.

    ``var = sum(p_c * (1 - p_c) / n_c) / C**2``: the categories are independent samples.
    """
    from pytest_llmeval.stats import _z

    p = np.array([float(c.value or 0.0) for c in categories])
    n = np.array([float(c.n) for c in categories])
    value = float(p.mean())
    half = _z(confidence) * math.sqrt(float((p * (1 - p) / n).sum())) / len(p)
    return {
        "value": value,
        "ci": [max(0.0, value - half), min(1.0, value + half)],
        "categories": len(categories),
        "method": "normal (binomial variances)",
    }


# ----------------------------------------------------------------------------- collection


def plan_of(suite: Suite) -> Plan | None:
    """The multiple-choice plan of a suite, or None when it has no ``multiple_choice:`` section."""
    for gate in suite.gates:
        if isinstance(gate, MultipleChoiceGate):
            return gate.plan
    return None


def without_generation(suite: Suite) -> set[str]:
    """Ids of the suite's questions scored by log-likelihood: the evaluator does not generate them."""
    plan = plan_of(suite)
    return plan.by_loglikelihood() if plan is not None else set()


def bind(
    gates: Sequence[Gate],
    cases: Sequence[Case],
    suite_path: Path,
    cases_source: Any,
    seed: int,
    template: str | None = None,
) -> Plan | None:
    """Validate the questions and render their prompts (collection time); None without the section.

    With the suite's ``prompt:`` template, the template (filled from the case) is each question's
    text as it stands, without the lettered choice lines and ``Answer:``: for tasks whose
    choices are scored as text after a prompt of their own (``continuation: text``).

    Raises:
        SpecError: a case without question/choices, an answer naming no choice, a bad
            ``scoring:`` value, or a few-shot source that cannot be read or is too small.
    """
    plan = next((g.plan for g in gates if isinstance(g, MultipleChoiceGate)), None)
    if plan is None:
        return None
    spec = plan.spec
    for case in cases:
        ref = case.reference[0] if case.reference else None
        q = question_of(
            case.id, case.fields, case.category, spec, case.source, case.line, template is None, ref
        )
        if template is not None:
            from pytest_llmeval.spec import _template_values

            q = replace(q, prompt=template.format_map(_template_values(case)))
        plan.questions[case.id] = q
        scoring = case.fields.get("scoring", spec.scoring)
        if scoring not in SCORINGS:
            raise SpecError(
                f"case '{case.id}': scoring must be one of {', '.join(SCORINGS)}, got {scoring!r}",
                path=case.source,
                line=case.line,
                key="scoring",
            )
        plan.scoring[case.id] = scoring
    pool, plan.sources = _fewshot_pool(spec, suite_path, cases_source) if spec.fewshot else ([], [])
    if spec.fewshot and len(pool) < spec.fewshot:
        raise SpecError(
            f"multiple_choice.fewshot: {spec.fewshot} examples asked for, but the few-shot source "
            f"has {len(pool)} questions",
            path=str(suite_path),
            key="multiple_choice.fewshot",
        )
    for cid, q in plan.questions.items():
        shots = sample_shots(q, pool, spec.fewshot, spec.fewshot_sampler, seed)
        plan.prompts[cid] = build_context(q, shots, spec.description, spec.continuation)
    return plan


def question_of(
    cid: str,
    fields: dict[str, Any],
    category: str | None,
    spec: MultipleChoiceSpec,
    source: str | None,
    line: int | None,
    needs_text: bool = True,
    reference: str | None = None,
) -> Question:
    """A case's fields as a :class:`Question`; anything missing or malformed is a SpecError at its line."""

    def bad(message: str, key: str) -> SpecError:
        return SpecError(f"case '{cid}': {message}", path=source, line=line, key=key)

    text = fields.get(spec.question, "" if not needs_text else None)
    if not isinstance(text, str):
        have = ", ".join(sorted(fields)) or "none"
        raise bad(
            f"multiple choice needs the question text in the field '{spec.question}' (its fields: {have}; "
            f"set multiple_choice.question to the field's name)",
            spec.question,
        )
    key = spec.choices if isinstance(spec.choices, str) else "multiple_choice.choices"
    choices = fields.get(spec.choices) if isinstance(spec.choices, str) else list(spec.choices)
    if isinstance(choices, str):  # the name of the field that holds the list
        named = choices
        choices = fields.get(named)
        if choices is None:
            raise bad(f"'{key}' names the field '{named}', which the case does not have", key)
    if (
        not isinstance(choices, list)
        or len(choices) < 2
        or not all(isinstance(c, (str, int, float)) for c in choices)
    ):
        raise bad(
            f"'{key}' must be a list of at least 2 choices (or the name of a field holding one), "
            f"got {choices!r}",
            key,
        )
    if len(choices) > 26:
        raise bad(f"{len(choices)} choices; at most 26 (labels A-Z)", key)
    strings = tuple(str(c) for c in choices)
    raw_answer = fields.get(spec.answer, reference if spec.answer == "reference" else None)
    answer = _answer_index(raw_answer, strings)
    if answer is None:
        labels = ", ".join(Question(cid, "", strings, 0).labels)
        raise bad(
            f"'{spec.answer}' must be the index of the right choice (0 to {len(strings) - 1}) or its label "
            f"({labels}) or its text, got {raw_answer!r}",
            spec.answer,
        )
    return Question(cid, text, strings, answer, category)


def _answer_index(raw: Any, choices: tuple[str, ...]) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if 0 <= raw < len(choices) else None
    if isinstance(raw, str):
        value = raw.strip()
        if value.isdigit():
            return _answer_index(int(value), choices)
        labels = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[: len(choices)]
        if len(value) == 1 and value.upper() in labels:
            return labels.index(value.upper())
        if choices.count(value) == 1:
            return choices.index(value)
    return None


def _fewshot_pool(
    spec: MultipleChoiceSpec, suite_path: Path, cases_source: Any
) -> tuple[list[Question], list[Path]]:
    """The examples few-shot prompts draw from (``fewshot_from``, or the loader's ``dev`` split), and
    the files they were read from."""
    from pytest_llmeval.loaders import load_cases

    source = spec.fewshot_from
    if source is None and isinstance(cases_source, dict) and "split" in cases_source:
        source = {**cases_source, "split": "dev"}
        source.pop("limit", None)
    if source is None:
        raise SpecError(
            "multiple_choice.fewshot needs examples: set 'fewshot_from' to a cases file or a loader "
            "mapping ({format: mmlu, path: ..., split: dev})",
            path=str(suite_path),
            key="multiple_choice.fewshot_from",
        )
    if isinstance(source, dict):
        try:
            raw, where = load_cases(source, suite_path.parent)
        except SpecError as exc:
            raise SpecError(
                f"multiple_choice.fewshot_from: {exc.message}",
                path=exc.path or str(suite_path),
                line=exc.line,
                key="multiple_choice.fewshot_from",
            ) from None
        records: list[tuple[Any, int | None]] = [(r, None) for r in raw]
        files = sorted(f for f in where.rglob("*") if f.is_file()) if where.is_dir() else [where]
    else:
        from pytest_llmeval.spec import _read_cases_file

        where = suite_path.parent / source
        if not where.is_file():
            raise SpecError(
                f"few-shot file '{source}' not found (looked for {where}); paths are relative to the "
                f"suite file",
                path=str(suite_path),
                key="multiple_choice.fewshot_from",
            )
        records = list(_read_cases_file(where))
        files = [where]
    pool = []
    for i, (rec, line) in enumerate(records):
        if not isinstance(rec, dict):
            raise SpecError(
                f"few-shot example {i + 1}: expected a mapping of fields", path=str(where), line=line
            )
        cid = str(rec.get("id", f"fewshot-{i}"))
        fields = {k: v for k, v in rec.items() if k not in ("id", "category")}
        category = rec.get("category")
        pool.append(
            question_of(cid, fields, None if category is None else str(category), spec, str(where), line)
        )
    return pool, files


# ----------------------------------------------------------------------------- scoring


def score_cases(ctx: GateContext, plan: Plan) -> None:
    """Annotate every case with its picks; log-likelihood questions in one batched call per model."""
    spec = plan.spec
    questions = [plan.questions[c.id] for c in ctx.cases]
    scorings = [plan.scoring[c.id] for c in ctx.cases]
    model_records = _score_model(
        ctx.model, ctx.model_name, questions, scorings, [r.output for r in ctx.results], plan, ctx
    )
    base_records: list[dict[str, Any]] | None = None
    if ctx.baseline is not None and not ctx.baseline.error:
        outputs = [ctx.baseline.outputs.get(q.id) for q in questions]
        base_records = _score_model(
            ctx.baseline.model, ctx.baseline.name, questions, scorings, outputs, plan, ctx
        )
    for i, (res, q, rec) in enumerate(zip(ctx.results, questions, model_records, strict=True)):
        label = q.labels[q.answer]
        if res.reference is None:
            res.reference = label
        if base_records is not None:
            rec["baseline"] = base_records[i]
            b_pick = base_records[i].get("pick")
            if rec["scoring"] == "loglikelihood" and b_pick is not None:
                res.baseline_output = _shown(q, b_pick, spec.continuation)
        res.extra[EXTRA_KEY] = rec
        if rec.get("error"):
            continue
        res.scores["acc"] = rec["acc"]
        if "acc_norm" in rec:
            res.scores["acc_norm"] = rec["acc_norm"]
        if rec["scoring"] == "loglikelihood":
            res.output = _shown(q, rec["pick"], spec.continuation)


def _shown(q: Question, chosen: int, continuation: str) -> str:
    """A picked choice as the case's output: ``B. text``, or the text for text continuations."""
    return q.choices[chosen] if continuation == "text" else f"{q.labels[chosen]}. {q.choices[chosen]}"


def _score_model(
    model: Any,
    name: str,
    questions: list[Question],
    scorings: list[str],
    outputs: list[str | None],
    plan: Plan,
    ctx: GateContext,
) -> list[dict[str, Any]]:
    spec = plan.spec
    records: list[dict[str, Any]] = [{"scoring": s} for s in scorings]
    ll_index = [i for i, s in enumerate(scorings) if s == "loglikelihood"]
    if ll_index:
        scorer = _loglikelihood_fn(model)
        if isinstance(scorer, str):
            why = (
                f"suite '{ctx.suite.name}': scoring: loglikelihood needs a model with log-likelihoods "
                f"(an hf: model); '{name}' {scorer}. Use 'scoring: generate' in the multiple_choice section "
                f"(or on the case) for API models"
            )
            for i in ll_index:
                records[i]["error"] = why
        else:
            pairs: list[tuple[str, str]] = []
            for i in ll_index:
                q = questions[i]
                pairs += requests_for(q, plan.prompts[q.id], spec.continuation)
            ctx.progress.start(f"{name}: scoring {len(pairs)} choices", len(pairs))
            try:
                results = scorer(pairs)
            except Exception as exc:  # noqa: BLE001 - each question then reports the failure
                results = None
                why = f"log-likelihood scoring failed: {type(exc).__name__}: {exc}"
            finally:
                ctx.progress.advance(len(pairs))
                ctx.progress.finish()
            pos = 0
            for i in ll_index:
                q = questions[i]
                rec = records[i]
                if results is None:
                    rec["error"] = why
                    continue
                k = len(q.choices)
                chunk = results[pos : pos + k]
                pos += k
                lls = [float(getattr(r, "logprob", r)) for r in chunk]
                a, b = pick(lls, choice_strings(q, spec.continuation))
                rec.update(
                    {
                        "loglikelihoods": lls,
                        "pick": a,
                        "pick_norm": b,
                        "answer": q.answer,
                        "acc": float(a == q.answer),
                        "acc_norm": float(b == q.answer),
                    }
                )
    for i, s in enumerate(scorings):
        if s != "generate":
            continue
        q = questions[i]
        text = outputs[i]
        if text is None:
            records[i]["error"] = "no output (the model failed to generate)"
            continue
        chosen = extract_choice(text, q)
        records[i].update({"pick": chosen, "answer": q.answer, "acc": float(chosen == q.answer)})
    return records


def _loglikelihood_fn(model: Any) -> Any:
    """The model's batched scorer, or a reason (str) why it has none."""
    if model is None:
        return "was not loaded"
    from pytest_llmeval.models.base import as_model_base

    try:
        inner = as_model_base(model).unwrap()
    except Exception:  # noqa: BLE001 - a model outside the protocol: look at it directly
        inner = model
    for candidate in (inner, model):
        fn = getattr(candidate, "loglikelihood_batch", None) or getattr(candidate, "loglikelihood_many", None)
        if callable(fn):
            return fn
    return f"({type(inner).__name__}) has no loglikelihood_batch"
