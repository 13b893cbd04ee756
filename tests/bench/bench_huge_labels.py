"""F1 over huge outputs: string labels inside scikit-learn vs the metric's integer label codes.

    python tests/bench/bench_huge_labels.py          # --calls 20

Two cases whose outputs (and one reference) are ``size`` characters long. "strings" calls
``sklearn.metrics.f1_score`` on the normalised strings, as the metric did before; "codes" is
the metric's ``corpus`` (labels mapped to integers first). The bootstrap makes 1,000 such
calls per gate, so the last column is the time of one F1 gate's interval.
"""

from __future__ import annotations

import argparse
import time

from sklearn.metrics import f1_score

from pytest_llmeval.metrics.base import build_metric


def per_call(fn, calls: int) -> float:  # type: ignore[no-untyped-def]
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    metric = build_metric("f1", {"average": "macro"})
    print(f"{'size':>12} {'strings ms/call':>16} {'codes ms/call':>14} {'ratio':>8} "
          f"{'1,000 calls, strings':>21} {'1,000 calls, codes':>19}")
    for size in (1_000, 100_000, 1_000_000, 10 * 1024 * 1024):
        preds = ["a" * size, "b" * size]
        refs = [["a" * size], ["negative"]]
        y_true = [r[0].strip() for r in refs]
        y_pred = [p.strip() for p in preds]
        calls = args.calls if size <= 100_000 else 3
        strings = per_call(lambda t=y_true, p=y_pred: f1_score(t, p, average="macro", zero_division=0), calls)
        codes = per_call(lambda p=preds, r=refs: metric.corpus(p, r), args.calls)
        assert abs(f1_score(y_true, y_pred, average="macro", zero_division=0) - metric.corpus(preds, refs)) < 1e-12
        print(f"{size:>12,} {strings * 1e3:>16.1f} {codes * 1e3:>14.2f} {strings / codes:>7.0f}x "
              f"{strings * 1000:>20.0f}s {codes * 1000:>18.1f}s")


if __name__ == "__main__":
    main()
