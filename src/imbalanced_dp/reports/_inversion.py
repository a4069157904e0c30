"""Rendering of attribute inference and class inversion: text for the command line, the
figures, the findings in words and the report's HTML (shown in the threats section, after
membership inference).

Everything here reads the plain records of :meth:`InversionReport.to_json` or the store's
``inversion`` entries; nothing is computed that the records do not hold.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

import numpy as np

from ._figures import CLASS_COLORS, class_label, save_figure
from ._format import fmt_num, fmt_signed

#: The attack whose numbers the summaries lead with.
LEAD = "learned"


# ---------------------------------------------------------------------- numbers as text


_num = fmt_num
_signed = fmt_signed


def signed_ci(rec: dict, key: str, digits: int = 3) -> str:
    """``+0.052 [+0.021, +0.083]`` of ``rec[key]`` and its ``_low``/``_high``."""
    lo, hi = rec.get(f"{key}_low"), rec.get(f"{key}_high")
    if lo is None or hi is None:
        return _signed(rec.get(key), digits)
    return f"{_signed(rec[key], digits)} [{_signed(lo, digits)}, {_signed(hi, digits)}]"


def privacy_text(label: str) -> str:
    return "non-private" if label == "none" else f"ε = {label}"


def _levels(records: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["privacy"] for r in records))


def _pick(records, **eq) -> list[dict]:
    return [r for r in records if all(r.get(k) == v for k, v in eq.items())]


# ---------------------------------------------------------------------- findings


def _where(rec: dict) -> str:
    return (
        rec["attribute"] if rec["class"] == "all" else f"{rec['attribute']} (class {rec['class']})"
    )


def inversion_findings(inv: dict) -> list[str]:
    """The answers in words: which columns leak beyond imputation, whether the minority
    leaks more, what each privacy level leaves, the DP check and the class inversion."""
    res = inv.get("results", [])
    gaps = inv.get("class_gaps", [])
    out: list[str] = []
    names = inv.get("class_names", ["0", "1"])
    for lab in _levels(res):
        rs = _pick(res, privacy=lab, attack=LEAD)
        head = privacy_text(lab)
        chance = 0.05 * len(rs)
        beyond = [r for r in rs if r["beats_imputation"]]
        leak = [r for r in rs if r["members_leak_more"]]
        if beyond:
            parts = []
            for r in beyond:
                also = (r.get("advantage_vs_imputation_nonmembers_low") or 0) > 0
                parts.append(
                    f"{_where(r)} {signed_ci(r, 'advantage_vs_imputation')}"
                    + (
                        " (on non-members too: what the model learned about the population)"
                        if also
                        else " (not on non-members)"
                    )
                )
            s = f"{head}: the learned attack beats imputation on members for " + "; ".join(parts)
        else:
            s = f"{head}: the learned attack beats imputation on no column"
        if leak:
            s += "; members are inferred better than non-members (net of imputation) for " + (
                ", ".join(_where(r) for r in leak)
            )
        else:
            s += "; members are inferred no better than non-members on any column"
        conf = [
            r
            for r in _pick(res, privacy=lab, attack="confidence")
            if r["beats_imputation"] and r["class"] == "all"
        ]
        if conf:
            s += "; the confidence attack beats imputation for " + ", ".join(
                r["attribute"] for r in conf
            )
        s += (
            f" ({len(rs)} column × class intervals per measure: about {chance:.0f} would "
            "exclude 0 by chance at 95 %)"
        )
        out.append(s + ".")
        minority = _pick(gaps, privacy=lab, attack=LEAD, metric="advantage_vs_imputation")
        more = [g["attribute"] for g in minority if g["minority_leaks_more"]]
        less = [g["attribute"] for g in minority if g["majority_leaks_more"]]
        if more or less:
            bits = []
            if more:
                bits.append(f"the minority ({names[1]}) leaks more for {', '.join(more)}")
            if less:
                bits.append(f"the majority ({names[0]}) leaks more for {', '.join(less)}")
            out.append(f"{head}, class 1 − class 0 of the advantage: " + "; ".join(bits) + ".")
        else:
            out.append(
                f"{head}: no column shows a difference between the classes in the advantage "
                "over imputation (every paired CI includes 0)."
            )
    dp = [r for r in res if r.get("epsilon") is not None]
    if dp:
        broken = [r for r in dp if not r.get("dp_bound_respected", True)]
        if broken:
            out.append(
                "DP check FAILED for "
                + ", ".join(
                    f"{privacy_text(r['privacy'])} {r['attribute']} class {r['class']} "
                    f"{r['attack']}"
                    for r in broken[:5]
                )
                + ": success on members exceeds e^ε · success on non-members + δ — check "
                "the engine."
            )
        else:
            out.append(
                "Every DP record respects the bound of its ε for the distinguishing view "
                "(success on members ≤ e^ε · success on non-members + δ, both ways)."
            )
    for m in inv.get("model_inversion", []):
        if m.get("closer_to_members"):
            out.append(
                f"Class inversion, {privacy_text(m['privacy'])}, class {m['class']}: the "
                "reconstruction lies closer to training records than to non-members "
                f"({signed_ci(m, 'distance_gap', 2)} in scaled units)."
            )
    if inv.get("model_inversion") and not any(
        m.get("closer_to_members") for m in inv["model_inversion"]
    ):
        out.append(
            "Class inversion: at no privacy level does a class's reconstruction lie "
            "significantly closer to training records than to non-members."
        )
    return out


# ---------------------------------------------------------------------- text


def _non_cell(rec: dict) -> str:
    low = rec.get("advantage_vs_imputation_nonmembers_low")
    star = "*" if low is not None and low > 0 else ""
    return _signed(rec.get("advantage_vs_imputation_nonmembers")) + star


def _cls_cell(rec: dict | None) -> str:
    if rec is None:
        return "–"
    return _signed(rec["advantage_vs_imputation"]) + ("*" if rec["beats_imputation"] else "")


def format_inversion_text(inv: dict) -> str:
    """The command line's summary of an :meth:`InversionReport.to_json` object."""
    cfg = inv.get("config", {})
    res = inv.get("results", [])
    names = inv.get("class_names", ["0", "1"])
    n = inv.get("n_records")
    m = cfg.get("members")
    conf = round(100 * cfg.get("confidence", 0.95))
    rest = n - 2 * m if n and m else "?"
    lines = [
        f"Attribute inference on {inv['dataset']} — {n} records ({names[0]} = 0, {names[1]} = "
        f"1); {cfg.get('seeds')} target models per privacy level, each trained on {m} records "
        f"for {cfg.get('epochs')} epochs; {m} non-members; the rest ({rest}) for the attacker "
        f"({cfg.get('shadows')} shadow model(s) per target, the imputation); "
        f"success = share of records whose bin is guessed right [{conf} % CIs over models].",
    ]
    for lab in _levels(res):
        lines += ["", privacy_text(lab) + (" (plain SGD)" if lab == "none" else "")]
        dp = lab != "none"
        lines.append(
            f"  {'attribute':<26}{'bins':>5}{'imput.':>8}{'conf.':>8}{'learned':>9}"
            f"  {'learned − imputation':<26}{'non-m.':>8}{'class 0':>8}{'class 1':>8}"
            f"  {'members − non-members':<26}" + ("DP bound" if dp else "")
        )
        for r in _pick(res, privacy=lab, attack=LEAD, **{"class": "all"}):
            c = _pick(res, privacy=lab, attack="confidence", attribute=r["attribute"])
            conf_all = next((x for x in c if x["class"] == "all"), {})
            per = {
                x["class"]: x
                for x in _pick(res, privacy=lab, attack=LEAD, attribute=r["attribute"])
            }

            bound = ""
            if dp:
                ok = all(
                    x.get("dp_bound_respected", True)
                    for x in _pick(res, privacy=lab, attribute=r["attribute"])
                )
                bound = "ok" if ok else "EXCEEDED"
            lines.append(
                f"  {r['attribute'][:25]:<26}{r['bins']:>5}{_num(r['imputation_success']):>8}"
                f"{_num(conf_all.get('member_success')):>8}{_num(r['member_success']):>9}"
                f"  {signed_ci(r, 'advantage_vs_imputation'):<26}{_non_cell(r):>8}"
                f"{_cls_cell(per.get('0')):>8}"
                f"{_cls_cell(per.get('1')):>8}"
                f"  {signed_ci(r, 'advantage_members_adjusted'):<26}{bound}"
            )
    if res:
        lines += [
            "",
            "  Success on members; 'learned − imputation' on the same members, 'non-m.' the "
            "same on non-members, then per class (* where the CI excludes 0); 'members − "
            "non-members' net of the imputation's own difference on the split. An advantage "
            "on non-members as well is population inference (what the model learned from "
            "its training data about everyone), not a leak of the training records.",
        ]
    mi = inv.get("model_inversion", [])
    if mi:
        feats = inv.get("feature_names", [])
        lines += [
            "",
            "Class inversion (Fredrikson et al. 2015): gradient ascent from the average record "
            "on log p(class | x) with a standard normal prior on the scaled columns; distances "
            "in scaled units to the nearest member / non-member of the class.",
            f"  {'privacy':<13}{'class':<20}{'p(class)':>9}{'member':>9}{'non-memb.':>10}"
            f"  {'non − member [CI]':<28}{'to class mean':>13}",
        ]
        for r in mi:
            cl = f"{r['class']} {r.get('class_name', '')}"[:19]
            lines.append(
                f"  {privacy_text(r['privacy']):<13}{cl:<20}{_num(r['probability'], 2):>9}"
                f"{_num(r['distance_member'], 2):>9}{_num(r['distance_nonmember'], 2):>10}"
                f"  {signed_ci(r, 'distance_gap', 2):<28}{_num(r['distance_class_mean'], 2):>13}"
            )
        if 0 < len(feats) <= 10:
            lines += ["", "  Reconstructed typical patient (mean over models; class mean below)"]
            w = max(9, *(len(f[:12]) + 1 for f in feats))
            lines.append(
                f"  {'privacy':<13}{'class':<7}" + "".join(f"{f[:12]:>{w}}" for f in feats)
            )
            for c in ("0", "1"):
                rs = [r for r in mi if r["class"] == c]
                for r in rs:
                    lines.append(
                        f"  {privacy_text(r['privacy']):<13}{c:<7}"
                        + "".join(f"{_num(v, 2):>{w}}" for v in r["reconstruction"])
                    )
                if rs:
                    lines.append(
                        f"  {'class mean':<13}{c:<7}"
                        + "".join(f"{_num(v, 2):>{w}}" for v in rs[0]["class_mean"])
                    )
        from ..attacks import MODEL_INVERSION_TEXT  # (the attacks load numba: not for every report)

        lines += ["", "  " + MODEL_INVERSION_TEXT.format(d=len(feats))]
    findings = inversion_findings(inv)
    if findings:
        lines += ["", "Findings:"] + [f"  - {f}" for f in findings]
    return "\n".join(line.rstrip() for line in lines)


