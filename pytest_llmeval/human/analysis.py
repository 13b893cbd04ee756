"""Unblinded human results: win rate of the model over the baseline, criterion means, agreement.

Each item's outcome is its raters' majority preference, unblinded through the mapping:
a label held by more raters than any other decides (model: 1, baseline: 0); a majority
for "tie", or no single most frequent label (an even split), counts half. The win rate
``(W + T/2)/n`` is taken over items, with a bootstrap interval over items and a sign
test on W vs L, because items (not ratings) are the independent units. The per-rating
rate is shown beside it for reference.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from pytest_llmeval.human.agreement import AgreementResult, agreement
from pytest_llmeval.human.blindset import PREFERENCES, ABMapping, BlindSet
from pytest_llmeval.human.storage import Rating
from pytest_llmeval.stats import Estimate, bootstrap_mean, sign_test, win_rate

HIGH_SPREAD = 3
"""Scores of one output that differ by this many points or more (1 vs 4 on 1-5) mark disagreement."""


@dataclass(frozen=True)
class ItemOutcome:
    """One item's unblinded result.

    Attributes:
        outcome: ``win``, ``loss`` or ``tie`` for the model (majority of its raters).
        votes: unblinded vote counts ``{"model": n, "baseline": n, "tie": n}``.
        raters: who rated it.
    """

    item_id: str
    outcome: str
    votes: dict[str, int]
    raters: tuple[str, ...]


@dataclass(frozen=True)
class Disagreement:
    item_id: str
    reasons: tuple[str, ...]


@dataclass
class HumanResults:
    """Everything ``llmeval annotate report`` prints and the ``human`` gate decides on."""

    model: str
    baseline: str
    n_items: int
    items: list[ItemOutcome]
    win_rate: Estimate
    wins: int
    losses: int
    ties: int
    sign_test_p: float
    rating_rate: Estimate
    criteria: dict[str, dict[str, Estimate]]
    agreement: dict[str, AgreementResult]
    disagreements: list[Disagreement]
    n_ratings: int
    raters: list[str]
    coverage: float

    @property
    def majority(self) -> dict[str, str]:
        """The human majority per item: ``win``/``loss``/``tie`` for the model."""
        return {it.item_id: it.outcome for it in self.items}

    def format_text(self, max_items: int = 10) -> str:
        """The plain-text report (no model text in it: ids and numbers only)."""
        wr = self.win_rate
        lines = [
            f"human evaluation: {self.model} vs {self.baseline}",
            f"  {self.n_ratings} ratings by {len(self.raters)} raters ({', '.join(self.raters)}) on "
            f"{len(self.items)} of {self.n_items} items ({self.coverage:.0%} of assigned ratings done)",
            f"  win rate (item majority) = {_f(wr.value)} ({wr.confidence:.0%} CI [{_f(wr.low)}, "
            f"{_f(wr.high)}], n={wr.n}); W/L/T {self.wins}/{self.losses}/{self.ties}; "
            f"sign test p={self.sign_test_p:.3g}",
            f"  win rate (per rating)  = {_f(self.rating_rate.value)} ({self.rating_rate.confidence:.0%} "
            f"CI [{_f(self.rating_rate.low)}, {_f(self.rating_rate.high)}], n={self.rating_rate.n})",
            "  criterion means (1 = worst):",
        ]
        for name, by_side in self.criteria.items():
            m, b = by_side["model"], by_side["baseline"]
            lines.append(f"    {name:<20} {self.model} {_f(m.value, '.2f')} [{_f(m.low, '.2f')}, "
                         f"{_f(m.high, '.2f')}]   {self.baseline} {_f(b.value, '.2f')} [{_f(b.low, '.2f')}, "
                         f"{_f(b.high, '.2f')}]")
        lines.append("  agreement (Krippendorff's alpha; Fleiss' kappa; mean pairwise Cohen's kappa; "
                     "observed agreement):")
        for name, ag in self.agreement.items():
            lines.append(f"    {name:<20} alpha {_f(ag.alpha)} ({ag.level}); Fleiss {_f(ag.fleiss_kappa)}; "
                         f"Cohen {_f(ag.mean_cohen)}{' (quadratic)' if ag.level == 'ordinal' else ''}; "
                         f"observed {_f(ag.observed_agreement, '.0%')}; {ag.n_items} items")
        if self.disagreements:
            lines.append(f"  items with high disagreement ({len(self.disagreements)}"
                         + (f", first {max_items} shown" if len(self.disagreements) > max_items else "")
                         + "): review them, and the rubric's wording")
            for d in self.disagreements[:max_items]:
                lines.append(f"    {d.item_id}: {'; '.join(d.reasons)}")
        else:
            lines.append("  no item with high disagreement")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Display data for the results file and reports."""
        return {
            "model": self.model, "baseline": self.baseline, "n_items": self.n_items,
            "n_rated_items": len(self.items), "n_ratings": self.n_ratings, "raters": self.raters,
            "coverage": self.coverage, "wins": self.wins, "losses": self.losses, "ties": self.ties,
            "sign_test_p": self.sign_test_p, "win_rate": _est(self.win_rate),
            "per_rating_win_rate": _est(self.rating_rate),
            "criteria": {k: {s: _est(e) for s, e in v.items()} for k, v in self.criteria.items()},
            "agreement": {k: v.to_dict() for k, v in self.agreement.items()},
            "high_disagreement": [{"item": d.item_id, "why": list(d.reasons)} for d in self.disagreements],
        }


