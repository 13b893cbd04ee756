"""A judge that prompts any Model (OpenAI, Anthropic, a local ``hf:`` model, ...).

All verdict requests of a batch go to the model in one ``generate`` call, so an
API backend runs them concurrently and a local model batches them. Replies are
parsed strictly; the invalid ones get one repair turn (a second batched call
for just those), and a reply still invalid after it becomes a JudgeError that
shows the raw text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar, cast

from pytest_llmeval.errors import ConfigError, JudgeError
from pytest_llmeval.judge.base import COMMON_OPTIONS, Judge, OrderItem, ScoreItem
from pytest_llmeval.judge.prompts import PAIR_FORMAT, load_prompts, score_format
from pytest_llmeval.judge.verdicts import (
    OrderVerdict,
    ScoreVerdict,
    VerdictError,
    parse_pair,
    parse_score,
)
from pytest_llmeval.models.base import (
    GenerationParams,
    GenerationRequest,
    Message,
    Model,
    Prompt,
)

LLM_OPTIONS = (*COMMON_OPTIONS, "max_new_tokens", "temperature", "weighted_score")
"""Judge options an LLM judge understands; every other option goes to the model backend."""

V = TypeVar("V")


class LLMJudge(Judge):
    """Judge verdicts from a language model, asked for a JSON object.

    Args:
        model: any Model; wrap it in a ``CachedModel`` to cache verdicts.
        name: display name.
        options: judge options (see ``LLM_OPTIONS``).
        base_dir: where prompt template paths resolve.
    """

    kind = "llm"

    def __init__(self, model: Model, name: str, options: Mapping[str, Any],
                 base_dir: Path) -> None:
        super().__init__(name, options)
        self.model = model
        self.prompts = load_prompts(options, base_dir)
        max_new = options.get("max_new_tokens", 512)
        temperature = options.get("temperature", 0.0)
        if not isinstance(max_new, int) or isinstance(max_new, bool) or max_new < 1:
            raise ConfigError(f"judge option 'max_new_tokens' must be a positive integer, "
                              f"got {max_new!r}")
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) \
                or temperature < 0:
            raise ConfigError(f"judge option 'temperature' must be a number >= 0, "
                              f"got {temperature!r}")
        self.params = GenerationParams(max_new_tokens=max_new, temperature=float(temperature),
                                       json_mode=True)
        weighted = options.get("weighted_score", True)
        if not isinstance(weighted, bool):
            raise ConfigError(f"judge option 'weighted_score' must be true or false, "
                              f"got {weighted!r}")
        # a CachedModel wraps the backend: the rating probabilities come from the backend itself
        inner = model if hasattr(model, "next_token_probs") else getattr(model, "model", None)
        self._probs_model: Any = inner if weighted and callable(
            getattr(inner, "next_token_probs", None)) else None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model.describe(),
                "max_new_tokens": self.params.max_new_tokens,
                "temperature": self.params.temperature}

    def close(self) -> None:
        close = getattr(self.model, "close", None)
        if callable(close):
            close()

    def _score_batch(self, items: Sequence[ScoreItem]) -> list[ScoreVerdict | BaseException]:
        texts = [self.prompts.render_score_multiturn(i.history, i.prompt, i.response, i.criteria,
                                                     i.reference, i.scale, i.rubric) if i.history else
                 self.prompts.render_score(i.prompt, i.response, i.criteria, i.reference, i.scale, i.rubric)
                 for i in items]
        parsers: list[Callable[[str], ScoreVerdict]] = [
            partial(parse_score, scale=it.scale, rubric=list(it.rubric) if it.rubric else None)
            for it in items]
        formats = [score_format(i.scale, list(i.rubric) if i.rubric else None) for i in items]
        results = self._ask(texts, parsers, formats)
        if self._probs_model is not None:
            results = self._weight(items, texts, results)
        return results

    def _order_batch(self, items: Sequence[OrderItem]) -> list[OrderVerdict | BaseException]:
        texts = [self.prompts.render_pairwise_multiturn(i.prompt, i.first_text, i.second_text,
                                                        i.first_history, i.second_history, i.criteria,
                                                        i.reference)
                 if i.first_history or i.second_history else
                 self.prompts.render_pairwise(i.prompt, i.first_text, i.second_text, i.criteria, i.reference)
                 for i in items]
        parsers: list[Callable[[str], OrderVerdict]] = [
            partial(parse_pair, first=it.first) for it in items]
        return self._ask(texts, parsers, [PAIR_FORMAT] * len(items))

    def _generate(self, conversations: Sequence[list[Message]]) -> list[str | BaseException]:
        requests = [GenerationRequest(prompt=c, params=self.params) for c in conversations]
        try:
            outs = list(self.model.generate(requests))
        except ConfigError:
            raise
        except Exception as exc:  # a whole-batch failure is every slot's failure
            return [JudgeError(f"judge model {self.model.name!r} failed: {exc}")] * len(requests)
        if len(outs) != len(requests):
            err = JudgeError(f"judge model {self.model.name!r} returned {len(outs)} replies for "
                             f"{len(requests)} requests")
            return [err] * len(requests)
        return outs

    def _ask(self, texts: Sequence[str], parsers: Sequence[Callable[[str], V]],
             formats: Sequence[str]) -> list[V | BaseException]:
        """Generate, parse, and give each invalid reply one repair turn (one batched call)."""
        convs: list[list[Message]] = [[{"role": "user", "content": t}] for t in texts]
        outs = self._generate(convs)
        results: list[V | BaseException | None] = []
        retry: list[tuple[int, str, str]] = []
        for i, out in enumerate(outs):
            if isinstance(out, BaseException):
                results.append(_model_failure(self.model.name, out))
                continue
            try:
                results.append(parsers[i](out))
            except VerdictError as exc:
                results.append(None)
                retry.append((i, out, str(exc)))
        repair_convs = [convs[i] + [{"role": "assistant", "content": raw},
                                    {"role": "user",
                                     "content": self.prompts.render_repair(problem, formats[i])}]
                        for i, raw, problem in retry]
        repaired = self._generate(repair_convs) if repair_convs else []
        for (i, first_raw, problem), out in zip(retry, repaired, strict=True):
            if isinstance(out, BaseException):
                results[i] = JudgeError(f"invalid judge verdict ({problem}); the repair retry "
                                        f"failed: {out}", raw=first_raw)
                continue
            try:
                value = parsers[i](out)
            except VerdictError as exc:
                results[i] = JudgeError(
                    f"invalid judge verdict after one repair retry ({exc}); first reply "
                    f"({problem}): {first_raw!r}", raw=out)
                continue
            results[i] = _mark_repaired(value)
        # every None slot was in ``retry`` and has been filled above
        return cast("list[V | BaseException]", results)

    def _weight(self, items: Sequence[ScoreItem], texts: Sequence[str],
                results: list[ScoreVerdict | BaseException]) -> list[ScoreVerdict | BaseException]:
        """G-Eval: replace a written score by its expectation under the rating-token probabilities.

        Only for plain scores on a scale of single digits (each rating one token
        on any tokenizer); the reply up to the score value is replayed as the
        start of the assistant turn and the model's next-token distribution over
        the ratings weights them (the hf backend continues a final assistant
        message instead of opening a new turn).
        """
        todo: list[tuple[int, Prompt, list[str]]] = []
        for i, (item, res) in enumerate(zip(items, results, strict=True)):
            lo, hi = item.scale
            if isinstance(res, BaseException) or item.rubric or lo < 0 or hi > 9:
                continue
            prefix = _prefix_before_score(res.raw)
            if prefix is None:
                continue
            conv: Prompt = [{"role": "user", "content": texts[i]},
                            {"role": "assistant", "content": prefix}]
            todo.append((i, conv, [str(s) for s in range(lo, hi + 1)]))
        if not todo:
            return results
        by_candidates: dict[tuple[str, ...], list[tuple[int, Prompt]]] = {}
        for i, conv, ratings in todo:
            by_candidates.setdefault(tuple(ratings), []).append((i, conv))
        out = list(results)
        for cands, group in by_candidates.items():
            try:
                probs = self._probs_model.next_token_probs([c for _, c in group], list(cands))
            except (ValueError, NotImplementedError):
                continue  # the tokenizer cannot score these ratings: keep the written scores
            for (i, _), dist in zip(group, probs, strict=False):
                total = sum(dist.get(c, 0.0) for c in cands)
                verdict = out[i]
                if total <= 0 or isinstance(verdict, BaseException):
                    continue
                expected = sum(int(c) * dist.get(c, 0.0) for c in cands) / total
                out[i] = ScoreVerdict(expected, verdict.reasoning, verdict.scale, None,
                                      verdict.raw, verdict.repaired, greedy_score=verdict.score)
        return out


def _prefix_before_score(raw: str) -> str | None:
    """The reply up to (not including) the score's value, or None when not found."""
    m = re.search(r'"score"\s*:\s*', raw)
    return raw[:m.end()] if m else None


def _model_failure(model_name: str, exc: BaseException) -> BaseException:
    if isinstance(exc, JudgeError):
        return exc
    err = JudgeError(f"judge model {model_name!r} failed: {type(exc).__name__}: {exc}")
    err.__cause__ = exc
    return err


def _mark_repaired(value: V) -> V:
    return replace(value, repaired=True)  # type: ignore[type-var]