# ---------------------------------------------------------------------- figures


def _class_colours() -> dict[str, str]:
    return CLASS_COLORS


def advantage_figure(results: list[dict], *, attack: str = LEAD, title: str = "", max_panels=12):
    """One panel per attribute: the attack's advantage over imputation (solid) and of members
    over non-members (dashed, net of the imputation's) against the privacy level, per class,
    with 95 % CIs and a zero line. Returns a :class:`matplotlib.figure.Figure`."""
    from matplotlib.figure import Figure

    colours = _class_colours()
    rs = [r for r in results if r["attack"] == attack and r["class"] in ("0", "1")]
    attrs = list(dict.fromkeys(r["attribute"] for r in rs))[:max_panels]
    levels = _levels(rs)
    n = max(1, len(attrs))
    ncols = min(4, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(3.1 * ncols, 2.6 * nrows + 0.4), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True).ravel()
    x = np.arange(len(levels), dtype=float)
    for ax, attr in zip(axes, attrs):
        ax.axhline(0.0, color="#999999", lw=0.8)
        for j, cls in enumerate(("0", "1")):
            for key, ls, off in (
                ("advantage_vs_imputation", "-", -0.08),
                ("advantage_members_adjusted", "--", 0.08),
            ):
                pts = [
                    next(
                        (
                            r
                            for r in rs
                            if r["attribute"] == attr and r["class"] == cls and r["privacy"] == lv
                        ),
                        None,
                    )
                    for lv in levels
                ]
                y = np.array([np.nan if p is None or p[key] is None else p[key] for p in pts])
                lo = np.array(
                    [
                        np.nan if p is None or p[f"{key}_low"] is None else p[f"{key}_low"]
                        for p in pts
                    ]
                )
                hi = np.array(
                    [
                        np.nan if p is None or p[f"{key}_high"] is None else p[f"{key}_high"]
                        for p in pts
                    ]
                )
                xs = x + off + (j - 0.5) * 0.06
                ax.errorbar(
                    xs,
                    y,
                    yerr=np.vstack([y - lo, hi - y]),
                    color=colours.get(cls, "#333333"),
                    ls=ls,
                    marker="o" if ls == "-" else "s",
                    ms=3.5,
                    lw=1.2,
                    capsize=2,
                    label=(
                        f"class {class_label(cls)}, "
                        + ("attack − imputation" if ls == "-" else "members − non-members")
                    ),
                )
        ax.set_xticks(x)
        ax.set_xticklabels(["none" if lv == "none" else f"ε={lv}" for lv in levels])
        ax.set_title(attr, fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    for ax in axes[len(attrs) :]:
        fig.delaxes(ax)
    if len(attrs):
        axes[0].set_ylabel("advantage (share of bins)")
        axes[0].legend(fontsize=6, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def model_inversion_figure(records: list[dict], *, title: str = ""):
    """Two panels (class 0, class 1): each privacy level's reconstructed typical patient in
    scaled units (mean over models, band ± 1 sd), the class mean dashed."""
    from matplotlib.figure import Figure

    from ..reports._figures import PALETTE, class_label

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    levels = _levels(records)
    for ax, cls in zip(axes, ("0", "1")):
        rs = [r for r in records if r["class"] == cls]
        if not rs:
            ax.set_visible(False)
            continue
        feats = rs[0]["features"]
        x = np.arange(len(feats))
        ax.axhline(0.0, color="#bbbbbb", lw=0.8)
        ax.plot(x, rs[0]["class_mean_scaled"], color="black", ls="--", lw=1.2, label="class mean")
        for k, lv in enumerate(levels):
            r = next((r for r in rs if r["privacy"] == lv), None)
            if r is None:
                continue
            y = np.asarray(r["reconstruction_scaled"], dtype=float)
            sd = np.asarray([np.nan if v is None else v for v in r["reconstruction_scaled_sd"]])
            colour = PALETTE[(k + 2) % len(PALETTE)] if lv != "none" else "#000000"
            ax.plot(x, y, marker="o", ms=3.5, lw=1.3, color=colour, label=privacy_text(lv))
            ax.fill_between(x, y - sd, y + sd, color=colour, alpha=0.12, lw=0)
        ax.set_xticks(x)
        ax.set_xticklabels(feats, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"class {class_label(cls)} ({rs[0].get('class_name', '')})", fontsize=10)
        ax.set_ylabel("scaled value (sd from the mean)")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def write_inversion_figures(inv: dict, out_dir: Path, *, suffix: str = "") -> list[Path]:
    """Write ``inversion_advantage`` and ``model_inversion`` (PNG and SVG) into ``out_dir``;
    returns the paths written."""
    out: list[Path] = []
    ds = inv.get("dataset", "")
    if inv.get("results"):
        fig = advantage_figure(
            inv["results"], title=f"{ds}: attribute inference, learned attack, per class"
        )
        s = save_figure(fig, Path(out_dir), f"inversion_advantage{suffix}")
        out += s.paths
    if inv.get("model_inversion"):
        fig = model_inversion_figure(
            inv["model_inversion"], title=f"{ds}: the model's typical patient per class"
        )
        s = save_figure(fig, Path(out_dir), f"model_inversion{suffix}")
        out += s.paths
    return out


# ---------------------------------------------------------------------- report HTML


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f'<table class="attacks"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def merge_payloads(payloads: list[dict]) -> dict:
    """One :meth:`InversionReport.to_json`-like object from a dataset's store entries."""
    first = payloads[0]
    return {
        "dataset": first["dataset"],
        "n_records": first.get("n_records"),
        "class_names": first.get("class_names", ["0", "1"]),
        "feature_names": first.get("feature_names", []),
        "config": first.get("config", {}),
        "notes": first.get("notes", []),
        "settings": [p["setting"] for p in payloads if p.get("setting")],
        "attributes": first.get("attributes", []),
        "results": [r for p in payloads for r in p.get("results", [])],
        "class_gaps": [g for p in payloads for g in p.get("class_gaps", [])],
        "model_inversion": [m for p in payloads for m in p.get("model_inversion", [])],
    }


def _safe(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "dataset"


def inversion_html(dataset: str, payloads: list[dict], out_dir: Path) -> tuple[str, list[Path]]:
    """HTML (figures inline, tables, findings) of one dataset's stored inversion entries;
    writes the figures (PNG, SVG) and CSV tables under ``out_dir`` and returns their paths
    relative to it."""
    import pandas as pd

    inv = merge_payloads(payloads)
    cfg = inv["config"]
    res, mi = inv["results"], inv["model_inversion"]
    files: list[Path] = []
    parts = [
        "<h4>Attribute inference: can the model give away a hidden column?</h4>",
        f"<p>{cfg.get('seeds', '?')} target models per privacy level, each trained on "
        f"{cfg.get('members', '?')} records; as many non-members; the rest for the attacker "
        f"({cfg.get('shadows', '?')} shadow model(s) per target and the imputation baseline, "
        "which never queries the model). Success is the share of records whose bin of the "
        "hidden column is guessed right; advantages with 95 % CIs over the models.</p>",
    ]

    def emit(fig, stem: str, alt: str, caption: str) -> None:
        saved = save_figure(fig, Path(out_dir) / "figures", f"{stem}_{_safe(dataset)}")
        files.extend(Path("figures") / p.name for p in saved.paths)
        uri = saved.data_uri
        parts.append(
            f'<figure><img src="{uri}" alt="{html.escape(alt)}"><figcaption>'
            f"{html.escape(caption)}</figcaption></figure>"
        )

    if res:
        emit(
            advantage_figure(res, title=f"{dataset}: attribute inference (learned attack)"),
            "inversion_advantage",
            f"Advantage of attribute inference against the privacy level on {dataset}, per "
            "class and column",
            "Learned attack, per column: its success on members minus the imputation's "
            "(solid) and minus its own success on non-members, net of the imputation's "
            "(dashed), against the privacy level; class 0 blue, class 1 vermilion; bars: "
            "95 % CIs over the target models.",
        )
        rows = []
        for lab in _levels(res):
            for r in _pick(res, privacy=lab, attack=LEAD):
                conf = next(
                    (
                        x
                        for x in _pick(
                            res, privacy=lab, attack="confidence", attribute=r["attribute"]
                        )
                        if x["class"] == r["class"]
                    ),
                    {},
                )
                rows.append(
                    [
                        privacy_text(lab),
                        r["attribute"],
                        r["class"] if r["class"] == "all" else f"{r['class']} {r['class_name']}",
                        _num(r["imputation_success"]),
                        _num(conf.get("member_success")),
                        _num(r["member_success"]),
                        signed_ci(r, "advantage_vs_imputation"),
                        signed_ci(r, "advantage_vs_imputation_nonmembers"),
                        signed_ci(conf, "advantage_vs_imputation") if conf else "–",
                        signed_ci(r, "advantage_members_adjusted"),
                        "–"
                        if r.get("epsilon") is None
                        else ("yes" if r.get("dp_bound_respected") else "NO"),
                    ]
                )
        parts.append(
            _table(
                [
                    "privacy",
                    "attribute",
                    "class",
                    "imputation",
                    "confidence attack",
                    "learned attack",
                    "learned − imputation (members)",
                    "learned − imputation (non-members)",
                    "confidence − imputation",
                    "members − non-members (learned, adjusted)",
                    "DP bound respected",
                ],
                rows,
            )
        )
    if mi:
        parts.append("<h4>Class inversion: the model's typical patient</h4>")
        emit(
            model_inversion_figure(mi, title=f"{dataset}: class inversion"),
            "model_inversion",
            f"Reconstructed typical patient of each class on {dataset}, per privacy level",
            "Gradient ascent on the input from the average record (Fredrikson et al. 2015), "
            "with a standard normal prior on the scaled columns: mean reconstruction over "
            "the target models (band ± 1 sd) in standard deviations from the column mean; "
            "dashed: the class's mean record.",
        )
        feats = inv.get("feature_names", [])
        show = 0 < len(feats) <= 10
        rows = [
            [
                privacy_text(r["privacy"]),
                f"{r['class']} {r.get('class_name', '')}",
                _num(r["probability"], 2),
                _num(r["distance_member"], 2),
                _num(r["distance_nonmember"], 2),
                signed_ci(r, "distance_gap", 2),
                _num(r["distance_class_mean"], 2),
                *([_num(v, 2) for v in r["reconstruction"]] if show else []),
            ]
            for r in mi
        ]
        parts.append(
            _table(
                [
                    "privacy",
                    "class",
                    "p(class)",
                    "nearest member",
                    "nearest non-member",
                    "non-member − member",
                    "to class mean",
                    *(feats if show else []),
                ],
                rows,
            )
        )
        from ..attacks import MODEL_INVERSION_TEXT

        parts.append(f"<p>{html.escape(MODEL_INVERSION_TEXT.format(d=len(feats)))}</p>")
    findings = inversion_findings(inv)
    if findings:
        parts.append("<ul>" + "".join(f"<li>{html.escape(f)}</li>" for f in findings) + "</ul>")
    if res or mi:
        tabs = Path(out_dir) / "tables"
        tabs.mkdir(parents=True, exist_ok=True)
        for rows, stem in ((res, "attribute_inference"), (mi, "model_inversion")):
            if rows:
                rel = Path("tables") / f"{stem}_{_safe(dataset)}.csv"
                pd.DataFrame(rows).to_csv(Path(out_dir) / rel, index=False)
                files.append(rel)
    return "\n".join(parts), files


def inversion_payloads_by_dataset(store, datasets: set[str] | None) -> dict[str, list[dict]]:
    """The store's ``inversion`` entries per dataset (only ``datasets`` when given), in the
    order non-private, then decreasing ε."""
    try:
        df = store.extras("inversion")
    except Exception:
        return {}
    out: dict[str, list[dict]] = {}
    for p in df["payload"]:
        if not isinstance(p, dict) or "dataset" not in p:
            continue
        if datasets is not None and p["dataset"] not in datasets:
            continue
        out.setdefault(p["dataset"], []).append(p)
    for ps in out.values():
        ps.sort(key=lambda p: (p["privacy"] != "none", -_eps(p["privacy"])))
    return out


def _eps(label: str) -> float:
    try:
        return float(label)
    except ValueError:
        return math.inf
