"""The hf: backend on tiny random models built in temporary directories (no hub access)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from pytest_llmeval.errors import ConfigError, LLMEvalWarning  # noqa: E402
from pytest_llmeval.models import load_model  # noqa: E402
from pytest_llmeval.models.base import GenerationParams, GenerationRequest  # noqa: E402
from pytest_llmeval.models.fingerprint import file_digest  # noqa: E402
from pytest_llmeval.models.hf import HFModel  # noqa: E402
from pytest_llmeval.models.hf_scoring import Loglikelihood, Scorer, encode_pairs  # noqa: E402

CHAT_TEMPLATE = (
    "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant]{% endif %}"
)
CORPUS = [
    "the cat sat on the mat and the dog ran to the park",
    "a quick brown fox jumps over the lazy dog near the river",
    "review: the pasta was great. sentiment: positive",
    "one two three four five six seven eight nine ten",
    "[user] hello there\n[assistant] hi, how are you?",
] * 20
PROMPTS = [
    "the cat",
    "a quick brown fox jumps over",
    "one two three four five six seven",
    "review: the pasta was",
    "the",
    "dog ran to the park and the cat sat on the mat while",
    "nine ten",
]


def _tokenizer(directory: Path, chat_template: str | None) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<pad>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")
    if chat_template:
        fast.chat_template = chat_template
    fast.save_pretrained(directory)
    return fast


def _build(directory: Path, arch: str, *, chat_template: str | None = CHAT_TEMPLATE,
           context: int = 128, seed: int = 0) -> Path:
    """A tiny random causal LM with peaked logits (so greedy decoding has no near-ties)."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tok = _tokenizer(directory, chat_template)
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id,
                  eos_token_id=tok.eos_token_id, bos_token_id=None, initializer_range=0.3)
    if arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64,
                                             num_hidden_layers=2, num_attention_heads=2,
                                             num_key_value_heads=2,
                                             max_position_embeddings=context, **common))
    else:
        model = GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=context,
                                           **common))
    model.save_pretrained(directory, safe_serialization=True)
    return directory


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Any:
    """Tiny models on a shared CPU run many times faster on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("llama"), "llama")


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("gpt2"), "gpt2", chat_template=None)


@pytest.fixture(scope="module")
def adapter_dir(llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(llama_dir)
    # init_lora_weights=False: random A and B, so the adapter visibly changes the model.
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                        init_lora_weights=False, task_type="CAUSAL_LM")
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, config).save_pretrained(out)
    return out


def _model(directory: Path, **options: Any) -> HFModel:
    model = load_model(f"hf:{directory}", name="m", options=options, base_dir=directory.parent)
    assert isinstance(model, HFModel)
    return model


def _requests(prompts: list[Any], **params: Any) -> list[GenerationRequest]:
    p = GenerationParams(**{"max_new_tokens": 12, **params})
    return [GenerationRequest(prompt=x, params=p) for x in prompts]


# -- options and loading ------------------------------------------------------------


def test_unknown_option_is_a_config_error_with_a_suggestion(llama_dir: Path) -> None:
    with pytest.raises(ConfigError, match="unknown option 'batchsize'.*Did you mean 'batch_size'"):
        _model(llama_dir, batchsize=4)


def test_missing_directory_names_the_resolved_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=str(tmp_path / "models" / "nope")):
        load_model("hf:./models/nope", name="m", base_dir=tmp_path)


def test_missing_adapter_directory_is_a_config_error(llama_dir: Path) -> None:
    with pytest.raises(ConfigError, match="adapter directory"):
        _model(llama_dir, adapter="./no-such-adapter")


def test_invalid_dtype_and_batch_size_are_config_errors(llama_dir: Path) -> None:
    with pytest.raises(ConfigError, match="dtype"):
        _model(llama_dir, dtype="float8")
    with pytest.raises(ConfigError, match="batch_size"):
        _model(llama_dir, batch_size=0)


def test_compile_option_must_be_a_boolean(llama_dir: Path) -> None:
    with pytest.raises(ConfigError, match="compile='yes' must be true or false"):
        _model(llama_dir, compile="yes")


def test_relative_target_resolves_against_base_dir(llama_dir: Path) -> None:
    model = load_model(f"hf:{llama_dir.name}", name="m", base_dir=llama_dir.parent)
    assert isinstance(model, HFModel) and model.source == llama_dir.resolve()


# -- fingerprint --------------------------------------------------------------------


def test_fingerprint_comes_from_files_without_loading_weights(llama_dir: Path) -> None:
    model = _model(llama_dir)
    fp = model.fingerprint()
    assert model._model is None
    assert fp == _model(llama_dir).fingerprint()
    described = model.describe()
    assert {"weights", "tokenizer", "fingerprint"} <= described.keys()
    assert str(llama_dir) not in json.dumps(described["weights"])


def test_fingerprint_changes_when_weights_tokenizer_or_adapter_change(
        llama_dir: Path, adapter_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    copy = Path(shutil.copytree(llama_dir, tmp_path / "copy"))
    original = _model(copy).fingerprint()
    assert original == _model(llama_dir).fingerprint()  # content-based, not path-based

    weights = copy / "model.safetensors"
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 1e-3
    save_file(tensors, weights, metadata={"format": "pt"})
    changed_weights = _model(copy).fingerprint()
    assert changed_weights != original

    config = json.loads((copy / "tokenizer_config.json").read_text())
    config["chat_template"] = "{{ messages[0]['content'] }}"
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    (copy / "chat_template.jinja").unlink(missing_ok=True)
    assert _model(copy).fingerprint() != changed_weights

    with_adapter = _model(llama_dir, adapter=str(adapter_dir))
    assert with_adapter.fingerprint() != original
    assert "adapter" in with_adapter.identity()


def test_large_files_are_identified_by_size_mtime_and_header(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(64)}, path)
    small = file_digest(path)
    large = file_digest(path, full_hash_limit=10)
    assert small.startswith("xxh3:") and large.startswith("stat:")
    save_file({"w": torch.ones(64)}, path)  # same size, new content and mtime
    assert file_digest(path) != small


# -- generation ---------------------------------------------------------------------


@pytest.mark.parametrize("arch_dir", ["llama_dir", "gpt2_dir"])
def test_batched_greedy_equals_one_prompt_at_a_time(arch_dir: str,
                                                    request: pytest.FixtureRequest) -> None:
    directory = request.getfixturevalue(arch_dir)
    batched = _model(directory, batch_size=8).generate(_requests(PROMPTS))
    single = _model(directory, batch_size=1).generate(_requests(PROMPTS))
    assert all(isinstance(x, str) for x in batched)
    assert batched == single
    assert any(batched)  # the model produced text, so the comparison means something


def test_max_new_tokens_is_honoured(llama_dir: Path) -> None:
    model = _model(llama_dir)
    short = model.generate(_requests(PROMPTS[:3], max_new_tokens=3))
    long = model.generate(_requests(PROMPTS[:3], max_new_tokens=12))
    for s, full in zip(short, long, strict=True):
        assert isinstance(s, str) and isinstance(full, str)
        assert full.startswith(s) and len(s) < len(full)


def test_stop_sequences_cut_the_output(llama_dir: Path) -> None:
    model = _model(llama_dir, batch_size=4)
    free = model.generate(_requests(PROMPTS, max_new_tokens=24))
    # Pick a stop string that the free-running outputs actually contain.
    text = next(o for o in free if isinstance(o, str) and len(o.strip()) > 4)
    stop = text.strip()[2:4]
    cut = model.generate(_requests(PROMPTS, max_new_tokens=24, stop=(stop,)))
    for full, short in zip(free, cut, strict=True):
        assert isinstance(full, str) and isinstance(short, str)
        assert stop not in short
        assert full.startswith(short)
    assert any(len(s) < len(f) for f, s in zip(free, cut, strict=True))


def test_results_keep_request_order_across_parameter_groups(llama_dir: Path) -> None:
    model = _model(llama_dir, batch_size=2)
    mixed = [GenerationRequest(p, GenerationParams(max_new_tokens=2 + i % 3))
             for i, p in enumerate(PROMPTS)]
    outputs = model.generate(mixed)
    for req, out in zip(mixed, outputs, strict=True):
        assert out == model.generate([req])[0]


def test_sampling_is_reproducible_and_samples_differ(llama_dir: Path) -> None:
    model = _model(llama_dir, batch_size=4)
    params = GenerationParams(max_new_tokens=16, temperature=1.5, seed=7)
    reqs = [GenerationRequest(PROMPTS[0], params, sample=s) for s in range(4)]
    first, second = model.generate(reqs), model.generate(reqs)
    assert first == second
    assert len(set(first)) > 1


def test_model_options_provide_generation_defaults(llama_dir: Path) -> None:
    with_default = _model(llama_dir, max_new_tokens=2).generate([GenerationRequest(PROMPTS[0])])
    explicit = _model(llama_dir).generate(_requests([PROMPTS[0]], max_new_tokens=2))
    unlimited = _model(llama_dir).generate(_requests([PROMPTS[0]], max_new_tokens=12))
    assert with_default == explicit
    assert with_default != unlimited


def test_long_prompt_is_truncated_from_the_left_with_a_warning(tmp_path: Path) -> None:
    model = _model(_build(tmp_path / "short", "gpt2", context=32))
    long_prompt = " ".join(["one two three four five"] * 40)
    with pytest.warns(LLMEvalWarning, match="truncated from the left"):
        out = model.generate(_requests([long_prompt], max_new_tokens=8))[0]
    assert isinstance(out, str) and out
    # What was kept is the prompt's last (context - max_new_tokens) tokens.
    ids = model.encode(long_prompt)[-(32 - 8):]
    assert out == model._generate_batch([ids], GenerationParams(max_new_tokens=8), 0)[0]


def test_chat_messages_use_the_tokenizer_chat_template(llama_dir: Path) -> None:
    model = _model(llama_dir)
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    text, add_special = model.render(messages)
    assert text == "[system] be brief\n[user] hello\n[assistant]"
    assert add_special is False
    out = model.generate(_requests([messages]))[0]
    assert out == model.generate(_requests([text]))[0]


def test_a_final_assistant_message_is_continued_not_closed(llama_dir: Path) -> None:
    model = _model(llama_dir)
    text, add_special = model.render([{"role": "user", "content": "rate it"},
                                      {"role": "assistant", "content": '{"score": '}])
    assert text == '[user] rate it\n[assistant] {"score": '
    assert add_special is False


def test_chat_messages_without_a_template_are_flattened(gpt2_dir: Path) -> None:
    model = _model(gpt2_dir)
    text, _ = model.render([{"role": "system", "content": "be brief"},
                            {"role": "user", "content": "hello"}])
    assert text == "System: be brief\n\nhello"


def test_adapter_is_loaded_and_changes_the_model(llama_dir: Path, adapter_dir: Path) -> None:
    base = _model(llama_dir)
    merged = _model(llama_dir, adapter=str(adapter_dir))
    unmerged = _model(llama_dir, adapter=str(adapter_dir), merge_adapter=False)
    pairs = [("the cat sat on", " the mat"), ("one two", " three four")]
    ll_base = base.loglikelihood_many(pairs)
    ll_merged = merged.loglikelihood_many(pairs)
    ll_unmerged = unmerged.loglikelihood_many(pairs)
    assert ll_merged != pytest.approx(ll_base, abs=1e-3)
    assert ll_merged == pytest.approx(ll_unmerged, abs=1e-3)


# -- scoring ------------------------------------------------------------------------


def _reference_loglikelihood(model: HFModel, context: str, continuation: str) -> float:
    """Unbatched reference: one forward pass over context + continuation, summed log-probs."""
    tok = model.tokenizer
    ctx = tok(context, add_special_tokens=True)["input_ids"]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([ctx + cont], device=model._model.device)
    with torch.no_grad():
        logprobs = torch.log_softmax(model._model(input_ids=ids).logits[0], dim=-1)
    return float(sum(logprobs[len(ctx) + j - 1, t] for j, t in enumerate(cont)))


@pytest.mark.parametrize("arch_dir", ["llama_dir", "gpt2_dir"])
def test_loglikelihood_matches_an_unbatched_forward_pass(arch_dir: str,
                                                         request: pytest.FixtureRequest) -> None:
    model = _model(request.getfixturevalue(arch_dir), batch_size=3)
    context = "review: the pasta was great. sentiment:"
    continuations = [" positive", " negative", " the cat sat on the mat", " one"]
    scores = model.loglikelihood(context, continuations)
    expected = [_reference_loglikelihood(model, context, c) for c in continuations]
    assert scores == pytest.approx(expected, abs=1e-4)
    assert all(s < 0 for s in scores)
    # Trailing whitespace of the context belongs to the continuation.
    assert model.loglikelihood(context + " ", ["positive"])[0] == pytest.approx(scores[0], abs=1e-4)


def test_loglikelihood_of_a_long_context_keeps_the_continuation(tmp_path: Path) -> None:
    model = _model(_build(tmp_path / "short", "gpt2", context=32))
    context = " ".join(["one two three four five"] * 40)
    short = model.loglikelihood(context, [" six seven"])[0]
    assert short < 0 and short == pytest.approx(
        model.loglikelihood(context[-60:], [" six seven"])[0], abs=5.0)


def test_next_token_probs_match_the_softmax_of_the_last_position(llama_dir: Path) -> None:
    model = _model(llama_dir, batch_size=2)
    prompts = ["review: the pasta was great. sentiment:", "one two", "the cat sat on the"]
    candidates = ["1", "2", "the"]
    probs = model.next_token_probs(prompts, candidates)
    tok = model.tokenizer
    for prompt, got in zip(prompts, probs, strict=True):
        ids = torch.tensor([tok(prompt)["input_ids"]], device=model._model.device)
        with torch.no_grad():
            p = torch.softmax(model._model(input_ids=ids).logits[0, -1], dim=-1)
        for cand in candidates:
            first = tok(cand, add_special_tokens=False)["input_ids"][0]
            assert got[cand] == pytest.approx(float(p[first]), abs=1e-5)


def _count_forwards(model: HFModel) -> list[int]:
    """Counts the forward passes of the model's network (one per generated token, one per batch)."""
    calls = [0]

    def hook(*_: Any) -> None:
        calls[0] += 1

    model._load()
    model._model.register_forward_pre_hook(hook)
    return calls


