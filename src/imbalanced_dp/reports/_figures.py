"""The report's figures: functions that take aggregate DataFrames and return matplotlib
:class:`~matplotlib.figure.Figure` objects, and :func:`save_figure`, which writes them.

Figures are built with the object-oriented API (no ``pyplot``): nothing touches global
state, no window is opened, and rendering uses the Agg canvas whatever backend the user
has configured. Class 0 (majority) is always drawn in blue and class 1 (minority) in
vermilion (Okabe–Ito colours, safe for colour-blind readers).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..metrics import METRICS
from ..studies import fraction_order, privacy_order

if TYPE_CHECKING:  # matplotlib loads when a figure is drawn, not with the report's code
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

CLASS_COLORS = {"0": "#0072B2", "1": "#D55E00", "avg/total": "#555555"}
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
#: Markers of the series of one figure, so that lines that coincide stay distinguishable.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
#: Shift between neighbouring series along a log ε axis, in decades.
DODGE = 0.015
METRIC_TITLES = {
    "pre": "precision",
    "rec": "recall",
    "spe": "specificity",
    "f1": "F1",
    "geo": "geometric mean (√(rec·spe))",
    "iba": "IBA (α = 0.1)",
}
EPS_LABEL = "ε (log scale)"


def class_label(cls: str, dataset: str | None = None, class_names=None) -> str:
    """``"1 minority (diabetic)"``: the label, its role, and its name where known."""
    if cls == "avg/total":
        return "avg/total"
    role = "minority" if cls == "1" else "majority"
    if class_names and dataset in class_names:
        return f"{cls} {role} ({class_names[dataset][int(cls)]})"
    return f"{cls} {role}"


def fraction_text(fraction: str, share: float | None = None) -> str:
    """``"natural (35 %)"`` or ``"minority 20 %"``."""
    if fraction == "natural":
        return "natural" if share is None else f"natural ({100 * share:.0f} %)"
    f = float(fraction)
    return f"minority {100 * f:g} %"


def _num(x: float, digits: int = 2) -> str:
    r = round(float(x), digits)
    return f"{0.0 if r == 0 else r:.{digits}f}"


def _new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _eps_axis(ax: Axes, eps: list[float]) -> None:
    """A log ε axis with a tick at each studied ε, labelled plainly."""
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, NullLocator

    ax.xaxis.set_major_locator(FixedLocator(eps))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{e:g}" for e in eps])
    if len(eps) == 1:
        ax.set_xlim(eps[0] / 2, eps[0] * 2)
    else:
        ax.set_xlim(min(eps) / 1.3, max(eps) * 1.3)
    ax.set_xlabel(EPS_LABEL)
    ax.grid(True, which="major", alpha=0.3)


def _select(df: pd.DataFrame, **eq) -> pd.DataFrame:
    m = np.ones(len(df), dtype=bool)
    for k, v in eq.items():
        m &= (df[k] == v).to_numpy()
    return df[m]


def _grid(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(ncols, n))
    return math.ceil(n / ncols), ncols


def _axes(fig: Figure, n: int, ncols: int, **kw) -> list[Axes]:
    rows, cols = _grid(n, ncols)
    axs = fig.subplots(rows, cols, squeeze=False, **kw).ravel().tolist()
    for ax in axs[n:]:
        fig.delaxes(ax)
    return axs[:n]


#: A metric grid's margins in inches: left (tick labels and the y label), right, top (the
#: title and the panels' titles), bottom (x tick labels and label, without the legend).
_GRID_MARGINS = (0.62, 0.12, 0.62, 0.62)
#: Height of one row of a figure legend (fontsize 8), in inches.
_LEGEND_ROW = 0.24


def _fixed_grid(
    n: int,
    ncols: int,
    *,
    legend_entries: int,
    width: float = 10.5,
    panel_height: float = 2.35,
    margins: tuple[float, float, float, float] = _GRID_MARGINS,
    wgap: float = 0.1,
    hgap: float = 0.55,
) -> tuple[Figure, list[Axes]]:
    """A figure of ``n`` panels in rows of ``ncols`` on a fixed layout: ``margins`` (left,
    right, top, bottom, in inches) leave room for the outer labels and a title, plus a
    legend of ``legend_entries`` in rows of 4 below; ``wgap``/``hgap`` separate the panels
    (inches). A fixed layout costs nothing to draw; the constrained layout took ~40 % of
    the drawing time of these figures."""
    from matplotlib.figure import Figure

    rows = math.ceil(n / ncols)
    left, right, top, bottom = margins
    bottom += _LEGEND_ROW * math.ceil(legend_entries / 4) + 0.08
    height = rows * panel_height + (rows - 1) * hgap + top + bottom
    panel_width = (width - left - right - (ncols - 1) * wgap) / ncols
    fig = Figure(figsize=(width, height))
    axs = fig.subplots(
        rows,
        ncols,
        squeeze=False,
        gridspec_kw={
            "left": left / width,
            "right": 1 - right / width,
            "top": 1 - top / height,
            "bottom": bottom / height,
            "wspace": wgap / panel_width,
            "hspace": hgap / panel_height,
        },
    )
    axs = axs.ravel().tolist()
    for ax in axs[n:]:
        fig.delaxes(ax)
    return fig, axs[:n]


def _grid_legend(fig: Figure, handles, labels) -> None:
    """The legend of a :func:`_fixed_grid`, centred at its bottom, in rows of 4."""
    fig.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 0.01), ncols=4, fontsize=8)


def _band_curve(ax: Axes, c: pd.DataFrame, *, color, label, marker="o", ms=4, alpha=0.15):
    """One series against ε: the ``mean`` of ``c`` over its ``eps`` column as a line with
    markers, and its 95 % CI (``low`` to ``high``) as a band of the same colour."""
    ax.plot(c["eps"], c["mean"], ls="-", marker=marker, color=color, label=label, ms=ms)
    ax.fill_between(c["eps"], c["low"], c["high"], color=color, alpha=alpha, lw=0)


def _level_line(ax: Axes, level: pd.DataFrame, *, color, label, lw=1.2) -> None:
    """A series' non-private level (the first ``mean`` of ``level``, if any) as a dashed
    line of its colour, labelled "<label>, non-private"."""
    if not level.empty:
        ax.axhline(
            float(level["mean"].iloc[0]), color=color, ls="--", lw=lw,
            label=f"{label}, non-private",
        )  # fmt: skip


def _outer_labels(axs: list[Axes], ncols: int, ylabel: str) -> None:
    """Panels of one grid on one scale: y ticks at 0, 0.25, … 1, labelled (with
    ``ylabel``) in the first column only; x tick labels and the x label only on panels
    with no panel below. Fewer texts to lay out, which is most of a figure's drawing time."""
    from matplotlib.ticker import FixedLocator

    n = len(axs)
    for i, ax in enumerate(axs):
        ax.yaxis.set_major_locator(FixedLocator([0.0, 0.25, 0.5, 0.75, 1.0]))
        if i % ncols == 0:
            ax.set_ylabel(ylabel)
        else:
            ax.tick_params(axis="y", labelleft=False)
        if i + ncols < n:
            ax.tick_params(axis="x", labelbottom=False)
            ax.set_xlabel("")


