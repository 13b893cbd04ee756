"""The HTML report in a real headless Chromium: loads cleanly, charts render, filters work,
and no script from a model output runs.

Needs Debian's ``chromium`` at /usr/bin/chromium and the ``playwright`` package
(``pip install 'pytest-llmevals[html-test]'``); Playwright's own browser
download is never used.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_llmeval.compare import Comparison
from pytest_llmeval.report.html import write_html
from pytest_llmeval.results import RunResult

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="playwright is not installed: pip install 'pytest-llmevals[html-test]'")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """``$LLMEVAL_ARTIFACTS`` when set (CI uploads it), else the test's tmp dir."""
    target = Path(os.environ.get("LLMEVAL_ARTIFACTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def test_report_in_headless_chromium(browser, tmp_path: Path, artifacts: Path,  # type: ignore[no-untyped-def]
                                     new_run: RunResult, baseline_run: RunResult,
                                     comparison: Comparison) -> None:
    report = tmp_path / "report.html"
    write_html(new_run, report, comparison=comparison, baseline=baseline_run)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    console_errors: list[str] = []
    page_errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")

    assert console_errors == [] and page_errors == []
    assert all(url.startswith("file:") for url in requests), requests
    assert page.evaluate("window.__pwned") is None  # no injected script or handler ran

    # Charts render: the SVG marks have real boxes on screen.
    assert page.locator("svg.intervals circle.value").count() == 4
    box = page.locator("svg.intervals").first.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 50
    assert page.locator("svg.hist rect").count() > 3
    assert page.locator("svg.wtl rect").count() == 2
    assert page.locator("svg.deltas").count() == 1

    rows = page.locator("table.cases tbody tr")
    visible = "table.cases tbody tr:not([hidden])"
    assert rows.count() == 40
    assert page.locator(".f-count").inner_text() == "40 of 40 cases shown"
    page.fill("input.f-text", "Lyon 2")
    assert page.locator(visible).count() == 10  # outputs "Lyon 20" .. "Lyon 29"
    page.fill("input.f-text", "case-017")
    assert page.locator(visible).count() == 1
    page.fill("input.f-text", "")
    page.select_option("select.f-change", "worse")
    assert page.locator(visible).count() == 15
    assert page.locator(".f-count").inner_text() == "15 of 40 cases shown"
    page.screenshot(path=str(artifacts / "llmeval-report.png"), full_page=True)
    page.select_option("select.f-change", "")
    page.select_option("select.f-status", "failed")
    assert page.locator(visible).count() == 1
    page.select_option("select.f-status", "")

    # Sorting by a score column: descending after two clicks puts the best rougeL first.
    header = page.locator("table.cases th", has_text="rougeL")
    header.click()
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    values = [float(v) for v in page.locator(
        "table.cases tbody tr td[data-v]:nth-child(10)").evaluate_all(
        "cells => cells.map(c => c.getAttribute('data-v'))")]
    assert values == sorted(values, reverse=True) and len(values) == 40
    assert page.evaluate("window.__pwned") is None
    assert console_errors == [] and page_errors == []
    assert (artifacts / "llmeval-report.png").stat().st_size > 10_000
    page.close()


def test_csp_blocks_an_inline_script_that_escaping_missed(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The CSP is a second wall: an unescaped inline script in the page is refused."""
    import re

    from pytest_llmeval.report.html import render_html

    tampered = render_html(RunResult()).replace(
        "</body>", "<script>window.__pwned = 9</script></body>")
    without_csp = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", tampered)
    page = browser.new_page()
    for name, text, expected in (("with-csp", tampered, None), ("without-csp", without_csp, 9)):
        target = tmp_path / f"{name}.html"
        target.write_text(text, encoding="utf-8")
        page.goto(target.as_uri())
        assert page.evaluate("window.__pwned") == expected, name
    page.close()
