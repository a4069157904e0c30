"""Per-class metrics of the study, computed by imbalanced-learn.

For each class c, treating c as positive: precision ``pre``, recall ``rec``, specificity
``spe``, ``f1``, the geometric mean of sensitivity and specificity ``geo = sqrt(rec * spe)``,
the index of balanced accuracy with alpha = 0.1 on the squared geo
``iba = (1 + 0.1 (rec - spe)) geo**2``, and the support ``sup``; then an ``avg/total`` row
with each column averaged over the classes weighted by support. These are the definitions of
``imblearn.metrics.classification_report_imbalanced`` with its defaults (the tests compare
the two on random and edge cases); computed here with numpy from the confusion counts, so
that a run does not import scikit-learn. A ratio with nothing behind it (the precision of a
class never predicted) is 0, as imbalanced-learn's ``zero_division=0``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS: tuple[str, ...] = ("pre", "rec", "spe", "f1", "geo", "iba")
COLUMNS: tuple[str, ...] = (*METRICS, "sup")
AVG_LABEL = "avg/total"


def per_class_report(
    y_true: np.ndarray, y_pred: np.ndarray, *, labels: tuple[int, ...] = (0, 1)
) -> pd.DataFrame:
    """The study's per-class table for one model's predictions.

    Returns a DataFrame indexed by class label as text (``"0"``, ``"1"``) and ``"avg/total"``,
    with columns ``pre, rec, spe, f1, geo, iba, sup``. A class that is never predicted gets
    precision 0 (imbalanced-learn's value, without its warning).

    Examples
    --------
    >>> import numpy as np
    >>> from imbalanced_dp import per_class_report
    >>> report = per_class_report(np.array([0, 0, 0, 1, 1, 0, 1]),
    ...                           np.array([0, 1, 0, 1, 0, 0, 0]))
    >>> report.loc["1", ["pre", "rec", "spe"]].round(4).tolist()
    [0.5, 0.3333, 0.75]
    """
    import warnings

    from ..exceptions import UndefinedMetricWarning

    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"y_true and y_pred have different lengths: {len(y_true)} and {len(y_pred)}"
        )
    rows = {}
    undefined = []
    for c in labels:
        truth, pred = y_true == c, y_pred == c
        tp = int(np.sum(truth & pred))
        fp = int(np.sum(~truth & pred))
        fn = int(np.sum(truth & ~pred))
        tn = int(np.sum(~truth & ~pred))
        if tp + fn == 0 or tn + fp == 0:
            undefined.append(str(c))
        pre, rec, spe = _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(tn, tn + fp)
        f1 = _ratio(2 * pre * rec, pre + rec)
        geo = float(np.sqrt(rec * spe))
        iba = (1 + 0.1 * (rec - spe)) * geo**2
        rows[str(c)] = [pre, rec, spe, f1, geo, iba, tp + fn]
    if undefined:
        warnings.warn(
            f"the truth has no example of some class (class {', '.join(undefined)} or the "
            "others): recall or specificity is undefined there and set to 0",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    sup = np.array([rows[str(c)][-1] for c in labels], dtype=np.float64)
    total = int(sup.sum())
    avg = [
        float(np.dot([rows[str(c)][j] for c in labels], sup) / total) if total else 0.0
        for j in range(len(METRICS))
    ]
    rows[AVG_LABEL] = [*avg, total]
    df = pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))
    df["sup"] = df["sup"].astype(int)
    df.index.name = "class"
    return df


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b > 0 else 0.0


def run_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Overall ``accuracy`` and ``balanced_accuracy`` (the mean recall over the classes
    present in ``y_true``, as scikit-learn's ``balanced_accuracy_score``)."""
    y_true = np.asarray(y_true).ravel()
    y_pred = np.asarray(y_pred).ravel()
    recalls = [float(np.mean(y_pred[y_true == c] == c)) for c in np.unique(y_true)]
    return {
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": float(np.mean(recalls)),
    }


def format_report(report: pd.DataFrame, *, class_names: tuple[str, ...] | None = None) -> str:
    """The per-class table as aligned text, like imbalanced-learn prints it."""
    names = []
    for idx in report.index:
        if class_names is not None and idx != AVG_LABEL:
            names.append(f"{idx} ({class_names[int(idx)]})")
        else:
            names.append(str(idx))
    width = max(len(n) for n in names) + 2
    head = " " * width + "".join(f"{c:>9}" for c in COLUMNS)
    lines = [head]
    for name, (_, row) in zip(names, report.iterrows()):
        cells = "".join(f"{row[m]:>9.3f}" for m in METRICS) + f"{int(row['sup']):>9d}"
        lines.append(f"{name:<{width}}{cells}")
    return "\n".join(lines)
