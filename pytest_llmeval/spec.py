"""Eval-file schema: load suites (YAML / JSONL) and their cases (JSONL / YAML / CSV), validate, keep lines.

Every problem becomes a :class:`~pytest_llmeval.errors.SpecError` naming the
file, the line, the key, what was expected and, for misspelt keys or metric
names, what was probably meant. Nothing here imports pytest.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import json
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pytest_llmeval.errors import ConfigError, SpecError
from pytest_llmeval.gates.base import Gate
from pytest_llmeval.gates.judge_score import ScoreJudgeSpec
from pytest_llmeval.gates.win_rate import PairwiseJudgeSpec

CASE_RESERVED = {"id", "reference", "assert", "category", "difficulty", "tags"}
CHECK_KINDS = ("equals", "contains", "not_contains", "regex", "is_json", "json_schema",
               "max_length", "python")


# --------------------------------------------------------------------------- YAML with lines


class _LineLoader(yaml.SafeLoader):
    """A safe loader that records each mapping key's and list item's line, and rejects duplicate keys."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    result = LineDict()
    result.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise SpecError(f"mapping keys must be plain strings, got {type(key).__name__}",
                            line=key_node.start_mark.line + 1)
        if key in result:
            raise SpecError(f"duplicate key '{key}' (first at line {result.lines[key]})",
                            line=key_node.start_mark.line + 1, key=str(key))
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.lines = [child.start_mark.line + 1 for child in node.value]
    return result


class LineDict(dict):  # type: ignore[type-arg]
    """A dict that remembers the line of each key (and of itself)."""

    line: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines: dict[Any, int] = {}


class LineList(list):  # type: ignore[type-arg]
    """A list that remembers the line of each item (and of itself)."""

    line: int | None = None
    lines: list[int]


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    """The best line for a location path (pydantic ``loc``) inside line-tracked data."""
    line = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, LineDict) and part in node:
            line = node.lines.get(part, line)
            node = node[part]
        elif isinstance(node, LineList) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lines[part]
            node = node[part]
        else:
            break
        line = getattr(node, "line", None) or line
    return line


