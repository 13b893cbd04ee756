"""``llmeval cache``: look after the cache of generations and verdicts.

::

    llmeval cache stats                               # entries and bytes per namespace, size on disk
    llmeval cache prune --max-size 2GB --older-than 30d
    llmeval cache clear
    llmeval cache export cache.tar.gz                 # for a CI artifact
    llmeval cache import cache.tar.gz                 # never replaces newer entries

``--cache DIR`` names the cache directory (default: ``.llmeval_cache`` here, as pytest's
``--llmeval-cache``), or the ``cache.sqlite3`` file itself.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import CacheError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``cache`` and its subcommands."""
    parser = subparsers.add_parser("cache", help="cache housekeeping: stats, prune, clear, export, import",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cache_command", required=True)

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--cache", default=".llmeval_cache", metavar="DIR",
                       help="the cache directory or its cache.sqlite3 (default: .llmeval_cache)")
        return p

    p = common(sub.add_parser("stats", help="entries, bytes and ages"))
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=_stats)
    p = common(sub.add_parser("prune", help="remove old or least recently used entries"))
    p.add_argument("--max-size", default=None, help="keep at most this much (2GB, 500MB, 1.5GiB)")
    p.add_argument("--older-than", default=None, help="remove entries unused for this long (30d, 12h)")
    p.add_argument("--no-vacuum", action="store_true",
                   help="do not give the freed space back to the file system (faster; SQLite reuses it)")
    p.set_defaults(func=_prune)
    p = common(sub.add_parser("clear", help="remove every entry"))
    p.set_defaults(func=_clear)
    p = common(sub.add_parser("export", help="write the entries to a .tar.gz with a manifest and checksum"))
    p.add_argument("file")
    p.set_defaults(func=_export)
    p = common(sub.add_parser("import", help="add an exported archive's entries (verified first)"))
    p.add_argument("file")
    p.set_defaults(func=_import)
    return parser


def _path(args: argparse.Namespace) -> Path:
    p = Path(args.cache)
    return p if p.suffix in (".sqlite3", ".sqlite", ".db") else p / "cache.sqlite3"


def _open(args: argparse.Namespace, *, create: bool = False) -> Any:
    from pytest_llmeval.cache import Cache

    path = _path(args)
    if not create and not path.exists():
        raise CacheError(f"no cache at {path} (give its directory with --cache DIR)")
    return Cache(path, mode="rw")


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def _stats(args: argparse.Namespace) -> int:
    from pytest_llmeval.cache import Cache, format_size

    path = _path(args)
    if not path.exists():
        raise CacheError(f"no cache at {path} (give its directory with --cache DIR)")
    with Cache(path, mode="ro") as cache:
        st = cache.stats()
    if args.json:
        print(json.dumps(st.to_dict(), indent=2))
        return 0
    print(f"cache {st.path}: {st.entries} entries, {format_size(st.bytes)} of entries, "
          f"{format_size(st.disk_bytes)} on disk")
    for ns, row in st.namespaces.items():
        print(f"  {ns:<12} {row['entries']:>9} entries  {format_size(row['bytes']):>10}")
    print(f"  oldest entry {_when(st.oldest)}, newest {_when(st.newest)}, "
          f"least recently used {_when(st.least_recently_used)}")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from pytest_llmeval.cache import format_size, parse_age, parse_size

    if args.max_size is None and args.older_than is None:
        raise CacheError("prune: give --max-size SIZE and/or --older-than AGE")
    max_bytes = parse_size(args.max_size, "--max-size") if args.max_size is not None else None
    age = parse_age(args.older_than, "--older-than") if args.older_than is not None else None
    with _open(args) as cache:
        res = cache.prune(max_bytes=max_bytes, older_than_s=age, vacuum=not args.no_vacuum)
    print(f"removed {res.removed} entries ({format_size(res.removed_bytes)}); kept {res.kept} "
          f"({format_size(res.kept_bytes)})")
    return 0


def _clear(args: argparse.Namespace) -> int:
    with _open(args) as cache:
        n = cache.clear()
    print(f"removed {n} entries")
    return 0


def _export(args: argparse.Namespace) -> int:
    from pytest_llmeval.cache import format_size

    with _open(args) as cache:
        info = cache.export(args.file)
    print(f"exported {info.entries} entries ({format_size(info.bytes)} uncompressed) to {info.path}")
    return 0


def _import(args: argparse.Namespace) -> int:
    with _open(args, create=True) as cache:
        res = cache.import_archive(args.file)
    print(f"imported {args.file}: {res.added} added, {res.replaced} replaced older entries, "
          f"{res.kept_newer} kept (already as new or newer)")
    return 0
