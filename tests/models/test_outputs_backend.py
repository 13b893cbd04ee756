"""The outputs: backend: answers by case id, with the figures the producing job recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llmeval.errors import ConfigError, ModelError
from pytest_llmeval.models import GenerationInfo, GenerationRequest, load_model


def write(tmp_path: Path, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / "out.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_answers_by_case_id_with_recorded_figures(tmp_path: Path) -> None:
    write(tmp_path, [
        {"id": "a", "output": "alpha", "latency_s": 0.42, "input_tokens": 10, "output_tokens": 2,
         "cost_usd": 0.001},
        {"id": "b", "output": "beta"},
        {"id": "b", "sample": 1, "output": "beta again", "latency_s": None},
    ])
    model = load_model("outputs:out.jsonl", base_dir=tmp_path)
    assert model.capabilities.needs_case_ids
    results = model.generate_with_info([
        GenerationRequest("p", case_id="a"), GenerationRequest("p", case_id="b"),
        GenerationRequest("p", case_id="b", sample=1), GenerationRequest("p", case_id="zzz"),
        GenerationRequest("p"),
    ])
    assert [g.outcome for g in results[:3]] == ["alpha", "beta", "beta again"]
    assert results[0].info == GenerationInfo(latency_s=0.42, input_tokens=10, output_tokens=2, cost_usd=0.001)
    assert results[1].info == GenerationInfo() and results[2].info == GenerationInfo()
    missing, no_id = results[3].outcome, results[4].outcome
    assert isinstance(missing, ModelError) and "no output for case 'zzz'" in str(missing)
    assert isinstance(no_id, ModelError) and "answers by case id" in str(no_id)


def test_generate_for_cases_still_works(tmp_path: Path) -> None:
    write(tmp_path, [{"id": "a", "output": "alpha"}])
    model = load_model("outputs:out.jsonl", base_dir=tmp_path)
    assert model.generate_for_cases(["a"], [GenerationRequest("p")]) == ["alpha"]  # type: ignore[attr-defined]


def test_a_bad_recorded_figure_names_the_line(tmp_path: Path) -> None:
    write(tmp_path, [{"id": "a", "output": "x"}, {"id": "b", "output": "y", "latency_s": "fast"}])
    with pytest.raises(ConfigError, match=r"out\.jsonl:2: 'latency_s' must be a non-negative number"):
        load_model("outputs:out.jsonl", base_dir=tmp_path)
