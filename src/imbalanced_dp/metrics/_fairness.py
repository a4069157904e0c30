"""Fairness between the two classes, per run.

Label 0 is the majority class and label 1 the minority (the positive, "disease present"
class) throughout imbalanced-dp. For one trained model, from its per-class report:

- **recall gap** = recall(majority) − recall(minority): how much more often the model finds
  a majority example than a minority one (0 is parity; positive hurts the minority);
- **worst-class recall** = min(recall(majority), recall(minority));
- **IBA gap** = IBA(majority) − IBA(minority), the same for the index of balanced accuracy;
- **minority recall** and **balanced accuracy**, the two numbers a clinician reads first.

Aggregates over seeds (means, confidence intervals, paired differences such as the cost of
privacy and disparity amplification) are computed from these in
:mod:`imbalanced_dp.studies`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

#: The per-run fairness measures, in the order reports show them.
FAIRNESS = ("recall_gap", "worst_recall", "iba_gap", "minority_recall", "balanced_accuracy")


def recall_gap(recall_majority, recall_minority):
    """recall(majority) − recall(minority), elementwise.

    >>> float(recall_gap(0.9, 0.6))
    0.30000000000000004
    """
    return np.subtract(recall_majority, recall_minority)


def fairness_per_run(frame: pd.DataFrame, keys: Sequence[str] = ()) -> pd.DataFrame:
    """The fairness measures of every run of ``frame``.

    Parameters
    ----------
    frame : DataFrame
        One row per run × class (``run_id``, ``class`` in ``"0"``, ``"1"``, ``rec``,
        ``iba``, ``balanced_accuracy``), as a results store gives it.
    keys : sequence of str
        Columns to carry over from the majority class's row (settings, seed).

    Returns
    -------
    DataFrame
        One row per run with both classes: ``run_id``, ``keys``, and :data:`FAIRNESS`.
    """
    c0 = frame[frame["class"] == "0"].set_index("run_id")
    c1 = frame[frame["class"] == "1"].set_index("run_id")
    common = c0.index.intersection(c1.index)
    c0, c1 = c0.loc[common], c1.loc[common]
    out = c0[list(keys)].copy()
    out["recall_gap"] = recall_gap(c0["rec"], c1["rec"])
    out["worst_recall"] = np.minimum(c0["rec"], c1["rec"])
    out["iba_gap"] = c0["iba"] - c1["iba"]
    out["minority_recall"] = c1["rec"]
    out["balanced_accuracy"] = c0["balanced_accuracy"]
    return out.reset_index()
