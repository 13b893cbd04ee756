"""Blind sets: sampling, A/B order, assignment, what is kept from raters, and bad input."""

from __future__ import annotations

import json
import stat
from collections import Counter
from pathlib import Path

import pytest

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.human.blindset import (
    BLIND_FILE,
    MAPPING_FILE,
    TOKENS_FILE,
    Rubric,
    SourceCase,
    assign,
    cases_from_results,
    create_blind_set,
    load_blind_set,
    load_mapping,
    parse_raters,
    stratified_sample,
    text_hash,
    write_blind_set,
)
from pytest_llmeval.results import CaseResult, RunResult, SuiteResult


def _cases(n: int, cats: tuple[str, ...] = ("a", "b")) -> list[SourceCase]:
    return [SourceCase(f"c{i:03d}", f"prompt {i}", f"model {i}", f"base {i}", None, cats[i % len(cats)])
            for i in range(n)]


def test_order_is_random_per_case_seeded_and_stable_under_sampling() -> None:
    cases = _cases(400)
    blind, mapping, _ = create_blind_set(cases, model="m", baseline="b", raters=["x", "y", "z"], seed=5)
    share = sum(v == "model" for v in mapping.a_is.values()) / len(cases)
    assert 0.42 < share < 0.58  # about half the items show the model first
    for it in blind.items:
        i = int(it.id[1:])
        assert (it.output_a, it.output_b) == ((f"model {i}", f"base {i}") if mapping.a_is[it.id] == "model"
                                              else (f"base {i}", f"model {i}"))
    again, mapping2, _ = create_blind_set(cases, model="m", baseline="b", raters=["x", "y", "z"], seed=5)
    assert mapping2.a_is == mapping.a_is
    sampled, mapping3, _ = create_blind_set(cases, model="m", baseline="b", raters=["x", "y", "z"],
                                            seed=5, sample=50)
    assert all(mapping3.a_is[i] == mapping.a_is[i] for i in mapping3.a_is)
    other, mapping4, _ = create_blind_set(cases, model="m", baseline="b", raters=["x", "y", "z"], seed=6)
    assert mapping4.a_is != mapping.a_is


def test_stratified_sample_keeps_category_shares_and_file_order() -> None:
    cases = [SourceCase(f"c{i:03d}", "p", "m", "b", None, "big" if i < 80 else "small") for i in range(100)]
    got = stratified_sample(cases, 20, seed=1)
    assert Counter(c.category for c in got) == {"big": 16, "small": 4}
    assert [c.id for c in got] == sorted(c.id for c in got)
    assert stratified_sample(cases, 20, seed=1) == got and stratified_sample(cases, 20, seed=2) != got
    assert stratified_sample(cases, 500, seed=1) == cases
    with pytest.raises(ConfigError, match="--sample"):
        stratified_sample(cases, 0, seed=1)


def test_round_robin_assignment_balances_load() -> None:
    items = [f"i{k}" for k in range(25)]
    queues = assign(items, ["a", "b", "c", "d", "e"], per_item=3, seed=0)
    loads = sorted(len(q) for q in queues.values())
    assert loads[-1] - loads[0] <= 1 and sum(loads) == 75
    per_item = Counter(i for q in queues.values() for i in q)
    assert set(per_item.values()) == {3}
    assert all(len(set(q)) == len(q) for q in queues.values())  # no rater sees an item twice
    with pytest.raises(ConfigError, match="--per-item 4 is more than the 3 rater"):
        assign(items, ["a", "b", "c"], per_item=4, seed=0)


