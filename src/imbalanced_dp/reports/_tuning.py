"""Fixed against privately tuned hyperparameters: what a report shows of a study whose runs
include tuned ones (study key ``tuning``).

A tuned run's hyperparameters come from a private search on its training split, and its ε
covers the search and the final model together (:mod:`imbalanced_dp.tuning`). Here each
series is aggregated on its own runs only (never pooled): the fixed series is plain DP-SGD
with the study's settings (no mitigation, the report's feature scaling), the tuned series
the search's final models; both are evaluated on the same test rows of each seed, so their
difference is paired by seed.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..metrics import mean_ci, paired_difference
from ..studies import fraction_order, privacy_order
from ._figures import (
    DODGE,
    EPS_LABEL,
    MARKERS,
    _band_curve,
    _eps_axis,
    _level_line,
    _new_figure,
    fraction_text,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: The series of a tuning comparison, in drawing order, with their legend labels.
SERIES = {"none": "fixed hyperparameters", "private": "privately tuned"}
SERIES_COLORS = {"none": "#0072B2", "private": "#D55E00"}
#: The measures of the comparison: (column of the per-run frame, words).
MEASURES = {"balanced_accuracy": "balanced accuracy", "minority_recall": "minority recall"}
CURVE_COLUMNS = [
    "dataset",
    "fraction",
    "privacy",
    "tuning",
    "measure",
    "mean",
    "low",
    "high",
    "half_width",
    "n",
]
DIFF_COLUMNS = ["dataset", "fraction", "privacy", "measure", "mean", "low", "high", "n", "p_value"]
#: The settings a search chooses, as the choices table shows them.
DIMENSIONS = ("mitigation", "lr", "batch_size", "epochs", "clip", "layers", "threshold", "scaling")


def has_tuning(frame: pd.DataFrame) -> bool:
    """Whether a per-run frame (:func:`~imbalanced_dp.studies.store_frame`) holds tuned
    runs."""
    return "tuning" in frame and bool((frame["tuning"] != "none").any())


def comparison_frame(frame: pd.DataFrame, primary: str = "standard") -> pd.DataFrame:
    """The runs a comparison rests on: the tuned ones, and the fixed ones of plain DP-SGD
    (and its non-private reference) with the feature scaling ``primary``."""
    tuned = frame["tuning"] != "none"
    fixed = (frame["tuning"] == "none") & (frame["mitigation"] == "none")
    fixed &= frame["scaling"] == primary
    return frame[tuned | fixed]


def per_run(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its setting labels, ``tuning``, ``config``, seed, balanced
    accuracy and minority recall (recall of label 1)."""
    keys = ["run_id", "dataset", "fraction", "privacy", "tuning", "config", "seed"]
    tot = frame[frame["class"] == "avg/total"][[*keys, "balanced_accuracy"]]
    rec = frame[frame["class"] == "1"][["run_id", "rec"]].rename(columns={"rec": "minority_recall"})
    return tot.merge(rec, on="run_id", how="left")


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df
    d_rank = {d: i for i, d in enumerate(dict.fromkeys(df["dataset"]))}
    f_rank = {f: i for i, f in enumerate(fraction_order(df["fraction"]))}
    p_rank = {p: i for i, p in enumerate(privacy_order(df["privacy"]))}
    t_rank = {t: i for i, t in enumerate(SERIES)}
    ranks = {"dataset": d_rank, "fraction": f_rank, "privacy": p_rank, "tuning": t_rank}
    by = [c for c in ("dataset", "fraction", "tuning", "privacy") if c in df]
    if "measure" in df:
        by.insert(0, "measure")
    return df.sort_values(
        by, key=lambda s: s.map(ranks[s.name]) if s.name in ranks else s, kind="stable"
    ).reset_index(drop=True)


