"""The ``llmeval view`` subcommand (its parser and its run)."""

from __future__ import annotations

import argparse
from typing import Any

from pytest_llmeval.errors import ConfigError


def add_parser(sub: Any) -> None:
    """Add ``view`` to the ``llmeval`` command's subparsers."""
    p = sub.add_parser("view", help="browse the runs of a folder of results files in a local web page "
                                    "(needs the 'view' extra)")
    p.add_argument("folder", nargs="?", default=".",
                   help="the folder holding results files (*.json, searched recursively; default: .)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8766)
    p.add_argument("--last", type=int, default=20, help="runs shown (default 20; ?last=N in the page)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pytest_llmeval.viewer.app import serve

    if args.last < 1:
        raise ConfigError(f"--last: expected a number of runs >= 1, got {args.last}")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port: expected a port between 1 and 65535, got {args.port}")
    serve(args.folder, host=args.host, port=args.port, last=args.last)
    return 0
