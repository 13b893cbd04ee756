"""The one session object of a run: model registry, cache, result collection and reporting.

Registered as a plugin in ``pytest_configure`` (like xdist's ``DSession``), it
receives the reports of every eval item. Under xdist, the workers evaluate
suites and attach plain-dict payloads to their reports; only the controller
(no ``workerinput``) collects them, prints the summary and writes the files.
Heavy modules are imported inside methods, so a run without eval files pays
nothing for it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

SESSION_KEY: pytest.StashKey[LLMEvalSession] = pytest.StashKey()
class LLMEvalSession:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.is_worker = hasattr(config, "workerinput")
        self.rootdir = Path(str(config.rootpath))
        from pytest_llmeval.collector import RunCollector

        self.collector = RunCollector()
        self._registry: Any = None
        self._cache: Any = None
        self._cache_opened = False
        self._run: Any = None
        self._comparison: Any = None
        self._old: Any = None
        self._suite_comparisons: dict[str, Any] = {}
        self.bad_suites = 0
        self.alpha = 0.05
        self.max_regression: float | None = None
        self.output_cap: int | None = None
        self._written: list[str] = []
        self._write_errors: list[str] = []
        self.shard: Any = None
        self.durations: dict[str, float] | None = None
        self._shard_plan: Any = None
        self._shard_collected = 0
        self._file_seconds: dict[str, float] = {}
        self.cache_max_bytes: int | None = None
        self._progress_events: list[dict[str, Any]] = []
        self._current_file = ""

    def validate_options(self) -> None:
        """Bad ``--llmeval-*`` values are usage errors (exit 4) before anything runs."""
        from pytest_llmeval.compare import validate_compare_options
        from pytest_llmeval.errors import ConfigError
        from pytest_llmeval.sanitize import validate_output_cap

        try:
            self.alpha, self.max_regression = validate_compare_options(
                self.option("llmeval_alpha"), self.option("llmeval_max_regression"))
            self.output_cap = validate_output_cap(self.option("llmeval_max_output_chars"))
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        max_cases = self.option("llmeval_max_cases")
        if max_cases is not None and max_cases < 1:
            raise pytest.UsageError(f"--llmeval-max-cases: expected a positive integer, got {max_cases!r}")
        self._validate_shard_options()
        if self.compare_enabled():
            self.old_run()
        self.cache_max_bytes = self._cache_max_size()

    def _validate_shard_options(self) -> None:
        value = self.option("llmeval_shard")
        cases = bool(self.option("llmeval_shard_cases"))
        if value is None:
            if cases or self.option("llmeval_durations"):
                which = "--llmeval-shard-cases" if cases else "--llmeval-durations"
                raise pytest.UsageError(f"{which} needs --llmeval-shard K/N (this job's shard K of N)")
            return
        from pytest_llmeval.errors import ConfigError
        from pytest_llmeval.sharding import load_durations, parse_shard

        try:
            self.shard = parse_shard(value, cases=cases)
            if self.option("llmeval_durations"):
                self.durations = load_durations(str(self.option("llmeval_durations")))
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None
        if cases and self.compare_enabled():
            raise pytest.UsageError(
                "--llmeval-compare with --llmeval-shard-cases: a shard holds part of each suite's cases, "
                "so compare the merged run instead: llmeval merge SHARD1.json ... -o run.json, then "
                "llmeval compare OLD.json run.json")

    def _cache_max_size(self) -> int | None:
        """``[tool.llmeval] cache_max_size`` (or ini ``llmeval_cache_max_size``) in bytes, or None."""
        value: Any = self.config.getini("llmeval_cache_max_size") or None
        where = "ini llmeval_cache_max_size"
        pyproject = self.rootdir / "pyproject.toml"
        if value is None and pyproject.is_file():
            from pytest_llmeval.registry import load_toml

            try:
                value = load_toml(pyproject).get("tool", {}).get("llmeval", {}).get("cache_max_size")
            except Exception:  # noqa: BLE001 - a broken pyproject is reported where models are read
                return None
            where = f"{pyproject} [tool.llmeval] cache_max_size"
        if value is None:
            return None
        from pytest_llmeval.cache import parse_size
        from pytest_llmeval.errors import ConfigError

        try:
            return parse_size(value, where)
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        """``--llmeval-shard K/N``: keep this shard's files (or cases), deselect the rest."""
        if self.shard is None:
            return
        from pytest_llmeval.items import shard_items

        self._shard_collected = len(items)
        kept, dropped, self._shard_plan = shard_items(items, self.shard, self.durations)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept

    @property
    def strict(self) -> bool:
        """Strict mode: a gate that cannot run is an ERROR (default when ``CI`` is set)."""
        value = self.config.getoption("llmeval_strict", None)
        if value is None:
            return bool(os.environ.get("CI"))
        return bool(value)

    # ------------------------------------------------------------------ regressions

    def compare_enabled(self) -> bool:
        return bool(self.option("llmeval_compare"))

    def old_run(self) -> Any:
        """The previous run of ``--llmeval-compare``; an unreadable file is a usage error."""
        if self._old is None:
            from pytest_llmeval.fileio import read_results

            path = Path(str(self.option("llmeval_compare")))
            try:
                self._old = read_results(path)
            except (OSError, ValueError) as exc:
                raise pytest.UsageError(f"--llmeval-compare: {exc}") from None
        return self._old

    def regression(self, node: Any, gate: str) -> Any:
        """``regression[gate]`` of a suite node (its comparison computed once per suite)."""
        from pytest_llmeval.gates.regression import DEFAULT_MAX_CASES, compare_suite, regression_outcome

        new = node.suite_result()
        key = new.file
        if key not in self._suite_comparisons:
            self._suite_comparisons[key] = compare_suite(
                self.old_run(), new, alpha=self.alpha, max_regression=self.max_regression, seed=self.seed,
                settings=self.settings(), models=node.meta().get("models"))
        return regression_outcome(self._suite_comparisons[key], new, gate,
                                  allow_unpaired=bool(self.option("llmeval_compare_allow_unpaired")),
                                  max_cases=self.option("llmeval_max_cases") or DEFAULT_MAX_CASES)

    # ------------------------------------------------------------------ settings

    def option(self, name: str, ini: str | None = None) -> Any:
        value = self.config.getoption(name, None)
        if value is None and ini is not None:
            value = self.config.getini(ini) or None
        return value

    @property
    def seed(self) -> int:
        return int(self.option("llmeval_seed") or 0)

    @property
    def concurrency(self) -> int | None:
        value = self.option("llmeval_concurrency", "llmeval_concurrency")
        if value is None:
            return None
        try:
            n = int(value)
            if n < 1:
                raise ValueError
        except ValueError:
            raise pytest.UsageError(f"--llmeval-concurrency / llmeval_concurrency: expected a positive "
                                    f"integer, got {value!r}") from None
        return n

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "model": self.option("llmeval_model", "llmeval_model"),
            "baseline": self.option("llmeval_baseline", "llmeval_baseline"),
            "judge": self.option("llmeval_judge", "llmeval_judge"),
            "seed": self.seed,
            "concurrency": self.concurrency,
            "cache": str(self.cache_dir()) if self.cache_dir() else "off",
            "cache_readonly": bool(self.option("llmeval_cache_readonly")),
            "python": sys.version.split()[0],
            "pytest": pytest.__version__,
        }
        if self.shard is not None:
            shard = self.shard.to_dict()
            shard["durations"] = self.option("llmeval_durations")
            shard["metrics"] = list(self.config.getini("llmeval_metrics") or [])
            settings["shard"] = shard
        return settings

    def progress(self) -> Any:
        """Progress of loading, generation and judging: on pytest's line, recorded on xdist workers.

        Silent with ``-q``. A worker records each finished phase; the events ride on the
        next report it sends (``report.llmeval_progress``) and the controller shows them.
        """
        from pytest_llmeval.report.progress import NoProgress, Progress, RecordingProgress

        verbose = int(self.config.getoption("verbose", 0) or 0)
        if self.is_worker:
            return RecordingProgress(self._progress_events, lambda: self._current_file)
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None or verbose < 0:
            return NoProgress()
        return Progress(tr, self.config.pluginmanager.get_plugin("capturemanager"), verbose=verbose)

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self._current_file = nodeid.split("::", 1)[0]

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: Any) -> Any:
        """On a worker, the progress events recorded so far ride on this report to the controller."""
        outcome = yield
        if self.is_worker and self._progress_events:
            report = outcome.get_result()
            report.llmeval_progress = list(self._progress_events)
            self._progress_events.clear()

    def _show_remote_progress(self, report: pytest.TestReport) -> None:
        events = getattr(report, "llmeval_progress", None)
        if not events or not isinstance(events, list):
            return
        verbose = int(self.config.getoption("verbose", 0) or 0)
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None or verbose < 0:
            return
        from pytest_llmeval.report.progress import RemoteProgress

        node = getattr(report, "node", None)
        worker = str(getattr(getattr(node, "gateway", None), "id", "") or "")
        RemoteProgress(tr, verbose).show(events, worker)

    # ------------------------------------------------------------------ models (delegated)

    @property
    def models(self) -> Any:
        """The pytest-free model registry (named models, loading, the cache in front)."""
        if self._registry is None:
            from pytest_llmeval.registry import ModelRegistry

            candidates = [Path(c) for c in (self.config.inipath, self.rootdir / "pyproject.toml")
                          if c is not None]
            self._registry = ModelRegistry(self.rootdir, pyproject=next(
                (c for c in candidates if c.name == "pyproject.toml" and c.is_file()), None),
                concurrency=self.concurrency, cache=lambda: self.cache)
        return self._registry

    def named_models(self) -> dict[str, Any]:
        """``[tool.llmeval.models]`` of the rootdir's pyproject.toml."""
        from pytest_llmeval.errors import ConfigError

        try:
            return self.models.named_models()  # type: ignore[no-any-return]
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None

    def resolve(self, value: str, *, options: dict[str, Any] | None = None,
                base_dir: Path | None = None) -> Any:
        """A model from a name in ``[tool.llmeval.models]`` or a ``scheme:target`` reference."""
        return self.models.resolve(value, options=options, base_dir=base_dir)

    def default_model(self, kind: str) -> Any:
        from pytest_llmeval.errors import ConfigError

        value = self.option(f"llmeval_{kind}", f"llmeval_{kind}")
        if not value:
            raise ConfigError(
                f"no {kind} configured: set '{kind}:' in the suite, pass --llmeval-{kind} REF (or ini "
                f"llmeval_{kind}), or override the llm_{kind} fixture in a conftest.py")
        return self.resolve(str(value))

    def default_judge(self) -> Any:
        from pytest_llmeval.errors import NoJudgeConfigured

        value = self.option("llmeval_judge", "llmeval_judge")
        if not value:
            raise NoJudgeConfigured(
                "no judge configured: pass --llmeval-judge REF (e.g. openai:gpt-4o, anthropic:MODEL, "
                "similarity:), set ini llmeval_judge, set judge.model in the suite, or override the "
                "llm_judge fixture")
        return self.load_judge(str(value), {}, self.rootdir)

    def load_judge(self, ref: str, options: dict[str, Any], base_dir: Path) -> Any:
        return self.models.load_judge(ref, options, base_dir)

    def wrap(self, model: Any) -> Any:
        """Accept a plain callable as a model, and put the cache in front of it when enabled."""
        return self.models.wrap(model)

    # ------------------------------------------------------------------ cache

    def cache_dir(self) -> Path | None:
        value = self.option("llmeval_cache", "llmeval_cache")
        if value is None:
            return self.rootdir / ".llmeval_cache"
        if str(value).lower() == "off":
            return None
        path = Path(str(value))
        return path if path.is_absolute() else self.rootdir / path

    @property
    def cache(self) -> Any:
        if not self._cache_opened:
            self._cache_opened = True
            directory = self.cache_dir()
            if directory is not None:
                from pytest_llmeval.cache import Cache

                readonly = bool(self.option("llmeval_cache_readonly"))
                strict = bool(self.option("llmeval_cache_strict"))
                if strict and not readonly:
                    raise pytest.UsageError("--llmeval-cache-strict needs --llmeval-cache-readonly")
                self._cache = Cache(directory / "cache.sqlite3", mode="ro" if readonly else "rw",
                                    strict=strict)
        return self._cache

    # ------------------------------------------------------------------ results (controller)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """A broken eval file is a collection error for that file alone: the other suites still run.

        pytest stops a session on any collection error; when every collection error
        is an invalid eval file, the run goes on (the errors still fail the run).
        """
        if self.bad_suites and session.testsfailed == self.bad_suites:
            session.config.option.continue_on_collection_errors = True

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        self._show_remote_progress(report)
        payload = getattr(report, "llmeval", None)
        if payload is not None:
            self.collector.add(report.nodeid, payload)
        if self.option("llmeval_store_durations"):
            key = report.nodeid.split("::", 1)[0]
            self._file_seconds[key] = self._file_seconds.get(key, 0.0) + float(report.duration or 0.0)

    def build_run(self) -> Any:
        return self.collector.build(self.settings())

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            return
        if self.shard is not None and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED \
                and self._shard_collected:
            session.exitstatus = pytest.ExitCode.OK  # there were tests: the other shards run them
        self._store_durations()
        self._prune_cache()
        # A shard writes its results file even with nothing to do, so that the merge sees every shard.
        if not self.collector and not (self.shard is not None and self.option("llmeval_json")):
            return
        self._run = run = self.build_run()
        from pytest_llmeval.errors import WriteError

        json_path = self.option("llmeval_json")
        if json_path:
            self._write_results(run, json_path)
        if self.compare_enabled():
            self._comparison = self._display_comparison(run)
        html_path = self.option("llmeval_html")
        try:
            if html_path:
                from pytest_llmeval.report.html import write_html

                write_html(run, html_path, comparison=self._comparison, baseline=self._old)
            if os.environ.get("GITHUB_STEP_SUMMARY"):
                from pytest_llmeval.report.markdown import append_github_summary

                append_github_summary(run, self._comparison)
        except (WriteError, OSError) as exc:
            self._write_errors.append(f"llmeval: a report could not be written: {exc}")

    def _store_durations(self) -> None:
        """``--llmeval-store-durations``: this run's seconds per test file, merged into the file."""
        path = self.option("llmeval_store_durations")
        if not path or not self._file_seconds:
            return
        import json

        from pytest_llmeval.errors import ConfigError, WriteError
        from pytest_llmeval.fileio import write_atomic
        from pytest_llmeval.sharding import load_durations, updated_durations

        try:
            existing = load_durations(path, "--llmeval-store-durations") if Path(path).exists() else {}
        except ConfigError:
            existing = {}  # an unreadable file is replaced by this run's figures
        try:
            write_atomic(path, json.dumps(updated_durations(existing, self._file_seconds), indent=1) + "\n",
                         what="durations file")
            self._written.append(f"llmeval: durations written to {path}")
        except (WriteError, OSError) as exc:
            self._write_errors.append(f"llmeval: the durations file was not written: {exc}")

    def _prune_cache(self) -> None:
        """``cache_max_size``: the least recently used entries go at the end of the run."""
        if self.cache_max_bytes is None or self.cache_dir() is None or self.option("llmeval_cache_readonly"):
            return
        from pytest_llmeval.cache import Cache, format_size
        from pytest_llmeval.errors import CacheError

        path = self.cache_dir() / "cache.sqlite3"  # type: ignore[operator]
        if not path.exists():
            return
        try:
            with Cache(path) as cache:
                pruned = cache.prune(max_bytes=self.cache_max_bytes, vacuum=False)
        except CacheError as exc:
            self._write_errors.append(f"llmeval: the cache was not pruned: {exc}")
            return
        if pruned.removed:
            self._written.append(f"llmeval: cache over {format_size(self.cache_max_bytes)}: removed "
                                 f"{pruned.removed} least recently used entries "
                                 f"({format_size(pruned.removed_bytes)})")

    def _write_results(self, run: Any, path: str) -> None:
        """The results file, written atomically (or not at all, with a message: never half a file)."""
        import json

        from pytest_llmeval.errors import WriteError
        from pytest_llmeval.fileio import write_atomic
        from pytest_llmeval.sanitize import cap_outputs

        data = run.to_dict()
        if self.output_cap is not None:
            data = cap_outputs(data, self.output_cap)
        try:
            write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False, default=str),
                         what="results file")
            self._written.append(f"llmeval: results written to {path}")
        except (WriteError, OSError) as exc:
            self._write_errors.append(f"llmeval: the results file was not written: {exc}")

    def _display_comparison(self, run: Any) -> Any:
        """The comparison shown in the summary and reports: the suites' own, merged (same verdicts)."""
        from pytest_llmeval.compare import Comparison
        from pytest_llmeval.gates.regression import compare_suite

        old = self.old_run()
        merged = Comparison(alpha=self.alpha, old_created=old.created,
                            new_created=run.created)
        for suite in run.suites:
            comparison = self._suite_comparisons.get(suite.file)
            if comparison is None:
                comparison = compare_suite(old, suite, alpha=merged.alpha, settings=run.settings,
                                           models=run.models, max_regression=self.max_regression,
                                           seed=self.seed)
            if comparison is None:
                merged.new_suites.append(suite.file)
                continue
            merged.suites.extend(comparison.suites)
            merged.warnings.extend(w for w in comparison.warnings if w not in merged.warnings)
            merged.notes.extend(n for n in comparison.notes if n not in merged.notes)
        files = {s.file for s in run.suites}
        merged.missing_suites = [s.file or s.name for s in old.suites if s.file not in files]
        return merged

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or self._run is None:
            return
        from pytest_llmeval.numbers import PREVIOUS_RUN
        from pytest_llmeval.report.terminal import fit_block, terminal_width, write_fitted, write_summary

        tr = terminalreporter
        width = terminal_width(tr)
        write_summary(tr, self._run, verbosity=int(self.config.getoption("verbose", 0) or 0), width=width)
        self._write_not_evaluated(tr, width)
        if self._comparison is not None:
            tr.section(f"llmeval: comparison with the {PREVIOUS_RUN}", sep="-")
            for line in fit_block(self._comparison.format_text(width=width), width):
                tr.write_line(line)
        for line in self._written:
            write_fitted(tr, line, width)
        for line in self._write_errors:
            write_fitted(tr, line, width, red=True, bold=True)
        html_path = self.option("llmeval_html")
        if html_path and not self._write_errors:
            write_fitted(tr, f"llmeval: HTML report written to {html_path}", width)

    def _write_not_evaluated(self, terminalreporter: Any, width: int) -> None:
        """Gates that did not run are counted on the summary's last line, strict mode or not."""
        from pytest_llmeval.report.terminal import write_fitted

        skipped = [(s.file, a) for s in self._run.suites for a in s.aggregates if a.verdict == "skip"]
        errored = [(s.file, a) for s in self._run.suites for a in s.aggregates if a.verdict == "error"]
        partial = [a for s in self._run.suites for a in s.aggregates if a.verdict == "partial"]
        total = sum(len(s.aggregates) for s in self._run.suites)
        if partial:
            write_fitted(
                terminalreporter,
                f"llmeval: shard {self.shard.label if self.shard else '?'}: {len(partial)} gates of suites "
                f"split over the shards are partial here; 'llmeval merge' of every shard's results file "
                f"decides them", width)
            total -= len(partial)
            if not total:
                return
        if not skipped and not errored:
            write_fitted(terminalreporter, f"llmeval: {total} gates evaluated, 0 not evaluated", width)
            return
        parts = []
        if errored:
            parts.append(f"{len(errored)} ERROR")
        if skipped:
            parts.append(f"{len(skipped)} skipped ({', '.join(f'{f}::{a.name}' for f, a in skipped[:5])}"
                         f"{' ...' if len(skipped) > 5 else ''})")
        mode = "strict" if self.strict else "not strict: skipped gates do not fail the run"
        write_fitted(terminalreporter, f"llmeval: {total - len(skipped) - len(errored)} of {total} gates "
                                       f"evaluated; not evaluated: {', '.join(parts)} [{mode}]", width,
                     yellow=True, bold=True)

    def usage(self) -> dict[str, Any]:
        """Per model: API usage (tokens, retries, cost) and cache hits, judges' models included."""
        return self.models.usage() if self._registry is not None else {}

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
        if self._cache is not None:
            self._cache.close()
