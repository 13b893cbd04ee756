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
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pytest_llmeval import numbers
from pytest_llmeval.errors import ConfigError
from pytest_llmeval.judge.base import CompareRequest, Judge, ScoreRequest, Turn, parse_rubric
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
    """What a judge gate needs of one case.

    A multi-turn case also carries its user messages (``turns``), the model's answer to
    each (``turn_outputs``), the baseline's answers in its own conversation
    (``baseline_turn_outputs``) and each turn's reference (``turn_references``);
    ``output``/``baseline_output`` are then the last answers.
    """

    id: str
    prompt: str
    output: str | None
    baseline_output: str | None = None
    reference: str | Sequence[str] | None = None
    category: str | None = None
    turns: tuple[str, ...] = ()
    turn_outputs: tuple[str | None, ...] = ()
    baseline_turn_outputs: tuple[str | None, ...] = ()
    turn_references: tuple[str | None, ...] = ()

    def turn_reference(self, k: int) -> str | None:
        return self.turn_references[k] if k < len(self.turn_references) else None

    def history(self, k: int, answers: Sequence[str | None]) -> tuple[Turn, ...]:
        """The turns before turn ``k`` (0-based), with the given side's answers."""
        return tuple(Turn(self.turns[j], answers[j] or "", self.turn_reference(j)) for j in range(k))


@dataclass
class JudgeGateResult:
    """A judge gate's computation.

    Attributes:
        aggregate: the gate's aggregate (``passed`` None and ``error`` set when a
            verdict could not be obtained).
        per_case: JSON-able verdict per case id (for ``CaseResult.judge``).
        message: readable report: value, interval, n, threshold, evidence.
        categories: breakdown rows: one per case category (``kind="category"``) and,
            for multi-turn cases, one per turn (``kind="turn"``, category ``"turn 1"``...).
    """

    aggregate: AggregateResult
    per_case: dict[str, dict[str, Any]] = field(default_factory=dict)
    message: str = ""
    categories: list[AggregateResult] = field(default_factory=list)


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
    requests: list[ScoreRequest] = []
    owners: list[JudgeCase] = []
    failed: list[tuple[str, BaseException | str]] = []
    for c in cases:
        if c.turns:
            missing = [k + 1 for k, o in enumerate(c.turn_outputs) if o is None]
            if missing or len(c.turn_outputs) != len(c.turns):
                failed.append((c.id, f"the model produced no answer to turn {missing[0] if missing else 1} "
                                     f"(its generation failed)"))
                continue
            for k in range(len(c.turns)):
                requests.append(ScoreRequest(c.turns[k], c.turn_outputs[k] or "", criteria,
                                             c.turn_reference(k), rubric,
                                             history=c.history(k, c.turn_outputs)))
                owners.append(c)
        elif c.output is None:
            failed.append((c.id, "the model produced no output for this case (its generation failed)"))
        else:
            requests.append(ScoreRequest(c.prompt, c.output, criteria, c.reference, rubric))
            owners.append(c)
    outcomes = judge.score_many(requests)
    per_case: dict[str, dict[str, Any]] = {}
    verdicts: dict[str, list[ScoreVerdict]] = {}
    broken: dict[str, str] = {}
    for case, out in zip(owners, outcomes, strict=True):
        if case.id in broken:
            continue
        if isinstance(out, BaseException):
            turn = f"turn {len(verdicts.get(case.id, [])) + 1}: " if case.turns else ""
            broken[case.id] = f"{turn}{out}"
            failed.append((case.id, f"{turn}{out}"))
            verdicts.pop(case.id, None)
        else:
            verdicts.setdefault(case.id, []).append(out)
    good: list[tuple[JudgeCase, ScoreVerdict, list[ScoreVerdict]]] = []
    for c in cases:
        vs = verdicts.get(c.id)
        if not vs:
            continue
        if c.turns:
            mean = sum(v.score for v in vs) / len(vs)
            summary = replace(vs[-1], score=mean, rubric=None, greedy_score=None)
            per_case[c.id] = {"score": mean, "scale": list(summary.scale),
                              "turns": [v.to_dict() for v in vs]}
        else:
            summary = vs[0]
            per_case[c.id] = summary.to_dict()
        good.append((c, summary, vs))
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
    scores = [v.score for _, v, _ in good]
    est = bootstrap_mean(scores, level, seed=seed)
    agg.value, agg.ci = est.value, (est.low, est.high)
    agg.passed = clears(est, threshold, "min", gate_conf) if threshold is not None else None
    scale = good[0][1].scale
    if spec.case_min is not None:
        # a multi-turn case must reach the minimum on every turn
        lowest_of = {c.id: min(t.score for t in vs) for c, _, vs in good}
        agg.details["case_min"] = spec.case_min
        agg.details["below_case_min"] = [c.id for c, _, _ in good if lowest_of[c.id] < spec.case_min]
        for c, _, _ in good:
            per_case[c.id]["case_min_passed"] = lowest_of[c.id] >= spec.case_min
            per_case[c.id]["min_turn_score"] = lowest_of[c.id]
    if spec.max_regression is not None:
        agg.details["max_regression"] = spec.max_regression
    all_verdicts = [t for _, _, vs in good for t in vs]
    agg.details.update({
        "mean": est.value, "scale": list(scale),
        "histogram": {str(k): v for k, v in sorted(Counter(round(s) for s in scores).items())},
    })
    if any(v.rubric for v in all_verdicts):
        names = list(next(v.rubric for v in all_verdicts if v.rubric) or {})
        agg.details["rubric_means"] = {
            name: sum((v.rubric or {}).get(name, 0.0) for v in all_verdicts) / len(all_verdicts)
            for name in names}
    rows = _category_rows(name, "judge_score", [(c.category, v.score) for c, v, _ in good], level, seed)
    by_turn: dict[int, list[float]] = {}
    for c, _, vs in good:
        for k, v in enumerate(vs if c.turns else ()):
            by_turn.setdefault(k + 1, []).append(v.score)
    rows += _turn_rows(name, "judge_score", by_turn, level, seed)
    if by_turn:
        agg.details["turn_means"] = {str(k): sum(v) / len(v) for k, v in sorted(by_turn.items())}
    head = _verdict_line("judge_score", est.value, (est.low, est.high), est.n, level,
                         threshold, gate_conf, agg.passed, "mean score")
    lowest = sorted(good, key=lambda cv: cv[1].score)[:SHOW_CASES]
    lines = [head]
    if by_turn:
        lines.append("mean score by turn: " + ", ".join(
            f"turn {k} {sum(v) / len(v):.2f} (n={len(v)})" for k, v in sorted(by_turn.items())))
    lines.append(f"lowest-scored cases (scale {scale[0]}-{scale[1]}):")
    for case, v, vs in lowest:
        lines.append(f"  case[{case.id}] score {v.score:g}")
        if case.turns:
            for k, t in enumerate(vs):
                lines.append(f"    turn {k + 1} (score {t.score:g}) user:\n"
                             f"{_indent(_excerpt(case.turns[k]))}")
                lines.append(f"    turn {k + 1} answer:\n{_indent(_excerpt(case.turn_outputs[k]))}")
                lines.append(f"    turn {k + 1} judge's reasoning:\n{_indent(t.reasoning or '<none>')}")
            continue
        lines.append(f"    prompt:\n{_indent(_excerpt(case.prompt))}")
        lines.append(f"    output:\n{_indent(_excerpt(case.output))}")
        lines.append(f"    judge's reasoning:\n{_indent(v.reasoning or '<none>')}")
    return JudgeGateResult(agg, per_case, "\n".join(lines), rows)