# --------------------------------------------------------------------------- data


def class_distribution_figure(distribution: pd.DataFrame) -> Figure:
    """Bar chart of each dataset's class counts (the study's Figures 1 and 2).

    Parameters
    ----------
    distribution : DataFrame
        ``dataset, class, name, count``, one row per dataset and class.

    Returns
    -------
    Figure
        One panel per dataset, one bar per class labelled with its count and share.
    """
    datasets = list(dict.fromkeys(distribution["dataset"]))
    fig = _new_figure(3.2 * max(1, len(datasets)) + 0.4, 3.2)
    for ax, ds in zip(_axes(fig, len(datasets), 4), datasets):
        g = distribution[distribution["dataset"] == ds].sort_values("class")
        total = g["count"].sum()
        labels = [
            f"{c} {'minority' if c == '1' else 'majority'}\n({n})"
            for c, n in zip(g["class"], g["name"])
        ]
        bars = ax.bar(labels, g["count"], color=[CLASS_COLORS[c] for c in g["class"]], width=0.6)
        for b, n in zip(bars, g["count"]):
            ax.annotate(
                f"{n} ({100 * n / total:.1f} %)",
                (b.get_x() + b.get_width() / 2, b.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
                xytext=(0, 2),
                textcoords="offset points",
            )
        ax.set_title(ds)
        ax.set_ylabel("rows")
        ax.set_ylim(0, g["count"].max() * 1.18)
    return fig


def training_split_figure(shares: pd.DataFrame) -> Figure:
    """Class counts of the training split per minority fraction (stacked bars).

    Parameters
    ----------
    shares : DataFrame
        ``dataset, fraction, share, train_0, train_1`` (mean over the runs).

    Returns
    -------
    Figure
        One panel per dataset, one stacked bar (majority below, minority above) per
        fraction.
    """
    datasets = list(dict.fromkeys(shares["dataset"]))
    fig = _new_figure(3.6 * max(1, len(datasets)) + 0.4, 3.4)
    for ax, ds in zip(_axes(fig, len(datasets), 4), datasets):
        g = shares[shares["dataset"] == ds]
        order = {f: i for i, f in enumerate(fraction_order(g["fraction"]))}
        g = g.sort_values("fraction", key=lambda s: s.map(order))
        x = [
            fraction_text(f, s).replace("minority ", "") for f, s in zip(g["fraction"], g["share"])
        ]
        ax.bar(x, g["train_0"], color=CLASS_COLORS["0"], label="0 majority")
        ax.bar(x, g["train_1"], bottom=g["train_0"], color=CLASS_COLORS["1"], label="1 minority")
        ax.set_title(ds)
        ax.set_ylabel("training rows")
        ax.set_xlabel("minority share of the training split")
        ax.tick_params(axis="x", labelsize=8)
    fig.axes[0].legend(fontsize=8, loc="upper right")
    return fig


# --------------------------------------------------------------------------- metrics


def nonprivate_metrics_figure(
    metrics: pd.DataFrame,
    *,
    fractions: dict[str, str] | None = None,
    class_names: dict[str, tuple[str, str]] | None = None,
) -> Figure:
    """Per-class metrics of the non-private models, mean with 95 % CI error bars.

    Parameters
    ----------
    metrics : DataFrame
        :func:`~imbalanced_dp.studies.aggregate_metrics` output.
    fractions : dict, optional
        ``dataset -> fraction`` to show (default ``natural`` where present).
    class_names : dict, optional
        ``dataset -> (name 0, name 1)`` for the legend.

    Returns
    -------
    Figure
        One panel per dataset; groups of bars by metric, one bar per class.
    """
    m = metrics[(metrics["privacy"] == "none") & (metrics["mitigation"] == "none")]
    datasets = list(dict.fromkeys(m["dataset"]))
    fig = _new_figure(max(4.6, 4.6 * min(2, len(datasets))), 3.4 * math.ceil(len(datasets) / 2))
    x = np.arange(len(METRICS))
    width = 0.38
    for ax, ds in zip(_axes(fig, len(datasets), 2), datasets):
        fr = (fractions or {}).get(ds) or fraction_order(_select(m, dataset=ds)["fraction"])[0]
        g = _select(m, dataset=ds, fraction=fr)
        for i, cls in enumerate(("0", "1")):
            c = g[g["class"] == cls].set_index("metric").reindex(list(METRICS))
            err = np.vstack([c["mean"] - c["low"], c["high"] - c["mean"]]).clip(min=0)
            ax.bar(
                x + (i - 0.5) * width,
                c["mean"],
                width,
                yerr=np.nan_to_num(err),
                capsize=2,
                color=CLASS_COLORS[cls],
                label=class_label(cls, ds, class_names),
            )
        ax.set_xticks(x, list(METRICS))
        ax.set_ylim(0, 1.28)
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.set_ylabel("score (mean, 95 % CI)")
        ax.set_title(ds if fr == "natural" else f"{ds}, {fraction_text(fr)}")
        ax.legend(fontsize=7, loc="upper center", ncols=2)
        ax.grid(True, axis="y", alpha=0.3)
    return fig


def privacy_utility_figure(
    metrics: pd.DataFrame,
    *,
    dataset: str,
    fraction: str = "natural",
    mitigation: str = "none",
    metric_names: tuple[str, ...] = METRICS,
    class_names: dict[str, tuple[str, str]] | None = None,
) -> Figure:
    """Per-class metrics against ε (log axis) with 95 % CI bands, and the non-private
    level of each class as a dashed horizontal line.

    Parameters
    ----------
    metrics : DataFrame
        :func:`~imbalanced_dp.studies.aggregate_metrics` output.
    dataset, fraction, mitigation : str
        The settings to draw.
    metric_names : tuple of str
        One panel per metric.
    class_names : dict, optional
        ``dataset -> (name 0, name 1)`` for the legend.

    Returns
    -------
    Figure
        One panel per metric; in each, one line with a band per class (classes 0 and 1)
        and one dashed reference line per class where a non-private run exists.
    """
    g = _select(metrics, dataset=dataset, fraction=fraction)
    base = _select(g, privacy="none", mitigation="none")
    dp = _select(g[g["privacy"] != "none"], mitigation=mitigation)
    eps = sorted({float(p) for p in dp["privacy"]})
    fig, axs = _fixed_grid(len(metric_names), 3, legend_entries=4)
    for ax, m in zip(axs, metric_names):
        for cls in ("0", "1"):
            c = dp[(dp["class"] == cls) & (dp["metric"] == m)].copy()
            c["eps"] = c["privacy"].astype(float)
            c = c.sort_values("eps")
            label = class_label(cls, dataset, class_names)
            if not c.empty:
                _band_curve(ax, c, color=CLASS_COLORS[cls], label=label, alpha=0.18)
            b = base[(base["class"] == cls) & (base["metric"] == m)]
            _level_line(ax, b, color=CLASS_COLORS[cls], label=label)
        if eps:
            _eps_axis(ax, eps)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(METRIC_TITLES.get(m, m), fontsize=10)
    _outer_labels(axs, 3, "score")
    handles, labels = axs[0].get_legend_handles_labels()
    _grid_legend(fig, handles, labels)
    mit = "" if mitigation == "none" else f", {mitigation}"
    fr = "" if fraction == "natural" else f", {fraction_text(fraction)}"
    fig.suptitle(f"{dataset}{fr}{mit}: per-class metrics against ε", fontsize=11)
    return fig


def scaling_utility_figure(
    metrics_by_scaling: dict[str, pd.DataFrame],
    *,
    datasets: list[str],
    fraction: str = "natural",
    class_names: dict[str, tuple[str, str]] | None = None,
) -> Figure:
    """The privacy–utility curve under each feature scaling, on one figure.

    Parameters
    ----------
    metrics_by_scaling : dict
        ``scaling -> aggregate_metrics output`` of that scaling's runs (with its non-private
        reference).
    datasets : list of str
        One row of panels per dataset.

    Returns
    -------
    Figure
        Per dataset: the minority class's recall and the balanced accuracy against ε (log
        axis), one line with a 95 % CI band per scaling, and its non-private level as a
        dashed line of the same colour.
    """
    panels = [
        ("1", "rec", "minority recall"),
        ("avg/total", "balanced_accuracy", "balanced accuracy"),
    ]
    fig = _new_figure(10.5, 3.0 * len(datasets) + 0.6)
    axs = fig.subplots(len(datasets), 2, squeeze=False)
    all_eps = sorted(
        {
            float(p)
            for m in metrics_by_scaling.values()
            for p in m["privacy"].unique()
            if p != "none"
        }
    )
    for row, ds in enumerate(datasets):
        for col, (cls, metric, title) in enumerate(panels):
            ax = axs[row][col]
            for i, (scaling, m) in enumerate(metrics_by_scaling.items()):
                g = _select(m, dataset=ds, fraction=fraction, mitigation="none")
                g = g[(g["class"] == cls) & (g["metric"] == metric)]
                color = PALETTE[i % len(PALETTE)]
                dp = g[g["privacy"] != "none"].copy()
                if not dp.empty:
                    dp["eps"] = dp["privacy"].astype(float) * 10 ** (DODGE * (i - 1.5))
                    dp = dp.sort_values("eps")
                    ax.plot(
                        dp["eps"],
                        dp["mean"],
                        marker=MARKERS[i % len(MARKERS)],
                        color=color,
                        ms=4,
                        label=scaling,
                    )
                    ax.fill_between(dp["eps"], dp["low"], dp["high"], color=color, alpha=0.12, lw=0)
                base = g[g["privacy"] == "none"]
                if not base.empty:
                    ax.axhline(float(base["mean"].iloc[0]), color=color, ls="--", lw=1.0)
            if all_eps:
                _eps_axis(ax, all_eps)
            ax.set_ylim(-0.03, 1.03)
            minority = f" ({class_names[ds][1]})" if class_names and ds in class_names else ""
            ax.set_title(f"{ds}: {title}{minority if cls == '1' else ''}", fontsize=10)
    handles, labels = axs[0][0].get_legend_handles_labels()
    from matplotlib.lines import Line2D

    handles.append(Line2D([], [], color="#555555", ls="--", lw=1.0))
    labels.append("non-private (same colour)")
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8)
    fig.suptitle("Privacy–utility under each feature scaling", fontsize=11)
    return fig


