"""The pytest entry point: options, collection of eval files, fixtures, and hooks.

Kept thin and cheap to import: it loads in every pytest run of the
environment, so everything heavy (pydantic, numpy, metrics, backends) is
imported only once an eval file is collected or a fixture is used. The hooks
delegate to one :class:`~pytest_llmeval.session.LLMEvalSession` kept in
``config.stash``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.session import SESSION_KEY, LLMEvalSession

DEFAULT_PATTERNS = ["*.eval.yaml", "*.eval.yml", "*.eval.jsonl"]
BUDGET_DIR_KEY: pytest.StashKey[tuple[str | None, bool]] = pytest.StashKey()
"""The controller's run-wide budget directory, and whether this run made it (and so removes it)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("llmeval", "LLM evaluation (pytest-llmevals)")
    group.addoption("--llmeval-model", default=None, metavar="REF",
                    help="default model for suites without 'model:' (a name from [tool.llmeval.models] "
                         "or a reference like hf:DIR, openai:MODEL, python:mod:fn)")
    group.addoption("--llmeval-baseline", default=None, metavar="REF",
                    help="default baseline model for comparisons and pairwise judging")
    group.addoption("--llmeval-judge", default=None, metavar="REF",
                    help="default judge (openai:MODEL, anthropic:MODEL, hf:DIR, python:mod:fn, similarity:)")
    group.addoption("--llmeval-json", default=None, metavar="PATH", help="write the results file here")
    group.addoption("--llmeval-html", default=None, metavar="PATH",
                    help="write a self-contained HTML report here")
    group.addoption("--llmeval-compare", default=None, metavar="PATH",
                    help="compare with an earlier results file and fail on a significant regression")
    group.addoption("--llmeval-max-regression", default=None, type=float, metavar="X",
                    help="with --llmeval-compare: also fail when a gate drops by more than X")
    group.addoption("--llmeval-alpha", default=None, type=float, metavar="A",
                    help="with --llmeval-compare: significance level (default 0.05, Holm-corrected)")
    group.addoption("--llmeval-cache", default=None, metavar="DIR|off",
                    help="cache directory for generations and verdicts (default: .llmeval_cache under "
                         "the rootdir), or 'off'")
    group.addoption("--llmeval-cache-readonly", action="store_true", default=None,
                    help="read the cache but never write it (for CI)")
    group.addoption("--llmeval-cache-strict", action="store_true", default=None,
                    help="with --llmeval-cache-readonly: a cache miss is an ERROR instead of a model call")
    group.addoption("--llmeval-concurrency", default=None, type=int, metavar="N",
                    help="requests in flight per API endpoint, for the whole run: xdist workers share "
                         "it (default 8)")
    group.addoption("--llmeval-seed", default=None, type=int, metavar="N",
                    help="seed for bootstrap intervals (default 0)")
    group.addoption("--llmeval-strict", action="store_true", dest="llmeval_strict", default=None,
                    help="a gate that cannot run (no judge, missing key) is an ERROR, not a SKIP "
                         "(the default when the CI environment variable is set)")
    group.addoption("--no-llmeval-strict", action="store_false", dest="llmeval_strict",
                    help="a gate that cannot run is a SKIP even when CI is set")
    group.addoption("--llmeval-allow-unsandboxed", action="store_true", default=None,
                    help="let execute: suites run generated code where a sandbox layer (the network "
                         "namespace) is missing; the required layers are never optional")
    group.addoption("--llmeval-max-output-chars", default=None, type=int, metavar="N",
                    help="cut each model output in the results file to N characters (recorded in the "
                         "file; whatever needs full outputs refuses a capped file)")
    group.addoption("--llmeval-max-cases", default=None, type=int, metavar="N",
                    help="cases listed in a regression's message (default 20; the total is always given)")
    group.addoption("--llmeval-compare-allow-unpaired", action="store_true", default=None,
                    help="with --llmeval-compare: a gate whose cases cannot be paired with the previous "
                         "run is skipped instead of an ERROR")
    group.addoption("--llmeval-shard", default=None, metavar="K/N",
                    help="run shard K of N: whole suite files spread over N jobs, balanced by cases "
                         "(or by --llmeval-durations); merge the results files with 'llmeval merge'")
    group.addoption("--llmeval-shard-cases", action="store_true", default=None,
                    help="with --llmeval-shard: split each suite's cases over the shards instead "
                         "(its gates are partial here and recomputed by 'llmeval merge')")
    group.addoption("--llmeval-durations", default=None, metavar="PATH",
                    help="with --llmeval-shard: balance by the seconds recorded in this JSON file "
                         "(test file or node id -> seconds, as pytest-split's .test_durations)")
    group.addoption("--llmeval-store-durations", default=None, metavar="PATH",
                    help="record each test file's seconds in this JSON file (for --llmeval-durations)")
    parser.addini("llmeval_patterns", "glob patterns of eval suite files", type="linelist",
                  default=DEFAULT_PATTERNS)
    parser.addini("llmeval_model", "default model reference", default=None)
    parser.addini("llmeval_baseline", "default baseline model reference", default=None)
    parser.addini("llmeval_judge", "default judge reference", default=None)
    parser.addini("llmeval_metrics", "default metric gates for bare *.eval.jsonl suites "
                  "(lines like 'exact_match>=0.8')", type="linelist", default=[])
    parser.addini("llmeval_cache", "cache directory, or 'off'", default=None)
    parser.addini("llmeval_concurrency", "requests in flight per API endpoint, for the whole run",
                  default=None)
    parser.addini("llmeval_cache_max_size", "prune the cache to this size at the end of a run, least "
                  "recently used entries first (e.g. 2GB; also [tool.llmeval] cache_max_size)", default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "llmeval: an item generated from an eval suite file")
    if not config.pluginmanager.hasplugin("xdist"):
        # Suite nodes carry xdist_group (for --dist loadgroup); keep --strict-markers happy without xdist.
        config.addinivalue_line("markers", "xdist_group(name): group items on one pytest-xdist worker")
    session = LLMEvalSession(config)
    config.stash[SESSION_KEY] = session
    # The session object carries the reporting hooks (logreport, sessionfinish, terminal summary).
    config.pluginmanager.register(session, "llmeval-session")
    if config.getoption("llmeval_allow_unsandboxed", None):
        import os

        os.environ["LLMEVAL_ALLOW_UNSANDBOXED"] = "1"  # read by the sandbox, here and in xdist workers
    session.validate_options()
    if hasattr(config, "workerinput"):
        from pytest_llmeval import budget

        budget.use_directory(config.workerinput.get("llmeval_budget_dir"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Hand each xdist worker the run directory through which its concurrency limits are the run's."""
    from pytest_llmeval import budget

    config = node.config
    if BUDGET_DIR_KEY not in config.stash:
        existing = budget.shared_directory()
        made = None if existing is not None else budget.create_run_directory()
        path = existing or made
        config.stash[BUDGET_DIR_KEY] = (None if path is None else str(path), made is not None)
    path, _ = config.stash[BUDGET_DIR_KEY]
    if path is not None:
        node.workerinput["llmeval_budget_dir"] = path


def _matches(path: Path, patterns: list[str]) -> bool:
    name = path.name
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if _matches(file_path, parent.config.getini("llmeval_patterns")):
        from pytest_llmeval.items import SuiteFile

        return SuiteFile.from_parent(parent, path=file_path)  # type: ignore[no-any-return]
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    attach = getattr(item, "llmeval_attach", None)
    if attach is not None:
        attach(outcome.get_result(), call)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Send all items of one suite to one worker, so no case is generated twice."""
    if config.getvalue("dist") != "load":
        return None
    from pytest_llmeval.xdist_scheduling import SuiteScheduling

    return SuiteScheduling(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    sess = config.stash.get(SESSION_KEY, None)
    if sess is not None:
        sess.close()
        if config.pluginmanager.is_registered(sess):
            config.pluginmanager.unregister(sess)
    path, made = config.stash.get(BUDGET_DIR_KEY, (None, False))
    if made:
        from pytest_llmeval.budget import remove_run_directory

        remove_run_directory(path)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def llm_model(request: pytest.FixtureRequest) -> Any:
    """The evaluated model (``--llmeval-model`` / ini ``llmeval_model``); override in a conftest.py."""
    return request.config.stash[SESSION_KEY].default_model("model")


@pytest.fixture(scope="session")
def llm_baseline(request: pytest.FixtureRequest) -> Any:
    """The baseline model (``--llmeval-baseline`` / ini ``llmeval_baseline``); override in a conftest.py."""
    return request.config.stash[SESSION_KEY].default_model("baseline")


@pytest.fixture(scope="session")
def llm_generator(llm_model: Any, request: pytest.FixtureRequest) -> Any:
    """``llm_generator(prompt, **params) -> str`` over ``llm_model`` (cached like the suites)."""
    from pytest_llmeval.generator import Generator as _Generator

    return _Generator(request.config.stash[SESSION_KEY].wrap(llm_model))


@pytest.fixture(scope="session")
def llm_judge(request: pytest.FixtureRequest) -> Any:
    """The judge (``--llmeval-judge`` / ini ``llmeval_judge``); override in a conftest.py."""
    return request.config.stash[SESSION_KEY].default_judge()
