"""Fuzzing the suite loader: no exception but SpecError/ConfigError escapes, every error kind is reached,
and a fuzzed file beside a good suite never stops a pytest session.

The default run tries a few hundred files in-process and about fifty full pytest
sessions; the ``slow`` variants try 10,000 files and a few hundred sessions.
Examples are derandomised (the same examples every run for one hypothesis version);
which examples a version draws differs, so when the first 1,000 leave an error kind
unreached the default run draws up to three more batches from fixed seeds: the
coverage check is stable on every version. The slow variant draws fresh ones.
"""

from __future__ import annotations

import json
import os
import tempfile
import traceback
from collections import Counter
from pathlib import Path

# pytester runs pytest in this process; C extensions cannot be loaded twice, so load them once here.
import numpy  # noqa: F401
import pydantic  # noqa: F401
import pytest
import sklearn.metrics  # noqa: F401
from hypothesis import HealthCheck, given, seed, settings

from pytest_llmeval.errors import ConfigError, SpecError
from pytest_llmeval.spec import load_suite

from .fuzz_strategies import ERROR_KINDS, RARE_KINDS, UNREACHED_BY_DESIGN, Example, error_kind, suite_files

FIGURES = os.environ.get("LLMEVAL_FUZZ_FIGURES")
"""When set, a JSON file the runs append their figures to (for the README's Reliability section)."""


def _write(example: Example, folder: Path) -> Path:
    for name, blob in example.files.items():
        (folder / name).write_bytes(blob)
    return folder / example.suite


def _fuzz(max_examples: int, derandomize: bool,
          fixed_seed: int | None = None) -> tuple[Counter[str], set[str], list[str], int]:
    kinds: Counter[str] = Counter()
    messages: set[str] = set()
    escapes: list[str] = []
    tried = [0]

    @settings(max_examples=max_examples, derandomize=derandomize, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(example=suite_files())
    def check(example: Example) -> None:
        tried[0] += 1
        with tempfile.TemporaryDirectory() as tmp:
            path = _write(example, Path(tmp))
            try:
                load_suite(path)
                kinds["loaded"] += 1
            except SpecError as exc:
                assert exc.path, f"a SpecError without a file: {exc}"
                kind = error_kind(exc.message)
                kinds[kind] += 1
                messages.add(exc.message.split("\n")[0][:200])
                assert kind != "other", f"an error message no kind describes: {exc.message!r}"
            except ConfigError as exc:
                kinds["config"] += 1
                messages.add(str(exc)[:200])
            except BaseException as exc:  # noqa: BLE001 - the invariant is about every other exception
                escapes.append(f"{example.mutations}: {type(exc).__name__}: {exc}\n"
                               + "".join(traceback.format_exception(exc)[-3:]))

    (seed(fixed_seed)(check) if fixed_seed is not None else check)()
    return kinds, messages, escapes, tried[0]


def _record(name: str, figures: dict[str, object]) -> None:
    if FIGURES:
        path = Path(FIGURES)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[name] = figures
        path.write_text(json.dumps(data, indent=2, sort_keys=True))


def _assert_invariants(name: str, kinds: Counter[str], messages: set[str], escapes: list[str],
                       tried: int) -> None:
    _record(name, {"examples": tried, "distinct_messages": len(messages), "escapes": len(escapes),
                   "kinds": dict(sorted(kinds.items()))})
    assert not escapes, f"{len(escapes)} exceptions escaped the loader:\n" + "\n".join(escapes[:5])
    missing = _missing(kinds)
    assert not missing, f"error kinds never reached: {sorted(missing)}"
    assert kinds["loaded"] > 0


def _missing(kinds: Counter[str]) -> set[str]:
    return {k for k, _ in ERROR_KINDS if k not in RARE_KINDS} - set(kinds)


def test_fuzz_loader_default() -> None:
    kinds, messages, escapes, tried = _fuzz(max_examples=1000, derandomize=True)
    for extra_seed in (1, 2, 3):  # a hypothesis version whose 1,000 examples miss a kind: fixed seeds
        if not _missing(kinds) or escapes:
            break
        more, more_messages, more_escapes, more_tried = _fuzz(1000, derandomize=False, fixed_seed=extra_seed)
        kinds.update(more)
        messages |= more_messages
        escapes += more_escapes
        tried += more_tried
    _assert_invariants("default", kinds, messages, escapes, tried)


@pytest.mark.slow
def test_fuzz_loader_slow() -> None:
    kinds, messages, escapes, tried = _fuzz(max_examples=10_000, derandomize=False)
    assert tried >= 10_000
    _assert_invariants("slow", kinds, messages, escapes, tried)


def test_unreached_kinds_are_few_and_explained() -> None:
    assert len(UNREACHED_BY_DESIGN) <= 3 and all(len(why) > 20 for why in UNREACHED_BY_DESIGN.values())


# --------------------------------------------------------------------------- whole sessions

GOOD_SUITE = """\
model: "python:fuzzmodel:answer"
prompt: "Q: {text}"
cases:
  - {id: g1, text: one, reference: "yes"}
  - {id: g2, text: two, reference: "yes"}
metrics:
  exact_match: {min: 0.5}
"""
GOOD_ITEMS = {"good.eval.yaml::case[g1]", "good.eval.yaml::case[g2]", "good.eval.yaml::exact_match"}


def _sessions(pytester: pytest.Pytester, max_examples: int, derandomize: bool) -> int:
    pytester.makepyfile(fuzzmodel="def answer(prompt):\n    return 'yes'\n")
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nllmeval_cache = off\n")
    count = [0]

    @settings(max_examples=max_examples, derandomize=derandomize, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(example=suite_files())
    def session(example: Example) -> None:
        count[0] += 1
        folder = pytester.path / f"run{count[0]}"
        folder.mkdir()
        (folder / "good.eval.yaml").write_text(GOOD_SUITE)
        sub = folder / "fuzzed"
        sub.mkdir()
        _write(example, sub)
        reprec = pytester.inline_run(str(folder), "-p", "no:cacheprovider", "-q")
        assert reprec.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), (
            f"session ended with {reprec.ret!r} for {example.mutations}")
        passed = {r.nodeid.split("/")[-1] for r in reprec.getreports("pytest_runtest_logreport")
                  if r.when == "call" and r.passed and "good.eval.yaml" in r.nodeid}
        assert passed == GOOD_ITEMS, f"good suite items {sorted(passed)} for {example.mutations}"
        for rep in reprec.getreports("pytest_collectreport"):
            if rep.failed:
                text = str(rep.longrepr)
                assert "fuzzed" in rep.nodeid, f"collection error outside the fuzzed file: {text}"
                assert "Traceback" not in text and "fuzzed/" in text, text

    session()
    return count[0]


def test_fuzzed_file_beside_a_good_suite_never_stops_the_session(pytester: pytest.Pytester) -> None:
    runs = _sessions(pytester, max_examples=50, derandomize=True)
    _record("sessions-default", {"sessions": runs})
    assert runs == 50


@pytest.mark.slow
def test_fuzzed_sessions_slow(pytester: pytest.Pytester) -> None:
    runs = _sessions(pytester, max_examples=300, derandomize=False)
    _record("sessions-slow", {"sessions": runs})
    assert runs == 300
