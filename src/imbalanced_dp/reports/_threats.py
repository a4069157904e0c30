"""Rendering of threat measurements: plain text for the command line, ROC figures on log–log
axes with the DP bound, and the report's threats section.

:mod:`imbalanced_dp.attacks` computes and returns plain records (:meth:`AttackReport.to_json`,
the store's ``attack`` and ``inversion`` entries); everything here reads them, with the
report's shared number formats (:mod:`._format`), figure saver and class colours
(:mod:`._figures`). Nothing is computed that the records do not hold.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ._figures import CLASS_COLORS, save_figure
from ._format import fmt_interval, fmt_num
from ._sections import Section

ATTACK_TITLES = {
    "loss": "loss threshold",
    "lira_offline": "LiRA offline",
    "lira_online": "LiRA online",
}
_CLASS_COLOURS = {**CLASS_COLORS, "all": CLASS_COLORS["avg/total"]}
_ATTACK_STYLES = {"lira_online": "-", "lira_offline": "-.", "loss": ":"}


# ---------------------------------------------------------------------- text


_num = fmt_num


def _ci(v, lo, hi, digits: int = 3) -> str:
    return fmt_interval(v, lo, hi, digits=digits)


def _signed_ci(v, lo, hi) -> str:
    return fmt_interval(v, lo, hi, signed=True)


def privacy_title(label: str, epsilon=None) -> str:
    if label == "none":
        return "non-private (plain SGD)"
    if label == "sigma0":
        return "σ = 0 control (clipping and Poisson sampling, no noise)"
    return f"ε = {label}"


def _class_label(rec: dict) -> str:
    if rec["class"] == "all":
        return "all"
    return f"{rec['class']} {rec.get('class_name', '')}".strip()


def gap_verdict(g: dict) -> str:
    if g.get("minority_leaks_more"):
        return "minority leaks more"
    if g.get("majority_leaks_more"):
        return "majority leaks more"
    if g.get("low") is None:
        return "no CI"
    return "no significant difference"


def format_text(report: dict) -> str:
    """The command line's summary of an :meth:`AttackReport.to_json` object (with its
    ``inversion`` part when present)."""
    from ._inversion import format_inversion_text

    lines: list[str] = []
    cfg = report.get("config", {})
    results = report.get("results", [])
    names = report.get("class_names", ["0", "1"])
    conf = round(100 * cfg.get("confidence", 0.95))
    if results:
        n = report.get("n_records")
        lines.append(
            f"Membership inference on {report['dataset']} — {n} records ({names[0]} = 0, "
            f"{names[1]} = 1); {cfg.get('shadows')} models per privacy level, each trained on "
            f"{n // 2 if n else '?'} random records for {cfg.get('epochs')} epochs; leave one "
            f"model out; [{conf} % bootstrap CIs]."
        )
        cw = max(len(_class_label(r)) for r in results) + 2
        for label in dict.fromkeys(r["privacy"] for r in results):
            rs = [r for r in results if r["privacy"] == label]
            head = privacy_title(label)
            st = next((s for s in report.get("settings", []) if s["label"] == label), None)
            if st and st.get("noise_multiplier") is not None:
                head += (
                    f" (spent {_num(st['epsilon_spent'], 3)} at δ = {st['delta']:g}, "
                    f"σ = {_num(st['noise_multiplier'], 2)}, q = {_num(st['sample_rate'], 4)}, "
                    f"{st['steps']} steps, {st['accountant']})"
                )
            lines += ["", head]
            lines.append(
                f"  {'class':<{cw}}{'attack':<16}{'AUC':<24}{'TPR @ 1% FPR':<24}"
                f"{'TPR @ 0.1% FPR':<24}"
                + ("DP bound @1%/0.1%" if rs[0].get("epsilon") is not None else "")
            )
            for r in rs:
                bound = ""
                if r.get("epsilon") is not None:
                    bound = (
                        f"{_num(r.get('dp_bound_at_fpr_1pct'))}/"
                        f"{_num(r.get('dp_bound_at_fpr_0_1pct'), 4)}"
                        + ("" if r.get("dp_bound_respected", True) else "  EXCEEDED")
                    )
                cells = [
                    _ci(r["auc"], r["auc_low"], r["auc_high"]),
                    _ci(*(r[f"tpr_at_fpr_1pct{k}"] for k in ("", "_low", "_high"))),
                    _ci(*(r[f"tpr_at_fpr_0_1pct{k}"] for k in ("", "_low", "_high"))),
                ]
                attack = ATTACK_TITLES.get(r["attack"], r["attack"])
                lines.append(
                    f"  {_class_label(r):<{cw}}{attack:<16}"
                    + "".join(f"{c:<24}" for c in cells)
                    + bound
                )
            gs = [g for g in report.get("class_gaps", []) if g["privacy"] == label]
            for attack in dict.fromkeys(g["attack"] for g in gs):
                parts = []
                for metric, title in (("auc", "AUC"), ("tpr_at_fpr_1pct", "TPR @ 1% FPR")):
                    g = next(
                        (x for x in gs if x["attack"] == attack and x["metric"] == metric), None
                    )
                    if g is not None:
                        diff = _signed_ci(g["minority_minus_majority"], g["low"], g["high"])
                        parts.append(f"{title} {diff} ({gap_verdict(g)})")
                lines.append(
                    f"  class 1 − class 0, {ATTACK_TITLES.get(attack, attack)}: " + "; ".join(parts)
                )
    audit = report.get("audit", [])
    if audit:
        a0 = audit[0]
        lines += [
            "",
            f"Audit of ε in one training run (Steinke, Nasr & Jagielski 2023): "
            f"{a0['canaries']} Dirac canaries, each included with probability 1/2; "
            f"ε_LB at {round(100 * a0['confidence'])} % confidence, δ = {a0['delta']:g} "
            f"(the most these canaries can show: {_num(a0.get('epsilon_lower_bound_max'), 2)}).",
            f"  {'setting':<14}{'ε':>8}{'ε spent':>10}{'σ':>9}{'ε_LB':>8}"
            f"{'guesses':>9}{'correct':>9}",
        ]
        for a in audit:
            eps = (
                "∞"
                if a["privacy"] == "sigma0"
                else ("–" if a["epsilon"] is None else f"{a['epsilon']:g}")
            )
            sig = "–" if a["noise_multiplier"] is None else f"{a['noise_multiplier']:.2f}"
            name = {"sigma0": "σ=0 control", "none": "non-private"}.get(
                a["privacy"], f"DP ε={a['privacy']}"
            )
            lines.append(
                f"  {name:<14}{eps:>8}{_num(a.get('epsilon_spent'), 3):>10}{sig:>9}"
                f"{a['epsilon_lower_bound']:>8.2f}{a['guesses']:>9}{a['correct']:>9}"
            )
        dp = [a for a in audit if a["epsilon"] is not None]
        if dp:
            ok = all(a["epsilon_lower_bound"] <= a["epsilon"] for a in dp)
            lines.append(
                "  ε_LB ≤ ε for every DP setting: " + ("yes" if ok else "NO — check the engine")
            )
    inv = report.get("inversion")
    if inv:
        if lines:
            lines.append("")
        lines.append(format_inversion_text(inv))
    notes = list(report.get("notes", [])) if (results or audit) else []
    notes += list(inv.get("notes", [])) if inv else []
    lines += ["", "Notes:"] + [f"  - {n}" for n in notes]
    return "\n".join(line.rstrip() for line in lines).strip("\n")


# ---------------------------------------------------------------------- figures


def roc_figure(curves: list[dict], *, title: str = "", attacks: Iterable[str] | None = None):
    """A figure with one log–log ROC panel per privacy level: each class's curve per attack,
    the 95 % band of the strongest attack shown, the chance line, and for DP levels the bound
    TPR ≤ e^ε · FPR + δ. Returns a :class:`matplotlib.figure.Figure` (no pyplot state)."""
    from matplotlib.figure import Figure

    levels = list(dict.fromkeys(c["privacy"] for c in curves))
    attacks = (
        list(attacks) if attacks is not None else list(dict.fromkeys(c["attack"] for c in curves))
    )
    banded = "lira_online" if "lira_online" in attacks else attacks[0] if attacks else None
    n = max(1, len(levels))
    fig = Figure(figsize=(3.6 * n, 3.8), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False)[0]
    lo_lim = 1e-4
    for ax, lev in zip(axes, levels):
        cs = [c for c in curves if c["privacy"] == lev and c["attack"] in attacks]
        grid = np.logspace(-5, 0, 200)
        ax.plot(grid, grid, color="#999999", lw=0.8, ls="--", label="chance")
        eps = next((c["epsilon"] for c in cs if c.get("epsilon") is not None), None)
        if eps is not None:
            delta = next(c["delta"] for c in cs if c.get("epsilon") is not None)
            ax.plot(
                grid,
                np.minimum(1.0, math.exp(eps) * grid + delta),
                color="black",
                lw=1.2,
                ls="--",
                label="DP bound e^ε·FPR+δ",
            )
        for c in cs:
            if c["class"] == "all":
                continue
            f = np.asarray(c["fpr"], dtype=float)
            t = np.asarray([np.nan if v is None else v for v in c["tpr"]], dtype=float)
            keep = f >= c.get("min_fpr", 0.0)
            colour = _CLASS_COLOURS.get(c["class"], "#333333")
            ax.step(
                f[keep],
                np.where(t[keep] > 0, t[keep], np.nan),
                where="post",
                color=colour,
                ls=_ATTACK_STYLES.get(c["attack"], "-"),
                lw=1.3,
                label=f"class {c['class']}, {ATTACK_TITLES.get(c['attack'], c['attack'])}",
            )
            if c["attack"] == banded and c.get("low") is not None:
                lo = np.asarray([np.nan if v is None else v for v in c["low"]], dtype=float)
                hi = np.asarray([np.nan if v is None else v for v in c["high"]], dtype=float)
                ax.fill_between(
                    f[keep],
                    np.where(lo[keep] > 0, lo[keep], lo_lim),
                    np.where(hi[keep] > 0, hi[keep], lo_lim),
                    step="post",
                    color=colour,
                    alpha=0.15,
                    lw=0,
                )
            lo_lim = min(lo_lim, max(float(c.get("min_fpr", 1e-4)), 1e-5))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo_lim, 1.0)
        ax.set_ylim(lo_lim, 1.0)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title(privacy_title(lev) if lev != "none" else "non-private", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    if len(axes):
        # one legend for every panel: the DP bound (dashed, black) is drawn on the DP panels
        # only, which may not include the first one
        entries: dict[str, object] = {}
        for ax in axes:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                entries.setdefault(lab, h)
        axes[-1].legend(list(entries.values()), list(entries), fontsize=6.5, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "dataset"


# ---------------------------------------------------------------------- report section


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f'<table class="attacks"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _wanted_datasets(store, run_ids) -> set[str] | None:
    """The datasets of ``run_ids`` (``None``: every dataset)."""
    if run_ids is None:
        return None
    ids = list(run_ids)
    if not ids:
        return set()
    marks = ",".join("?" * len(ids))
    q = store.query(f"SELECT DISTINCT dataset FROM runs WHERE run_id IN ({marks})", tuple(ids))
    return set(q["dataset"])


def _payloads_by_dataset(store, run_ids, wanted: set[str] | None = None) -> dict[str, list[dict]]:
    try:
        df = store.extras("attack")
    except Exception:
        return {}
    if df.empty:
        return {}
    if wanted is None and run_ids is not None:
        wanted = _wanted_datasets(store, run_ids)
    out: dict[str, list[dict]] = {}
    for p in df["payload"]:
        if not isinstance(p, dict) or "dataset" not in p:
            continue
        if wanted is not None and p["dataset"] not in wanted:
            continue
        out.setdefault(p["dataset"], []).append(p)
    order = {"none": 0, "sigma0": 1}
    for ps in out.values():
        ps.sort(
            key=lambda p: (
                order.get(p["privacy"], 2),
                -float(p["privacy"]) if p["privacy"] not in order else 0,
            )
        )
    return out


def dataset_html(dataset: str, payloads: list[dict], out_dir: Path) -> tuple[str, list[Path]]:
    """HTML (figure inline, tables) of one dataset's stored attack entries; writes the
    figure (PNG and SVG, with the report's figure saver) and CSV tables under ``out_dir``
    and returns their paths relative to it."""
    import pandas as pd

    files: list[Path] = []
    parts = [f"<h3>{html.escape(dataset)}</h3>"]
    curves = [c for p in payloads for c in p.get("curves", [])]
    results = [r for p in payloads for r in p.get("results", [])]
    gaps = [g for p in payloads for g in p.get("class_gaps", [])]
    audit = [p["audit"] for p in payloads if p.get("audit")]
    cfg = next((p.get("config") for p in payloads if p.get("config")), {}) or {}
    if curves:
        fig = roc_figure(curves, title=f"{dataset}: membership inference ROC per class")
        saved = save_figure(fig, Path(out_dir) / "figures", f"mia_roc_{_safe(dataset)}")
        files += [Path("figures") / p.name for p in saved.paths]
        uri = saved.data_uri
        parts.append(
            f'<figure><img src="{uri}" alt="ROC curves of membership inference on '
            f'{html.escape(dataset)}, log-log axes, per class and privacy level">'
            "<figcaption>ROC curves on log–log axes, pooled over "
            f"{cfg.get('shadows', '?')} target models (leave one model out); class 0 blue, "
            "class 1 vermilion; solid LiRA online (shaded: 95 % bootstrap band), dash-dot LiRA "
            "offline, dotted loss threshold; black dashed: the bound TPR ≤ e^ε·FPR + δ of a "
            "DP model.</figcaption></figure>"
        )
    if results:
        rows = []
        for r in results:
            rows.append(
                [
                    r["privacy"],
                    _class_label(r),
                    ATTACK_TITLES.get(r["attack"], r["attack"]),
                    _ci(r["auc"], r["auc_low"], r["auc_high"]),
                    _ci(r["tpr_at_fpr_1pct"], r["tpr_at_fpr_1pct_low"], r["tpr_at_fpr_1pct_high"]),
                    _ci(
                        r["tpr_at_fpr_0_1pct"],
                        r["tpr_at_fpr_0_1pct_low"],
                        r["tpr_at_fpr_0_1pct_high"],
                    ),
                    "–" if r.get("epsilon") is None else _num(r.get("dp_bound_at_fpr_1pct")),
                    "–"
                    if r.get("epsilon") is None
                    else ("yes" if r.get("dp_bound_respected") else "NO"),
                ]
            )
        parts.append("<h4>Membership inference per class (95 % CI)</h4>")
        parts.append(
            _table(
                [
                    "privacy",
                    "class",
                    "attack",
                    "AUC",
                    "TPR @ 1% FPR",
                    "TPR @ 0.1% FPR",
                    "DP bound @ 1%",
                    "bound respected",
                ],
                rows,
            )
        )
    if gaps:
        rows = [
            [
                g["privacy"],
                ATTACK_TITLES.get(g["attack"], g["attack"]),
                g["metric"],
                _signed_ci(g["minority_minus_majority"], g["low"], g["high"]),
                gap_verdict(g),
            ]
            for g in gaps
        ]
        parts.append("<h4>Does the minority class leak more? (class 1 − class 0, paired CI)</h4>")
        parts.append(_table(["privacy", "attack", "metric", "difference [CI]", "verdict"], rows))
    if audit:
        rows = [
            [
                a["privacy"],
                "∞" if a["privacy"] == "sigma0" else _num(a.get("epsilon"), 2),
                _num(a.get("epsilon_spent")),
                _num(a.get("noise_multiplier"), 2),
                f"{a['epsilon_lower_bound']:.2f}",
                _num(a.get("epsilon_lower_bound_max"), 2),
                a["canaries"],
                a["guesses"],
                a["correct"],
            ]
            for a in audit
        ]
        parts.append("<h4>Audit of ε in one training run (Steinke, Nasr &amp; Jagielski 2023)</h4>")
        parts.append(
            _table(
                [
                    "setting",
                    "ε",
                    "ε spent",
                    "σ",
                    "ε_LB (95 %)",
                    "largest possible ε_LB",
                    "canaries",
                    "guesses",
                    "correct",
                ],
                rows,
            )
        )
    if results or audit:
        tabs = Path(out_dir) / "tables"
        tabs.mkdir(parents=True, exist_ok=True)
        for rows, stem in ((results, "mia"), (audit, "privacy_audit")):
            if rows:
                rel = Path("tables") / f"{stem}_{_safe(dataset)}.csv"
                pd.DataFrame(rows).to_csv(Path(out_dir) / rel, index=False)
                files.append(rel)
    return "\n".join(parts), files


def threat_sections(store, run_ids, out_dir) -> list[Section]:
    """The report's threats section: the stored membership-inference and audit results, and
    attribute inference with class inversion next to them (none when nothing is stored)."""
    from ._inversion import inversion_html, inversion_payloads_by_dataset

    wanted = _wanted_datasets(store, run_ids)
    if wanted is not None and not wanted:
        return []
    by_ds = _payloads_by_dataset(store, run_ids, wanted)
    inv_ds = inversion_payloads_by_dataset(store, wanted)
    if not by_ds and not inv_ds:
        return []
    notes = next((p.get("notes") for ps in by_ds.values() for p in ps if p.get("notes")), []) or []
    inv_notes = (
        next((p.get("notes") for ps in inv_ds.values() for p in ps if p.get("notes")), []) or []
    )
    parts = []
    if by_ds:
        parts.append(
            "<p>Membership inference per class on models trained by DP-SGD (loss threshold, "
            "Yeom et al. 2018; LiRA, Carlini et al. 2022), and an empirical lower bound on ε "
            "from one training run per setting. Following Kulynych et al. (2022), classes are "
            "compared by confidence intervals, not raw rates.</p>"
        )
    if inv_ds:
        parts.append(
            "<p>Attribute inference per class (Fredrikson et al. 2014; Yeom et al. 2018; "
            "Mehnaz et al. 2022): given a patient's other columns and label, can an attacker "
            "with the model infer the hidden one better than an imputation from the other "
            "columns alone (Jayaraman &amp; Evans 2022), and better for training records than "
            "for others? And what a class inversion reconstructs (Fredrikson et al. 2015).</p>"
        )
    files: list[Path] = []
    out = Path(out_dir)
    for ds in dict.fromkeys([*by_ds, *inv_ds]):
        if ds in by_ds:
            h, f = dataset_html(ds, by_ds[ds], out)
        else:
            h, f = f"<h3>{html.escape(ds)}</h3>", []
        parts.append(h)
        files += f
        if ds in inv_ds:
            h, f = inversion_html(ds, inv_ds[ds], out)
            parts.append(h)
            files += f
    every = [*notes, *inv_notes]
    if every:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in every) + "</ul>")
    topics = []
    if by_ds:
        topics.append("membership inference per class and an audit of ε")
    if inv_ds:
        topics.append("attribute inference and class inversion")
    return [
        Section(
            id="threats",
            title="Threats: " + "; ".join(topics),
            html="\n".join(parts),
            files=files,
        )
    ]
