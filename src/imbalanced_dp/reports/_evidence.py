"""The evidence tables of a report: intervals (mean, 95 % CI, n, p-value) of every
difference the claims are about, computed from the per-run frame and the aggregates."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations, pairwise

import pandas as pd

from ..metrics import (
    METRICS,
    clopper_pearson,
    interval_dict,
    paired_difference,
    quiet_constant_differences,
    recall_gap,
    welch_difference,
)
from ..studies import (
    SETTING,
    aggregate_fairness,
    aggregate_metrics,
    cost_of_privacy,
    disparity_amplification,
    fraction_order,
    mitigation_effects,
    privacy_order,
)


def reference_fractions(df: pd.DataFrame) -> dict[str, str]:
    """Per dataset, the fraction claims 1–3 are tested at: ``natural`` if present, else the
    largest minority fraction (the least skewed)."""
    if df.empty:
        return {}
    d = df[df["mitigation"] == "none"] if "mitigation" in df else df
    out = {}
    for ds, g in d.groupby("dataset", sort=False):
        out[ds] = fraction_order(g["fraction"])[0]
    return out


@dataclass
class Evidence:
    """The interval tables the claims and sentences are decided on.

    Attributes
    ----------
    metrics, fairness, cost, amplification, mitigation : DataFrame
        :func:`~imbalanced_dp.studies.aggregate_metrics`, ``aggregate_fairness``,
        ``cost_of_privacy``, ``disparity_amplification``, ``mitigation_effects``.
    class_cost_gap : DataFrame
        ``dataset, fraction, privacy, mitigation, metric`` + interval: the minority class's
        cost of privacy minus the majority class's, paired by seed.
    epsilon_trend : DataFrame
        ``dataset, fraction, mitigation, metric, eps_high, eps_low, pair`` + interval:
        ``metric(ε_high) − metric(ε_low)`` of the avg/total row, paired by seed; ``pair``
        is ``extremes`` (largest vs smallest ε) or ``adjacent``.
    skew : DataFrame
        ``kind, pair, dataset_more, fraction_more, share_more, dataset_less,
        fraction_less, share_less, privacy, measure`` + interval: a measure in the more
        skewed setting minus the less skewed one. ``kind`` is ``fractions`` (one dataset,
        paired by seed) or ``datasets`` (two datasets at their reference balance, Welch).
        ``measure`` is ``recall_gap`` (privacy ``none``), ``ba_cost`` (balanced accuracy
        without DP − with DP) or ``amplification`` (recall gap with DP − without).
    collapse : DataFrame
        ``dataset, fraction, privacy, mitigation, runs, collapsed, rate, low, high``: runs
        that predict no minority example at all, with an exact binomial CI of the rate.
    shares : DataFrame
        ``dataset, fraction, share``: mean minority share of the training split.
    """

    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    fairness: pd.DataFrame = field(default_factory=pd.DataFrame)
    cost: pd.DataFrame = field(default_factory=pd.DataFrame)
    amplification: pd.DataFrame = field(default_factory=pd.DataFrame)
    mitigation: pd.DataFrame = field(default_factory=pd.DataFrame)
    class_cost_gap: pd.DataFrame = field(default_factory=pd.DataFrame)
    epsilon_trend: pd.DataFrame = field(default_factory=pd.DataFrame)
    skew: pd.DataFrame = field(default_factory=pd.DataFrame)
    collapse: pd.DataFrame = field(default_factory=pd.DataFrame)
    shares: pd.DataFrame = field(default_factory=pd.DataFrame)
    confidence: float = 0.95


def per_run_wide(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run: setting, seed, minority share, ``<metric>_<class>`` for classes
    ``0``, ``1`` and ``avg`` (avg/total), accuracy, balanced accuracy and recall gap."""
    base = (
        frame.drop_duplicates("run_id")
        .set_index("run_id")[[*SETTING, "seed", "minority_fraction", "accuracy"]]
        .copy()
    )
    base["balanced_accuracy"] = frame.drop_duplicates("run_id").set_index("run_id")[
        "balanced_accuracy"
    ]
    for cls, tag in (("0", "0"), ("1", "1"), ("avg/total", "avg")):
        sub = frame[frame["class"] == cls].set_index("run_id")[list(METRICS)]
        base = base.join(sub.add_suffix(f"_{tag}"))
    base["recall_gap"] = recall_gap(base["rec_0"], base["rec_1"])
    return base.reset_index()


class _Seeded:
    """The per-run rows of one setting (dataset, fraction, privacy, mitigation), indexed by
    seed: grouped once, then looked up (a report asks for a setting hundreds of times)."""

    def __init__(self, w: pd.DataFrame) -> None:
        keys = ["dataset", "fraction", "privacy", "mitigation"]
        self._groups = {
            k: g.drop_duplicates("seed").set_index("seed") for k, g in w.groupby(keys, sort=False)
        }
        self._empty = w.iloc[:0].set_index("seed")

    def __call__(self, ds, fr, pr, mit) -> pd.DataFrame:
        return self._groups.get((ds, fr, pr, mit), self._empty)