# --------------------------------------------------------------------------- fairness


def _series_labels(keys: list[tuple[str, str]], shares: dict | None) -> dict:
    datasets = {d for d, _ in keys}
    fractions = {f for _, f in keys}
    out = {}
    for d, f in keys:
        ftxt = fraction_text(f, (shares or {}).get((d, f)))
        if len(fractions) == 1:
            out[(d, f)] = d
        elif len(datasets) == 1:
            out[(d, f)] = ftxt
        else:
            out[(d, f)] = f"{d}, {ftxt}"
    return out


def recall_gap_figure(
    fairness: pd.DataFrame,
    amplification: pd.DataFrame,
    *,
    shares: dict[tuple[str, str], float] | None = None,
) -> Figure:
    """The recall gap and its disparity amplification against ε, for plain DP-SGD.

    Parameters
    ----------
    fairness : DataFrame
        :func:`~imbalanced_dp.studies.aggregate_fairness` output, already restricted to the
        (dataset, fraction) series to draw.
    amplification : DataFrame
        :func:`~imbalanced_dp.studies.disparity_amplification` output, same series.
    shares : dict, optional
        ``(dataset, fraction) -> minority share`` for the legend.

    Returns
    -------
    Figure
        Left: recall gap (majority − minority) per series against ε with CI bands, its
        non-private value as a dashed line of the same colour. Right: disparity
        amplification (gap with DP − without, paired by seed) with bands and a zero line.
    """
    f = fairness[(fairness["measure"] == "recall_gap") & (fairness["mitigation"] == "none")]
    if amplification.empty:
        amplification = pd.DataFrame(columns=[*f.columns])
    a = amplification[
        (amplification["measure"] == "recall_gap") & (amplification["mitigation"] == "none")
    ]
    f_rank = {x: i for i, x in enumerate(fraction_order(f["fraction"]))}
    d_rank = {x: i for i, x in enumerate(dict.fromkeys(f["dataset"]))}
    keys = sorted(
        dict.fromkeys(zip(f["dataset"], f["fraction"])), key=lambda k: (d_rank[k[0]], f_rank[k[1]])
    )
    labels = _series_labels(keys, shares)
    eps = sorted({float(p) for p in f["privacy"] if p != "none"})
    fig, (ax_gap, ax_amp) = _fixed_grid(
        2, 2, legend_entries=2 * len(keys) + 1, panel_height=3.0,
        margins=(0.7, 0.15, 0.35, 0.62), wgap=0.85,
    )  # fmt: skip
    for i, key in enumerate(keys):
        color = PALETTE[i % len(PALETTE)]
        # Series that coincide (a gap of 1.0 at every fraction once the minority is never
        # predicted) stay apart: each its own marker, and a small shift along the log ε axis.
        marker = MARKERS[i % len(MARKERS)]
        shift = 10 ** (DODGE * (i - (len(keys) - 1) / 2))
        g = _select(f, dataset=key[0], fraction=key[1])
        dp = g[g["privacy"] != "none"]
        dp = dp.assign(eps=dp["privacy"].astype(float) * shift).sort_values("eps")
        _band_curve(ax_gap, dp, color=color, label=labels[key], marker=marker, ms=5)
        _level_line(ax_gap, g[g["privacy"] == "none"], color=color, label=labels[key])
        d = _select(a, dataset=key[0], fraction=key[1])
        d = d.assign(eps=d["privacy"].astype(float) * shift).sort_values("eps")
        if not d.empty:
            _band_curve(ax_amp, d, color=color, label=labels[key], marker=marker, ms=5)
    ax_amp.axhline(0.0, color="black", lw=0.8, label="no amplification")
    for ax in (ax_gap, ax_amp):
        if eps:
            _eps_axis(ax, eps)
    ax_gap.set_ylabel("recall gap (majority − minority)")
    ax_gap.set_title("Recall gap", fontsize=10)
    ax_amp.set_ylabel("gap with DP − gap without")
    ax_amp.set_title("Disparity amplification", fontsize=10)
    handles, labels_ = ax_gap.get_legend_handles_labels()
    h2, l2 = ax_amp.get_legend_handles_labels()
    handles.append(h2[-1])
    labels_.append(l2[-1])
    _grid_legend(fig, handles, labels_)
    return fig


