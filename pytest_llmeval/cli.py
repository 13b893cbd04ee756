"""The ``llmeval`` command: work that is not a test run (comparisons, reports, contamination scans)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from pytest_llmeval._version import __version__


def _compare(args: argparse.Namespace) -> int:
    from pytest_llmeval.compare import compare_runs
    from pytest_llmeval.results import load_results

    try:
        old = load_results(args.old)
        new = load_results(args.new)
    except (OSError, ValueError) as exc:
        print(f"llmeval compare: {exc}", file=sys.stderr)
        return 2
    comparison = compare_runs(old, new, alpha=args.alpha, max_regression=args.max_regression,
                              seed=args.seed)
    print(comparison.format_text(max_cases=args.max_cases))
    _write_reports(args, new, comparison, old)
    return 1 if comparison.regressions else 0


def _write_reports(args: argparse.Namespace, run: Any, comparison: Any, baseline: Any) -> None:
    """``--html`` / ``--markdown`` of a run, with its comparison when there is one."""
    if args.html:
        from pytest_llmeval.report.html import write_html

        write_html(run, args.html, comparison=comparison, baseline=baseline)
        print(f"HTML report written to {args.html}")
    if args.markdown:
        from pytest_llmeval.report.markdown import render_markdown

        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(render_markdown(run, comparison))
        print(f"Markdown summary written to {args.markdown}")


def _report(args: argparse.Namespace) -> int:
    from pytest_llmeval.results import load_results

    try:
        run = load_results(args.results)
        baseline = load_results(args.baseline) if args.baseline else None
    except (OSError, ValueError) as exc:
        print(f"llmeval report: {exc}", file=sys.stderr)
        return 2
    comparison = None
    if baseline is not None:
        from pytest_llmeval.compare import compare_runs

        comparison = compare_runs(baseline, run)
    _write_reports(args, run, comparison, baseline)
    if not args.html and not args.markdown:
        from pytest_llmeval.report.markdown import render_markdown

        print(render_markdown(run, comparison))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmeval", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compare", help="compare two results files; exit 1 on a significant regression")
    p.add_argument("old", help="the baseline results file (e.g. main's)")
    p.add_argument("new", help="the results file to check")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (Holm-corrected)")
    p.add_argument("--max-regression", type=float, default=None,
                   help="also fail when a gate drops by more than this")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-cases", type=int, default=5, help="cases shown per changed gate")
    p.add_argument("--html", default=None,
                   help="also write an HTML report of the new run with the comparison")
    p.add_argument("--markdown", default=None, help="also write a Markdown summary")
    p.set_defaults(func=_compare)

    p = sub.add_parser("report", help="render a results file as HTML or Markdown")
    p.add_argument("results")
    p.add_argument("--baseline", default=None, help="an earlier results file to compare against")
    p.add_argument("--html", default=None)
    p.add_argument("--markdown", default=None)
    p.set_defaults(func=_report)

    p = sub.add_parser("schema", help="print the JSON Schema of suite files (for editors)")
    p.add_argument("-o", "--output", default=None, help="write it to this file instead of stdout")
    p.set_defaults(func=_schema)

    from pytest_llmeval.contamination import cli as contamination_cli

    contamination_cli.add_parser(sub)
    from pytest_llmeval.human import cli as human_cli

    human_cli.add_parsers(sub)
    return parser


def _schema(args: argparse.Namespace) -> int:
    import json

    from pytest_llmeval.schema import suite_json_schema

    text = json.dumps(suite_json_schema(), indent=2)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        print(f"schema written to {args.output}")
    else:
        print(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        from pytest_llmeval.contamination import cli as contamination_cli

        return int(contamination_cli.run(args))
    return int(func(args))


if __name__ == "__main__":
    raise SystemExit(main())