def _paired_series(a: pd.Series, b: pd.Series, confidence: float) -> dict:
    j = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    return interval_dict(
        paired_difference(j["a"].to_numpy(float), j["b"].to_numpy(float), confidence=confidence)
    )


def _harm(seeded: _Seeded, ds, fr, pr, measure) -> pd.Series:
    """Per seed: the harm of DP at ``pr`` (plain DP-SGD) against the non-private run."""
    base = seeded(ds, fr, "none", "none")
    dp = seeded(ds, fr, pr, "none")
    if measure == "ba_cost":
        return (base["balanced_accuracy"] - dp["balanced_accuracy"]).dropna()
    return (dp["recall_gap"] - base["recall_gap"]).dropna()


def compute_evidence(
    frame: pd.DataFrame,
    *,
    confidence: float = 0.95,
    metrics: pd.DataFrame | None = None,
    fairness: pd.DataFrame | None = None,
    cost: pd.DataFrame | None = None,
    amplification: pd.DataFrame | None = None,
    mitigation: pd.DataFrame | None = None,
) -> Evidence:
    """Every evidence table from a per-run frame.

    Parameters
    ----------
    frame : DataFrame
        One row per run × class (:func:`imbalanced_dp.studies.store_frame`).
    confidence : float
        Level of every confidence interval.
    metrics, fairness, cost, amplification, mitigation : DataFrame, optional
        Aggregates already computed from ``frame`` (recomputed when omitted).

    Returns
    -------
    Evidence
        The interval tables the claims and sentences are decided on.
    """
    if frame.empty:
        return Evidence(confidence=confidence)
    with quiet_constant_differences():
        return _compute_evidence(
            frame,
            confidence=confidence,
            metrics=metrics,
            fairness=fairness,
            cost=cost,
            amplification=amplification,
            mitigation=mitigation,
        )


def _compute_evidence(frame, *, confidence, metrics, fairness, cost, amplification, mitigation):
    kw = {"confidence": confidence}
    ev = Evidence(
        metrics=aggregate_metrics(frame, **kw) if metrics is None else metrics,
        fairness=aggregate_fairness(frame, **kw) if fairness is None else fairness,
        cost=cost_of_privacy(frame, **kw) if cost is None else cost,
        amplification=(
            disparity_amplification(frame, **kw) if amplification is None else amplification
        ),
        mitigation=mitigation_effects(frame, **kw) if mitigation is None else mitigation,
        confidence=confidence,
    )
    w = per_run_wide(frame)
    seeded = _Seeded(w)
    ev.shares = (
        w.groupby(["dataset", "fraction"], sort=False)["minority_fraction"]
        .mean()
        .rename("share")
        .reset_index()
    )
    ev.class_cost_gap = _class_cost_gap(w, seeded, confidence)
    ev.epsilon_trend = _epsilon_trend(w, seeded, confidence)
    ev.skew = _skew(w, seeded, ev.shares, confidence)
    ev.collapse = _collapse(w, confidence)
    return ev


def _class_cost_gap(
    w: pd.DataFrame, seeded: _Seeded, confidence: float, metric: str = "f1"
) -> pd.DataFrame:
    rows = []
    for (ds, fr, pr, mit), _ in w[w["privacy"] != "none"].groupby(SETTING, sort=False):
        base = seeded(ds, fr, "none", "none")
        dp = seeded(ds, fr, pr, mit)
        if base.empty:
            continue
        cost1 = base[f"{metric}_1"] - dp[f"{metric}_1"]
        cost0 = base[f"{metric}_0"] - dp[f"{metric}_0"]
        res = _paired_series(cost1.dropna(), cost0.dropna(), confidence)
        rows.append(dict(zip(SETTING, (ds, fr, pr, mit))) | {"metric": metric} | res)
    return pd.DataFrame(rows, columns=[*SETTING, "metric", *INTERVAL])


def _epsilon_trend(w: pd.DataFrame, seeded: _Seeded, confidence: float) -> pd.DataFrame:
    cols = ["dataset", "fraction", "mitigation", "metric", "eps_high", "eps_low", "pair"]
    rows = []
    for (ds, fr, mit), g in w.groupby(["dataset", "fraction", "mitigation"], sort=False):
        eps = [p for p in privacy_order(g["privacy"]) if p != "none"]
        if len(eps) < 2:
            continue
        pairs = [(eps[0], eps[-1], "extremes")]
        if len(eps) > 2:
            pairs += [(a, b, "adjacent") for a, b in pairwise(eps)]
        for hi, lo, kind in pairs:
            a, b = seeded(ds, fr, hi, mit), seeded(ds, fr, lo, mit)
            for m in UTILITY:
                col = m if m == "balanced_accuracy" else f"{m}_avg"
                res = _paired_series(a[col].dropna(), b[col].dropna(), confidence)
                rows.append(dict(zip(cols, (ds, fr, mit, m, hi, lo, kind))) | res)
    return pd.DataFrame(rows, columns=[*cols, *INTERVAL])


SKEW_COLUMNS = [
    "kind",
    "pair",
    "dataset_more",
    "fraction_more",
    "share_more",
    "dataset_less",
    "fraction_less",
    "share_less",
    "privacy",
    "measure",
]


