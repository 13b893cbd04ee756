"""Classification metrics: ``precision``, ``recall`` and ``f1`` computed by scikit-learn.

Each case's first reference is its label. Predictions and labels are normalised
as for ``exact_match`` (``strip`` on by default, ``normalize`` for more) before
scoring, because models often answer "Positive " or "positive." for "positive".
These are corpus metrics: the value is computed over the whole set (macro F1 is
not a mean of per-case scores); the per-case score shown on each case is 1 when
the prediction is the label, else 0. The report is sklearn's
``classification_report``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pytest_llmeval.errors import ConfigError
from pytest_llmeval.metrics._options import checked_options, choice, string_list
from pytest_llmeval.metrics.base import Metric, References, register_metric
from pytest_llmeval.metrics.match import Normalizer
from pytest_llmeval.sanitize import display

AVERAGES = ("macro", "micro", "weighted")
LABEL_SHOWN = 40
"""Characters of a label shown in the classification report."""


def _classifier(name: str, average: str, labels: Any, strip: Any, normalize: Any) -> Metric:
    average = choice(name, "average", average, AVERAGES)
    norm = Normalizer(name, strip, normalize)
    label_list = None
    if labels is not None:
        label_list = [norm(lab) for lab in string_list(name, "labels", labels)]
        if not label_list:
            raise ConfigError(f"metric '{name}': option 'labels' must list at least one label.")

    def split(
        predictions: Sequence[str], references: Sequence[References]
    ) -> tuple[list[int], list[int], list[int] | None, list[str]]:
        """Labels as integer codes (and the code list of ``labels``, and each code's name).

        sklearn copies string labels into fixed-width numpy arrays as wide as the
        longest label, so two 10 MB outputs cost gigabytes and minutes per call;
        integer codes keep every call proportional to the number of cases.
        """
        codes: dict[str, int] = {lab: i for i, lab in enumerate(label_list or [])}
        y_pred = [codes.setdefault(norm(p), len(codes)) for p in predictions]
        y_true = [codes.setdefault(norm(refs[0]), len(codes)) for refs in references]
        known = list(range(len(label_list))) if label_list is not None else None
        return y_true, y_pred, known, list(codes)

    def score_case(prediction: str, references: References) -> float:
        return 1.0 if norm(prediction) == norm(references[0]) else 0.0

    def score_corpus(predictions: Sequence[str], references: Sequence[References]) -> float:
        if not predictions:
            return float("nan")
        from sklearn import metrics as skm

        scorer: Callable[..., Any] = {
            "precision": skm.precision_score,
            "recall": skm.recall_score,
            "f1": skm.f1_score,
        }[name]
        y_true, y_pred, known, _ = split(predictions, references)
        return float(scorer(y_true, y_pred, average=average, labels=known, zero_division=0))

    def statistics(predictions: Sequence[str], references: Sequence[References]) -> Any:
        y_true, y_pred, known, _ = split(predictions, references)
        return confusion_statistics(y_true, y_pred, name, average, known)

    def report(predictions: Sequence[str], references: Sequence[References]) -> str:
        from sklearn.metrics import classification_report

        y_true, y_pred, known, names = split(predictions, references)
        shown = known if known is not None else sorted(set(y_true) | set(y_pred), key=names.__getitem__)
        # Labels are model outputs: shown escaped and cut, so the report stays a readable table.
        target_names = [display(names[c], LABEL_SHOWN, multiline=False) for c in shown]
        return str(classification_report(y_true, y_pred, labels=shown, target_names=target_names,
                                         zero_division=0))

    return Metric(
        name=name,
        kind="corpus",
        score_case=score_case,
        score_corpus=score_corpus,
        report=report,
        options={"average": average, "labels": label_list, **norm.options()},
        statistics=statistics,
    )


def confusion_statistics(y_true: Sequence[Any], y_pred: Sequence[Any], score: str, average: str,
                         labels: Sequence[Any] | None = None, zero_division: float = 0.0) -> Any:
    """Per-case sufficient statistics of sklearn's ``precision``/``recall``/``f1`` (``score``).

    Each case adds one cell of the confusion matrix; the table keeps, per label,
    the cell's row (true label), column (predicted label) and diagonal (a hit),
    whose sums are sklearn's ``true_sum``, ``pred_sum`` and ``tp_sum``. Without
    ``labels`` sklearn scores the labels present in the cases given, so a resample
    that misses a label averages over the others, as sklearn would on it.
    """
    import numpy as np

    from pytest_llmeval.metrics.resample import CaseStatistics

    universe = sorted(set(y_true) | set(y_pred) | set(labels or ()))
    position = {label: i for i, label in enumerate(universe)}
    width = len(universe)
    t = np.array([position[y] for y in y_true], dtype=np.intp)
    p = np.array([position[y] for y in y_pred], dtype=np.intp)
    rows = np.arange(len(t))
    table = np.zeros((len(t), 3 * width))
    table[rows, t] = 1.0
    table[rows, width + p] = 1.0
    hit = t == p
    table[rows[hit], 2 * width + t[hit]] = 1.0
    selected = np.arange(width) if labels is None else np.array([position[lab] for lab in labels],
                                                                 dtype=np.intp)

    def from_sums(sums: Any, last: Any) -> Any:
        return prf_from_sums(sums[:, 2 * width + selected], sums[:, width + selected], sums[:, selected],
                             score, average, zero_division, only_present=labels is None)

    return CaseStatistics(table, from_sums)


def prf_from_sums(tp: Any, pred: Any, true: Any, score: str, average: str, zero_division: float,
                  only_present: bool) -> Any:
    """sklearn's ``precision_recall_fscore_support`` arithmetic on ``R x labels`` count sums.

    The same float operations in the same order as sklearn (1.3-1.9), so the values
    are the library's bit for bit: division with ``zero_division`` where the
    denominator is 0, F1 as ``2 tp / (true + pred)``, then ``nanmean`` (macro) or a
    ``true_sum``-weighted average that falls back to the plain mean when no label
    is true (weighted). ``only_present``: average over labels present in each row
    (sklearn's labels when none are given), summing them in sklearn's order.
    """
    import numpy as np

    if average == "micro":
        tp, pred, true = (a.sum(axis=1, keepdims=True) for a in (tp, pred, true))
    if score == "precision":
        values = _divide(tp, pred, zero_division)
    elif score == "recall":
        values = _divide(tp, true, zero_division)
    else:
        values = _divide(2.0 * tp, 1.0 * true + pred, zero_division)
    n_rows, width = values.shape
    nan = np.isnan(values)
    keep = ~nan if average == "weighted" else np.ones_like(nan)
    if only_present and average != "micro":
        keep &= (true + pred) > 0
    out = np.full(n_rows, np.nan)
    patterns, inverse = np.unique(keep, axis=0, return_inverse=True)
    for k, pattern in enumerate(patterns):
        rows = np.flatnonzero(inverse.reshape(-1) == k)
        cols = np.flatnonzero(pattern)
        if len(cols) == 0:
            continue
        a = values[np.ix_(rows, cols)]
        if average == "weighted":
            w = true[np.ix_(rows, cols)]
            scale = np.sum(w, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[rows] = np.where(scale == 0.0, np.mean(a, axis=1), np.sum(a * w, axis=1) / scale)
        else:
            missing = np.isnan(a)
            count = np.sum(~missing, axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[rows] = np.where(count == 0, np.nan, np.sum(np.where(missing, 0.0, a), axis=1) / count)
    return out


def _divide(numerator: Any, denominator: Any, zero_division: float) -> Any:
    """sklearn's ``_prf_divide``: ``numerator / denominator``, ``zero_division`` where it is 0."""
    import numpy as np

    mask = denominator == 0
    result = np.asarray(numerator, dtype=np.float64) / np.where(mask, 1.0, denominator)
    result[mask] = zero_division
    return result


@register_metric("precision")
@checked_options("precision")
def precision(
    average: str = "macro", labels: Any = None, strip: Any = True, normalize: Any = ()
) -> Metric:
    """sklearn ``precision_score`` with ``average`` macro (default), micro or weighted."""
    return _classifier("precision", average, labels, strip, normalize)


@register_metric("recall")
@checked_options("recall")
def recall(
    average: str = "macro", labels: Any = None, strip: Any = True, normalize: Any = ()
) -> Metric:
    """sklearn ``recall_score`` with ``average`` macro (default), micro or weighted."""
    return _classifier("recall", average, labels, strip, normalize)


@register_metric("f1")
@checked_options("f1")
def f1(
    average: str = "macro", labels: Any = None, strip: Any = True, normalize: Any = ()
) -> Metric:
    """sklearn ``f1_score`` with ``average`` macro (default), micro or weighted."""
    return _classifier("f1", average, labels, strip, normalize)
