"""Aggregates over seeds: means with confidence intervals, fairness measures, the cost of
privacy and disparity amplification, with paired tests.

Every function takes and returns plain DataFrames; rendering lives in
:mod:`imbalanced_dp.reports`.

Settings are identified by ``dataset``, ``fraction`` (the target minority fraction as text,
``"natural"`` for none), ``privacy`` (``"none"`` or the target ε as text, e.g. ``"2"``),
``mitigation`` and ``config``: a short hash of every other setting that enters a run's
``run_id`` (epochs, batch size, learning rate, layers, engine, test fraction, imbalance
method; for a private run also δ, the accountant, the clip bound, the noise mode and the
mitigation's parameters). Aggregates group by all five (:data:`FULL_SETTING`), so runs of
different settings are never pooled, and ``n`` counts the runs of one setting.
``base_config`` is ``config`` without the private settings: paired comparisons match a
private run with the non-private run of the same base configuration and seed.

A tuned run (``tuning`` ``private``: its hyperparameters chosen by a private search) has
its own ``config`` (the search's settings) and the labels ``mitigation`` and ``scaling``
``"searched"`` (:data:`SEARCHED`), whatever its search chose: its settings are never
pooled with runs of fixed hyperparameters, and its non-private reference (cost of privacy,
disparity amplification) is the same search without privacy.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

from ..exceptions import StoreError
from ..metrics import FAIRNESS, METRICS, mean_ci, paired_difference
from ..metrics import fairness_per_run as metrics_fairness_per_run
from ._store import ResultsStore

SETTING = ["dataset", "fraction", "privacy", "mitigation"]
FULL_SETTING = [*SETTING, "scaling", "config"]
RUN_METRICS = ("accuracy", "balanced_accuracy")
#: Spec fields of the base configuration (shared by the privacy levels of a comparison).
BASE_FIELDS = (
    "epochs",
    "batch_size",
    "lr",
    "layers",
    "engine",
    "test_fraction",
    "imbalance_method",
)
#: Spec fields that only private runs have.
PRIVATE_FIELDS = ("delta", "accountant", "clip", "reproducible", "mitigation_params")
#: Spec fields of a tuned run's search (part of its base configuration).
TUNING_FIELDS = ("tuning", "tuning_trials", "tuning_objective", "tuning_holdout", "tuning_space")
#: The ``mitigation`` and ``scaling`` labels of a tuned run's setting.
SEARCHED = "searched"


def _short_hash(d: dict) -> str:
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:8]


def primary_scaling(scalings) -> str:
    """The scaling a report's main sections show when a study swept several: the default
    (``standard``) if present, else the first in the order of
    :data:`~imbalanced_dp.data.SCALINGS`."""
    from ..data import SCALINGS

    present = set(scalings)
    if "standard" in present or not present:
        return "standard"
    return next((s for s in SCALINGS if s in present), "standard")


def reference_scaling(scaling: str) -> str:
    """The scaling of the non-private reference of runs scaled with ``scaling``: a
    non-private run has no budget for the DP scaler, so ``dp_standard`` is compared with
    ``standard``."""
    return "standard" if scaling == "dp_standard" else scaling


def config_of(spec: dict) -> tuple[str, str, str]:
    """``(config, base_config, dp_config)`` of a stored run spec (see the module
    docstring); ``dp_config`` is ``config`` without the mitigation's parameters (what a
    mitigated run shares with plain DP-SGD at the same ε). The scaling (and its bounds and
    share) is part of ``config``; ``base_config`` holds the scaling of the non-private
    reference (:func:`reference_scaling`)."""
    dataset = {k: v for k, v in (spec.get("dataset") or {}).items() if k != "csv"}
    scaling = spec.get("scaling") or "standard"
    base = {"dataset": dataset} | {k: spec.get(k) for k in BASE_FIELDS}
    if spec.get("tuning", "none") != "none":  # (the search's settings, and its bounds)
        base |= {k: spec.get(k) for k in TUNING_FIELDS} | {"bounds": spec.get("bounds")}
    elif reference_scaling(scaling) != "standard":  # (the default: same hash as before)
        base["scaling"] = reference_scaling(scaling)
        base["bounds"] = spec.get("bounds")
    full, dp = dict(base), dict(base)
    for key in ("scaling", "bounds", "scaling_share"):
        if key in spec:
            full[key] = dp[key] = spec[key]
    if spec.get("epsilon") is not None:
        full |= {k: spec.get(k) for k in PRIVATE_FIELDS}
        dp |= {k: spec.get(k) for k in PRIVATE_FIELDS if k != "mitigation_params"}
    return _short_hash(full), _short_hash(base), _short_hash(dp)


def privacy_label(epsilon) -> str:
    if epsilon is None or (isinstance(epsilon, float) and np.isnan(epsilon)):
        return "none"
    return f"{float(epsilon):g}"


def fraction_label(target) -> str:
    if target is None or (isinstance(target, float) and np.isnan(target)):
        return "natural"
    return f"{float(target):g}"


def store_frame(store: ResultsStore, run_ids=None) -> pd.DataFrame:
    """One row per done run × class, with setting labels (``config`` and ``base_config``
    included) and the run-level scores."""
    df = store.query(
        "SELECT r.run_id, r.dataset, r.minority_fraction_target, r.minority_fraction, "
        "r.privacy, r.epsilon_target, r.epsilon_spent, r.mitigation, "
        "COALESCE(r.scaling, 'standard') AS scaling, COALESCE(r.tuning, 'none') AS tuning, "
        "r.seed, r.engine, "
        'r.accuracy, r.balanced_accuracy, m."class", m.pre, m.rec, m.spe, m.f1, m.geo, '
        "m.iba, m.sup, r.spec_json FROM runs r JOIN class_metrics m ON m.run_id = r.run_id "
        "WHERE r.status = 'done' ORDER BY r.rowid"
    )
    if run_ids is not None:
        df = df[df["run_id"].isin(set(run_ids))]
    configs = {sj: config_of(json.loads(sj)) for sj in df["spec_json"].unique()}
    df = df.assign(
        config=[configs[sj][0] for sj in df["spec_json"]],
        base_config=[configs[sj][1] for sj in df["spec_json"]],
        dp_config=[configs[sj][2] for sj in df["spec_json"]],
    ).drop(columns="spec_json")
    return label_settings(label_tuned(df))


def label_tuned(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (runs or run × class rows with ``tuning``, ``mitigation`` and ``scaling``)
    with the setting labels of its tuned runs: ``mitigation`` and ``scaling``
    :data:`SEARCHED` (the choices of each run's search stay in the store's columns)."""
    if "tuning" not in df or df.empty:
        return df
    tuned = df["tuning"].fillna("none") != "none"
    if not tuned.any():
        return df
    df = df.copy()
    for col in ("mitigation", "scaling"):
        if col in df:
            df.loc[tuned, col] = SEARCHED
    return df


