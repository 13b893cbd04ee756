"""Execute generated code against tests in a sandbox, and estimate pass@k.

``sandbox`` runs samples (a pool of sandboxed zygotes, one fresh process pair per sample),
``passk`` is the unbiased estimator, ``data`` reads HumanEval / MBPP and builds each
sample's job, ``postprocess`` cleans completions. The ``pass_at_k`` gate
(:mod:`pytest_llmeval.gates.pass_at_k`) puts them together for a suite's ``execute:`` section.
"""

from __future__ import annotations

from pytest_llmeval.execution.data import (
    case_tests,
    humaneval_cases,
    humaneval_path,
    job_for,
    load_humaneval,
    load_mbpp,
    mbpp_cases,
    mbpp_prompt,
    program_for,
    write_cases,
)
from pytest_llmeval.execution.passk import pass_at_k, pass_at_k_per_problem
from pytest_llmeval.execution.postprocess import postprocess, stop_at_next_def, strip_fences
from pytest_llmeval.execution.sandbox import (
    ALLOW_ENV,
    AssertTests,
    HumanEvalTests,
    Job,
    Limits,
    SampleResult,
    Sandbox,
    SandboxInfo,
)

__all__ = [
    "ALLOW_ENV",
    "AssertTests",
    "HumanEvalTests",
    "Job",
    "Limits",
    "SampleResult",
    "Sandbox",
    "SandboxInfo",
    "case_tests",
    "humaneval_cases",
    "humaneval_path",
    "job_for",
    "load_humaneval",
    "load_mbpp",
    "mbpp_cases",
    "mbpp_prompt",
    "pass_at_k",
    "pass_at_k_per_problem",
    "postprocess",
    "program_for",
    "stop_at_next_def",
    "strip_fences",
    "write_cases",
]
