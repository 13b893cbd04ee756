"""Text normalisation and tokenisation shared by the eval index and the training scan.

Both sides must turn text into the same token sequence, so every rule lives here.
The training side normalises a whole chunk at once (fast); the eval side tokenises
raw whitespace tokens one by one so that each token keeps its span in the original
text, which is what the report shows.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError, MissingDependency

# Everything that is neither a word character nor whitespace; NUL is kept because the
# scanner uses it as the record separator inside a chunk.
_PUNCT = re.compile(r"[^\w\s\x00]|_")
# A maximal run of characters that ``str.split`` does not split on (``\s`` in a str
# pattern is exactly ``str.isspace``).
_RAW_TOKEN = re.compile(r"\S+")

Span = tuple[str, int, int]


@dataclass(frozen=True)
class Normalizer:
    """How text is normalised before tokenisation.

    Attributes:
        lowercase: lower-case the text (the lesson's only normalisation).
        nfkc: apply Unicode NFKC first (full-width letters, ligatures, ...).
        strip_punctuation: delete every character that is not a letter, digit or space.
    """

    lowercase: bool = True
    nfkc: bool = False
    strip_punctuation: bool = False

    def __call__(self, text: str) -> str:
        if self.nfkc:
            text = unicodedata.normalize("NFKC", text)
        if self.lowercase:
            text = text.lower()
        if self.strip_punctuation:
            text = _PUNCT.sub("", text)
        return text

    def to_dict(self) -> dict[str, bool]:
        return {"lowercase": self.lowercase, "nfkc": self.nfkc,
                "strip_punctuation": self.strip_punctuation}


class WhitespaceTokenizer:
    """Whitespace words (``str.split``), as the lesson's ``check_contamination`` uses."""

    name = "whitespace"

    def __init__(self, normalizer: Normalizer) -> None:
        self.normalizer = normalizer

    def _simple(self) -> bool:
        # Lower-casing maps no character to whitespace or to nothing, and its only
        # context rule (final sigma) stops at whitespace, so lower-casing a whole text
        # gives each raw token's lower case, in order, in one pass in C.
        return not (self.normalizer.nfkc or self.normalizer.strip_punctuation)

    def tokens(self, text: str) -> list[str]:
        """The tokens ``spans`` gives, without their places (what the eval index needs)."""
        if self._simple():
            clean = text.replace("\x00", " ")
            return clean.lower().split() if self.normalizer.lowercase else clean.split()
        return [t for t, _, _ in self.spans(text)]

    def spans(self, text: str) -> list[Span]:
        """Normalised tokens of ``text`` with their ``[start, end)`` in the original text."""
        norm = self.normalizer
        clean = text.replace("\x00", " ")
        if self._simple():
            toks = clean.lower().split() if norm.lowercase else clean.split()
            bounds = [m.span() for m in _RAW_TOKEN.finditer(clean)]
            if len(bounds) == len(toks):
                return [(tok, a, b) for tok, (a, b) in zip(toks, bounds, strict=True)]
        out: list[Span] = []
        pos = 0
        for raw in clean.split():
            start = clean.find(raw, pos)
            pos = start + len(raw)
            out.extend((tok, start, pos) for tok in norm(raw).split())
        return out

    def tokens_chunk(self, texts: list[str]) -> list[str]:
        """Tokens of many records in one list, records separated by a ``"\\x00"`` token."""
        joined = " \x00 ".join(texts)
        if joined.count("\x00") != len(texts) - 1:
            joined = " \x00 ".join(t.replace("\x00", " ") for t in texts)
        return self.normalizer(joined).split()


class HFTokenizer:
    """A model tokenizer (a local ``tokenizer.json``) applied after normalisation."""

    def __init__(self, path: str, normalizer: Normalizer) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:  # pragma: no cover - tokenizers ships with the hf extra
            raise MissingDependency("tokenizers", "hf", "A model tokenizer for contamination") \
                from exc
        p = Path(path)
        if p.is_dir():
            p = p / "tokenizer.json"
        if not p.is_file():
            raise ConfigError(
                f"tokenizer {path!r}: no tokenizer.json there; pass a local tokenizer.json file "
                "or the directory that holds it (or use tokenizer: whitespace)"
            )
        self.name = f"hf:{path}"
        self.normalizer = normalizer
        self._tok = Tokenizer.from_file(str(p))

    def tokens(self, text: str) -> list[str]:
        """The token strings of ``spans``."""
        return [t for t, _, _ in self.spans(text)]

    def spans(self, text: str) -> list[Span]:
        """Token strings with spans; spans are exact when normalisation keeps the length."""
        norm = self.normalizer(text.replace("\x00", " "))
        enc = self._tok.encode(norm, add_special_tokens=False)
        same = len(norm) == len(text)
        return [(tok, s if same else 0, e if same else len(text))
                for tok, (s, e) in zip(enc.tokens, enc.offsets, strict=True)]

    def tokens_chunk(self, texts: list[str]) -> list[str]:
        encs = self._tok.encode_batch(
            [self.normalizer(t.replace("\x00", " ")) for t in texts], add_special_tokens=False)
        out: list[str] = []
        for i, enc in enumerate(encs):
            if i:
                out.append("\x00")
            out.extend(enc.tokens)
        return out


Tokenizer = WhitespaceTokenizer | HFTokenizer


def make_tokenizer(spec: str | None, normalizer: Normalizer) -> Tokenizer:
    """Build the tokenizer named by ``spec``: ``whitespace`` (default) or a tokenizer.json path."""
    if spec in (None, "", "whitespace"):
        return WhitespaceTokenizer(normalizer)
    assert spec is not None
    return HFTokenizer(spec.removeprefix("hf:"), normalizer)


def normalizer_from(options: Any, where: str) -> Normalizer:
    """Build a Normalizer from a mapping, naming ``where`` (the option) in errors."""
    if options is None:
        return Normalizer()
    if not isinstance(options, dict):
        raise ConfigError(f"{where}: expected a mapping such as {{lowercase: true, nfkc: false, "
                          f"strip_punctuation: false}}, got {options!r}")
    allowed = set(Normalizer().to_dict())
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown}; allowed: {sorted(allowed)}")
    return Normalizer(**{k: bool(v) for k, v in options.items()})
