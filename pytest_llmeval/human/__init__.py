"""Blind human A/B evaluation: blind sets, the rating app, ratings, agreement and the unblinded report.

The workflow (see the README): ``llmeval blind create`` samples a run's cases and hides
which output is the model's; ``llmeval annotate serve`` lets each rater rate their own
queue in a browser; ``llmeval annotate report`` measures rater agreement and unblinds the
verdict; a suite's ``human:`` section gates on it. The web app needs the ``human`` extra.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Loaded on first use (PEP 562): every `llmeval` command builds its parser from the
# subcommands' modules, and importing these four took 46 ms of, for one, a contamination
# check's fixed cost.
_WHERE = {
    "agreement": ("AgreementResult", "agreement", "cohen_kappa", "fleiss_kappa",
                  "krippendorff_alpha"),
    "analysis": ("HumanResults", "analyse"),
    "blindset": ("DEFAULT_RUBRIC", "ABMapping", "BlindItem", "BlindSet", "Criterion", "Rubric",
                 "SourceCase", "cases_from_results", "create_blind_set", "load_blind_set",
                 "load_mapping", "text_hash", "write_blind_set"),
    "storage": ("Rating", "RatingStore", "export_ratings", "load_ratings"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])


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
