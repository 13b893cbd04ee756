"""Hypothesis strategies for suite and cases files, valid and broken, and the loader's error kinds.

An example is a suite file (``*.eval.yaml`` or a bare ``*.eval.jsonl``) plus the
files it names. It starts from a valid suite and applies one or two mutations:
wrong types, missing or unknown keys, bad ids, checks, templates, metrics and
judges, broken cases files (JSONL, YAML, CSV), YAML features (anchors and alias
bombs, tags, multiple documents, complex and date keys, tabs), nesting and
numbers past the limits, and other encodings or random bytes.

:data:`ERROR_KINDS` classifies every :class:`~pytest_llmeval.errors.SpecError`
message the loader can raise into a kind, so a fuzz run can show it reached
each of them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from hypothesis import strategies as st


@dataclass
class Example:
    """Files to write in an empty folder; ``suite`` is the file to load."""

    suite: str
    files: dict[str, bytes] = field(default_factory=dict)
    mutations: list[str] = field(default_factory=list)


# (kind, pattern) in the order they are tried; the patterns follow spec.py's messages.
ERROR_KINDS: list[tuple[str, str]] = [
    ("utf8", r"not valid UTF-8"),
    ("yaml-syntax", r"^invalid YAML"),
    ("yaml-key-type", r"mapping keys must be plain strings"),
    ("yaml-duplicate-key", r"^duplicate key '"),
    ("nesting", r"nested more than \d+ levels"),
    ("yaml-integer", r"an integer of [\d,]+ digits"),
    ("json-integer", r"an integer of more than"),
    ("aliases", r"aliases expand to more than"),
    ("yaml-value", r"cannot read the value"),
    ("json-syntax", r"^invalid JSON at column"),
    ("empty-suite", r"^empty suite file"),
    ("empty-jsonl", r"^empty suite: a \*\.eval\.jsonl"),
    ("suite-not-mapping", r"^a suite must be a YAML mapping"),
    ("gate-number", r"^invalid suite:[\s\S]*metrics\.[^:\n]+\.(min|max|case_min|max_regression|range): "
                    r"(Input should be|expected a finite|Tuple should)"),
    ("gate-confidence", r"^invalid suite:[\s\S]*metrics\.[^:\n]+\.confidence: Input should be"),
    ("gate-bool", r"per_category: expected true or false"),
    ("gate-min-and-max", r"give 'min' or 'max', not both"),
    ("judge-empty", r"judge: needs 'score:' and/or 'pairwise:'"),
    ("gate-range", r"is outside the range of '"),
    ("judge-scale", r"outside the judge's scale|larger than the scale|scale must be \[lowest, highest\]"),
    ("section-limits", r"give (max_contaminated or max_contaminated_fraction|at least one of|max_usd)"),
    ("xfail-unknown", r"^xfail names '"),
    ("gate-duplicate", r"^two gates are named"),
    ("schema-unknown-key", r"^invalid suite:[\s\S]*unknown key"),
    ("schema-missing-key", r"^invalid suite:[\s\S]*missing required key"),
    ("schema-type", r"^invalid suite:"),
    ("prompt-and-messages", r"give 'prompt' or 'messages', not both"),
    ("template-positional", r"positional placeholder"),
    ("template-field", r"must be a plain field name"),
    ("template-malformed", r"malformed template"),
    ("assert-not-list", r"'assert' must be a list of checks"),
    ("check-not-mapping", r"each check must be a mapping"),
    ("check-kind", r"must have exactly one of"),
    ("check-value", r"' expects "),
    ("check-regex", r"invalid regex"),
    ("check-schema", r"invalid JSON schema"),
    ("cases-file-missing", r"^cases file '.*' not found"),
    ("cases-file-type", r"unsupported cases file type"),
    ("cases-yaml-empty", r"^cases file is empty"),
    ("cases-yaml-not-list", r"expected a YAML list of cases"),
    ("csv-no-header", r"CSV cases file has no header row"),
    ("csv-extra-cells", r"row has more cells than the header"),
    ("csv-invalid", r"^invalid CSV"),
    ("no-cases", r"^the suite has no cases"),
    ("case-not-mapping", r"expected a mapping of fields"),
    ("case-id-invalid", r"invalid id .*use a non-empty id"),
    ("case-id-type", r"'id' must be a string or integer"),
    ("case-duplicate-id", r"^duplicate case id"),
    ("case-duplicate-content", r"^duplicate case \(same content"),
    ("case-reference", r"'reference' must be a string or a non-empty list"),
    ("case-tags", r"'tags' must be a list of strings"),
    ("case-missing-field", r"the prompt template uses \{.*\} but the case has no"),
    ("case-no-prompt", r"no 'prompt' \(or 'messages'\) field"),
    ("cases-loader", r"^cases: a loader mapping needs|^unknown cases format|^cases path '|^cases: unknown option"
                     r"|^(mmlu|hf_export|mt_bench|alpaca_eval): "),
    ("gate-shape", r"expected a mapping like \{min: 0\.8\}"),
    ("metric-unknown", r"unknown metric"),
    ("metric-options", r"metric '|option|options"),
]
_COMPILED = [(kind, re.compile(pattern)) for kind, pattern in ERROR_KINDS]
RARE_KINDS = {
    "cases-loader": "needs 'cases:' as a mapping (a loader); tests/benchmarks/test_loaders.py, test_loader_suites.py",
    "judge-scale": "needs a judge section with a score threshold off its scale; tests/gates/test_schema_errors.py",
    "section-limits": "needs two exclusive limits in one section; tests/gates/test_schema_errors.py",
    "xfail-unknown": "needs an xfail entry naming no gate; tests/gates/test_schema_errors.py",
    "gate-duplicate": "two gate kinds producing one name; tests/gates",
    "gate-bool": "a non-boolean per_category; tests/gates/test_schema_errors.py",
    "assert-not-list": "a suite-level non-list 'assert' is now a schema type error first; a case-level one "
                       "needs a case carrying 'assert'",
}
"""Kinds the loader has that random suites rarely reach: classified here, tested directly elsewhere."""

UNREACHED_BY_DESIGN = {
    "file not found": "load_suite is only called on files that exist (pytest collects files it found)",
    "cannot read file": "needs a file that exists but cannot be read; as root every file can be read",
    "nested too deeply to read": "a fallback: the depth limit stops nesting long before recursion does",
}
"""Loader messages the fuzzer does not aim at, and why (they are tested directly elsewhere)."""


def error_kind(message: str) -> str:
    """The kind of a SpecError message (``other`` when no pattern matches)."""
    for kind, pattern in _COMPILED:
        if pattern.search(message):
            return kind
    return "other"


# --------------------------------------------------------------------------- values

ODD_STRINGS = ["", " ", "{text}", "{0}", "{}", "{text.x}", "{text!r}", "{", "}", "~", "null", "yes",
               "0x1F", "1e999", "2024-13-45", "2024-01-01", "\t", "\x1b[2J", "a::b", "x]", "a\nb",
               "é", "\u202e", "😀", "exact_mach", "rougeL", "f1", "python:nope:fn"]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(ODD_STRINGS),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.one_of(st.text(max_size=8), st.sampled_from(ODD_STRINGS)),
                                               children, max_size=4)),
    max_leaves=10,
)

SUITE_KEYS = ["name", "description", "model", "model_options", "baseline", "baseline_options", "prompt",
              "messages", "system", "generation", "repeat", "confidence", "seed", "cases", "assert",
              "metrics", "judge", "contamination", "xfail", "promt", "metric", "case"]
METRICS = ["exact_match", "accuracy", "contains", "length", "f1", "precision", "recall", "bleu",
           "sentence_bleu", "sacrebleu", "chrf", "rouge", "rougeL", "exact_mach", "f1_macro",
           "python:nomodule:fn"]
CHECKS = ["equals", "contains", "not_contains", "regex", "is_json", "json_schema", "max_length", "python",
          "ignore_case", "message", "containz"]


def _base(n: int) -> dict[str, Any]:
    return {
        "prompt": "Q: {text}",
        "cases": [{"id": f"c{i}", "text": f"question {i}", "reference": "yes"} for i in range(n)],
        "metrics": {"exact_match": {"min": 0.5}},
    }


def _dump(obj: Any) -> bytes:
    return yaml.safe_dump(obj, allow_unicode=True, sort_keys=False).encode("utf-8")


# --------------------------------------------------------------------------- mutations of the data


@st.composite
def _top_key(draw: st.DrawFn, suite: dict[str, Any], choice: str | None = None) -> str:
    key = draw(st.sampled_from(SUITE_KEYS))
    suite[key] = draw(values)
    return f"top-key {key}"


@st.composite
def _drop_key(draw: st.DrawFn, suite: dict[str, Any], choice: str | None = None) -> str:
    key = choice or draw(st.sampled_from(["prompt", "cases", "metrics"]))
    suite.pop(key, None)
    return f"drop {key}"


@st.composite
def _case(draw: st.DrawFn, suite: dict[str, Any], choice: str | None = None) -> str:
    cases = suite.get("cases")
    if not isinstance(cases, list) or not cases:
        suite["cases"] = cases = _base(2)["cases"]
    i = draw(st.integers(0, len(cases) - 1))
    what = choice or draw(st.sampled_from(CASE_CHOICES))
    if not isinstance(cases[i], dict):
        cases[i] = {"text": "replaced", "reference": "yes"}
    case = cases[i]
    if what == "not-mapping":
        cases[i] = draw(st.one_of(scalars, st.lists(scalars, max_size=3)))
    elif what == "drop-text":
        case.pop("text", None)
    elif what == "duplicate":
        cases.append(dict(case))
    elif what == "duplicate-content":
        for c in cases:
            if isinstance(c, dict):
                c.pop("id", None)
        cases.append(dict(cases[i]))
    elif what == "drop-id":
        case.pop("id", None)
    elif what == "field":
        case[draw(st.text(max_size=6))] = draw(values)
    elif what == "tags":
        case["tags"] = draw(st.one_of(st.integers(), st.dictionaries(st.text(max_size=3), scalars, max_size=2),
                                      st.floats(), st.booleans()))
    elif what == "id-odd":
        case["id"] = draw(st.sampled_from(["", "a::b", "x]", "a\nb"]))
    elif what == "id":
        case["id"] = draw(st.one_of(values, st.sampled_from(["", "a::b", "x]", "a\nb", 7, True, 1.5])))
    else:
        case[what] = draw(values)
    return f"case {what}"


@st.composite
def _metric(draw: st.DrawFn, suite: dict[str, Any], choice: str | None = None) -> str:
    name = draw(st.sampled_from(METRICS))
    shape = choice or draw(st.sampled_from(METRIC_CHOICES))
    if shape == "value":
        raw: Any = draw(values)
    elif shape == "min-str":
        raw = {"min": draw(st.sampled_from(["0.5", "high", True, [1]]))}
    elif shape == "min-and-max":
        raw = {"min": 0.1, "max": 0.9}
    elif shape == "confidence":
        raw = {"min": 0.5, "confidence": draw(st.one_of(st.floats(allow_nan=True), st.sampled_from([0, 1, 95, "x"])))}
    elif shape == "option":
        raw = {"min": 0.5, draw(st.sampled_from(["average", "variant", "strip", "normalize", "labels",
                                                  "tokenize", "unit", "bogus"])): draw(values)}
    elif shape == "number":
        raw = draw(st.floats(allow_nan=True, allow_infinity=True))
    elif shape == "misspelt":
        name = draw(st.sampled_from(["exact_mach", "rougel", "f1_macro", "bleu4"]))
        raw = {"min": 0.5}
    else:
        raw = {"case_min": draw(st.one_of(scalars, st.just("x")))}
    suite["metrics"] = {name: raw}
    return f"metric {name} {shape}"


@st.composite
def _check(draw: st.DrawFn, suite: dict[str, Any], choice: str | None = None) -> str:
    shape = choice or draw(st.sampled_from(CHECK_CHOICES))
    if shape == "not-list":
        checks: Any = draw(st.one_of(scalars, st.dictionaries(st.sampled_from(CHECKS), values, max_size=2)))
    elif shape == "item":
        checks = [draw(st.one_of(scalars, st.lists(scalars, max_size=2)))]
    elif shape == "two-kinds":
        checks = [{"contains": "a", "equals": "b"} if draw(st.booleans()) else {"containz": "a"}]
    elif shape == "kind-value":
        checks = [{draw(st.sampled_from(CHECKS[:8])): draw(values)}]
    elif shape == "regex":
        checks = [{"regex": draw(st.sampled_from(["(", "[a-", "*x", "(?P<", "a{2,1}"]))}]
    else:
        checks = [{"json_schema": draw(st.sampled_from([{"type": 12}, {"type": "nope"},
                                                          {"minimum": "x"}, {"required": "a"}]))}]
    if draw(st.booleans()):
        suite["assert"] = checks
    else:
        cases = suite.get("cases")
        if isinstance(cases, list) and cases and isinstance(cases[0], dict):
            cases[0]["assert"] = checks
        else:
            suite["assert"] = checks
    return f"check {shape}"


@st.composite
def _template(draw: st.DrawFn, suite: dict[str, Any], choice: str | None = None) -> str:
    where = choice or draw(st.sampled_from(TEMPLATE_CHOICES))
    odd = st.sampled_from(["Q: {0}", "Q: {}", "Q: {text.x}", "Q: {text[0]}", "Q: {text!r}", "Q: {",
                           "Q: }", "Q: {missing}", "Q: {text:>{w}}"])
    template = draw(odd if draw(st.integers(0, 4)) else st.text(max_size=10))
    if where == "malformed":
        where, template = "prompt", draw(st.sampled_from(["Q: {", "Q: }", "{text", "a } b"]))
    if where == "prompt":
        suite["prompt"] = template
    elif where == "system":
        suite["system"] = template
    elif where == "messages":
        suite.pop("prompt", None)
        suite["messages"] = [{"role": draw(st.sampled_from(["user", "system", "bot"])), "content": template}]
    elif where == "both":
        suite["messages"] = [{"role": "user", "content": "{text}"}]
    else:
        suite.pop("prompt", None)
    return f"template {where}"


@st.composite
def _judge(draw: st.DrawFn, suite: dict[str, Any], choice: str | None = None) -> str:
    choice = choice or draw(st.sampled_from(JUDGE_CHOICES))
    suite["judge"] = {"empty": st.just({}), "model-only": st.just({"model": "similarity:"}),
                      "score": st.fixed_dictionaries({"score": values}),
                      "pairwise": st.fixed_dictionaries({"pairwise": values}), "value": values}
    suite["judge"] = draw(suite["judge"][choice])
    return f"judge {choice}"


CASE_CHOICES = ["id", "id-odd", "reference", "tags", "assert", "category", "drop-text", "not-mapping",
                "duplicate", "duplicate-content", "field", "drop-id"]
METRIC_CHOICES = ["value", "min-str", "min-and-max", "confidence", "option", "number", "case_min", "misspelt"]
CHECK_CHOICES = ["not-list", "item", "two-kinds", "kind-value", "regex", "schema"]
TEMPLATE_CHOICES = ["prompt", "prompt", "malformed", "system", "messages", "both", "neither"]
JUDGE_CHOICES = ["empty", "model-only", "score", "pairwise", "value"]
CASES_FILE_CHOICES = ["jsonl", "jsonl-bad", "jsonl-deep", "jsonl-int", "yaml", "yaml-empty", "yaml-map", "csv",
                      "csv-no-header", "csv-extra", "csv-big", "csv-nul", "missing", "txt", "jsonl-random"]
DATA_MUTATIONS = [_top_key, _drop_key, _case, _metric, _check, _template, _judge]


# --------------------------------------------------------------------------- mutations of the text


def _deep(n: int) -> str:
    return "[" * n + "]" * n


TEXT_MUTATIONS: list[tuple[str, Any]] = [
    ("duplicate key", lambda t: t + "prompt: again\n"),
    ("complex key", lambda t: t + "? [a, b]\n: 1\n"),
    ("date key", lambda t: t + "2024-01-01: x\n"),
    ("tab indent", lambda t: t.replace("  ", "\t", 1)),
    ("unclosed", lambda t: t + "extra: [1, 2\n"),
    ("multi doc", lambda t: t + "---\nprompt: x\n"),
    ("anchors", lambda t: "defs: &d {min: 0.5}\n" + t.replace("{min: 0.5}", "*d")),
    ("undefined alias", lambda t: t + "x: *nope\n"),
    ("alias bomb", lambda t: t + "bomb:\n" + "".join(
        f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}" if i else "x"] * 10) + "]\n" for i in range(8))),
    ("binary tag", lambda t: t + "description: !!binary aGVsbG8=\n"),
    ("bad binary", lambda t: t + "description: !!binary '%%%'\n"),
    ("set tag", lambda t: t + "description: !!set {a, b}\n"),
    ("python tag", lambda t: t + "description: !!python/object:os.system {}\n"),
    ("custom tag", lambda t: t + "description: !custom x\n"),
    ("bad timestamp", lambda t: t + "description: 2024-02-30\n"),
    ("deep yaml", lambda t: t + "description: " + _deep(400) + "\n"),
    ("deep ok", lambda t: t + "description: " + _deep(50) + "\n"),
    ("big int", lambda t: t + "seed: " + "7" * 4400 + "\n"),
    ("big float", lambda t: t + "confidence: 1e999\n"),
    ("empty", lambda t: ""),
    ("comment only", lambda t: "# nothing\n"),
    ("scalar", lambda t: "just text\n"),
    ("list", lambda t: "- a\n- b\n"),
    ("no cases", lambda t: t + "cases: []\n" if "cases:" not in t else re.sub(r"cases:[\s\S]*?(?=\n\w|\Z)",
                                                                                 "cases: []", t)),
    ("nul byte", lambda t: t + "description: a\x00b\n"),
    ("control chars", lambda t: t + 'description: "\\e[2J\\r"\n'),
]

ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]


@st.composite
def _cases_file(draw: st.DrawFn, suite: dict[str, Any], files: dict[str, bytes],
               choice: str | None = None) -> str:
    kind = choice or draw(st.sampled_from(CASES_FILE_CHOICES))
    rows = [{"id": f"f{i}", "text": f"file question {i}", "reference": "yes"} for i in range(3)]
    if kind == "jsonl":
        name, blob = "cases.jsonl", "\n".join(json.dumps(r) for r in rows).encode()
    elif kind == "jsonl-bad":
        name, blob = "cases.jsonl", (json.dumps(rows[0]) + "\n{not json\n").encode()
    elif kind == "jsonl-deep":
        depth = draw(st.sampled_from([150, 5000, 100_000]))
        name, blob = "cases.jsonl", ('{"text": "x", "reference": "y", "deep": ' + _deep(depth) + "}\n").encode()
    elif kind == "jsonl-int":
        name, blob = "cases.jsonl", ('{"text": "x", "reference": "y", "n": ' + "9" * 4400 + "}\n").encode()
    elif kind == "jsonl-random":
        lines = draw(st.lists(values, min_size=0, max_size=4))
        name = "cases.jsonl"
        blob = "\n".join(json.dumps(v, allow_nan=True) for v in lines).encode()
    elif kind == "yaml":
        name, blob = "cases.yaml", _dump(draw(st.one_of(st.just(rows), values)))
    elif kind == "yaml-empty":
        name, blob = "cases.yaml", b"# nothing\n"
    elif kind == "yaml-map":
        name, blob = "cases.yaml", b"a: 1\n"
    elif kind == "csv":
        name, blob = "cases.csv", b"id,text,reference\nf1,q,yes\nf2,r,no\n"
    elif kind == "csv-no-header":
        name, blob = "cases.csv", b""
    elif kind == "csv-extra":
        name, blob = "cases.csv", b"id,text,reference\nf1,q,yes,extra\n"
    elif kind == "csv-big":
        name, blob = "cases.csv", b"id,text,reference\nf1," + b"q" * 140_000 + b",yes\n"
    elif kind == "csv-nul":
        name, blob = "cases.csv", b"id,text,reference\nf1,q\x00,yes\n"
    elif kind == "missing":
        suite["cases"] = "nowhere.jsonl"
        return "cases missing"
    else:
        name, blob = "cases.txt", b"hello\n"
    files[name] = blob
    suite["cases"] = name
    return f"cases {kind}"


RECIPES: list[tuple[str, Any, str | None]] = (
    [("data", _top_key, None)] + [("data", _drop_key, c) for c in ("prompt", "cases", "cases", "metrics")]
    + [("data", _judge, c) for c in JUDGE_CHOICES]
    + [("data", _case, c) for c in CASE_CHOICES] + [("data", _metric, c) for c in METRIC_CHOICES]
    + [("data", _check, c) for c in CHECK_CHOICES] + [("data", _template, c) for c in TEMPLATE_CHOICES]
    + [("cases-file", _cases_file, c) for c in CASES_FILE_CHOICES]
    + [("text", None, name) for name, _ in TEXT_MUTATIONS] + [("bytes", None, None)] * 3
)
"""One targeted mutation per error path, so each is drawn often; a second mutation is random."""


@st.composite
def jsonl_suites(draw: st.DrawFn) -> Example:
    """A bare ``*.eval.jsonl`` suite: JSON values per line, valid or not."""
    kind = draw(st.sampled_from(["valid", "random", "empty", "bad", "deep", "int", "no-prompt", "bytes"]))
    if kind == "valid":
        lines = [json.dumps({"prompt": f"q{i}", "reference": "a"}) for i in range(3)]
    elif kind == "random":
        lines = [json.dumps(v, allow_nan=True) for v in draw(st.lists(values, min_size=1, max_size=4))]
    elif kind == "empty":
        lines = ["", "  "]
    elif kind == "bad":
        lines = ['{"prompt": "a"}', '{"prompt": ']
    elif kind == "deep":
        lines = ['{"prompt": "a", "x": ' + _deep(draw(st.sampled_from([101, 3000, 100_000]))) + "}"]
    elif kind == "int":
        lines = ['{"prompt": "a", "x": -' + "1" * 4500 + "}"]
    elif kind == "no-prompt":
        lines = ['{"question": "a"}']
    else:
        return Example("s.eval.jsonl", {"s.eval.jsonl": draw(st.binary(max_size=64))}, ["jsonl bytes"])
    return Example("s.eval.jsonl", {"s.eval.jsonl": ("\n".join(lines) + "\n").encode()}, [f"jsonl {kind}"])


@st.composite
def yaml_suites(draw: st.DrawFn) -> Example:
    """A ``*.eval.yaml`` suite from a valid one, with one or two mutations of data, text or bytes."""
    suite = _base(draw(st.integers(1, 4)))
    files: dict[str, bytes] = {}
    mutations: list[str] = []
    count = draw(st.sampled_from([0, 1, 1, 1, 1, 1, 1, 2, 2, 2]))
    for step in range(count):
        layer, fn, choice = draw(st.sampled_from(RECIPES))
        if step > 0 and layer == "data":
            fn, choice = draw(st.sampled_from(DATA_MUTATIONS)), None
        if layer == "data":
            mutations.append(draw(fn(suite, choice)))
        elif layer == "cases-file":
            mutations.append(draw(fn(suite, files, choice)))
        elif layer == "text":
            name, text_fn = (next(m for m in TEXT_MUTATIONS if m[0] == choice) if choice
                             else draw(st.sampled_from(TEXT_MUTATIONS)))
            mutations.append(f"text {name}")
            try:
                text = _dump(suite).decode()
            except yaml.YAMLError:
                text = "prompt: x\n"
            files["s.eval.yaml"] = text_fn(text).encode("utf-8", "surrogatepass")
            return Example("s.eval.yaml", files, mutations)
        else:
            encoding = draw(st.sampled_from(ENCODINGS + ["random"]))
            mutations.append(f"bytes {encoding}")
            if encoding == "random":
                blob = draw(st.binary(max_size=200))
            else:
                suite["description"] = "café – naïve ☃"
                blob = _dump(suite).decode().encode(encoding, "replace")
            files["s.eval.yaml"] = blob
            return Example("s.eval.yaml", files, mutations)
    files["s.eval.yaml"] = _dump(suite)
    return Example("s.eval.yaml", files, mutations)


def suite_files() -> st.SearchStrategy[Example]:
    """Every kind of example: mostly YAML suites, some bare JSONL suites."""
    return st.one_of(yaml_suites(), yaml_suites(), yaml_suites(), jsonl_suites())
