"""Per-class metrics of the study, computed by imbalanced-learn.

For each class c, treating c as positive: precision ``pre``, recall ``rec``, specificity
``spe``, ``f1``, the geometric mean of sensitivity and specificity ``geo = sqrt(rec * spe)``,
the index of balanced accuracy with alpha = 0.1 on the squared geo
``iba = (1 + 0.1 (rec - spe)) geo**2``, and the support ``sup``; then an ``avg/total`` row
with each column averaged over the classes weighted by support. This is exactly
``imblearn.metrics.classification_report_imbalanced`` with its defaults, which is what we call.
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
    from imblearn.metrics import classification_report_imbalanced

    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    d = classification_report_imbalanced(
        y_true, y_pred, labels=list(labels), output_dict=True, zero_division=0
    )
    rows = {}
    for c in labels:
        r = d[str(c)]
        rows[str(c)] = [float(r[m]) for m in METRICS] + [int(r["sup"])]
    rows[AVG_LABEL] = [float(d[f"avg_{m}"]) for m in METRICS] + [int(d["total_support"])]
    df = pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))
    df["sup"] = df["sup"].astype(int)
    df.index.name = "class"
    return df


def run_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Overall ``accuracy`` and ``balanced_accuracy`` (mean recall over the classes)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score

    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
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
