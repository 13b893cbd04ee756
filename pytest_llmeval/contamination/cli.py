"""``llmeval contamination``: scan training files against eval files from the command line.

Exit codes: 0 clean (within the limit), 1 contamination above the limit, 2 usage or
input error (message on stderr).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pytest_llmeval.contamination.clean import write_clean
from pytest_llmeval.contamination.engines import ENGINES, scan
from pytest_llmeval.contamination.gate import DEFAULT_N, outcome
from pytest_llmeval.contamination.index import EvalCase, EvalIndex
from pytest_llmeval.contamination.normalize import Normalizer, make_tokenizer
from pytest_llmeval.contamination.readers import expand, read_records
from pytest_llmeval.contamination.scanner import ScanOptions
from pytest_llmeval.errors import LLMEvalError


def _fields(value: str | None) -> tuple[str, ...] | None:
    return tuple(f.strip() for f in value.split(",") if f.strip()) if value else None


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's options to ``parser``."""
    parser.add_argument("--train", nargs="+", required=True, metavar="PATH",
                        help="training files or globs (JSONL, text, parquet; .gz/.zst)")
    parser.add_argument("--eval", nargs="+", required=True, metavar="PATH",
                        help="eval case files or globs (JSONL, text, parquet)")
    parser.add_argument("-n", "--n", type=int, default=DEFAULT_N,
                        help=f"n-gram length in tokens (default {DEFAULT_N}; the lesson uses 8)")
    parser.add_argument("--fields", help="eval fields to check, comma-separated "
                        "(default: every string field)")
    parser.add_argument("--train-fields", help="training fields, comma-separated "
                        "(default: every string field)")
    parser.add_argument("--id-field", default="id", help="eval field holding the case id")
    parser.add_argument("--no-lowercase", action="store_true", help="keep case")
    parser.add_argument("--nfkc", action="store_true", help="apply Unicode NFKC")
    parser.add_argument("--strip-punctuation", action="store_true",
                        help="delete characters that are not letters, digits or spaces")
    parser.add_argument("--tokenizer", default="whitespace",
                        help="'whitespace' or a local tokenizer.json (or its directory)")
    parser.add_argument("--min-overlap", type=float, default=0.0,
                        help="fraction of a case's n-grams that must match (default: any)")
    parser.add_argument("--max-doc-freq", type=int, default=None,
                        help="ignore n-grams found in more than K training records")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("--max-contaminated", type=int, default=None,
                       help="contaminated cases allowed before exiting 1 (default 0)")
    limit.add_argument("--max-contaminated-fraction", type=float, default=None,
                       help="fraction of contaminated cases allowed")
    parser.add_argument("--max-sources", type=int, default=5, help="sources kept per case")
    parser.add_argument("--engine", choices=ENGINES, default="local")
    parser.add_argument("--scheduler", help="Dask scheduler address (default: a local cluster)")
    parser.add_argument("-j", "--workers", type=int, default=None,
                        help="processes (local) or local Dask workers (default: all cores)")
    parser.add_argument("--json", type=Path, help="write the full report as JSON here")
    parser.add_argument("--write-clean", type=Path, metavar="OUT",
                        help="write the eval cases without the contaminated ones (one "
                             "--eval file, JSONL)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress with MB/s (default: on a terminal)")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the summary")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``contamination`` subcommand on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "contamination", help="n-gram overlap between training data and eval cases",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(parser)
    parser.set_defaults(func=run)
    return parser


def _load_cases(paths: list[Path], fields: tuple[str, ...] | None,
                id_field: str) -> list[EvalCase]:
    cases = []
    for path in paths:
        for line, record, text in read_records(path, fields):
            cid = record.get(id_field)
            origin = f"{path}:{line}"
            cases.append(EvalCase(str(cid) if cid is not None else origin, text, origin))
    return cases


def run(args: argparse.Namespace) -> int:
    """Run the scan described by ``args``; returns the exit code."""
    try:
        if args.n < 1:
            raise LLMEvalError(f"--n must be at least 1, got {args.n}")
        if not 0.0 <= args.min_overlap <= 1.0:
            raise LLMEvalError(f"--min-overlap must be between 0 and 1, got {args.min_overlap}")
        train = expand(args.train, option="--train")
        evals = expand(args.eval, option="--eval")
        if args.write_clean and len(evals) != 1:
            raise LLMEvalError("--write-clean needs exactly one --eval file")
        normalizer = Normalizer(lowercase=not args.no_lowercase, nfkc=args.nfkc,
                                strip_punctuation=args.strip_punctuation)
        cases = _load_cases(evals, _fields(args.fields), args.id_field)
        index = EvalIndex(cases, make_tokenizer(args.tokenizer, normalizer), args.n)
        options = ScanOptions(_fields(args.train_fields), args.min_overlap, args.max_doc_freq,
                              args.max_sources)
        report = scan(index, train, options, engine=args.engine, workers=args.workers,
                      scheduler=args.scheduler, progress=args.progress,
                      settings={"fields": args.fields, "eval_files": [str(p) for p in evals]})
        verdict = outcome(report, args.max_contaminated, args.max_contaminated_fraction)
        if args.json:
            report.write_json(args.json, verdict.details)
        if args.write_clean:
            kept = write_clean(evals[0], report, args.write_clean)
            print(f"wrote {kept} clean cases to {args.write_clean}")
    except (LLMEvalError, OSError) as exc:
        print(f"llmeval contamination: error: {exc}", file=sys.stderr)
        return 2
    mb = report.bytes_scanned / 1e6
    print(report.describe(limit=0 if args.quiet else 20))
    print(f"scanned {mb:,.1f} MB, {report.records_scanned:,} records in {report.seconds:.1f} s "
          f"({mb / max(report.seconds, 1e-9):,.1f} MB/s, engine {report.engine})")
    if not verdict.passed:
        print(verdict.message.split(":", 1)[0], file=sys.stderr)
    return 0 if verdict.passed else 1


def main(argv: list[str] | None = None) -> int:
    """Standalone entry point: ``python -m pytest_llmeval.contamination.cli``."""
    parser = argparse.ArgumentParser(prog="llmeval contamination", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
