"""``outputs:<file.jsonl>``: outputs produced elsewhere (a batch job), evaluated as they are.

Each line is ``{"id": <case id>, "output": "..."}`` (``sample`` optional, for
``repeat: k``). Lookup is by case id, so the evaluator passes the id in the
request; a case without an output is an ERROR for that case, naming the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llmeval.errors import ConfigError, ModelError, SpecError
from pytest_llmeval.models.base import GenerationOutcome, GenerationRequest, ModelBase


class OutputsModel(ModelBase):
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
        self.outputs: dict[tuple[str, int], str] = {}
        field = options.get("field", "output")
        for rec, line in rows:
            if not isinstance(rec, dict) or "id" not in rec or not isinstance(rec.get(field), str):
                raise ConfigError(f"{path}:{line}: each line must be an object with 'id' and a string "
                                  f"'{field}'")
            self.outputs[(str(rec["id"]), int(rec.get("sample", 0)))] = rec[field]
        self._sha = hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    def identity(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "target": self.target, "sha256": self._sha}

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        raise ModelError("outputs: models answer by case id; the evaluator calls generate_for_cases")

    def generate_for_cases(self, case_ids: Sequence[str],
                           requests: Sequence[GenerationRequest]) -> list[GenerationOutcome]:
        out: list[GenerationOutcome] = []
        for cid, req in zip(case_ids, requests, strict=True):
            text = self.outputs.get((cid, req.sample))
            if text is None and req.sample == 0:
                text = self.outputs.get((cid, 0))
            out.append(text if text is not None else
                       ModelError(f"no output for case '{cid}' (sample {req.sample}) in {self.path}"))
        return out


def load(target: str, *, name: str, options: dict[str, Any], base_dir: Path) -> OutputsModel:
    path = Path(target)
    if not path.is_absolute():
        path = base_dir / path
    if not path.is_file():
        raise ConfigError(f"outputs:{target}: file not found (looked for {path})")
    return OutputsModel(path, name=name, target=target, options=options)
