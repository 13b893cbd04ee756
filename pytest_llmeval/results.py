"""Run results: the records the plugin builds, and the results file they are saved as.

Everything here is plain data with explicit to/from dict functions, so that it
crosses xdist's execnet channel and lands in JSON unchanged.

Results file (``--llmeval-json``), version 1::

    {"version": 1, "plugin_version": "0.1.0", "created": "2026-11-28T10:00:00+00:00",
     "settings": {...}, "models": {"finetuned": {...describe()...}},
     "suites": [SuiteResult.to_dict(), ...]}
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pytest_llmeval._version import __version__

RESULTS_VERSION = 1


@dataclass
class AggregateResult:
    """One aggregate (a gate when it has a threshold).

    ``kind`` is ``metric``, ``judge_score``, ``win_rate``, ``contamination``
    or ``category`` (a per-category breakdown row). ``passed`` is ``None`` for
    an aggregate without a threshold, and ``error`` is set when it could not be
    computed (then it is neither a pass nor a fail).
    """

    name: str
    value: float | None
    ci: tuple[float, float] | None = None
    n: int = 0
    threshold: float | None = None
    op: str = "min"
    confidence: float | None = None
    passed: bool | None = None
    kind: str = "metric"
    metric: str | None = None
    method: str | None = None
    category: str | None = None
    model: str | None = None
    error: str | None = None
    skip: str | None = None
    """Why the gate could not run here (no judge, no key): SKIP, or ERROR in strict mode."""
    xfail: str | None = None
    """The reason of an expected failure (``xfail:`` in the suite)."""
    details: dict[str, Any] = field(default_factory=dict)
    """Display data only (vs-baseline values, judge statistics); never decides the verdict."""
    partial: dict[str, Any] | None = None
    """Set in a run sharded with ``--llmeval-shard-cases`` when the suite's cases are split over
    shards: the value was computed over this shard's cases only (``{"shard": "1/3", "cases": 20,
    "of": 60}``) and decides nothing; ``llmeval merge`` recomputes the gate over every case."""

    @property
    def verdict(self) -> str:
        """``pass``, ``fail``, ``error``, ``skip``, ``xfail``/``xpass`` (expected failure), ``none``,
        or ``partial`` (a shard's value of a split suite: the merged run decides)."""
        if self.skip:
            return "skip"
        if self.partial is not None:
            return "partial"
        if self.error:
            return "error"
        if self.passed is None:
            return "none"
        if self.xfail is not None:
            return "xpass" if self.passed else "xfail"
        return "pass" if self.passed else "fail"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ci"] = list(self.ci) if self.ci is not None else None
        if d["partial"] is None:
            del d["partial"]  # only shards of a split suite carry it
        return _clean(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AggregateResult:
        d = dict(d)
        if d.get("ci") is not None:
            d["ci"] = tuple(d["ci"])
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TurnResult:
    """One turn of a multi-turn case: the user's message, each model's answer, the turn's reference.

    The evaluated model and the baseline each hold their own conversation: a turn's
    ``baseline_output`` answers a history made of the baseline's earlier answers.
    """

    user: str
    output: str | None
    baseline_output: str | None = None
    reference: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"user": self.user, "output": self.output, "baseline_output": self.baseline_output,
                "reference": self.reference}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TurnResult:
        return cls(user=d.get("user", ""), output=d.get("output"), baseline_output=d.get("baseline_output"),
                   reference=d.get("reference"))


@dataclass
class CaseResult:
    """One case: its prompt, outputs, reference and scores.

    ``outputs`` maps model name to output text (``output`` is the evaluated
    model's, kept at top level for readability). With ``repeat: k`` the
    samples live in ``samples`` and ``output`` is the first. A multi-turn case
    records every turn in ``turns`` (first sample); ``output`` is the last turn's
    answer and ``prompt`` the conversation that last answer replied to.
    """

    id: str
    prompt: Any
    output: str | None
    reference: Any = None
    scores: dict[str, float | None] = field(default_factory=dict)
    status: str = "passed"
    error: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    category: str | None = None
    difficulty: str | None = None
    tags: list[str] = field(default_factory=list)
    baseline_output: str | None = None
    samples: list[str | None] = field(default_factory=list)
    judge: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    generation_error: bool = False
    """True when a sample could not be generated (as opposed to a failed check)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Per-case data of gate kinds, keyed by kind (e.g. code execution results)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    """One record per generated request (each sample, and each turn of a multi-turn case): ``latency_s``,
    ``input_tokens``, ``output_tokens``, ``cost_usd`` and ``cached`` (a replayed answer: excluded from
    latency, its cost reported apart)."""
    turns: list[TurnResult] = field(default_factory=list)
    """A multi-turn case's turns, in order (empty for a single-turn case)."""

    def to_dict(self) -> dict[str, Any]:
        # Written out (not dataclasses.asdict, which deep-copies): one of these per case and per run.
        return _clean({
            "id": self.id, "prompt": self.prompt, "output": self.output, "reference": self.reference,
            "scores": dict(self.scores), "status": self.status, "error": self.error,
            "checks": list(self.checks), "category": self.category, "difficulty": self.difficulty,
            "tags": list(self.tags), "baseline_output": self.baseline_output,
            "samples": list(self.samples), "judge": dict(self.judge), "fields": dict(self.fields),
            "generation_error": self.generation_error, "extra": dict(self.extra),
            "requests": list(self.requests), "turns": [t.to_dict() for t in self.turns],
        })

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseResult:
        known = {f for f in cls.__dataclass_fields__}
        fields = {k: v for k, v in d.items() if k in known}
        fields["turns"] = [t if isinstance(t, TurnResult) else TurnResult.from_dict(t)
                           for t in fields.get("turns") or []]
        return cls(**fields)


@dataclass
class SuiteResult:
    name: str
    file: str
    model: str | None
    baseline: str | None = None
    n_cases: int = 0
    suite_hash: str | None = None
    aggregates: list[AggregateResult] = field(default_factory=list)
    categories: dict[str, list[AggregateResult]] = field(default_factory=dict)
    cases: list[CaseResult] = field(default_factory=list)
    reports: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    split: dict[str, Any] | None = None
    """Set when ``--llmeval-shard-cases`` split this suite's cases over shards: ``shard`` ("K/N"),
    ``cases`` (how many this shard holds) and ``baseline`` (the comparison model's name and error,
    as the gates saw it), so that ``llmeval merge`` can rebuild the gates' context."""

    def to_dict(self) -> dict[str, Any]:
        d = {
            "name": self.name, "file": self.file, "model": self.model, "baseline": self.baseline,
            "n_cases": self.n_cases, "suite_hash": self.suite_hash,
            "aggregates": [a.to_dict() for a in self.aggregates],
            "categories": {k: [a.to_dict() for a in v] for k, v in self.categories.items()},
            "cases": [c.to_dict() for c in self.cases],
            "reports": dict(self.reports), "warnings": list(self.warnings), "error": self.error,
        }
        if self.split is not None:
            d["split"] = dict(self.split)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SuiteResult:
        return cls(
            name=d["name"], file=d.get("file", ""), model=d.get("model"),
            baseline=d.get("baseline"), n_cases=d.get("n_cases", 0), suite_hash=d.get("suite_hash"),
            aggregates=[AggregateResult.from_dict(a) for a in d.get("aggregates", [])],
            categories={k: [AggregateResult.from_dict(a) for a in v]
                        for k, v in (d.get("categories") or {}).items()},
            cases=[CaseResult.from_dict(c) for c in d.get("cases", [])],
            reports=dict(d.get("reports") or {}), warnings=list(d.get("warnings") or []),
            error=d.get("error"), split=d.get("split"),
        )


@dataclass
class RunResult:
    suites: list[SuiteResult] = field(default_factory=list)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    regressions: list[dict[str, Any]] = field(default_factory=list)
    """With ``--llmeval-compare``: each ``regression[<gate>]`` item's verdict (status, message, test)."""
    plugin_version: str = __version__
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": RESULTS_VERSION, "plugin_version": self.plugin_version,
            "created": self.created, "settings": self.settings, "models": self.models,
            "usage": self.usage, "suites": [s.to_dict() for s in self.suites],
            "regressions": list(self.regressions),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        version = d.get("version")
        if version != RESULTS_VERSION:
            raise ValueError(f"unsupported results file version {version!r} (expected {RESULTS_VERSION})")
        return cls(
            suites=[SuiteResult.from_dict(s) for s in d.get("suites", [])],
            models=dict(d.get("models") or {}), settings=dict(d.get("settings") or {}),
            usage=dict(d.get("usage") or {}), regressions=list(d.get("regressions") or []),
            plugin_version=d.get("plugin_version", "?"),
            created=d.get("created", ""),
        )

    def save(self, path: str | Path) -> None:
        """Write atomically (temp file + rename) so a crash never leaves half a file."""
        from pytest_llmeval.fileio import write_atomic

        write_atomic(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str),
                     what="results file")


def load_results(path: str | Path) -> RunResult:
    """Load a results file, with an error that names the file (and the field) when it is not one."""
    from pytest_llmeval.fileio import read_results

    return read_results(path)


def _clean(obj: Any) -> Any:
    """Replace NaN/inf by None so the file is strict JSON."""
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj
