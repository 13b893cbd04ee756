"""`llmeval schema` exports the suite schema; it validates the example suites and rejects a broken one."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from pytest_llmeval.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> jsonschema.Draft202012Validator:
    out = tmp_path_factory.mktemp("schema") / "schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    schema = json.loads(out.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", sorted((ROOT / "example_suite").rglob("*.eval.yaml")), ids=lambda p: p.name)
def test_example_suites_validate(validator: jsonschema.Draft202012Validator, path: Path) -> None:
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


@pytest.mark.parametrize("broken", [
    {"cases": "c.jsonl", "metrics": {"exact_match": {"min": "high"}}},
    {"cases": "c.jsonl", "contamination": {"trian": ["x"]}},
    {"cases": "c.jsonl", "confidense": 0.9},
    {"cases": "c.jsonl", "judge": {"score": {"scale": [1, 5]}}},
    {"cases": "c.jsonl", "latency": {"p95_ms": "fast"}},
    {"prompt": "{text}"},
])
def test_broken_suite_is_rejected(validator: jsonschema.Draft202012Validator, broken: dict) -> None:
    assert list(validator.iter_errors(broken))


def test_schema_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"metrics", "judge", "contamination", "latency", "cost"} <= set(schema["properties"])