def heatmap_figure(
    values: pd.DataFrame,
    *,
    title: str,
    colorbar_label: str,
    diverging: bool = False,
    shares: dict[tuple[str, str], float] | None = None,
    datasets: list[str] | None = None,
) -> Figure:
    """A heatmap over minority fraction (rows) × privacy level (columns) per dataset, each
    cell annotated with its mean and 95 % CI.

    Parameters
    ----------
    values : DataFrame
        ``dataset, fraction, privacy, mean, low, high``, one row per cell.
    title, colorbar_label : str
    diverging : bool
        Centre the colour scale on 0 (red above, blue below), for differences.
    shares : dict, optional
        ``(dataset, fraction) -> minority share`` for the row labels.
    datasets : list of str, optional
        The panels' order (default: order of appearance), so that several heatmaps of one
        report show the datasets in the same places.

    Returns
    -------
    Figure
        One image per dataset (rows in fraction order, least skewed on top; columns
        ``none`` then ε from largest to smallest) and one shared colour bar.
    """
    present = list(dict.fromkeys(values["dataset"]))
    datasets = [d for d in (datasets or []) if d in present]
    datasets += [d for d in present if d not in datasets]
    fractions = fraction_order(values["fraction"])
    privs = privacy_order(values["privacy"])
    ncols = min(2, max(1, len(datasets)))
    nrows = math.ceil(max(1, len(datasets)) / ncols)
    width = min(10.5, 1.2 + (0.95 * len(privs) + 1.5) * ncols)
    fig = _new_figure(width, (0.9 + 0.6 * len(fractions)) * nrows + 0.5)
    axs = _axes(fig, len(datasets), ncols)
    import matplotlib as mpl

    if diverging:
        lim = float(np.nanmax(np.abs(values[["mean"]].to_numpy()))) if len(values) else 1.0
        lim = lim if lim > 0 else 1.0
        cmap, vmin, vmax = mpl.colormaps["RdBu_r"], -lim, lim
    else:
        cmap, vmin, vmax = mpl.colormaps["viridis"], 0.0, 1.0
    norm = mpl.colors.Normalize(vmin=vmin, vmax=vmax)
    im = None
    for ax, ds in zip(axs, datasets):
        g = values[values["dataset"] == ds]
        grid = np.full((len(fractions), len(privs)), np.nan)
        for r in g.itertuples():
            grid[fractions.index(r.fraction), privs.index(r.privacy)] = r.mean
        im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, norm=norm, aspect="auto")
        for r in g.itertuples():
            i, j = fractions.index(r.fraction), privs.index(r.privacy)
            ci = (
                f"\n[{_num(r.low)}, {_num(r.high)}]"
                if math.isfinite(r.low) and math.isfinite(r.high)
                else ""
            )
            rgba = cmap(norm(r.mean))
            lum = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
            ax.text(
                j,
                i,
                f"{_num(r.mean)}{ci}",
                ha="center",
                va="center",
                fontsize=7.5,
                color="black" if lum > 0.5 else "white",
            )
        ax.set_xticks(range(len(privs)), ["none" if p == "none" else f"ε={p}" for p in privs])
        ax.set_yticks(
            range(len(fractions)),
            [fraction_text(f, (shares or {}).get((ds, f))) for f in fractions],
        )
        ax.set_xlabel("privacy")
        if ax is axs[0] or len(datasets) > 2:
            ax.set_ylabel("minority share of training split")
        ax.set_title(ds, fontsize=10)
    if im is not None:
        cb = fig.colorbar(im, ax=axs, shrink=0.9)
        cb.set_label(colorbar_label)
    fig.suptitle(title, fontsize=11)
    return fig


