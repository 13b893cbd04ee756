"""Which part of a run one of N CI jobs does: ``--llmeval-shard K/N`` and ``--llmeval-shard-cases``.

Pytest-free: the plugin turns the collected items into :class:`Unit`\\ s (one per test file) and
deselects what :func:`assign` does not give to its shard. Every job collects the same items in
the same order and computes the same plan, so the N shards cover each unit (or case) exactly once.

Two modes:

- ``suites`` (``--llmeval-shard K/N``): whole files are spread over the shards, heaviest first,
  each to the shard with the least work so far (longest-processing-time first; ties go to the
  lower shard, then the file name decides). The work of a suite is its number of samples (cases
  times ``repeat``), of another test file its number of tests; with a durations file
  (``--llmeval-durations``) it is the seconds recorded for the file instead, and a file missing
  from it counts the average seconds per sample of those recorded.
- ``cases`` (``--llmeval-shard-cases``): the cases of every suite whose gates can all be
  recomputed from the results file are dealt round-robin over the shards, in collection order
  (case j of the run goes to shard j mod N), so each shard holds the same number of cases to
  within one; such a suite's gates are then evaluated over the shard's cases only, marked
  partial, and ``llmeval merge`` recomputes them over every case. Suites with another gate kind
  and other test files are spread whole, as in ``suites`` mode.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_llmeval.errors import ConfigError

Mode = Literal["suites", "cases"]
_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """This job's shard: ``index`` of ``total`` (1-based) and the mode."""

    index: int
    total: int
    mode: Mode = "suites"

    @property
    def label(self) -> str:
        return f"{self.index}/{self.total}"

    def to_dict(self) -> dict[str, Any]:
        return {"shard": self.label, "index": self.index, "total": self.total, "mode": self.mode}


def parse_shard(value: Any, *, cases: bool = False, option: str = "--llmeval-shard") -> Shard:
    """``"K/N"`` as a :class:`Shard`.

    Raises:
        ConfigError: not two integers ``K/N`` with ``1 <= K <= N``, naming the option.
    """
    m = _SHARD.match(str(value))
    if not m:
        raise ConfigError(f"{option}: expected K/N (this job's shard K of N, e.g. 2/3), got {value!r}")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= k <= n:
        raise ConfigError(f"{option}: the shard K of K/N must be between 1 and N, got {value!r}")
    return Shard(k, n, "cases" if cases else "suites")


@dataclass
class Unit:
    """One test file of the run.

    Attributes:
        key: the file as pytest names it (relative to the rootdir), the prefix of its node ids.
        size: its work without durations: samples of a suite, tests of another file.
        case_ids: a suite's cases that may be split over shards, in file order (empty: run whole).
    """

    key: str
    size: int
    case_ids: tuple[str, ...] = ()

    @property
    def splittable(self) -> bool:
        return bool(self.case_ids)


@dataclass
class Assignment:
    """What one shard runs: whole files, and the cases of split suites."""

    shard: Shard
    files: set[str] = field(default_factory=set)
    cases: dict[str, set[str]] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)
    """Planned work of every shard (samples, or seconds with durations), for the summary."""


def assign(units: Sequence[Unit], shard: Shard,
           durations: Mapping[str, float] | None = None) -> Assignment:
    """This shard's part of ``units`` (see the module docstring for the rule)."""
    weights = unit_weights(units, durations)
    loads = [0.0] * shard.total
    out = Assignment(shard)
    whole = list(units)
    if shard.mode == "cases":
        whole = [u for u in units if not u.splittable]
        j = 0
        for u in units:
            if not u.splittable:
                continue
            per_case = weights[u.key] / len(u.case_ids)
            mine: set[str] = set()
            for case_id in u.case_ids:
                target = j % shard.total
                loads[target] += per_case
                if target == shard.index - 1:
                    mine.add(case_id)
                j += 1
            if mine:
                out.cases[u.key] = mine
    for u in sorted(whole, key=lambda u: (-weights[u.key], u.key)):
        target = min(range(shard.total), key=lambda s: (loads[s], s))
        loads[target] += weights[u.key]
        if target == shard.index - 1:
            out.files.add(u.key)
    out.loads = loads
    return out


def unit_weights(units: Sequence[Unit], durations: Mapping[str, float] | None) -> dict[str, float]:
    """Each unit's work: its size, or its recorded seconds when a durations file is given."""
    if not durations:
        return {u.key: float(max(u.size, 1)) for u in units}
    recorded: dict[str, float] = {}
    for node, seconds in durations.items():
        recorded_key = node.split("::", 1)[0]
        recorded[recorded_key] = recorded.get(recorded_key, 0.0) + float(seconds)
    known = [u for u in units if u.key in recorded]
    size_known = sum(max(u.size, 1) for u in known)
    per_size = sum(recorded[u.key] for u in known) / size_known if size_known else 1.0
    if per_size <= 0:
        per_size = 1.0
    return {u.key: recorded[u.key] if u.key in recorded and recorded[u.key] > 0
            else per_size * max(u.size, 1) for u in units}


def load_durations(path: str | Path, option: str = "--llmeval-durations") -> dict[str, float]:
    """A durations file: a JSON object of test file (or pytest node id, as pytest-split's
    ``.test_durations`` has them) to seconds.

    Raises:
        ConfigError: missing, not JSON, or not such an object, naming the file and the option.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{option}: durations file not found: {p} (write one with "
                          f"--llmeval-store-durations {p})") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{option}: {p} is not a durations file (a JSON object of test file to "
                          f"seconds): {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{option}: {p} must hold a JSON object of test file to seconds, "
                          f"got a JSON {type(data).__name__}")
    out: dict[str, float] = {}
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value < 0:
            raise ConfigError(f"{option}: {p}: the duration of {key!r} must be a number of seconds >= 0, "
                              f"got {value!r}")
        out[str(key)] = float(value)
    return out


def updated_durations(existing: Mapping[str, float], measured: Mapping[str, float]) -> dict[str, float]:
    """A durations file's new content: this run's files replace their old entries, others are kept."""
    out = {k: v for k, v in existing.items() if k.split("::", 1)[0] not in measured}
    out.update({k: round(v, 4) for k, v in measured.items()})
    return dict(sorted(out.items()))


def unrecomputable_kinds(gates: Sequence[Any]) -> list[str]:
    """Kinds among ``gates`` whose verdict cannot be recomputed from the results file (see
    :attr:`~pytest_llmeval.gates.base.Gate.recomputable`): a suite with one is never split."""
    return sorted({g.kind for g in gates if not getattr(g, "recomputable", False)})
