"""How a suite file becomes pytest items, and how each item reports.

One :class:`SuiteFile` per eval file; one :class:`CaseItem` per case
(``file::case[<id>]``) and one :class:`GateItem` per aggregate gate
(``file::exact_match``, ``file::judge_score``, ``file::win_rate[a>b]``,
``file::contamination``). The suite is evaluated once, when its first item
sets up; items then report their part. Model failures surface in setup, so
pytest shows them as ERROR, distinct from a FAIL (a check or threshold not
met) and a SKIP (e.g. no API key for the judge).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.errors import ConfigError, LLMEvalError, NoJudgeConfigured, SpecError
from pytest_llmeval.evaluate import SuiteEvaluator, SuiteOutcome, format_case
from pytest_llmeval.gates.base import GateOutcome, GateSkip
from pytest_llmeval.session import SESSION_KEY
from pytest_llmeval.spec import Suite, load_suite, parse_metric_shorthand


class EvalFailure(AssertionError):
    """A threshold or a per-case check was not met (FAIL)."""


class EvalError(Exception):
    """The model, the judge or the file broke (ERROR)."""


class SuiteFile(pytest.File):
    """An eval suite file; its items share one evaluation."""

    suite: Suite
    outcome: SuiteOutcome | None = None
    shard_cases: set[str] | None = None
    """With ``--llmeval-shard-cases``: this shard's cases of a suite split over shards."""
    shard_label: str | None = None

    def collect(self) -> Any:
        # Markers live on the file node: items inherit them, and 100k items stay cheap to build.
        self.add_marker(pytest.mark.llmeval)
        self.add_marker(pytest.mark.xdist_group(name=f"llmeval:{self.path}"))
        session = self.config.stash[SESSION_KEY]
        try:
            defaults = parse_metric_shorthand(self.config.getini("llmeval_metrics"))
            self.suite = load_suite(self.path, default_metrics=defaults, defaults={
                "model": session.option("llmeval_model", "llmeval_model"),
                "baseline": session.option("llmeval_baseline", "llmeval_baseline")})
        except SpecError as exc:
            session.bad_suites += 1
            if exc.path is None:
                exc = SpecError(exc.message, path=str(self.path), line=exc.line, key=exc.key)
            raise self.CollectError(_rel(exc.format(), self.config)) from None
        except ConfigError as exc:
            session.bad_suites += 1
            raise self.CollectError(f"{_relpath(self.path, self.config)}: {exc}") from None
        suite = self.suite
        self._check_references(session)
        gates = [GateItem.from_parent(self, name=g.name, gate_name=g.name, line=g.line) for g in suite.gates]
        for gate in gates:
            reason = suite.spec.xfail.get(gate.gate_name)
            if reason is not None:
                gate.add_marker(pytest.mark.xfail(reason=reason, strict=True))
        for index, case in enumerate(suite.cases):
            yield CaseItem.from_parent(self, name=f"case[{case.id}]", case_index=index)
        yield from gates
        if session.compare_enabled():
            for g in suite.gates:
                yield RegressionItem.from_parent(self, name=f"regression[{g.name}]", gate_name=g.name,
                                                 line=g.line)

    def _check_references(self, session: Any) -> None:
        """A misspelt model or judge reference is one collection error, not an ERROR per item."""
        spec = self.suite.spec
        refs = [("model", spec.model, False), ("baseline", spec.baseline, False)]
        if spec.judge is not None:
            refs.append(("judge.model", spec.judge.model, True))
            against = spec.judge.pairwise.against if spec.judge.pairwise is not None else "baseline"
            if against not in ("baseline", "reference"):  # 'reference': each case's reference answer
                refs.append(("judge.pairwise.against", against, False))
        from pytest_llmeval.spec import line_of, load_yaml

        for key, value, judge in refs:
            if not value:
                continue
            try:
                session.models.check_reference(value, judge=judge)
            except ConfigError as exc:
                session.bad_suites += 1
                try:
                    line = line_of(load_yaml(self.path), tuple(key.split(".")))
                except SpecError:
                    line = None
                rel = _relpath(self.path, self.config)
                where = f"{rel}:{line}" if line else rel
                raise self.CollectError(f"{where} [{key}]: {exc}") from None

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, item: LLMEvalItem) -> SuiteOutcome:
        if self.outcome is None:
            self.outcome = self._evaluate(item)
        return self.outcome

    def _selected(self, item: LLMEvalItem) -> tuple[set[str], set[str]]:
        mine = [i for i in item.session.items if isinstance(i, LLMEvalItem) and i.parent is self]
        cases = {self.suite.cases[i.case_index].id for i in mine if isinstance(i, CaseItem)}
        gates = {i.gate_name for i in mine if isinstance(i, (GateItem, RegressionItem))}
        return cases, gates

    def _evaluate(self, item: LLMEvalItem) -> SuiteOutcome:
        suite = self.suite
        session = self.config.stash[SESSION_KEY]
        spec = suite.spec
        try:
            if spec.model:
                model = session.resolve(spec.model, options=spec.model_options, base_dir=suite.base_dir)
            else:
                model = session.wrap(item.fixture("llm_model"))
        except Exception as exc:  # noqa: BLE001 - every item of the suite reports it as an ERROR
            return SuiteOutcome(cases={}, gates={}, fatal=exc)

        def baseline() -> Any:
            against = spec.judge.pairwise.against if spec.judge and spec.judge.pairwise else "baseline"
            if against != "baseline":
                return session.resolve(against, base_dir=suite.base_dir)
            if spec.baseline:
                return session.resolve(spec.baseline, options=spec.baseline_options,
                                       base_dir=suite.base_dir)
            return session.wrap(item.fixture("llm_baseline"))

        def judge() -> Any:
            jspec = spec.judge
            assert jspec is not None
            options = jspec.options.model_dump(exclude_none=True)
            for key in ("prompt_score", "prompt_pairwise", "prompts"):
                if getattr(jspec, key) is not None:
                    options[key] = getattr(jspec, key)
            try:
                if jspec.model:
                    return session.load_judge(jspec.model, options, suite.base_dir)
                return item.fixture("llm_judge")
            except NoJudgeConfigured as exc:
                raise GateSkip(str(exc)) from None
            except Exception as exc:
                if type(exc).__name__ == "MissingAPIKey":
                    raise GateSkip(str(exc)) from None
                raise

        cases, gates = self._selected(item)
        evaluator = SuiteEvaluator(suite, model, baseline=baseline, judge_provider=judge, seed=session.seed,
                                   progress=session.progress())
        before = session.usage()
        outcome = evaluator.run(selected=cases, gates_selected=gates, only=self.shard_cases)
        outcome.models.setdefault(model.name, {})
        self.usage = usage_delta(before, session.usage())
        if self.shard_cases is not None:
            mark_partial(outcome, self.shard_label or "?", len(suite.cases))
        if session.strict:
            for gate in outcome.gates.values():
                strict_error(gate)
        return outcome

    def meta(self) -> dict[str, Any]:
        """Suite-level facts every payload carries (computed once the suite is evaluated)."""
        cached = getattr(self, "_meta", None)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        suite = self.suite
        outcome = self.outcome
        model = next(iter(outcome.models), None) if outcome else None
        baseline = None
        if outcome and len(outcome.models) > 1:
            baseline = list(outcome.models)[1]
        meta = {
            "name": suite.name, "file": _relpath(self.path, self.config), "model": model,
            "baseline": baseline or suite.spec.baseline, "n_cases": len(suite.cases),
            "suite_hash": suite.suite_hash, "models": outcome.models if outcome else {},
            "warnings": list(outcome.warnings) if outcome else [],
            "usage": getattr(self, "usage", None) or {},
            "error": _exc_text(outcome.fatal) if outcome and outcome.fatal else None,
        }
        if self.shard_cases is not None:
            base = outcome.baseline if outcome else None
            meta["split"] = {"shard": self.shard_label, "cases": len(outcome.cases) if outcome else 0,
                             "baseline": None if base is None else {"name": base.name, "error": base.error}}
        if outcome is not None:
            self._meta = meta
        return meta

    def suite_result(self) -> Any:
        """This suite's results as the results file holds them (for the regression comparison)."""
        cached = getattr(self, "_suite_result", None)
        if cached is not None:
            return cached
        from pytest_llmeval.collector import RunCollector

        collector = RunCollector()
        outcome = self.outcome
        assert outcome is not None
        meta = self.meta()
        for index, case in enumerate(self.suite.cases):
            res = outcome.cases.get(case.id)
            if res is not None:
                collector.add(f"case:{index}", {"type": "case", "index": index, "suite": meta,
                                                "case": res.to_dict()})
        for name, gate in outcome.gates.items():
            collector.add(f"gate:{name}", {"type": "gate", "suite": meta,
                                           "aggregate": gate.aggregate.to_dict(),
                                           "categories": [c.to_dict() for c in gate.categories]})
        run = collector.build({})
        self._suite_result = run.suites[0]
        return self._suite_result

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, ""


