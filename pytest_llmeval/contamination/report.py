"""Per-case contamination results and the whole scan's report (plain, JSON-able data).

Each record has an explicit ``to_dict`` (``dataclasses.asdict`` deep-copies field by
field through generic recursion, which dominates writing a report of thousands of
cases), and ``write_json`` streams the report with the C JSON encoder, one case per line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MatchSource:
    """Where an eval n-gram was found in the training data.

    Attributes:
        file: the training file.
        line: 1-based line (JSONL/text) or row (parquet) of the training record.
        offset: character offset of the match in the record's text (the chosen fields
            joined by a space), when it can be mapped back.
        snippet: the training text around the match.
        ngram: the matched n-gram, normalised.
    """

    file: str
    line: int
    offset: int | None
    snippet: str
    ngram: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "offset": self.offset,
                "snippet": self.snippet, "ngram": self.ngram}


@dataclass(frozen=True)
class Span:
    """The longest run of the eval text covered by matched n-grams."""

    start: int
    end: int
    text: str
    tokens: int

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "text": self.text, "tokens": self.tokens}


@dataclass(frozen=True)
class CaseReport:
    """Contamination of one eval case."""

    id: str
    contaminated: bool
    n_ngrams: int
    n_matched: int
    fraction: float
    longest_span: Span | None
    sources: list[MatchSource]
    n_boilerplate: int = 0
    origin: str | None = None

    def to_dict(self) -> dict[str, Any]:
        span = self.longest_span
        return {"id": self.id, "contaminated": self.contaminated, "n_ngrams": self.n_ngrams,
                "n_matched": self.n_matched, "fraction": self.fraction,
                "longest_span": None if span is None else span.to_dict(),
                "sources": [s.to_dict() for s in self.sources],
                "n_boilerplate": self.n_boilerplate, "origin": self.origin}


@dataclass(frozen=True)
class ScanReport:
    """The result of one scan: settings, totals and one CaseReport per eval case."""

    settings: dict[str, Any]
    train_files: list[str]
    cases: list[CaseReport]
    bytes_scanned: int
    records_scanned: int
    seconds: float
    engine: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def contaminated(self) -> list[CaseReport]:
        return [c for c in self.cases if c.contaminated]

    @property
    def n_contaminated(self) -> int:
        return sum(c.contaminated for c in self.cases)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "settings": self.settings,
            "train_files": self.train_files,
            "engine": self.engine,
            "bytes_scanned": self.bytes_scanned,
            "records_scanned": self.records_scanned,
            "seconds": round(self.seconds, 3),
            "n_cases": len(self.cases),
            "n_contaminated": self.n_contaminated,
            "cases": [c.to_dict() for c in self.cases],
        }

    def write_json(self, path: Path, details: dict[str, Any] | None = None) -> None:
        """Write ``details`` (default: ``to_dict()``) as JSON: the summary indented, each
        case on its own line, encoded by the C encoder (``indent`` would use the Python one)."""
        data = self.to_dict() if details is None else details
        head = {k: v for k, v in data.items() if k != "cases"}
        dumps = json.JSONEncoder(ensure_ascii=False).encode
        parts = ["{\n"]
        parts.extend(f"  {dumps(k)}: {dumps(v)},\n" for k, v in head.items())
        cases = data.get("cases", [])
        parts.append('  "cases": [' + ("\n" if cases else ""))
        parts.append(",\n".join("    " + dumps(c) for c in cases))
        parts.append(("\n  " if cases else "") + "]\n}\n")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(parts), encoding="utf-8")

    def describe(self, limit: int = 20, sources_per_case: int = 2) -> str:
        """A human-readable list of the contaminated cases with spans and sources."""
        bad = self.contaminated
        lines = [f"{len(bad)}/{len(self.cases)} eval cases overlap the training data "
                 f"(n={self.settings.get('n')}, min_overlap={self.settings.get('min_overlap')})"]
        for case in bad[:limit]:
            span = case.longest_span
            text = span.text if span else ""
            if len(text) > 160:
                text = text[:157] + "..."
            lines.append(f"  case {case.id}: {case.n_matched}/{case.n_ngrams} n-grams "
                         f"({case.fraction:.0%}), longest span {span.tokens if span else 0} "
                         f"tokens: {text!r}")
            for src in case.sources[:sources_per_case]:
                where = f"{src.file}:{src.line}" + (f" @{src.offset}" if src.offset is not None
                                                     else "")
                lines.append(f"      from {where}: {src.snippet!r}")
        if len(bad) > limit:
            lines.append(f"  ... and {len(bad) - limit} more")
        return "\n".join(lines)
