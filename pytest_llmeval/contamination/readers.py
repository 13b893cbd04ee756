"""Training and eval inputs: files and globs, JSONL / text / parquet, plain, ``.gz`` or ``.zst``.

Plain files are cut into byte-range shards so several processes (or Dask workers) can
read one file; each shard owns the lines that *start* inside its range. Compressed
files cannot be seeked, so each is one shard. Parquet shards are row groups.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pytest_llmeval.errors import ConfigError, MissingDependency, SpecError

BLOCK_BYTES = 1 << 20
FAST_BLOCK_BYTES = 8 << 20
"""Blocks read for the pyarrow fast path: each kernel call has a fixed cost (the regex
compiled, the vocabulary's hash set built), which 1 MB blocks paid 50 times per 50 MB
(mixed-script JSONL: 35-39 MB/s at 1 MB, 47-49 MB/s at 8 MB on one core). A block the
fast path refuses is parsed in Python in pieces of ``BLOCK_BYTES``."""
_TEXT_SUFFIXES = {".txt", ".text", ".md"}
_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}


@dataclass(frozen=True)
class Shard:
    """A unit of work: a byte range of a plain file, a whole compressed file, or a row group."""

    file_index: int
    path: str
    fmt: str  # "jsonl" | "text" | "parquet"
    compression: str | None  # "gz" | "zst" | None
    start: int
    end: int
    size: int  # bytes this shard covers (for progress)


@dataclass(frozen=True)
class Block:
    """Records read together: their 0-based line (or row) numbers within the shard and texts."""

    lines: list[int]
    texts: list[str]
    nbytes: int
    n_lines: int


def expand(patterns: str | Sequence[str], base_dir: Path | None = None,
           option: str = "train") -> list[Path]:
    """Resolve files and globs (relative to ``base_dir``) to a sorted, de-duplicated list."""
    if isinstance(patterns, str):
        patterns = [patterns]
    base = base_dir or Path.cwd()
    out: list[Path] = []
    for pat in patterns:
        full = pat if os.path.isabs(pat) else str(base / pat)
        if glob.has_magic(full):
            hits = sorted(Path(p) for p in glob.glob(full, recursive=True) if os.path.isfile(p))
            if not hits:
                raise ConfigError(f"{option}: the pattern {pat!r} matches no file (looked in "
                                  f"{base}); fix the path or the glob")
            out.extend(hits)
        elif os.path.isfile(full):
            out.append(Path(full))
        else:
            raise ConfigError(f"{option}: file {pat!r} not found (looked for {full}, relative "
                              f"to {base}); fix the path")
    return list(dict.fromkeys(out))


def detect_format(path: Path) -> tuple[str, str | None]:
    """``(format, compression)`` from the file name, e.g. ``data.jsonl.zst -> (jsonl, zst)``."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = None
    if suffixes and suffixes[-1] in (".gz", ".zst"):
        compression = suffixes.pop()[1:]
    last = suffixes[-1] if suffixes else ""
    if last == ".parquet":
        if compression:
            raise ConfigError(f"{path}: compressed parquet files are not supported; parquet "
                              "compresses internally, so store it uncompressed")
        return "parquet", None
    if last in _JSONL_SUFFIXES:
        return "jsonl", compression
    if last in _TEXT_SUFFIXES or last == "":
        return "text", compression
    raise ConfigError(f"{path}: unknown file type {last!r}; use .jsonl, .txt or .parquet "
                      "(optionally .gz / .zst)")


def plan_shards(paths: Sequence[Path], shard_bytes: int) -> list[Shard]:
    """Cut the inputs into shards of about ``shard_bytes`` bytes, in file order."""
    shards: list[Shard] = []
    for i, path in enumerate(paths):
        fmt, comp = detect_format(path)
        size = path.stat().st_size
        if fmt == "parquet":
            pf = parquet_file(path)
            for g in range(pf.num_row_groups):
                rg = pf.metadata.row_group(g)
                shards.append(Shard(i, str(path), fmt, None, g, g + 1, rg.total_byte_size))
        elif comp is not None or size <= shard_bytes:
            shards.append(Shard(i, str(path), fmt, comp, 0, size, size))
        else:
            for start in range(0, size, shard_bytes):
                end = min(size, start + shard_bytes)
                shards.append(Shard(i, str(path), fmt, None, start, end, end - start))
    return shards


def _gather_strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for v in value.values():
            _gather_strings(v, out)
    elif isinstance(value, list):
        for v in value:
            _gather_strings(v, out)


def record_text(record: Any, fields: Sequence[str] | None) -> str:
    """The text of one record: the chosen fields joined by a space (all strings if none chosen).

    Nested values (chat ``messages`` lists, dicts) contribute every string inside them;
    missing fields contribute nothing, as ``dict.get(field, "")`` does in the lesson.
    """
    parts: list[str] = []
    if fields is None:
        _gather_strings(record, parts)
    elif isinstance(record, dict):
        for f in fields:
            v = record.get(f)
            if v is not None:
                _gather_strings(v, parts)
    return " ".join(parts)


def _open_stream(path: str, compression: str | None) -> IO[bytes]:
    if compression == "gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if compression == "zst":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True)
    return open(path, "rb")


def _line_number_at(path: str, offset: int) -> int:
    """0-based line number of the line starting at byte ``offset`` (used only for errors)."""
    count = 0
    with open(path, "rb") as f:
        remaining = offset
        while remaining > 0:
            data = f.read(min(remaining, BLOCK_BYTES))
            if not data:
                break
            count += data.count(b"\n")
            remaining -= len(data)
    return count


def raw_blocks(shard: Shard, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, data)`` blocks of whole lines starting in the shard's range."""
    with _open_stream(shard.path, shard.compression) as f:
        pos = 0
        if shard.compression is None and shard.start > 0:
            f.seek(shard.start - 1)
            pos = shard.start
            if f.read(1) != b"\n":
                pos += len(f.readline())
        end = shard.end if shard.compression is None else None
        while end is None or pos < end:
            data = f.read(block_bytes)
            if not data:
                return
            if not data.endswith(b"\n"):
                data += f.readline()
            if end is not None and pos + len(data) > end:
                cut = data.find(b"\n", end - pos - 1)
                data = data[: cut + 1] if cut >= 0 else data
                yield pos, data
                return
            yield pos, data
            pos += len(data)


def line_pieces(offset: int, data: bytes, piece_bytes: int = BLOCK_BYTES) -> Iterator[tuple[int, bytes]]:
    """``(byte offset, piece)`` cuts of a block of whole lines, each of whole lines and about
    ``piece_bytes`` (a longer line is one piece)."""
    start = 0
    while start < len(data):
        cut = data.find(b"\n", start + piece_bytes - 1)
        end = len(data) if cut < 0 else cut + 1
        yield offset + start, data[start:end]
        start = end


def parse_block(shard: Shard, fields: Sequence[str] | None, offset: int, data: bytes,
                line: int) -> Block:
    """The records of one raw block of a text or JSONL shard; ``line`` is its first line."""
    chunk = data.decode("utf-8", errors="replace").split("\n")
    if chunk and chunk[-1] == "":
        chunk.pop()
    lines: list[int] = []
    texts: list[str] = []
    if shard.fmt == "text":
        lines = list(range(line, line + len(chunk)))
        texts = chunk
    else:
        loads = json.loads
        for i, raw in enumerate(chunk):
            if not raw.strip():
                continue
            try:
                rec = loads(raw)
            except ValueError as exc:
                base = _line_number_at(shard.path, offset) if shard.compression is None \
                    else line
                raise SpecError(f"invalid JSON ({exc}); every line of a JSONL file must "
                                "be one JSON object", path=shard.path,
                                line=base + i + 1) from None
            lines.append(line + i)
            texts.append(record_text(rec, fields))
    return Block(lines, texts, len(data), len(chunk))


def iter_blocks(shard: Shard, fields: Sequence[str] | None,
                block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """Read a shard block by block; each block holds whole records and their line numbers."""
    if shard.fmt == "parquet":
        yield from _parquet_blocks(shard, fields)
        return
    line = 0
    for offset, data in raw_blocks(shard, block_bytes):
        block = parse_block(shard, fields, offset, data, line)
        line += block.n_lines
        yield block


def parquet_file(path: Path | str) -> Any:
    """A ``pyarrow.parquet.ParquetFile``, or MissingDependency without the parquet extra."""
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependency("pyarrow", "parquet", f"Reading {path}") from exc
    return pq.ParquetFile(str(path))


def parquet_columns(pf: Any, fields: Sequence[str] | None, path: str) -> list[str]:
    """The columns a scan reads: the chosen ones that exist, else every string column."""
    import pyarrow as pa

    schema = pf.schema_arrow
    if fields is None:
        return [f.name for f in schema if pa.types.is_string(f.type) or
                pa.types.is_large_string(f.type)]
    missing = [f for f in fields if f not in schema.names]
    if missing and len(missing) == len(fields):
        raise ConfigError(f"{path}: none of the fields {list(fields)} is a column "
                          f"(columns: {schema.names}); fix train_fields")
    return [f for f in fields if f in schema.names]


def _parquet_blocks(shard: Shard, fields: Sequence[str] | None) -> Iterator[Block]:
    pf = parquet_file(shard.path)
    cols = parquet_columns(pf, fields, shard.path)
    table = pf.read_row_group(shard.start, columns=cols)
    columns = [table.column(c).to_pylist() for c in cols]
    texts = []
    for row in zip(*columns, strict=True):
        parts: list[str] = []
        for v in row:
            _gather_strings(v, parts)
        texts.append(" ".join(parts))
    yield Block(list(range(table.num_rows)), texts, shard.size, table.num_rows)


def read_records(path: Path, fields: Sequence[str] | None) -> Iterator[tuple[int, dict[str, Any],
                                                                             str]]:
    """Eval-side records of one file: ``(1-based line, record, text)``; text files give
    ``{"text": line}`` records."""
    fmt, comp = detect_format(path)
    if fmt == "parquet":
        table = parquet_file(path).read()
        for i, rec in enumerate(table.to_pylist()):
            yield i + 1, rec, record_text(rec, fields)
        return
    record: Any
    with _open_stream(str(path), comp) as raw:
        for i, line in enumerate(io.TextIOWrapper(raw, encoding="utf-8", errors="replace")):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if fmt == "text":
                record = {"text": line}
            else:
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise SpecError(f"invalid JSON ({exc})", path=str(path), line=i + 1) from None
                if not isinstance(record, dict):
                    raise SpecError("expected a JSON object per line", path=str(path), line=i + 1)
            yield i + 1, record, record_text(record, fields)
