"""Everything a report shows, read from a results store as plain DataFrames.

Nothing here renders: :func:`load_report_data` gathers the per-run frame, the aggregates
over seeds, the class distributions, the confusion counts and the privacy ledgers, and the
figure, table and findings layers turn them into output.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..metrics import quiet_constant_differences
from ..studies import (
    FULL_SETTING,
    SETTING,
    ResultsStore,
    aggregate_fairness,
    aggregate_metrics,
    cost_of_privacy,
    disparity_amplification,
    fraction_label,
    fraction_order,
    label_tuned,
    mitigation_effects,
    privacy_label,
    privacy_order,
    store_frame,
)


@dataclass
class ReportData:
    """The numbers of one report.

    Attributes
    ----------
    frame : DataFrame
        One row per done run × class (:func:`imbalanced_dp.studies.store_frame`).
    metrics, fairness, cost, amplification, mitigation : DataFrame
        The aggregates over seeds of :mod:`imbalanced_dp.studies._aggregate`.
    distribution : DataFrame
        ``dataset, class, name, count``: each dataset's whole table (train + test).
    shares : DataFrame
        ``dataset, fraction, share, train_0, train_1, test_0, test_1, runs``: the mean
        minority share and class counts of the training split actually used per fraction.
    confusion : DataFrame
        ``dataset, fraction, privacy, mitigation, y_true, y_pred, count, runs``: test
        predictions summed over the seeds of a setting.
    ledger : DataFrame
        One row per setting: what each privacy guarantee is and what it does not cover.
    class_names : dict
        ``dataset -> (name of label 0, name of label 1)`` where known.
    versions : dict
        Library versions recorded with the runs (each name with its distinct values).
    """

    frame: pd.DataFrame
    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    fairness: pd.DataFrame = field(default_factory=pd.DataFrame)
    cost: pd.DataFrame = field(default_factory=pd.DataFrame)
    amplification: pd.DataFrame = field(default_factory=pd.DataFrame)
    mitigation: pd.DataFrame = field(default_factory=pd.DataFrame)
    distribution: pd.DataFrame = field(default_factory=pd.DataFrame)
    shares: pd.DataFrame = field(default_factory=pd.DataFrame)
    confusion: pd.DataFrame = field(default_factory=pd.DataFrame)
    ledger: pd.DataFrame = field(default_factory=pd.DataFrame)
    class_names: dict[str, tuple[str, str]] = field(default_factory=dict)
    versions: dict[str, list[str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.frame.empty

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(self.frame["dataset"])) if not self.empty else []

    @property
    def fractions(self) -> list[str]:
        return fraction_order(self.frame["fraction"]) if not self.empty else []

    @property
    def privacies(self) -> list[str]:
        return privacy_order(self.frame["privacy"]) if not self.empty else []

    @property
    def mitigations(self) -> list[str]:
        return list(dict.fromkeys(self.frame["mitigation"])) if not self.empty else []

    def seeds_text(self, mask: pd.Series | None = None) -> str:
        """``"10 seeds"`` or ``"8–10 seeds"``: seeds per setting among the selected rows."""
        return seeds_text(self.frame if mask is None else self.frame[mask])


def seeds_text(frame: pd.DataFrame) -> str:
    """How many seeds the settings of a per-run frame have, as words."""
    if frame.empty:
        return "0 seeds"
    counts = frame.groupby(FULL_SETTING, sort=False)["seed"].nunique()
    lo, hi = int(counts.min()), int(counts.max())
    if lo == hi:
        return f"{lo} seed" + ("" if lo == 1 else "s")
    return f"{lo}–{hi} seeds"


def load_report_data(store: ResultsStore, run_ids=None) -> ReportData:
    """Read a store (or the given runs of it) into a :class:`ReportData`.

    Parameters
    ----------
    store : ResultsStore
    run_ids : iterable of str, optional
        Restrict everything to these runs; ``None`` takes every done run.
    """
    ids = None if run_ids is None else set(run_ids)
    frame = store_frame(store, ids)
    if frame.empty:
        return ReportData(frame=frame)
    runs = store.runs_frame()
    if ids is not None:
        runs = runs[runs["run_id"].isin(ids)]
    runs = label_tuned(runs)  # (a tuned run's setting: mitigation and scaling "searched")
    runs = runs.copy()
    runs["fraction"] = [fraction_label(v) for v in runs["minority_fraction_target"]]
    runs["privacy"] = [privacy_label(v) for v in runs["epsilon_target"]]
    names, distribution = _datasets(runs)
    with quiet_constant_differences():
        cost = cost_of_privacy(frame)
        amplification = disparity_amplification(frame)
        mitigation = mitigation_effects(frame)
    return ReportData(
        frame=frame,
        metrics=aggregate_metrics(frame),
        fairness=aggregate_fairness(frame),
        cost=cost,
        amplification=amplification,
        mitigation=mitigation,
        distribution=distribution,
        shares=training_shares(runs),
        confusion=confusion_counts(store, runs),
        ledger=ledger_table(runs),
        class_names=names,
        versions=_versions(runs),
    )


def _datasets(runs: pd.DataFrame) -> tuple[dict[str, tuple[str, str]], pd.DataFrame]:
    """Class names and whole-table class counts per dataset label.

    A registered dataset is loaded by name; a user's table is known to the store only by
    its label, so its counts are a natural-balance run's train + test counts.
    """
    from ..data import dataset_names, load_dataset

    names: dict[str, tuple[str, str]] = {}
    rows = []
    for label, g in runs.groupby("dataset", sort=False):
        ref = json.loads(g["spec_json"].iloc[0]).get("dataset", {})
        counts: tuple[int, int] | None = None
        if ref.get("name") is not None and ref["name"] in dataset_names():
            ds = load_dataset(ref["name"])
            names[label] = ds.class_names
            counts = ds.class_counts
        else:
            if ref.get("positive") is not None:
                names[label] = (f"not {ref['positive']}", str(ref["positive"]))
            natural = g[g["minority_fraction_target"].isna()]
            if not natural.empty:
                r = natural.iloc[0]
                counts = (
                    int(r["train_count_0"]) + int(r["test_count_0"]),
                    int(r["train_count_1"]) + int(r["test_count_1"]),
                )
        if counts is None:
            continue
        for cls in (0, 1):
            rows.append(
                {
                    "dataset": label,
                    "class": str(cls),
                    "name": names[label][cls] if label in names else str(cls),
                    "count": counts[cls],
                }
            )
    return names, pd.DataFrame(rows, columns=["dataset", "class", "name", "count"])


def training_shares(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean minority share and class counts of the training split per dataset × fraction."""
    cols = ["train_count_0", "train_count_1", "test_count_0", "test_count_1"]
    rows = []
    for (ds, fr), g in runs.groupby(["dataset", "fraction"], sort=False):
        row = {"dataset": ds, "fraction": fr, "share": float(g["minority_fraction"].mean())}
        for c, short in zip(cols, ("train_0", "train_1", "test_0", "test_1")):
            row[short] = float(g[c].mean())
        row["runs"] = len(g)
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = {f: i for i, f in enumerate(fraction_order(out["fraction"]))}
    return out.sort_values(
        ["dataset", "fraction"], key=lambda s: s.map(order) if s.name == "fraction" else s
    ).reset_index(drop=True)


