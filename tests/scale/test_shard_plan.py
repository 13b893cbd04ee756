"""The shard plan (pytest-free): every file or case in exactly one shard, balanced, deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.sharding import Shard, Unit, assign, load_durations, parse_shard, updated_durations


def _plans(units: list[Unit], total: int, mode: str = "suites",
           durations: dict[str, float] | None = None) -> list:
    return [assign(units, Shard(k, total, mode), durations) for k in range(1, total + 1)]  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["0/3", "4/3", "3", "a/b", "1/0", "-1/2", ""])
def test_parse_shard_names_the_option(bad: str) -> None:
    with pytest.raises(ConfigError, match="--llmeval-shard"):
        parse_shard(bad)


def test_parse_shard() -> None:
    assert parse_shard(" 2/3 ") == Shard(2, 3, "suites")
    assert parse_shard("1/1", cases=True).mode == "cases"


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=30),
       total=st.integers(min_value=1, max_value=8))
def test_suites_mode_puts_each_file_in_exactly_one_shard_balanced(sizes: list[int], total: int) -> None:
    units = [Unit(f"f{i}.eval.yaml", s) for i, s in enumerate(sizes)]
    plans = _plans(units, total)
    seen = [f for p in plans for f in p.files]
    assert sorted(seen) == sorted(u.key for u in units)
    loads = [sum(max(u.size, 1) for u in units if u.key in p.files) for p in plans]
    # greedy longest-first: no shard exceeds the lightest by more than the largest file
    assert max(loads) - min(loads) <= max(max(s, 1) for s in sizes)
    assert all(p.loads == plans[0].loads for p in plans)  # every job computes the same plan


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=6),
       total=st.integers(min_value=1, max_value=7))
def test_cases_mode_deals_every_case_once_and_evenly(counts: list[int], total: int) -> None:
    units = [Unit(f"s{i}", n, tuple(f"s{i}-c{j}" for j in range(n))) for i, n in enumerate(counts)]
    plans = _plans(units, total, "cases")
    per_shard = [sum(len(ids) for ids in p.cases.values()) for p in plans]
    assert max(per_shard) - min(per_shard) <= 1
    for u in units:
        got = [c for p in plans for c in p.cases.get(u.key, set())]
        assert sorted(got) == sorted(u.case_ids)
    assert all(not p.files for p in plans)


def test_cases_mode_spreads_whole_units_too() -> None:
    units = [Unit("big", 30, tuple(str(i) for i in range(30))), Unit("whole.eval.yaml", 12),
             Unit("test_plain.py", 2)]
    plans = _plans(units, 3, "cases")
    assert sorted(f for p in plans for f in p.files) == ["test_plain.py", "whole.eval.yaml"]
    assert [len(p.cases["big"]) for p in plans] == [10, 10, 10]


def test_durations_balance_by_recorded_seconds() -> None:
    units = [Unit("a", 10), Unit("b", 10), Unit("c", 10), Unit("d", 10)]
    plain = _plans(units, 2)
    assert [len(p.files) for p in plain] == [2, 2]
    timed = _plans(units, 2, durations={"a::case[1]": 50.0, "a::gate": 40.0, "b": 30.0, "c": 30.0,
                                        "d": 25.0})
    assert [sorted(p.files) for p in timed] == [["a"], ["b", "c", "d"]]


def test_files_missing_from_durations_count_the_average_rate() -> None:
    units = [Unit("a", 10), Unit("b", 10), Unit("new", 40)]
    plans = _plans(units, 2, durations={"a": 10.0, "b": 10.0})  # 1 s per sample: 'new' weighs 40 s
    assert [sorted(p.files) for p in plans] == [["new"], ["a", "b"]]


def test_durations_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="durations file not found"):
        load_durations(tmp_path / "nope.json")
    bad = tmp_path / "d.json"
    bad.write_text("[1]", encoding="utf-8")
    with pytest.raises(ConfigError, match="must hold a JSON object"):
        load_durations(bad)
    bad.write_text(json.dumps({"a": -1}), encoding="utf-8")
    with pytest.raises(ConfigError, match="'a' must be a number of seconds >= 0"):
        load_durations(bad)
    bad.write_text(json.dumps({"a": 1.5, "b::x": 2}), encoding="utf-8")
    assert load_durations(bad) == {"a": 1.5, "b::x": 2.0}


def test_updated_durations_replace_this_runs_files_only() -> None:
    old = {"a::case[1]": 3.0, "a::gate": 1.0, "b": 2.0}
    assert updated_durations(old, {"a": 5.0}) == {"a": 5.0, "b": 2.0}
