"""``llmeval blind create`` and ``llmeval annotate serve|export|report``: the blind human evaluation."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import LLMEvalError


def _fail(cmd: str, exc: BaseException) -> int:
    print(f"llmeval {cmd}: {exc}", file=sys.stderr)
    return 2


def _load_rubric(path: str | None) -> Any:
    from pytest_llmeval.human.blindset import DEFAULT_RUBRIC, Rubric

    if path is None:
        return DEFAULT_RUBRIC
    import yaml

    from pytest_llmeval.errors import ConfigError

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--rubric: cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--rubric: {path} is not valid YAML/JSON: {exc}") from None
    return Rubric.from_dict(data, f"--rubric {path}")


def blind_create(args: argparse.Namespace) -> int:
    from pytest_llmeval.human.blindset import (
        TOKENS_FILE,
        cases_from_results,
        create_blind_set,
        parse_raters,
        write_blind_set,
    )
    from pytest_llmeval.results import load_results

    try:
        raters = parse_raters(args.raters)
        rubric = _load_rubric(args.rubric)
        if args.llmeval_json and (args.model_results or args.baseline_results):
            raise LLMEvalError("give either --llmeval-json (one file with both outputs) or "
                               "--model-results and --baseline-results, not both")
        if args.llmeval_json:
            run = load_results(args.llmeval_json)
            cases, model, baseline, skipped = cases_from_results(run, args.suite)
            source = {"results": str(args.llmeval_json), "suite": args.suite}
        elif args.model_results and args.baseline_results:
            run = load_results(args.model_results)
            base = load_results(args.baseline_results)
            cases, model, baseline, skipped = cases_from_results(run, args.suite, baseline_run=base)
            source = {"model_results": str(args.model_results),
                      "baseline_results": str(args.baseline_results), "suite": args.suite}
        else:
            raise LLMEvalError("give --llmeval-json RESULTS (with baseline outputs), or "
                               "--model-results and --baseline-results")
        blind, mapping, tokens = create_blind_set(
            cases, model=model, baseline=baseline, raters=raters, per_item=args.per_item,
            sample=args.sample, seed=args.seed, rubric=rubric, source=source)
        out = write_blind_set(args.out, blind, mapping, tokens, force=args.force)
    except (LLMEvalError, OSError, ValueError) as exc:
        return _fail("blind create", exc)
    loads = ", ".join(f"{r} {len(q)}" for r, q in blind.queues.items())
    print(f"blind set {blind.set_id}: {len(blind.items)} items ({model} vs {baseline}), "
          f"{blind.per_item} raters per item; queues: {loads}")
    if skipped:
        print(f"  {len(skipped)} case(s) left out: an output is missing ({', '.join(skipped[:5])}"
              f"{' ...' if len(skipped) > 5 else ''})")
    print(f"  {out / 'blind_set.json'}   what the rating app serves")
    print(f"  {out / 'mapping.json'}     which output is which: keep it from raters")
    print(f"  {out / TOKENS_FILE}      each rater's secret link: send each rater only their own")
    print(f"next: llmeval annotate serve --blind-set {out}")
    return 0


def annotate_serve(args: argparse.Namespace) -> int:
    from pytest_llmeval.human.webapp import create_app, rater_links, serving_hosts

    try:
        app = create_app(args.blind_set, args.db, allowed_hosts=serving_hosts(args.host))
        import uvicorn
    except ImportError:
        return _fail("annotate serve", LLMEvalError(
            "the rating app needs the 'human' extra: pip install 'pytest-llmevals[human]'"))
    except (LLMEvalError, OSError) as exc:
        return _fail("annotate serve", exc)
    base = f"http://{args.host}:{args.port}"
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}, reachable from other machines; the app has no TLS, so "
              "put it behind an HTTPS proxy before sending links over a network", file=sys.stderr)
    print(f"rating app for blind set {app.state.blind.set_id} on {base} (Ctrl+C to stop); ratings -> "
          f"{app.state.store.path}", flush=True)
    for rater, link in rater_links(args.blind_set, base).items():
        print(f"  {rater}: {link}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


def _ratings_source(args: argparse.Namespace, blind_file: Path) -> Path:
    from pytest_llmeval.human.blindset import DB_FILE

    if getattr(args, "ratings", None):
        return Path(args.ratings)
    return Path(args.db or blind_file.parent / DB_FILE)


def annotate_export(args: argparse.Namespace) -> int:
    from pytest_llmeval.human.blindset import blind_set_path, load_blind_set
    from pytest_llmeval.human.storage import export_ratings, load_ratings

    try:
        blind_file = blind_set_path(args.blind_set)
        blind = load_blind_set(blind_file)
        ratings = load_ratings(_ratings_source(args, blind_file), blind)
        path = export_ratings(ratings, args.out, blind, args.format)
    except (LLMEvalError, OSError) as exc:
        return _fail("annotate export", exc)
    print(f"{len(ratings)} ratings written to {path}")
    return 0


def annotate_report(args: argparse.Namespace) -> int:
    from pytest_llmeval.human.analysis import analyse
    from pytest_llmeval.human.blindset import blind_set_path, load_blind_set, load_mapping
    from pytest_llmeval.human.storage import load_ratings

    try:
        blind_file = blind_set_path(args.blind_set)
        blind = load_blind_set(blind_file)
        mapping = load_mapping(args.mapping or blind_file.parent, blind)
        ratings = load_ratings(_ratings_source(args, blind_file), blind)
        if not ratings:
            raise LLMEvalError("no ratings yet")
        res = analyse(blind, mapping, ratings, confidence=args.confidence, seed=args.seed)
    except (LLMEvalError, OSError, ValueError) as exc:
        return _fail("annotate report", exc)
    print(res.format_text(max_items=args.max_items))
    if args.json:
        Path(args.json).write_text(json.dumps(res.to_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"JSON written to {args.json}")
    return 0


def add_parsers(subparsers: Any) -> None:
    """Register ``blind`` and ``annotate`` on the ``llmeval`` command's subparsers."""
    p = subparsers.add_parser("blind", help="blind human A/B evaluation sets")
    sub = p.add_subparsers(dest="blind_command", required=True)
    c = sub.add_parser("create", help="build a blind set (A/B order randomised per case) and rater tokens")
    c.add_argument("--llmeval-json", default=None,
                   help="a results file holding the model's and its baseline's outputs")
    c.add_argument("--model-results", default=None, help="or: the model's results file ...")
    c.add_argument("--baseline-results", default=None, help="... and the baseline's results file")
    c.add_argument("--suite", default=None, help="the suite to take (when the file has several)")
    c.add_argument("--out", required=True, help="directory to write the blind set into")
    c.add_argument("--raters", required=True, help="comma-separated rater names, e.g. alice,bob,carol")
    c.add_argument("--per-item", type=int, default=3, help="raters per item (default 3)")
    c.add_argument("--sample", type=int, default=None,
                   help="rate N cases only, stratified by category (default: all)")
    c.add_argument("--seed", type=int, default=0, help="seed of the sample, the A/B orders and the queues")
    c.add_argument("--rubric", default=None,
                   help="YAML/JSON rubric {criteria: [{name, question, low, high}], preference: ...} "
                        "(default: accuracy, relevance, format compliance, fluency on 1-5)")
    c.add_argument("--force", action="store_true", help="replace an existing blind set in --out")
    c.set_defaults(func=blind_create)

    p = subparsers.add_parser("annotate", help="collect and analyse human ratings of a blind set")
    sub = p.add_subparsers(dest="annotate_command", required=True)
    s = sub.add_parser("serve", help="run the rating web app")
    s.add_argument("--blind-set", required=True, help="the blind set directory")
    s.add_argument("--db", default=None, help="ratings database (default: ratings.db in the blind set)")
    s.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8765)
    s.set_defaults(func=annotate_serve)

    e = sub.add_parser("export", help="export ratings to CSV or JSONL")
    e.add_argument("--blind-set", required=True)
    e.add_argument("--db", default=None, help="ratings database (default: ratings.db in the blind set)")
    e.add_argument("--out", required=True, help="file to write (.csv or .jsonl)")
    e.add_argument("--format", choices=("csv", "jsonl"), default=None, help="default: from --out's suffix")
    e.set_defaults(func=annotate_export)

    r = sub.add_parser("report", help="agreement, and the unblinded win rate and criterion means")
    r.add_argument("--blind-set", required=True)
    r.add_argument("--ratings", default=None, help="ratings.db or a CSV/JSONL export (default: the blind "
                                                   "set's ratings.db)")
    r.add_argument("--db", default=None, help=argparse.SUPPRESS)
    r.add_argument("--mapping", default=None, help="default: mapping.json in the blind set")
    r.add_argument("--confidence", type=float, default=0.95)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--max-items", type=int, default=10, help="high-disagreement items listed")
    r.add_argument("--json", default=None, help="also write the numbers as JSON")
    r.set_defaults(func=annotate_report)