def read_text(path: Path) -> str:
    """Read UTF-8 text with an error that names the line of the first bad byte."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SpecError("file not found", path=str(path)) from None
    except OSError as exc:
        raise SpecError(f"cannot read file: {exc.strerror}", path=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            f"save the file as UTF-8", path=str(path), line=line) from None
    return text[1:] if text.startswith("\ufeff") else text


MAX_DEPTH = 100
"""Deepest nesting of lists/mappings accepted in a suite or cases file (YAML or JSON)."""
MAX_INT_DIGITS = 4300
"""Longest integer accepted (Python's own limit for converting text to int)."""
MAX_ALIAS_NODES = 1_000_000
"""YAML nodes that aliases may add in all: a file of nested aliases (a "billion laughs") stops here."""


class _LimitedLoader(_LineLoader):
    """The line-keeping loader with limits: nesting depth, integer size and alias expansion.

    Each limit is a :class:`SpecError` naming the line, raised before Python's own
    limits (recursion, integer conversion) turn into a traceback.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._alias_nodes = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            self._alias_nodes += self._sizes.get(id(node), 1)
            if self._alias_nodes > MAX_ALIAS_NODES:
                raise SpecError(f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes; use fewer "
                                f"nested aliases", line=event.start_mark.line + 1)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise SpecError(f"nested more than {MAX_DEPTH} levels deep; flatten the data",
                            line=event.start_mark.line + 1)
        before = self._nodes + self._alias_nodes
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._nodes += 1
        if getattr(event, "anchor", None) is not None:
            self._sizes[id(node)] = self._nodes + self._alias_nodes - before
        return node

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:int":
            digits = sum(ch.isdigit() for ch in node.value)
            if digits > MAX_INT_DIGITS:
                raise SpecError(f"an integer of {digits:,} digits; at most {MAX_INT_DIGITS:,} are "
                                f"accepted (quote it to keep it as text)", line=node.start_mark.line + 1)
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            # e.g. a timestamp such as 2024-13-45: not a date, and not text either
            raise SpecError(f"cannot read the value {_short(node)}: {exc} (quote it to keep it as "
                            f"text)", line=node.start_mark.line + 1) from None


def _short(node: Any) -> str:
    value = getattr(node, "value", "")
    text = value if isinstance(value, str) else f"<{type(value).__name__}>"
    return repr(text if len(text) <= 40 else text[:37] + "...")


def load_yaml(path: Path) -> Any:
    """Parse YAML, keeping lines; syntax errors and limits (depth, integer size, aliases) name the line."""
    text = read_text(path)
    try:
        loader = _LimitedLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except SpecError as exc:
        raise SpecError(exc.message, path=str(path), line=exc.line, key=exc.key) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"invalid YAML: {problem}", path=str(path), line=line) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", path=str(path)) from None
    except RecursionError:
        raise SpecError(f"nested too deeply to read (the limit is {MAX_DEPTH} levels)",
                        path=str(path)) from None


# --------------------------------------------------------------------------- schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


class GenerationSpec(_Strict):
    max_new_tokens: int | None = Field(default=None, gt=0)
    temperature: float = Field(default=0.0, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, gt=0)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _one_stop(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Message(_Strict):
    role: Literal["system", "user", "assistant"]
    content: str


class JudgeOptions(BaseModel):
    """``judge.options``: the judge's own options; the rest go to its backend (API or local model)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    scale: tuple[int, int] | None = None
    rubric: dict[str, str] | list[str] | None = None
    swap: bool | None = None

    @field_validator("scale")
    @classmethod
    def _scale(cls, v: Any) -> Any:
        if v is not None and not v[0] < v[1]:
            raise ValueError(f"scale must be [lowest, highest] with lowest < highest, got {list(v)}")
        return v


class JudgeSpec(_Strict):
    model: str | None = None
    options: JudgeOptions = Field(default_factory=JudgeOptions)
    prompt_score: str | None = None
    prompt_pairwise: str | None = None
    prompts: dict[Literal["score", "pairwise", "score_multiturn", "pairwise_multiturn"], str] | None = None
    """Template per kind: inline text or a file relative to the suite (see judge/prompts.py)."""
    score: ScoreJudgeSpec | None = None
    pairwise: PairwiseJudgeSpec | None = None

    @model_validator(mode="after")
    def _thresholds_on_scale(self) -> JudgeSpec:
        if self.score is None and self.pairwise is None:
            raise ValueError("judge: needs 'score:' and/or 'pairwise:'")
        if self.score is not None:
            from pytest_llmeval.judge.base import DEFAULT_RUBRIC_SCALE, DEFAULT_SCALE

            rubric = self.score.rubric or self.options.rubric
            lo, hi = self.options.scale or (DEFAULT_RUBRIC_SCALE if rubric else DEFAULT_SCALE)
            for key in ("min_mean", "case_min"):
                value = getattr(self.score, key)
                if value is not None and not lo <= value <= hi:
                    raise ValueError(f"score.{key}: {value:g} is outside the judge's scale [{lo}, {hi}] "
                                     f"(set judge.options.scale to change it)")
            if self.score.max_regression is not None and self.score.max_regression > hi - lo:
                raise ValueError(f"score.max_regression: {self.score.max_regression:g} is larger than the "
                                 f"scale [{lo}, {hi}]")
        return self


class SuiteSpec(_Strict):
    name: str | None = None
    description: str | None = None
    model: str | None = None
    model_options: dict[str, Any] = Field(default_factory=dict)
    baseline: str | None = None
    baseline_options: dict[str, Any] = Field(default_factory=dict)
    prompt: str | None = None
    messages: list[Message] | None = None
    system: str | None = None
    generation: GenerationSpec = Field(default_factory=GenerationSpec)
    repeat: int = Field(default=1, ge=1, le=1000)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    seed: int = 0
    cases: str | list[Any] | dict[str, Any]
    """A cases file, the cases inline, or a loader mapping ``{format: mmlu, path: ..., ...}`` (loaders/)."""
    metrics: dict[str, Any] = Field(default_factory=dict)
    assert_: list[Any] = Field(default_factory=list, alias="assert")
    judge: JudgeSpec | None = None
    tags: list[str] = Field(default_factory=list)
    xfail: dict[str, str] = Field(default_factory=dict)
    sections: dict[str, Any] = Field(default_factory=dict, exclude=True)
    """Validated specs of the gate kinds' own sections (``contamination:``, ``latency:``...), by key."""


# --------------------------------------------------------------------------- runtime objects


@dataclass(frozen=True)
class Check:
    """One per-case check from an ``assert:`` list."""

    kind: str
    value: Any
    options: dict[str, Any] = field(default_factory=dict)
    line: int | None = None

    def describe(self) -> str:
        return f"{self.kind}: {self.value!r}"


@dataclass
class Case:
    id: str
    fields: dict[str, Any]
    reference: list[str] | None
    checks: list[Check]
    category: str | None = None
    difficulty: str | None = None
    tags: list[str] = field(default_factory=list)
    line: int | None = None
    source: str | None = None
    turns: list[str] | None = None
    """A multi-turn case's user messages, in order (``turns:``); None for a single-turn case."""
    turn_references: list[str | None] | None = None
    """A multi-turn case's reference answer per turn (None for a turn without one)."""

    @property
    def reference_display(self) -> Any:
        if self.turn_references is not None:
            return list(self.turn_references)
        if self.reference is None:
            return None
        return self.reference[0] if len(self.reference) == 1 else list(self.reference)


@dataclass
class Suite:
    """A validated suite, ready to become items."""

    name: str
    path: Path
    spec: SuiteSpec
    cases: list[Case]
    gates: list[Gate]
    """Every gate the suite declares, in file order (metrics, judge, then the kinds' own sections)."""
    suite_hash: str
    template_fields: list[str]
    prompts: dict[str, str] | None = None
    """Each case's prompt when a gate kind renders them (``multiple_choice:``), by case id."""

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def render(self, case: Case) -> str | list[dict[str, str]]:
        """The prompt for a case: text, or chat messages when the suite uses ``messages:``.

        For a multi-turn case this is its first turn (see :meth:`render_turn`).
        """
        if self.prompts is not None and case.id in self.prompts:
            return self.prompts[case.id]
        if case.turns is not None:
            return self.render_turn(case, [])
        values = _template_values(case)
        spec = self.spec
        if spec.messages is not None:
            msgs = [{"role": m.role, "content": m.content.format_map(values)} for m in spec.messages]
            if spec.system is not None and not any(m["role"] == "system" for m in msgs):
                msgs.insert(0, {"role": "system", "content": spec.system.format_map(values)})
            return msgs
        template = spec.prompt if spec.prompt is not None else "{prompt}"
        if "messages" in case.fields and spec.prompt is None:
            return list(case.fields["messages"])
        text = template.format_map(values)
        if spec.system is not None:
            return [{"role": "system", "content": spec.system.format_map(values)},
                    {"role": "user", "content": text}]
        return text


    def render_turn(self, case: Case, answers: list[str]) -> list[dict[str, str]]:
        """The chat messages for the next turn of a multi-turn case, after the model's ``answers``.

        The suite's ``system:`` (if any) comes first; then each earlier user message with the
        answer the model gave to it, then the next user message. Every turn is a new request
        whose history holds the model's own earlier answers, so a cache keys it by them.
        """
        turns = case.turns or []
        if len(answers) >= len(turns):
            raise ValueError(f"case '{case.id}' has {len(turns)} turns; no turn follows answer "
                             f"{len(answers)}")
        msgs: list[dict[str, str]] = []
        if self.spec.system is not None:
            msgs.append({"role": "system", "content": self.spec.system.format_map(_template_values(case))})
        for user, answer in zip(turns, answers, strict=False):
            msgs.append({"role": "user", "content": user})
            msgs.append({"role": "assistant", "content": answer})
        msgs.append({"role": "user", "content": turns[len(answers)]})
        return msgs


def _template_values(case: Case) -> dict[str, Any]:
    values = dict(case.fields)
    values.setdefault("id", case.id)
    if case.reference is not None:
        values.setdefault("reference", case.reference[0])
    if case.category is not None:
        values.setdefault("category", case.category)
    return values


# --------------------------------------------------------------------------- validation helpers


def _did_you_mean(word: str, options: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(str(word), sorted(options), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def _loc_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _fields_of(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Known keys at a location of the schema (for 'did you mean')."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fld = getattr(current, "model_fields", {}).get(part)
        if fld is None:
            for f in getattr(current, "model_fields", {}).values():
                if f.alias == part:
                    fld = f
        if fld is None:
            return []
        ann = fld.annotation
        nxt = None
        for cand in (ann, *getattr(ann, "__args__", ())):
            for sub in (cand, *getattr(cand, "__args__", ())):
                if isinstance(sub, type) and issubclass(sub, BaseModel):
                    nxt = sub
        if nxt is None:
            return []
        current = nxt
    return [f.alias or name for name, f in getattr(current, "model_fields", {}).items()]


def _validation_error(exc: ValidationError, data: Any, path: Path, *, prefix: tuple[Any, ...] = (),
                      model: type[BaseModel] | None = SuiteSpec) -> SpecError:
    """A pydantic error as a SpecError: each problem with its line, key path and a "did you mean"."""
    problems = []
    first_line = None
    for err in exc.errors():
        inner = tuple(err["loc"])
        loc = prefix + inner
        line = line_of(data, loc)
        first_line = first_line or line
        key = _loc_str(loc)
        if err["type"] == "extra_forbidden":
            if model is SuiteSpec and len(inner) == 1:
                known = _fields_of(SuiteSpec, inner) + list(section_keys())
            elif model is not None:
                known = _fields_of(model, inner)
            else:
                from pytest_llmeval.gates.metric import GATE_KEYS

                known = list(GATE_KEYS)
            msg = f"unknown key '{loc[-1]}'.{_did_you_mean(str(loc[-1]), known)}"
        elif err["type"] == "missing":
            msg = f"missing required key '{loc[-1]}'"
        else:
            got = err.get("input")
            got_s = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
            text = err["msg"].removeprefix("Value error, ")
            msg = f"{text} (got {got_s})" if "(got" not in text and err["type"] != "value_error" else text
            if err["type"] in ("finite_number",):
                msg = f"expected a finite number (NaN and infinity are not thresholds), got {got_s}"
        where = f"line {line}: " if line else ""
        problems.append(f"{where}{key}: {msg}" if key else f"{where}{msg}")
    return SpecError("invalid suite:\n  " + "\n  ".join(problems), path=str(path), line=first_line)


def template_fields(template: str, where: str, path: Path, line: int | None) -> list[str]:
    """Names a ``str.format`` template uses; errors for malformed templates."""
    names: list[str] = []
    try:
        for _, fname, _fmt, _conv in string.Formatter().parse(template):
            if fname is None:
                continue
            if fname == "" or fname.isdigit():
                raise SpecError(
                    f"{where}: positional placeholder '{{{fname}}}' is not allowed; name a case field "
                    f"like '{{text}}' (write '{{{{' and '}}}}' for literal braces)",
                    path=str(path), line=line)
            base = re.split(r"[.\[]", fname, maxsplit=1)[0]
            if base != fname:
                raise SpecError(f"{where}: placeholder '{{{fname}}}' must be a plain field name",
                                path=str(path), line=line)
            names.append(fname)
    except ValueError as exc:
        raise SpecError(f"{where}: malformed template ({exc}); write '{{{{' and '}}}}' for literal "
                        f"braces", path=str(path), line=line) from None
    return names


# --------------------------------------------------------------------------- cases


def _parse_checks(raw: Any, path: Path, line: int | None, where: str) -> list[Check]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpecError(f"{where}: 'assert' must be a list of checks like [{{contains: 'x'}}], "
                        f"got {type(raw).__name__}", path=str(path), line=line, key="assert")
    checks = []
    lines = getattr(raw, "lines", None)
    for i, item in enumerate(raw):
        iline = lines[i] if lines else line
        if not isinstance(item, dict):
            raise SpecError(f"{where}: each check must be a mapping like {{contains: 'x'}}, got {item!r}",
                            path=str(path), line=iline, key=f"assert[{i}]")
        kinds = [k for k in item if k in CHECK_KINDS]
        extra = [k for k in item if k not in CHECK_KINDS and k not in ("ignore_case", "message")]
        if len(kinds) != 1 or extra:
            bad = extra[0] if extra else None
            hint = _did_you_mean(bad, list(CHECK_KINDS)) if bad else ""
            raise SpecError(
                f"{where}: check {dict(item)!r} must have exactly one of {', '.join(CHECK_KINDS)}"
                f" (options: ignore_case, message).{hint}", path=str(path), line=iline,
                key=f"assert[{i}]")
        kind = kinds[0]
        value = item[kind]
        options = {k: v for k, v in item.items() if k != kind}
        _validate_check(kind, value, path, iline, where)
        checks.append(Check(kind=kind, value=value, options=options, line=iline))
    return checks


def _validate_check(kind: str, value: Any, path: Path, line: int | None, where: str) -> None:
    def bad(expected: str) -> SpecError:
        return SpecError(f"{where}: '{kind}' expects {expected}, got {value!r}", path=str(path),
                         line=line, key=kind)

    if kind in ("contains", "not_contains"):
        strings = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not (isinstance(value, str) or strings):
            raise bad("a string or a list of strings")
    elif kind == "equals":
        if not isinstance(value, (str, int, float, bool)):
            raise bad("a string")
    elif kind == "regex":
        if not isinstance(value, str):
            raise bad("a regular expression string")
        try:
            re.compile(value)
        except re.error as exc:
            raise SpecError(f"{where}: invalid regex {value!r}: {exc}", path=str(path), line=line,
                            key=kind) from None
    elif kind == "is_json":
        if not isinstance(value, bool):
            raise bad("true or false")
    elif kind == "json_schema":
        if not isinstance(value, dict):
            raise bad("a JSON schema mapping")
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise SpecError(f"{where}: invalid JSON schema: {exc.message}", path=str(path), line=line,
                            key=kind) from None
    elif kind == "max_length":
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad("a non-negative integer (characters)")
    elif kind == "python":
        if not isinstance(value, str) or value.count(":") != 1:
            raise bad("'module:function'")


def _read_cases_file(path: Path) -> list[tuple[Any, int]]:
    """Raw case records with their line numbers, from JSONL, YAML or CSV."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return read_jsonl(path)
    if suffix in (".yaml", ".yml"):
        data = load_yaml(path)
        if data is None:
            raise SpecError("cases file is empty; expected a list of cases", path=str(path))
        if not isinstance(data, list):
            raise SpecError(f"expected a YAML list of cases, got {type(data).__name__}", path=str(path),
                            line=getattr(data, "line", None))
        return list(zip(data, data.lines, strict=True))  # type: ignore[attr-defined]
    if suffix == ".csv":
        text = read_text(path)
        reader = csv.DictReader(io.StringIO(text))
        rows = []
        try:
            if not reader.fieldnames:
                raise SpecError("CSV cases file has no header row", path=str(path), line=1)
            for row in reader:
                if None in row:
                    raise SpecError(f"row has more cells than the header ({len(reader.fieldnames)})",
                                    path=str(path), line=reader.line_num)
                rows.append((dict(row), reader.line_num))
        except csv.Error as exc:
            # the reader counts a line once it is parsed: the failing one is the next
            raise SpecError(f"invalid CSV: {exc}", path=str(path), line=reader.line_num + 1) from None
        return rows
    raise SpecError(f"unsupported cases file type '{suffix}'; use .jsonl, .yaml/.yml or .csv",
                    path=str(path))


def read_jsonl(path: Path) -> list[tuple[Any, int]]:
    """One JSON value per line, with its line number; limits (depth, integer size) name the line.

    Lines are split on ``\n`` only (with an optional ``\r``), as JSON Lines says: a
    JSON string may hold U+2028 or a form feed, which ``str.splitlines`` would split on.
    """
    text = read_text(path)
    rows = []
    loads = json.loads
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.endswith("\r"):
            line = line[:-1]
        if not line.strip():
            continue
        try:
            value = loads(line)
        except json.JSONDecodeError as exc:
            raise SpecError(f"invalid JSON at column {exc.colno}: {exc.msg}", path=str(path),
                            line=lineno) from None
        except RecursionError:
            raise SpecError(f"JSON nested more than {MAX_DEPTH} levels deep; flatten the data",
                            path=str(path), line=lineno) from None
        except ValueError:  # an integer beyond Python's digit limit
            raise SpecError(f"an integer of more than {MAX_INT_DIGITS:,} digits; quote long numbers "
                            f"to keep them as text", path=str(path), line=lineno) from None
        if line.count("[") + line.count("{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
            raise SpecError(f"JSON nested more than {MAX_DEPTH} levels deep; flatten the data",
                            path=str(path), line=lineno)
        rows.append((value, lineno))
    return rows


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, d = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, d)
            if d <= MAX_DEPTH:
                stack.extend((child, d + 1) for child in node)
    return deepest


def _case_id(record: dict[str, Any]) -> str:
    blob = json.dumps(record, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha1(blob).hexdigest()[:10]


def build_cases(records: list[tuple[Any, int]], source: Path, fields_needed: list[str],
                suite_checks: list[Check], *, template: str | None = None) -> list[Case]:
    """Validate raw case records into :class:`Case` objects (kept lean: suites may hold 100k cases).

    ``template``: the suite's prompt template key (``prompt``/``messages``), if it has one: a
    multi-turn case cannot use it.
    """
    cases: list[Case] = []
    seen: dict[str, int] = {}
    src = str(source)
    needed = [f for f in fields_needed if f not in ("id", "reference", "category")]
    needs_reference = "reference" in fields_needed
    reserved = CASE_RESERVED
    for index, (rec, line) in enumerate(records):
        if type(rec) is not dict and not isinstance(rec, dict):
            raise SpecError(f"case {index + 1}: expected a mapping of fields, got {type(rec).__name__}",
                            path=src, line=line)
        raw_id = rec.get("id")
        if raw_id is None:
            cid = _case_id(rec)
        elif type(raw_id) is str or (isinstance(raw_id, int) and not isinstance(raw_id, bool)):
            cid = str(raw_id)
            if not cid or "::" in cid or "\n" in cid or "]" in cid:
                raise SpecError(f"case {index + 1}: invalid id {raw_id!r}: use a non-empty id without "
                                f"'::', ']' or newlines", path=src, line=line, key="id")
        else:
            raise SpecError(f"case {index + 1}: 'id' must be a string or integer, got {raw_id!r}",
                            path=src, line=line, key="id")
        if cid in seen:
            what = f"duplicate case id '{cid}'" if raw_id is not None else \
                f"duplicate case (same content as the case at line {seen[cid]})"
            raise SpecError(f"{what}; first at line {seen[cid]}. Give each case a unique 'id'",
                            path=src, line=line, key="id")
        seen[cid] = line
        turns, turn_refs = _parse_turns(rec, cid, src, line) if "turns" in rec else (None, None)
        if turns is not None and template is not None:
            raise SpecError(f"case '{cid}' has 'turns:', whose user messages are sent as written; the "
                            f"suite's '{template}:' template cannot apply to them. Remove '{template}:' "
                            f"(use 'system:' for a system prompt) or put multi-turn cases in their own "
                            f"suite", path=src, line=line, key=template)
        ref = rec.get("reference")
        if turn_refs is not None:
            ref = [turn_refs[-1]] if turn_refs[-1] is not None else None
        elif ref is not None:
            if type(ref) is str:
                ref = [ref]
            elif isinstance(ref, (int, float)) and not isinstance(ref, bool):
                ref = [str(ref)]
            elif isinstance(ref, list) and ref and all(isinstance(r, str) for r in ref):
                ref = list(ref)
            else:
                raise SpecError(f"case '{cid}': 'reference' must be a string or a non-empty list of "
                                f"strings, got {ref!r}", path=src, line=line, key="reference")
        if len(rec.keys() & reserved) > (raw_id is not None) + (rec.get("reference") is not None):
            tags = rec.get("tags") or []
            if isinstance(tags, str):
                tags = [tags]
            if not isinstance(tags, list):
                raise SpecError(f"case '{cid}': 'tags' must be a list of strings", path=src, line=line,
                                key="tags")
            category = rec.get("category")
            difficulty = rec.get("difficulty")
            fields = {k: v for k, v in rec.items() if k not in reserved}
            own_checks = _parse_checks(rec.get("assert"), source, line, f"case '{cid}'")
        else:
            tags, category, difficulty, own_checks = [], None, None, []
            fields = {k: v for k, v in rec.items() if k != "id" and k != "reference"}
        for f in needed:
            if f not in fields:
                _missing_field(cid, f, fields, src, line)
        if needs_reference and ref is None:
            _missing_field(cid, "reference", fields, src, line)
        cases.append(Case(id=cid, fields=fields, reference=ref,
                          checks=suite_checks + own_checks if own_checks else suite_checks,
                          category=None if category is None else str(category),
                          difficulty=None if difficulty is None else str(difficulty),
                          tags=[str(t) for t in tags], line=line, source=src, turns=turns,
                          turn_references=turn_refs))
    return cases


def _parse_turns(rec: dict[str, Any], cid: str, src: str,
                 line: int) -> tuple[list[str], list[str | None] | None]:
    """A multi-turn case's ``turns`` (user messages) and per-turn ``reference`` list, validated."""
    turns = rec["turns"]
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t.strip() for t in turns):
        raise SpecError(f"case '{cid}': 'turns' must be a non-empty list of user messages (non-empty "
                        f"strings), got {turns!r}", path=src, line=line, key="turns")
    ref = rec.get("reference")
    if ref is None:
        return list(turns), None
    if isinstance(ref, str) and len(turns) == 1:
        ref = [ref]
    if (not isinstance(ref, list) or len(ref) != len(turns)
            or not all(r is None or isinstance(r, str) for r in ref)):
        raise SpecError(f"case '{cid}': a case with {len(turns)} turns takes one reference per turn: "
                        f"'reference' must be a list of {len(turns)} entries (a string, or null for a "
                        f"turn without one), got {ref!r}", path=src, line=line, key="reference")
    return list(turns), list(ref)


def _missing_field(cid: str, name: str, fields: dict[str, Any], src: str, line: int) -> None:
    have = ", ".join(sorted(fields)) or "none"
    hint = _did_you_mean(name, list(fields))
    raise SpecError(f"case '{cid}': the prompt template uses {{{name}}} but the case has no '{name}' "
                    f"field (its fields: {have}).{hint}", path=src, line=line, key=name)


# --------------------------------------------------------------------------- gates


def parse_gates(metrics: dict[str, Any], data: Any, path: Path) -> list[Gate]:
    """One metric gate per ``metrics:`` entry, validated (options, metric, thresholds in range)."""
    from pytest_llmeval.gates.metric import MetricGate

    gates: list[Gate] = []
    for name, raw in metrics.items():
        line = line_of(data, ("metrics", name))
        where = f"metrics.{name}"
        try:
            gates.append(MetricGate.build(str(name), raw, line))
        except ValidationError as exc:
            raise _validation_error(exc, data, path, prefix=("metrics", name), model=None) from None
        except (ConfigError, ValueError) as exc:
            raise SpecError(f"{where}: {exc}", path=str(path), line=line, key=where) from None
    return gates


def judge_gates(spec: SuiteSpec, defaults: dict[str, str | None], data: Any) -> list[Gate]:
    """``judge_score`` and ``win_rate[model>against]``, named once here for every report."""
    from pytest_llmeval.gates.judge_score import JudgeScoreGate
    from pytest_llmeval.gates.win_rate import WinRateGate, win_rate_name

    j = spec.judge
    if j is None:
        return []
    gates: list[Gate] = []
    if j.score is not None:
        gates.append(JudgeScoreGate("judge_score", j.score, line_of(data, ("judge", "score"))))
    if j.pairwise is not None:
        model = spec.model or defaults.get("model") or "llm_model"
        against = j.pairwise.against
        if against == "baseline":
            against = spec.baseline or defaults.get("baseline") or "llm_baseline"
        gates.append(WinRateGate(win_rate_name(model, against), j.pairwise,
                                 line_of(data, ("judge", "pairwise"))))
    return gates


def section_keys() -> dict[str, Any]:
    """Top-level keys owned by registered gate kinds (``contamination``, ``latency``, ``cost``, ...)."""
    from pytest_llmeval.gates.registry import sections

    return sections()


def split_sections(data: dict[str, Any], path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The suite mapping without the gate kinds' sections, and those sections validated."""
    kinds = section_keys()
    rest = LineDict()
    rest.line = getattr(data, "line", None)
    rest.lines = dict(getattr(data, "lines", {}))
    validated: dict[str, Any] = {}
    for key, value in data.items():
        cls = kinds.get(key)
        if cls is None:
            rest[key] = value
            continue
        try:
            validated[key] = cls.Spec.model_validate(value)
        except ValidationError as exc:
            raise _validation_error(exc, data, path, prefix=(key,), model=cls.Spec) from None
    return rest, validated


def parse_metric_shorthand(entries: list[str]) -> dict[str, Any]:
    """ini ``llmeval_metrics`` lines: ``exact_match``, ``exact_match>=0.8`` or ``rougeL: {min: 0.3}``."""
    metrics: dict[str, Any] = {}
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        m = re.fullmatch(r"([\w:.\-]+)\s*(>=|<=)\s*([0-9.]+)", entry)
        if m:
            metrics[m.group(1)] = {"min" if m.group(2) == ">=" else "max": float(m.group(3))}
        elif re.fullmatch(r"[\w:.\-]+", entry):
            metrics[entry] = {}
        else:
            parsed = yaml.safe_load(entry)
            if not isinstance(parsed, dict):
                raise ConfigError(f"llmeval_metrics: cannot parse {entry!r}; write 'name', "
                                  f"'name>=0.8' or 'name: {{min: 0.8}}'")
            metrics.update(parsed)
    return metrics


# --------------------------------------------------------------------------- entry points


def file_hash(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        try:
            h.update(p.read_bytes())
        except OSError:
            pass
    return h.hexdigest()[:16]


def load_suite(path: Path, *, default_metrics: dict[str, Any] | None = None,
               defaults: dict[str, str | None] | None = None) -> Suite:
    """Load and validate a suite file (``*.eval.yaml``/``.yml`` or a bare ``*.eval.jsonl``).

    Args:
        path: the suite file.
        default_metrics: metric gates for a bare ``*.eval.jsonl`` (ini ``llmeval_metrics``).
        defaults: the run's default ``model`` and ``baseline`` references (they name pairwise gates).
    """
    path = Path(path)
    defaults = defaults or {}
    if path.suffix.lower() == ".jsonl":
        return _load_jsonl_suite(path, default_metrics or {})
    data = load_yaml(path)
    if data is None:
        raise SpecError("empty suite file; a suite needs at least 'cases:' (see the README's schema)",
                        path=str(path))
    if not isinstance(data, dict):
        raise SpecError(f"a suite must be a YAML mapping with keys like prompt/cases/metrics, got "
                        f"{type(data).__name__}", path=str(path), line=getattr(data, "line", 1))
    rest, sections = split_sections(data, path)
    try:
        spec = SuiteSpec.model_validate(rest)
    except ValidationError as exc:
        raise _validation_error(exc, data, path) from None
    spec.sections = sections
    if spec.prompt is not None and spec.messages is not None:
        raise SpecError("give 'prompt' or 'messages', not both", path=str(path),
                        line=line_of(data, ("messages",)))
    needed: list[str] = []
    if spec.prompt is not None:
        needed += template_fields(spec.prompt, "prompt", path, line_of(data, ("prompt",)))
    if spec.messages is not None:
        for i, m in enumerate(spec.messages):
            needed += template_fields(m.content, f"messages[{i}].content", path,
                                      line_of(data, ("messages", i)))
    if spec.system is not None:
        needed += template_fields(spec.system, "system", path, line_of(data, ("system",)))
    if spec.prompt is None and spec.messages is None:
        needed = []  # each case then carries 'prompt' or 'messages' itself (checked below)
    suite_checks = _parse_checks(data.get("assert"), path, line_of(data, ("assert",)), "suite")
    hash_paths = [path]
    if isinstance(spec.cases, str):
        cases_path = (path.parent / spec.cases)
        if not cases_path.is_file():
            raise SpecError(f"cases file '{spec.cases}' not found (looked for {cases_path}); paths are "
                            f"relative to the suite file", path=str(path), line=line_of(data, ("cases",)),
                            key="cases")
        records = _read_cases_file(cases_path)
        source = cases_path
        hash_paths.append(cases_path)
    elif isinstance(spec.cases, dict):
        # ---- loaders: a standard benchmark file read by format (pytest_llmeval/loaders/)
        from pytest_llmeval.loaders import load_cases

        try:
            loaded, source = load_cases(spec.cases, path.parent)
        except SpecError as exc:
            raise SpecError(exc.message, path=exc.path or str(path),
                            line=exc.line or line_of(data, ("cases",)), key=exc.key) from None
        records = [(rec, None) for rec in loaded]  # type: ignore[misc]  # a loaded row has no line
        hash_paths += sorted(f for f in source.rglob("*") if f.is_file()) if source.is_dir() else [source]
    else:
        lines = getattr(data["cases"], "lines", None) or [None] * len(spec.cases)
        records = list(zip(spec.cases, lines, strict=True))
        source = path
    if not records:
        raise SpecError("the suite has no cases", path=str(source), line=line_of(data, ("cases",)))
    uniq = list(dict.fromkeys(needed))
    template = "prompt" if spec.prompt is not None else "messages" if spec.messages is not None else None
    cases = build_cases(records, source, uniq, suite_checks, template=template)
    gates = parse_gates(spec.metrics or default_metrics or {}, data, path)
    gates += judge_gates(spec, defaults, data)
    kinds = section_keys()
    for key, section in sections.items():
        try:
            gates += kinds[key].from_section(section, suite_spec=spec, line=line_of(data, (key,)))
        except SpecError as exc:
            raise SpecError(exc.message, path=exc.path or str(path), line=exc.line or line_of(data, (key,)),
                            key=exc.key) from None
    _check_gate_names(gates, spec, data, path)
    # ---- multiple choice: its section validates the questions and renders their prompts (that gate)
    from pytest_llmeval.gates.multiple_choice import bind

    try:
        mc_plan = bind(gates, cases, path, spec.cases, spec.seed, spec.prompt)
    except SpecError as exc:
        raise SpecError(exc.message, path=exc.path or str(path),
                        line=exc.line or line_of(data, ("multiple_choice",)), key=exc.key) from None
    if mc_plan is None and spec.prompt is None and spec.messages is None:
        _require_prompt_field(cases)
    hash_paths += mc_plan.sources if mc_plan is not None else []
    name = spec.name or path.name.split(".eval.")[0]
    return Suite(name=name, path=path, spec=spec, cases=cases, gates=gates,
                 suite_hash=file_hash(*hash_paths), template_fields=uniq,
                 prompts=mc_plan.prompts if mc_plan is not None else None)


def _check_gate_names(gates: list[Gate], spec: SuiteSpec, data: Any, path: Path) -> None:
    """Gate names are item names: unique, and every ``xfail:`` entry must name one."""
    seen: dict[str, int | None] = {}
    for g in gates:
        if g.name in seen:
            raise SpecError(f"two gates are named '{g.name}' (first at line {seen[g.name]}); rename one "
                            f"(metrics: {{other_name: {{metric: ...}}}})", path=str(path), line=g.line)
        seen[g.name] = g.line
    for name in spec.xfail:
        if name not in seen:
            hint = _did_you_mean(name, list(seen))
            raise SpecError(f"xfail names '{name}', which is not a gate of this suite.{hint} Gates: "
                            f"{', '.join(seen) or 'none'}", path=str(path),
                            line=line_of(data, ("xfail", name)), key=f"xfail.{name}")


def _require_prompt_field(cases: list[Case]) -> None:
    for c in cases:
        if c.turns is None and "prompt" not in c.fields and "messages" not in c.fields:
            raise SpecError(f"case '{c.id}': no 'prompt' (or 'messages') field, and the suite has no "
                            f"'prompt:' template (a conversation gives its user messages as 'turns')",
                            path=c.source, line=c.line)


def _load_jsonl_suite(path: Path, default_metrics: dict[str, Any]) -> Suite:
    records = read_jsonl(path)
    if not records:
        raise SpecError("empty suite: a *.eval.jsonl file holds one JSON case per line", path=str(path))
    spec = SuiteSpec(cases=[])
    cases = build_cases(records, path, [], [])
    _require_prompt_field(cases)
    gates = parse_gates(default_metrics, None, path)
    return Suite(name=path.name.split(".eval.")[0], path=path, spec=spec, cases=cases, gates=gates,
                 suite_hash=file_hash(path), template_fields=[])
