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
    )


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
