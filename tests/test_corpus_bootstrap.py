"""The bootstrap's fast path (summed sufficient statistics) equals recomputing the corpus metric."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmeval.gates.metric import corpus_statistic
from pytest_llmeval.metrics import build_metric

WORDS = st.sampled_from("the cat sat on a mat dog ran far away quickly , .".split())
SENT = st.lists(WORDS, min_size=0, max_size=12).map(" ".join)


@settings(max_examples=40, deadline=None)
@given(data=st.lists(st.tuples(SENT, st.lists(SENT, min_size=1, max_size=3)), min_size=1, max_size=25),
       seed=st.integers(0, 1000))
def test_sacrebleu_stats_resample_equals_corpus_score(data, seed) -> None:
    preds = [p for p, _ in data]
    refs = [r for _, r in data]
    rng = np.random.default_rng(seed)
    for name in ("sacrebleu", "chrf"):
        metric = build_metric(name, {})
        fast = corpus_statistic(metric, preds, refs)
        for _ in range(3):
            idx = rng.integers(0, len(preds), size=len(preds))
            slow = metric.corpus([preds[i] for i in idx], [refs[i] for i in idx])
            assert fast(idx) == slow
