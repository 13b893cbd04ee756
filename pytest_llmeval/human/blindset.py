"""Blind sets: a sample of cases, each with two outputs in a random order, for people to rate.

A blind set is a directory of three files, written by ``llmeval blind create``:

- ``blind_set.json``: what the rating app serves. Per item the case id, the prompt and a
  hash of it, the reference, the category and the two outputs as "A" and "B"; the
  rubric; each rater's queue and a hash of their token (never the token itself).
- ``mapping.json``: which of A and B is the model and which the baseline, and a hash of
  every output. Only the report and the gates read it; the rating app never opens it,
  so no request can reveal it.
- ``tokens.json``: each rater's secret token (file mode 0600), for the operator to send
  out as links. A token is 32 random bytes; the app compares hashes only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pytest_llmeval.errors import ConfigError

BLIND_SET_VERSION = 1
BLIND_FILE = "blind_set.json"
MAPPING_FILE = "mapping.json"
TOKENS_FILE = "tokens.json"
DB_FILE = "ratings.db"
PREFERENCES = ("A", "B", "tie")
Side = Literal["model", "baseline"]


def text_hash(value: Any) -> str:
    """SHA-256 of a prompt or output: text as UTF-8, chat messages as canonical JSON."""
    blob = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False,
                                                            separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Criterion:
    """One rubric criterion, scored per output on an integer scale."""

    name: str
    question: str
    low: int = 1
    high: int = 5

    @property
    def scale(self) -> list[int]:
        return list(range(self.low, self.high + 1))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "question": self.question, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Rubric:
    """The criteria every output is scored on, plus an overall preference and a free comment."""

    criteria: tuple[Criterion, ...]
    preference: str = "Overall, which response is better?"

    def to_dict(self) -> dict[str, Any]:
        return {"criteria": [c.to_dict() for c in self.criteria], "preference": self.preference}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "rubric") -> Rubric:
        """Validate a rubric (from ``--rubric FILE`` or a blind set); names the bad field."""
        if not isinstance(d, Mapping) or not isinstance(d.get("criteria"), list) or not d["criteria"]:
            raise ConfigError(f"{where}: expected {{criteria: [{{name, question, low, high}}, ...]}} "
                              "with at least one criterion")
        crits: list[Criterion] = []
        for i, c in enumerate(d["criteria"]):
            if not isinstance(c, Mapping) or not isinstance(c.get("name"), str) or not c["name"].strip():
                raise ConfigError(f"{where}.criteria[{i}]: each criterion needs a 'name'")
            name = c["name"].strip()
            if not name.replace("_", "").isalnum():
                raise ConfigError(f"{where}.criteria[{i}]: name {name!r} must be letters, digits and _")
            low, high = c.get("low", 1), c.get("high", 5)
            if not (isinstance(low, int) and isinstance(high, int)) or isinstance(low, bool) \
                    or isinstance(high, bool) or not low < high or high - low > 10:
                raise ConfigError(f"{where}.criteria[{i}] ({name}): the scale must be integers "
                                  f"low < high, at most 11 points; got {low!r}..{high!r}")
            crits.append(Criterion(name, str(c.get("question") or name), low, high))
        names = [c.name for c in crits]
        if len(set(names)) != len(names) or "preference" in names:
            raise ConfigError(f"{where}: criterion names must be distinct and not 'preference'")
        return cls(tuple(crits), str(d.get("preference") or cls.preference))


DEFAULT_RUBRIC = Rubric((
    Criterion("accuracy", "Is the information correct?"),
    Criterion("relevance", "Does the response address the prompt?"),
    Criterion("format_compliance", "Does the output follow the required format?"),
    Criterion("fluency", "Is the language natural and well-written?"),
))


@dataclass(frozen=True)
class SourceCase:
    """One case with both outputs, before blinding."""

    id: str
    prompt: Any
    model_output: str
    baseline_output: str
    reference: Any = None
    category: str | None = None


@dataclass(frozen=True)
class BlindItem:
    """What a rater sees of one case: the outputs as A and B, nothing that says whose."""

    id: str
    prompt: Any
    prompt_hash: str
    output_a: str
    output_b: str
    reference: Any = None
    category: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "prompt": self.prompt, "prompt_hash": self.prompt_hash,
                "reference": self.reference, "category": self.category,
                "output_a": self.output_a, "output_b": self.output_b}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BlindItem:
        return cls(str(d["id"]), d["prompt"], str(d["prompt_hash"]), str(d["output_a"]),
                   str(d["output_b"]), d.get("reference"), d.get("category"))


@dataclass
class BlindSet:
    """The rater-facing half of a blind set (``blind_set.json``)."""

    set_id: str
    items: list[BlindItem]
    rubric: Rubric
    queues: dict[str, list[str]]
    token_hashes: dict[str, str]
    per_item: int
    seed: int
    created: str = ""
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def by_id(self) -> dict[str, BlindItem]:
        return {it.id: it for it in self.items}

    def rater_for_token(self, token: str) -> str | None:
        """The rater whose token this is (constant-time comparison of hashes), or None."""
        digest = token_hash(token)
        found = None
        for rater, h in self.token_hashes.items():
            if secrets.compare_digest(h, digest):
                found = rater
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"version": BLIND_SET_VERSION, "set_id": self.set_id, "created": self.created,
                "seed": self.seed, "per_item": self.per_item, "source": self.source,
                "rubric": self.rubric.to_dict(), "queues": self.queues,
                "token_sha256": self.token_hashes, "items": [it.to_dict() for it in self.items]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = BLIND_FILE) -> BlindSet:
        if d.get("version") != BLIND_SET_VERSION:
            raise ConfigError(f"{where}: not a blind set of version {BLIND_SET_VERSION} "
                              f"(version {d.get('version')!r}); recreate it with 'llmeval blind create'")
        try:
            return cls(str(d["set_id"]), [BlindItem.from_dict(x) for x in d["items"]],
                       Rubric.from_dict(d["rubric"], f"{where}: rubric"),
                       {str(k): [str(i) for i in v] for k, v in d["queues"].items()},
                       {str(k): str(v) for k, v in d["token_sha256"].items()},
                       int(d["per_item"]), int(d["seed"]), str(d.get("created", "")),
                       dict(d.get("source") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: malformed blind set ({type(exc).__name__}: {exc})") from None


@dataclass
class ABMapping:
    """The operator-only half (``mapping.json``): who is A, who is B, and output hashes."""

    set_id: str
    model: str
    baseline: str
    a_is: dict[str, Side]
    output_hashes: dict[str, dict[str, str]]

    def side(self, item_id: str, preference: str) -> str:
        """``model``, ``baseline`` or ``tie`` for a rater's ``A``/``B``/``tie``."""
        if preference == "tie":
            return "tie"
        a = self.a_is[item_id]
        if preference == "A":
            return a
        return "baseline" if a == "model" else "model"

    def to_dict(self) -> dict[str, Any]:
        return {"version": BLIND_SET_VERSION, "set_id": self.set_id, "model": self.model,
                "baseline": self.baseline, "a_is": self.a_is, "output_sha256": self.output_hashes}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = MAPPING_FILE) -> ABMapping:
        try:
            a_is = {str(k): v for k, v in d["a_is"].items()}
            bad = [k for k, v in a_is.items() if v not in ("model", "baseline")]
            if bad:
                raise ValueError(f"a_is[{bad[0]}] must be 'model' or 'baseline'")
            return cls(str(d["set_id"]), str(d["model"]), str(d["baseline"]), a_is,
                       {str(k): dict(v) for k, v in d["output_sha256"].items()})
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{where}: malformed mapping ({type(exc).__name__}: {exc})") from None


