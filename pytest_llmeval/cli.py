"""The ``llmeval`` command: work that is not a test run (comparisons, reports, contamination scans).

Exit codes, the same for every subcommand:

* 0: no failure;
* 1: a gate failed or regressed, or a comparison could not pair a gate (``compare``);
* 2: usage or input error: a bad option, a results file that is missing, unreadable
  or invalid, an output file that cannot be written (the message is on stderr).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from pytest_llmeval._version import __version__
from pytest_llmeval.errors import ConfigError, LLMEvalError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

EPILOG = ("exit codes: 0 no failure; 1 a gate failed or regressed (or, for compare, could not be "
          "paired); 2 usage or input error (bad option, unreadable or invalid results file)")


class _Usage(Exception):
    """A usage or input error: printed on stderr, exit code 2."""


def _compare(args: argparse.Namespace) -> int:
    from pytest_llmeval.compare import compare_runs, validate_compare_options
    from pytest_llmeval.fileio import read_results

    try:
        alpha, max_regression = validate_compare_options(
            args.alpha, args.max_regression, alpha_option="--alpha",
            max_regression_option="--max-regression")
    except ConfigError as exc:
        raise _Usage(str(exc)) from None
    if args.max_cases < 0:
        raise _Usage(f"--max-cases: expected a number of cases >= 0, got {args.max_cases}")
    old = read_results(args.old)
    new = read_results(args.new)
    comparison = compare_runs(old, new, alpha=alpha, max_regression=max_regression, seed=args.seed,
                              allow_unpaired=args.allow_unpaired)
    if args.json:
        _print_compare_json(args, new, comparison, old)
    else:
        print(comparison.format_text(max_cases=args.max_cases))
        _write_reports(args, new, comparison, old)
    return EXIT_OK if comparison.passed else EXIT_FAILED


def _print_compare_json(args: argparse.Namespace, run: Any, comparison: Any, baseline: Any) -> None:
    """``compare --json``: the document alone on stdout (report messages go to stderr)."""
    import contextlib
    import json

    from pytest_llmeval.report.compare_json import compare_json

    print(json.dumps(compare_json(comparison, args.old, args.new), indent=2, ensure_ascii=False))
    with contextlib.redirect_stdout(sys.stderr):
        _write_reports(args, run, comparison, baseline)


def _write_reports(args: argparse.Namespace, run: Any, comparison: Any, baseline: Any) -> None:
    """``--html`` / ``--markdown`` of a run, with its comparison when there is one."""
    from pytest_llmeval.fileio import write_atomic

    if args.html:
        from pytest_llmeval.report.html import write_html

        write_html(run, args.html, comparison=comparison, baseline=baseline)
        print(f"HTML report written to {args.html}")
    if args.markdown:
        from pytest_llmeval.report.markdown import render_markdown

        write_atomic(args.markdown, render_markdown(run, comparison), what="Markdown summary")
        print(f"Markdown summary written to {args.markdown}")


def _report(args: argparse.Namespace) -> int:
    from pytest_llmeval.fileio import read_results

    run = read_results(args.results)
    baseline = read_results(args.baseline) if args.baseline else None
    comparison = None
    if baseline is not None:
        from pytest_llmeval.compare import compare_runs

        comparison = compare_runs(baseline, run, allow_unpaired=args.allow_unpaired)
    _write_reports(args, run, comparison, baseline)
    if not args.html and not args.markdown:
        from pytest_llmeval.report.markdown import render_markdown

        print(render_markdown(run, comparison))
    failed = any(a.verdict in ("fail", "error", "xpass") for s in run.suites for a in s.aggregates)
    return EXIT_FAILED if failed or (comparison is not None and not comparison.passed) else EXIT_OK


def _merge(args: argparse.Namespace) -> int:
    """``llmeval merge``: the shards' results files as one run (split suites' gates recomputed).

    As in a pytest run, a gate that could not be evaluated is an ERROR in strict mode (``CI`` set
    or ``--strict``; ``--no-strict`` to override), so a merged run never passes on a gate that did
    not run; the results file written records the same verdict the exit code reports.
    """
    import os

    from pytest_llmeval import numbers
    from pytest_llmeval.merge import merge_files
    from pytest_llmeval.sanitize import display

    run = merge_files(args.results, rootdir=args.rootdir)
    strict = bool(os.environ.get("CI")) if args.strict is None else args.strict
    gates = [(s, a) for s in run.suites for a in s.aggregates]
    for _suite, agg in gates:
        if strict and agg.skip:
            agg.error = (f"not evaluated: {agg.skip} (strict mode: the CI environment variable is set or "
                         f"--strict was given; pass --no-strict to skip instead)")
            agg.skip = None
    run.save(args.output)
    for suite, agg in gates:
        ci = f" {numbers.interval(*agg.ci)}" if agg.ci else ""
        print(f"{display(suite.name, 60, multiline=False)}::{display(agg.name, 60, multiline=False)} "
              f"{numbers.number(agg.value)}{ci} n={agg.n} {agg.verdict.upper()}")
    print(f"merged {len(args.results)} results files: {len(run.suites)} suites, "
          f"{sum(len(s.cases) for s in run.suites)} cases, {len(gates)} gates; written to {args.output}")
    _write_reports(args, run, None, None)
    failed = any(a.verdict in ("fail", "error", "xpass") for _, a in gates)
    return EXIT_FAILED if failed else EXIT_OK


def _add_merge_parser(sub: Any) -> None:
    p = sub.add_parser("merge", epilog=EPILOG,
                       help="merge the results files of sharded runs into one (exit 1 if a gate fails)")
    p.add_argument("results", nargs="+", help="every shard's results file")
    p.add_argument("-o", "--output", required=True, help="the merged results file to write")
    p.add_argument("--rootdir", default=".",
                   help="the run's rootdir, where the suite files of split suites are (default: here)")
    p.add_argument("--html", default=None, help="also write an HTML report of the merged run")
    p.add_argument("--markdown", default=None, help="also write a Markdown summary")
    p.add_argument("--strict", action="store_true", default=None,
                   help="a gate that could not be evaluated is an ERROR (the default when CI is set)")
    p.add_argument("--no-strict", action="store_false", dest="strict",
                   help="a gate that could not be evaluated is SKIP and does not fail the merge")
    p.set_defaults(func=_merge)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmeval", description=__doc__.splitlines()[0], epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("compare", epilog=EPILOG,
                       help="compare two results files; exit 1 on a significant regression")
    p.add_argument("old", help="the baseline results file (e.g. main's)")
    p.add_argument("new", help="the results file to check")
    p.add_argument("--alpha", type=float, default=None,
                   help="significance level, between 0 and 1 (default 0.05, Holm-corrected)")
    p.add_argument("--max-regression", type=float, default=None,
                   help="also fail when a gate drops by more than this (>= 0, in the gate's units)")
    p.add_argument("--allow-unpaired", action="store_true",
                   help="pass gates whose cases cannot be paired (ids changed, all errored, new and "
                        "in ERROR) instead of failing them")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-cases", type=int, default=5, help="cases shown per changed gate")
    p.add_argument("--html", default=None,
                   help="also write an HTML report of the new run with the comparison")
    p.add_argument("--markdown", default=None, help="also write a Markdown summary")
    p.add_argument("--json", action="store_true",
                   help="print the comparison as JSON (schema: pytest_llmeval/report/compare.schema.json) "
                        "instead of text; the exit code is the same")
    p.set_defaults(func=_compare)

    p = sub.add_parser("report", epilog=EPILOG, help="render a results file as HTML or Markdown")
    p.add_argument("results")
    p.add_argument("--baseline", default=None, help="an earlier results file to compare against")
    p.add_argument("--allow-unpaired", action="store_true",
                   help="with --baseline: gates that cannot be paired are not failures")
    p.add_argument("--html", default=None)
    p.add_argument("--markdown", default=None)
    p.set_defaults(func=_report)

    p = sub.add_parser("schema", help="print the JSON Schema of suite files (for editors)")
    p.add_argument("-o", "--output", default=None, help="write it to this file instead of stdout")
    p.set_defaults(func=_schema)

    _add_merge_parser(sub)
    from pytest_llmeval import cache_cli

    cache_cli.add_parser(sub)
    from pytest_llmeval.contamination import cli as contamination_cli

    contamination_cli.add_parser(sub)
    from pytest_llmeval.human import cli as human_cli

    human_cli.add_parsers(sub)
    from pytest_llmeval.viewer import cli as viewer_cli

    viewer_cli.add_parser(sub)
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
    """Run the command; return its exit code (argparse exits with 2 itself on a malformed command line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        from pytest_llmeval.contamination import cli as contamination_cli

        return int(contamination_cli.run(args))
    try:
        return int(func(args))
    except (_Usage, LLMEvalError) as exc:
        print(f"llmeval {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
