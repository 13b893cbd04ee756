"""The example suite's gate values, intervals and verdicts stay what they were (golden file).

Compares those fields only, so later additions to the results file do not break it. Regenerate
the golden file deliberately with ``LLMEVAL_UPDATE_GOLDEN=1`` when a change is meant to move them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden_example.json")


def gate_fields(results: dict) -> dict[str, list]:
    out: dict[str, list] = {}
    for suite in results["suites"]:
        for agg in suite["aggregates"]:
            verdict = agg.get("passed"), bool(agg.get("error")), agg.get("xfail") is not None
            out[f"{suite['file']}::{agg['name']}"] = [agg["value"], agg["ci"], *verdict]
        for name, rows in suite["categories"].items():
            for row in rows:
                out[f"{suite['file']}::{name}[{row['category']}]"] = [row["value"], row["ci"], row.get("passed")]
    return dict(sorted(out.items()))


@pytest.mark.slow
def test_example_suite_gates_match_the_golden_file(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "results.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "example_suite", "-q", "-p", "no:cacheprovider",
                           "--llmeval-json", str(out), "-p", "no:randomly"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    got = gate_fields(json.loads(out.read_text()))
    if os.environ.get("LLMEVAL_UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(got, indent=1) + "\n")
    want = json.loads(GOLDEN.read_text())
    assert set(got) == set(want)
    for key, (value, ci, *verdict) in want.items():
        g_value, g_ci, *g_verdict = got[key]
        assert g_verdict == verdict, key
        assert g_value == pytest.approx(value, rel=1e-9, abs=1e-12), key
        if ci is None:
            assert g_ci is None, key
        else:
            assert g_ci == pytest.approx(ci, rel=1e-9, abs=1e-12), key
