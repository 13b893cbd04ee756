"""``outputs:<file.jsonl>``: outputs produced elsewhere (a batch job), evaluated as they are.

Each line is ``{"id": <case id>, "output": "..."}`` (``sample`` optional, for
``repeat: k``). Lookup is by case id, which the evaluator puts in each request
(:attr:`~pytest_llmeval.models.base.GenerationRequest.case_id`); a case without
an output is an ERROR for that case, naming the file.

A line may also say what the generation cost, as the job measured it:
``latency_s``, ``input_tokens``, ``output_tokens``, ``cost_usd`` (each optional,
``null`` for unknown). They become the request's
:class:`~pytest_llmeval.models.base.GenerationInfo` for latency and cost gates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError, ModelError, SpecError
from pytest_llmeval.models.base import (
    Generation,
    GenerationInfo,
    GenerationOutcome,
    GenerationRequest,
    ModelBase,
    OnGeneration,
    Progress,
)

INFO_FIELDS = ("latency_s", "input_tokens", "output_tokens", "cost_usd")
"""Optional per-line fields recorded by the job that produced the outputs."""


class OutputsModel(ModelBase):
    """Answers each request from the file, by its case id and sample index."""

    scheme = "outputs"
    needs_case_ids = True

    def __init__(self, path: Path, *, name: str, target: str, options: dict[str, Any]) -> None:
        super().__init__(name, target, options)
        self.path = path
        from pytest_llmeval.spec import read_jsonl

        try:
            rows = read_jsonl(path)
        except SpecError as exc:
            raise ConfigError(f"outputs:{target}: {exc}") from None
        self.outputs: dict[tuple[str, int], Generation] = {}
        field = options.get("field", "output")
        for rec, line in rows:
            if not isinstance(rec, dict) or "id" not in rec or not isinstance(rec.get(field), str):
                raise ConfigError(f"{path}:{line}: each line must be an object with 'id' and a string "
                                  f"'{field}'")
            try:
                info = GenerationInfo.from_dict({k: rec[k] for k in INFO_FIELDS if k in rec},
                                                where=f"{path}:{line}")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
            self.outputs[(str(rec["id"]), int(rec.get("sample", 0)))] = Generation(rec[field], info)
        self._sha = hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    def identity(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "target": self.target, "sha256": self._sha}

    def generate_with_info(self, requests: Sequence[GenerationRequest], progress: Progress | None = None,
                           on_result: OnGeneration | None = None) -> list[Generation]:
        """Each request's output from the file, by ``request.case_id``; a miss is that slot's error."""
        out: list[Generation] = []
        for i, req in enumerate(requests):
            out.append(self._lookup(req))
            if on_result is not None:
                on_result(i, out[-1])
        if progress is not None:
            progress(len(requests))
        return out

    def _lookup(self, req: GenerationRequest) -> Generation:
        cid = req.case_id
        if cid is None:
            return Generation(ModelError(f"outputs:{self.target} answers by case id, and this request "
                                         f"carries none (set GenerationRequest.case_id)"), GenerationInfo())
        found = self.outputs.get((cid, req.sample))
        if found is None:
            return Generation(ModelError(f"no output for case '{cid}' (sample {req.sample}) in {self.path}"),
                              GenerationInfo())
        return found

    def generate_for_cases(self, case_ids: Sequence[str],
                           requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        """Outputs for requests that do not carry their case id (``case_ids`` in the same order)."""
        tagged = [replace(r, case_id=c) for c, r in zip(case_ids, requests, strict=True)]
        return self.generate(tagged)


def load(target: str, *, name: str, options: dict[str, Any], base_dir: Path) -> OutputsModel:
    path = Path(target)
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise ConfigError(f"outputs:{target}: file not found (looked for {path})")
    return OutputsModel(path, name=name, target=target, options=options)
