"""The hf: backend against plain transformers on a ~1.1 B Llama (GPU), or a tiny one on a CPU.

    python tests/bench/bench_hf_gpu.py --out /tmp/hf_bench              # GPU: all of it, ~6 minutes
    python tests/bench/bench_hf_gpu.py --dry --out /tmp/hf_bench_dry    # CPU: tiny model, seconds

The model has TinyLlama's shape (hidden 2048, 22 layers, 32 heads, 4 KV heads,
intermediate 5632, vocabulary 32,000) with random bfloat16 weights, built into
``--dir`` when it holds none (no downloads), with a WordLevel tokenizer over
words ``w<id>`` (one token each) and no EOS, so every sequence generates
exactly ``max_new_tokens``. 512 prompts of 56-72 tokens, 128 new tokens,
greedy. In one process:

  generate  ``HFModel.generate`` (through ``load_model``) against plain
            ``model.generate`` on left-padded batches in input order, at batch
            256 and 64. Each side first runs one batch of the same shape (not
            timed); then plain, product, product, plain, and the best time of
            each counts. Also: plain on the product's length-sorted batches,
            and how much of the product's time is spent inside
            ``model.generate`` (a gap outside it is the backend's own overhead).
  compile   ``compile = true`` against plain
            ``generate(cache_implementation="static")``, both compiled the
            way transformers compiles a decode step; the first call (which
            compiles) is reported on its own.
  scoring   ``loglikelihood_batch`` on 2,000 (context, continuation) pairs
            against a plain right-padded batched forward (log_softmax and
            gather on the device), at batch 64 and 256; and
            ``loglikelihood(context, choices)`` one question at a time.

Each measurement is printed as ``BENCH {json}`` and kept in ``--out/bench.json``;
a summary table of the ratios ends the run. Targets: product / plain generate
>= 0.95 at batch 64 and 256; loglikelihood_batch / plain forward >= 0.9.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FULL = dict(vocab=32000, hidden=2048, layers=22, heads=32, kv_heads=4, intermediate=5632,
            prompts=512, prompt_len=(56, 72), new_tokens=128, gen_batches=(256, 64),
            questions=500, choices=4, ctx_len=(48, 64), cont_len=(1, 8), ll_batches=(64, 256))
DRY = dict(vocab=1000, hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128,
           prompts=32, prompt_len=(10, 16), new_tokens=16, gen_batches=(16, 8),
           questions=40, choices=4, ctx_len=(8, 12), cont_len=(1, 3), ll_batches=(8, 32))


class Recorder:
    """Prints each measurement as a BENCH line and rewrites ``bench.json`` after each one."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "bench.json"
        self.records: list[dict[str, Any]] = []
        self.start = time.perf_counter()

    def __call__(self, name: str, **fields: Any) -> dict[str, Any]:
        rec = {"name": name, **fields, "t_s": round(time.perf_counter() - self.start, 1)}
        print("BENCH " + json.dumps(rec), flush=True)
        self.records.append(rec)
        tmp = self.path.with_name(".bench.json.tmp")
        tmp.write_text(json.dumps({"measurements": self.records}, indent=1))
        os.replace(tmp, self.path)
        return rec


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    sync()
    start = time.perf_counter()
    result = fn()
    sync()
    return result, time.perf_counter() - start


def word(i: int) -> str:
    return f"w{i}"


def make_prompts(s: dict[str, Any]) -> list[str]:
    rng = random.Random(1234)
    return [" ".join(word(rng.randrange(2, s["vocab"])) for _ in range(rng.randint(*s["prompt_len"])))
            for _ in range(s["prompts"])]


