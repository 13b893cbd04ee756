"""A whole pytest run with --llmeval-cache-readonly against a cache on a read-only mount."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from .confine import run_confined

SUITE = """\
model: "python:roomodel:answer"
model_options: {cache: true}
prompt: "Q: {text}"
cases:
  - {id: a, text: one, reference: "yes"}
  - {id: b, text: two, reference: "yes"}
metrics:
  exact_match: {min: 0.5}
"""

RUN = textwrap.dedent("""
    import sys
    import pytest
    cache, suites = sys.argv[1], sys.argv[2]
    sys.path.insert(0, suites)
    sys.exit(pytest.main([suites, "--rootdir", suites, "-p", "no:cacheprovider", "-q",
                          "--llmeval-cache", cache, *sys.argv[3:]]))
""")


def test_readonly_cache_on_a_read_only_mount_runs_every_item(tmp_path: Path) -> None:
    suites, cache = tmp_path / "suites", tmp_path / "cache"
    suites.mkdir()
    (suites / "roomodel.py").write_text("def answer(prompt):\n    return 'yes'\n")
    (suites / "s.eval.yaml").write_text(SUITE)
    fill = subprocess.run([sys.executable, "-c", RUN, str(cache), str(suites)], capture_output=True,
                          text=True, timeout=300)
    assert fill.returncode == 0, fill.stdout + fill.stderr
    assert (cache / "cache.sqlite3").exists()
    proc, method = run_confined("ro", cache, RUN, str(suites), "--llmeval-cache-readonly",
                                "--llmeval-cache-strict")
    print(method)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout and "cache_hits=2, cache_misses=0" in proc.stdout
