"""The HTML report in a real headless Chromium: loads cleanly, shows the base-model difference,
failing checks, word diffs and charts with axes, filters and sorts 20,000 cases, and runs no
script from a model output, a case id or a category.

Needs Debian's ``chromium`` at /usr/bin/chromium and the ``playwright`` package
(``pip install 'pytest-llmevals[html-test]'``); Playwright's own browser download is never
used. Without them these tests skip on a developer machine and fail under CI (``CI`` set).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pytest_llmeval.compare import Comparison
from pytest_llmeval.report.html import render_html, write_html
from pytest_llmeval.results import CaseResult, RunResult, SuiteResult

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.browser


def _missing(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI is set: the browser tests must run there)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed: pip install 'pytest-llmevals[html-test]'")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    """``$LLMEVAL_ARTIFACTS`` when set (CI uploads it), else the test's tmp dir."""
    target = Path(os.environ.get("LLMEVAL_ARTIFACTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def _open(browser, path: Path):  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, errors, requests


def test_report_in_headless_chromium(browser, tmp_path: Path, artifacts: Path,  # type: ignore[no-untyped-def]
                                     new_run: RunResult, baseline_run: RunResult,
                                     comparison: Comparison) -> None:
    suite = new_run.suites[0]
    suite.cases[3].id = "<script>window.__pwned = 12</script>"
    suite.cases[5].category = "<img src=x onerror=\"window.__pwned = 13\">"
    report = tmp_path / "report.html"
    write_html(new_run, report, comparison=comparison, baseline=baseline_run)
    page, errors, requests = _open(browser, report)
    assert errors == []
    assert all(url.startswith("file:") for url in requests), requests

    # The overview shows the base model's value and the difference with its interval.
    overview = page.locator("#overview table.overview")
    assert "difference to the base model" in overview.locator("thead").inner_text()
    em_row = overview.locator("tr.gate-row", has_text="exact_match")
    assert "0.550 [0.400, 0.700]" in em_row.inner_text()
    assert "-0.175 [-0.325, -0.025]" in em_row.inner_text()

    # Charts: axis labels and ticks are on screen, the marks have real boxes.
    axis = page.locator("svg.intervals .axis-label").first
    assert axis.is_visible() and axis.text_content() == "exact_match (share of cases)"
    assert page.locator("svg.intervals .tick-label").count() > 10
    assert page.locator("svg.hist .axis-label", has_text="cases").count() == 3
    box = page.locator("svg.intervals").first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 60
    assert page.locator("svg.wtl rect.seg").count() == 2  # wins and losses; no ties

    # A failing case shows its check's message; the diff marks the changed word.
    count = page.locator(".f-count")
    assert count.inner_text() == "40 of 40 cases shown"
    page.select_option("select.f-status", "failed")
    assert count.inner_text() == "1 of 40 cases shown"
    assert "output does not contain 'Paris'" in page.locator("table.cases tbody tr.case").first.inner_text()
    page.locator("table.cases tbody tr.case").first.click()
    detail = page.locator(".detail")
    assert "output does not contain 'Paris'" in detail.locator(".check-message").inner_text()
    base_pair = detail.locator(".pair", has_text="base model (base) vs this run (ft)")
    assert base_pair.locator("del").first.inner_text().startswith("Paris")  # the base model's words
    assert "Lyon" in base_pair.locator("ins").first.inner_text()  # the model's changed word
    page.select_option("select.f-status", "")

    # Filter by text, by change since the previous run; the text filter searches check messages too.
    page.fill("input.f-text", "Lyon 2")
    assert count.inner_text() == "10 of 40 cases shown"  # outputs "Lyon 20" .. "Lyon 29"
    page.fill("input.f-text", "")
    page.select_option("select.f-change", "worse")
    assert count.inner_text() == "15 of 40 cases shown"
    page.locator("table.cases tbody tr.case").first.click()
    pair = detail.locator(".pair", has_text="previous run vs this run")
    assert pair.locator("del").first.inner_text() == "Paris"
    assert pair.locator("ins").first.inner_text().startswith("Lyon")
    page.screenshot(path=str(artifacts / "llmeval-report.png"), full_page=True)
    page.select_option("select.f-change", "")

    # Sorting by a score column: descending after two clicks puts the best rougeL first.
    header = page.locator("table.cases th", has_text="rougeL").first
    header.click()
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    col = int(header.get_attribute("data-col") or 0)
    shown = page.locator("table.cases tbody tr.case").evaluate_all(
        f"rows => rows.map(r => parseFloat(r.cells[{col}].textContent))")
    assert shown == sorted(shown, reverse=True) and len(shown) > 10

    # Nothing hostile ran: not the output's, the case id's or the category's script.
    page.fill("input.f-text", "pwned")
    for row in page.locator("table.cases tbody tr.case").all():
        row.click()
    assert page.evaluate("window.__pwned") is None
    assert errors == []
    assert (artifacts / "llmeval-report.png").stat().st_size > 10_000
    page.close()


def _big_run(n: int) -> RunResult:
    cases = [CaseResult(id=f"case-{i:05d}", prompt=f"question {i}", output=f"answer {i % 97} words here",
                        reference="answer", scores={"rougeL": (i * 7919 % 1000) / 1000},
                        status="failed" if i % 10 == 0 else "passed", category=f"cat{i % 5}")
             for i in range(n)]
    return RunResult(suites=[SuiteResult(name="big", file="big.eval.yaml", model="m", n_cases=n, cases=cases)])


@pytest.mark.slow
def test_twenty_thousand_cases_filter_and_sort(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A generous bound (1 s) so a loaded CI machine passes; tests/bench measures the real time."""
    report = tmp_path / "big.html"
    report.write_text(render_html(_big_run(20_000)), encoding="utf-8")
    page, errors, _ = _open(browser, report)
    assert page.locator(".f-count").inner_text() == "20000 of 20000 cases shown"
    assert page.locator("table.cases tbody tr.case").count() < 100  # only the rows on screen
    timings = page.evaluate("""() => {
      const t = window.llmevalTables[0], out = {};
      let s = performance.now();
      t.text.value = "answer 42 "; t.filter(); out.filter = performance.now() - s; out.n = t.view.length;
      s = performance.now(); t.sort(4); t.sort(4); out.sort = (performance.now() - s) / 2;
      out.first = t.rows[t.view[0]].k[4];
      const v = t.view, k = t.columnKeys(4);
      out.ordered = v.every((c, i) => i === 0 || k[v[i - 1]] > k[c] || (k[v[i - 1]] === k[c] && v[i - 1] < c));
      return out;
    }""")
    assert timings["n"] == sum(1 for i in range(20_000) if i % 97 == 42)  # "answer 42 " only
    assert timings["first"] >= 0.9
    assert timings["ordered"]  # descending, ties in case order
    assert timings["filter"] < 1000 and timings["sort"] < 1000, timings
    start = time.perf_counter()
    page.fill("input.f-text", "")
    assert page.locator(".f-count").inner_text() == "20000 of 20000 cases shown"
    assert time.perf_counter() - start < 5
    assert errors == []
    page.close()


def test_csp_blocks_an_inline_script_that_escaping_missed(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The CSP is a second wall: an unescaped inline script in the page is refused."""
    import re

    tampered = render_html(RunResult()).replace("</body>", "<script>window.__pwned = 9</script></body>")
    without_csp = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", tampered)
    page = browser.new_page()
    for name, text, expected in (("with-csp", tampered, None), ("without-csp", without_csp, 9)):
        target = tmp_path / f"{name}.html"
        target.write_text(text, encoding="utf-8")
        page.goto(target.as_uri())
        assert page.evaluate("window.__pwned") == expected, name
    page.close()
