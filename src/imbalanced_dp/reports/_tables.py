"""The study's tables from the aggregates: Table 3 (non-private) and Table 4 (DP per ε).

Cells are ``mean ± CI half-width``. Builders return DataFrames of numbers (and a parallel
frame of cell text); formatters render Markdown, LaTeX (booktabs), CSV and plain text.
"""

from __future__ import annotations

import math

import pandas as pd

from ..metrics import METRICS
from ..studies import fraction_order, privacy_order

CLASS_ORDER = ("0", "1", "avg/total")


def _cell(mean: float, hw: float, digits: int = 3) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if hw is None or (isinstance(hw, float) and math.isnan(hw)):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {hw:.{digits}f}"


def metric_table(
    agg: pd.DataFrame,
    *,
    privacy: list[str],
    fraction: str = "natural",
    mitigation: str = "none",
    class_names: dict[str, tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Rows ``dataset, privacy, class``; for each metric the columns ``<m>`` (mean) and
    ``<m>_hw`` (CI half-width), plus ``n`` (seeds)."""
    a = agg[
        (agg["fraction"] == fraction)
        & (agg["mitigation"] == mitigation)
        & (agg["privacy"].isin(privacy))
        & (agg["metric"].isin(METRICS))
    ]
    rows = []
    groups = a.groupby(["dataset", "privacy", "class"], sort=False).indices
    metric = a["metric"].to_numpy()
    mean, hw, n = (a[c].to_numpy() for c in ("mean", "half_width", "n"))
    for ds in dict.fromkeys(a["dataset"]):
        for pr in [p for p in privacy_order(a["privacy"]) if p in privacy]:
            for cls in CLASS_ORDER:
                idx = groups.get((ds, pr, cls))
                if idx is None:
                    continue
                at = {metric[i]: i for i in idx}
                label = cls
                if class_names and ds in class_names and cls != "avg/total":
                    label = f"{cls} ({class_names[ds][int(cls)]})"
                row = {"dataset": ds, "privacy": pr, "class": label}
                for m in METRICS:
                    row[m] = float(mean[at[m]])
                    row[f"{m}_hw"] = float(hw[at[m]])
                row["n"] = int(max(n[i] for i in idx))
                rows.append(row)
    return pd.DataFrame(rows)


def table3(agg: pd.DataFrame, **kw) -> pd.DataFrame:
    """Table 3 of the study: the non-private models, per dataset and class."""
    return metric_table(agg, privacy=["none"], **kw)


def table4(agg: pd.DataFrame, **kw) -> pd.DataFrame:
    """Table 4 of the study: DP-SGD per dataset, ε (largest first) and class."""
    eps = [p for p in privacy_order(agg["privacy"]) if p != "none"]
    return metric_table(agg, privacy=eps, **kw)


def cells(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The table with ``mean ± half-width`` text cells."""
    out = table[["dataset", "privacy", "class"]].copy()
    out["privacy"] = ["none" if p == "none" else f"ε = {p}" for p in out["privacy"]]
    for m in METRICS:
        out[m] = [_cell(a, b, digits) for a, b in zip(table[m], table[f"{m}_hw"])]
    return out


def to_text(table: pd.DataFrame, digits: int = 3) -> str:
    """Aligned plain text, one block per dataset (and ε)."""
    if table.empty:
        return "(no results)"
    c = cells(table, digits)
    width = max(len(str(x)) for x in c["class"]) + 2
    cw = max(len(x) for m in METRICS for x in c[m]) + 2
    lines = []
    for (ds, pr), g in c.groupby(["dataset", "privacy"], sort=False):
        lines.append(f"{ds} — {pr}")
        lines.append(" " * width + "".join(f"{m:>{cw}}" for m in METRICS))
        for _, r in g.iterrows():
            lines.append(f"{r['class']:<{width}}" + "".join(f"{r[m]:>{cw}}" for m in METRICS))
        lines.append("")
    return "\n".join(lines).rstrip()


def _md(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def to_markdown(table: pd.DataFrame, digits: int = 3) -> str:
    """A Markdown (GitHub) table of ``mean ± half-width`` cells."""
    c = cells(table, digits)
    head = "| dataset | privacy | class | " + " | ".join(METRICS) + " |"
    sep = "|---|---|---|" + "---:|" * len(METRICS)
    body = [
        "| " + " | ".join(_md(r[k]) for k in ["dataset", "privacy", "class", *METRICS]) + " |"
        for _, r in c.iterrows()
    ]
    return "\n".join([head, sep, *body])


def frame_markdown(df: pd.DataFrame) -> str:
    """Any DataFrame of text or numbers as a Markdown table (numbers as given)."""
    head = "| " + " | ".join(_md(c) for c in df.columns) + " |"
    sep = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(_md(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "ε": r"$\varepsilon$",
    "±": r"$\pm$",
    "−": r"$-$",
}


def latex_escape(text) -> str:
    """Text safe in a LaTeX document (special characters, ε, ± and − in math mode)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(table: pd.DataFrame, *, caption: str = "", label: str = "", digits: int = 3) -> str:
    """A booktabs table; ± cells in math mode."""
    esc = latex_escape
    c = cells(table, digits)
    lines = [
        "\\begin{table}[ht]",
        "\\centering",
        "\\begin{tabular}{lll" + "r" * len(METRICS) + "}",
        "\\toprule",
        "dataset & privacy & class & " + " & ".join(METRICS) + " \\\\",
        "\\midrule",
    ]
    prev = None
    for _, r in c.iterrows():
        key = (r["dataset"], r["privacy"])
        if prev is not None and key != prev:
            lines.append("\\midrule")
        prev = key
        pm = "\\pm"
        vals = ["$" + v.replace("±", pm) + "$" if "±" in v else v for v in (r[m] for m in METRICS)]
        lines.append(
            " & ".join([esc(r["dataset"]), esc(r["privacy"]), esc(r["class"]), *vals]) + " \\\\"
        )
    lines += ["\\bottomrule", "\\end{tabular}"]
    if caption:
        lines.append(f"\\caption{{{esc(caption)}}}")
    if label:
        lines.append(f"\\label{{{label}}}")
    lines.append("\\end{table}")
    return "\n".join(lines)


def frame_latex(df: pd.DataFrame, *, caption: str = "", label: str = "") -> str:
    """Any DataFrame of text cells as a booktabs table (``±`` cells in math mode)."""

    def cell(v) -> str:
        v = str(v)
        if "±" in v and all(
            p.strip().replace(".", "").lstrip("-+").isdigit() for p in v.split("±")
        ):
            return "$" + v.replace("±", "\\pm") + "$"
        return latex_escape(v)

    lines = [
        "\\begin{table}[ht]",
        "\\centering",
        "\\begin{tabular}{" + "l" * len(df.columns) + "}",
        "\\toprule",
        " & ".join(latex_escape(c) for c in df.columns) + " \\\\",
        "\\midrule",
    ]
    lines += [" & ".join(cell(v) for v in row) + " \\\\" for row in df.itertuples(index=False)]
    lines += ["\\bottomrule", "\\end{tabular}"]
    if caption:
        lines.append(f"\\caption{{{latex_escape(caption)}}}")
    if label:
        lines.append(f"\\label{{{label}}}")
    lines.append("\\end{table}")
    return "\n".join(lines)


#: Columns of :func:`fairness_table`: the measures of ``aggregate_fairness`` and the
#: disparity amplification of the recall gap.
FAIRNESS_COLUMNS = (
    "recall_gap",
    "worst_recall",
    "minority_recall",
    "balanced_accuracy",
    "amplification",
)


def fairness_table(fairness: pd.DataFrame, amplification: pd.DataFrame) -> pd.DataFrame:
    """One row per setting: the fairness measures (mean and CI half-width) and the
    disparity amplification of the recall gap (gap with DP − without, paired by seed).

    Rows ``dataset, fraction, mitigation, privacy`` (``none`` first, then ε from largest to
    smallest); for each measure ``<m>`` (mean) and ``<m>_hw``; ``n`` (seeds).
    """
    if fairness.empty:
        return pd.DataFrame()
    amp = amplification[amplification["measure"] == "recall_gap"] if len(amplification) else None
    rows = []
    f_order = fraction_order(fairness["fraction"])
    for ds in dict.fromkeys(fairness["dataset"]):
        for fr in f_order:
            for mit in dict.fromkeys(fairness["mitigation"]):
                g = fairness[
                    (fairness["dataset"] == ds)
                    & (fairness["fraction"] == fr)
                    & (fairness["mitigation"] == mit)
                ]
                for pr in privacy_order(g["privacy"]):
                    h = g[g["privacy"] == pr].set_index("measure")
                    row = {"dataset": ds, "fraction": fr, "mitigation": mit, "privacy": pr}
                    for m in FAIRNESS_COLUMNS[:-1]:
                        row[m] = float(h.loc[m, "mean"])
                        row[f"{m}_hw"] = float(h.loc[m, "half_width"])
                    a = None
                    if amp is not None:
                        a = amp[
                            (amp["dataset"] == ds)
                            & (amp["fraction"] == fr)
                            & (amp["mitigation"] == mit)
                            & (amp["privacy"] == pr)
                        ]
                    ok = a is not None and len(a)
                    row["amplification"] = float(a["mean"].iloc[0]) if ok else math.nan
                    row["amplification_hw"] = float(a["half_width"].iloc[0]) if ok else math.nan
                    row["n"] = int(h["n"].max())
                    rows.append(row)
    return pd.DataFrame(rows)


def fairness_cells(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """:func:`fairness_table` with ``mean ± half-width`` text cells."""
    out = table[["dataset", "fraction", "mitigation", "privacy"]].copy()
    out["privacy"] = ["none" if p == "none" else f"ε = {p}" for p in out["privacy"]]
    for m in FAIRNESS_COLUMNS:
        out[m] = [_cell(a, b, digits) for a, b in zip(table[m], table[f"{m}_hw"])]
    out["n"] = table["n"]
    return out
