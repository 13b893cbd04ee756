"""The HTML report at scale: rendering N cases in Python, then filtering and sorting them in Chromium.

- render: ``render_html`` of a run with N cases (one suite, a base model's outputs so every case
  carries a word diff, a judge verdict, per-request usage), and the file's size;
- load: ``page.goto`` until the load event (JSON parse of the blob, first rows drawn);
- filter / sort: the table's own ``filter()`` / ``sort()`` called in the page and timed with
  ``performance.now()`` (the array work and the redraw of the rows on screen), then the same
  until the next animation frame (what a person waits for before the screen changes). The
  first sort of a column computes its order; the later ones (the other direction) reuse it,
  so they are reported apart. Every sort re-applies the active text filter.

    python tests/bench/bench_html_report.py [--cases 20000] [--reps 5]

Needs /usr/bin/chromium and playwright (``pip install 'pytest-llmevals[html-test]'``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult

CHROMIUM = "/usr/bin/chromium"


def build(n: int) -> RunResult:
    cases = []
    for i in range(n):
        words = " ".join(f"w{(i * 31 + k) % 500}" for k in range(12))
        cases.append(CaseResult(
            id=f"case-{i:05d}", prompt=[{"role": "user", "content": f"question {i}: {words}"}],
            output=f"answer {i % 97} {words}", baseline_output=f"answer {(i + 1) % 97} {words}",
            reference="answer", scores={"rougeL": (i * 7919 % 1000) / 1000, "exact_match": float(i % 3 == 0)},
            status="failed" if i % 10 == 0 else "passed", category=f"cat{i % 5}",
            checks=[{"check": "contains", "passed": i % 10 != 0, "message": "missing 'x'" if i % 10 == 0 else None}],
            judge={"score": {"score": 1 + i % 10, "reasoning": f"because {words}", "scale": [1, 10]}},
            requests=[{"latency_s": 0.1 + (i % 50) / 100, "input_tokens": 40, "output_tokens": 12,
                       "cost_usd": 0.00002, "cached": False}]))
    agg = AggregateResult(name="rougeL", value=0.5, ci=(0.49, 0.51), n=n, threshold=0.4, passed=True,
                          metric="rougeL", details={"metric_kind": "mean"})
    return RunResult(suites=[SuiteResult(name="big", file="big.eval.yaml", model="m", baseline="b",
                                         n_cases=n, aggregates=[agg], cases=cases)])


MEASURE = """async ([query, reps]) => {
  const t = window.llmevalTables[0];
  const col = Array.from(t.table.tHead.rows[0].cells).findIndex(th => th.textContent === "rougeL");
  const frame = () => new Promise(r => requestAnimationFrame(() => r()));
  const out = {filter: [], filter_frame: [], sort: [], sort_frame: [], clear: []};
  for (let i = 0; i < reps; i++) {
    let s = performance.now(); t.text.value = query; t.filter(); out.filter.push(performance.now() - s);
    out.shown = t.view.length;
    await frame(); out.filter_frame.push(performance.now() - s);
    s = performance.now(); t.sort(col); out.sort.push(performance.now() - s);
    await frame(); out.sort_frame.push(performance.now() - s);
    s = performance.now(); t.text.value = ""; t.filter(); out.clear.push(performance.now() - s);
    await frame();
  }
  return out;
}"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=20_000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    from pytest_llmeval.report.html import render_html

    run = build(args.cases)
    t0 = time.perf_counter()
    page_text = render_html(run)
    render_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "report.html"
        path.write_text(page_text, encoding="utf-8")
        print(f"load average: {os.getloadavg()}")
        print(f"render {args.cases} cases: {render_s:.2f} s, file {path.stat().st_size / 1e6:.1f} MB")
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox",
                                                                        "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            print(f"load: {time.perf_counter() - t0:.2f} s")
            res = page.evaluate(MEASURE, ["answer 42 ", args.reps])
            browser.close()
    # the first sort of a column computes its order (the comparator sort); later ones reuse it
    for key in ("sort", "sort_frame"):
        print(f"{key + ' first':>17}: {res[key][0]:7.1f} ms")
        res[key] = res[key][1:]
    for key in ("filter", "filter_frame", "sort", "sort_frame", "clear"):
        vals = res[key]
        print(f"{key:>17}: median {statistics.median(vals):7.1f} ms  (min {min(vals):.1f}, max {max(vals):.1f})")
    print(f"rows shown after the filter: {res['shown']}")


if __name__ == "__main__":
    main()
