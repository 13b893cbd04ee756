"""The python: backend: how user functions are called, imported and timed."""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_llmeval.errors import ConfigError, ModelError
from pytest_llmeval.models import GenerationRequest, load_model
from pytest_llmeval.models.python_backend import PythonModel

SOURCE = '''
import asyncio
import time


def slow_upper(prompt, delay=0.0):
    time.sleep(delay)
    if prompt == "boom":
        raise RuntimeError("exploded")
    return prompt.upper()


def batch_upper(prompts):
    time.sleep(0.2)
    return [p.upper() for p in prompts]


async def async_upper(prompt):
    await asyncio.sleep(0.1 if prompt == "slow" else 0.0)
    return prompt.upper()


def not_text(prompt):
    return 42
'''


@pytest.fixture
def suite_dir(tmp_path: Path) -> Iterator[Path]:
    name = "pymodel_" + tmp_path.name.replace("-", "_")
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(SOURCE), encoding="utf-8")
    before = set(sys.modules)
    yield tmp_path
    for mod in set(sys.modules) - before:
        del sys.modules[mod]


def ref(suite_dir: Path, fn: str) -> str:
    return f"python:pymodel_{suite_dir.name.replace('-', '_')}:{fn}"


def test_each_call_is_timed_and_failures_carry_no_figures(suite_dir: Path) -> None:
    model = load_model(ref(suite_dir, "slow_upper"), options={"delay": 0.1}, base_dir=suite_dir)
    ticks: list[int] = []
    results = model.generate_with_info([GenerationRequest("a"), GenerationRequest("boom")],
                                       progress=ticks.append)
    (text, info), (err, err_info) = results
    assert text == "A" and info.latency_s is not None and 0.1 <= info.latency_s < 1.0
    assert info.input_tokens is None and info.cost_usd is None
    assert isinstance(err, RuntimeError) and err_info.latency_s is None
    assert ticks == [1, 1]


def test_a_batch_function_splits_its_time(suite_dir: Path) -> None:
    model = load_model(ref(suite_dir, "batch_upper"), base_dir=suite_dir)
    results = model.generate_with_info([GenerationRequest(p) for p in "abcd"])
    assert [g.outcome for g in results] == list("ABCD")
    latencies = {g.info.latency_s for g in results}
    assert len(latencies) == 1
    (share,) = latencies
    assert share is not None and 0.05 <= share < 0.2


def test_async_calls_are_timed_one_by_one(suite_dir: Path) -> None:
    model = load_model(ref(suite_dir, "async_upper"), base_dir=suite_dir)
    start = time.perf_counter()
    (fast, fast_info), (slow, slow_info) = model.generate_with_info(
        [GenerationRequest("fast"), GenerationRequest("slow")])
    assert (fast, slow) == ("FAST", "SLOW")
    assert fast_info.latency_s is not None and slow_info.latency_s is not None
    assert slow_info.latency_s >= 0.1 > fast_info.latency_s
    assert time.perf_counter() - start < 5


def test_a_wrong_return_type_is_that_slots_error(suite_dir: Path) -> None:
    model = load_model(ref(suite_dir, "not_text"), base_dir=suite_dir)
    [(err, info)] = model.generate_with_info([GenerationRequest("x")])
    assert isinstance(err, ModelError) and "expected str" in str(err) and info.latency_s is None


def test_generate_keeps_its_contract(suite_dir: Path) -> None:
    model = load_model(ref(suite_dir, "slow_upper"), base_dir=suite_dir)
    out = model.generate([GenerationRequest("x"), GenerationRequest("boom")])
    assert out[0] == "X" and isinstance(out[1], RuntimeError)


def test_the_module_is_also_found_in_search_dirs(suite_dir: Path, tmp_path_factory: pytest.TempPathFactory
                                                 ) -> None:
    elsewhere = tmp_path_factory.mktemp("suites")
    with pytest.raises(ConfigError, match=rf"model 'python:.*': cannot import module .*{elsewhere}"):
        load_model(ref(suite_dir, "slow_upper"), base_dir=elsewhere)
    model = load_model(ref(suite_dir, "slow_upper"), base_dir=elsewhere, search_dirs=[suite_dir])
    assert isinstance(model, PythonModel) and model.generate([GenerationRequest("q")]) == ["Q"]
