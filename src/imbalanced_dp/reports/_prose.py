"""Sentences that state a report's results with their confidence intervals."""

from __future__ import annotations

import math

from ..studies import SETTING, privacy_order
from ._evidence import Evidence, dp_sorted, metric_row, reference_fractions, select_rows
from ._format import fmt_ci, fmt_p, fmt_share, join_words, row_ci


def _class_name(class_names, ds: str, cls: str) -> str:
    role = "minority" if cls == "1" else "majority"
    if class_names and ds in class_names:
        return f"the {role} class ({class_names[ds][int(cls)]})"
    return f"the {role} class ({cls})"


def _recall_change(name: str, a, b, cost) -> str:
    """How a class's recall moved under DP, judged on the paired CI of (without − with)."""
    head = f"the recall of {name}"
    if cost is None or not math.isfinite(cost["low"]):
        return f"{head} goes from {row_ci(a)} to {row_ci(b)}"
    p = fmt_p(cost["p_value"])
    if cost["low"] > 0:
        return f"{head} falls from {row_ci(a)} to {row_ci(b)} (paired drop {row_ci(cost)}, {p})"
    if cost["high"] < 0:
        rise = fmt_ci(-cost["mean"], -cost["high"], -cost["low"])
        return f"{head} rises from {row_ci(a)} to {row_ci(b)} (paired rise {rise}, {p})"
    return (
        f"{head} does not change significantly ({row_ci(a)} without DP, {row_ci(b)} with; "
        f"paired difference {row_ci(cost, signed=True)}, {p})"
    )


def finding_sentences(
    ev: Evidence, *, class_names: dict[str, tuple[str, str]] | None = None
) -> list[str]:
    """Sentences that state the main results, each number with its 95 % CI.

    Covers, per dataset at its reference balance: the non-private per-class recall and
    gap, what the smallest ε does to each class's recall (direction judged on the paired
    CI), balanced accuracy per ε, disparity amplification per ε and models that stop
    predicting the minority class; then, where the store has them, the effect of the
    minority fraction and of mitigations.

    Parameters
    ----------
    ev : Evidence
        From :func:`compute_evidence`.
    class_names : dict, optional
        ``dataset -> (name of label 0, name of label 1)``.

    Returns
    -------
    list of str
        One sentence per result.
    """
    out: list[str] = []
    if ev.metrics.empty:
        return out
    ref = reference_fractions(ev.metrics)
    for ds, fr in ref.items():
        bal = "" if fr == "natural" else f" (minority fraction {fr})"
        r0 = metric_row(ev, ds, fr, "none", "0", "rec")
        r1 = metric_row(ev, ds, fr, "none", "1", "rec")
        gap = select_rows(
            ev.fairness,
            dataset=ds,
            fraction=fr,
            privacy="none",
            mitigation="none",
            measure="recall_gap",
        )
        if r0 is not None and r1 is not None:
            s = (
                f"Without privacy on {ds}{bal} ({int(r1['n'])} seeds), "
                f"{_class_name(class_names, ds, '1')} has recall {row_ci(r1)} against "
                f"{row_ci(r0)} for {_class_name(class_names, ds, '0')}"
            )
            if not gap.empty:
                s += f": a recall gap of {row_ci(gap.iloc[0])}"
            out.append(s + ".")
        eps = [
            p
            for p in privacy_order(select_rows(ev.metrics, dataset=ds, fraction=fr)["privacy"])
            if p != "none"
        ]
        if not eps:
            continue
        e = eps[-1]
        parts = []
        for cls in ("1", "0"):
            a = metric_row(ev, ds, fr, "none", cls, "rec")
            b = metric_row(ev, ds, fr, e, cls, "rec")
            c = select_rows(ev.cost, dataset=ds, fraction=fr, privacy=e, mitigation="none")
            c = c[(c["class"] == cls) & (c["metric"] == "rec")] if not c.empty else c
            if a is None or b is None:
                continue
            cr = None if c.empty else c.iloc[0]
            parts.append(_recall_change(_class_name(class_names, ds, cls), a, b, cr))
        if parts:
            out.append(f"On {ds} at ε = {e}, " + "; ".join(parts) + ".")
        ba = [("no DP", metric_row(ev, ds, fr, "none", "avg/total", "balanced_accuracy"))]
        ba += [
            (f"ε = {p}", metric_row(ev, ds, fr, p, "avg/total", "balanced_accuracy")) for p in eps
        ]
        ba = [f"{row_ci(r)} with {lab}" for lab, r in ba if r is not None]
        if len(ba) > 1:
            out.append(f"Balanced accuracy on {ds}: " + join_words(ba) + ".")
        amp = dp_sorted(
            select_rows(
                ev.amplification, dataset=ds, fraction=fr, mitigation="none", measure="recall_gap"
            )
        )
        if not amp.empty:
            items = [f"{row_ci(r, signed=True)} at ε = {r['privacy']}" for _, r in amp.iterrows()]
            out.append(
                f"DP-SGD changes the recall gap on {ds} (gap with DP − gap without, paired; "
                "positive means the classes drift apart) by " + join_words(items) + "."
            )
        col = select_rows(ev.collapse, dataset=ds, fraction=fr, mitigation="none")
        col = col[col["privacy"] != "none"] if not col.empty else col
        if not col.empty:
            dead = col[col["collapsed"] > 0]
            minority = _class_name(class_names, ds, "1")
            if dead.empty:
                r = col[col["privacy"] == e].iloc[0]
                out.append(
                    f"On {ds} no DP model stops predicting {minority} altogether (0 of "
                    f"{int(r['runs'])} runs at ε = {e}; rate at most {r['high']:.2f} with 95 % "
                    "confidence)."
                )
            else:
                items = [
                    f"{int(r['collapsed'])} of {int(r['runs'])} runs at ε = {r['privacy']} "
                    f"(rate 95 % CI [{r['low']:.2f}, {r['high']:.2f}])"
                    for _, r in dp_sorted(dead).iterrows()
                ]
                out.append(
                    f"On {ds}, models that predict no example of {minority} at all: "
                    + join_words(items)
                    + "."
                )
    out += _fraction_sentences(ev, class_names)
    out += _mitigation_sentences(ev)
    return out


