"""The report's mitigation section: each mitigation against plain DP-SGD, per ε."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import pandas as pd

from ..reports._sections import Section, register_section_provider

MEASURES = {
    "minority_recall": ("minority recall", +1),
    "balanced_accuracy": ("balanced accuracy", +1),
    "recall_gap": ("recall gap (majority − minority)", -1),
    "worst_recall": ("worst-class recall", +1),
    "cost_of_privacy_balanced_accuracy": ("cost of privacy in balanced accuracy", -1),
}


def verdict(row, direction: int) -> str:
    """``helps`` / ``hurts`` only when the CI of the paired difference excludes zero."""
    lo, hi = row["low"], row["high"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "undecided (too few seeds)"
    if lo > 0:
        return "helps" if direction > 0 else "hurts"
    if hi < 0:
        return "hurts" if direction > 0 else "helps"
    return "no evidence of a change"


def effects_table(effects: pd.DataFrame) -> pd.DataFrame:
    """Mitigation effects with readable labels and verdicts."""
    rows = []
    for _, r in effects.iterrows():
        label, direction = MEASURES.get(r["measure"], (r["measure"], +1))
        rows.append(
            {
                "dataset": r["dataset"],
                "fraction": r["fraction"],
                "epsilon": r["privacy"],
                "mitigation": r["mitigation"],
                "measure": label,
                "difference": r["mean"],
                "low": r["low"],
                "high": r["high"],
                "n": r["n"],
                "p_value": r["p_value"],
                "verdict": verdict(r, direction),
            }
        )
    return pd.DataFrame(rows)


def effects_figure(effects: pd.DataFrame, measure: str = "minority_recall"):
    """Paired difference (mitigated − plain DP-SGD) of one measure per ε, with 95 % CIs,
    one panel per dataset, one series per mitigation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..studies._aggregate import privacy_order

    e = effects[effects["measure"] == measure]
    datasets = list(dict.fromkeys(e["dataset"]))
    fig, axes = plt.subplots(
        1, max(1, len(datasets)), figsize=(5.2 * max(1, len(datasets)), 3.6), squeeze=False
    )
    for ax, ds in zip(axes[0], datasets):
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
        ax.set_ylabel(f"Δ {MEASURES.get(measure, (measure,))[0]}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return base64.b64encode(buf.getvalue()).decode()


@register_section_provider
def mitigation_section(store, run_ids, out_dir: Path) -> list[Section]:
    """The section, when the store has mitigated runs."""
    import matplotlib.pyplot as plt

    from ..studies._aggregate import mitigation_effects, store_frame

    df = store_frame(store, run_ids)
    if df.empty or not (df["mitigation"] != "none").any():
        return []
    effects = mitigation_effects(df)
    if effects.empty:
        return []
    table = effects_table(effects)
    out_dir = Path(out_dir)
    files = []
    (out_dir / "tables").mkdir(parents=True, exist_ok=True)
    p = out_dir / "tables" / "mitigation_effects.csv"
    table.to_csv(p, index=False, float_format="%.6g")
    files.append(p)
    n = int(table["n"].max()) if len(table) else 0
    figs_html = []
    for measure in ("minority_recall", "balanced_accuracy"):
        fig = effects_figure(effects, measure)
        (out_dir / "figures").mkdir(parents=True, exist_ok=True)
        for ext in ("png", "svg"):
            f = out_dir / "figures" / f"mitigation_{measure}.{ext}"
            fig.savefig(f)
            files.append(f)
        label = MEASURES[measure][0]
        figs_html.append(
            f'<figure><img alt="{label}" src="data:image/png;base64,{_png(fig)}"/>'
            f"<figcaption>Change in {label} of each mitigation against plain DP-SGD at the "
            f"same ε (paired by seed), mean and 95 % CI over {n} seeds; above zero is "
            "higher.</figcaption></figure>"
        )
        plt.close(fig)
    rows = []
    for _, r in table.iterrows():
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(v))}</td>"
                for v in (
                    r["dataset"],
                    f"ε = {r['epsilon']}",
                    r["mitigation"],
                    r["measure"],
                    f"{r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]",
                    f"{r['p_value']:.3g}",
                    r["verdict"],
                )
            )
            + "</tr>"
        )
    body = (
        "<p>Each mitigation is compared with plain DP-SGD at the same ε, paired by seed. "
        "A mitigation is said to help only when the 95 % CI of the paired difference "
        "excludes zero in its favour. Every mitigated run's total ε, including its "
        "auxiliary noisy counts, is within the target (see the privacy ledger).</p>"
        + "".join(figs_html)
        + "<table><caption>Mitigations against plain DP-SGD: paired differences "
        f"(mitigated − plain), mean [95 % CI] over {n} seeds, paired t-test p-value."
        "</caption><thead><tr><th>dataset</th><th>privacy</th><th>mitigation</th>"
        "<th>measure</th><th>difference</th><th>p</th><th>verdict</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    return [Section(id="mitigations", title="Mitigations", html=body, files=files)]
