"""LLM judges: single-output scoring, rubric scoring and pairwise comparison with swapped positions.

``load_judge("openai:gpt-4o")`` (or ``anthropic:...``, ``hf:<dir>``,
``python:module:function``, ``similarity:``) builds a :class:`Judge`. Gates over
judges live in :mod:`pytest_llmeval.judge.gates`, pairwise statistics in
:mod:`pytest_llmeval.judge.pairwise`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.judge.base import CompareRequest, Judge, ScoreRequest
from pytest_llmeval.judge.verdicts import OrderVerdict, PairVerdict, ScoreVerdict

if TYPE_CHECKING:
    from pytest_llmeval.cache import Cache

__all__ = [
    "JUDGE_SCHEMES",
    "CompareRequest",
    "Judge",
    "OrderVerdict",
    "PairVerdict",
    "ScoreRequest",
    "ScoreVerdict",
    "load_judge",
]

JUDGE_SCHEMES = ("openai", "anthropic", "hf", "python", "similarity")
_LLM_SCHEMES = ("openai", "anthropic", "hf")


def load_judge(ref: str, *, options: Mapping[str, Any] | None = None, base_dir: Path,
               cache: Cache | None = None) -> Judge:
    """Build a judge from a reference.

    Args:
        ref: ``openai:<model>``, ``anthropic:<model>``, ``hf:<dir>``,
            ``python:module:function``, ``similarity:`` or ``similarity:<dir>``.
        options: judge options (``scale``, ``rubric``, ``swap``, ``prompts``, ``prompt_score``,
            ``prompt_pairwise``, ``max_new_tokens``, ``temperature``, ...); for LLM
            judges, any other option goes to the model backend (``base_url``,
            ``concurrency``, ...).
        base_dir: where relative paths (templates, model dirs) resolve.
        cache: when given, an LLM judge's model is wrapped in a ``CachedModel`` so
            verdicts are cached, keyed by the full judge prompt.

    Raises:
        ConfigError: bad reference or option (``MissingAPIKey`` when a provider
            key is missing).
    """
    opts = dict(options or {})
    scheme, sep, target = ref.partition(":")
    if not sep or scheme not in JUDGE_SCHEMES or (scheme != "similarity" and not target):
        close = difflib.get_close_matches(scheme, JUDGE_SCHEMES, n=1)
        hint = f" Did you mean '{close[0]}:'?" if close and close[0] != scheme else ""
        raise ConfigError(
            f"invalid judge reference {ref!r}.{hint} Expected one of openai:<model>, "
            f"anthropic:<model>, hf:<dir>, python:module:function, similarity: or "
            f"similarity:<dir>")
    if scheme == "python":
        from pytest_llmeval.judge import python_judge

        return python_judge.load(target, name=ref, options=opts, base_dir=base_dir)
    if scheme == "similarity":
        from pytest_llmeval.judge import similarity

        return similarity.load(target, name=ref, options=opts, base_dir=base_dir)
    return _load_llm_judge(ref, opts, base_dir, cache)


def _load_llm_judge(ref: str, opts: dict[str, Any], base_dir: Path, cache: Cache | None) -> Judge:
    from pytest_llmeval.judge.llm import LLM_OPTIONS, LLMJudge
    from pytest_llmeval.models import load_model

    judge_opts = {k: v for k, v in opts.items() if k in LLM_OPTIONS}
    backend_opts = {k: v for k, v in opts.items() if k not in LLM_OPTIONS}
    try:
        model = load_model(ref, name=f"judge {ref}", options=backend_opts, base_dir=base_dir)
    except ConfigError as exc:
        unknown = [k for k in backend_opts if difflib.get_close_matches(k, LLM_OPTIONS, n=1)]
        if not unknown or type(exc) is not ConfigError:
            raise
        hints = ", ".join(f"'{k}' -> '{difflib.get_close_matches(k, LLM_OPTIONS, n=1)[0]}'"
                          for k in unknown)
        raise ConfigError(f"{exc} (did you mean the judge option {hints}?)") from None
    if cache is not None:
        from pytest_llmeval.cache import CachedModel

        model = CachedModel(model, cache)
    return LLMJudge(model, ref, judge_opts, base_dir)