def tuning_curves(frame: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """The privacy–utility curves of each series: mean and CI over seeds of balanced
    accuracy and minority recall per dataset × fraction × privacy level × ``tuning``.
    Every series is aggregated over its own runs (one configuration each: a setting with
    several configurations gives one row per configuration, never a pooled one)."""
    runs = per_run(frame)
    rows = []
    keys = ["dataset", "fraction", "privacy", "tuning", "config"]
    for key, g in runs.groupby(keys, sort=False):
        for m in MEASURES:
            iv = mean_ci(g[m].to_numpy(dtype=float), confidence=confidence)
            rows.append(
                dict(zip(keys, key))
                | {
                    "measure": m,
                    "mean": iv.mean,
                    "low": iv.low,
                    "high": iv.high,
                    "half_width": iv.half_width,
                    "n": iv.n,
                }
            )
    out = pd.DataFrame(rows, columns=[*CURVE_COLUMNS, "config"])
    return _ordered(out)


def tuning_differences(frame: pd.DataFrame, *, confidence: float = 0.95) -> pd.DataFrame:
    """Privately tuned − fixed per dataset × fraction × privacy level and measure, paired by
    seed (both series are evaluated on the same test rows of a seed)."""
    runs = per_run(frame)
    rows = []
    tuned = runs[runs["tuning"] != "none"]
    fixed = runs[runs["tuning"] == "none"]
    for (ds, fr, pr), g in tuned.groupby(["dataset", "fraction", "privacy"], sort=False):
        ref = fixed[(fixed["dataset"] == ds) & (fixed["fraction"] == fr) & (fixed["privacy"] == pr)]
        pairs = g.merge(ref, on="seed", suffixes=("_t", "_f"))
        if pairs.empty:
            continue
        for m in MEASURES:
            pt = paired_difference(
                pairs[f"{m}_t"].to_numpy(float), pairs[f"{m}_f"].to_numpy(float),
                confidence=confidence,
            )  # fmt: skip
            iv = pt.interval
            rows.append(
                {"dataset": ds, "fraction": fr, "privacy": pr, "measure": m}
                | {"mean": iv.mean, "low": iv.low, "high": iv.high, "n": iv.n}
                | {"p_value": pt.p_value}
            )
    return _ordered(pd.DataFrame(rows, columns=DIFF_COLUMNS))


def tuned_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The tuned rows of a store's runs table (:meth:`ResultsStore.runs_frame`) with their
    setting labels and their search's record (``tuned``, a dict)."""
    from ..studies import fraction_label, privacy_label

    if "tuning" not in runs:
        return runs.iloc[0:0]
    t = runs[runs["tuning"].fillna("none") != "none"].copy()
    t["fraction"] = [fraction_label(v) for v in t["minority_fraction_target"]]
    t["privacy"] = [privacy_label(v) for v in t["epsilon_target"]]
    t["tuned"] = [json.loads(x) if isinstance(x, str) and x else {} for x in t["tuned_json"]]
    return t


def _value_text(v) -> str:
    if isinstance(v, list):
        return ",".join(map(str, v)) if v else "none"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def tuning_choices(tuned: pd.DataFrame) -> pd.DataFrame:
    """What the searches chose: per dataset × fraction × privacy level, each dimension's
    chosen values with how many seeds chose each (most frequent first)."""
    rows = []
    for (ds, fr, pr), g in tuned.groupby(["dataset", "fraction", "privacy"], sort=False):
        row = {"dataset": ds, "fraction": fr, "privacy": pr, "runs": len(g)}
        for dim in DIMENSIONS:
            vals = [_value_text((t.get("best") or {}).get(dim)) for t in g["tuned"]]
            counts = pd.Series(vals).value_counts(sort=True)
            row[dim] = ", ".join(
                f"{v} ×{c}" if len(counts) > 1 or c > 1 else v for v, c in counts.items()
            )
        rows.append(row)
    return _ordered(
        pd.DataFrame(rows, columns=["dataset", "fraction", "privacy", "runs", *DIMENSIONS])
    )


def tuning_cost(tuned: pd.DataFrame) -> pd.DataFrame:
    """What the searches spent per dataset × fraction × privacy level: the target ε, the
    largest ε any run spent (search and final model together), the trials' distribution
    and the ε one trial alone would spend."""
    rows = []
    dp = tuned[tuned["privacy"] != "none"]
    for (ds, fr, pr), g in dp.groupby(["dataset", "fraction", "privacy"], sort=False):
        per = [t.get("epsilon_per_trial") for t in g["tuned"] if t.get("epsilon_per_trial")]
        lo = min((p[0] for p in per), default=math.nan)
        hi = max((p[1] for p in per), default=math.nan)
        dist = sorted({str(t.get("trial_distribution", "")) for t in g["tuned"]} - {""})
        rows.append(
            {
                "dataset": ds,
                "fraction": fr,
                "privacy": pr,
                "epsilon_target": float(pr),
                "epsilon_spent_max": float(g["epsilon_spent"].max()),
                "trials": "; ".join(dist),
                "epsilon_one_trial_low": lo,
                "epsilon_one_trial_high": hi,
                "runs": len(g),
            }
        )
    return _ordered(pd.DataFrame(rows))


def cost_sentences(cost: pd.DataFrame) -> list[str]:
    """What tuning costs, in words: the search's ε is inside the run's, paid for with the
    noise of each trial."""
    if cost.empty:
        return []
    over = cost[cost["epsilon_spent_max"] > cost["epsilon_target"] * (1 + 1e-9)]
    out = [
        "A privately tuned run spends its ε once, for the whole search and its final model: "
        "the price of tuning is inside the run's ε, not added to it (private selection, "
        "Papernot & Steinke 2022, with a random number of trials; "
        + "; ".join(dict.fromkeys(t for t in cost["trials"] if t))
        + "). It is paid in noise: every trial trains with more noise than a fixed run at "
        "the same ε, which spends all of its ε on its one model."
    ]
    by_eps = cost.groupby("epsilon_target", sort=True)
    parts = []
    for eps, g in sorted(by_eps, key=lambda kv: -kv[0]):
        lo, hi = float(g["epsilon_one_trial_low"].min()), float(g["epsilon_one_trial_high"].max())
        if math.isfinite(lo) and math.isfinite(hi):
            rng = f"{lo:.2g}" if math.isclose(lo, hi, rel_tol=0.05) else f"{lo:.2g}–{hi:.2g}"
            parts.append(f"at ε = {eps:g}, one trial alone spends ε {rng}")
    if parts:
        out.append("Per trial: " + "; ".join(parts) + ".")
    out.append(
        "Every tuned run's ε spent (search and final model) is at most its target"
        if over.empty
        else f"{len(over)} setting(s) spent more than their target ε: see the table"
    )
    out[-1] += f" (largest: {float(cost['epsilon_spent_max'].max()):.4g})."
    return out


def difference_sentences(diff: pd.DataFrame) -> list[str]:
    """Where tuning helped or hurt, from the paired intervals (balanced accuracy)."""
    d = diff[diff["measure"] == "balanced_accuracy"]
    out = []
    for r in d.itertuples():
        if not (math.isfinite(r.low) and math.isfinite(r.high)):
            verdict = "no interval (one seed)"
        elif r.low > 0:
            verdict = "better"
        elif r.high < 0:
            verdict = "worse"
        else:
            verdict = "no clear difference"
        where = "" if r.fraction == "natural" else f", {fraction_text(r.fraction)}"
        level = "without DP" if r.privacy == "none" else f"ε = {r.privacy}"
        ci = f" [{r.low:+.3f}, {r.high:+.3f}]" if math.isfinite(r.low) else ""
        out.append(
            f"{r.dataset}{where}, {level}: privately tuned − fixed balanced accuracy "
            f"{r.mean:+.3f}{ci} over {int(r.n)} seed{'s' if r.n != 1 else ''} ({verdict})."
        )
    return out


def tuning_utility_figure(
    curves: pd.DataFrame,
    *,
    class_names: dict[str, tuple[str, str]] | None = None,
) -> Figure:
    """Balanced accuracy and minority recall against ε, fixed and privately tuned.

    Parameters
    ----------
    curves : DataFrame
        :func:`tuning_curves` output.
    class_names : dict, optional
        ``dataset -> (name 0, name 1)`` for the minority recall's title.

    Returns
    -------
    Figure
        One row of panels per dataset × minority fraction (balanced accuracy left, minority
        recall right): one line with a 95 % CI band per series, and each series'
        non-private level as a dashed line of its colour.
    """
    keys = list(dict.fromkeys(zip(curves["dataset"], curves["fraction"])))
    fig = _new_figure(10.5, 2.9 * max(1, len(keys)) + 0.7)
    axs = fig.subplots(max(1, len(keys)), 2, squeeze=False)
    eps = sorted({float(p) for p in curves["privacy"] if p != "none"})
    for row, (ds, fr) in enumerate(keys):
        for col, (measure, words) in enumerate(MEASURES.items()):
            ax = axs[row][col]
            g = curves[
                (curves["dataset"] == ds)
                & (curves["fraction"] == fr)
                & (curves["measure"] == measure)
            ]
            for i, (tuning, label) in enumerate(SERIES.items()):
                s = g[g["tuning"] == tuning]
                color = SERIES_COLORS[tuning]
                dp = s[s["privacy"] != "none"]
                if not dp.empty:
                    dp = dp.assign(eps=dp["privacy"].astype(float) * 10 ** (DODGE * (i - 0.5)))
                    dp = dp.sort_values("eps")
                    _band_curve(ax, dp, color=color, label=label, marker=MARKERS[i])
                _level_line(ax, s[s["privacy"] == "none"], color=color, label=label, lw=1.1)
            if eps:
                _eps_axis(ax, eps)
            else:
                ax.set_xlabel(EPS_LABEL)
            ax.set_ylim(-0.03, 1.03)
            where = "" if fr == "natural" else f", {fraction_text(fr)}"
            name = (
                f" ({class_names[ds][1]})"
                if measure == "minority_recall" and class_names and ds in class_names
                else ""
            )
            ax.set_title(f"{ds}{where}: {words}{name}", fontsize=10)
            ax.set_ylabel(words)
    handles, labels = [], []
    for ax in np.ravel(axs):
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=4, fontsize=8)
    fig.suptitle("Fixed against privately tuned hyperparameters", fontsize=11)
    return fig
