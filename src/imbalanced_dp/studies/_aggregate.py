"""Aggregates over seeds: means with confidence intervals, fairness measures, the cost of
privacy and disparity amplification, with paired tests.

Every function takes and returns plain DataFrames; rendering lives in
:mod:`imbalanced_dp.reports`.

Settings are identified by ``dataset``, ``fraction`` (the target minority fraction as text,
``"natural"`` for none), ``privacy`` (``"none"`` or the target ε as text, e.g. ``"2"``) and
``mitigation``. Paired comparisons match runs of the same setting and seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..metrics import METRICS, mean_ci, paired_difference
from ._store import ResultsStore

SETTING = ["dataset", "fraction", "privacy", "mitigation"]
RUN_METRICS = ("accuracy", "balanced_accuracy")


def privacy_label(epsilon) -> str:
    if epsilon is None or (isinstance(epsilon, float) and np.isnan(epsilon)):
        return "none"
    return f"{float(epsilon):g}"


def fraction_label(target) -> str:
    if target is None or (isinstance(target, float) and np.isnan(target)):
        return "natural"
    return f"{float(target):g}"


def store_frame(store: ResultsStore, run_ids=None) -> pd.DataFrame:
    """One row per done run × class, with setting labels and the run-level scores."""
    df = store.query(
        "SELECT r.run_id, r.dataset, r.minority_fraction_target, r.minority_fraction, "
        "r.privacy, r.epsilon_target, r.epsilon_spent, r.mitigation, r.seed, r.engine, "
        'r.accuracy, r.balanced_accuracy, m."class", m.pre, m.rec, m.spe, m.f1, m.geo, '
        "m.iba, m.sup FROM runs r JOIN class_metrics m ON m.run_id = r.run_id "
        "WHERE r.status = 'done' ORDER BY r.rowid"
    )
    if run_ids is not None:
        df = df[df["run_id"].isin(set(run_ids))]
    return label_settings(df)


def label_settings(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df["fraction"] = [fraction_label(v) for v in df["minority_fraction_target"]]
    df["privacy"] = [privacy_label(v) for v in df["epsilon_target"]]
    return df


def privacy_order(labels) -> list[str]:
    """``none`` first, then ε from largest (least private) to smallest."""
    eps = sorted({x for x in labels if x != "none"}, key=float, reverse=True)
    return (["none"] if "none" in set(labels) else []) + eps


def fraction_order(labels) -> list[str]:
    fr = sorted({x for x in labels if x != "natural"}, key=float, reverse=True)
    return (["natural"] if "natural" in set(labels) else []) + fr


def aggregate_metrics(df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Mean, standard deviation, n and CI of each per-class metric (and accuracy and
    balanced accuracy on the ``avg/total`` rows) per setting and class.

    Returns long format: ``dataset, fraction, privacy, mitigation, class, metric, mean, std,
    n, half_width, low, high``.
    """
    rows = []
    for key, g in df.groupby([*SETTING, "class"], sort=False):
        metrics = list(METRICS)
        if key[-1] == "avg/total":
            metrics += list(RUN_METRICS)
        for m in metrics:
            iv = mean_ci(g[m].to_numpy(dtype=float), confidence=confidence)
            rows.append(
                dict(zip([*SETTING, "class"], key))
                | {
                    "metric": m,
                    "mean": iv.mean,
                    "std": iv.std,
                    "n": iv.n,
                    "half_width": iv.half_width,
                    "low": iv.low,
                    "high": iv.high,
                }
            )
    return pd.DataFrame(rows)


def fairness_per_run(df: pd.DataFrame) -> pd.DataFrame:
    """Per run: recall gap (majority − minority), worst-class recall, IBA gap, plus the
    minority class's recall and the balanced accuracy. Class 0 is the majority (label 1 is
    the minority by convention)."""
    c0 = df[df["class"] == "0"].set_index("run_id")
    c1 = df[df["class"] == "1"].set_index("run_id")
    common = c0.index.intersection(c1.index)
    c0, c1 = c0.loc[common], c1.loc[common]
    out = c0[[*SETTING, "seed"]].copy()
    out["recall_gap"] = c0["rec"] - c1["rec"]
    out["worst_recall"] = np.minimum(c0["rec"], c1["rec"])
    out["iba_gap"] = c0["iba"] - c1["iba"]
    out["minority_recall"] = c1["rec"]
    out["balanced_accuracy"] = c0["balanced_accuracy"]
    return out.reset_index()


FAIRNESS = ("recall_gap", "worst_recall", "iba_gap", "minority_recall", "balanced_accuracy")