def _est(e: Estimate) -> dict[str, Any]:
    def clean(x: float) -> float | None:
        return None if math.isnan(x) else x

    return {"value": clean(e.value), "ci": [clean(e.low), clean(e.high)], "n": e.n}


def _f(x: float | None, spec: str = ".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def majority_outcome(votes: Counter[str]) -> str:
    """``win``/``loss``/``tie`` from unblinded votes: a strict plurality decides, else a tie."""
    ranked = votes.most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return "tie"
    return {"model": "win", "baseline": "loss"}.get(ranked[0][0], "tie")


def analyse(blind: BlindSet, mapping: ABMapping, ratings: Sequence[Rating], *, confidence: float = 0.95,
            seed: int = 0) -> HumanResults:
    """Unblind and summarise the ratings of a blind set (ratings already checked against it)."""
    by_item: dict[str, dict[str, Rating]] = {}
    for r in ratings:
        by_item.setdefault(r.item_id, {})[r.rater] = r
    order = [it.id for it in blind.items if it.id in by_item]
    items: list[ItemOutcome] = []
    for item_id in order:
        votes = Counter(mapping.side(item_id, r.preference) for r in by_item[item_id].values())
        items.append(ItemOutcome(item_id, majority_outcome(votes),
                                 {k: votes.get(k, 0) for k in ("model", "baseline", "tie")},
                                 tuple(sorted(by_item[item_id]))))
    wins = sum(it.outcome == "win" for it in items)
    losses = sum(it.outcome == "loss" for it in items)
    ties = len(items) - wins - losses
    est = win_rate(wins, losses, ties, confidence, seed=seed)
    per_rating = [{"model": 1.0, "baseline": 0.0}.get(mapping.side(r.item_id, r.preference), 0.5)
                  for r in ratings]
    rating_rate = bootstrap_mean(per_rating, confidence, seed=seed)

    criteria: dict[str, dict[str, Estimate]] = {}
    for c in blind.rubric.criteria:
        per_side: dict[str, list[float]] = {"model": [], "baseline": []}
        for item_id in order:
            a_side = mapping.a_is[item_id]
            b_side = "baseline" if a_side == "model" else "model"
            for label, side in (("A", a_side), ("B", b_side)):
                per_side[side].append(fmean(r.scores[label][c.name] for r in by_item[item_id].values()))
        criteria[c.name] = {s: bootstrap_mean(v, confidence, seed=seed) for s, v in per_side.items()}

    agree: dict[str, AgreementResult] = {}
    pref_table = {i: {r.rater: r.preference for r in by_item[i].values()} for i in order}
    agree["preference"] = agreement(pref_table, criterion="preference", level="nominal",
                                    scale=list(PREFERENCES))
    for c in blind.rubric.criteria:
        table = {f"{i}:{side}": {r.rater: r.scores[side][c.name] for r in by_item[i].values()}
                 for i in order for side in ("A", "B")}
        agree[c.name] = agreement(table, criterion=c.name, level="ordinal", scale=c.scale)

    disagreements: list[Disagreement] = []
    for item_id in order:
        rs = list(by_item[item_id].values())
        if len(rs) < 2:
            continue
        reasons: list[str] = []
        prefs = Counter(r.preference for r in rs)
        if prefs.most_common(1)[0][1] * 2 <= len(rs):
            reasons.append("preference split " + ", ".join(f"{k} x{v}" for k, v in sorted(prefs.items())))
        for c in blind.rubric.criteria:
            for side in ("A", "B"):
                vals = [r.scores[side][c.name] for r in rs]
                if max(vals) - min(vals) >= HIGH_SPREAD:
                    reasons.append(f"{c.name} of {side} scored {min(vals)} to {max(vals)}")
        if reasons:
            disagreements.append(Disagreement(item_id, tuple(reasons)))
    assigned = sum(len(q) for q in blind.queues.values())
    return HumanResults(
        mapping.model, mapping.baseline, len(blind.items), items, est, wins, losses, ties,
        sign_test(wins, losses), rating_rate, criteria, agree, disagreements, len(ratings),
        sorted({r.rater for r in ratings}), len(ratings) / assigned if assigned else 0.0)
