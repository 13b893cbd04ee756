"""The ``human:`` section: gate a suite on a blind human evaluation of its outputs.

::

    human:
      blind_set: human/            # the directory 'llmeval blind create' wrote (or its blind_set.json)
      ratings: human/ratings.db    # the rating app's database, or a .csv/.jsonl export
      mapping: human/mapping.json  # optional; default: mapping.json beside blind_set.json
      min_win_rate: 0.6            # model over baseline, items decided by their raters' majority
      confidence: 0.95             # optional: the interval's lower bound must clear min_win_rate
      min_agreement: {alpha: 0.4}  # optional: Krippendorff's alpha and/or kappa (Fleiss' with 3+
                                   # raters, Cohen's with 2) on the preference or a criterion (on:)

Paths are relative to the suite file. Two gates come out of it: ``human_win_rate`` and,
with ``min_agreement``, ``human_agreement[<on>]``.

Ratings only count for the outputs they rated. Before any verdict each gate checks the
blind set against the run: a case id the suite no longer has, or a prompt whose hash
changed, makes the gate an ERROR that names the cases; so do outputs whose hashes differ
from this run's when generation is deterministic (temperature 0). With sampling the
outputs differ from run to run by design, so that is a warning instead.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from pytest_llmeval import numbers
from pytest_llmeval.errors import ConfigError, LLMEvalError, LLMEvalWarning
from pytest_llmeval.gates.base import (
    DisplayRow,
    Gate,
    GateContext,
    GateOutcome,
    GateSpec,
    check_in_range,
    error_outcome,
)
from pytest_llmeval.gates.registry import register_gate
from pytest_llmeval.results import AggregateResult
from pytest_llmeval.stats import Estimate, clears

SHOW_STALE = 5
"""How many stale items an error message names."""


class MinAgreement(GateSpec):
    """Agreement thresholds: each given coefficient must reach its minimum."""

    alpha: float | None = Field(default=None, json_schema_extra={"minimum": -1, "maximum": 1})
    kappa: float | None = Field(default=None, json_schema_extra={"minimum": -1, "maximum": 1})
    on: str = "preference"

    @field_validator("alpha", "kappa")
    @classmethod
    def _range(cls, v: float | None, info: Any) -> float | None:
        return check_in_range(v, -1.0, 1.0, f"min_agreement.{info.field_name}")

    @model_validator(mode="after")
    def _some(self) -> MinAgreement:
        if self.alpha is None and self.kappa is None:
            raise ValueError("min_agreement needs 'alpha' and/or 'kappa', e.g. {alpha: 0.4}")
        return self


class HumanSpec(GateSpec):
    """Options of the ``human:`` section."""

    blind_set: str
    ratings: str
    mapping: str | None = None
    min_win_rate: float | None = Field(default=None, json_schema_extra={"minimum": 0, "maximum": 1})
    confidence: float | None = Field(default=None, gt=0, lt=1)
    min_agreement: MinAgreement | None = None

    @field_validator("min_win_rate")
    @classmethod
    def _win_range(cls, v: float | None) -> float | None:
        return check_in_range(v, 0.0, 1.0, "min_win_rate")


@dataclass
class HumanOutcome(GateOutcome):
    """A human gate's outcome, carrying the unblinded results for gates that build on them."""

    results: Any = None
    """:class:`~pytest_llmeval.human.analysis.HumanResults`, or None when they could not be computed."""


@dataclass(frozen=True)
class _Loaded:
    results: Any
    stale_warnings: tuple[str, ...]


