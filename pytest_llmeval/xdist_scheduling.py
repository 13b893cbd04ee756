"""xdist scheduling that keeps each eval suite on one worker.

A suite generates all its cases in one batch; splitting its items across
workers would generate cases twice and pay the model's start-up on every
worker. Eval items are grouped by file; every other test is its own scope,
so ordinary tests still spread like ``--dist load``.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from xdist.scheduler import LoadScopeScheduling


class SuiteScheduling(LoadScopeScheduling):
    def __init__(self, config: Any, log: Any = None) -> None:
        super().__init__(config, log)
        self.patterns = config.getini("llmeval_patterns")

    def _split_scope(self, nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        name = path.rsplit("/", 1)[-1]
        if any(fnmatch.fnmatch(name, p) for p in self.patterns):
            return path
        return nodeid