def confusion_counts(store: ResultsStore, runs: pd.DataFrame) -> pd.DataFrame:
    """Test predictions per setting × true class × predicted class, summed over seeds.

    ``runs`` gives the runs (with their setting labels) to include; ``runs`` in the result
    is how many of them had predictions stored.
    """
    cols = [*SETTING, "y_true", "y_pred", "count", "runs"]
    per_run = store.query(
        "SELECT p.run_id, p.y_true, p.y_pred, COUNT(*) AS count FROM predictions p "
        "JOIN runs r ON r.run_id = p.run_id WHERE r.status = 'done' "
        "GROUP BY p.run_id, p.y_true, p.y_pred"
    )
    per_run = per_run.merge(runs[["run_id", *SETTING]], on="run_id")
    if per_run.empty:
        return pd.DataFrame(columns=cols)
    n_runs = per_run.groupby(SETTING, sort=False)["run_id"].nunique().rename("runs")
    out = (
        per_run.groupby([*SETTING, "y_true", "y_pred"], sort=False)["count"]
        .sum()
        .reset_index()
        .merge(n_runs.reset_index(), on=SETTING)
    )
    out["y_true"] = out["y_true"].astype(int)
    out["y_pred"] = out["y_pred"].astype(int)
    return out[cols]


LEDGER_COLUMNS = (
    "dataset",
    "fraction",
    "privacy",
    "mitigation",
    "runs",
    "accountant",
    "sampling",
    "noise_multiplier",
    "sample_rate",
    "expected_batch_size",
    "steps",
    "clip",
    "delta",
    "epsilon_target",
    "epsilon_spent",
    "components",
    "not_covered",
    "notes",
)