def _resolve(ctx: GateContext, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else ctx.suite.base_dir / p


def stale_problems(blind: Any, mapping: Any, ctx: GateContext) -> tuple[list[str], list[str]]:
    """Blind items that no longer match the run: (errors, warnings), one line per item.

    Errors: a case id the suite no longer has; a prompt whose hash changed; with
    temperature 0, an output whose hash differs from this run's. With sampling, a
    differing output is a warning.
    """
    from pytest_llmeval.human.blindset import text_hash

    current = {r.id: r for r in ctx.results}
    known_cases = {c.id for c in ctx.cases}
    deterministic = float(ctx.suite.spec.generation.temperature) == 0.0
    baseline_outputs = ctx.baseline.outputs if ctx.baseline is not None else {}
    errors: list[str] = []
    drift: list[str] = []
    for item in blind.items:
        res = current.get(item.id)
        if res is None or item.id not in known_cases:
            errors.append(f"case {item.id!r} is no longer in the suite")
            continue
        if text_hash(res.prompt) != item.prompt_hash:
            errors.append(f"case {item.id!r}: its prompt changed since the blind set was made")
            continue
        hashes = mapping.output_hashes.get(item.id, {})
        now = {"model": res.output,
               "baseline": res.baseline_output if res.baseline_output is not None
               else baseline_outputs.get(item.id)}
        for side, text in now.items():
            if text is not None and side in hashes and text_hash(text) != hashes[side]:
                who = mapping.model if side == "model" else mapping.baseline
                drift.append(f"case {item.id!r}: {who}'s output differs from the one rated")
    if deterministic:
        return errors + drift, []
    return errors, drift


def _listing(lines: list[str]) -> str:
    shown = "\n".join(f"  {x}" for x in lines[:SHOW_STALE])
    more = f"\n  ... and {len(lines) - SHOW_STALE} more" if len(lines) > SHOW_STALE else ""
    return shown + more


def load_human(spec: HumanSpec, ctx: GateContext) -> _Loaded:
    """Load, check against the run and analyse; raises LLMEvalError with a message for the user."""
    from pytest_llmeval.human.analysis import analyse
    from pytest_llmeval.human.blindset import MAPPING_FILE, blind_set_path, load_blind_set, load_mapping
    from pytest_llmeval.human.storage import load_ratings

    blind_path = blind_set_path(_resolve(ctx, spec.blind_set))
    blind = load_blind_set(blind_path)
    mapping_path = _resolve(ctx, spec.mapping) if spec.mapping else blind_path.parent / MAPPING_FILE
    mapping = load_mapping(mapping_path, blind)
    errors, drift = stale_problems(blind, mapping, ctx)
    if errors:
        why = ("deterministic generation (temperature 0) reproduces the outputs that were rated, "
               "so a different output means the model or its settings changed; "
               if any("output differs" in e for e in errors) else "")
        raise LLMEvalError(
            f"the blind set {blind_path} is stale: {len(errors)} of its {len(blind.items)} items no longer "
            f"match this suite's cases ({why}the ratings are of something else):\n{_listing(errors)}\n"
            "Recreate it from a fresh run with 'llmeval blind create' and collect new ratings.")
    ratings = load_ratings(_resolve(ctx, spec.ratings), blind)
    if not ratings:
        raise LLMEvalError(f"{_resolve(ctx, spec.ratings)} holds no ratings yet")
    level = spec.confidence if spec.confidence is not None else ctx.confidence
    results = analyse(blind, mapping, ratings, confidence=level, seed=ctx.seed)
    if drift:
        warnings.warn(LLMEvalWarning(
            f"{len(drift)} of the {len(blind.items)} rated outputs in {blind_path} differ from this run's "
            f"(sampling, temperature {ctx.suite.spec.generation.temperature:g}); the human verdict is about "
            f"the rated outputs:\n{_listing(drift)}"), stacklevel=2)
    return _Loaded(results, tuple(drift))


class _HumanGate(Gate):
    Spec = HumanSpec
    recomputable = True  # the ratings files and the stored outputs' hashes

    def _load(self, ctx: GateContext) -> _Loaded | GateOutcome:
        try:
            return load_human(self.spec, ctx)
        except (ConfigError, LLMEvalError, ValueError) as exc:
            out = error_outcome(self.name, self.kind, str(exc))
            return HumanOutcome(out.aggregate, message=out.message)


@register_gate
class HumanWinRateGate(_HumanGate):
    """``human_win_rate``: the model's win rate over the baseline by human majority per item."""

    kind = "human_win_rate"
    section = "human"
    description = "blind human A/B evaluation: win rate over the baseline and rater agreement"

    @classmethod
    def from_section(cls, spec: Any, *, suite_spec: Any, line: int | None) -> list[Gate]:
        gates: list[Gate] = [cls("human_win_rate", spec, line)]
        if spec.min_agreement is not None:
            gates.append(HumanAgreementGate(f"human_agreement[{spec.min_agreement.on}]", spec, line))
        return gates

    @classmethod
    def display_rows(cls, agg: AggregateResult) -> list[DisplayRow]:
        """The human majority's W/L/T and the raters."""
        d = agg.details
        rows = []
        if "wins" in d:
            rows.append(DisplayRow("wins / losses / ties (human majority)",
                                   f"{d['wins']} / {d.get('losses', 0)} / {d.get('ties', 0)}", style="text"))
        if d.get("raters"):
            rows.append(DisplayRow("raters", str(len(d["raters"])), style="text"))
        return rows

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        loaded = self._load(ctx)
        if isinstance(loaded, GateOutcome):
            return loaded
        res = loaded.results
        est: Estimate = res.win_rate
        spec: HumanSpec = self.spec
        agg = self.aggregate(value=None if math.isnan(est.value) else est.value,
                             ci=None if math.isnan(est.low) else (est.low, est.high), n=est.n,
                             threshold=spec.min_win_rate, op="min", confidence=spec.confidence,
                             method="bootstrap", model=res.model,
                             details={**res.to_dict(), "stale_warnings": list(loaded.stale_warnings),
                                      "summary": f"humans: {res.model} vs {res.baseline} W/L/T "
                                                 f"{res.wins}/{res.losses}/{res.ties}"})
        if spec.min_win_rate is not None:
            agg.passed = clears(est, spec.min_win_rate, "min", spec.confidence)
        head = (f"human_win_rate[{res.model}>{res.baseline}] = {numbers.number(est.value)} "
                f"({est.confidence:.0%} CI {numbers.interval(est.low, est.high)}, n={est.n} items)")
        if spec.min_win_rate is not None:
            rule = (f"lower bound of the {spec.confidence:.0%} interval must be >= {spec.min_win_rate:g}"
                    if spec.confidence is not None else f"must be >= {spec.min_win_rate:g}")
            head += f" {'passed' if agg.passed else 'FAILED'}: {rule}"
        return HumanOutcome(agg, message=head + "\n" + res.format_text(), report=res.format_text(),
                            results=res)


@register_gate
class HumanAgreementGate(_HumanGate):
    """``human_agreement[<on>]``: the raters agree enough for their verdict to mean something."""

    kind = "human_agreement"
    section = None

    @classmethod
    def display_rows(cls, agg: AggregateResult) -> list[DisplayRow]:
        """Every agreement coefficient computed (Krippendorff's alpha, Cohen's and Fleiss' kappa)."""
        ag = agg.details.get("agreement") or {}
        labels = (("alpha", "Krippendorff's alpha"), ("mean_cohen_kappa", "Cohen's kappa (mean of pairs)"),
                  ("fleiss_kappa", "Fleiss' kappa"), ("observed_agreement", "observed agreement"))
        rows = [DisplayRow(label, ag[key]) for key, label in labels
                if isinstance(ag.get(key), (int, float)) and not isinstance(ag.get(key), bool)]
        if agg.details.get("raters"):
            rows.append(DisplayRow("raters", str(len(agg.details["raters"])), style="text"))
        return rows

    def evaluate(self, ctx: GateContext) -> GateOutcome:
        loaded = self._load(ctx)
        if isinstance(loaded, GateOutcome):
            return loaded
        res = loaded.results
        want: MinAgreement = self.spec.min_agreement
        if want.on not in res.agreement:
            names = ", ".join(k for k in res.agreement if k != "preference")
            return error_outcome(self.name, self.kind,
                                 f"min_agreement.on: {want.on!r} is neither 'preference' nor a criterion of "
                                 f"the blind set's rubric ({names})")
        ag = res.agreement[want.on]
        kappa_name = "Fleiss' kappa" if len(res.raters) >= 3 else "Cohen's kappa"
        kappa = ag.fleiss_kappa if len(res.raters) >= 3 else ag.mean_cohen
        checks: list[tuple[str, float, float]] = []
        if want.alpha is not None:
            checks.append(("Krippendorff's alpha", ag.alpha, want.alpha))
        if want.kappa is not None:
            checks.append((kappa_name, kappa, want.kappa))
        undefined = [name for name, v, _ in checks if math.isnan(v)]
        first_name, first_value, first_min = checks[0]
        agg = self.aggregate(value=None if math.isnan(first_value) else first_value, n=ag.n_items,
                             threshold=first_min, op="min", method=first_name,
                             details={"agreement": ag.to_dict(), "raters": res.raters})
        if undefined:
            agg.error = (f"{' and '.join(undefined)} on {want.on} is undefined: every rating is the same "
                         f"label (or fewer than two ratings per item), so agreement beyond chance cannot "
                         f"be measured ({ag.n_items} items with 2+ ratings)")
            return GateOutcome(agg, message=agg.error)
        failed = [(n, v, m) for n, v, m in checks if v < m]
        agg.passed = not failed
        parts = [f"{n} = {numbers.number(v)} (min {numbers.threshold(m)})" for n, v, m in checks]
        msg = (f"human_agreement on {want.on} ({ag.level}, {ag.n_items} items, {len(res.raters)} raters): "
               + "; ".join(parts) + (" passed" if agg.passed else " FAILED"))
        if failed:
            msg += ("\nraters disagree too much for their verdict to be evidence; clarify the rubric and "
                    "look at the items with high disagreement:")
            msg += "".join(f"\n  {d.item_id}: {'; '.join(d.reasons)}" for d in res.disagreements[:10])
        return GateOutcome(agg, message=msg)
