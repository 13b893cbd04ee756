"""``llmeval view``'s app without a browser: listing, unreadable files, trends, comparison, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llmeval import cli
from pytest_llmeval.results import RunResult

pytest.importorskip("starlette")
pytest.importorskip("jinja2")
testclient = pytest.importorskip("starlette.testclient")


@pytest.fixture
def client(tmp_path: Path, baseline_run: RunResult, new_run: RunResult):  # type: ignore[no-untyped-def]
    from pytest_llmeval.viewer.app import create_app

    for name, run, day in (("a.json", baseline_run, 1), ("b.json", baseline_run, 2), ("c.json", new_run, 3)):
        run.created = f"2026-11-0{day}T10:00:00+00:00"
        run.save(tmp_path / name)
    (tmp_path / "bad.json").write_bytes(b"\xff\xfe not utf-8")
    (tmp_path / "deep.json").write_text("[" * 100_000, encoding="utf-8")
    return testclient.TestClient(create_app(tmp_path))


def test_index_lists_runs_unreadable_files_and_trends(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/")
    assert page.status_code == 200
    text = page.text
    assert text.count('<tr class="run"') == 3
    assert text.index('data-file="c.json"') < text.index('data-file="a.json"')  # newest first
    assert "bad.json" in text and "not UTF-8" in text and "deep.json" in text and "nested too deeply" in text
    assert text.count('<figure class="trend"') == 4 and text.count('<circle class="value') == 12
    assert "<script" not in text.split("<main>")[0] and "window.__pwned" not in text
    assert "script-src" not in page.headers["content-security-policy"]
    assert client.get("/?last=2").text.count('<tr class="run"') == 2


def test_comparison_and_reports(client) -> None:  # type: ignore[no-untyped-def]
    cmp = client.get("/compare", params={"old": "a.json", "new": "c.json"})
    assert cmp.status_code == 200 and "REGRESSION" in cmp.text and ">REGRESSED<" in cmp.text
    same = client.get("/compare", params={"old": "a.json", "new": "b.json"})
    assert "no significant regression" in same.text and ">REGRESSED<" not in same.text
    report = client.get("/report/c.json")
    assert report.status_code == 200 and "<title>llmeval report</title>" in report.text
    assert "sandbox" in report.headers["content-security-policy"]
    assert "<script>window.__pwned" not in report.text  # the hostile outputs are escaped
    assert client.get("/compare/report", params={"old": "a.json", "new": "c.json"}).status_code == 200
    assert client.get("/report/bad.json").status_code == 404
    assert client.get("/compare", params={"old": "a.json"}).status_code == 404


def test_view_command_refuses_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["view", str(tmp_path / "missing")]) == cli.EXIT_USAGE
    assert "not a folder" in capsys.readouterr().err
    assert cli.main(["view", str(tmp_path), "--last", "0"]) == cli.EXIT_USAGE
    assert cli.main(["view", str(tmp_path), "--port", "70000"]) == cli.EXIT_USAGE
