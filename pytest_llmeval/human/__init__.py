"""Blind human A/B evaluation: blind sets, the rating app, ratings, agreement and the unblinded report.

The workflow (see the README): ``llmeval blind create`` samples a run's cases and hides
which output is the model's; ``llmeval annotate serve`` lets each rater rate their own
queue in a browser; ``llmeval annotate report`` measures rater agreement and unblinds the
verdict; a suite's ``human:`` section gates on it. The web app needs the ``human`` extra.
"""

from __future__ import annotations

from pytest_llmeval.human.agreement import (
    AgreementResult,
    agreement,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
)
from pytest_llmeval.human.analysis import HumanResults, analyse
from pytest_llmeval.human.blindset import (
    DEFAULT_RUBRIC,
    ABMapping,
    BlindItem,
    BlindSet,
    Criterion,
    Rubric,
    SourceCase,
    cases_from_results,
    create_blind_set,
    load_blind_set,
    load_mapping,
    text_hash,
    write_blind_set,
)
from pytest_llmeval.human.storage import Rating, RatingStore, export_ratings, load_ratings

__all__ = [
    "ABMapping",
    "AgreementResult",
    "BlindItem",
    "BlindSet",
    "Criterion",
    "DEFAULT_RUBRIC",
    "HumanResults",
    "Rating",
    "RatingStore",
    "Rubric",
    "SourceCase",
    "agreement",
    "analyse",
    "cases_from_results",
    "cohen_kappa",
    "create_blind_set",
    "export_ratings",
    "fleiss_kappa",
    "krippendorff_alpha",
    "load_blind_set",
    "load_mapping",
    "load_ratings",
    "text_hash",
    "write_blind_set",
]