# --------------------------------------------------------------------------- confusion


def confusion_figure(
    confusion: pd.DataFrame,
    *,
    dataset: str,
    fraction: str = "natural",
    fractions: list[str] | None = None,
    mitigation: str = "none",
    class_names: dict[str, tuple[str, str]] | None = None,
    shares: dict[tuple[str, str], float] | None = None,
) -> Figure:
    """Confusion matrices per privacy level, summed over seeds.

    Parameters
    ----------
    confusion : DataFrame
        ``dataset, fraction, privacy, mitigation, y_true, y_pred, count, runs``.
    dataset, fraction, mitigation : str
        The settings to draw (the non-private panel is always plain SGD).
    fractions : list of str, optional
        Several minority fractions, one row of panels each (instead of ``fraction``).
    shares : dict, optional
        ``(dataset, fraction) -> minority share`` for the rows' labels.

    Returns
    -------
    Figure
        One panel per privacy level (``none`` first, then ε from largest to smallest) and,
        with ``fractions``, one row per fraction (its share and seeds on the left); colour
        and first line: the share of each true class predicted as each class; second line:
        the mean count per seed. Class names label the outer panels only.
    """
    rows_fr = list(fractions) if fractions else [fraction]
    c = confusion[confusion["dataset"] == dataset]
    c = c[
        (c["mitigation"] == mitigation) | ((c["privacy"] == "none") & (c["mitigation"] == "none"))
    ]
    c = c[c["fraction"].isin(rows_fr)]
    privs = privacy_order(c["privacy"])
    names = [class_label(k, dataset, class_names).replace(" (", "\n(") for k in ("0", "1")]
    import matplotlib as mpl

    cmap = mpl.colormaps["Blues"]
    if len(rows_fr) > 1:
        return _confusion_grid(c, dataset, rows_fr, privs, names, cmap, shares)
    fig = _new_figure(0.8 + 2.5 * max(1, len(privs)), 3.0)
    axs = _axes(fig, max(1, len(privs)), max(1, len(privs)))
    im = None
    for ax, pr in zip(axs, privs):
        rate, mean, runs = _confusion_cells(c[c["privacy"] == pr])
        im = ax.imshow(rate, cmap=cmap, vmin=0, vmax=1)
        _confusion_texts(ax, rate, mean, 0.0, 0.0)
        ax.set_xticks([0, 1], names, fontsize=7)
        ax.set_yticks([0, 1], names, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{'no DP' if pr == 'none' else f'ε = {pr}'} ({runs} seeds)", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axs, shrink=0.8, label="share of the true class")
    return fig


def _confusion_cells(g: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int]:
    """Shares of each true class (rows) predicted as each class, mean counts per seed, and
    the number of seeds, of one setting's summed confusion counts."""
    counts = np.zeros((2, 2))
    for r in g.itertuples():
        counts[int(r.y_true), int(r.y_pred)] += r.count
    runs = int(g["runs"].max()) if len(g) else 0
    totals = counts.sum(axis=1, keepdims=True)
    rate = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    return rate, counts / max(runs, 1), runs


def _confusion_texts(ax: Axes, rate: np.ndarray, mean: np.ndarray, x0: float, y0: float):
    for i in range(2):
        for j in range(2):
            ax.text(
                x0 + j,
                y0 + i,
                f"{rate[i, j]:.2f}\n({mean[i, j]:.1f})",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if rate[i, j] > 0.55 else "black",
            )


#: Space between two confusion matrices of a grid, in cells.
_GAP = 0.45


def _confusion_grid(c, dataset, rows_fr, privs, names, cmap, shares) -> Figure:
    """Several fractions' confusion matrices as one image grid on a single axes (rows:
    fractions, columns: privacy levels): one axes instead of one per matrix, which is most
    of what drawing a figure costs."""
    ncols, nrows = max(1, len(privs)), len(rows_fr)
    fig = _new_figure(2.2 + 2.05 * ncols, 0.9 + 2.0 * nrows)
    ax = fig.subplots()
    step = 2 + _GAP
    # one image for every matrix: each cell k × k pixels, the gaps masked (left blank)
    k = 20
    px = round(step * k)
    width, height = ncols * px - round(_GAP * k), nrows * px - round(_GAP * k)
    image = np.ma.masked_array(np.zeros((height, width)), mask=True)
    for r_i, fr in enumerate(rows_fr):
        y0 = r_i * step
        runs_row = []
        for c_i, pr in enumerate(privs):
            x0 = c_i * step
            rate, mean, runs = _confusion_cells(c[(c["fraction"] == fr) & (c["privacy"] == pr)])
            runs_row.append(runs)
            block = np.kron(rate, np.ones((k, k)))
            image[r_i * px : r_i * px + 2 * k, c_i * px : c_i * px + 2 * k] = block
            _confusion_texts(ax, rate, mean, x0, y0)
        lo, hi = min(runs_row), max(runs_row)
        seeds = f"{hi} seeds" if lo == hi else f"{lo}–{hi} seeds"
        ax.text(
            ncols * step - _GAP - 0.35, y0 + 0.5,
            f"{fraction_text(fr, (shares or {}).get((dataset, fr)))}\n{seeds}",
            ha="left", va="center", fontsize=8,
        )  # fmt: skip
    for c_i, pr in enumerate(privs):
        ax.text(
            c_i * step + 0.5, -0.6, "no DP" if pr == "none" else f"ε = {pr}",
            ha="center", va="bottom", fontsize=10,
        )  # fmt: skip
    right, bottom = width / k - 0.5, height / k - 0.5
    im = ax.imshow(
        image, cmap=cmap, vmin=0, vmax=1, extent=(-0.5, right, bottom, -0.5),
        interpolation="nearest", aspect="equal",
    )  # fmt: skip
    ax.set_xlim(-0.5, right)
    ax.set_ylim(bottom, -0.5)
    ax.set_xticks(
        [c_i * step + j for c_i in range(ncols) for j in (0, 1)], names * ncols, fontsize=7
    )
    ax.set_yticks(
        [r_i * step + i for r_i in range(nrows) for i in (0, 1)], names * nrows, fontsize=7
    )
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(im, ax=ax, shrink=0.6, label="share of the true class")
    fig.suptitle(f"{dataset}: confusion matrices per minority share", fontsize=11)
    return fig


def fraction_utility_figure(
    metrics: pd.DataFrame,
    *,
    dataset: str,
    cls: str = "1",
    mitigation: str = "none",
    metric_names: tuple[str, ...] = METRICS,
    shares: dict[tuple[str, str], float] | None = None,
    class_names: dict[str, tuple[str, str]] | None = None,
) -> Figure:
    """One class's metrics against ε at every minority fraction of the training split.

    Parameters
    ----------
    metrics : DataFrame
        :func:`~imbalanced_dp.studies.aggregate_metrics` output.
    dataset, cls, mitigation : str
        The dataset, the class (``"1"``: the minority) and the DP-SGD variant to draw.
    metric_names : tuple of str
        One panel per metric.
    shares : dict, optional
        ``(dataset, fraction) -> minority share`` for the legend.

    Returns
    -------
    Figure
        One panel per metric; in each, one line with a 95 % CI band per fraction and, where
        a non-private run exists, its level as a dashed line of the same colour.
    """
    g = _select(metrics, dataset=dataset, **{"class": cls})
    fractions = fraction_order(g["fraction"])
    base = _select(g, privacy="none", mitigation="none")
    dp = _select(g[g["privacy"] != "none"], mitigation=mitigation)
    eps = sorted({float(p) for p in dp["privacy"]})
    fig, axs = _fixed_grid(len(metric_names), 3, legend_entries=2 * len(fractions))
    for ax, m in zip(axs, metric_names):
        for i, fr in enumerate(fractions):
            color = PALETTE[i % len(PALETTE)]
            label = fraction_text(fr, (shares or {}).get((dataset, fr)))
            c = dp[(dp["fraction"] == fr) & (dp["metric"] == m)]
            c = c.assign(eps=c["privacy"].astype(float)).sort_values("eps")
            if not c.empty:
                _band_curve(ax, c, color=color, label=label, marker=MARKERS[i % len(MARKERS)])
            b = base[(base["fraction"] == fr) & (base["metric"] == m)]
            _level_line(ax, b, color=color, label=label, lw=1.0)
        if eps:
            _eps_axis(ax, eps)
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(METRIC_TITLES.get(m, m), fontsize=10)
    _outer_labels(axs, 3, "score")
    handles, labels = axs[0].get_legend_handles_labels()
    _grid_legend(fig, handles, labels)
    mit = "" if mitigation == "none" else f", {mitigation}"
    who = class_label(cls, dataset, class_names)
    fig.suptitle(f"{dataset}{mit}: class {who} against ε at each minority share", fontsize=11)
    return fig


# --------------------------------------------------------------------------- saving


#: Whether :func:`save_figure` also writes an SVG when not told (a report sets it for its
#: own figures: ``report --svg``).
_WRITE_SVG: ContextVar[bool] = ContextVar("imbalanced_dp_write_svg", default=True)


@contextmanager
def svg_figures(on: bool) -> Iterator[None]:
    """Within the block, :func:`save_figure` writes an SVG beside each PNG only if ``on``
    (unless its ``svg`` argument says otherwise)."""
    token = _WRITE_SVG.set(bool(on))
    try:
        yield
    finally:
        _WRITE_SVG.reset(token)


def writes_svg() -> bool:
    """Whether figures saved now get an SVG (see :func:`svg_figures`)."""
    return _WRITE_SVG.get()


@dataclass(frozen=True)
class SavedFigure:
    """Where a figure was written (``svg`` is ``None`` when no SVG was asked for), and its
    PNG bytes for inlining."""

    png: Path
    svg: Path | None
    png_bytes: bytes

    @property
    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png_bytes).decode("ascii")

    @property
    def paths(self) -> list[Path]:
        """The files written: the PNG, and the SVG if any."""
        return [self.png] if self.svg is None else [self.png, self.svg]


