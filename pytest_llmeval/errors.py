"""The package's exceptions and warning class (a leaf module: imports nothing of ours)."""

from __future__ import annotations


class LLMEvalError(Exception):
    """Base class of every error the package raises on purpose."""


class SpecError(LLMEvalError):
    """An eval file (or a cases file it names) is malformed.

    Attributes:
        path: the file at fault.
        line: 1-based line number where the problem is, when known.
        key: dotted location of the offending key (``metrics.rouge.min``), when known.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.key = key
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line else "")
        loc = f" [{self.key}]" if self.key else ""
        return f"{where}{loc}: {self.message}" if where or loc else self.message


class ConfigError(LLMEvalError):
    """A model reference, option or setting is invalid (names the option and the fix)."""


class ModelError(LLMEvalError):
    """A model backend failed to load or to generate."""


class JudgeError(LLMEvalError):
    """A judge failed: unreachable, retries exhausted, or an unparseable verdict.

    Attributes:
        raw: the judge's raw reply, when there was one, so the user can see it.
    """

    def __init__(self, message: str, raw: str | None = None) -> None:
        self.raw = raw
        super().__init__(message if raw is None else f"{message}\nraw reply: {raw!r}")


class NoJudgeConfigured(ConfigError):
    """A judge was asked for but none is configured."""


class MissingDependency(LLMEvalError):
    """An optional dependency (an extra) is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'pytest-llmevals[{extra}]'"
        )
        self.package = package
        self.extra = extra


class CacheError(LLMEvalError):
    """The on-disk cache could not be opened or is read-only and missing an entry."""


class LLMEvalWarning(UserWarning):
    """Non-fatal problems: small n, truncated prompts, incomparable runs, ..."""


class SandboxUnavailable(LLMEvalError):
    """Generated code cannot run here: a layer of the execution sandbox is missing.

    Attributes:
        layer: the missing layer (``network``, ``unprivileged_uid``, ``process``...).
    """

    def __init__(self, message: str, layer: str | None = None) -> None:
        super().__init__(message)
        self.layer = layer


class ResultsFileError(LLMEvalError, ValueError):
    """A results file cannot be used: unreadable, not JSON, the wrong shape, or capped.

    A ``ValueError`` too, so callers that caught the loader's ``ValueError`` keep working.
    """


class WriteError(LLMEvalError):
    """An output file (results, report) could not be written; nothing partial was left behind."""
