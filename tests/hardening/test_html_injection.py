"""``llmeval report`` escapes every field of a crafted results file; the CSP forbids form submissions."""

from __future__ import annotations

import json
import re
from pathlib import Path

from pytest_llmeval.cli import main
from pytest_llmeval.report.html import render_html
from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult

INJECT = '<form action="http://evil.invalid"><button>x</button></form><img src=x onerror=alert(1)>'


def _crafted() -> RunResult:
    agg = AggregateResult(name="em", value=0.5, n=INJECT)  # type: ignore[arg-type]
    suite = SuiteResult(name="s", file="s.eval.yaml", model="m", n_cases=INJECT,  # type: ignore[arg-type]
                        aggregates=[agg], cases=[CaseResult(id="c", prompt="p", output="o")])
    return RunResult(suites=[suite])


def test_n_and_n_cases_are_escaped() -> None:
    page = render_html(_crafted())
    assert "<form" not in page and "<img" not in page
    assert re.search(r"&lt;form action=(&quot;|&#34;)http://evil.invalid(&quot;|&#34;)&gt;", page)


def test_csp_forbids_forms_and_base() -> None:
    page = render_html(RunResult())
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert csp is not None
    assert re.search(r"form-action &#(x27|39);none&#(x27|39);", csp.group(1))
    assert re.search(r"base-uri &#(x27|39);none&#(x27|39);", csp.group(1))


def test_llmeval_report_refuses_a_crafted_file(tmp_path: Path, capsys) -> None:
    data = RunResult(suites=[SuiteResult(name="s", file="s", model="m")]).to_dict()
    data["suites"][0]["n_cases"] = INJECT
    path = tmp_path / "crafted.json"
    path.write_text(json.dumps(data))
    assert main(["report", str(path), "--html", str(tmp_path / "r.html")]) == 2
    assert "suites[0].n_cases" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