def save_figure(
    fig: Figure, directory: Path, stem: str, *, dpi: int = 110, svg: bool | None = None
) -> SavedFigure:
    """Write ``stem.png`` (and ``stem.svg``) into ``directory``.

    Parameters
    ----------
    fig : Figure
        What to save.
    directory : Path
        Created if missing.
    stem : str
        File name without extension.
    dpi : int
        Resolution of the PNG.
    svg : bool, optional
        Also write the figure as SVG. Default: yes, except inside a report built without
        ``--svg`` (:func:`svg_figures`), where the SVGs would double the time a report
        takes to draw.

    Returns
    -------
    SavedFigure
        The paths and the PNG bytes (for a data URI).

    Notes
    -----
    Output is reproducible: no timestamps in the metadata and a fixed SVG hash salt. The
    figure's layout is frozen after the PNG is drawn.
    """
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / f"{stem}.png"
    svg_path = directory / f"{stem}.svg" if (writes_svg() if svg is None else svg) else None
    import matplotlib as mpl

    with mpl.rc_context({"svg.hashsalt": "imbalanced-dp", "svg.fonttype": "path"}):
        fig.savefig(png, dpi=dpi, metadata={"Software": None})
        if svg_path is not None:
            # the layout is settled by the first draw; don't compute it again for the SVG
            fig.set_layout_engine("none")
            fig.savefig(svg_path, metadata={"Date": None, "Creator": None})
    return SavedFigure(png, svg_path, png.read_bytes())


