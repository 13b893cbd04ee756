"""Write an eval split without its contaminated cases."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_llmeval.contamination.readers import read_records
from pytest_llmeval.contamination.report import ScanReport


def write_clean(eval_path: Path, report: ScanReport, out_path: Path) -> int:
    """Copy ``eval_path`` (JSONL) to ``out_path`` minus the cases ``report`` flags.

    Cases are matched by their origin (``file:line``) so that records without an ``id``
    are handled too. Returns the number of cases written.
    """
    drop = {c.origin for c in report.cases if c.contaminated}
    written = 0
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with out_path.open("w", encoding="utf-8") as out:
        for line, record, _ in read_records(eval_path, None):
            if f"{eval_path}:{line}" in drop:
                continue
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    return written