def aggregate_fairness(df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Mean and CI of the fairness measures per setting (long format, ``measure`` column)."""
    fr = fairness_per_run(df)
    rows = []
    for key, g in fr.groupby(SETTING, sort=False):
        for m in FAIRNESS:
            iv = mean_ci(g[m].to_numpy(dtype=float), confidence=confidence)
            rows.append(
                dict(zip(SETTING, key))
                | {
                    "measure": m,
                    "mean": iv.mean,
                    "std": iv.std,
                    "n": iv.n,
                    "half_width": iv.half_width,
                    "low": iv.low,
                    "high": iv.high,
                }
            )
    return pd.DataFrame(rows)


def _paired(a: pd.DataFrame, b: pd.DataFrame, on: list[str], value: str, confidence: float) -> dict:
    m = a.merge(b, on=on, suffixes=("_a", "_b"))
    pt = paired_difference(
        m[f"{value}_a"].to_numpy(float), m[f"{value}_b"].to_numpy(float), confidence=confidence
    )
    iv = pt.interval
    return {
        "mean": iv.mean,
        "half_width": iv.half_width,
        "low": iv.low,
        "high": iv.high,
        "n": iv.n,
        "p_value": pt.p_value,
    }


def cost_of_privacy(df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per DP setting and class: metric without DP − metric with DP, paired by seed (and by
    dataset and fraction). The reference is the non-private run without mitigation."""
    rows = []
    base = df[(df["privacy"] == "none") & (df["mitigation"] == "none")]
    for (ds, fr, pr, mit), g in df[df["privacy"] != "none"].groupby(SETTING, sort=False):
        ref = base[(base["dataset"] == ds) & (base["fraction"] == fr)]
        if ref.empty:
            continue
        for cls in ("0", "1", "avg/total"):
            a = ref[ref["class"] == cls]
            b = g[g["class"] == cls]
            metrics = list(METRICS) + (list(RUN_METRICS) if cls == "avg/total" else [])
            for m in metrics:
                res = _paired(a[["seed", m]], b[["seed", m]], ["seed"], m, confidence)
                rows.append(
                    {"dataset": ds, "fraction": fr, "privacy": pr, "mitigation": mit}
                    | {"class": cls, "metric": m}
                    | res
                )
    return pd.DataFrame(rows)


def disparity_amplification(df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per DP setting: (gap with DP − gap without DP) for the recall gap and the IBA gap,
    paired by seed; positive means DP widened the gap between the classes."""
    fr = fairness_per_run(df)
    base = fr[(fr["privacy"] == "none") & (fr["mitigation"] == "none")]
    rows = []
    for (ds, frac, pr, mit), g in fr[fr["privacy"] != "none"].groupby(SETTING, sort=False):
        ref = base[(base["dataset"] == ds) & (base["fraction"] == frac)]
        if ref.empty:
            continue
        for measure in ("recall_gap", "iba_gap"):
            res = _paired(
                g[["seed", measure]], ref[["seed", measure]], ["seed"], measure, confidence
            )
            rows.append(
                {"dataset": ds, "fraction": frac, "privacy": pr, "mitigation": mit}
                | {"measure": measure}
                | res
            )
    return pd.DataFrame(rows)


def mitigation_effects(df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per mitigated DP setting: (mitigated − plain DP-SGD) in minority recall, balanced
    accuracy, recall gap and balanced-accuracy cost of privacy, paired by seed."""
    fr = fairness_per_run(df)
    rows = []
    plain = fr[fr["mitigation"] == "none"]
    base = plain[plain["privacy"] == "none"]
    for (ds, frac, pr, mit), g in fr[
        (fr["privacy"] != "none") & (fr["mitigation"] != "none")
    ].groupby(SETTING, sort=False):
        ref = plain[
            (plain["dataset"] == ds) & (plain["fraction"] == frac) & (plain["privacy"] == pr)
        ]
        if ref.empty:
            continue
        for measure in ("minority_recall", "balanced_accuracy", "recall_gap", "worst_recall"):
            res = _paired(
                g[["seed", measure]], ref[["seed", measure]], ["seed"], measure, confidence
            )
            rows.append(
                {"dataset": ds, "fraction": frac, "privacy": pr, "mitigation": mit}
                | {"measure": measure}
                | res
            )
        nb = base[(base["dataset"] == ds) & (base["fraction"] == frac)]
        if not nb.empty:
            # cost of privacy in balanced accuracy: (none - mitigated) - (none - plain)
            m = (
                nb[["seed", "balanced_accuracy"]]
                .merge(g[["seed", "balanced_accuracy"]], on="seed", suffixes=("_n", "_m"))
                .merge(ref[["seed", "balanced_accuracy"]], on="seed")
            )
            a = (m["balanced_accuracy_n"] - m["balanced_accuracy_m"]).to_numpy(float)
            b = (m["balanced_accuracy_n"] - m["balanced_accuracy"]).to_numpy(float)
            pt = paired_difference(a, b, confidence=confidence)
            rows.append(
                {"dataset": ds, "fraction": frac, "privacy": pr, "mitigation": mit}
                | {"measure": "cost_of_privacy_balanced_accuracy"}
                | {
                    "mean": pt.interval.mean,
                    "half_width": pt.interval.half_width,
                    "low": pt.interval.low,
                    "high": pt.interval.high,
                    "n": pt.interval.n,
                    "p_value": pt.p_value,
                }
            )
    return pd.DataFrame(rows)


def study_tables(store: ResultsStore, run_ids=None) -> dict[str, pd.DataFrame]:
    """Every aggregate of a store (or of the given runs), by name."""
    df = store_frame(store, run_ids)
    if df.empty:
        return {"frame": df}
    return {
        "frame": df,
        "metrics": aggregate_metrics(df),
        "fairness": aggregate_fairness(df),
        "cost_of_privacy": cost_of_privacy(df),
        "disparity_amplification": disparity_amplification(df),
        "mitigation_effects": mitigation_effects(df),
    }
