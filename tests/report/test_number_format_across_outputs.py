"""One aggregate, every output: the terminal summary, HTML, Markdown, JUnit properties and the gate's
message show its value, interval, base-model value and difference as the same text."""

from __future__ import annotations

import re

import pytest

from pytest_llmeval import numbers
from pytest_llmeval.gates.text import describe_estimate
from pytest_llmeval.items import junit_properties
from pytest_llmeval.report.html import render_html
from pytest_llmeval.report.markdown import render_markdown
from pytest_llmeval.report.terminal import summary_rows
from pytest_llmeval.results import AggregateResult, RunResult, SuiteResult


def _run(value: float, lo: float, hi: float, base: float, delta: float, dlo: float, dhi: float) -> RunResult:
    agg = AggregateResult(
        name="rougeL", value=value, ci=(lo, hi), n=120, threshold=0.4, passed=True, metric="rougeL",
        method="bootstrap", model="ft",
        details={"metric_kind": "mean", "interval_confidence": 0.95,
                 "vs_baseline": {"model": "base", "value": base, "ci": [base - 0.05, base + 0.05],
                                 "delta": delta, "delta_ci": [dlo, dhi]}})
    return RunResult(suites=[SuiteResult(name="qa", file="qa.eval.yaml", model="ft", baseline="base",
                                         n_cases=120, aggregates=[agg])])


@pytest.mark.parametrize("values", [
    (0.64321, 0.59849, 0.68804, 0.55, 0.09321, 0.04126, 0.14402),
    (7.25, 6.8, 7.7, 6.1, 1.15, -0.0213, 2.2),
    (0.0425, 0.0312, 0.0538, 0.07, -0.0275, -0.0401, -0.0146),
    (0.00412, 0.00305, 0.00519, 0.0082, -0.00408, -0.0052, -0.0031),
])
def test_value_interval_and_difference_read_the_same_everywhere(values: tuple[float, ...]) -> None:
    value, lo, hi, base, delta, dlo, dhi = values
    run = _run(*values)
    agg = run.suites[0].aggregates[0]
    value_s, interval_s = numbers.number(value), numbers.interval(lo, hi)
    base_s = numbers.estimate(base, base - 0.05, base + 0.05)
    diff_s, diff_ci_s = numbers.signed(delta), numbers.interval(dlo, dhi, sign=True)

    # terminal summary (its row, the base model's row and the difference row)
    rows = summary_rows(run)
    assert [rows[0].get("value"), rows[0].get("interval")] == [value_s, interval_s]
    assert rows[1].get("value") + " " + rows[1].get("interval") == base_s
    assert [rows[2].get("value"), rows[2].get("interval")] == [diff_s, diff_ci_s]

    # HTML overview
    html = render_html(run)
    overview = html[html.index('<section id="overview">'):html.index("</section>")]
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", overview, re.S)]
    assert cells[3:7] == [value_s, interval_s, f"base {base_s}", f"{diff_s} {diff_ci_s}"]

    # Markdown
    md_row = next(line for line in render_markdown(run).splitlines() if line.startswith("| qa | rougeL"))
    assert [c.strip() for c in md_row.split("|")[4:9]] == [value_s, interval_s, "120", f"base {base_s}",
                                                           f"{diff_s} {diff_ci_s}"]

    # JUnit properties
    props = dict(junit_properties("rougeL", agg))
    assert props["llmeval.rougeL.ci"] == interval_s
    assert props["llmeval.rougeL.estimate"] == f"{value_s} {interval_s}"
    assert props["llmeval.rougeL.base_model.value"] + " " + props["llmeval.rougeL.base_model.ci"] == base_s
    assert props["llmeval.rougeL.difference"] == diff_s
    assert props["llmeval.rougeL.difference.ci"] == diff_ci_s
    assert props["llmeval.rougeL.threshold"] == ">= 0.4" and props["llmeval.rougeL.verdict"] == "pass"

    # the gate's failure message
    message = describe_estimate(agg)
    assert f"rougeL = {value_s} (95% CI {interval_s}, bootstrap, n=120)" in message
    assert f"base model base = {base_s}; difference {diff_s} {diff_ci_s}" in message
