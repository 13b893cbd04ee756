"""``python:module:function`` references -> the function, for models, metrics, checks and judges.

Every place a suite names user code goes through :func:`import_target`, so the
rules and the errors are the same everywhere:

- the module is looked for first in ``base_dirs`` (the suite file's directory,
  then the rootdir), then on ``sys.path`` (installed packages, ``pythonpath``);
- a module found in a base directory is imported under its own name, so a
  second reference to it reuses the same module object;
- two suites in different directories may each have their own ``helpers.py``:
  when a module of that name is already imported from another file, a plain
  module is loaded again under a private name instead of silently reusing the
  other one (a package with the same clash is an error naming both places);
- a missing module names every directory searched; a missing attribute
  suggests the closest name; a non-callable says what it is instead.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from pytest_llmeval.errors import ConfigError

__all__ = ["import_target", "split_target"]

_path_lock = threading.RLock()  # sys.path is process-wide: one temporary insertion at a time


def split_target(target: str, what: str) -> tuple[str, str]:
    """``"[python:]pkg.mod:func.attr"`` -> ``("pkg.mod", "func.attr")``, or a ConfigError.

    Args:
        target: the reference, with or without the ``python:`` prefix.
        what: how the error names the reference (``"metric 'python:m:f'"``).
    """
    body = target[len("python:"):] if target.startswith("python:") else target
    module_name, sep, attr = body.partition(":")
    if (not sep or not module_name or not attr or ":" in attr
            or not all(p.isidentifier() for p in module_name.split("."))
            or not all(p.isidentifier() for p in attr.split("."))):
        raise ConfigError(
            f"{what}: expected 'python:module:function' (a dotted module, a colon, then a "
            f"function name, e.g. 'python:my_metrics:keyword_hit'), got 'python:{body}'"
        )
    return module_name, attr


def import_target(target: str, *, base_dirs: Sequence[Path | str] = (), what: str) -> Callable[..., Any]:
    """Import ``module:function`` and return the callable.

    Args:
        target: ``module:function`` or ``python:module:function``; the function part
            may be dotted (``MyClass.method``).
        base_dirs: directories searched before ``sys.path``, in order (the suite
            file's directory, then the rootdir). Missing directories are skipped.
        what: how errors name the reference, e.g. ``"model 'python:m:f'"``.

    Raises:
        ConfigError: malformed reference, module not found (naming the directories
            searched), the module raised while importing, attribute missing (with a
            "did you mean"), or the attribute is not callable.
    """
    module_name, attr = split_target(target, what)
    dirs = _existing_dirs(base_dirs)
    module = _import_module(module_name, dirs, what)
    obj: Any = module
    for i, part in enumerate(attr.split(".")):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            file = getattr(module, "__file__", None)
            owner = (f"module '{module_name}'{f' ({file})' if file else ''}" if i == 0
                     else f"'{module_name}:{'.'.join(attr.split('.')[:i])}'")
            raise ConfigError(f"{what}: {owner} has no attribute '{part}'.{hint}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(
            f"{what}: '{attr}' in module '{module_name}' is not callable (its type is "
            f"{type(obj).__name__}); name a function, or a class or object with __call__."
        )
    return obj  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- modules


def _existing_dirs(base_dirs: Sequence[Path | str]) -> list[Path]:
    out: list[Path] = []
    for d in base_dirs:
        p = Path(d).resolve()
        if p.is_dir() and p not in out:
            out.append(p)
    return out


def _import_module(module_name: str, dirs: list[Path], what: str) -> ModuleType:
    top = module_name.partition(".")[0]
    spec = _find_top(top, dirs)
    if spec is None:
        return _run_import(module_name, dirs, what)
    found = _spec_location(spec)
    is_package = spec.submodule_search_locations is not None
    loaded = sys.modules.get(top)
    here = _module_location(loaded) if loaded is not None else None
    if found is not None and here is not None and found != here:
        if not is_package and module_name == top:
            return _load_private(top, found, what)
        raise ConfigError(
            f"{what}: package '{top}' at {found} has the same name as the module already "
            f"imported from {here}; rename one of them so that each suite gets its own."
        )
    if found is not None:
        home = found.parent.parent if is_package else found.parent
    else:  # a namespace package: no __init__.py, only directories
        home = Path(next(iter(spec.submodule_search_locations or [str(dirs[0] / top)]))).parent
    with _on_sys_path(home):
        return _run_import(module_name, dirs, what)


def _find_top(top: str, dirs: list[Path]) -> importlib.machinery.ModuleSpec | None:
    """Where ``top`` would be imported from within ``dirs`` (None when it is in none of them)."""
    if not dirs:
        return None
    paths = [str(d) for d in dirs]
    spec = importlib.machinery.PathFinder.find_spec(top, paths)
    if spec is None:
        # directory listings are cached by mtime; a file written a moment ago may be missing
        importlib.invalidate_caches()
        spec = importlib.machinery.PathFinder.find_spec(top, paths)
    return spec


def _run_import(module_name: str, dirs: list[Path], what: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            searched = "".join(f"{d}, " for d in dirs)
            top = module_name.partition(".")[0]
            raise ConfigError(
                f"{what}: cannot import module '{module_name}' ({exc}); searched {searched}"
                f"then sys.path. Put {top}.py beside the suite file, a conftest.py or in the "
                f"rootdir, add its folder to 'pythonpath' in the pytest ini, or install it."
            ) from None
        raise _import_failed(module_name, exc, what) from exc
    except Exception as exc:  # noqa: BLE001 - user code may raise anything while importing
        raise _import_failed(module_name, exc, what) from exc


def _import_failed(module_name: str, exc: BaseException, what: str) -> ConfigError:
    return ConfigError(
        f"{what}: importing module '{module_name}' raised {type(exc).__name__}: {exc}{_where(exc)}"
    )


def _where(exc: BaseException) -> str:
    """`` (at file:line)`` of the innermost frame outside importlib, when there is one."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return ""  # SyntaxError's message already names the file and line
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "importlib" not in f.filename and f.filename != __file__]
    if not frames:
        return ""
    last = frames[-1]
    return f" (at {last.filename}:{last.lineno})"


def _load_private(top: str, found: Path, what: str) -> ModuleType:
    """Load a module file under a name of its own (another module of this name is imported)."""
    digest = hashlib.sha256(str(found).encode()).hexdigest()[:10]
    alias = f"{top}__llmeval_{digest}"
    if alias in sys.modules:
        return sys.modules[alias]
    private = importlib.util.spec_from_file_location(alias, found)
    if private is None or private.loader is None:  # pragma: no cover - spec came from PathFinder
        raise ConfigError(f"{what}: cannot load module '{top}' from {found}")
    module = importlib.util.module_from_spec(private)
    sys.modules[alias] = module
    try:
        with _on_sys_path(found.parent):
            private.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - user code may raise anything while importing
        del sys.modules[alias]
        raise _import_failed(top, exc, what) from exc
    return module


@contextmanager
def _on_sys_path(directory: Path) -> Iterator[None]:
    """``directory`` first on ``sys.path`` for the duration of an import (then removed again)."""
    entry = str(directory)
    with _path_lock:
        added = entry not in sys.path
        if added:
            sys.path.insert(0, entry)
        try:
            yield
        finally:
            if added and entry in sys.path:
                sys.path.remove(entry)


def _spec_location(spec: importlib.machinery.ModuleSpec) -> Path | None:
    if spec.origin and spec.origin not in ("built-in", "frozen", "namespace"):
        return Path(os.path.realpath(spec.origin))
    return None


def _module_location(module: ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    return Path(os.path.realpath(file)) if file else None