def stratified_sample(cases: Sequence[SourceCase], n: int, seed: int) -> list[SourceCase]:
    """``n`` cases, each category represented in proportion to its size (largest remainder).

    The result keeps file order, so a blind set reads like its suite.
    """
    if n <= 0:
        raise ConfigError(f"--sample must be a positive number of cases, got {n}")
    if n >= len(cases):
        return list(cases)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(cases):
        groups[c.category or ""].append(i)
    total = len(cases)
    quotas = {k: n * len(v) / total for k, v in groups.items()}
    take = {k: math.floor(q) for k, q in quotas.items()}
    # Hand out the remaining slots by largest remainder; ties broken by category name for determinism.
    for k in sorted(quotas, key=lambda k: (-(quotas[k] - take[k]), k))[:n - sum(take.values())]:
        take[k] += 1
    rng = random.Random(seed)
    chosen: list[int] = []
    for k in sorted(groups):
        chosen.extend(rng.sample(groups[k], take[k]))
    return [cases[i] for i in sorted(chosen)]


def assign(item_ids: Sequence[str], raters: Sequence[str], per_item: int, seed: int) -> dict[str, list[str]]:
    """Give each item to ``per_item`` raters, round-robin, so loads differ by at most one.

    Item ``i`` goes to raters ``i*k .. i*k + k-1`` (mod the number of raters). Each rater's
    queue is then shuffled (seeded) so that no item is always seen first or tired.
    """
    if per_item < 1:
        raise ConfigError(f"--per-item must be at least 1, got {per_item}")
    if per_item > len(raters):
        raise ConfigError(f"--per-item {per_item} is more than the {len(raters)} rater(s) named with "
                          "--raters: name more raters or lower --per-item")
    queues: dict[str, list[str]] = {r: [] for r in raters}
    for i, item in enumerate(item_ids):
        for j in range(per_item):
            queues[raters[(i * per_item + j) % len(raters)]].append(item)
    for r in raters:
        random.Random(f"{seed}:{r}").shuffle(queues[r])
    return queues


