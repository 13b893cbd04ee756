"""Batched log-likelihood scoring for the ``hf:`` backend.

Scoring many (context, continuation) pairs is one forward pass per batch:
pairs are tokenized in bulk, sorted by length so a batch carries little
padding, right-padded (so every token keeps its natural position), and the
language-model head is applied only to the positions that predict
continuation tokens. Log-probabilities are gathered and summed on the device;
the host reads the results once, at the end, so no batch waits for the
previous one to finish.

torch is imported inside the functions, like the rest of the backend.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, NamedTuple

from pytest_llmeval.errors import ModelError


class Loglikelihood(NamedTuple):
    """The score of one continuation after its context.

    ``logprob`` is the sum of the log-probabilities of the continuation's
    tokens, ``tokens`` how many tokens that sum covers (for length-normalised
    scores), and ``is_greedy`` whether every one of those tokens was the
    model's most probable next token (greedy decoding would produce it).
    """

    logprob: float
    tokens: int
    is_greedy: bool


def encode_pairs(tokenizer: Any, pairs: Sequence[tuple[str, str]],
                 context_length: int) -> list[tuple[list[int], int]]:
    """Token ids of each pair (context then continuation) and how many trailing ids to score.

    Whitespace at the end of a context moves to the start of its continuation,
    so ``("Answer:", " B")`` and ``("Answer: ", "B")`` score the same tokens.
    Distinct contexts are tokenized once (a multiple-choice question repeats
    its context for every choice), all in one call to the tokenizer. The
    context is truncated from the left when the pair exceeds
    ``context_length``; the continuation is always kept whole.
    """
    contexts: list[str] = []
    continuations: list[str] = []
    for context, continuation in pairs:
        stripped = context.rstrip()
        contexts.append(stripped)
        continuations.append(context[len(stripped):] + continuation)
    unique = sorted({c for c in contexts if c})
    context_ids = dict(zip(unique, _ids(tokenizer, unique, special=True), strict=True))
    fallback = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None
                else tokenizer.eos_token_id]
    items = []
    for (context, _), stripped, cont in zip(pairs, contexts, _ids(tokenizer, continuations, special=False),
                                             strict=True):
        if not cont:
            raise ValueError(f"empty continuation for context {context[-40:]!r}")
        ctx = context_ids[stripped] if stripped else fallback
        ids = (ctx + cont)[-(context_length + 1):]
        items.append((ids, min(len(cont), len(ids) - 1)))
    return items


def _ids(tokenizer: Any, texts: list[str], *, special: bool) -> list[list[int]]:
    if not texts:
        return []
    return [list(ids) for ids in tokenizer(texts, add_special_tokens=special)["input_ids"]]


def accepts_logits_to_keep(model: Any) -> bool:
    """Whether the model's forward takes ``logits_to_keep`` (then only needed logits are computed)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return "logits_to_keep" in inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return False


class Scorer:
    """Scores encoded pairs with one model; prepared once per call of ``score``.

    ``items`` are ``(ids, n)`` from :func:`encode_pairs`: the last ``n`` of
    ``ids`` are the continuation tokens whose log-probabilities are summed.
    """

    def __init__(self, model: Any, pad_id: int, device: Any, batch_size: int, target: str, *,
                 logits_to_keep: bool | None = None) -> None:
        self.model = model
        self.pad_id = pad_id
        self.device = device
        self.batch_size = batch_size
        self.target = target
        # Logits only for the window of positions that predict continuation tokens.
        self.keep_window = accepts_logits_to_keep(model) if logits_to_keep is None else logits_to_keep

    def score(self, items: Sequence[tuple[list[int], int]]) -> list[Loglikelihood]:
        import torch

        if not items:
            return []
        with torch.inference_mode():
            return self._score(items)

    def _score(self, items: Sequence[tuple[list[int], int]]) -> list[Loglikelihood]:
        import torch

        sums = torch.zeros(len(items), dtype=torch.float64, device=self.device)
        misses = torch.zeros(len(items), dtype=torch.long, device=self.device)
        order = sorted(range(len(items)), key=lambda i: -len(items[i][0]))
        for start in range(0, len(order), self.batch_size):
            self._score_safe(items, order[start:start + self.batch_size], sums, misses)
        # The only device-to-host copies: every batch above was queued without waiting.
        logprobs, missed = sums.tolist(), misses.tolist()
        return [Loglikelihood(lp, n, miss == 0)
                for lp, miss, (_, n) in zip(logprobs, missed, items, strict=True)]

    def _score_safe(self, items: Sequence[tuple[list[int], int]], chunk: list[int],
                    sums: Any, misses: Any) -> None:
        """Score one batch; on out-of-memory retry it in halves."""
        import torch

        try:
            self._score_batch(items, chunk, sums, misses)
        except torch.cuda.OutOfMemoryError as exc:
            if len(chunk) == 1:
                raise ModelError(f"hf:{self.target}: out of memory scoring a sequence of "
                                 f"{len(items[chunk[0]][0])} tokens: {exc}") from exc
            torch.cuda.empty_cache()
            half = len(chunk) // 2
            self._score_safe(items, chunk[:half], sums, misses)
            self._score_safe(items, chunk[half:], sums, misses)

    def _score_batch(self, items: Sequence[tuple[list[int], int]], chunk: list[int],
                     sums: Any, misses: Any) -> None:
        import torch

        inputs = [items[i][0][:-1] for i in chunk]
        width = max(len(x) for x in inputs)
        # Right padding keeps natural positions; each row's continuation is predicted at
        # input positions [len - n, len), the targets being the ids one step later.
        ids = [x + [self.pad_id] * (width - len(x)) for x in inputs]
        mask = [[1] * len(x) + [0] * (width - len(x)) for x in inputs]
        lo = min(len(items[i][0]) - 1 - items[i][1] for i in chunk) if self.keep_window else 0
        hi = max(len(x) for x in inputs)
        rows: list[int] = []
        cols: list[int] = []
        targets: list[int] = []
        slots: list[int] = []
        for row, i in enumerate(chunk):
            seq, n = items[i]
            end = len(seq) - 1
            rows += [row] * n
            cols += range(end - n - lo, end - lo)
            targets += seq[end - n + 1:]
            slots += [i] * n
        host = torch.tensor([ids, mask], dtype=torch.long)
        index = torch.tensor([rows, cols, targets, slots], dtype=torch.long)
        if self.device.type == "cuda":
            host, index = host.pin_memory(), index.pin_memory()
        host = host.to(self.device, non_blocking=True)
        index = index.to(self.device, non_blocking=True)
        kwargs: dict[str, Any] = {}
        if self.keep_window:
            kwargs["logits_to_keep"] = torch.arange(lo, hi, device=self.device)
        logits = self.model(input_ids=host[0], attention_mask=host[1], **kwargs).logits
        picked = logits[index[0], index[1]].float()
        del logits
        chosen = torch.log_softmax(picked, dim=-1).gather(1, index[2, :, None]).squeeze(1)
        greedy = picked.argmax(dim=-1) == index[2]
        sums.index_add_(0, index[3], chosen.double())
        misses.index_add_(0, index[3], (~greedy).long())