def _span(values) -> float | str:
    """One number if all runs agree, else ``"min–max"``; NaN if none is known."""
    v = sorted({float(x) for x in values if x is not None and not _isnan(x)})
    if not v:
        return math.nan
    if len(v) == 1 or math.isclose(v[0], v[-1], rel_tol=1e-12):
        return v[0]
    return f"{v[0]:.6g}–{v[-1]:.6g}"


def _isnan(x) -> bool:
    return isinstance(x, float) and math.isnan(x)


def _union(lists) -> list[str]:
    return list(dict.fromkeys(str(x) for lst in lists for x in (lst or [])))


def ledger_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The privacy ledger per setting (dataset, fraction, privacy, mitigation).

    Numbers that every run of the setting shares are given once; where seeds differ
    (σ depends on the training rows) the range is given. ``epsilon_spent`` is the largest
    ε any run of the setting spent. ``not_covered`` and ``notes`` are lists, the union of
    the runs' lists; ``components`` lists the extra DP mechanisms of mitigations.
    """
    rows = []
    for key, g in runs.groupby(SETTING, sort=False):
        ledgers = [json.loads(x) for x in g["ledger_json"] if isinstance(x, str) and x]
        row = dict(zip(SETTING, key)) | {"runs": len(g)}
        acc = sorted(
            {
                f"{d.get('accountant')} ({d.get('accountant_version')})"
                if d.get("accountant_version")
                else str(d.get("accountant"))
                for d in ledgers
                if d.get("accountant")
            }
        )
        row["accountant"] = ", ".join(acc) if acc else "none"
        row["sampling"] = ", ".join(sorted({str(d.get("sampling")) for d in ledgers})) or ""
        for name in (
            "noise_multiplier",
            "sample_rate",
            "expected_batch_size",
            "steps",
            "clip",
            "delta",
            "epsilon_target",
        ):
            row[name] = _span(d.get(name) for d in ledgers)
        spent = [d.get("epsilon_spent") for d in ledgers if d.get("epsilon_spent") is not None]
        row["epsilon_spent"] = float(np.max(spent)) if spent else math.nan
        row["components"] = "; ".join(
            dict.fromkeys(
                ", ".join(f"{k}={v}" for k, v in c.items())
                for d in ledgers
                for c in (d.get("components") or [])
            )
        )
        row["not_covered"] = _union(d.get("not_covered") for d in ledgers)
        row["notes"] = _union(d.get("notes") for d in ledgers)
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))
    if out.empty:
        return out
    p_order = {p: i for i, p in enumerate(privacy_order(out["privacy"]))}
    f_order = {f: i for i, f in enumerate(fraction_order(out["fraction"]))}
    d_order = {d: i for i, d in enumerate(dict.fromkeys(out["dataset"]))}
    keys = {"dataset": d_order, "fraction": f_order, "privacy": p_order}
    return out.sort_values(
        ["dataset", "fraction", "mitigation", "privacy"],
        key=lambda s: s.map(keys[s.name]) if s.name in keys else s,
        kind="stable",
    ).reset_index(drop=True)


def _versions(runs: pd.DataFrame) -> dict[str, list[str]]:
    out: dict[str, set[str]] = {}
    for x in runs["versions_json"].dropna().unique():
        for k, v in json.loads(x).items():
            out.setdefault(k, set()).add(str(v))
    return {k: sorted(v) for k, v in sorted(out.items())}