def make_questions(s: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Multiple-choice items: a context and ``choices`` continuations, each with a leading space."""
    rng = random.Random(99)
    out = []
    for _ in range(s["questions"]):
        ctx = " ".join(word(rng.randrange(2, s["vocab"])) for _ in range(rng.randint(*s["ctx_len"])))
        choices = [" " + " ".join(word(rng.randrange(2, s["vocab"]))
                                  for _ in range(rng.randint(*s["cont_len"])))
                   for _ in range(s["choices"])]
        out.append((ctx, choices))
    return out


def build(directory: Path, s: dict[str, Any]) -> None:
    """Write the random model and its tokenizer to ``directory``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<unk>": 1, **{word(i): i for i in range(2, s["vocab"])}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                            model_input_names=["input_ids", "attention_mask"]).save_pretrained(directory)
    config = LlamaConfig(vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=s["intermediate"],
                         num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
                         num_key_value_heads=s["kv_heads"], max_position_embeddings=2048,
                         tie_word_embeddings=False, pad_token_id=0, bos_token_id=None, eos_token_id=None)
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    with torch.device("cuda" if cuda else "cpu"):
        model: Any = LlamaForCausalLM(config)
    model = model.to(dtype)
    model.config.dtype = dtype  # what the backend's dtype "auto" reads
    model.generation_config.eos_token_id = None
    model.generation_config.bos_token_id = None
    model.generation_config.pad_token_id = 0
    model.save_pretrained(directory, safe_serialization=True)


def plain_generate(hf: Any, tok: Any, prompts: list[str], batch: int, new: int, **extra: Any) -> list[str]:
    """Left-padded batches in the given order through ``model.generate``, as a careful user writes it."""
    import torch

    tok.padding_side = "left"
    texts: list[str] = []
    for start in range(0, len(prompts), batch):
        enc = tok(prompts[start:start + batch], return_tensors="pt", padding=True).to(hf.device)
        with torch.inference_mode():
            out = hf.generate(**enc, max_new_tokens=new, do_sample=False, pad_token_id=tok.pad_token_id,
                              **extra)
        texts += tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return texts


def plain_loglikelihood(hf: Any, tok: Any, pairs: list[tuple[str, str]], batch: int) -> list[float]:
    """Summed continuation log-probs: right-padded batches sorted by length, gathered on the device."""
    import torch

    items = []
    for ctx, cont in pairs:
        c = tok(ctx.rstrip(), add_special_tokens=True)["input_ids"]
        k = tok(ctx[len(ctx.rstrip()):] + cont, add_special_tokens=False)["input_ids"]
        items.append((c + k, len(k)))
    order = sorted(range(len(items)), key=lambda i: -len(items[i][0]))
    device = hf.device
    out = torch.zeros(len(items), dtype=torch.float32, device=device)
    for start in range(0, len(order), batch):
        chunk = order[start:start + batch]
        width = max(len(items[i][0]) - 1 for i in chunk)
        ids = torch.full((len(chunk), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        rows, pos, tgt, slot = [], [], [], []
        for r, i in enumerate(chunk):
            seq, n = items[i]
            ids[r, :len(seq) - 1] = torch.tensor(seq[:-1])
            mask[r, :len(seq) - 1] = 1
            end = len(seq) - 1
            for j in range(n):
                rows.append(r)
                pos.append(end - n + j)
                tgt.append(seq[end - n + 1 + j])
                slot.append(i)
        with torch.inference_mode():
            logits = hf(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            r_t, p_t, t_t = (torch.tensor(x, device=device) for x in (rows, pos, tgt))
            lp = torch.log_softmax(logits[r_t, p_t].float(), dim=-1).gather(1, t_t[:, None]).squeeze(1)
            out.index_add_(0, torch.tensor(slot, device=device), lp)
    return out.tolist()


def same(a: list[Any], b: list[Any]) -> str:
    return f"{sum(x == y for x, y in zip(a, b, strict=True))}/{len(a)}"


def bench_generate(model: Any, prompts: list[str], s: dict[str, Any], rec: Recorder,
                   summary: dict[str, float]) -> None:
    from pytest_llmeval.models.base import GenerationParams, GenerationRequest

    hf, tok, new = model._model, model.tokenizer, s["new_tokens"]
    tokens = len(prompts) * new
    requests = [GenerationRequest(p, GenerationParams(max_new_tokens=new)) for p in prompts]
    for batch in s["gen_batches"]:
        model.batch_size = batch

        def product(batch: int = batch) -> list[Any]:
            return model.generate(requests)

        def plain(batch: int = batch) -> list[str]:
            return plain_generate(hf, tok, prompts, batch, new)

        # Warm-up: one batch of this shape each, the full number of new tokens (allocator, kernels).
        model.generate(requests[:batch])
        plain_generate(hf, tok, prompts[:batch], batch, new)
        times: dict[str, list[float]] = {"plain": [], "product": []}
        outputs: dict[str, Any] = {}
        for side in ("plain", "product", "product", "plain"):
            outputs[side], dt = timed(product if side == "product" else plain)
            times[side].append(dt)
        errors = [o for o in outputs["product"] if isinstance(o, BaseException)]
        best = {k: min(v) for k, v in times.items()}
        ratio = best["plain"] / best["product"]
        summary[f"generate b{batch}: product / plain"] = ratio
        rec(f"generate_b{batch}", batch_size=batch, prompts=len(prompts), new_tokens=new,
            plain_s=[round(t, 3) for t in times["plain"]], product_s=[round(t, 3) for t in times["product"]],
            plain_tokens_per_s=round(tokens / best["plain"], 1),
            product_tokens_per_s=round(tokens / best["product"], 1), ratio=round(ratio, 3),
            errors=len(errors), first_error=repr(errors[0])[:300] if errors else None,
            outputs_identical=same(outputs["product"], outputs["plain"]))

    # Where the product's time goes, at the first batch size: inside model.generate or around it.
    batch = s["gen_batches"][0]
    model.batch_size = batch
    inside = [0.0]
    original = hf.generate

    def generate_timed(*args: Any, **kwargs: Any) -> Any:
        sync()
        start = time.perf_counter()
        out = original(*args, **kwargs)
        sync()
        inside[0] += time.perf_counter() - start
        return out

    hf.generate = generate_timed
    try:
        _, total = timed(lambda: model.generate(requests))
    finally:
        del hf.generate
    by_length = sorted(prompts, key=lambda p: -len(p.split()))
    _, sorted_s = timed(lambda: plain_generate(hf, tok, by_length, batch, new))
    # A stop string that never matches: the cost of checking the new tail at every step.
    stop_params = GenerationParams(max_new_tokens=new, stop=("<never>",))
    _, stop_s = timed(lambda: model.generate([GenerationRequest(p, stop_params) for p in prompts]))
    rec(f"product_breakdown_b{batch}", product_s=round(total, 3), inside_model_generate_s=round(inside[0], 3),
        outside_s=round(total - inside[0], 3), plain_on_length_sorted_batches_s=round(sorted_s, 3),
        product_with_unmatched_stop_string_s=round(stop_s, 3),
        note="outside = encoding, padding, decoding; sorted = the product's batching with plain generate")


def profile_generate(model: Any, prompts: list[str], s: dict[str, Any], out: Path, rec: Recorder) -> None:
    """torch.profiler tables for one batch of the product and of plain generate (where a gap comes from)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    from pytest_llmeval.models.base import GenerationParams, GenerationRequest

    hf, tok, new, batch = model._model, model.tokenizer, s["new_tokens"], s["gen_batches"][0]
    model.batch_size = batch
    requests = [GenerationRequest(p, GenerationParams(max_new_tokens=new)) for p in prompts[:batch]]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    for side, fn in (("product", lambda: model.generate(requests)),
                     ("plain", lambda: plain_generate(hf, tok, prompts[:batch], batch, new))):
        with profile(activities=activities) as prof:
            _, seconds = timed(fn)
        table = prof.key_averages().table(sort_by="cpu_time_total", row_limit=45, max_name_column_width=70)
        (out / f"profile_{side}.txt").write_text(f"{side}: {seconds:.3f} s under the profiler\n{table}\n")
        rec(f"profile_{side}_b{batch}", seconds=round(seconds, 3), table=str(out / f"profile_{side}.txt"))


def bench_compile(directory: Path, options: dict[str, Any], prompts: list[str], s: dict[str, Any],
                  rec: Recorder, summary: dict[str, float]) -> None:
    from pytest_llmeval.models import load_model
    from pytest_llmeval.models.base import GenerationParams, GenerationRequest

    batch, new = s["gen_batches"][0], s["new_tokens"]
    model = load_model(f"hf:{directory}", name="compiled", base_dir=directory,
                       options={**options, "batch_size": batch, "compile": True})
    tok = model.tokenizer  # type: ignore[attr-defined]
    hf = model._model  # type: ignore[attr-defined]
    requests = [GenerationRequest(p, GenerationParams(max_new_tokens=new)) for p in prompts]
    tokens = len(prompts) * new
    try:
        first, first_s = timed(lambda: model.generate(requests[:batch]))
    except Exception as exc:  # a compile failure is a result to report, not a crash of the run
        rec("compile", error=f"{type(exc).__name__}: {str(exc)[:1500]}")
        return
    errors = [repr(o)[:300] for o in first if isinstance(o, BaseException)]
    rec("compile_first_call", batch_size=batch, seconds=round(first_s, 1), errors=errors[:1],
        compiled_decode_step=hasattr(hf, "_compiled_call"), note="includes torch.compile")
    outs, product_s = timed(lambda: model.generate(requests))
    # Plain static cache on the same model object (same compile config, so the compiled step is shared).
    plain_generate(hf, tok, prompts[:batch], batch, new, cache_implementation="static")
    plain, plain_s = timed(lambda: plain_generate(hf, tok, prompts, batch, new, cache_implementation="static"))
    summary[f"compile=true b{batch}: product / plain static"] = plain_s / product_s
    rec(f"compile_b{batch}", product_s=round(product_s, 3), plain_static_s=round(plain_s, 3),
        product_tokens_per_s=round(tokens / product_s, 1), plain_static_tokens_per_s=round(tokens / plain_s, 1),
        ratio=round(plain_s / product_s, 3), outputs_identical=same(outs, plain))


def bench_scoring(model: Any, s: dict[str, Any], rec: Recorder, summary: dict[str, float]) -> None:
    hf, tok = model._model, model.tokenizer
    questions = make_questions(s)
    pairs = [(ctx, c) for ctx, choices in questions for c in choices]
    for batch in s["ll_batches"]:
        model.batch_size = batch
        model.loglikelihood_batch(pairs[:batch])  # warm-up of this shape
        plain_loglikelihood(hf, tok, pairs[:batch], batch)
        results, product_s = timed(lambda: model.loglikelihood_batch(pairs))
        plain, plain_s = timed(functools.partial(plain_loglikelihood, hf, tok, pairs, batch))
        _, product2_s = timed(lambda: model.loglikelihood_batch(pairs))
        product_s = min(product_s, product2_s)
        diff = max(abs(r.logprob - p) for r, p in zip(results, plain, strict=True))
        summary[f"loglikelihood b{batch}: product / plain forward"] = plain_s / product_s
        rec(f"loglikelihood_b{batch}", pairs=len(pairs), batch_size=batch,
            product_pairs_per_s=round(len(pairs) / product_s, 1),
            plain_pairs_per_s=round(len(pairs) / plain_s, 1), ratio=round(plain_s / product_s, 3),
            max_abs_diff=round(diff, 5))
    model.batch_size = s["ll_batches"][0]
    start = time.perf_counter()
    done = 0
    sync()
    for ctx, choices in questions:
        done += len(model.loglikelihood(ctx, choices))
        if time.perf_counter() - start > 20:
            break
    sync()
    dt = time.perf_counter() - start
    rec("loglikelihood_per_question", pairs=done, pairs_per_s=round(done / dt, 1),
        note="one call per question; a suite should pass all its pairs to loglikelihood_batch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="model directory (built there when empty); default under /tmp")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/hf_bench")))
    parser.add_argument("--dry", action="store_true", help="tiny model and workload, for a CPU")
    parser.add_argument("--skip", nargs="*", default=[], choices=["generate", "compile", "scoring"])
    parser.add_argument("--profile", action="store_true",
                        help="write torch.profiler tables of one product and one plain batch to --out")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (CPU runs)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch
    import transformers

    from pytest_llmeval.models import load_model

    s = DRY if args.dry else FULL
    directory = args.dir or Path("/tmp/llmeval_bench") / ("llama-dry" if args.dry else "llama1b")
    rec = Recorder(args.out)
    if not (directory / "model.safetensors").exists() and not (directory / "config.json").exists():
        _, seconds = timed(lambda: build(directory, s))
        rec("build", dir=str(directory), seconds=round(seconds, 1))
    options: dict[str, Any] = {}
    if not torch.cuda.is_available():
        torch.set_num_threads(args.threads)
        options["num_threads"] = args.threads
    model = load_model(f"hf:{directory}", name="bench", base_dir=directory, options=options)
    _ = model.tokenizer  # type: ignore[attr-defined]  # loads the weights
    hf = model._model  # type: ignore[attr-defined]
    param = next(hf.parameters())
    rec("setup", torch=torch.__version__, transformers=transformers.__version__, python=sys.version.split()[0],
        device=str(param.device), dtype=str(param.dtype),
        gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        params=sum(p.numel() for p in hf.parameters()), dry=args.dry,
        load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None)
    prompts = make_prompts(s)
    summary: dict[str, float] = {}
    if "generate" not in args.skip:
        bench_generate(model, prompts, s, rec, summary)
    if args.profile:
        profile_generate(model, prompts, s, args.out, rec)
    if "scoring" not in args.skip:
        bench_scoring(model, s, rec, summary)
    if "compile" not in args.skip:
        bench_compile(directory, options, prompts, s, rec, summary)
    rec("summary", **{k: round(v, 3) for k, v in summary.items()})
    width = max((len(k) for k in summary), default=10)
    for key, value in summary.items():
        print(f"{key:<{width}}  {value:6.3f}x")


if __name__ == "__main__":
    main()
