"""Judge prompt templates: the package's defaults, per-suite overrides, and safe rendering.

Templates use ``{name}`` placeholders (only lower-case names in braces are
placeholders, so JSON examples in a template are left alone). Rendering is one
pass over the template: text substituted in is never scanned for placeholders.

Every piece of evaluated text (the user prompt, the responses, the reference)
is put in a data block whose BEGIN/END lines carry a boundary code derived from
a SHA-256 hash of all the block contents. A judged output cannot close its
block early: to do so it would have to contain the hash of a text that includes
itself.

A conversation (a multi-turn case) is one block per message, each labelled with its
role and turn on its BEGIN/END lines, so an answer cannot pass itself off as the
user's next message. Turn 1 is judged with the single-turn templates; a later turn
with the ``*_multiturn`` templates, which show the whole conversation up to it and
ask for a verdict on its last answer (MT-Bench's grading of second turns).

Templates are chosen per judge with the ``prompts:`` option, a mapping of kind
(``score``, ``pairwise``, ``score_multiturn``, ``pairwise_multiturn``) to template
text or a file; ``prompt_score``/``prompt_pairwise`` remain spellings of the first two.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_llmeval.errors import ConfigError

if TYPE_CHECKING:
    from pytest_llmeval.judge.base import Turn

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

SCORE_PLACEHOLDERS = ("criteria", "prompt", "response", "reference_section",
                      "scale_min", "scale_max", "output_format")
PAIRWISE_PLACEHOLDERS = ("criteria", "prompt", "response_a", "response_b",
                         "reference_section", "output_format")
SCORE_MULTITURN_PLACEHOLDERS = ("criteria", "conversation", "reference_section", "scale_min",
                                "scale_max", "output_format")
PAIRWISE_MULTITURN_PLACEHOLDERS = ("criteria", "conversation_a", "conversation_b", "reference_section",
                                   "output_format")
REQUIRED = {"score": ("response", "output_format"),
            "pairwise": ("response_a", "response_b", "output_format"),
            "score_multiturn": ("conversation", "output_format"),
            "pairwise_multiturn": ("conversation_a", "conversation_b", "output_format")}
ALLOWED = {"score": SCORE_PLACEHOLDERS, "pairwise": PAIRWISE_PLACEHOLDERS,
           "score_multiturn": SCORE_MULTITURN_PLACEHOLDERS,
           "pairwise_multiturn": PAIRWISE_MULTITURN_PLACEHOLDERS}
PROMPT_KINDS = tuple(ALLOWED)
"""The kinds a ``prompts:`` mapping may name."""
LEGACY_OPTIONS = {"score": "prompt_score", "pairwise": "prompt_pairwise"}

DEFAULT_SCORE_CRITERIA = "accuracy, relevance and helpfulness"
DEFAULT_PAIRWISE_CRITERIA = "overall quality: accuracy, relevance and helpfulness"


def default_template(kind: str) -> str:
    """The package's own template text: a kind of :data:`PROMPT_KINDS`, or ``repair``."""
    return (resources.files("pytest_llmeval.judge") / "prompts" / f"{kind}.txt").read_text(
        encoding="utf-8")


def resolve_template(value: str | None, kind: str, *, option: str, base_dir: Path) -> str:
    """Turn a ``prompt_score``/``prompt_pairwise`` option into template text and check it.

    A value with a line break or a brace is inline text; otherwise it names a
    file relative to ``base_dir``.

    Raises:
        ConfigError: missing file, missing required or unknown placeholders.
    """
    if value is None:
        return default_template(kind)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"judge option '{option}' must be template text or a path to a text file")
    if "\n" in value or "{" in value:
        text = value
    else:
        path = Path(value) if Path(value).is_absolute() else base_dir / value
        if not path.is_file():
            raise ConfigError(
                f"judge option '{option}': template file {str(path)!r} not found (paths are "
                f"relative to {str(base_dir)!r}; inline text must contain its placeholders, "
                f"e.g. {{response}})")
        text = path.read_text(encoding="utf-8")
    used = set(PLACEHOLDER.findall(text))
    unknown = sorted(used - set(ALLOWED[kind]))
    missing = [p for p in REQUIRED[kind] if p not in used]
    if unknown:
        raise ConfigError(f"judge option '{option}': unknown placeholders "
                          f"{['{' + u + '}' for u in unknown]}; allowed: "
                          f"{['{' + a + '}' for a in ALLOWED[kind]]}")
    if missing:
        raise ConfigError(f"judge option '{option}': the template must contain "
                          f"{['{' + m + '}' for m in missing]}")
    return text


def render(template: str, values: Mapping[str, str]) -> str:
    """Substitute placeholders in one pass (inserted text is never re-scanned)."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def boundary_for(texts: Sequence[str]) -> str:
    """A boundary code that none of ``texts`` contains, deterministic (cache friendly)."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    salt = 0
    while True:
        code = hashlib.sha256(h.digest() + salt.to_bytes(4, "big")).hexdigest()[:20]
        if not any(code in t for t in texts):
            return code
        salt += 1


