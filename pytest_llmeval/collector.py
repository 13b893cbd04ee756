"""The run collector: item payloads in, one :class:`~pytest_llmeval.results.RunResult` out.

Pytest-free. Under xdist the workers attach payloads to their reports and the
controller feeds them here; serial runs feed the same payloads, so both build
the same results. Usage is summed over suites (each payload carries what its
suite's evaluation added), so a run split over workers reports what a serial
run reports.
"""

from __future__ import annotations

from typing import Any

from pytest_llmeval.results import AggregateResult, CaseResult, RunResult, SuiteResult


class RunCollector:
    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    def add(self, nodeid: str, payload: dict[str, Any]) -> None:
        self.records[nodeid] = payload

    def __bool__(self) -> bool:
        return bool(self.records)

    def regressions(self) -> list[dict[str, Any]]:
        return [p for p in self.records.values() if p.get("type") == "regression"]

    def build(self, settings: dict[str, Any]) -> RunResult:
        suites: dict[str, SuiteResult] = {}
        order: dict[str, list[tuple[int, CaseResult]]] = {}
        models: dict[str, Any] = {}
        usage_by_suite: dict[str, dict[str, Any]] = {}
        for payload in self.records.values():
            meta = payload["suite"]
            sr = suites.get(meta["file"])
            if sr is None:
                sr = suites[meta["file"]] = SuiteResult(
                    name=meta["name"], file=meta["file"], model=meta.get("model"),
                    baseline=meta.get("baseline"), n_cases=meta.get("n_cases", 0),
                    suite_hash=meta.get("suite_hash"), error=meta.get("error"), split=meta.get("split"))
                order[meta["file"]] = []
            for w in meta.get("warnings", []):
                if w not in sr.warnings:
                    sr.warnings.append(w)
            models.update(meta.get("models", {}))
            if meta.get("usage"):
                usage_by_suite[meta["file"]] = meta["usage"]
            if payload["type"] == "case":
                order[meta["file"]].append((payload["index"], CaseResult.from_dict(payload["case"])))
            elif payload["type"] == "gate":
                agg = AggregateResult.from_dict(payload["aggregate"])
                sr.aggregates.append(agg)
                if payload.get("categories"):
                    sr.categories[agg.name] = [AggregateResult.from_dict(c) for c in payload["categories"]]
                if payload.get("report"):
                    sr.reports[agg.name] = payload["report"]
        for file, sr in suites.items():
            sr.cases = [c for _, c in sorted(order[file], key=lambda t: t[0])]
        usage: dict[str, Any] = {}
        for file in sorted(usage_by_suite):
            for name, u in usage_by_suite[file].items():
                usage[name] = add_usage(usage.get(name, {}), u)
        regressions = sorted((p["comparison"] for p in self.regressions()),
                             key=lambda r: (str(r.get("suite")), str(r.get("gate"))))
        return RunResult(suites=sorted(suites.values(), key=lambda s: s.file), models=models,
                         settings=settings, usage=usage, regressions=regressions)


def add_usage(a: Any, b: Any) -> Any:
    """Counters summed key by key (nested mappings too); other values: the latest wins."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = add_usage(a.get(k), v) if k in a else v
        return out
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return a + b
    return b