class LLMEvalItem(pytest.Item):
    """Shared behaviour of case and gate items: fixtures, payloads, readable failures."""

    parent: SuiteFile

    def __init__(self, *, line: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._line = line
        self._llm_request: Any = None

    def fixture(self, name: str) -> Any:
        """A fixture's value as this item sees it (so conftest overrides apply to YAML suites).

        A ``pytest.Function`` beside the item asks for ``request``; pytest resolves it with
        the conftest files of the suite's directory, through public API only.
        """
        if self._llm_request is None:
            def llmeval_fixtures(request: pytest.FixtureRequest) -> None:
                """Resolves the llm_* fixtures for an eval suite."""

            probe = pytest.Function.from_parent(self.parent, name=f"{self.name}::fixtures",
                                                callobj=llmeval_fixtures)
            probe.setup()
            self._llm_request = probe.funcargs["request"]
        return self._llm_request.getfixturevalue(name)

    def outcome(self) -> SuiteOutcome:
        outcome = self.parent.evaluate(self)
        if outcome.fatal is not None:
            raise EvalError(f"the suite could not be evaluated: {_exc_text(outcome.fatal)}")
        return outcome

    def llmeval_attach(self, report: pytest.TestReport, call: pytest.CallInfo[None]) -> None:
        """Attach this item's payload to the report that decides its outcome; messages, not tracebacks."""
        readable = (EvalFailure, EvalError, LLMEvalError)
        if call.excinfo is not None and isinstance(call.excinfo.value, readable) and not report.skipped:
            report.longrepr = str(call.excinfo.value)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            payload = self.payload()
            if payload is not None:
                report.llmeval = payload  # type: ignore[attr-defined]

    def payload(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (EvalFailure, EvalError, LLMEvalError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        # The domain is the item's own name: `pytest -v` then prints the node id as it is, pasteable
        # back (a domain with dots, such as the file name, is printed with '::' for each dot).
        domain = self.name if "." not in self.name.split("[", 1)[0] else ""
        return self.path, (self._line - 1) if self._line else None, domain


class CaseItem(LLMEvalItem):
    def __init__(self, *, case_index: int, **kwargs: Any) -> None:
        self.case_index = case_index
        super().__init__(**kwargs)
        case = self.parent.suite.cases[case_index]
        self._line = case.line if case.source == str(self.parent.path) else None
        for tag in case.tags:
            self.extra_keyword_matches.add(tag)
        if case.category:
            self.extra_keyword_matches.add(case.category)

    @property
    def case_id(self) -> str:
        return self.parent.suite.cases[self.case_index].id

    def result(self) -> Any:
        outcome = self.parent.outcome
        return outcome.cases.get(self.case_id) if outcome else None

    def setup(self) -> None:
        outcome = self.outcome()
        res = outcome.cases.get(self.case_id)
        if res is None:
            raise EvalError(f"case '{self.case_id}' was not evaluated")
        for name, score in res.scores.items():
            self.user_properties.append((f"llmeval.{name}", score))
        execution = res.extra.get("execution")
        if execution:
            from pytest_llmeval.gates.pass_at_k import describe_execution

            self.user_properties.append(("llmeval.execution", describe_execution(execution)))
        if res.status == "error":
            raise EvalError(f"case '{self.case_id}': {res.error}\n" + format_case(res))

    def runtest(self) -> None:
        res = self.result()
        if res is not None and res.status == "failed":
            failed = [c["message"] for c in res.checks if not c["passed"]]
            raise EvalFailure("\n".join(f"check failed: {m}" for m in failed) + "\n" + format_case(res))

    def payload(self) -> dict[str, Any] | None:
        res = self.result()
        if res is None or self.parent.outcome is None:
            return None
        return {"type": "case", "index": self.case_index, "suite": self.parent.meta(), "case": res.to_dict()}


class GateItem(LLMEvalItem):
    """One gate of the suite: PASS, FAIL, ERROR, or SKIP (ERROR in strict mode)."""

    def __init__(self, *, gate_name: str, **kwargs: Any) -> None:
        self.gate_name = gate_name
        super().__init__(**kwargs)

    def gate(self) -> GateOutcome | None:
        outcome = self.parent.outcome
        return outcome.gates.get(self.gate_name) if outcome else None

    def setup(self) -> None:
        outcome = self.outcome()
        gate = outcome.gates.get(self.gate_name)
        if gate is None:
            raise EvalError(f"gate '{self.gate_name}' was not evaluated")
        agg = gate.aggregate
        if agg.skip:
            pytest.skip(agg.skip)
        for key, value in junit_properties(self.gate_name, agg):
            self.user_properties.append((key, value))
        if agg.partial is not None:
            pytest.skip(deferred_message(self.gate_name, agg))
        if agg.error:
            raise EvalError(f"{self.gate_name}: {agg.error}")

    def runtest(self) -> None:
        gate = self.gate()
        if gate is not None and gate.aggregate.passed is False:
            raise EvalFailure(gate.message or f"{self.gate_name} did not clear its threshold")

    def payload(self) -> dict[str, Any] | None:
        gate = self.gate()
        if self.parent.outcome is None:
            return None
        if gate is None:
            from pytest_llmeval.results import AggregateResult

            missing = AggregateResult(name=self.gate_name, value=None,
                                      error=_exc_text(self.parent.outcome.fatal)
                                      if self.parent.outcome.fatal else "not evaluated")
            return {"type": "gate", "suite": self.parent.meta(), "aggregate": missing.to_dict()}
        agg = gate.aggregate
        xfail = self.get_closest_marker("xfail")
        if xfail is not None:
            agg.xfail = str(xfail.kwargs.get("reason", ""))
        return {"type": "gate", "suite": self.parent.meta(), "aggregate": agg.to_dict(),
                "categories": [c.to_dict() for c in gate.categories], "report": gate.report}


class RegressionItem(LLMEvalItem):
    """``regression[<gate>]`` under ``--llmeval-compare``: the gate against the previous run.

    It FAILs when the paired test finds the gate significantly worse (or worse than its
    tolerance), and is an ERROR when the gate's cases cannot be paired with the previous
    run's (unless ``--llmeval-compare-allow-unpaired``): a comparison that did not happen
    never passes.
    """

    def __init__(self, *, gate_name: str, **kwargs: Any) -> None:
        self.gate_name = gate_name
        super().__init__(**kwargs)
        self._comparison: Any = None

    def setup(self) -> None:
        self.outcome()
        session = self.config.stash[SESSION_KEY]
        self._comparison = session.regression(self.parent, self.gate_name)
        status = self._comparison.status
        for key, value in self._comparison.properties():
            self.user_properties.append((f"llmeval.regression.{self.gate_name}.{key}", value))
        if status == "skip":
            pytest.skip(self._comparison.message)
        if status == "error":
            raise EvalError(f"regression[{self.gate_name}]: {self._comparison.message}")

    def runtest(self) -> None:
        if self._comparison is not None and self._comparison.status == "regressed":
            raise EvalFailure(self._comparison.message)

    def payload(self) -> dict[str, Any] | None:
        if self._comparison is None or self.parent.outcome is None:
            return None
        return {"type": "regression", "suite": self.parent.meta(), "gate": self.gate_name,
                "comparison": self._comparison.to_dict()}


def junit_properties(name: str, agg: Any) -> list[tuple[str, Any]]:
    """The JUnit ``<property>`` entries of a gate, in the shared format of :mod:`pytest_llmeval.numbers`.

    ``llmeval.<gate>`` keeps the raw value for tools that parse numbers; the others are the texts
    the summary, the HTML and the Markdown reports show: ``.ci`` (``[0.598, 0.688]``),
    ``.estimate`` (value with interval), ``.n``, ``.threshold`` (``>= 0.5``), ``.verdict``, and
    with a base model ``.base_model`` (its name), ``.base_model.value``, ``.base_model.ci``,
    ``.difference`` and ``.difference.ci`` (signed).
    """
    from pytest_llmeval import numbers

    props: list[tuple[str, Any]] = []
    if agg.value is not None:
        props.append((f"llmeval.{name}", agg.value))
        if agg.ci:
            props.append((f"llmeval.{name}.ci", numbers.interval(*agg.ci)))
        props.append((f"llmeval.{name}.estimate",
                      numbers.estimate(agg.value, *(agg.ci or (None, None)))))
        props.append((f"llmeval.{name}.n", agg.n))
    if agg.threshold is not None:
        props.append((f"llmeval.{name}.threshold",
                      f"{'>=' if agg.op == 'min' else '<='} {numbers.threshold(agg.threshold)}"))
    props.append((f"llmeval.{name}.verdict", agg.verdict))
    vs = agg.details.get("vs_baseline") if isinstance(agg.details, dict) else None
    if isinstance(vs, dict) and "value" in vs:
        base = f"llmeval.{name}.base_model"
        props.append((base, str(vs.get("model") or "")))
        props.append((f"{base}.value", numbers.number(vs.get("value"))))
        props.append((f"{base}.ci", numbers.interval(*(vs.get("ci") or (None, None)))))
        props.append((f"llmeval.{name}.difference", numbers.signed(vs.get("delta"))))
        props.append((f"llmeval.{name}.difference.ci",
                      numbers.interval(*(vs.get("delta_ci") or (None, None)), sign=True)))
    elif isinstance(vs, dict) and vs.get("error"):
        props.append((f"llmeval.{name}.base_model.error", str(vs["error"])))
    return props


def mark_partial(outcome: SuiteOutcome, shard: str, total: int) -> None:
    """Gates of a suite split over shards saw this shard's cases only: their values decide nothing.

    A gate that could not run at all (SKIP: no judge, no key) is not partial: it could not run in
    any shard, and keeps its verdict.
    """
    info = {"shard": shard, "cases": len(outcome.cases), "of": total}
    for gate in outcome.gates.values():
        if gate.aggregate.skip:
            continue
        gate.aggregate.partial = dict(info)
        for row in gate.categories:
            row.partial = dict(info)


def deferred_message(name: str, agg: Any) -> str:
    """The SKIP reason of a partial gate: what this shard saw, and who decides."""
    info = agg.partial or {}
    head = (f"deferred to 'llmeval merge': this shard ({info.get('shard')}) holds {info.get('cases')} of "
            f"the suite's {info.get('of')} cases")
    if agg.error:
        return f"{head}; over them {name} is an ERROR: {str(agg.error).splitlines()[0]}"
    if agg.value is None:
        return head
    ci = f" [{agg.ci[0]:.3f}, {agg.ci[1]:.3f}]" if agg.ci else ""
    would = {True: " (at or above the threshold here)",
             False: " (below the threshold here)"}.get(agg.passed, "")
    return f"{head}; over them {name} = {agg.value:.3f}{ci}{would}"


def shard_items(items: list[pytest.Item], shard: Any,
                durations: dict[str, float] | None) -> tuple[list[pytest.Item], list[pytest.Item], Any]:
    """Split the collected items for ``--llmeval-shard`` (see :mod:`pytest_llmeval.sharding`).

    Returns the items this shard keeps, those it deselects, and the plan. Suites whose cases are
    split are told their share (``SuiteFile.shard_cases``).
    """
    from pytest_llmeval.sharding import Unit, assign, unrecomputable_kinds

    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        groups.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    units: list[Unit] = []
    suites: dict[str, SuiteFile] = {}
    for key, members in groups.items():
        parent = next((i.parent for i in members if isinstance(i, LLMEvalItem)), None)
        if parent is None:
            units.append(Unit(key, len(members)))
            continue
        suites[key] = parent
        suite = parent.suite
        ids: list[str]
        if any(isinstance(i, (GateItem, RegressionItem)) for i in members):
            ids = [c.id for c in suite.cases]  # a gate evaluates every case
        else:
            ids = [suite.cases[i.case_index].id for i in members if isinstance(i, CaseItem)]
        split = shard.mode == "cases" and bool(ids) and not unrecomputable_kinds(suite.gates)
        units.append(Unit(key, len(ids) * suite.spec.repeat or len(members), tuple(ids) if split else ()))
    plan = assign(units, shard, durations)
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        key = item.nodeid.split("::", 1)[0]
        if key in plan.files:
            keep = True
        elif key in plan.cases:
            keep = not isinstance(item, CaseItem) or item.case_id in plan.cases[key]
        else:
            keep = False
        (kept if keep else dropped).append(item)
    for key, chosen in plan.cases.items():
        suites[key].shard_cases = set(chosen)
        suites[key].shard_label = shard.label
    return kept, dropped, plan


def strict_error(gate: GateOutcome) -> None:
    """In strict mode a gate that could not run is an ERROR: it never lets CI pass."""
    agg = gate.aggregate
    if agg.skip:
        agg.error = (f"not evaluated: {agg.skip} (strict mode: the CI environment variable is set or "
                     f"--llmeval-strict was given; pass --no-llmeval-strict to skip instead)")
        agg.skip = None
        gate.message = agg.error


def usage_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What one suite's evaluation added to each model's counters (so workers' usage sums exactly)."""
    out: dict[str, Any] = {}
    for name, now in after.items():
        d = _diff(before.get(name, {}), now)
        if _changed(d):
            out[name] = d
    return out


def _changed(d: Any) -> bool:
    if isinstance(d, dict):
        return any(_changed(v) for v in d.values())
    return isinstance(d, (int, float)) and not isinstance(d, bool) and d != 0


def _diff(old: Any, new: Any) -> Any:
    if isinstance(new, dict):
        res = {k: _diff(old.get(k) if isinstance(old, dict) else None, v) for k, v in new.items()}
        return {k: v for k, v in res.items() if v is not None}
    if isinstance(new, (int, float)) and not isinstance(new, bool):
        base = old if isinstance(old, (int, float)) and not isinstance(old, bool) else 0
        return new - base
    return new if new != old else None


def _exc_text(exc: BaseException | None) -> str:
    if exc is None:
        return ""
    if isinstance(exc, LLMEvalError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _relpath(path: Path, config: pytest.Config) -> str:
    try:
        return str(path.relative_to(config.rootpath))
    except ValueError:
        return str(path)


def _rel(text: str, config: pytest.Config) -> str:
    root = str(config.rootpath) + "/"
    return text.replace(root, "")
