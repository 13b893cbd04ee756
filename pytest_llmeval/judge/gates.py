"""Judge gates in suites: ``judge: score: {...}`` and ``judge: pairwise: {...}``.

Each gate sends all its verdict requests to the judge in one batch, turns them
into an aggregate with a confidence interval, and writes a failure message that
shows the evidence (the lowest-scored or the lost cases, with the outputs and
the judge's reasoning). A verdict that could not be obtained makes the gate an
error: never a silent pass or fail.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_llmeval import numbers
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.judge.base import CompareRequest, Judge, ScoreRequest, parse_rubric
from pytest_llmeval.judge.pairwise import pair_stats
from pytest_llmeval.judge.verdicts import PairVerdict, ScoreVerdict
from pytest_llmeval.results import AggregateResult
from pytest_llmeval.stats import bootstrap_mean, clears, sign_test, win_rate

if TYPE_CHECKING:
    from pytest_llmeval.gates.judge_score import ScoreJudgeSpec
    from pytest_llmeval.gates.win_rate import PairwiseJudgeSpec

SHOW_CASES = 5
"""How many lowest-scored / lost cases a failure message shows in full."""
SHOW_CHARS = 600
"""Longest excerpt of one output in a message."""


@dataclass(frozen=True)
class JudgeCase:
    """What a judge gate needs of one case."""

    id: str
    prompt: str
    output: str | None
    baseline_output: str | None = None
    reference: str | Sequence[str] | None = None


@dataclass
class JudgeGateResult:
    """A judge gate's computation.

    Attributes:
        aggregate: the gate's aggregate (``passed`` None and ``error`` set when a
            verdict could not be obtained).
        per_case: JSON-able verdict per case id (for ``CaseResult.judge``).
        message: readable report: value, interval, n, threshold, evidence.
    """

    aggregate: AggregateResult
    per_case: dict[str, dict[str, Any]] = field(default_factory=dict)
    message: str = ""


def _validated(model: type[Any], config: Any, where: str) -> Any:
    """A spec from a mapping (Python callers), with the schema's own errors."""
    from pydantic import ValidationError

    if isinstance(config, model):
        return config
    if not isinstance(config, Mapping):
        raise ConfigError(f"{where} must be a mapping of options, got {config!r}")
    try:
        return model.model_validate(dict(config))
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            key = ".".join(str(p) for p in e["loc"]) or "options"
            if e["type"] == "extra_forbidden":
                known = sorted(model.model_fields)
                close = difflib.get_close_matches(key, known, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else f" Known options: {', '.join(known)}."
                problems.append(f"unknown option '{key}'.{hint}")
            else:
                problems.append(f"{key}: {e['msg'].removeprefix('Value error, ')}")
        raise ConfigError(f"{where}: " + "; ".join(problems)) from None


def _excerpt(text: str | None) -> str:
    if text is None:
        return "<no output>"
    if len(text) <= SHOW_CHARS:
        return text
    return text[:SHOW_CHARS] + f"... [{len(text) - SHOW_CHARS} more characters]"


def _indent(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.splitlines() or [""])


def _error_text(failed: Sequence[tuple[str, BaseException | str]]) -> str:
    lines = [f"{len(failed)} judge verdict(s) could not be obtained, so the gate has no verdict:"]
    for case_id, err in failed:
        lines.append(f"  case[{case_id}]: {err}")
    return "\n".join(lines)


def _verdict_line(name: str, value: float, ci: tuple[float, float], n: int, level: float,
                  threshold: float | None, gate_conf: float | None, passed: bool | None,
                  what: str) -> str:
    head = f"{name} = {numbers.number(value)} ({level:.0%} CI {numbers.interval(*ci)}, n={n})"
    if threshold is None:
        return head + " (no threshold)"
    rule = (f"lower bound of the {gate_conf:.0%} interval must be >= {threshold:g}"
            if gate_conf is not None else f"must be >= {threshold:g}")
    state = "passed" if passed else "FAILED"
    return f"{head} {state}: {what} {rule}"


def run_score_gate(judge: Judge, cases: Sequence[JudgeCase], config: Mapping[str, Any] | ScoreJudgeSpec, *,
                   confidence: float, seed: int, name: str = "judge_score") -> JudgeGateResult:
    """The ``judge_score`` gate: mean judge score with a bootstrap interval vs ``min_mean``.

    Args:
        judge: the judge.
        cases: the suite's cases with the evaluated model's outputs.
        config: ``criteria``, ``min_mean`` (or ``min``), ``confidence``, ``rubric``.
        confidence: the suite's interval level (the gate's own ``confidence`` wins).
        seed: bootstrap seed.
    """
    from pytest_llmeval.gates.judge_score import ScoreJudgeSpec

    where = "judge.score"
    spec = _validated(ScoreJudgeSpec, config, where)
    threshold = spec.min_mean
    gate_conf = spec.confidence
    level = gate_conf if gate_conf is not None else confidence
    rubric = parse_rubric(spec.rubric, f"{where}.rubric")
    criteria = spec.criteria
    judged = [c for c in cases if c.output is not None]
    outcomes = judge.score_many([ScoreRequest(c.prompt, c.output or "", criteria, c.reference,
                                              rubric) for c in judged])
    per_case: dict[str, dict[str, Any]] = {}
    failed: list[tuple[str, BaseException | str]] = [
        (c.id, "the model produced no output for this case (its generation failed)")
        for c in cases if c.output is None]
    good: list[tuple[JudgeCase, ScoreVerdict]] = []
    for case, out in zip(judged, outcomes, strict=True):
        if isinstance(out, BaseException):
            failed.append((case.id, out))
            per_case[case.id] = {"error": str(out)}
        else:
            good.append((case, out))
            per_case[case.id] = out.to_dict()
    for case_id, err in failed:
        per_case.setdefault(case_id, {"error": str(err)})
    agg = AggregateResult(name=name, value=None, n=len(good), threshold=threshold,
                          op="min", confidence=gate_conf, kind="judge_score", method="bootstrap",
                          details={"judge": judge.name, "criteria": criteria})
    if not cases:
        agg.error = "the suite has no cases to judge"
        return JudgeGateResult(agg, per_case, agg.error)
    if failed:
        agg.error = _error_text(failed)
        agg.details["n_errors"] = len(failed)
        return JudgeGateResult(agg, per_case, agg.error)
    scores = [v.score for _, v in good]
    est = bootstrap_mean(scores, level, seed=seed)
    agg.value, agg.ci = est.value, (est.low, est.high)
    agg.passed = clears(est, threshold, "min", gate_conf) if threshold is not None else None
    scale = good[0][1].scale
    if spec.case_min is not None:
        below = [c.id for c, v in good if v.score < spec.case_min]
        agg.details["case_min"] = spec.case_min
        agg.details["below_case_min"] = below
        for c, v in good:
            per_case[c.id]["case_min_passed"] = v.score >= spec.case_min
    if spec.max_regression is not None:
        agg.details["max_regression"] = spec.max_regression
    agg.details.update({
        "mean": est.value, "scale": list(scale),
        "histogram": {str(k): v for k, v in sorted(Counter(round(s) for s in scores).items())},
    })
    if any(v.rubric for _, v in good):
        names = list(good[0][1].rubric or {})
        agg.details["rubric_means"] = {
            name: sum((v.rubric or {}).get(name, 0.0) for _, v in good) / len(good)
            for name in names}
    head = _verdict_line("judge_score", est.value, (est.low, est.high), est.n, level,
                         threshold, gate_conf, agg.passed, "mean score")
    lowest = sorted(good, key=lambda cv: cv[1].score)[:SHOW_CASES]
    lines = [head, f"lowest-scored cases (scale {scale[0]}-{scale[1]}):"]
    for case, v in lowest:
        lines.append(f"  case[{case.id}] score {v.score:g}")
        lines.append(f"    prompt:\n{_indent(_excerpt(case.prompt))}")
        lines.append(f"    output:\n{_indent(_excerpt(case.output))}")
        lines.append(f"    judge's reasoning:\n{_indent(v.reasoning or '<none>')}")
    return JudgeGateResult(agg, per_case, "\n".join(lines))


def run_pairwise_gate(judge: Judge, cases: Sequence[JudgeCase],
                      config: Mapping[str, Any] | PairwiseJudgeSpec, *,
                      model_name: str, baseline_name: str, confidence: float,
                      seed: int, name: str | None = None) -> JudgeGateResult:
    """The ``win_rate[model>baseline]`` gate: (W + T/2)/n with a bootstrap interval.

    Also reports W/L/T, the sign-test p value of W vs L, position consistency,
    first-position preference, winner/loser lengths and the length-controlled
    win rate. The message lists the cases the model lost, with both outputs and
    the judge's reasoning.
    """
    from pytest_llmeval.gates.win_rate import PairwiseJudgeSpec

    where = "judge.pairwise"
    spec = _validated(PairwiseJudgeSpec, config, where)
    threshold = spec.min_win_rate
    gate_conf = spec.confidence
    level = gate_conf if gate_conf is not None else confidence
    swap = spec.swap
    criteria = spec.criteria
    name = name or f"win_rate[{model_name}>{baseline_name}]"
    judged = [c for c in cases if c.output is not None and c.baseline_output is not None]
    outcomes = judge.compare_many([
        CompareRequest(c.prompt, c.output or "", c.baseline_output or "", criteria, c.reference,
                       swap) for c in judged])
    per_case: dict[str, dict[str, Any]] = {}
    failed: list[tuple[str, BaseException | str]] = []
    for c in cases:
        if c.output is None or c.baseline_output is None:
            who = model_name if c.output is None else baseline_name
            failed.append((c.id, f"{who} produced no output for this case (its generation failed)"))
    good: list[tuple[JudgeCase, PairVerdict]] = []
    for case, out in zip(judged, outcomes, strict=True):
        if isinstance(out, BaseException):
            failed.append((case.id, out))
        else:
            good.append((case, out))
            per_case[case.id] = {"verdict": _outcome(out), "model": model_name,
                                 "baseline": baseline_name, **out.to_dict(),
                                 "reasoning": out.reasoning}
    for case_id, err in failed:
        per_case[case_id] = {"error": str(err)}
    agg = AggregateResult(name=name, value=None, n=len(good), threshold=threshold, op="min",
                          confidence=gate_conf, kind="win_rate", method="bootstrap",
                          model=model_name, details={"judge": judge.name, "criteria": criteria,
                                                     "baseline": baseline_name})
    if not cases:
        agg.error = "the suite has no cases to compare"
        return JudgeGateResult(agg, per_case, agg.error)
    if failed:
        agg.error = _error_text(failed)
        agg.details["n_errors"] = len(failed)
        return JudgeGateResult(agg, per_case, agg.error)
    stats = pair_stats([v for _, v in good])
    est = win_rate(stats.wins, stats.losses, stats.ties, level, seed=seed)
    p_value = sign_test(stats.wins, stats.losses)
    agg.value, agg.ci = est.value, (est.low, est.high)
    agg.passed = clears(est, threshold, "min", gate_conf) if threshold is not None else None
    agg.details.update({**stats.to_dict(), "sign_test_p": p_value})
    lc = stats.to_dict().get("lc_win_rate")
    if spec.min_lc_win_rate is not None:
        agg.details["min_lc_win_rate"] = spec.min_lc_win_rate
        if lc is None:
            agg.error = ("the length-controlled win rate could not be computed (it needs wins and losses "
                         "of both lengths); remove min_lc_win_rate or add cases")
            return JudgeGateResult(agg, per_case, agg.error)
        lc_ok = lc >= spec.min_lc_win_rate
        agg.details["lc_passed"] = lc_ok
        agg.passed = lc_ok if agg.passed is None else (agg.passed and lc_ok)
    if spec.max_regression is not None:
        agg.details["max_regression"] = spec.max_regression
    head = _verdict_line(name, est.value, (est.low, est.high), est.n, level, threshold,
                         gate_conf, agg.passed, "win rate (W + T/2)/n")
    lines = [head, _stats_line(stats.to_dict(), p_value)]
    if spec.min_lc_win_rate is not None:
        lines.append(f"length-controlled win rate {numbers.number(lc)} must be >= "
                     f"{numbers.threshold(spec.min_lc_win_rate)}: "
                     f"{'passed' if agg.details['lc_passed'] else 'FAILED'}")
    lost = [(c, v) for c, v in good if v.winner == "B"]
    if lost:
        lines.append(f"cases {model_name} lost ({len(lost)}"
                     + (f", first {SHOW_CASES} shown" if len(lost) > SHOW_CASES else "") + "):")
    for case, v in lost[:SHOW_CASES]:
        lines.append(f"  case[{case.id}]")
        lines.append(f"    prompt:\n{_indent(_excerpt(case.prompt))}")
        lines.append(f"    {model_name}:\n{_indent(_excerpt(case.output))}")
        lines.append(f"    {baseline_name}:\n{_indent(_excerpt(case.baseline_output))}")
        lines.append(f"    judge's reasoning:\n{_indent(v.reasoning or '<none>')}")
    return JudgeGateResult(agg, per_case, "\n".join(lines))


def _outcome(v: PairVerdict) -> str:
    return {"A": "win", "B": "loss"}.get(v.winner, "tie")


def _fmt(x: Any, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def _stats_line(s: Mapping[str, Any], p_value: float) -> str:
    return (f"W/L/T {s['wins']}/{s['losses']}/{s['ties']}, sign test {numbers.p_value(p_value)}; "
            f"position consistency {_fmt(s['consistency_rate'], '.0%')}, first-position "
            f"preference {_fmt(s['first_position_preference'], '.0%')}; mean length winner "
            f"{_fmt(s['mean_len_winner'], '.0f')} vs loser {_fmt(s['mean_len_loser'], '.0f')} "
            f"chars; length-controlled win rate {numbers.number(s['lc_win_rate'])}")