def block(label: str, text: str, boundary: str) -> str:
    """A delimited data block."""
    return (f"----- BEGIN {label} (boundary {boundary}) -----\n{text}\n"
            f"----- END {label} (boundary {boundary}) -----")


def _references(reference: str | Sequence[str] | None) -> list[str]:
    if reference is None:
        return []
    if isinstance(reference, str):
        return [reference]
    return [str(r) for r in reference]


def _conversation(history: Sequence[Turn], user: str, answer: str, boundary: str, speaker: str) -> str:
    """A conversation as one block per message, the last answer marked as the one to judge."""
    parts = []
    for k, turn in enumerate(history, 1):
        parts.append(block(f"USER, TURN {k}", turn.user, boundary))
        parts.append(block(f"{speaker}, TURN {k}", turn.answer, boundary))
    last = len(history) + 1
    parts.append(block(f"USER, TURN {last} (LAST)", user, boundary))
    parts.append(block(f"{speaker}, TURN {last} (THE ANSWER TO JUDGE)", answer, boundary))
    return "\n\n".join(parts)


def _turn_references(history: Sequence[Turn], reference: str | Sequence[str] | None) -> list[str | None]:
    refs: list[str | None] = [t.reference for t in history]
    last = _references(reference)
    refs.append(last[0] if last else None)
    return refs


def _turn_reference_section(refs: Sequence[str | None], boundary: str) -> str:
    if all(r is None for r in refs):
        return ""
    blocks = "\n\n".join(block(f"REFERENCE ANSWER, TURN {k}", r, boundary)
                          for k, r in enumerate(refs, 1) if r is not None)
    return ("\nReference answers to the user's messages are given for comparison; check the answer "
            "to judge against the reference of its turn and point out its mistakes:\n\n" + blocks + "\n")


def _reference_section(refs: Sequence[str], boundary: str) -> str:
    if not refs:
        return ""
    if len(refs) == 1:
        return ("\nA reference answer is given for comparison:\n\n"
                + block("REFERENCE", refs[0], boundary) + "\n")
    blocks = "\n\n".join(block(f"REFERENCE {i + 1}", r, boundary) for i, r in enumerate(refs))
    return "\nAcceptable reference answers are given for comparison:\n\n" + blocks + "\n"


def _criteria_text(criteria: str | None, rubric: Mapping[str, str] | None,
                   scale: tuple[int, int], default: str) -> str:
    if not rubric:
        return criteria or default
    lines = [f"- {name}: {desc} (from {scale[0]} to {scale[1]})" for name, desc in rubric.items()]
    head = f"{criteria}\nScore each of these criteria separately:" if criteria else \
        "Score each of these criteria separately:"
    return head + "\n" + "\n".join(lines)


def score_format(scale: tuple[int, int], rubric: Sequence[str] | None) -> str:
    """The output-format instruction for single scoring (it must match ``parse_score``)."""
    lo, hi = scale
    if rubric:
        example = ", ".join(f'"{name}": {hi}' for name in rubric)
        return ('Return only a JSON object with exactly two keys: "reasoning" (a brief '
                'explanation, written first) and "scores" (an object with exactly one integer '
                f'from {lo} to {hi} per criterion, keyed by its exact name). Example: '
                f'{{"reasoning": "...", "scores": {{{example}}}}}')
    return ('Return only a JSON object with exactly two keys: "reasoning" (a brief explanation, '
            f'written first) and "score" (an integer from {lo} to {hi}). Example: '
            f'{{"reasoning": "...", "score": {lo + (hi - lo) // 2}}}')


PAIR_FORMAT = ('Return only a JSON object with exactly two keys: "reasoning" (a brief explanation, '
               'written first) and "winner": "A" if Response A is better, "B" if Response B is '
               'better, or "tie" if neither is better. '
               'Example: {"reasoning": "...", "winner": "A"}')


