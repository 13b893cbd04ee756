"""The ``hf:`` backend: a local (or hub-cached) causal LM, optionally with a PEFT adapter.

``hf:<dir or hub id>`` loads ``AutoModelForCausalLM`` and ``AutoTokenizer`` on
first use. Generation is batched with left padding and greedy unless a suite
asks for sampling; batching is an implementation detail, so batched greedy
outputs equal one-prompt-at-a-time outputs. A batch is one call of
``model.generate`` with the same inputs and generation config plain
transformers would use, and nothing around it waits on the device per token:
stop strings are checked on the newly generated tail only, and only when set;
the RNG is seeded only for sampling. ``compile = true`` adds transformers'
static KV cache with a ``torch.compile``d decode step. Besides ``generate`` it
offers ``loglikelihood_batch`` (multiple-choice scoring, see
:mod:`pytest_llmeval.models.hf_scoring`) and ``next_token_probs``
(probability-weighted judge scores).

torch, transformers and peft are imported only when a model is actually used,
never when the plugin starts.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError, LLMEvalWarning, MissingDependency, ModelError
from pytest_llmeval.models.base import (
    GenerationOutcome,
    GenerationParams,
    GenerationRequest,
    ModelBase,
    Prompt,
    apply_stop,
    messages_to_text,
    settle_heap,
)
from pytest_llmeval.models.fingerprint import directory_fingerprint
from pytest_llmeval.models.hf_scoring import Loglikelihood, Scorer, accepts_logits_to_keep, encode_pairs

DEFAULT_MAX_NEW_TOKENS = 128
DEFAULT_BATCH_SIZE = 16
DTYPES = ("auto", "float32", "bfloat16", "float16")
GENERATION_OPTIONS = ("max_new_tokens", "temperature", "top_p", "top_k", "stop", "seed")
OPTIONS = ("adapter", "dtype", "device", "batch_size", "max_length", "trust_remote_code",
           "merge_adapter", "num_threads", "compile", *GENERATION_OPTIONS)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def load(target: str, *, name: str, options: dict[str, Any], base_dir: Path) -> HFModel:
    """Entry point of the ``hf:`` scheme (see :func:`pytest_llmeval.models.load_model`)."""
    for package in ("torch", "transformers"):
        if importlib.util.find_spec(package) is None:
            raise MissingDependency(package if package == "torch" else "transformers", "hf",
                                    "the hf: backend")
    return HFModel(name, target, options, base_dir)


def _resolve(target: str, base_dir: Path, what: str) -> Path | str:
    """A local directory (relative to ``base_dir``) or, when no such path exists, a hub id."""
    path = Path(target).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    if path.is_dir():
        return path.resolve()
    first = Path(target).parts[0] if Path(target).parts else ""
    local_parent = bool(first) and not Path(target).is_absolute() and (base_dir / first).is_dir()
    looks_like_path = (target.startswith((".", "/", "~")) or target.count("/") > 1 or "\\" in target
                       or local_parent)
    if looks_like_path or not _HUB_ID.match(target):
        raise ConfigError(f"hf: {what} directory {str(path)!r} does not exist (from {target!r}, "
                          f"relative to {str(base_dir)!r}); build or download it, or fix the path")
    return target


class HFModel(ModelBase):
    """A causal LM from transformers; see the module docstring."""

    scheme = "hf"

    def __init__(self, name: str, target: str, options: dict[str, Any], base_dir: Path) -> None:
        super().__init__(name, target, options)
        for key in options:
            if key not in OPTIONS:
                close = difflib.get_close_matches(key, OPTIONS, n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise ConfigError(f"hf:{target}: unknown option '{key}'.{hint} "
                                  f"Options of hf: models: {', '.join(OPTIONS)}.")
        self.source = _resolve(target, base_dir, "model")
        adapter = options.get("adapter")
        self.adapter = _resolve(str(adapter), base_dir, "adapter") if adapter else None
        self.dtype_name = str(options.get("dtype", "auto"))
        if self.dtype_name not in DTYPES:
            raise ConfigError(f"hf:{target}: option dtype={self.dtype_name!r} is not one of "
                              f"{', '.join(DTYPES)}")
        self.device_name = str(options.get("device", "auto"))
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device_name):
            raise ConfigError(f"hf:{target}: option device={self.device_name!r} must be auto, cpu, "
                              "cuda, cuda:N or mps")
        self.batch_size = _positive_int(options.get("batch_size", DEFAULT_BATCH_SIZE),
                                        "batch_size", target)
        max_length = options.get("max_length")
        self.max_length = _positive_int(max_length, "max_length", target) if max_length else None
        threads = options.get("num_threads")
        self.num_threads = _positive_int(threads, "num_threads", target) if threads else None
        self.trust_remote_code = bool(options.get("trust_remote_code", False))
        self.merge_adapter = bool(options.get("merge_adapter", True))
        self.compile = options.get("compile", False)
        if not isinstance(self.compile, bool):
            raise ConfigError(f"hf:{target}: option compile={self.compile!r} must be true or false")
        self.defaults = _default_params(options, target)
        self._model: Any = None
        self._tokenizer: Any = None
        self._device: Any = None
        self._context: int = 0
        self._identity: dict[str, Any] | None = None
        self._configs: dict[tuple[GenerationParams, int], Any] = {}
        self._logits_to_keep = False

    # -- identity -----------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """Content digests of weights, tokenizer and adapter, and output-changing options.

        Computed from the files, without loading the weights. A local directory is
        identified by its content alone (not its path), so a fresh clone elsewhere
        keeps its fingerprint; a hub model by its id and cached revision. The
        device and ``compile`` are left out on purpose (they change speed, not
        what is computed), so a cache filled on one machine serves another.
        """
        if self._identity is None:
            ident: dict[str, Any] = {"scheme": self.scheme}
            if isinstance(self.source, str):
                ident["target"] = self.source
            ident.update(_source_fingerprint(self.source))
            if self.adapter is not None:
                ident["adapter"] = _source_fingerprint(self.adapter)["weights"]
            ident["dtype"] = self.dtype_name
            if self.max_length:
                ident["max_length"] = self.max_length
            self._identity = ident
        return self._identity

    def describe(self) -> dict[str, Any]:
        """Identity plus the reference as written (and the adapter path) for the results file."""
        out = {"name": self.name, "target": self.target, **self.identity(),
               "fingerprint": self.fingerprint()}
        if self.options.get("adapter"):
            out["adapter_path"] = str(self.options["adapter"])
        return out

    # -- loading ------------------------------------------------------------------

    def _load(self) -> None:
        if self._model is not None:
            return
        from pytest_llmeval.models.base import loading

        with loading(f"hf:{self.target}"):
            self._load_weights()

    def _load_weights(self) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - load() checked the packages exist
            raise MissingDependency("transformers", "hf", "the hf: backend") from exc
        if self.adapter is not None and importlib.util.find_spec("peft") is not None:
            import peft  # noqa: F401  (imported before the heap is settled)
        settle_heap()
        device = self.device_name
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(f"hf:{self.target}: device={device!r} but CUDA is not available; "
                             "use device: cpu or auto")
        if self.num_threads:
            # Process-wide; for tiny models on a busy CPU one thread is often fastest.
            torch.set_num_threads(self.num_threads)
        dtype: Any
        if self.dtype_name == "auto":
            dtype = "auto" if device != "cpu" else torch.float32
        else:
            dtype = getattr(torch, self.dtype_name)
        local_only = isinstance(self.source, Path) or _offline()
        kwargs = {"trust_remote_code": self.trust_remote_code, "local_files_only": local_only}
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(self.source), **kwargs)
            model: Any = AutoModelForCausalLM.from_pretrained(str(self.source), dtype=dtype,
                                                              **kwargs)
            if self.adapter is not None:
                if importlib.util.find_spec("peft") is None:
                    raise MissingDependency("peft", "hf", "the hf: backend's adapter option")
                import warnings

                from peft import PeftModel

                with warnings.catch_warnings():
                    # peft calls a transformers API that transformers deprecates; not the user's concern
                    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*",
                                            category=FutureWarning)
                    model = PeftModel.from_pretrained(model, str(self.adapter),
                                                      local_files_only=local_only)
                if self.merge_adapter:
                    model = model.merge_and_unload()
        except (OSError, ValueError) as exc:
            hint = " (HF_HUB_OFFLINE is set: only cached models load)" if _offline() else ""
            raise ModelError(f"hf:{self.target}: could not load the model{hint}: {exc}") from exc
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model.to(device).eval()
        self._model, self._tokenizer, self._device = model, tokenizer, torch.device(device)
        self._context = self.max_length or _context_length(model.config, tokenizer)
        self._logits_to_keep = accepts_logits_to_keep(model)

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer (loads the model on first access)."""
        self._load()
        return self._tokenizer

    @property
    def context_length(self) -> int:
        """Tokens the model attends to (prompt plus generated)."""
        self._load()
        return self._context

    def close(self) -> None:
        self._model = self._tokenizer = None
        self._configs.clear()

    # -- prompts ------------------------------------------------------------------

    def render(self, prompt: Prompt) -> tuple[str, bool]:
        """Prompt text, and whether special tokens must still be added when encoding.

        Chat messages go through the tokenizer's chat template (which writes its
        own special tokens), continuing a final assistant message rather than
        opening a new turn; without a template they are flattened to text.
        """
        tok = self.tokenizer
        if isinstance(prompt, str):
            return prompt, True
        if getattr(tok, "chat_template", None):
            if prompt and prompt[-1].get("role") == "assistant":
                # A final assistant message is a reply prefix to continue, not a finished turn.
                text = tok.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=False,
                                               continue_final_message=True)
            else:
                text = tok.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)
            return str(text), False
        return messages_to_text(prompt), True

    def encode(self, prompt: Prompt) -> list[int]:
        return self.encode_many([prompt])[0]

    def encode_many(self, prompts: Sequence[Prompt]) -> list[list[int]]:
        """Token ids of many prompts, with one tokenizer call per kind (plain text or chat)."""
        tok = self.tokenizer
        rendered = [self.render(p) for p in prompts]
        out: list[list[int]] = [[] for _ in prompts]
        for special in (True, False):
            where = [i for i, (_, s) in enumerate(rendered) if s is special]
            if where:
                ids = tok([rendered[i][0] for i in where], add_special_tokens=special)["input_ids"]
                for i, row in zip(where, ids, strict=True):
                    out[i] = list(row)
        return out

    # -- generation ---------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest],
                 progress: Callable[[int], None] | None = None) -> list[GenerationOutcome]:
        """Outputs in request order; requests are grouped by parameters and batched by length.

        Each answer's latency is its batch's wall time divided by the batch size.
        """
        self._load()
        results: list[GenerationOutcome | None] = [None] * len(requests)
        groups: dict[tuple[GenerationParams, int], list[int]] = {}
        for i, req in enumerate(requests):
            params = self._with_defaults(req.params)
            # Sampled requests batch per sample index, each batch seeded with seed + sample.
            key = (params, req.sample if params.temperature > 0 else 0)
            groups.setdefault(key, []).append(i)
        truncated = 0
        for (params, sample), indices in groups.items():
            encoded = dict(zip(indices, self.encode_many([requests[i].prompt for i in indices]),
                               strict=True))
            max_new = params.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
            limit = max(1, self._context - max_new)
            for i, ids in encoded.items():
                if len(ids) > limit:
                    encoded[i] = ids[-limit:]
                    truncated += 1
            order = sorted(indices, key=lambda i: -len(encoded[i]))
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                started = time.perf_counter()
                outs = self._generate_safe([encoded[i] for i in chunk], params, sample)
                self.record_batch(chunk, time.perf_counter() - started)
                for i, out in zip(chunk, outs, strict=True):
                    results[i] = out
                if progress is not None:
                    progress(len(chunk))
        if truncated:
            warnings.warn(LLMEvalWarning(
                f"hf:{self.target}: {truncated} prompt(s) longer than the context "
                f"({self._context} tokens minus max_new_tokens) were truncated from the left"),
                stacklevel=2)
        return [r if r is not None else ModelError("no output") for r in results]

    def _with_defaults(self, params: GenerationParams) -> GenerationParams:
        """Fill the fields a request left at their default with this model's options."""
        fields = {}
        blank = GenerationParams()
        for key, value in self.defaults.items():
            if getattr(params, key) == getattr(blank, key):
                fields[key] = value
        if not fields:
            return params
        merged = params.to_dict() | fields
        return GenerationParams.from_dict(merged)

    def _generate_safe(self, batch: list[list[int]], params: GenerationParams,
                       sample: int) -> list[GenerationOutcome]:
        """Generate one batch; on out-of-memory retry in halves, else fail the batch's slots."""
        import torch

        try:
            return list(self._generate_batch(batch, params, sample))
        except torch.cuda.OutOfMemoryError as exc:
            if len(batch) == 1:
                return [ModelError(f"hf:{self.target}: out of memory: {exc}")]
            torch.cuda.empty_cache()
            half = len(batch) // 2
            return (self._generate_safe(batch[:half], params, sample)
                    + self._generate_safe(batch[half:], params, sample))
        except (RuntimeError, ValueError) as exc:
            err = ModelError(f"hf:{self.target}: generation failed: {exc}")
            return [err] * len(batch)

    def _generate_batch(self, batch: list[list[int]], params: GenerationParams,
                        sample: int) -> list[str]:
        """One ``model.generate`` call on a left-padded batch, decoded with one device-to-host copy."""
        import torch
        from transformers import StoppingCriteriaList

        tok, model = self._tokenizer, self._model
        max_new = params.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
        max_new = max(1, min(max_new, self._context - max(len(ids) for ids in batch)))
        rows = batch
        if self.compile:
            # Few distinct shapes, so the compiled decode step is reused rather than recompiled:
            # the batch is filled up to a power of two with copies of its first prompt.
            rows = batch + [batch[0]] * (_bucket(len(batch), self.batch_size) - len(batch))
        input_ids, mask = _left_pad(rows, tok.pad_token_id, self._device)
        width = input_ids.shape[1]
        kwargs: dict[str, Any] = {"generation_config": self._generation_config(params, max_new)}
        if params.stop:
            kwargs["stopping_criteria"] = StoppingCriteriaList(
                [_StopOnStrings(tok, params.stop, width, len(rows))])
        with torch.inference_mode():
            if params.temperature > 0:
                # Greedy decoding draws no random numbers; only sampling forks and seeds the RNG.
                devices = [self._device] if self._device.type == "cuda" else []
                with torch.random.fork_rng(devices=devices):
                    torch.manual_seed((params.seed or 0) + sample)
                    out = model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
            else:
                out = model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)
            new = out[:len(batch), width:].tolist()
        texts = tok.batch_decode(new, skip_special_tokens=True)
        return [apply_stop(t, params.stop) for t in texts]

    def _generation_config(self, params: GenerationParams, max_new: int) -> Any:
        """The ``GenerationConfig`` of a batch (built once per parameters; generate copies it).

        Unset fields (EOS ids among them: some models stop on several) come from the
        model's own generation config, as they do for a plain ``model.generate``.
        """
        key = (params, max_new)
        config = self._configs.get(key)
        if config is not None:
            return config
        from transformers import GenerationConfig

        tok, model = self._tokenizer, self._model
        config = GenerationConfig(max_new_tokens=max_new, pad_token_id=tok.pad_token_id,
                                  do_sample=params.temperature > 0)
        if getattr(model.generation_config, "eos_token_id", None) is None:
            config.eos_token_id = tok.eos_token_id
        if params.temperature > 0:
            config.temperature = params.temperature
            config.top_p = params.top_p if params.top_p is not None else 1.0
            config.top_k = params.top_k if params.top_k is not None else 0
        if self.compile:
            from transformers import CompileConfig

            config.cache_implementation = "static"
            compile_config: Any = CompileConfig()
            # transformers compiles only on accelerators unless told otherwise.
            compile_config._compile_all_devices = True
            config.compile_config = compile_config
        self._configs[key] = config
        return config

    # -- scoring ------------------------------------------------------------------

    def loglikelihood(self, context: str, continuations: Sequence[str]) -> list[float]:
        """Sum of the log-probabilities of each continuation's tokens after ``context``.

        One question's choices in one batch. To score a whole multiple-choice
        suite, pass every (context, choice) pair to :meth:`loglikelihood_batch`
        at once: the pairs of many questions then share forward passes.
        """
        return self.loglikelihood_many([(context, c) for c in continuations])

    def loglikelihood_many(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """The summed log-probability of each (context, continuation) pair; see ``loglikelihood_batch``."""
        return [r.logprob for r in self.loglikelihood_batch(pairs)]

    def loglikelihood_batch(self, pairs: Sequence[tuple[str, str]]) -> list[Loglikelihood]:
        """Score many (context, continuation) pairs, in input order, batched by length.

        Each result is ``Loglikelihood(logprob, tokens, is_greedy)``: the sum of
        the continuation tokens' log-probabilities, how many tokens that is, and
        whether each was the most probable next token. Whitespace at the end of
        a context moves to the start of its continuation, so ``("Answer:", " B")``
        and ``("Answer: ", "B")`` score the same tokens. The context is truncated
        from the left when the pair exceeds the model's context; the
        continuation is always kept whole.
        """
        self._load()
        items = encode_pairs(self._tokenizer, pairs, self._context)
        scorer = Scorer(self._model, self._tokenizer.pad_token_id, self._device, self.batch_size,
                        self.target, logits_to_keep=self._logits_to_keep)
        return scorer.score(items)

    def next_token_probs(self, prompts: Sequence[Prompt],
                         candidates: Sequence[str]) -> list[dict[str, float]]:
        """Probability of each candidate's first token as the token after each prompt.

        Candidates that share a first token share its probability; the values
        need not sum to one (the rest of the vocabulary keeps its mass).
        """
        import torch

        self._load()
        tok = self._tokenizer
        first: dict[str, int] = {}
        for cand in candidates:
            ids = tok(cand, add_special_tokens=False)["input_ids"]
            if not ids:
                raise ValueError(f"candidate {cand!r} encodes to no tokens")
            first[cand] = ids[0]
        encoded = [self.encode(p)[-self._context:] for p in prompts]
        out: list[dict[str, float]] = [{} for _ in prompts]
        order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            input_ids, mask = _left_pad([encoded[i] for i in chunk], tok.pad_token_id, self._device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            keep = {"logits_to_keep": 1} if self._logits_to_keep else {}
            with torch.inference_mode():
                logits = self._model(input_ids=input_ids, attention_mask=mask,
                                     position_ids=positions, **keep).logits[:, -1, :]
            probs = torch.softmax(logits.float(), dim=-1).cpu()
            for row, i in enumerate(chunk):
                out[i] = {c: float(probs[row, t]) for c, t in first.items()}
        return out


class _StopOnStrings:
    """Stopping criterion: a sequence is done once its new text contains a stop string.

    Each step copies only the last few tokens of the batch to the host, once,
    and decodes them only for sequences not yet done: enough tokens to hold the
    longest stop string even at one byte per token (plus a margin, so the
    window never starts inside it), so a stop is seen at the step that
    completes it. Finished sequences are remembered, not re-decoded.
    """

    def __init__(self, tokenizer: Any, stop: Sequence[str], prompt_len: int, rows: int) -> None:
        self.tokenizer = tokenizer
        self.stop = [s for s in stop if s]
        self.prompt_len = prompt_len
        self.window = max((len(s.encode()) for s in self.stop), default=1) + 4
        self.done = [False] * rows

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        todo = [r for r, finished in enumerate(self.done) if not finished]
        if todo and self.stop:
            start = max(self.prompt_len, input_ids.shape[1] - self.window)
            tails = input_ids[:, start:].tolist()
            texts = self.tokenizer.batch_decode([tails[r] for r in todo], skip_special_tokens=True)
            for r, text in zip(todo, texts, strict=True):
                self.done[r] = any(s in text for s in self.stop)
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


def _left_pad(batch: list[list[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    """Input ids and attention mask of a left-padded batch, built on the host and copied once."""
    import torch

    width = max(len(ids) for ids in batch)
    host = torch.tensor([[[pad_id] * (width - len(ids)) + ids for ids in batch],
                         [[0] * (width - len(ids)) + [1] * len(ids) for ids in batch]],
                        dtype=torch.long)
    if device.type == "cuda":
        host = host.pin_memory()
    on_device = host.to(device, non_blocking=True)
    return on_device[0], on_device[1]


def _bucket(rows: int, batch_size: int) -> int:
    """The smallest power of two at least ``rows``, capped at ``batch_size``."""
    size = 1
    while size < rows:
        size *= 2
    return max(rows, min(size, batch_size))


def _context_length(config: Any, tokenizer: Any) -> int:
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10_000_000:
        return limit
    return 2048


def _source_fingerprint(source: Path | str) -> dict[str, Any]:
    """Digests of a local directory, or of the cached snapshot of a hub id."""
    if isinstance(source, Path):
        return directory_fingerprint(source)
    snapshot = _hub_snapshot(source)
    if snapshot is None:
        return {"revision": "not-cached"}
    return {"revision": snapshot.name, **directory_fingerprint(snapshot)}


def _hub_snapshot(repo_id: str) -> Path | None:
    """The locally cached snapshot directory of a hub model, if there is one."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(found, str):
        return Path(found).parent
    return None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _positive_int(value: Any, option: str, target: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"hf:{target}: option {option}={value!r} must be a positive integer")
    return value


def _default_params(options: dict[str, Any], target: str) -> dict[str, Any]:
    """Generation defaults given as model options, checked like a suite's ``generation:``."""
    given = {k: options[k] for k in GENERATION_OPTIONS if k in options}
    try:
        checked = GenerationParams.from_dict(given)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"hf:{target}: invalid generation option: {exc}") from exc
    return {k: getattr(checked, k) for k in given}
