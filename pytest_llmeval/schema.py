"""The suite file's JSON Schema (``llmeval schema``), built from the same pydantic models that
validate suites at collection, so editors and the collector agree.

VS Code (the YAML extension by Red Hat) validates suite files with it::

    llmeval schema > llmeval.schema.json
    # .vscode/settings.json
    {"yaml.schemas": {"./llmeval.schema.json": ["*.eval.yaml", "*.eval.yml"]}}
"""

from __future__ import annotations

import copy
from typing import Any


def suite_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a ``*.eval.yaml`` suite file."""
    from pytest_llmeval.gates.metric import MetricGateSpec
    from pytest_llmeval.gates.registry import sections
    from pytest_llmeval.spec import SuiteSpec

    schema = SuiteSpec.model_json_schema(by_alias=True, mode="validation")
    defs = schema.setdefault("$defs", {})
    props = schema["properties"]
    props.pop("sections", None)
    metric = MetricGateSpec.model_json_schema(mode="validation")
    entry = {k: v for k, v in metric.get("properties", {}).items() if k not in ("options",)}
    entry.pop("metric", None)
    for sub, sub_schema in metric.get("$defs", {}).items():
        defs.setdefault(sub, sub_schema)
    defs["MetricGate"] = {
        "description": "A metric gate: the gate's options; any other key is an option of the metric.",
        "oneOf": [
            {"type": "number", "description": "shorthand for {min: <number>}"},
            {"type": "null"},
            {"type": "object", "properties": {"metric": {"type": "string"}, **entry},
             "additionalProperties": True},
        ],
    }
    props["metrics"] = {"type": "object", "description": "metric gates by name",
                        "additionalProperties": {"$ref": "#/$defs/MetricGate"}}
    for key, cls in sorted(sections().items()):
        sub = copy.deepcopy(cls.Spec.model_json_schema(mode="validation"))
        for name, d in sub.pop("$defs", {}).items():
            defs.setdefault(name, d)
        sub["description"] = cls.description or sub.get("description", "")
        props[key] = sub
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "pytest-llmevals suite file"
    schema["additionalProperties"] = False
    return schema
