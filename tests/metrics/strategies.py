"""Hypothesis strategies for realistic and awkward model outputs."""

from __future__ import annotations

from hypothesis import strategies as st

# Inflected forms share stems, so the stemmer decides matches; short and odd tokens too.
WORDS = (
    "the a cat cats sat sitting sits on mat mats model models modelling was fine-tuned tuning "
    "tuned legal documents document contract contracts analysis analyses analyzing running runs "
    "ran happily happiness generalization generalize data 1984 GPU LoRA it's don't e.g. U.S. "
    "naïve café über"
).split()
PUNCT = [".", ",", "!", "?", ";", ":", "-", "(", ")", '"', "\n"]

word = st.sampled_from(WORDS)
token = st.one_of(word, word, word, st.sampled_from(PUNCT), st.text(min_size=1, max_size=6))


@st.composite
def sentence(draw: st.DrawFn, min_words: int = 0, max_words: int = 25) -> str:
    """A space-joined run of tokens, sometimes with newlines (rougeLsum sentences)."""
    tokens = draw(st.lists(token, min_size=min_words, max_size=max_words))
    seps = draw(
        st.lists(
            st.sampled_from([" ", " ", " ", "\n", "  "]), min_size=len(tokens), max_size=len(tokens)
        )
    )
    return "".join(t + s for t, s in zip(tokens, seps, strict=True)).strip(" ")


references = st.lists(sentence(), min_size=1, max_size=3)
