"""Content fingerprints of local checkpoints, cheap enough to compute on every run.

A fingerprint must change whenever the weights, the adapter or the tokenizer
change, and should stay the same on a fresh clone of a repository that commits
its models, so that a warm cache keeps working. The trade-off:

- files up to ``FULL_HASH_LIMIT`` bytes (configs, tokenizers, small or medium
  checkpoints) are hashed in full with xxhash (several GB/s): exact and
  independent of the file's mtime;
- larger files are identified by their size, their mtime and, for
  ``.safetensors``, the JSON header (tensor names, shapes, dtypes, offsets).
  Reading a multi-GB checkpoint is avoided, at the price that touching the file
  (a fresh download or checkout) changes the fingerprint: a cold cache, never a
  stale one;
- files in a Hugging Face hub cache are symlinks to blobs named after their
  content hash (the etag), which is used directly at no cost.

Only standard library and ``xxhash`` (a core dependency) are imported here.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from collections.abc import Iterable
from pathlib import Path

import xxhash

FULL_HASH_LIMIT = 256 * 1024 * 1024
"""Files up to this size are hashed in full; larger ones by size, mtime and header."""

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "vocab.txt", "merges.txt", "tokenizer.model", "spiece.model",
    "chat_template.jinja", "chat_template.json",
)
CONFIG_FILES = ("config.json", "generation_config.json", "adapter_config.json")
_CHUNK = 1 << 22


def safetensors_header(path: Path) -> bytes:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes, offsets)."""
    with path.open("rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            return b""
        (length,) = struct.unpack("<Q", raw)
        if length > 100 * 1024 * 1024:  # not a safetensors file: do not read gigabytes
            return b""
        return f.read(length)


def file_digest(path: Path, full_hash_limit: int = FULL_HASH_LIMIT) -> str:
    """A digest of one file's content (see the module docstring for the large-file shortcut)."""
    if path.is_symlink():
        blob = Path(os.path.realpath(path))
        if blob.parent.name == "blobs":
            return "etag:" + blob.name
    stat = path.stat()
    if stat.st_size <= full_hash_limit:
        h = xxhash.xxh3_128()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        return "xxh3:" + h.hexdigest()
    h = xxhash.xxh3_128()
    h.update(f"{stat.st_size}:{stat.st_mtime_ns}".encode())
    if path.suffix == ".safetensors":
        h.update(safetensors_header(path))
    return "stat:" + h.hexdigest()


def files_digest(root: Path, files: Iterable[Path], full_hash_limit: int = FULL_HASH_LIMIT) -> str:
    """One digest over several files, keyed by their paths relative to ``root``."""
    parts = {str(p.relative_to(root).as_posix()): file_digest(p, full_hash_limit)
             for p in sorted(files)}
    blob = json.dumps(parts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def weight_files(directory: Path) -> list[Path]:
    """Checkpoint files and model configs of a model or adapter directory."""
    return sorted(p for p in directory.iterdir() if p.is_file() and (
        p.suffix in WEIGHT_SUFFIXES or p.name in CONFIG_FILES or p.name.endswith(".index.json")))


def tokenizer_files(directory: Path) -> list[Path]:
    """The files a tokenizer is loaded from, including its chat template."""
    return sorted(p for p in directory.iterdir() if p.is_file() and p.name in TOKENIZER_FILES)


def directory_fingerprint(directory: Path,
                          full_hash_limit: int = FULL_HASH_LIMIT) -> dict[str, str]:
    """``{"weights": ..., "tokenizer": ...}`` digests of a model (or adapter) directory."""
    out = {"weights": files_digest(directory, weight_files(directory), full_hash_limit)}
    tok = tokenizer_files(directory)
    if tok:
        out["tokenizer"] = files_digest(directory, tok, full_hash_limit)
    return out
