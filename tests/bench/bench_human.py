"""Blind human evaluation: what a rating costs the server, and what the report costs.

- submit: one rating through the app (Starlette test client: form parsing, CSRF check,
  validation, an SQLite upsert in WAL mode with synchronous=FULL, the redirect), and the
  bare ``RatingStore.save`` beside it, so the share of the fsync is visible;
- page: one rating page rendered (queue, saved rating, Jinja2 with autoescape);
- analyse: the full report (win rate with bootstrap, sign test, criterion means with
  intervals, Krippendorff/Fleiss/Cohen on the preference and four criteria) for N items
  rated by 3 raters.

    python tests/bench/bench_human.py [--ratings 300] [--items 1000]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import tempfile
import time
from pathlib import Path

from starlette.testclient import TestClient

from pytest_llmeval.human.analysis import analyse
from pytest_llmeval.human.blindset import SourceCase, create_blind_set, write_blind_set
from pytest_llmeval.human.storage import Rating, RatingStore
from pytest_llmeval.human.webapp import create_app

CRITERIA = ("accuracy", "relevance", "format_compliance", "fluency")


def _set(n: int, tmp: Path, per_item: int = 3):  # type: ignore[no-untyped-def]
    cases = [SourceCase(f"c{i:05d}", f"prompt {i} " * 20, f"model output {i} " * 30, f"base output {i} " * 30)
             for i in range(n)]
    blind, mapping, tokens = create_blind_set(cases, model="m", baseline="b", raters=["a", "b", "c"],
                                              per_item=per_item, seed=0)
    write_blind_set(tmp, blind, mapping, tokens, force=True)
    return blind, mapping, tokens


def bench_submit(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        blind, _, tokens = _set(n, tmp / "set")
        client = TestClient(create_app(tmp / "set", tmp / "ratings.db"), follow_redirects=False)
        client.get(f"/login/{tokens['a']}")
        html = client.get("/rate/a/1").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
        page_t, post_t = [], []
        for pos in range(1, n + 1):
            t0 = time.perf_counter()
            client.get(f"/rate/a/{pos}")
            t1 = time.perf_counter()
            data = {"csrf": csrf, "item_id": blind.queues["a"][pos - 1], "preference": "A", "comment": ""}
            data.update({f"{s}.{c}": "4" for s in "AB" for c in CRITERIA})
            r = client.post(f"/rate/a/{pos}", data=data)
            t2 = time.perf_counter()
            assert r.status_code == 303
            page_t.append(t1 - t0)
            post_t.append(t2 - t1)
        store = RatingStore(tmp / "bare.db", blind.set_id)
        scores = {s: {c: 4 for c in CRITERIA} for s in "AB"}
        save_t = []
        for item in blind.queues["b"][:n]:
            t0 = time.perf_counter()
            store.save(Rating("b", item, scores, "B"))
            save_t.append(time.perf_counter() - t0)
    for name, xs in (("page GET", page_t), ("submit POST", post_t), ("RatingStore.save", save_t)):
        print(f"{name:<18} n={len(xs):<5} median {statistics.median(xs) * 1e3:6.2f} ms   "
              f"p95 {sorted(xs)[int(0.95 * len(xs))] * 1e3:6.2f} ms")


def bench_analyse(n: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        blind, mapping, _ = _set(n, Path(d) / "set")
    rng = random.Random(0)
    ratings = [Rating(r, i, {s: {c: rng.randint(1, 5) for c in CRITERIA} for s in "AB"},
                      rng.choice(["A", "B", "tie"]))
               for r, q in blind.queues.items() for i in q]
    import krippendorff  # noqa: F401  - imports are paid once per process; time the work alone
    import scipy.stats  # noqa: F401

    t0 = time.perf_counter()
    res = analyse(blind, mapping, ratings)
    dt = time.perf_counter() - t0
    print(f"analyse            {n} items x 3 raters ({len(ratings)} ratings): {dt:.2f} s "
          f"(win rate {res.win_rate.value:.3f}, alpha {res.agreement['preference'].alpha:.3f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--ratings", type=int, default=300)
    ap.add_argument("--items", type=int, default=1000)
    args = ap.parse_args()
    bench_submit(args.ratings)
    bench_analyse(args.items)


if __name__ == "__main__":
    main()