def test_files_keep_the_mapping_and_tokens_from_what_raters_read(tmp_path: Path) -> None:
    blind, mapping, tokens = create_blind_set(_cases(10), model="MODEL_X", baseline="BASE_Y",
                                              raters=["alice", "bob", "carol"], per_item=2, seed=0)
    write_blind_set(tmp_path, blind, mapping, tokens)
    served = (tmp_path / BLIND_FILE).read_text()
    assert "MODEL_X" not in served and "BASE_Y" not in served and '"a_is"' not in served
    assert not any(t in served for t in tokens.values())
    assert stat.S_IMODE((tmp_path / MAPPING_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / TOKENS_FILE).stat().st_mode) == 0o600
    assert json.loads((tmp_path / TOKENS_FILE).read_text())["tokens"] == tokens
    assert len({len(t) for t in tokens.values()}) == 1 and len(tokens["alice"]) >= 40
    loaded = load_blind_set(tmp_path)
    assert loaded.rater_for_token(tokens["bob"]) == "bob" and loaded.rater_for_token("bob") is None
    assert load_mapping(tmp_path, loaded).a_is == mapping.a_is
    item = loaded.items[0]
    assert item.prompt_hash == text_hash(item.prompt)
    with pytest.raises(ConfigError, match="already exists"):
        write_blind_set(tmp_path, blind, mapping, tokens)


def test_mapping_of_another_set_is_refused(tmp_path: Path) -> None:
    one = create_blind_set(_cases(4), model="m", baseline="b", raters=["a"], per_item=1)
    two = create_blind_set(_cases(4), model="m", baseline="b", raters=["a"], per_item=1)
    write_blind_set(tmp_path / "one", *one)
    write_blind_set(tmp_path / "two", *two)
    with pytest.raises(ConfigError, match="belongs to blind set"):
        load_mapping(tmp_path / "two", load_blind_set(tmp_path / "one"))


def test_bad_names_rubrics_and_duplicate_ids_are_clear_errors() -> None:
    assert parse_raters(" alice, bob ") == ["alice", "bob"]
    for bad, msg in (("", "at least one"), ("alice,alice", "twice"), ("al ice", "not a valid name"),
                     ("<x>", "not a valid name")):
        with pytest.raises(ConfigError, match=msg):
            parse_raters(bad)
    with pytest.raises(ConfigError, match="criteria\\[0\\]"):
        Rubric.from_dict({"criteria": [{"question": "no name"}]})
    with pytest.raises(ConfigError, match="low < high"):
        Rubric.from_dict({"criteria": [{"name": "x", "low": 5, "high": 1}]})
    rubric = Rubric.from_dict({"criteria": [{"name": "helpful", "low": 0, "high": 3}]})
    assert rubric.criteria[0].scale == [0, 1, 2, 3]
    dup = [SourceCase("x", "p", "m", "b"), SourceCase("x", "q", "m", "b")]
    with pytest.raises(ConfigError, match="appears twice"):
        create_blind_set(dup, model="m", baseline="b", raters=["a"], per_item=1)


def _run(model: str, outputs: dict[str, str | None], baseline: dict[str, str | None] | None = None,
         prompt: str = "p") -> RunResult:
    cases = [CaseResult(id=k, prompt=f"{prompt} {k}", output=v,
                        baseline_output=(baseline or {}).get(k)) for k, v in outputs.items()]
    return RunResult(suites=[SuiteResult(name="s", file="s.eval.yaml", model=model,
                                         baseline="base" if baseline else None, cases=cases)])


def test_cases_from_one_results_file_or_two() -> None:
    one = _run("ft", {"a": "x", "b": None, "c": "z"}, baseline={"a": "1", "b": "2", "c": "3"})
    cases, model, base, skipped = cases_from_results(one)
    assert [c.id for c in cases] == ["a", "c"] and skipped == ["b"] and (model, base) == ("ft", "base")
    m = _run("ft", {"a": "x", "c": "z"})
    b = _run("old", {"a": "1", "c": "3"})
    cases, model, base, _ = cases_from_results(m, baseline_run=b)
    assert [(c.model_output, c.baseline_output) for c in cases] == [("x", "1"), ("z", "3")]
    assert (model, base) == ("ft", "old")
    with pytest.raises(ConfigError, match="different prompts"):
        cases_from_results(m, baseline_run=_run("old", {"a": "1"}, prompt="q"))
    with pytest.raises(ConfigError, match="no suite has baseline outputs"):
        cases_from_results(m)
    with pytest.raises(ConfigError, match="no suite named 'zz'"):
        cases_from_results(one, "zz")
