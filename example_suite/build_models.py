"""Build the example suite's data and its two tiny models, deterministically, on CPU.

    python example_suite/build_models.py            # data, tokenizer, base, adapter
    python example_suite/build_models.py --only data   # or base / adapter

What it writes (all committed, so a test run needs no training):

- ``data/train.jsonl``: the fine-tuning split, records ``{"task", "instruction", "output"}``.
- ``data/<task>.jsonl``: eval cases of each task (``id``, fields, ``reference``, ``category``).
- ``models/base/``: a ~1.2 M-parameter Llama-style causal LM with its own byte-level
  BPE tokenizer, pre-trained on generic synthetic text from the same small world
  (people, places, reviews, news, small talk) but never in the tasks' formats.
- ``models/adapter/``: a LoRA adapter (peft) fine-tuned on ``data/train.jsonl``.

Eval cases are drawn first; a training example is kept only when it shares no
13-gram with any eval case (under several normalisations), so the contamination
gate of the suites passes by construction. Every random choice comes from seeded
generators and training runs single-threaded with deterministic algorithms, so
a rebuild on the same torch version and CPU type gives the same files.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
MODELS = HERE / "models"

SEED = 1234
CONTAMINATION_N = 13
EVAL_CASES = 60
TRAIN_PER_TASK = 1200
TASKS = ("sentiment", "extraction", "headline", "rewrite")

SPECIAL_TOKENS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# Prompt formats shared with the *.eval.yaml files: keep them in sync.
PROMPTS = {
    "sentiment": "Review: {text}\nSentiment:",
    "extraction": "Text: {text}\nJSON:",
    "headline": "Article: {article}\nHeadline:",
}
REWRITE_SYSTEM = "Rewrite the message in a casual style."

# ---------------------------------------------------------------------------
# The small world the data is drawn from
# ---------------------------------------------------------------------------

FIRST = ["Maria", "John", "Aisha", "Lucas", "Mei", "Omar", "Sofia", "Ivan", "Nora", "Pedro",
         "Elena", "Kofi", "Hana", "Liam", "Zara", "Tomas", "Ines", "Ravi", "Lena", "Felix",
         "Amara", "Diego", "Yuki", "Sara", "Bruno", "Nadia", "Oscar", "Leila", "Hugo", "Vera"]
LAST = ["Lopez", "Smith", "Khan", "Silva", "Chen", "Haddad", "Rossi", "Petrov", "Berg",
        "Costa", "Novak", "Mensah", "Sato", "Walsh", "Ali", "Weber", "Moreau", "Patel",
        "Jansen", "Kowalski"]
CITIES = ["Lisbon", "Porto", "Madrid", "Paris", "Berlin", "Oslo", "Dublin", "Rome", "Vienna",
          "Prague", "Warsaw", "Athens", "Cairo", "Nairobi", "Lima", "Quito", "Tokyo", "Seoul",
          "Delhi", "Sydney"]

# sentiment: (domain, items), (adjectives per polarity)
DOMAINS = {
    "restaurant": ["pasta", "soup", "pizza", "dessert", "coffee", "salad", "waiter", "menu"],
    "hotel": ["room", "bed", "shower", "breakfast", "pool", "reception", "view", "lobby"],
    "shop": ["jacket", "phone", "lamp", "chair", "delivery", "price", "package", "charger"],
}
POLARITY = {
    "positive": ["excellent", "wonderful", "great", "lovely", "fantastic", "superb", "perfect",
                 "delightful"],
    "negative": ["terrible", "awful", "horrible", "disappointing", "bad", "dreadful", "poor",
                 "broken"],
    "neutral": ["okay", "average", "fine", "ordinary", "acceptable", "standard", "plain",
                "adequate"],
}
REVIEW_TEMPLATES = [
    "The {item} was {adj}.",
    "Honestly, the {item} was {adj}.",
    "I thought the {item} was {adj} overall.",
    "Our {item} was {adj} this time.",
    "{Name} said the {item} was {adj}.",
    "The {item} in {city} was {adj}.",
    "We found the {item} {adj}.",
    "My {item} was {adj}, to be honest.",
]

# extraction
EXTRACTION_TEMPLATES = [
    "{name} is {age} years old and lives in {city}.",
    "Meet {name}, a {age} year old from {city}.",
    "{name}, aged {age}, moved to {city} last year.",
    "In {city} we met {name}, who is {age}.",
    "At {age}, {name} opened a bakery in {city}.",
    "{name} ({age}) works at a school in {city}.",
]

# headline: organisation, (past, present) verbs, objects, follow-up sentences
ORGS = ["council", "hospital", "university", "police", "museum", "zoo", "library", "airport"]
VERBS = [("approved", "approves"), ("opened", "opens"), ("cancelled", "cancels"),
         ("announced", "announces"), ("delayed", "delays"), ("expanded", "expands"),
         ("closed", "closes"), ("launched", "launches")]
OBJECTS = ["new budget", "night bus line", "summer festival", "bike lanes", "free concerts",
           "longer hours", "art exhibition", "parking plan", "training program", "food market"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
FOLLOW_UPS = [
    "Officials said the plan will cost {n} million.",
    "{Name} called the decision {adj}.",
    "About {n} thousand people are expected.",
    "Local groups in {city2} asked for more details.",
    "The vote ended {n} to {m}.",
    "{Name} from {city2} welcomed the news.",
]

# rewrite: formal -> casual phrase pairs
OPENERS = [("I would like to", "I wanna"), ("Could you please", "can you"),
           ("We intend to", "we're gonna"), ("I am unable to", "I can't"),
           ("We shall", "we'll"), ("I must", "I gotta")]
RW_VERBS = [("purchase", "buy"), ("obtain", "get"), ("commence", "start"),
            ("examine", "check"), ("reserve", "book"), ("repair", "fix"),
            ("locate", "find"), ("discard", "toss")]
RW_OBJECTS = [("the tickets", "the tickets"), ("the vehicle", "the car"),
              ("the documents", "the papers"), ("the residence", "the house"),
              ("the beverages", "the drinks"), ("the apparatus", "the thing"),
              ("the correspondence", "the mail"), ("the meal", "the food")]
RW_TIMES = [("at your earliest convenience", "asap"), ("this evening", "tonight"),
            ("immediately", "right now"), ("subsequently", "later"),
            ("tomorrow morning", "tomorrow morning"), ("prior to noon", "before noon")]
RW_CLOSERS = [("Kind regards, {name}.", "thanks, {name}"), ("Sincerely, {name}.", "cheers, {name}"),
              ("Respectfully, {name}.", "bye, {name}")]


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def sentiment_case(rng: random.Random) -> dict[str, Any]:
    domain = rng.choice(sorted(DOMAINS))
    label = rng.choice(sorted(POLARITY))
    text = rng.choice(REVIEW_TEMPLATES).format(
        item=rng.choice(DOMAINS[domain]), adj=rng.choice(POLARITY[label]),
        Name=rng.choice(FIRST), city=rng.choice(CITIES))
    return {"text": text, "reference": label, "category": domain}


def extraction_case(rng: random.Random) -> dict[str, Any]:
    name, age, city = _person(rng), rng.randint(18, 89), rng.choice(CITIES)
    text = rng.choice(EXTRACTION_TEMPLATES).format(name=name, age=age, city=city)
    ref = json.dumps({"name": name, "age": age, "city": city})
    return {"text": text, "reference": ref, "category": "person"}


def headline_case(rng: random.Random) -> dict[str, Any]:
    city, org = rng.choice(CITIES), rng.choice(ORGS)
    past, present = rng.choice(VERBS)
    obj, day = rng.choice(OBJECTS), rng.choice(DAYS)
    first = f"The {city} {org} {past} the {obj} on {day}."
    rest = [t.format(n=rng.randint(2, 90), m=rng.randint(1, 9), Name=_person(rng),
                     adj=rng.choice(POLARITY["positive"] + POLARITY["negative"]),
                     city2=rng.choice(CITIES))
            for t in rng.sample(FOLLOW_UPS, 2)]
    headline = f"{city} {org} {present} {obj}"
    return {"article": " ".join([first, *rest]), "reference": headline, "category": org}


def rewrite_case(rng: random.Random) -> dict[str, Any]:
    (o_f, o_c), (v_f, v_c) = rng.choice(OPENERS), rng.choice(RW_VERBS)
    (b_f, b_c), (t_f, t_c) = rng.choice(RW_OBJECTS), rng.choice(RW_TIMES)
    c_f, c_c = rng.choice(RW_CLOSERS)
    name = rng.choice(FIRST)
    formal = f"{o_f} {v_f} {b_f} {t_f}. {c_f.format(name=name)}"
    casual = f"{o_c} {v_c} {b_c} {t_c}, {c_c.format(name=name)}"
    return {"text": formal, "reference": casual, "category": "request"}


MAKERS: dict[str, Callable[[random.Random], dict[str, Any]]] = {
    "sentiment": sentiment_case, "extraction": extraction_case,
    "headline": headline_case, "rewrite": rewrite_case,
}


def instruction_of(task: str, case: dict[str, Any]) -> str:
    """The prompt text a case is shown as (the user message for the chat task)."""
    if task == "rewrite":
        return str(case["text"])
    return PROMPTS[task].format(**case)


# ---------------------------------------------------------------------------
# Disjoint train / eval splits
# ---------------------------------------------------------------------------

def _normalisations(text: str) -> Iterator[list[str]]:
    low = text.lower()
    yield low.split()
    yield re.findall(r"\w+", low)
    yield re.sub(r"[^\w\s]", " ", low).split()


def ngrams(texts: list[str], n: int) -> set[tuple[str, ...]]:
    """Word n-grams of each text under several normalisations (and of their concatenation)."""
    out: set[tuple[str, ...]] = set()
    for text in [*texts, " ".join(texts)]:
        for words in _normalisations(text):
            out.update(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return out


def build_data() -> None:
    """Write the eval cases of every task, then a training split that shares no n-gram with them."""
    DATA.mkdir(parents=True, exist_ok=True)
    eval_grams: set[tuple[str, ...]] = set()
    eval_inputs: set[str] = set()
    for t_index, task in enumerate(TASKS):
        rng = random.Random(SEED * 100 + t_index)
        cases: list[dict[str, Any]] = []
        while len(cases) < EVAL_CASES:
            case = MAKERS[task](rng)
            key = instruction_of(task, case)
            if key in eval_inputs:
                continue
            eval_inputs.add(key)
            cases.append({"id": f"{task[:3]}-{len(cases) + 1:03d}", **case})
            eval_grams |= ngrams([key, case["reference"]], CONTAMINATION_N)
            eval_grams |= ngrams([str(v) for v in case.values()], CONTAMINATION_N)
        _write_jsonl(DATA / f"{task}.jsonl", cases)

    train: list[dict[str, Any]] = []
    rejected = 0
    for t_index, task in enumerate(TASKS):
        rng = random.Random(SEED * 200 + t_index)
        kept = 0
        seen: set[str] = set()
        while kept < TRAIN_PER_TASK:
            case = MAKERS[task](rng)
            instruction = instruction_of(task, case)
            if instruction in eval_inputs or instruction in seen or (
                    ngrams([instruction, case["reference"]], CONTAMINATION_N) & eval_grams):
                rejected += 1
                continue
            seen.add(instruction)
            train.append({"task": task, "instruction": instruction, "output": case["reference"]})
            kept += 1
    random.Random(SEED).shuffle(train)
    _write_jsonl(DATA / "train.jsonl", train)
    print(f"data: {len(TASKS)} x {EVAL_CASES} eval cases, {len(train)} training examples "
          f"({rejected} candidates rejected for overlap with the eval cases)")


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# ---------------------------------------------------------------------------
# Generic pre-training text (same words, never the task formats)
# ---------------------------------------------------------------------------

GENERIC = [
    "{name} lives in {city}. {first} likes the {item} there.",
    "{name} is a teacher. {first} is {age} and has a cat.",
    "Last {day}, {name} travelled from {city} to {city2}.",
    "The {org} in {city} is near the old market.",
    "People in {city} say the {item} is {adj}.",
    "{first} wrote a long letter about the {obj}.",
    "The {obj} started in {city} when {first} was {age}.",
    "{name} met {name2} at the {org}. They talked about the {obj}.",
    "In {city}, the weather on {day} was {adj}.",
    "{first} bought a {item} and a {item2} in {city}.",
    "The {org} has {n} rooms and a small garden.",
    "{name} and {name2} walked to the {org} after lunch.",
    "My friend {first} thinks the {item} is {adj}. {first} told me on {day}.",
    "The report about the {obj} was long and detailed.",
    "{name} said: {first} will visit {city} soon.",
    "{formal} {rw_obj} {rw_time}.",
    "{casual} {rw_obj_c}.",
]
# Sentences that mention an entity again: they teach the base to copy earlier tokens,
# which the adapter then needs for extraction and headlines.
REPEATS = [
    "{name} lives in {city}. Everyone in {city} knows {name}.",
    "{name} is {age}. At {age}, {name} still walks to the {org}.",
    "The {org} of {city} hired {name}. Now {name} works in {city}.",
    "{name} met {name2}. Later {name2} called {name} from {city}.",
    "We saw {city} and {city2}. {city} was {adj}, and {city2} too.",
    "{first} asked about the {obj}. The {obj} pleased {first}.",
    "On {day} the {org} in {city} was busy; {day} is always busy in {city}.",
]
SMALL_TALK = [
    ("Hello, how are you?", "I am fine, thanks."),
    ("Where do you live?", "I live in {city}."),
    ("What is your name?", "My name is {first}."),
    ("Do you like the {item}?", "Yes, the {item} is {adj}."),
    ("What day is it?", "It is {day}."),
    ("Tell me about {city}.", "{city} has a {org} and a market."),
]


def generic_text(rng: random.Random) -> str:
    """One generic sentence or a small-talk chat (so the base knows the chat markers)."""
    fill = {
        "name": _person(rng), "name2": _person(rng), "first": rng.choice(FIRST),
        "city": rng.choice(CITIES), "city2": rng.choice(CITIES), "age": rng.randint(18, 89),
        "item": rng.choice([i for v in DOMAINS.values() for i in v]),
        "item2": rng.choice([i for v in DOMAINS.values() for i in v]),
        "adj": rng.choice([a for v in POLARITY.values() for a in v]), "org": rng.choice(ORGS),
        "obj": rng.choice(OBJECTS), "day": rng.choice(DAYS), "n": rng.randint(2, 90),
        "formal": rng.choice(OPENERS)[0] + " " + rng.choice(RW_VERBS)[0],
        "casual": rng.choice(OPENERS)[1] + " " + rng.choice(RW_VERBS)[1],
        "rw_obj": rng.choice(RW_OBJECTS)[0], "rw_obj_c": rng.choice(RW_OBJECTS)[1],
        "rw_time": rng.choice(RW_TIMES)[0],
    }
    if rng.random() < 0.15:
        q, a = rng.choice(SMALL_TALK)
        return (f"<|user|>\n{q.format(**fill)}<|end|>\n"
                f"<|assistant|>\n{a.format(**fill)}<|end|>\n")
    return rng.choice(REPEATS if rng.random() < 0.5 else GENERIC).format(**fill)


# ---------------------------------------------------------------------------
# Tokenizer and models
# ---------------------------------------------------------------------------

BLOCK = 96
MODEL_CONFIG: dict[str, Any] = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=5,
                    num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
                    tie_word_embeddings=True, rms_norm_eps=1e-6)
VOCAB = 1024
PRETRAIN_STEPS = 400
PRETRAIN_BATCH = 32
ADAPTER_STEPS = 600
ADAPTER_BATCH = 32


def _setup_torch() -> Any:
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    return torch


def build_tokenizer(corpus: list[str], out: Path) -> Any:
    """A byte-level BPE tokenizer trained on the corpus, with the chat template attached."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end|>",
                                   pad_token="<|pad|>", padding_side="left")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def _task_examples(tokenizer: Any) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, answer ids + eos) for every training record, the chat task via the template."""
    examples = []
    for rec in _read_jsonl(DATA / "train.jsonl"):
        if rec["task"] == "rewrite":
            prompt = tokenizer.apply_chat_template(
                [{"role": "system", "content": REWRITE_SYSTEM},
                 {"role": "user", "content": rec["instruction"]}],
                tokenize=False, add_generation_prompt=True)
            answer = rec["output"]
        else:
            prompt, answer = rec["instruction"], " " + rec["output"]
        p = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        a = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        examples.append((p, a))
    return examples


def _train(model: Any, batches: Callable[[int], tuple[Any, Any]], steps: int, lr: float,
           label: str) -> None:
    torch = _setup_torch()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * max(0.05, 1 - s / steps))
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        ids, labels = batches(step)
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == steps - 1:
            print(f"{label} step {step:4d} loss {loss.item():.3f} "
                  f"({time.perf_counter() - start:.0f}s)", flush=True)
    model.eval()


def build_base(tokenizer: Any, out: Path) -> Any:
    """Pre-train the base model on generic text packed into fixed-length blocks."""
    torch = _setup_torch()
    from transformers import LlamaConfig, LlamaForCausalLM

    rng = random.Random(SEED + 1)
    stream: list[int] = []
    needed = PRETRAIN_STEPS * PRETRAIN_BATCH * BLOCK
    while len(stream) < needed:
        stream += tokenizer(generic_text(rng) + "\n", add_special_tokens=False)["input_ids"]
    blocks = torch.tensor(stream[:needed]).view(-1, BLOCK)
    config = LlamaConfig(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
                         **MODEL_CONFIG)
    model = LlamaForCausalLM(config)
    print(f"base: {sum(p.numel() for p in model.parameters()):,} parameters")

    def batches(step: int) -> tuple[Any, Any]:
        b = blocks[step * PRETRAIN_BATCH:(step + 1) * PRETRAIN_BATCH]
        return b, b

    _train(model, batches, PRETRAIN_STEPS, 3e-3, "base")
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out, safe_serialization=True)
    return model


def build_adapter(tokenizer: Any, base: Any, out: Path) -> None:
    """Fine-tune a LoRA adapter on the training split, loss on the answer tokens only."""
    torch = _setup_torch()
    from peft import LoraConfig, get_peft_model

    examples = _task_examples(tokenizer)
    rng = random.Random(SEED + 2)
    order: list[int] = []
    while len(order) < ADAPTER_STEPS * ADAPTER_BATCH:
        idx = list(range(len(examples)))
        rng.shuffle(idx)
        order += idx
    pad = tokenizer.pad_token_id

    def batches(step: int) -> tuple[Any, Any]:
        chosen = [examples[i] for i in order[step * ADAPTER_BATCH:(step + 1) * ADAPTER_BATCH]]
        width = max(len(p) + len(a) for p, a in chosen)
        ids = torch.full((len(chosen), width), pad)
        labels = torch.full((len(chosen), width), -100)
        for row, (p, a) in enumerate(chosen):
            seq = p + a
            ids[row, :len(seq)] = torch.tensor(seq)
            labels[row, len(p):len(seq)] = torch.tensor(a)
        return ids, labels

    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                        "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(base, config)
    _train(model, batches, ADAPTER_STEPS, 3e-3, "adapter")
    model.save_pretrained(str(out), safe_serialization=True)
    (out / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
    # peft records the absolute base path; keep the committed files machine-independent.
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = "../base"
    cfg["target_modules"] = sorted(cfg["target_modules"])  # a set in peft: order varies per run
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["data", "base", "adapter", "all"], default="all",
                        help="build one stage (each later stage reads the earlier ones from disk)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    base_dir, adapter_dir = MODELS / "base", MODELS / "adapter"
    if args.only in ("data", "all"):
        build_data()
    if args.only in ("base", "all"):
        shutil.rmtree(base_dir, ignore_errors=True)
        rng = random.Random(SEED + 3)
        corpus = [generic_text(rng) for _ in range(20000)]
        corpus += [r["instruction"] + " " + r["output"] for r in _read_jsonl(DATA / "train.jsonl")]
        build_base(build_tokenizer(corpus, base_dir), base_dir)
    if args.only in ("adapter", "all"):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        shutil.rmtree(adapter_dir, ignore_errors=True)
        tokenizer = AutoTokenizer.from_pretrained(base_dir)
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype="float32")
        build_adapter(tokenizer, base, adapter_dir)
    print(f"done in {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