def _category_rows(name: str, kind: str, values: Sequence[tuple[str | None, float]], level: float,
                   seed: int) -> list[AggregateResult]:
    """One row per case category: the mean of its cases' values with a bootstrap interval."""
    groups: dict[str, list[float]] = {}
    for category, value in values:
        if category is not None:
            groups.setdefault(category, []).append(value)
    rows = []
    for category in sorted(groups):
        est = bootstrap_mean(groups[category], level, seed=seed)
        rows.append(AggregateResult(name=name, value=est.value, ci=(est.low, est.high), n=est.n,
                                    kind="category", method="bootstrap", category=category,
                                    details={"gate_kind": kind}))
    return rows


def _turn_rows(name: str, kind: str, by_turn: Mapping[int, Sequence[float]], level: float,
               seed: int) -> list[AggregateResult]:
    """One row per turn of the multi-turn cases (``category`` "turn 1", "turn 2"...)."""
    rows = []
    for k in sorted(by_turn):
        est = bootstrap_mean(list(by_turn[k]), level, seed=seed)
        rows.append(AggregateResult(name=name, value=est.value, ci=(est.low, est.high), n=est.n,
                                    kind="turn", method="bootstrap", category=f"turn {k}",
                                    details={"turn": k, "gate_kind": kind}))
    return rows


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
    requests: list[CompareRequest] = []
    games: list[tuple[JudgeCase, int | None]] = []
    failed: list[tuple[str, BaseException | str]] = []
    for c in cases:
        why = _missing_pair(c, model_name, baseline_name)
        if why is not None:
            failed.append((c.id, why))
            continue
        if not c.turns:
            requests.append(CompareRequest(c.prompt, c.output or "", c.baseline_output or "", criteria,
                                           c.reference, swap))
            games.append((c, None))
            continue
        for t in range(len(c.turns)):  # MT-Bench: every turn is a game, judged in its own conversation
            requests.append(CompareRequest(c.turns[t], c.turn_outputs[t] or "",
                                           c.baseline_turn_outputs[t] or "", criteria, c.turn_reference(t),
                                           swap, history_a=c.history(t, c.turn_outputs),
                                           history_b=c.history(t, c.baseline_turn_outputs)))
            games.append((c, t))
    outcomes = judge.compare_many(requests)
    per_case: dict[str, dict[str, Any]] = {}
    good: list[tuple[JudgeCase, int | None, PairVerdict]] = []
    broken: set[str] = set()
    for (case, k), out in zip(games, outcomes, strict=True):
        if case.id in broken:
            continue
        if isinstance(out, BaseException):
            broken.add(case.id)
            failed.append((case.id, f"turn {k + 1}: {out}" if k is not None else out))
        else:
            good.append((case, k, out))
    good = [g for g in good if g[0].id not in broken]
    for case, k, v in good:
        record = {"verdict": _outcome(v), "model": model_name, "baseline": baseline_name, **v.to_dict(),
                  "reasoning": v.reasoning}
        if k is None:
            per_case[case.id] = record
        else:
            per_case.setdefault(case.id, {"model": model_name, "baseline": baseline_name,
                                          "turns": []})["turns"].append(record)
    for rec in per_case.values():
        if "turns" in rec:  # the case's verdict: the side that won more of its turns
            net = sum({"win": 1, "loss": -1}.get(t["verdict"], 0) for t in rec["turns"])
            rec["verdict"] = "win" if net > 0 else "loss" if net < 0 else "tie"
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
    stats = pair_stats([v for _, _, v in good])
    est = win_rate(stats.wins, stats.losses, stats.ties, level, seed=seed)
    p_value = sign_test(stats.wins, stats.losses)
    agg.value, agg.ci = est.value, (est.low, est.high)
    agg.passed = clears(est, threshold, "min", gate_conf) if threshold is not None else None
    agg.details.update({**stats.to_dict(), "sign_test_p": p_value})
    value_of = {"A": 1.0, "B": 0.0}
    multi = any(k is not None for _, k, _ in good)
    rows: list[AggregateResult] = []
    if multi:
        agg.details["n_games"] = len(good)
        agg.details["n_cases"] = len({c.id for c, _, _ in good})
        by_turn: dict[int, list[float]] = {}
        for _, k, v in good:
            by_turn.setdefault((k or 0) + 1, []).append(value_of.get(v.winner, 0.5))
        rows = _category_rows(name, "win_rate", [(c.category, value_of.get(v.winner, 0.5))
                                                 for c, _, v in good], level, seed)
        rows += _turn_rows(name, "win_rate", by_turn, level, seed)
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
    what = "win rate (W + T/2)/n over every judged turn" if multi else "win rate (W + T/2)/n"
    head = _verdict_line(name, est.value, (est.low, est.high), est.n, level, threshold,
                         gate_conf, agg.passed, what)
    lines = [head, _stats_line(stats.to_dict(), p_value)]
    if spec.min_lc_win_rate is not None:
        lines.append(f"length-controlled win rate {numbers.number(lc)} must be >= "
                     f"{numbers.threshold(spec.min_lc_win_rate)}: "
                     f"{'passed' if agg.details['lc_passed'] else 'FAILED'}")
    lost = [(c, k, v) for c, k, v in good if v.winner == "B"]
    if lost:
        lines.append(f"{'turns' if multi else 'cases'} {model_name} lost ({len(lost)}"
                     + (f", first {SHOW_CASES} shown" if len(lost) > SHOW_CASES else "") + "):")
    for case, k, v in lost[:SHOW_CASES]:
        if k is None:
            lines.append(f"  case[{case.id}]")
            lines.append(f"    prompt:\n{_indent(_excerpt(case.prompt))}")
            lines.append(f"    {model_name}:\n{_indent(_excerpt(case.output))}")
            lines.append(f"    {baseline_name}:\n{_indent(_excerpt(case.baseline_output))}")
        else:
            lines.append(f"  case[{case.id}] turn {k + 1}")
            lines.append(f"    user:\n{_indent(_excerpt(case.turns[k]))}")
            lines.append(f"    {model_name}:\n{_indent(_excerpt(case.turn_outputs[k]))}")
            lines.append(f"    {baseline_name}:\n{_indent(_excerpt(case.baseline_turn_outputs[k]))}")
        lines.append(f"    judge's reasoning:\n{_indent(v.reasoning or '<none>')}")
    return JudgeGateResult(agg, per_case, "\n".join(lines), rows)


def _missing_pair(c: JudgeCase, model_name: str, baseline_name: str) -> str | None:
    """Why a case cannot be compared (a side has no answer), or None."""
    if baseline_name == "reference":
        ref_missing = (any(o is None for o in c.baseline_turn_outputs) if c.turns
                       else c.baseline_output is None)
        if ref_missing:
            return "the case has no reference answer to compare with (pairwise against: reference)"
    if c.turns:
        for who, outs in ((model_name, c.turn_outputs), (baseline_name, c.baseline_turn_outputs)):
            missing = [k + 1 for k, o in enumerate(outs) if o is None]
            if missing or len(outs) != len(c.turns):
                turn = missing[0] if missing else 1
                return f"{who} produced no answer to turn {turn} (its generation failed)"
        return None
    if c.output is None or c.baseline_output is None:
        who = model_name if c.output is None else baseline_name
        return f"{who} produced no output for this case (its generation failed)"
    return None


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