@dataclass(frozen=True)
class PromptSet:
    """A judge's templates, resolved once when the judge is built."""

    score: str
    pairwise: str
    repair: str
    score_multiturn: str = ""
    pairwise_multiturn: str = ""

    def __post_init__(self) -> None:
        for kind in ("score_multiturn", "pairwise_multiturn"):
            if not getattr(self, kind):
                object.__setattr__(self, kind, default_template(kind))

    def render_score_multiturn(self, history: Sequence[Turn], prompt: str, response: str,
                               criteria: str | None, reference: str | Sequence[str] | None,
                               scale: tuple[int, int], rubric: Mapping[str, str] | None) -> str:
        """A later turn of a conversation: the whole conversation, the verdict on its last answer."""
        refs = _turn_references(history, reference)
        texts = [prompt, response, *(t.user for t in history), *(t.answer for t in history),
                 *(r for r in refs if r is not None)]
        b = boundary_for(texts)
        return render(self.score_multiturn, {
            "criteria": _criteria_text(criteria, rubric, scale, DEFAULT_SCORE_CRITERIA),
            "conversation": _conversation(history, prompt, response, b, "ASSISTANT"),
            "reference_section": _turn_reference_section(refs, b),
            "scale_min": str(scale[0]), "scale_max": str(scale[1]),
            "output_format": score_format(scale, list(rubric) if rubric else None),
        })

    def render_pairwise_multiturn(self, prompt: str, first: str, second: str,
                                  first_history: Sequence[Turn], second_history: Sequence[Turn],
                                  criteria: str | None, reference: str | Sequence[str] | None) -> str:
        """Two conversations with the same user messages: the verdict on their last answers."""
        refs = _turn_references(first_history, reference)
        texts = [prompt, first, second, *(t.user for t in first_history),
                 *(t.answer for t in (*first_history, *second_history)),
                 *(r for r in refs if r is not None)]
        b = boundary_for(texts)
        return render(self.pairwise_multiturn, {
            "criteria": criteria or DEFAULT_PAIRWISE_CRITERIA,
            "conversation_a": _conversation(first_history, prompt, first, b, "ASSISTANT A"),
            "conversation_b": _conversation(second_history, prompt, second, b, "ASSISTANT B"),
            "reference_section": _turn_reference_section(refs, b),
            "output_format": PAIR_FORMAT,
        })

    def render_score(self, prompt: str, response: str, criteria: str | None,
                     reference: str | Sequence[str] | None, scale: tuple[int, int],
                     rubric: Mapping[str, str] | None) -> str:
        refs = _references(reference)
        b = boundary_for([prompt, response, *refs])
        return render(self.score, {
            "criteria": _criteria_text(criteria, rubric, scale, DEFAULT_SCORE_CRITERIA),
            "prompt": block("USER PROMPT", prompt, b),
            "response": block("RESPONSE", response, b),
            "reference_section": _reference_section(refs, b),
            "scale_min": str(scale[0]), "scale_max": str(scale[1]),
            "output_format": score_format(scale, list(rubric) if rubric else None),
        })

    def render_pairwise(self, prompt: str, first: str, second: str, criteria: str | None,
                        reference: str | Sequence[str] | None) -> str:
        refs = _references(reference)
        b = boundary_for([prompt, first, second, *refs])
        return render(self.pairwise, {
            "criteria": criteria or DEFAULT_PAIRWISE_CRITERIA,
            "prompt": block("USER PROMPT", prompt, b),
            "response_a": block("RESPONSE A", first, b),
            "response_b": block("RESPONSE B", second, b),
            "reference_section": _reference_section(refs, b),
            "output_format": PAIR_FORMAT,
        })

    def render_repair(self, problem: str, output_format: str) -> str:
        return render(self.repair, {"problem": problem.rstrip("."), "output_format": output_format})


def load_prompts(options: Mapping[str, object], base_dir: Path) -> PromptSet:
    """Resolve the ``prompts:`` mapping and ``prompt_score``/``prompt_pairwise`` (or the defaults)."""
    chosen = _prompts_option(options.get("prompts"))
    templates: dict[str, str] = {}
    for kind in PROMPT_KINDS:
        option = f"prompts.{kind}"
        value = chosen.get(kind)
        legacy = LEGACY_OPTIONS.get(kind)
        if legacy is not None and options.get(legacy) is not None:
            if value is not None:
                raise ConfigError(f"judge options '{legacy}' and 'prompts.{kind}' both set the {kind} "
                                  f"template; keep one")
            value, option = _opt(options, legacy), legacy
        templates[kind] = resolve_template(value, kind, option=option, base_dir=base_dir)
    return PromptSet(repair=default_template("repair"), **templates)


def _prompts_option(value: object) -> dict[str, str]:
    """The ``prompts:`` option: kind -> template text or file, kinds from :data:`PROMPT_KINDS`."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"judge option 'prompts' must map template kinds ({', '.join(PROMPT_KINDS)}) to "
                          f"template text or a file path, got {value!r}")
    out: dict[str, str] = {}
    for kind, text in value.items():
        if kind not in PROMPT_KINDS:
            close = difflib.get_close_matches(str(kind), PROMPT_KINDS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"judge option 'prompts': unknown template kind '{kind}'.{hint} Kinds: "
                              f"{', '.join(PROMPT_KINDS)}")
        if not isinstance(text, str):
            raise ConfigError(f"judge option 'prompts.{kind}' must be a string (template text or file path)")
        out[str(kind)] = text
    return out


def _opt(options: Mapping[str, object], key: str) -> str | None:
    v = options.get(key)
    if v is not None and not isinstance(v, str):
        raise ConfigError(f"judge option '{key}' must be a string (template text or file path)")
    return v
