"""``llmeval merge``: the results files of sharded runs as one run.

Suites run whole in one shard (``--llmeval-shard K/N``) are copied as they are. A suite whose cases
were split (``--llmeval-shard-cases``) has gates that each shard evaluated over its own cases
only (``partial``); here they are evaluated again over every case, by the same gate code
(:func:`~pytest_llmeval.evaluate.run_gates`) on the per-case records: outputs, baseline outputs,
scores, code-execution records and request records as stored, judge verdicts replayed from the
stored ones by :class:`ReplayJudge`. No model or judge is called. The value, interval and verdict
are therefore those of an unsharded run, never an average of shards.

The merge refuses, with a message naming the files, what it cannot merge honestly: runs of
different plugin versions, settings or models, shards of different plans, two files of one
shard, a case present twice, a split suite with a case missing (a shard left out), a suite file
that changed since the run (its hash), a gate kind that cannot be recomputed from records, and
results files whose outputs were capped (``--llmeval-max-output-chars``).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError, JudgeError, LLMEvalError, ResultsFileError, SpecError
from pytest_llmeval.results import RunResult, SuiteResult

IGNORED_SETTINGS = frozenset({"shard", "cache", "cache_readonly", "concurrency", "python", "pytest"})
"""Settings that may differ between the files of one run (they do not change an answer)."""


class MergeError(ResultsFileError):
    """Results files that cannot be merged into one run (the message names the files and why)."""


def merge_files(paths: Sequence[str | Path], *, rootdir: str | Path = ".") -> RunResult:
    """Read and merge results files (see the module docstring).

    Args:
        paths: the shards' results files.
        rootdir: the directory the run's suite files are relative to (the pytest rootdir);
            needed only for suites whose cases were split.

    Raises:
        ResultsFileError: a file is missing, not a results file, or capped.
        MergeError: the files cannot be merged.
    """
    from pytest_llmeval.fileio import read_results
    from pytest_llmeval.sanitize import require_full_outputs

    if not paths:
        raise MergeError("give the results files to merge")
    runs: list[tuple[str, RunResult]] = []
    for p in paths:
        run = read_results(p)
        require_full_outputs(run, "merging results files", str(p))
        runs.append((str(p), run))
    return merge_runs(runs, rootdir=Path(rootdir))


def merge_runs(runs: Sequence[tuple[str, RunResult]], *, rootdir: Path) -> RunResult:
    """Merge loaded runs, each named by its file (for messages)."""
    if not runs:
        raise MergeError("give the results files to merge")
    _check_compatible(runs)
    shards = _check_shards(runs)
    parts: dict[str, list[tuple[str, SuiteResult]]] = {}
    for path, run in runs:
        for suite in run.suites:
            parts.setdefault(suite.file, []).append((path, suite))
    _check_overlap(parts)
    first = runs[0][1]
    suites = []
    for file in sorted(parts):
        pieces = parts[file]
        if all(s.split is None for _, s in pieces):
            suites.append(copy.deepcopy(pieces[0][1]))
            continue
        whole = [p for p, s in pieces if s.split is None]
        if whole:
            raise MergeError(f"suite {file} is whole in {whole[0]} but split over shards in "
                             f"{next(p for p, s in pieces if s.split is not None)}: these files are not "
                             f"shards of one run")
        suites.append(_merge_split(file, pieces, first.settings, rootdir))
    from pytest_llmeval.collector import add_usage

    usage: dict[str, Any] = {}
    models: dict[str, Any] = {}
    regressions: list[dict[str, Any]] = []
    for _, run in runs:
        for name, u in run.usage.items():
            usage[name] = add_usage(usage.get(name, {}), u)
        models.update(run.models)
        regressions.extend(run.regressions)
    settings = {k: v for k, v in first.settings.items() if k != "shard"}
    settings["merged"] = {"files": [p for p, _ in runs], "shards": shards}
    return RunResult(suites=suites, models=models, settings=settings, usage=usage,
                     regressions=sorted(regressions, key=lambda r: (str(r.get("suite")), str(r.get("gate")))),
                     plugin_version=first.plugin_version,
                     created=max(run.created for _, run in runs))


# ----------------------------------------------------------------------------- refusals


def _check_compatible(runs: Sequence[tuple[str, RunResult]]) -> None:
    path0, run0 = runs[0]
    for path, run in runs[1:]:
        if run.plugin_version != run0.plugin_version:
            raise MergeError(f"{path0} and {path} were written by different versions of pytest-llmevals "
                             f"({run0.plugin_version} and {run.plugin_version}): run every shard with one "
                             f"version")
        keys = (set(run0.settings) | set(run.settings)) - IGNORED_SETTINGS
        for key in sorted(keys):
            if run0.settings.get(key) != run.settings.get(key):
                raise MergeError(f"{path0} and {path} are runs with different settings: '{key}' is "
                                 f"{run0.settings.get(key)!r} in one and {run.settings.get(key)!r} in the "
                                 f"other; run every shard with the same options")
        for name in sorted(set(run0.models) & set(run.models)):
            a, b = _identity(run0.models[name]), _identity(run.models[name])
            if a != b:
                raise MergeError(f"{path0} and {path} are runs of different models: '{name}' is "
                                 f"{_short(a)} in one and {_short(b)} in the other")


def _identity(describe: dict[str, Any]) -> Any:
    return describe.get("fingerprint") or {k: v for k, v in describe.items() if k not in ("usage",)}


def _short(identity: Any) -> str:
    text = str(identity)
    return f"fingerprint {text[:16]}" if len(text) >= 16 and " " not in text else repr(identity)[:120]


def _check_shards(runs: Sequence[tuple[str, RunResult]]) -> list[str]:
    """Every file a shard of one plan (same N and mode), each shard once and none missing."""
    labelled = [(p, r.settings.get("shard")) for p, r in runs]
    sharded = [(p, s) for p, s in labelled if isinstance(s, dict)]
    if not sharded:
        return []
    plain = [p for p, s in labelled if not isinstance(s, dict)]
    if plain:
        raise MergeError(f"{plain[0]} is not a sharded run but {sharded[0][0]} is shard "
                         f"{sharded[0][1].get('shard')}: merge the shards of one run")
    p0, s0 = sharded[0]
    seen: dict[int, str] = {}
    for p, s in sharded:
        if (s.get("total"), s.get("mode")) != (s0.get("total"), s0.get("mode")):
            raise MergeError(f"{p0} and {p} are shards of different plans ({s0.get('shard')} by "
                             f"{s0.get('mode')}, {s.get('shard')} by {s.get('mode')}): run every shard with "
                             f"the same --llmeval-shard N and --llmeval-shard-cases")
        index = s.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            raise MergeError(f"{p}: settings.shard has no shard index: not the results file of a shard")
        if index in seen:
            raise MergeError(f"overlapping shards: {seen[index]} and {p} are both shard {s.get('shard')}")
        seen[index] = p
    total = int(s0.get("total") or 0)
    missing = [f"{k}/{total}" for k in range(1, total + 1) if k not in seen]
    if missing:
        raise MergeError(f"shard {', '.join(missing)} missing: give the results file of every shard "
                         f"(each shard writes one, even when it has no work)")
    return [f"{k}/{total}" for k in sorted(seen)]


def _check_overlap(parts: dict[str, list[tuple[str, SuiteResult]]]) -> None:
    for file, pieces in parts.items():
        owner: dict[str, str] = {}
        for path, suite in pieces:
            for case in suite.cases:
                if case.id in owner:
                    raise MergeError(f"overlapping shards: case '{case.id}' of {file} is in both "
                                     f"{owner[case.id]} and {path}; merge the results files of one sharded "
                                     f"run, each once")
                owner[case.id] = path
        if len(pieces) > 1 and not any(s.cases for _, s in pieces):
            raise MergeError(f"overlapping shards: suite {file} is in both {pieces[0][0]} and {pieces[1][0]}")


# ----------------------------------------------------------------------------- split suites


def _merge_split(file: str, pieces: list[tuple[str, SuiteResult]], settings: dict[str, Any],
                 rootdir: Path) -> SuiteResult:
    from pytest_llmeval.evaluate import run_gates, small_n_warning
    from pytest_llmeval.gates.base import BaselineRun, GateContext
    from pytest_llmeval.sharding import unrecomputable_kinds
    from pytest_llmeval.spec import load_suite, parse_metric_shorthand

    head = pieces[0][1]
    for path, s in pieces[1:]:
        for attr in ("suite_hash", "model", "baseline", "name"):
            if getattr(s, attr) != getattr(head, attr):
                raise MergeError(f"{file}: the shards in {pieces[0][0]} and {path} ran different suites "
                                 f"({attr} {getattr(head, attr)!r} and {getattr(s, attr)!r})")
    suite_path = rootdir / file
    if not suite_path.is_file():
        raise MergeError(f"{file} was split over shards and its gates are recomputed from its suite file, "
                         f"which is not at {suite_path}: run llmeval merge in the run's rootdir or pass "
                         f"--rootdir")
    shard = settings.get("shard") or {}
    _load_conftests(rootdir, suite_path)
    try:
        metrics = parse_metric_shorthand(list(shard.get("metrics") or []))
        suite = load_suite(suite_path, default_metrics=metrics,
                           defaults={"model": settings.get("model"), "baseline": settings.get("baseline")})
    except (SpecError, ConfigError) as exc:
        raise MergeError(f"{file}: the suite file cannot be loaded to recompute its gates: {exc}") from None
    if suite.suite_hash != head.suite_hash:
        raise MergeError(f"{file} changed since the run (suite hash {head.suite_hash}, now "
                         f"{suite.suite_hash}): merge with the suite files the shards ran")
    kinds = unrecomputable_kinds(suite.gates)
    if kinds:
        raise MergeError(f"{file}: gate kind {', '.join(repr(k) for k in kinds)} cannot be recomputed from "
                         f"the results file (its gate class does not declare recomputable = True), so this "
                         f"suite's split gates cannot be merged; shard it by suite instead")
    stored = {c.id: c for _, s in pieces for c in s.cases}
    aggs: dict[str, list[Any]] = {}
    for _, s in pieces:
        for a in s.aggregates:
            aggs.setdefault(a.name, []).append(a)
    cases = [c for c in suite.cases if c.id in stored]
    unknown = sorted(set(stored) - {c.id for c in suite.cases})
    if unknown:
        raise MergeError(f"{file}: the shards hold cases the suite file does not have "
                         f"({', '.join(unknown[:5])}); merge with the suite files the shards ran")
    if aggs and len(cases) != len(suite.cases):
        missing = [c.id for c in suite.cases if c.id not in stored]
        raise MergeError(f"{file}: {len(missing)} of its {len(suite.cases)} cases are in no shard "
                         f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); give every "
                         f"shard's results file")
    final: dict[str, Any] = {}
    todo = []
    for gate in suite.gates:
        found = aggs.get(gate.name)
        if not found:
            continue
        settled = next((a for a in found if a.partial is None), None)
        if settled is not None:  # it could not run in a shard (SKIP, or its strict ERROR): nor here
            final[gate.name] = (settled, head.categories.get(gate.name, []), head.reports.get(gate.name))
        else:
            todo.append(gate)
    results = [copy.deepcopy(stored[c.id]) for c in cases]
    base_info = next((s.split["baseline"] for _, s in pieces if s.split and s.split.get("baseline")), None)
    baseline = None
    if base_info is not None:
        outputs = {} if base_info.get("error") else {r.id: r.baseline_output for r in results}
        baseline = BaselineRun(name=str(base_info.get("name")), outputs=outputs, error=base_info.get("error"))
    judge_name = next((str(a.details["judge"]) for found in aggs.values() for a in found
                       if a.kind in ("judge_score", "win_rate") and a.details.get("judge")), "judge")
    judge = ReplayJudge(judge_name, cases, [stored[c.id] for c in cases])
    seed = int(settings.get("seed") or 0) + suite.spec.seed
    ctx = GateContext(suite=suite, cases=cases, results=results, model_name=head.model or "model",
                      baseline=baseline, judge=lambda: judge, seed=seed, confidence=suite.spec.confidence)
    try:
        outcomes = run_gates(ctx, todo) if todo else {}
    except LLMEvalError as exc:
        raise MergeError(f"{file}: its gates could not be recomputed: {exc}") from None
    for name, out in outcomes.items():
        reason = suite.spec.xfail.get(name)
        if reason is not None:
            out.aggregate.xfail = str(reason)
        final[name] = (out.aggregate, out.categories, out.report)
    merged = SuiteResult(name=head.name, file=file, model=head.model, baseline=head.baseline,
                         n_cases=head.n_cases, suite_hash=head.suite_hash,
                         error=next((s.error for _, s in pieces if s.error), None))
    for gate in suite.gates:
        if gate.name not in final:
            continue
        agg, categories, report = final[gate.name]
        merged.aggregates.append(agg)
        if categories:
            merged.categories[gate.name] = list(categories)
        if report:
            merged.reports[gate.name] = report
    merged.cases = [stored[c.id] for c in cases]
    small = small_n_warning(suite, len(suite.cases))
    for _, s in pieces:
        for w in s.warnings:
            if w not in merged.warnings:
                merged.warnings.append(w)
    if small and small not in merged.warnings:
        merged.warnings.append(small)
    return merged


_LOADED_CONFTESTS: set[Path] = set()


def _load_conftests(rootdir: Path, suite_path: Path) -> None:
    """Import the ``conftest.py`` files from the rootdir down to the suite, as pytest does, so that
    gate kinds registered there (``@register_gate``) are known to the merge."""
    import importlib.util
    import sys

    root = rootdir.resolve()
    folder = suite_path.resolve().parent
    chain = [folder, *folder.parents]
    dirs = [d for d in chain if d == root or root in d.parents]
    for d in reversed(dirs):
        conftest = d / "conftest.py"
        if not conftest.is_file() or conftest in _LOADED_CONFTESTS:
            continue
        _LOADED_CONFTESTS.add(conftest)
        name = f"_llmeval_merge_conftest_{len(_LOADED_CONFTESTS)}"
        spec = importlib.util.spec_from_file_location(name, conftest)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # noqa: BLE001 - a user's file: name it and stop
            raise MergeError(f"{conftest} could not be imported (it may register gate kinds the merge "
                             f"needs): {type(exc).__name__}: {exc}") from None


# ----------------------------------------------------------------------------- replayed verdicts


class ReplayJudge:
    """A judge that answers with the verdicts a shard stored per case, and never calls a model.

    A request is matched to its case by the prompt, the output(s) and the reference, as the judge
    gates build it; a case without a stored verdict (or whose verdict failed) is a
    :class:`~pytest_llmeval.errors.JudgeError` in its slot, so the gate is an ERROR, never a
    verdict on fewer cases.
    """

    kind = "replay"

    def __init__(self, name: str, cases: Sequence[Any], records: Sequence[Any]) -> None:
        from pytest_llmeval.gates.contamination import prompt_text

        self.name = name
        self._score: dict[tuple[Any, ...], deque[Any]] = {}
        self._pair: dict[tuple[Any, ...], deque[Any]] = {}
        for case, rec in zip(cases, records, strict=True):
            prompt = prompt_text(rec.prompt)
            ref = case.reference[0] if case.reference else None
            self._score.setdefault((prompt, rec.output, ref), deque()).append(
                (rec.id, rec.judge.get("score")))
            self._pair.setdefault((prompt, rec.output, rec.baseline_output, ref), deque()).append(
                (rec.id, rec.judge.get("pairwise")))

    def score_many(self, requests: Sequence[Any]) -> list[Any]:
        from pytest_llmeval.judge.verdicts import ScoreVerdict

        out: list[Any] = []
        for r in requests:
            case_id, info = self._next(self._score, (_text(r.prompt), r.response, r.reference))
            if not isinstance(info, dict) or "score" not in info:
                out.append(_missing(case_id, info, "score"))
                continue
            out.append(ScoreVerdict(score=float(info["score"]), reasoning=str(info.get("reasoning", "")),
                                    scale=tuple(info.get("scale") or (1, 10)), rubric=info.get("rubric"),
                                    raw=str(info.get("raw", "")), repaired=bool(info.get("repaired", False)),
                                    greedy_score=info.get("greedy_score")))
        return out

    def compare_many(self, requests: Sequence[Any]) -> list[Any]:
        from pytest_llmeval.judge.verdicts import OrderVerdict, PairVerdict

        out: list[Any] = []
        for r in requests:
            case_id, info = self._next(self._pair, (_text(r.prompt), r.a, r.b, r.reference))
            if not isinstance(info, dict) or "winner" not in info:
                out.append(_missing(case_id, info, "pairwise"))
                continue
            orders = tuple(OrderVerdict(first=o["first"], shown_winner=o["shown_winner"],
                                        reasoning=str(o.get("reasoning", "")), raw=str(o.get("raw", "")),
                                        repaired=bool(o.get("repaired", False)))
                           for o in info.get("orders") or [])
            out.append(PairVerdict(winner=info["winner"], orders=orders, consistent=info.get("consistent"),
                                   len_a=int(info.get("len_a") or 0), len_b=int(info.get("len_b") or 0)))
        return out

    @staticmethod
    def _next(index: dict[tuple[Any, ...], deque[Any]], key: tuple[Any, ...]) -> tuple[str | None, Any]:
        queue = index.get(key)
        if not queue:
            return None, None
        return queue.popleft()  # type: ignore[no-any-return]

    def close(self) -> None:
        """Nothing to release."""


def _text(prompt: Any) -> str:
    from pytest_llmeval.gates.contamination import prompt_text

    return prompt_text(prompt)


def _missing(case_id: str | None, info: Any, kind: str) -> JudgeError:
    if isinstance(info, dict) and info.get("error"):
        return JudgeError(str(info["error"]))
    which = f"case '{case_id}'" if case_id else "a case"
    return JudgeError(f"{which} has no stored {kind} verdict in the shards' results files")