MITIGATION_MEASURES = {
    "minority_recall": "minority recall",
    "balanced_accuracy": "balanced accuracy",
}


def mitigation_effects_figure(effects: pd.DataFrame, measure: str = "minority_recall") -> Figure:
    """Paired difference (mitigated − plain DP-SGD) of one measure per ε with 95 % CIs: one
    panel per dataset, one series per mitigation, a zero line.

    Parameters
    ----------
    effects : DataFrame
        :func:`imbalanced_dp.studies.mitigation_effects` (natural class balance rows are
        used when several fractions exist).
    measure : str
        A ``measure`` of ``effects``, e.g. ``"minority_recall"``.
    """

    e = effects[effects["measure"] == measure]
    if "natural" in set(e["fraction"]):
        e = e[e["fraction"] == "natural"]
    datasets = list(dict.fromkeys(e["dataset"]))
    n = max(1, len(datasets))
    fig = _new_figure(4.8 * n, 3.6)
    axes = fig.subplots(1, n, squeeze=False)[0]
    label = MITIGATION_MEASURES.get(measure, measure)
    for ax, ds in zip(axes, datasets):
        d = e[e["dataset"] == ds]
        eps = [p for p in privacy_order(d["privacy"]) if p != "none"]
        mits = list(dict.fromkeys(d["mitigation"]))
        width = 0.8 / max(1, len(mits))
        for i, m in enumerate(mits):
            dm = d[d["mitigation"] == m].set_index("privacy").reindex(eps)
            xs = [j + (i - (len(mits) - 1) / 2) * width for j in range(len(eps))]
            err = [dm["mean"] - dm["low"], dm["high"] - dm["mean"]]
            ax.errorbar(xs, dm["mean"], yerr=err, fmt="o", capsize=3, label=m)
        ax.axhline(0.0, color="grey", lw=1)
        ax.set_xticks(range(len(eps)), [f"ε = {p}" for p in eps])
        ax.set_title(ds)
        ax.set_ylabel(f"Δ {label} (mitigated − plain)")
        ax.legend(fontsize=8)
    return fig
