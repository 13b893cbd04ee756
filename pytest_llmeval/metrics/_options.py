"""Option checking shared by the metric factories.

Every factory takes its YAML options as keyword arguments. These helpers turn a
wrong option into a :class:`ConfigError` that names the metric, the option, the
value given and what is allowed, so a user can fix the eval file without
reading a traceback.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from pytest_llmeval.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])


def checked_options(metric: str) -> Callable[[F], F]:
    """Decorator: reject unknown option names with a "did you mean" before the call.

    Without it Python raises a bare ``TypeError`` ("unexpected keyword argument")
    that does not suggest the option the user probably meant.
    """

    def deco(factory: F) -> F:
        params = inspect.signature(factory).parameters
        known = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]

        @functools.wraps(factory)
        def wrapper(**options: Any) -> Any:
            for name in options:
                if name not in known:
                    raise ConfigError(
                        f"metric '{metric}': unknown option '{name}'.{did_you_mean(name, known)} "
                        f"Options of '{metric}': {', '.join(sorted(known)) or 'none'}."
                    )
            return factory(**options)

        return wrapper  # type: ignore[return-value]

    return deco


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A `` Did you mean 'x'?`` suffix for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def choice(metric: str, option: str, value: Any, allowed: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``allowed``, else raise a ConfigError listing them."""
    if isinstance(value, str) and value in allowed:
        return value
    hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
    raise ConfigError(
        f"metric '{metric}': option '{option}' must be one of "
        f"{', '.join(repr(a) for a in allowed)}, got {value!r}.{hint}"
    )


def boolean(metric: str, option: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (YAML ``true``/``false``), else raise."""
    if isinstance(value, bool):
        return value
    raise ConfigError(f"metric '{metric}': option '{option}' must be true or false, got {value!r}.")


def integer(
    metric: str, option: str, value: Any, *, minimum: int, maximum: int | None = None
) -> int:
    """Return ``value`` if it is an int within bounds, else raise naming the range."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if ok:
        return int(value)
    bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
    raise ConfigError(
        f"metric '{metric}': option '{option}' must be an integer {bounds}, got {value!r}."
    )


def string_list(metric: str, option: str, value: Any) -> list[str]:
    """Accept a string or a list of strings (YAML ``x`` or ``[x, y]``)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError(
        f"metric '{metric}': option '{option}' must be a string or a list of strings, "
        f"got {value!r}."
    )
