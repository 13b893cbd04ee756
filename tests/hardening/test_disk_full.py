"""Results and reports on a full disk or a read-only folder: a clear error, no partial file, nothing lost."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pytest_llmeval.errors import WriteError
from pytest_llmeval.fileio import write_atomic

from .confine import run_confined

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from pytest_llmeval.errors import WriteError
    from pytest_llmeval.fileio import write_atomic

    folder = Path(sys.argv[1])
    target = folder / "results.json"
    report = {}
    write_atomic(target, "small and complete", what="results file")   # fits
    try:
        write_atomic(target, "x" * 2_000_000, what="results file")   # does not fit
        report["error"] = None
    except WriteError as exc:
        report["error"] = str(exc)
    report["content"] = target.read_text()
    report["files"] = sorted(p.name for p in folder.iterdir())
    print(json.dumps(report))
""")


def test_write_atomic_on_a_full_disk_raises_a_clear_error_and_leaves_no_partial_file(tmp_path: Path) -> None:
    folder = tmp_path / "out"
    folder.mkdir()
    proc, method = run_confined("full", folder, SCRIPT, size="512k")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(method)
    assert report["error"] is not None and "cannot write the results file" in report["error"]
    assert "disk is full" in report["error"] or "larger than" in report["error"]
    assert "previous file is unchanged" in report["error"]
    assert report["content"] == "small and complete"
    assert report["files"] == ["results.json"]  # no temporary file left behind


def test_write_atomic_into_a_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    script = SCRIPT.replace('write_atomic(target, "small and complete", what="results file")   # fits',
                            'pass')
    script = script.replace('report["content"] = target.read_text()', 'report["content"] = None')
    proc, _ = run_confined("ro", folder, script)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "cannot write the results file" in report["error"] and "Nothing was written" in report["error"]
    assert report["files"] == []


def test_write_atomic_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "r.json"
    write_atomic(target, "one")
    write_atomic(target, b"two")
    assert target.read_text() == "two" and sorted(p.name for p in target.parent.iterdir()) == ["r.json"]


def test_write_error_names_a_bad_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match="cannot write the HTML report .*file/r.html"):
        write_atomic(tmp_path / "file" / "r.html", "x", what="HTML report")


def test_llmeval_compare_markdown_on_a_bad_path_exits_2(tmp_path: Path, capsys) -> None:
    from pytest_llmeval.cli import main
    from pytest_llmeval.results import RunResult

    RunResult().save(tmp_path / "r.json")
    (tmp_path / "file").write_text("x")
    code = main(["compare", str(tmp_path / "r.json"), str(tmp_path / "r.json"),
                 "--markdown", str(tmp_path / "file" / "s.md")])
    assert code == 2 and "cannot write the Markdown summary" in capsys.readouterr().err