def parse_raters(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--raters: give at least one rater name, e.g. --raters alice,bob,carol")
    bad = [n for n in names if not n.replace("_", "").replace("-", "").isalnum() or len(n) > 40]
    if bad:
        raise ConfigError(f"--raters: {bad[0]!r} is not a valid name (letters, digits, - and _, "
                          "at most 40 characters)")
    if len(set(names)) != len(names):
        raise ConfigError("--raters: a name is given twice")
    return names


def create_blind_set(cases: Sequence[SourceCase], *, model: str, baseline: str, raters: Sequence[str],
                     per_item: int = 3, sample: int | None = None, seed: int = 0,
                     rubric: Rubric = DEFAULT_RUBRIC,
                     source: dict[str, Any] | None = None) -> tuple[BlindSet, ABMapping, dict[str, str]]:
    """Blind a set of cases.

    Each case's A/B order is drawn from a generator seeded by ``(seed, case id)``, so adding
    or sampling cases does not reshuffle the others.

    Returns:
        the blind set, its mapping, and each rater's token.
    """
    if not cases:
        raise ConfigError("no case has both a model output and a baseline output to compare")
    ids = [c.id for c in cases]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ConfigError(f"case id {dup!r} appears twice; a blind set needs unique case ids")
    chosen = stratified_sample(cases, sample, seed) if sample is not None else list(cases)
    items: list[BlindItem] = []
    a_is: dict[str, Side] = {}
    hashes: dict[str, dict[str, str]] = {}
    for c in chosen:
        model_first = random.Random(f"{seed}:{c.id}").random() < 0.5
        a, b = (c.model_output, c.baseline_output) if model_first else (c.baseline_output, c.model_output)
        items.append(BlindItem(c.id, c.prompt, text_hash(c.prompt), a, b, c.reference, c.category))
        a_is[c.id] = "model" if model_first else "baseline"
        hashes[c.id] = {"model": text_hash(c.model_output), "baseline": text_hash(c.baseline_output)}
    tokens = {r: secrets.token_urlsafe(32) for r in raters}
    set_id = secrets.token_hex(8)
    blind = BlindSet(set_id, items, rubric, assign([it.id for it in items], raters, per_item, seed),
                     {r: token_hash(t) for r, t in tokens.items()}, per_item, seed,
                     datetime.now(timezone.utc).isoformat(timespec="seconds"), dict(source or {}))
    return blind, ABMapping(set_id, model, baseline, a_is, hashes), tokens


def _write_json(path: Path, data: Any, mode: int | None = None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if mode is not None:
        os.chmod(tmp, mode)
    tmp.replace(path)


def write_blind_set(out_dir: str | Path, blind: BlindSet, mapping: ABMapping,
                    tokens: Mapping[str, str] | None, *, force: bool = False) -> Path:
    """Write the three files into ``out_dir`` (tokens mode 0600). Refuses to overwrite a set.

    Overwriting would orphan the ratings collected for the old set, so it needs ``force``.
    """
    out = Path(out_dir)
    if (out / BLIND_FILE).exists() and not force:
        raise ConfigError(f"{out / BLIND_FILE} already exists; ratings collected for it would no longer "
                          "match. Choose another --out, or pass --force to replace it")
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / BLIND_FILE, blind.to_dict())
    _write_json(out / MAPPING_FILE, mapping.to_dict(), 0o600)
    if tokens is not None:
        _write_json(out / TOKENS_FILE, {"set_id": blind.set_id, "tokens": dict(tokens),
                                        "links": {r: f"/login/{t}" for r, t in tokens.items()}}, 0o600)
    return out


def blind_set_path(path: str | Path) -> Path:
    """The ``blind_set.json`` of a directory, or the file itself."""
    p = Path(path)
    return p / BLIND_FILE if p.is_dir() else p


def load_blind_set(path: str | Path) -> BlindSet:
    p = blind_set_path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"blind set not found: {p} (create one with 'llmeval blind create')") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not a blind set (invalid JSON: {exc})") from None
    return BlindSet.from_dict(data, str(p))


