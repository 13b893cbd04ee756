"""``llmeval view`` in a real headless Chromium against the real server.

The server is ``llmeval view DIR`` as a subprocess on 127.0.0.1 and a free port, started
and stopped by the test with bounded waits. Needs Debian's ``chromium`` at
/usr/bin/chromium, the ``playwright`` package (``html-test`` extra) and the ``view``
extra: skipped on a developer machine without them, a failure under ``CI``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmeval.results import RunResult

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def need(what: str) -> None:
    """Skip on a developer's machine, fail in CI, when a component CI installs is missing."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI")
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        need(f"{CHROMIUM} (apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        need("playwright (pip install 'pytest-llmevals[html-test]')")
    try:
        import jinja2  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        need("the viewer's packages (pip install 'pytest-llmevals[view]')")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def folder(tmp_path: Path, baseline_run: RunResult, new_run: RunResult) -> Path:
    """Three runs (the newest regressed), a file that is not JSON and one that is not a results file."""
    runs = tmp_path / "results"
    (runs / "nested").mkdir(parents=True)
    for name, run, day in (("run1.json", baseline_run, 21), ("nested/run2.json", baseline_run, 22),
                           ("run3.json", new_run, 23)):
        run.created = f"2026-11-{day}T10:00:00+00:00"
        run.save(runs / name)
    (runs / "garbage.json").write_text("{not json", encoding="utf-8")
    (runs / "package.json").write_text('{"name": "something else"}', encoding="utf-8")
    return runs


@pytest.fixture
def server(folder: Path, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "pytest_llmeval.cli", "view", str(folder),
                                 "--port", str(port)], stdout=fh, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"the viewer exited: {log.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the viewer did not start within {START_TIMEOUT:.0f} s: {log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_viewer_lists_runs_shows_trends_and_compares(browser, server: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    outside: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    page.goto(server + "/")

    # The three runs, newest first, with their verdict counts.
    rows = page.locator("tr.run")
    assert rows.count() == 3
    assert [rows.nth(i).get_attribute("data-file") for i in range(3)] == \
        ["run3.json", "nested/run2.json", "run1.json"]
    fail_counts = [int(rows.nth(i).locator("td.count.v-fail").inner_text()) for i in range(3)]
    assert fail_counts[0] >= 1 and fail_counts[1] == fail_counts[2] == 0

    # The files that are not results files are listed with the reason, not a crash.
    unreadable = page.locator("#unreadable li")
    assert unreadable.count() == 2
    text = page.locator("#unreadable").inner_text()
    assert "garbage.json" in text and "invalid JSON" in text and "package.json" in text

    # A trend per gate: three values with their intervals, on drawn axes.
    trend = page.locator('figure.trend[data-gate="evals/qa.eval.yaml::exact_match"]')
    assert trend.locator("circle.value").count() == 3
    assert trend.locator("line.ci").count() == 3
    assert trend.locator("line.axis").count() == 2 and trend.locator("text.y-tick").count() == 5
    assert trend.locator("text.x-tick").all_text_contents() == ["#1", "#2", "#3"]
    assert trend.locator("line.threshold").count() == 1
    box = trend.locator("svg").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    ys = [float(trend.locator("circle.value").nth(i).get_attribute("cy") or 0) for i in range(3)]
    assert ys[2] > ys[0]  # the newest run's exact match is lower: drawn lower
    page.screenshot(path=str(tmp_path / "viewer.png"), full_page=True)

    # Compare the oldest run with the newest.
    page.select_option("#old", "run1.json")
    page.select_option("#new", "run3.json")
    page.click("form.compare-form button")
    page.wait_for_url("**/compare?*")
    assert "REGRESSION" in page.locator("#overall").inner_text()
    em = page.locator('tr.gate[data-gate="exact_match"]')
    assert em.locator("td.status").inner_text() == "REGRESSED"
    assert em.locator("td").nth(4).inner_text().startswith("-")

    # The new run's HTML report with the comparison, generated on the fly.
    page.click("a.open-report")
    page.wait_for_load_state("load")
    assert page.title() == "llmeval report"
    assert page.locator("table.comparison").count() >= 1  # the comparison with the previous run
    assert "previous run" in page.locator("body").inner_text()
    assert page.evaluate("window.__pwned") is None  # hostile outputs in the report never run

    # Any run's own report from the list.
    page.goto(server + "/")
    page.locator('tr.run[data-file="nested/run2.json"] a.open-report').click()
    page.wait_for_load_state("load")
    assert page.title() == "llmeval report"
    assert page.evaluate("window.__pwned") is None
    assert errors == [] and outside == []


def test_viewer_refuses_other_hosts_and_paths_outside_the_folder(server: str) -> None:
    for path in ("/report/..%2F..%2Fetc%2Fpasswd", "/report/missing.json", "/compare?old=run1.json&new=nope"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(server + path, timeout=10)
        assert info.value.code == 404
    request = urllib.request.Request(server + "/", headers={"Host": "rebound.example"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400
    with urllib.request.urlopen(server + "/", timeout=10) as r:
        assert "script-src" not in r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
