"""The model registry: named models, references loaded once per process, the cache in front.

Pytest-free: the session connects it to pytest's options; the ``llmeval`` command
and user code can use it directly. A model is loaded once per process and shared by
every suite that names it; judges likewise.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError

API_SCHEMES = ("openai", "anthropic")
CACHED_SCHEMES = ("hf", "openai", "anthropic")


def load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib
    with path.open("rb") as fh:
        return tomllib.load(fh)


class ModelRegistry:
    """Resolves model and judge references; owns the loaded models.

    Args:
        rootdir: where named models' relative paths and user code are resolved.
        pyproject: the ``pyproject.toml`` holding ``[tool.llmeval.models]``, if any.
        concurrency: default requests in flight for API models.
        cache: returns the open cache (or None); called when a model is first wrapped.
    """

    def __init__(self, rootdir: Path, *, pyproject: Path | None = None, concurrency: int | None = None,
                 cache: Callable[[], Any] | None = None) -> None:
        self.rootdir = Path(rootdir)
        self.pyproject = pyproject
        self.concurrency = concurrency
        self._cache = cache or (lambda: None)
        self._named: dict[str, Any] | None = None
        self._models: dict[str, Any] = {}
        self._judges: dict[str, Any] = {}

    def named_models(self) -> dict[str, Any]:
        """``[tool.llmeval.models]``.

        Raises:
            ConfigError: the table is not a table of references.
        """
        if self._named is None:
            self._named = {}
            if self.pyproject is not None:
                models = load_toml(self.pyproject).get("tool", {}).get("llmeval", {}).get("models", {})
                if not isinstance(models, dict):
                    raise ConfigError(f"{self.pyproject}: [tool.llmeval.models] must be a table of "
                                      f"name = \"ref\" or name = {{ref = ..., ...}}")
                self._named = dict(models)
        return self._named

    def _named_entry(self, value: str, opts: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        entry = self.named_models()[value]
        if isinstance(entry, str):
            return entry, opts
        if isinstance(entry, dict) and isinstance(entry.get("ref"), str):
            entry = dict(entry)
            ref = entry.pop("ref")
            return ref, {**entry, **opts}
        raise ConfigError(f"[tool.llmeval.models] {value}: expected a reference string or a table "
                          f"with 'ref', got {entry!r}")

    def resolve(self, value: str, *, options: dict[str, Any] | None = None,
                base_dir: Path | None = None) -> Any:
        """A model from a name in ``[tool.llmeval.models]`` or a ``scheme:target`` reference.

        Raises:
            ConfigError: an unknown name (with a "did you mean") or a bad reference.
        """
        from pytest_llmeval.models import BACKENDS, load_model

        named = self.named_models()
        opts = dict(options or {})
        if value in named:
            ref, opts = self._named_entry(value, opts)
            name, base = value, self.rootdir
        elif value.partition(":")[0] in BACKENDS:
            ref, name, base = value, value, base_dir or self.rootdir
        else:
            known = sorted(named)
            close = difflib.get_close_matches(value, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(
                f"unknown model '{value}'.{hint} Use a name from [tool.llmeval.models] in pyproject.toml "
                f"({', '.join(known) or 'none defined'}) or a reference like hf:DIR, openai:MODEL, "
                f"anthropic:MODEL, python:module:function, outputs:FILE.jsonl")
        scheme = ref.partition(":")[0]
        if scheme in API_SCHEMES and self.concurrency is not None:
            opts.setdefault("concurrency", self.concurrency)
        cache_flag = opts.pop("cache", None)
        key = repr((ref, sorted(opts.items(), key=str), str(base), name))
        if key not in self._models:
            model = load_model(ref, name=name, options=opts, base_dir=base, search_dirs=(self.rootdir,))
            if cache_flag is not False and (scheme in CACHED_SCHEMES or cache_flag):
                model = self.wrap(model)
            self._models[key] = model
        return self._models[key]

    def check_reference(self, value: str, *, judge: bool = False) -> None:
        """Raise now (at collection) for a reference that can never load: an unknown name or scheme.

        Raises:
            ConfigError: with a "did you mean" over the named models and the schemes.
        """
        from pytest_llmeval.judge import JUDGE_SCHEMES
        from pytest_llmeval.models import BACKENDS

        named = self.named_models()
        scheme, sep, _ = value.partition(":")
        schemes = JUDGE_SCHEMES if judge else tuple(BACKENDS)
        if value in named or (sep and scheme in schemes):
            return
        choices = [*named, *(f"{s}:" for s in schemes)]
        close = difflib.get_close_matches(value if not sep else f"{scheme}:", choices, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"unknown {'judge' if judge else 'model'} '{value}'.{hint} Use a name from [tool.llmeval.models] "
            f"in pyproject.toml ({', '.join(sorted(named)) or 'none defined'}) or a reference "
            f"{', '.join(f'{s}:...' for s in schemes)}")

    def load_judge(self, ref: str, options: dict[str, Any], base_dir: Path) -> Any:
        """A judge from a reference or a named model, loaded once."""
        from pytest_llmeval.judge import load_judge

        opts = dict(options)
        if ref in self.named_models():
            ref, opts = self._named_entry(ref, opts)
            base_dir = self.rootdir
        if ref.partition(":")[0] in API_SCHEMES and self.concurrency is not None:
            opts.setdefault("concurrency", self.concurrency)
        key = repr((ref, sorted(opts.items(), key=str), str(base_dir)))
        if key not in self._judges:
            self._judges[key] = load_judge(ref, options=opts, base_dir=base_dir, cache=self._cache())
        return self._judges[key]

    def wrap(self, model: Any) -> Any:
        """Accept a plain callable as a model, and put the cache in front of it when enabled."""
        from pytest_llmeval.cache import CachedModel
        from pytest_llmeval.models.base import Model

        if not isinstance(model, Model):
            if callable(model):
                from pytest_llmeval.models.python_backend import PythonModel

                name = getattr(model, "__name__", "model")
                return PythonModel(model, name=name, target=f"<callable {name}>", options={})
            raise TypeError(f"expected a Model (with generate/fingerprint/describe) or a callable "
                            f"prompt -> str, got {type(model).__name__}")
        cache = self._cache()
        if cache is None or isinstance(model, CachedModel):
            return model
        return CachedModel(model, cache)

    def usage(self) -> dict[str, Any]:
        """Per model: API usage (tokens, retries, cost) and cache hits, judges' models included."""
        out: dict[str, Any] = {}
        judge_models = [getattr(j, "model", None) for j in self._judges.values()]
        for model in [*self._models.values(), *(m for m in judge_models if m is not None)]:
            fn = getattr(model, "usage", None)  # a CachedModel's includes its hits and misses
            if callable(fn):
                u = fn()
                if u:
                    out[model.name] = {**out.get(model.name, {}), **u}
        return out

    def close(self) -> None:
        for model in self._models.values():
            close = getattr(model, "close", None)
            if callable(close):
                close()