def test_loglikelihood_batch_reports_tokens_and_whether_greedy(llama_dir: Path) -> None:
    model = _model(llama_dir, batch_size=2)
    context = "the cat sat on"
    greedy = model.generate(_requests([context], max_new_tokens=3))[0]
    assert isinstance(greedy, str) and greedy
    pairs = [(context, greedy), (context, " one two three"), ("review: the pasta was", " great")]
    results = model.loglikelihood_batch(pairs)
    assert all(isinstance(r, Loglikelihood) for r in results)
    tok = model.tokenizer
    for (ctx, cont), result in zip(pairs, results, strict=True):
        assert result.logprob == pytest.approx(_reference_loglikelihood(model, ctx, cont), abs=1e-4)
        assert result.tokens == len(tok(cont, add_special_tokens=False)["input_ids"])
    assert results[0].is_greedy  # the model's own greedy continuation
    # The others are greedy exactly when every token is the argmax of an unbatched pass.
    for (ctx, cont), result in zip(pairs[1:], results[1:], strict=True):
        ids = tok(ctx)["input_ids"]
        cont_ids = tok(cont, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model._model(input_ids=torch.tensor([ids + cont_ids])).logits[0]
        argmax = logits[len(ids) - 1:len(ids) - 1 + len(cont_ids)].argmax(-1).tolist()
        assert result.is_greedy == (argmax == cont_ids)
    assert model.loglikelihood_many(pairs) == [r.logprob for r in results]


def test_loglikelihood_batch_shares_forward_passes_across_questions(llama_dir: Path) -> None:
    model = _model(llama_dir, batch_size=16)
    questions = [(p, [" the", " cat sat", " one two three", " positive"]) for p in PROMPTS * 2]
    per_question = [model.loglikelihood(ctx, choices) for ctx, choices in questions]
    calls = _count_forwards(model)
    pairs = [(ctx, c) for ctx, choices in questions for c in choices]
    batched = model.loglikelihood_batch(pairs)
    assert calls[0] == -(-len(pairs) // 16)  # 56 pairs: 4 forward passes, not 14 (one per question)
    flat = [x for scores in per_question for x in scores]
    assert [r.logprob for r in batched] == pytest.approx(flat, abs=1e-4)


def test_scoring_without_logits_to_keep_gives_the_same_scores(llama_dir: Path) -> None:
    model = _model(llama_dir)
    pairs = [(p, " the cat") for p in PROMPTS] + [("one two", " three four five")]
    items = encode_pairs(model.tokenizer, pairs, model.context_length)
    args = (model._model, model.tokenizer.pad_token_id, model._device, 3, "m")
    windowed = Scorer(*args, logits_to_keep=True).score(items)
    full = Scorer(*args, logits_to_keep=False).score(items)
    assert [r.logprob for r in windowed] == pytest.approx([r.logprob for r in full], abs=1e-5)
    assert [(r.tokens, r.is_greedy) for r in windowed] == [(r.tokens, r.is_greedy) for r in full]


def test_scoring_retries_a_batch_in_halves_when_out_of_memory(llama_dir: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model(llama_dir, batch_size=8)
    pairs = [(p, " the cat") for p in PROMPTS]
    expected = model.loglikelihood_batch(pairs)
    original = Scorer._score_batch

    def small_batches_only(self: Scorer, items: Any, chunk: list[int], *rest: Any) -> None:
        if len(chunk) > 2:
            raise torch.cuda.OutOfMemoryError("simulated")
        original(self, items, chunk, *rest)

    monkeypatch.setattr(Scorer, "_score_batch", small_batches_only)
    got = model.loglikelihood_batch(pairs)
    assert [r.logprob for r in got] == pytest.approx([r.logprob for r in expected], abs=1e-5)


def test_loglikelihood_batch_of_nothing_is_empty(llama_dir: Path) -> None:
    assert _model(llama_dir).loglikelihood_batch([]) == []


def test_stop_strings_end_the_batch_early(llama_dir: Path) -> None:
    model = _model(llama_dir)
    free = model.generate(_requests([PROMPTS[0]], max_new_tokens=24))[0]
    assert isinstance(free, str) and len(free.strip()) > 4
    stop = free.strip()[1:3]
    calls = _count_forwards(model)
    cut = model.generate(_requests([PROMPTS[0]], max_new_tokens=24, stop=(stop,)))[0]
    assert cut == free[:free.index(stop)]
    assert calls[0] < 24  # the stop was seen as it was generated, not after 24 tokens


def test_every_eos_id_of_the_models_generation_config_stops(llama_dir: Path) -> None:
    model = _model(llama_dir, batch_size=4)
    free = model.generate(_requests(PROMPTS[:4], max_new_tokens=12))
    tok, hf = model.tokenizer, model._model
    prompt = torch.tensor([model.encode(PROMPTS[0])])
    with torch.inference_mode():
        new = hf.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=12,
                          do_sample=False)[0, prompt.shape[1]:].tolist()
    assert tok.decode(new, skip_special_tokens=True) == free[0]
    # A second end-of-sequence id, as models with several (end of turn, end of text) declare them.
    second = next(t for t in new[1:] if t != tok.eos_token_id)
    hf.generation_config.eos_token_id = [tok.eos_token_id, second]
    try:
        model._configs.clear()
        stopped = model.generate(_requests(PROMPTS[:4], max_new_tokens=12))
    finally:
        hf.generation_config.eos_token_id = tok.eos_token_id
    assert stopped[0] == tok.decode(new[:new.index(second) + 1], skip_special_tokens=True)
    assert stopped[0] != free[0]
    assert all(isinstance(s, str) and f.startswith(s) for s, f in zip(stopped, free, strict=True))


def test_greedy_generation_leaves_the_global_rng_alone(llama_dir: Path) -> None:
    model = _model(llama_dir)
    before = torch.get_rng_state()
    model.generate(_requests(PROMPTS[:2]))
    model.generate(_requests(PROMPTS[:2], temperature=1.0, seed=3))  # forked and restored
    assert torch.equal(before, torch.get_rng_state())


@pytest.mark.slow
def test_compile_option_gives_the_same_greedy_outputs(llama_dir: Path) -> None:
    plain = _model(llama_dir, batch_size=4).generate(_requests(PROMPTS))
    compiled = _model(llama_dir, batch_size=4, compile=True)
    try:
        outputs = compiled.generate(_requests(PROMPTS))
    except Exception as exc:  # torch.compile needs a working C++ toolchain on a CPU
        reason = f"torch.compile does not work here: {type(exc).__name__}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    errors = [o for o in outputs if isinstance(o, BaseException)]
    if errors:
        reason = f"torch.compile does not work here: {errors[0]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    assert hasattr(compiled._model, "_compiled_call")  # transformers compiled the decode step
    assert outputs == plain
    assert any(outputs)
