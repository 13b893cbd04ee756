"""The registry of gate kinds: built-ins, ``pytest_llmeval.gates`` entry points, and user registrations.

A user adds a kind by decorating a :class:`~pytest_llmeval.gates.base.Gate` subclass with
:func:`register_gate` in a ``conftest.py`` (loaded by every xdist worker too) or in a
module named by an entry point of the group ``pytest_llmeval.gates``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, TypeVar

from pytest_llmeval.errors import ConfigError

if TYPE_CHECKING:
    from pytest_llmeval.gates.base import Gate

ENTRY_POINT_GROUP = "pytest_llmeval.gates"
BUILTIN_MODULES = (
    "pytest_llmeval.gates.metric",
    "pytest_llmeval.gates.judge_score",
    "pytest_llmeval.gates.win_rate",
    "pytest_llmeval.gates.contamination",
    "pytest_llmeval.gates.latency",
    "pytest_llmeval.gates.cost",
    "pytest_llmeval.gates.pass_at_k",
    "pytest_llmeval.gates.human",
    "pytest_llmeval.gates.judge_calibration",
    "pytest_llmeval.gates.multiple_choice",
)

_KINDS: dict[str, type[Gate]] = {}
_loaded = False
G = TypeVar("G", bound="type[Gate]")


def register_gate(cls: G) -> G:
    """Class decorator: make a gate kind available to every suite (by ``cls.section``).

    Raises:
        ConfigError: the class has no ``kind``, or its section is taken by another kind.
    """
    kind = getattr(cls, "kind", "")
    if not kind:
        raise ConfigError(f"{cls.__name__}: a gate kind needs a non-empty 'kind'")
    key = cls.section or f"<{kind}>"
    other = _KINDS.get(key)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise ConfigError(f"gate section '{key}' is registered twice ({other.__qualname__} and "
                          f"{cls.__qualname__}); choose another 'section'")
    _KINDS[key] = cls
    return cls


def _ensure_loaded() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in BUILTIN_MODULES:
        importlib.import_module(mod)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin names itself, the run goes on
            raise ConfigError(f"gate entry point '{ep.name}' ({ep.value}) could not be loaded: "
                              f"{type(exc).__name__}: {exc}") from None
        if isinstance(obj, type):
            register_gate(obj)


def gate_kinds() -> dict[str, type[Gate]]:
    """Registered kinds by section (kinds without a section under ``<kind>``)."""
    _ensure_loaded()
    return dict(_KINDS)


def sections() -> dict[str, type[Gate]]:
    """Kinds that own a top-level key of the suite file."""
    return {k: v for k, v in gate_kinds().items() if not k.startswith("<")}


def gate_kind(kind: str) -> type[Gate]:
    for cls in gate_kinds().values():
        if cls.kind == kind:
            return cls
    raise ConfigError(f"unknown gate kind '{kind}'")
