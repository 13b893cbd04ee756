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
from pytest_llmeval.evaluate import GateOutcome, Skip, SuiteEvaluator, SuiteOutcome, format_case
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

    def collect(self) -> Any:
        # Markers live on the file node: items inherit them, and 100k items stay cheap to build.
        self.add_marker(pytest.mark.llmeval)
        self.add_marker(pytest.mark.xdist_group(name=f"llmeval:{self.path}"))
        try:
            defaults = parse_metric_shorthand(self.config.getini("llmeval_metrics"))
            self.suite = load_suite(self.path, default_metrics=defaults)
        except SpecError as exc:
            self.config.stash[SESSION_KEY].bad_suites += 1
            if exc.path is None:
                exc = SpecError(exc.message, path=str(self.path), line=exc.line, key=exc.key)
            raise self.CollectError(_rel(exc.format(), self.config)) from None
        except ConfigError as exc:
            self.config.stash[SESSION_KEY].bad_suites += 1
            raise self.CollectError(f"{self.path}: {exc}") from None
        suite = self.suite
        gates = [GateItem.from_parent(self, name=g.name, gate_name=g.name, line=g.line) for g in suite.gates]
        if suite.spec.judge is not None:
            if suite.spec.judge.score is not None:
                gates.append(GateItem.from_parent(self, name="judge_score", gate_name="judge_score",
                                                  line=None))
            if suite.spec.judge.pairwise is not None:
                name = self.win_rate_name()
                gates.append(GateItem.from_parent(self, name=name, gate_name=name, line=None))
        if suite.spec.contamination is not None:
            gates.append(GateItem.from_parent(self, name="contamination", gate_name="contamination",
                                              line=None))
        self._mark_xfail(gates)
        for index, case in enumerate(suite.cases):
            yield CaseItem.from_parent(self, name=f"case[{case.id}]", case_index=index)
        yield from gates

    def _mark_xfail(self, gates: list[GateItem]) -> None:
        """``xfail: {gate: reason}``: a gate expected to fail (strict: an unexpected pass fails)."""
        by_name = {g.gate_name: g for g in gates}
        for name, reason in self.suite.spec.xfail.items():
            gate = by_name.get(name)
            if gate is None:
                import difflib

                close = difflib.get_close_matches(name, list(by_name), n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise self.CollectError(f"{_relpath(self.path, self.config)}: xfail names '{name}', which is "
                                        f"not a gate of this suite.{hint} Gates: {', '.join(by_name)}")
            gate.add_marker(pytest.mark.xfail(reason=reason, strict=True))

    def win_rate_name(self) -> str:
        spec = self.suite.spec
        session = self.config.stash[SESSION_KEY]
        model = spec.model or session.option("llmeval_model", "llmeval_model") or "llm_model"
        assert spec.judge is not None and spec.judge.pairwise is not None
        against = spec.judge.pairwise.against
        if against == "baseline":
            against = (spec.baseline or session.option("llmeval_baseline", "llmeval_baseline")
                       or "llm_baseline")
        return f"win_rate[{model}>{against}]"

    # ------------------------------------------------------------------ evaluation

    def evaluate(self, item: LLMEvalItem) -> SuiteOutcome:
        if self.outcome is None:
            self.outcome = self._evaluate(item)
        return self.outcome

    def _selected(self, item: LLMEvalItem) -> tuple[set[str], set[str]]:
        mine = [i for i in item.session.items if isinstance(i, LLMEvalItem) and i.parent is self]
        cases = {self.suite.cases[i.case_index].id for i in mine if isinstance(i, CaseItem)}
        gates = {i.gate_name for i in mine if isinstance(i, GateItem)}
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
            options = dict(jspec.options)
            for key in ("prompt_score", "prompt_pairwise"):
                if getattr(jspec, key) is not None:
                    options[key] = getattr(jspec, key)
            try:
                if jspec.model:
                    return session.load_judge(jspec.model, options, suite.base_dir)
                return item.fixture("llm_judge")
            except NoJudgeConfigured as exc:
                raise Skip(str(exc)) from None
            except Exception as exc:
                if type(exc).__name__ == "MissingAPIKey":
                    raise Skip(str(exc)) from None
                raise

        cases, gates = self._selected(item)
        evaluator = SuiteEvaluator(suite, model, baseline=baseline, judge_provider=judge, seed=session.seed,
                                   progress=session.progress(),
                                   win_rate_key=self.win_rate_name() if spec.judge and spec.judge.pairwise
                                   else None)
        outcome = evaluator.run(selected=cases, gates_selected=gates)
        outcome.models.setdefault(model.name, {})
        self.usage = session.usage()
        return outcome

    def meta(self) -> dict[str, Any]:
        """Suite-level facts every payload carries (computed once the suite is evaluated)."""
        cached = getattr(self, "_meta", None)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        suite = self.suite
        outcome = self.outcome
        session = self.config.stash[SESSION_KEY]
        model = next(iter(outcome.models), None) if outcome else None
        baseline = None
        if outcome and len(outcome.models) > 1:
            baseline = list(outcome.models)[1]
        meta = {
            "name": suite.name, "file": _relpath(self.path, self.config), "model": model,
            "baseline": baseline or suite.spec.baseline, "n_cases": len(suite.cases),
            "suite_hash": suite.suite_hash, "models": outcome.models if outcome else {},
            "warnings": list(outcome.warnings) if outcome else [],
            "usage": getattr(self, "usage", None) or session.usage(),
            "error": _exc_text(outcome.fatal) if outcome and outcome.fatal else None,
        }
        if outcome is not None:
            self._meta = meta
        return meta

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, 0, str(self.path.name)


class LLMEvalItem(pytest.Item):
    """Shared behaviour of case and gate items: fixtures, payloads, readable failures."""

    parent: SuiteFile

    def __init__(self, *, line: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._line = line
        self._llm_request: Any = None

    def fixture(self, name: str) -> Any:
        """A fixture's value as this item sees it (so conftest overrides apply to YAML suites)."""
        if self._llm_request is None:
            from _pytest.fixtures import TopRequest

            fm = self.session._fixturemanager
            self._fixtureinfo = fm.getfixtureinfo(node=self, func=None, cls=None)
            self.fixturenames = self._fixtureinfo.names_closure
            self.funcargs: dict[str, Any] = {}
            self._llm_request = TopRequest(self, _ispytest=True)  # type: ignore[arg-type]
        return self._llm_request.getfixturevalue(name)

    def outcome(self) -> SuiteOutcome:
        outcome = self.parent.evaluate(self)
        if outcome.fatal is not None:
            raise EvalError(f"the suite could not be evaluated: {_exc_text(outcome.fatal)}")
        return outcome

    def llmeval_attach(self, report: pytest.TestReport) -> None:
        """Attach this item's payload to the report that decides its outcome."""
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

    def _repr_failure_py(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        # Setup errors (model/judge failures) read as messages, not tracebacks from inside the package.
        if isinstance(excinfo.value, (EvalFailure, EvalError, LLMEvalError)):
            return str(excinfo.value)
        return super()._repr_failure_py(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, (self._line - 1) if self._line else None, f"{self.path.name}::{self.name}"


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
        if gate.skip:
            pytest.skip(gate.skip)
        agg = gate.aggregate
        if agg.value is not None:
            self.user_properties.append((f"llmeval.{self.gate_name}", agg.value))
            if agg.ci:
                self.user_properties.append((f"llmeval.{self.gate_name}.ci",
                                             f"{agg.ci[0]:.4f},{agg.ci[1]:.4f}"))
            self.user_properties.append((f"llmeval.{self.gate_name}.n", agg.n))
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
        agg = gate.aggregate.to_dict()
        if gate.skip:
            agg["details"] = {**agg.get("details", {}), "skipped": gate.skip}
        xfail = self.get_closest_marker("xfail")
        if xfail is not None:
            agg["details"] = {**agg.get("details", {}), "xfail": xfail.kwargs.get("reason", "")}
        return {"type": "gate", "suite": self.parent.meta(), "aggregate": agg,
                "categories": [c.to_dict() for c in gate.categories], "report": gate.report}


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