def _skew(
    w: pd.DataFrame, seeded: _Seeded, shares: pd.DataFrame, confidence: float
) -> pd.DataFrame:
    rows = []
    share = {(r.dataset, r.fraction): float(r.share) for r in shares.itertuples()}
    plain = w[w["mitigation"] == "none"]

    def eps_of(ds, fr):
        g = plain[(plain["dataset"] == ds) & (plain["fraction"] == fr)]
        return [p for p in privacy_order(g["privacy"]) if p != "none"]

    def values(ds, fr, pr, measure) -> pd.Series:
        if measure == "recall_gap":
            return seeded(ds, fr, "none", "none")["recall_gap"].dropna()
        return _harm(seeded, ds, fr, pr, measure)

    def add(kind, pair, more, less, compare):
        (dm, fm), (dl, fl) = more, less
        common = [p for p in eps_of(dm, fm) if p in set(eps_of(dl, fl))]
        for pr, measure in [("none", "recall_gap")] + [
            (p, m) for p in common for m in ("ba_cost", "amplification")
        ]:
            a, b = values(dm, fm, pr, measure), values(dl, fl, pr, measure)
            if a.empty or b.empty:
                continue
            res = compare(a, b)
            key = (kind, pair, dm, fm, share[more], dl, fl, share[less], pr, measure)
            rows.append(dict(zip(SKEW_COLUMNS, key)) | res)

    def paired(a, b):
        return _paired_series(a, b, confidence)

    def welch(a, b):
        return welch_difference(a.to_numpy(float), b.to_numpy(float), confidence=confidence)

    # one dataset, several minority fractions: a controlled comparison, paired by seed
    for ds, g in plain.groupby("dataset", sort=False):
        fr = sorted(dict.fromkeys(g["fraction"]), key=lambda f: -share[(ds, f)])
        if len(fr) < 2:
            continue
        pairs = [(fr[-1], fr[0], "extremes")]
        if len(fr) > 2:
            pairs += [(b, a, "adjacent") for a, b in pairwise(fr)]
        for more, less, kind in pairs:
            add("fractions", kind, (ds, more), (ds, less), paired)
    # several datasets at their reference balance: different data, Welch
    ref = reference_fractions(plain)
    items = [(ds, fr) for ds, fr in ref.items() if (ds, fr) in share]
    for x, y in combinations(items, 2):
        if round(share[x], 4) == round(share[y], 4):
            continue
        more, less = (x, y) if share[x] < share[y] else (y, x)
        add("datasets", "pair", more, less, welch)
    return pd.DataFrame(rows, columns=[*SKEW_COLUMNS, *INTERVAL])


def _collapse(w: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Runs that predict no minority example: recall of class 1 is 0 (no true positive)
    and its specificity is 1 (no false positive)."""
    rows = []
    for key, g in w.groupby(SETTING, sort=False):
        dead = (g["rec_1"] == 0.0) & (g["spe_1"] == 1.0)
        k, n = int(dead.sum()), len(g)
        lo, hi = clopper_pearson(k, n, confidence=confidence)
        rows.append(
            dict(zip(SETTING, key))
            | {"runs": n, "collapsed": k, "rate": k / n, "low": lo, "high": hi}
        )
    return pd.DataFrame(rows, columns=[*SETTING, "runs", "collapsed", "rate", "low", "high"])


#: Utility metrics of claim 2: the support-weighted ``avg/total`` row and balanced accuracy
#: (overall accuracy equals the weighted recall, so it is not counted twice).
UTILITY = (*METRICS, "balanced_accuracy")
METRIC_NAMES = {
    "pre": "precision",
    "rec": "recall",
    "spe": "specificity",
    "f1": "F1",
    "geo": "geometric mean",
    "iba": "IBA",
    "balanced_accuracy": "balanced accuracy",
    "accuracy": "accuracy",
}
INTERVAL = ["mean", "half_width", "low", "high", "n", "p_value"]


def select_rows(df: pd.DataFrame, **eq) -> pd.DataFrame:
    if df.empty:
        return df
    m = pd.Series(True, index=df.index)
    for k, v in eq.items():
        m &= df[k].isin(v) if isinstance(v, (list, tuple, set)) else df[k] == v
    return df[m]


def dp_sorted(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by dataset (order of appearance), then ε from largest to smallest."""
    if df.empty:
        return df
    p = {x: i for i, x in enumerate(privacy_order(df["privacy"]))}
    d = {x: i for i, x in enumerate(dict.fromkeys(df["dataset"]))}
    return (
        df.assign(_d=df["dataset"].map(d), _p=df["privacy"].map(p))
        .sort_values(["_d", "_p"], kind="stable")
        .drop(columns=["_d", "_p"])
    )


def metric_row(ev: Evidence, ds, fr, pr, cls, metric, mit="none"):
    g = select_rows(ev.metrics, dataset=ds, fraction=fr, privacy=pr, mitigation=mit)
    g = g[(g["class"] == cls) & (g["metric"] == metric)] if not g.empty else g
    return None if g.empty else g.iloc[0]