def load_mapping(path: str | Path, blind: BlindSet | None = None) -> ABMapping:
    """Load ``mapping.json`` (or the one beside a blind set directory) and check it belongs to ``blind``."""
    p = Path(path)
    if p.is_dir():
        p = p / MAPPING_FILE
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"mapping not found: {p} (it is written beside blind_set.json by "
                          "'llmeval blind create')") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not a mapping file (invalid JSON: {exc})") from None
    mapping = ABMapping.from_dict(data, str(p))
    if blind is not None:
        if mapping.set_id != blind.set_id:
            raise ConfigError(f"{p} belongs to blind set {mapping.set_id}, not {blind.set_id}: "
                              "use the mapping written with this blind set")
        missing = [it.id for it in blind.items if it.id not in mapping.a_is]
        if missing:
            raise ConfigError(f"{p}: no A/B mapping for item {missing[0]!r}")
    return mapping


# --------------------------------------------------------------------------- sources


def cases_from_results(run: Any, suite: str | None = None,
                       baseline_run: Any = None) -> tuple[list[SourceCase], str, str, list[str]]:
    """Cases with both outputs from a results file (or a model's and a baseline's results files).

    Returns:
        the cases, the model's name, the baseline's name, and the ids skipped because an
        output is missing (a failed generation).
    """
    def pick(r: Any, what: str) -> Any:
        suites = r.suites
        if suite is not None:
            found = [s for s in suites if s.name == suite]
            if not found:
                raise ConfigError(f"{what}: no suite named {suite!r}; it has: "
                                  f"{', '.join(s.name for s in suites) or 'none'}")
            return found[0]
        if baseline_run is None:
            suites = [s for s in suites if any(c.baseline_output is not None for c in s.cases)]
            if not suites:
                raise ConfigError(f"{what}: no suite has baseline outputs; run the suite with a "
                                  "'baseline:' (or --llmeval-baseline), or give --baseline-results")
        if len(suites) != 1:
            raise ConfigError(f"{what}: {len(suites)} suites to choose from "
                              f"({', '.join(s.name for s in suites)}); name one with --suite")
        return suites[0]

    main = pick(run, "results")
    skipped: list[str] = []
    out: list[SourceCase] = []
    if baseline_run is None:
        if main.baseline is None and not any(c.baseline_output is not None for c in main.cases):
            raise ConfigError(f"suite {main.name!r} has no baseline outputs")
        for c in main.cases:
            if c.output is None or c.baseline_output is None:
                skipped.append(c.id)
                continue
            out.append(SourceCase(c.id, c.prompt, c.output, c.baseline_output, c.reference, c.category))
        return out, main.model or "model", main.baseline or "baseline", skipped
    base = pick(baseline_run, "baseline results")
    base_by_id = {c.id: c for c in base.cases}
    for c in main.cases:
        b = base_by_id.get(c.id)
        if b is None or c.output is None or b.output is None:
            skipped.append(c.id)
            continue
        if text_hash(b.prompt) != text_hash(c.prompt):
            raise ConfigError(f"case {c.id!r}: the two results files have different prompts for it; "
                              "they come from different versions of the suite")
        out.append(SourceCase(c.id, c.prompt, c.output, b.output, c.reference, c.category))
    return out, main.model or "model", base.model or "baseline", skipped