def ambiguous_settings(df: pd.DataFrame) -> pd.DataFrame:
    """The settings (dataset, fraction, privacy, mitigation, scaling) that more than one
    configuration shares in ``df``: a report or a table over them would mix runs of
    different settings. (Several scalings are an axis of a study, like the privacy
    levels: reports show them apart.)"""
    df = with_configs(df)
    if df.empty:
        return pd.DataFrame(columns=[*SETTING, "scaling", "configs"])
    n = df.groupby([*SETTING, "scaling"], sort=False)["config"].nunique()
    return n[n > 1].rename("configs").reset_index()


def require_one_config(df: pd.DataFrame, *, what: str, studies: list[str] | None = None) -> None:
    """Raise :class:`~imbalanced_dp.exceptions.StoreError` if ``df`` holds runs of one
    setting under several configurations, naming the studies to choose from."""
    amb = ambiguous_settings(df)
    if amb.empty:
        return
    first = amb.iloc[0]
    names = ", ".join(studies or []) or "(no study names recorded)"
    raise StoreError(
        f"the store holds runs of {first['dataset']} (minority {first['fraction']}, privacy "
        f"{first['privacy']}, {first['mitigation']}) under {first['configs']} different "
        f"settings (epochs, learning rate, delta...); a {what} would pool them: choose one "
        f"study with --study NAME; studies in the store: {names}"
    )


def label_settings(df: pd.DataFrame) -> pd.DataFrame:
    """Add the setting labels ``fraction`` and ``privacy``; a frame without configuration
    columns (not read from a store) is taken to hold one configuration."""
    df = df.copy()
    df["fraction"] = [fraction_label(v) for v in df["minority_fraction_target"]]
    df["privacy"] = [privacy_label(v) for v in df["epsilon_target"]]
    return with_configs(df)


