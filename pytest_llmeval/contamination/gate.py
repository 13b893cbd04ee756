"""The suite's ``contamination:`` gate: scan the suite's cases against its training files."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.contamination.engines import scan
from pytest_llmeval.contamination.index import EvalCase, EvalIndex
from pytest_llmeval.contamination.normalize import make_tokenizer, normalizer_from
from pytest_llmeval.contamination.readers import expand, record_text
from pytest_llmeval.contamination.report import ScanReport
from pytest_llmeval.contamination.scanner import ScanOptions
from pytest_llmeval.errors import ConfigError

KEYS = ("train", "n", "fields", "train_fields", "normalize", "tokenizer", "min_overlap",
        "max_doc_freq", "max_contaminated", "max_contaminated_fraction", "workers",
        "max_sources")
DEFAULT_N = 13


@dataclass(frozen=True)
class GateOutcome:
    """The gate's verdict, a failure message, and the JSON-able per-case report."""

    passed: bool
    n_cases: int
    n_contaminated: int
    message: str
    details: dict[str, Any]


def _str_list(value: Any, key: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise ConfigError(f"contamination.{key}: expected a string or a list of strings, "
                      f"got {value!r}")


def _number(config: dict[str, Any], key: str, kind: type, default: Any, low: float,
            high: float | None = None) -> Any:
    value = config.get(key, default)
    if value is None:
        return None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok or value < low or (high is not None and value > high):
        rng = f">= {low}" + (f" and <= {high}" if high is not None else "")
        raise ConfigError(f"contamination.{key}: expected a number {rng}, got {value!r}")
    return kind(value)


def case_text(case: dict[str, Any], fields: list[str] | None) -> str:
    """What is checked for one case: the chosen raw fields, else rendered prompt + reference."""
    if fields is not None:
        return record_text(case, fields)
    return record_text(case, ["text", "reference"])


def run_gate(config: dict[str, Any], *, suite_dir: Path, cases: list[dict[str, Any]],
             engine: str = "local", scheduler: Any = None) -> GateOutcome:
    """Scan ``cases`` against the training files in ``config`` and apply its limit.

    Raises:
        ConfigError: unknown or ill-typed keys, or training files that do not exist.
    """
    if not isinstance(config, dict):
        raise ConfigError(f"contamination: expected a mapping with at least 'train', got "
                          f"{config!r}")
    for key in config:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(KEYS)}"
            raise ConfigError(f"contamination: unknown key {key!r}{hint}")
    train = _str_list(config.get("train"), "train")
    if not train:
        raise ConfigError("contamination.train: list the training files or globs, e.g. "
                          "train: [../data/train.jsonl]")
    paths = expand(train, Path(suite_dir), option="contamination.train")
    n = _number(config, "n", int, DEFAULT_N, 1)
    if "max_contaminated" in config and "max_contaminated_fraction" in config:
        raise ConfigError("contamination: give max_contaminated or max_contaminated_fraction, "
                          "not both")
    max_count = _number(config, "max_contaminated", int, None, 0)
    max_frac = _number(config, "max_contaminated_fraction", float, None, 0, 1)
    if max_count is None and max_frac is None:
        max_count = 0
    normalizer = normalizer_from(config.get("normalize"), "contamination.normalize")
    tokenizer = make_tokenizer(config.get("tokenizer"), normalizer)
    fields = _str_list(config.get("fields"), "fields")
    train_fields = _str_list(config.get("train_fields"), "train_fields")
    options = ScanOptions(
        train_fields=tuple(train_fields) if train_fields else None,
        min_overlap=_number(config, "min_overlap", float, 0.0, 0, 1),
        max_doc_freq=_number(config, "max_doc_freq", int, None, 1),
        max_sources=_number(config, "max_sources", int, 3, 1))
    eval_cases = [EvalCase(str(c.get("id", i)), case_text(c, fields)) for i, c in
                  enumerate(cases)]
    index = EvalIndex(eval_cases, tokenizer, n)
    report = scan(index, paths, options, engine=engine, scheduler=scheduler,
                  workers=_number(config, "workers", int, None, 1), progress=False)
    return outcome(report, max_count, max_frac)


def outcome(report: ScanReport, max_count: int | None, max_frac: float | None) -> GateOutcome:
    """Apply the limit to a report."""
    total = len(report.cases)
    bad = report.n_contaminated
    if max_frac is not None:
        passed = bad <= max_frac * total
        limit = f"max_contaminated_fraction {max_frac:g}"
    else:
        passed = bad <= (max_count or 0)
        limit = f"max_contaminated {max_count or 0}"
    message = "" if passed else f"contamination above {limit}: " + report.describe()
    return GateOutcome(passed, total, bad, message, report.to_dict())
