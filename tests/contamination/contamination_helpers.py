"""Helpers for the contamination tests: the lesson's baseline and a data generator."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any


def lesson_check(train: list[dict[str, Any]], evals: list[dict[str, Any]], n: int = 8) -> list[int]:
    """The lesson's set-of-n-grams check, re-implemented: indexes of overlapping eval cases."""

    def grams(text: str) -> set[tuple[str, ...]]:
        words = text.lower().split()
        return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}

    seen: set[tuple[str, ...]] = set()
    for ex in train:
        seen |= grams(ex.get("instruction", "") + " " + ex.get("output", ""))
    return [i for i, ex in enumerate(evals)
            if grams(ex.get("instruction", "") + " " + ex.get("output", "")) & seen]


WORDS = [f"w{i}" for i in range(300)] + ["The", "cat", "SAT", "on", "a", "mat", "ünï", "ΣΑΣ"]


def sentence(rng: random.Random, k: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(k))


def make_data(seed: int, n_train: int = 400, n_eval: int = 60, plant: int = 15,
              n: int = 8) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Random train/eval records with some eval text planted into training records."""
    rng = random.Random(seed)
    evals = [{"id": f"e{i}", "instruction": sentence(rng, rng.randint(3, 20)),
              "output": sentence(rng, rng.randint(0, 25))} for i in range(n_eval)]
    train = [{"instruction": sentence(rng, rng.randint(5, 30)),
              "output": sentence(rng, rng.randint(5, 60))} for _ in range(n_train)]
    for _ in range(plant):
        ev = rng.choice(evals)
        words = (ev["instruction"] + " " + ev["output"]).split()
        size = rng.randint(max(1, n - 2), n + 3)
        start = rng.randint(0, max(0, len(words) - size))
        piece = " ".join(words[start:start + size])
        if rng.random() < 0.5:
            piece = piece.upper()
        tr = rng.choice(train)
        key = rng.choice(["instruction", "output"])
        if rng.random() < 0.3:  # straddle the instruction/output boundary
            tr["output"] = piece + " " + tr["output"]
        else:
            tr[key] = tr[key] + "  \t" + piece + " " + sentence(rng, 2)
    return train, evals


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path
