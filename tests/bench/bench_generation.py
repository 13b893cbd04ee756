"""Batched generation of the hf: backend against the one-prompt-at-a-time loop.

The baseline is the loop of the lesson's ``full_evaluation``: tokenize one
prompt, ``model.generate`` it greedily, decode, next prompt. The contender is
``HFModel.generate`` on the same prompts with ``batch_size`` 32 and 256. Both run
in this process on the same weights (the example suite's base + adapter); the
script reports new tokens per second, the speedup, and whether every output is
identical to the baseline's.

    python tests/bench/bench_generation.py                  # 256 prompts, 32 new tokens
    python tests/bench/bench_generation.py --threads 2 --batch-sizes 8 32 256
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "example_suite"
PROMPTS = {
    "sentiment": "Review: {text}\nSentiment:",
    "extraction": "Text: {text}\nJSON:",
    "headline": "Article: {article}\nHeadline:",
}
REWRITE_SYSTEM = "Rewrite the message in a casual style."


def load_prompts(model: Any, n: int) -> list[str]:
    """The example suite's eval cases as the suites render them, cycled to ``n``."""
    prompts = []
    for task, template in PROMPTS.items():
        with (SUITE / "data" / f"{task}.jsonl").open() as f:
            prompts += [template.format(**json.loads(line)) for line in f if line.strip()]
    with (SUITE / "data" / "rewrite.jsonl").open() as f:
        for line in f:
            messages = [{"role": "system", "content": REWRITE_SYSTEM},
                        {"role": "user", "content": json.loads(line)["text"]}]
            prompts.append(model.render(messages)[0])
    return [prompts[i % len(prompts)] for i in range(n)]


def sequential(model: object, tokenizer: object, prompts: list[str],
               max_new_tokens: int) -> tuple[list[str], int, float]:
    """The baseline loop; returns outputs, new tokens generated, seconds."""
    import torch

    outputs, tokens = [], 0
    start = time.perf_counter()
    for prompt in prompts:
        ids = tokenizer(prompt, return_tensors="pt").to(model.device)  # type: ignore[operator,attr-defined]
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=max_new_tokens,  # type: ignore[attr-defined]
                                 do_sample=False, pad_token_id=tokenizer.pad_token_id)  # type: ignore[attr-defined]
        new = out[0, ids["input_ids"].shape[1]:]
        tokens += int(new.shape[0])
        outputs.append(tokenizer.decode(new, skip_special_tokens=True))  # type: ignore[attr-defined]
    return outputs, tokens, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (1 is fastest for this tiny model on a busy CPU)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from pytest_llmeval.models import load_model
    from pytest_llmeval.models.base import GenerationParams, GenerationRequest

    torch.set_num_threads(args.threads)
    model = load_model("hf:example_suite/models/base", name="finetuned", base_dir=ROOT,
                       options={"adapter": "example_suite/models/adapter"})
    prompts = load_prompts(model, args.prompts)
    tok = model.tokenizer  # type: ignore[attr-defined]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"model: example base + adapter, device {device}, {torch.get_num_threads()} thread(s), "
          f"{len(prompts)} prompts, max_new_tokens {args.max_new_tokens}")

    reference, tokens, seconds = sequential(model._model, tok, prompts,  # type: ignore[attr-defined]
                                            args.max_new_tokens)
    base_rate = tokens / seconds
    print(f"one at a time : {seconds:7.2f}s  {tokens} new tokens  {base_rate:8.0f} tokens/s")
    params = GenerationParams(max_new_tokens=args.max_new_tokens)
    requests = [GenerationRequest(p, params) for p in prompts]
    for batch_size in args.batch_sizes:
        model.batch_size = batch_size  # type: ignore[attr-defined]
        start = time.perf_counter()
        outputs = model.generate(requests)
        elapsed = time.perf_counter() - start
        same = sum(o == r for o, r in zip(outputs, reference, strict=True))
        print(f"batch {batch_size:4d}    : {elapsed:7.2f}s  {tokens / elapsed:8.0f} tokens/s  "
              f"speedup {seconds / elapsed:5.1f}x  identical {same}/{len(prompts)}")


if __name__ == "__main__":
    main()