def _fraction_sentences(ev: Evidence, class_names) -> list[str]:
    out = []
    if ev.shares.empty:
        return out
    for ds, g in ev.shares.groupby("dataset", sort=False):
        if len(g) < 2:
            continue
        g = g.sort_values("share", ascending=False)
        least, most = g.iloc[0], g.iloc[-1]
        minority = _class_name(class_names, ds, "1")
        eps = [
            p for p in privacy_order(select_rows(ev.metrics, dataset=ds)["privacy"]) if p != "none"
        ]
        pieces = []
        for pr in ["none", *eps[-1:]]:
            a = metric_row(ev, ds, least["fraction"], pr, "1", "rec")
            b = metric_row(ev, ds, most["fraction"], pr, "1", "rec")
            if a is None or b is None:
                continue
            where = "without privacy" if pr == "none" else f"at ε = {pr}"
            pieces.append(f"{where} from {row_ci(a)} to {row_ci(b)}")
        if not pieces:
            continue
        s = (
            f"On {ds}, shrinking the minority share of the training split from "
            f"{fmt_share(least['share'])} ({least['fraction']}) to {fmt_share(most['share'])} "
            f"moves the recall of {minority} " + "; ".join(pieces) + "."
        )
        b = metric_row(ev, ds, most["fraction"], "none", "1", "rec")
        if b is not None and math.isfinite(b["high"]) and b["high"] < 0.05:
            s += (
                f" At {fmt_share(most['share'])} the non-private model already almost never "
                "predicts the minority class, so DP has little left to take: its measured "
                "harm shrinks there (a floor effect)."
            )
        out.append(s)
    return out


def _mitigation_sentences(ev: Evidence) -> list[str]:
    out = []
    m = ev.mitigation
    if m.empty:
        return out
    for (ds, fr, pr, mit), g in m.groupby(SETTING, sort=False):
        g = g.set_index("measure")
        items = []
        for measure, name in (
            ("minority_recall", "minority recall"),
            ("balanced_accuracy", "balanced accuracy"),
            ("recall_gap", "the recall gap"),
        ):
            if measure in g.index:
                items.append(f"{name} by {row_ci(g.loc[measure], signed=True)}")
        if items:
            bal = "" if fr == "natural" else f" (minority fraction {fr})"
            out.append(
                f"On {ds}{bal} at ε = {pr}, {mit} changes "
                + join_words(items)
                + " against plain DP-SGD (paired by seed)."
            )
    return out