def with_configs(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the configuration columns; a frame without them (not read from a store)
    is taken to hold one configuration."""
    defaults = {"config": "default", "base_config": "default", "dp_config": "default"}
    defaults["scaling"] = "standard"
    missing = {c: v for c, v in defaults.items() if c not in df.columns}
    if not missing:
        return df
    return df.assign(**missing)


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

    Returns long format: ``dataset, fraction, privacy, mitigation, config, class, metric,
    mean, std, n, half_width, low, high``.
    """
    rows = []
    df = with_configs(df)
    for key, g in df.groupby([*FULL_SETTING, "class"], sort=False):
        metrics = list(METRICS)
        if key[-1] == "avg/total":
            metrics += list(RUN_METRICS)
        for m in metrics:
            iv = mean_ci(g[m].to_numpy(dtype=float), confidence=confidence)
            rows.append(
                dict(zip([*FULL_SETTING, "class"], key))
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
    """Per run: the fairness measures of :mod:`imbalanced_dp.metrics` (recall gap, worst
    recall, IBA gap, minority recall, balanced accuracy) with the run's full setting and
    seed."""
    df = with_configs(df)
    return metrics_fairness_per_run(df, keys=[*FULL_SETTING, "base_config", "dp_config", "seed"])


def aggregate_fairness(df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Mean and CI of the fairness measures per setting (long format, ``measure`` column)."""
    fr = fairness_per_run(df)
    rows = []
    for key, g in fr.groupby(FULL_SETTING, sort=False):
        for m in FAIRNESS:
            iv = mean_ci(g[m].to_numpy(dtype=float), confidence=confidence)
            rows.append(
                dict(zip(FULL_SETTING, key))
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


def _reference(
    pool: pd.DataFrame, g: pd.DataFrame, ds: str, fr: str, *, same_privacy: bool = False
) -> pd.DataFrame:
    """The runs of ``pool`` to pair with group ``g``: the same dataset and fraction and the
    same base configuration, or (``same_privacy``) the same private settings too, all but
    the mitigation's parameters."""
    key = "dp_config" if same_privacy else "base_config"
    sel = (pool["dataset"] == ds) & (pool["fraction"] == fr) & pool[key].isin(set(g[key]))
    return pool[sel]


#: The columns of a paired comparison (:func:`_paired`).
PAIRED_STATS = ("mean", "half_width", "low", "high", "n", "p_value")


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """``rows`` as a frame; without rows, an empty frame that still has its columns (so
    that an export writes a header-only CSV rather than an empty file)."""
    return pd.DataFrame(rows) if rows else pd.DataFrame(columns=columns)


def _paired(a: pd.DataFrame, b: pd.DataFrame, on: list[str], value: str, confidence: float) -> dict:
    m = a.merge(b, on=on, suffixes=("_a", "_b"))
    return _paired_values(m[f"{value}_a"], m[f"{value}_b"], confidence)


def _paired_values(a, b, confidence: float) -> dict:
    pt = paired_difference(np.asarray(a, float), np.asarray(b, float), confidence=confidence)
    iv = pt.interval
    return {
        "mean": iv.mean,
        "half_width": iv.half_width,
        "low": iv.low,
        "high": iv.high,
        "n": iv.n,
        "p_value": pt.p_value,
    }


def _merge_pairs(a_pos: np.ndarray, b_pos: np.ndarray, seeds: np.ndarray):
    """Row positions of an inner merge on ``seed`` of rows ``a_pos`` with rows ``b_pos``,
    in the merge's order (``a``'s rows in order, each with its matches in ``b``'s order)."""
    by_seed: dict = {}
    for j in b_pos:
        by_seed.setdefault(seeds[j], []).append(j)
    ai, bi = [], []
    for i in a_pos:
        for j in by_seed.get(seeds[i], ()):
            ai.append(i)
            bi.append(j)
    return np.asarray(ai, dtype=np.intp), np.asarray(bi, dtype=np.intp)


class _References:
    """The reference runs of a frame (non-private, no mitigation, or the search without
    privacy) by dataset, fraction and base configuration, as row positions: what
    :func:`_reference` selects, without a boolean mask per group."""

    def __init__(self, frame: pd.DataFrame) -> None:
        mask = (frame["privacy"] == "none") & frame["mitigation"].isin(("none", SEARCHED))
        mask = mask.to_numpy()
        pos = np.flatnonzero(mask)
        by = frame[mask].groupby(["dataset", "fraction", "base_config"], sort=False).indices
        self._refs = {k: pos[np.asarray(v)] for k, v in by.items()}
        self._config = frame["base_config"].to_numpy()

    def of(self, ds, fr, group: np.ndarray) -> np.ndarray | None:
        """Positions of the references of ``group`` (positions) in the frame's order."""
        parts = [self._refs.get((ds, fr, c)) for c in dict.fromkeys(self._config[group])]
        parts = [x for x in parts if x is not None]
        return np.sort(np.concatenate(parts)) if parts else None


def _private_groups(frame: pd.DataFrame):
    """``(setting key, row positions)`` of the private runs, by :data:`FULL_SETTING`."""
    private = np.flatnonzero((frame["privacy"] != "none").to_numpy())
    for key, loc in frame.iloc[private].groupby(FULL_SETTING, sort=False).indices.items():
        yield key, private[np.asarray(loc)]


def cost_of_privacy(df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per DP setting and class: metric without DP − metric with DP, paired by seed (and by
    dataset and fraction). The reference is the non-private run without mitigation (of a
    tuned run: the same search without privacy)."""
    rows = []
    df = with_configs(df).reset_index(drop=True)
    columns = [*METRICS, *RUN_METRICS]
    values = {m: df[m].to_numpy(dtype=float) for m in columns if m in df.columns}
    seeds = df["seed"].to_numpy()
    klass = df["class"].astype(str).to_numpy()
    refs = _References(df)
    for (ds, fr, pr, mit, sc, cfg), g in _private_groups(df):
        ref = refs.of(ds, fr, g)
        if ref is None:
            continue
        for cls in ("0", "1", "avg/total"):
            metrics = list(METRICS) + (list(RUN_METRICS) if cls == "avg/total" else [])
            a_idx, b_idx = _merge_pairs(ref[klass[ref] == cls], g[klass[g] == cls], seeds)
            for m in metrics:
                res = _paired_values(values[m][a_idx], values[m][b_idx], confidence)
                rows.append(
                    {"dataset": ds, "fraction": fr, "privacy": pr, "mitigation": mit}
                    | {"scaling": sc, "config": cfg, "class": cls, "metric": m}
                    | res
                )
    return _frame(rows, [*FULL_SETTING, "class", "metric", *PAIRED_STATS])


def disparity_amplification(df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per DP setting: (gap with DP − gap without DP) for the recall gap and the IBA gap,
    paired by seed; positive means DP widened the gap between the classes."""
    fr = fairness_per_run(df).reset_index(drop=True)
    seeds = fr["seed"].to_numpy()
    refs = _References(fr)
    values = {m: fr[m].to_numpy(dtype=float) for m in ("recall_gap", "iba_gap")}
    rows = []
    for (ds, frac, pr, mit, sc, cfg), g in _private_groups(fr):
        ref = refs.of(ds, frac, g)
        if ref is None:
            continue
        a_idx, b_idx = _merge_pairs(g, ref, seeds)
        for measure in ("recall_gap", "iba_gap"):
            v = values[measure]
            rows.append(
                {"dataset": ds, "fraction": frac, "privacy": pr, "mitigation": mit}
                | {"scaling": sc, "config": cfg, "measure": measure}
                | _paired_values(v[a_idx], v[b_idx], confidence)
            )
    return _frame(rows, [*FULL_SETTING, "measure", *PAIRED_STATS])


def mitigation_effects(df: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Per mitigated DP setting: (mitigated − plain DP-SGD) in minority recall, balanced
    accuracy, recall gap and balanced-accuracy cost of privacy, paired by seed."""
    fr = fairness_per_run(df)
    rows = []
    plain = fr[fr["mitigation"] == "none"]
    base = plain[plain["privacy"] == "none"]
    for (ds, frac, pr, mit, sc, cfg), g in fr[
        (fr["privacy"] != "none") & ~fr["mitigation"].isin(("none", SEARCHED))
    ].groupby(FULL_SETTING, sort=False):
        ref = _reference(plain[plain["privacy"] == pr], g, ds, frac, same_privacy=True)
        if ref.empty:
            continue
        for measure in ("minority_recall", "balanced_accuracy", "recall_gap", "worst_recall"):
            res = _paired(
                g[["seed", measure]], ref[["seed", measure]], ["seed"], measure, confidence
            )
            rows.append(
                {"dataset": ds, "fraction": frac, "privacy": pr, "mitigation": mit}
                | {"scaling": sc, "config": cfg, "measure": measure}
                | res
            )
        nb = _reference(base, g, ds, frac)
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
                | {"scaling": sc, "config": cfg, "measure": "cost_of_privacy_balanced_accuracy"}
                | {
                    "mean": pt.interval.mean,
                    "half_width": pt.interval.half_width,
                    "low": pt.interval.low,
                    "high": pt.interval.high,
                    "n": pt.interval.n,
                    "p_value": pt.p_value,
                }
            )
    return _frame(rows, [*FULL_SETTING, "measure", *PAIRED_STATS])


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
