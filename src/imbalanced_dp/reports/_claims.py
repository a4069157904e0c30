"""The verdicts on the study's four claims (docs/protocol.md, "What the study claims"),
decided from the evidence tables of :mod:`._evidence` alone, so that the rules can be
tested on hand-made tables. Sentences live in :mod:`._prose`, rendering in :mod:`._html`.

The decision rule shared by all claims
--------------------------------------
Each claim is split into *parts*; each part is tested on *cells*, and each cell is one
interval of a difference that the claim says is positive (e.g. "metric without DP −
metric with DP" for "DP lowers the metric"). With ``k`` cells in the whole claim and
``α = 1 − confidence`` (0.05):

- a cell **confirms** when its 95 % CI lies entirely above 0 (``low > 0``): the CI
  excludes the opposite, including "no difference";
- a cell **refutes** when its mean is below 0 and its two-sided p-value is below ``α / k``
  (Bonferroni): the family-wise 95 % CI lies entirely below 0. The adjustment keeps a claim
  with many cells from being "contradicted" by the one in twenty CIs that misses by chance;
- any other cell is **undecided**.

Cells are *required* (they must confirm) or *checks* (they can only refute: e.g. the
change between adjacent ε when the claim is about a trend).

- A part is **supported** when it has at least one required cell, every required cell
  confirms, and no cell refutes; **contradicted** when any cell refutes; otherwise it
  **cannot decide** (also when there are no cells: the store lacks the settings).
- A claim is **supported** when all its voting parts are supported; **contradicted** when
  any voting part is contradicted; otherwise it **cannot decide**.

Requiring every required cell to confirm at 95 % is an intersection–union test: the
claim's "supported" keeps a 5 % error rate without adjustment. Means are never compared
raw: every decision goes through an interval. Claims 1–3 are tested at each dataset's
natural class balance (or its least skewed fraction when the store has no natural one)
with plain DP-SGD (mitigation ``none``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..metrics import METRICS, one_sample_p
from ._evidence import (
    INTERVAL,
    METRIC_NAMES,
    UTILITY,
    Evidence,
    dp_sorted,
    metric_row,
    reference_fractions,
    select_rows,
)
from ._format import fmt_share, row_ci

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
UNDECIDED = "cannot decide"
VERDICTS = (SUPPORTED, CONTRADICTED, UNDECIDED)

#: The four claims of the study (docs/protocol.md, section 5), verbatim.
CLAIMS: dict[int, str] = {
    1: (
        "Without privacy, the model is worse on the minority class than on the majority "
        "class, and the more imbalanced dataset (PIMA) shows the larger gap."
    ),
    2: "DP-SGD lowers every utility metric, and lowers them more as ε shrinks.",
    3: (
        "The loss falls hardest on the minority class: fairness (balance of metrics across "
        "classes) degrades with privacy; at ε = 1 a model may stop predicting the minority "
        "class at all."
    ),
    4: "More skewed class distributions magnify the harm of DP on utility and fairness.",
}
#: Claim 1 as tested on other data than the study's two datasets.
CLAIM_1_ANY_DATA = (
    "Without privacy, the model is worse on the minority class than on the majority class, "
    "and of two datasets, the more imbalanced one shows the larger gap."
)

CELL_COLUMNS = ["part", "label", "role", *INTERVAL, "status"]


@dataclass
class Part:
    """One testable part of a claim: its cells, its verdict and what it means."""

    key: str
    title: str
    verdict: str
    cells: pd.DataFrame
    sentence: str
    votes: bool = True


@dataclass
class ClaimResult:
    """A claim of the study (docs/protocol.md, section 5) with its verdict, the rule that
    decided it, its
    parts and sentences that report the evidence."""

    number: int
    statement: str
    verdict: str
    rule: str
    parts: list[Part]
    sentences: list[str]

    @property
    def cells(self) -> pd.DataFrame:
        frames = [p.cells for p in self.parts if not p.cells.empty]
        if not frames:
            return pd.DataFrame(columns=CELL_COLUMNS)
        out = pd.concat(frames, ignore_index=True)
        out.insert(0, "claim", self.number)
        return out


def _new_cells(part: str, rows: list[tuple[str, str, pd.Series | dict]]) -> pd.DataFrame:
    out = []
    for label, role, r in rows:
        out.append(
            {"part": part, "label": label, "role": role}
            | {k: float(r[k]) if k in r and r[k] is not None else math.nan for k in INTERVAL}
        )
    return pd.DataFrame(out, columns=CELL_COLUMNS[:-1])


def judge_cells(cells: pd.DataFrame, k: int, *, alpha: float = 0.05) -> pd.DataFrame:
    """Add ``status`` (confirms / refutes / undecided) to cells (see the module rule)."""
    cells = cells.copy()
    status = []
    for r in cells.itertuples():
        if math.isfinite(r.low) and r.low > 0:
            status.append("confirms")
        elif math.isfinite(r.p_value) and r.mean < 0 and r.p_value < alpha / max(k, 1):
            status.append("refutes")
        else:
            status.append("undecided")
    cells["status"] = status
    return cells


def part_verdict(cells: pd.DataFrame) -> str:
    """Supported / contradicted / cannot decide for judged cells (see the module rule)."""
    if (cells["status"] == "refutes").any():
        return CONTRADICTED
    req = cells[cells["role"] == "required"]
    if len(req) and (req["status"] == "confirms").all():
        return SUPPORTED
    return UNDECIDED


def combine(verdicts: list[str]) -> str:
    """A claim's verdict from its voting parts' verdicts."""
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    if verdicts and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return UNDECIDED


def _summarise(cells: pd.DataFrame, *, signed: bool = True, limit: int = 4) -> str:
    """What the cells say, in words: each cell when few, else counts and the exceptions
    (refuting cells first, then required cells that do not confirm)."""
    if cells.empty:
        return ""

    def one(r) -> str:
        return f"{r['label']}: {row_ci(r, signed=signed)} ({r['status']})"

    if len(cells) <= limit:
        return "; ".join(one(r) for _, r in cells.iterrows()) + "."
    req = cells[cells["role"] == "required"]
    n_ok = int((req["status"] == "confirms").sum())
    n_bad = int((cells["status"] == "refutes").sum())
    head = f"{n_ok} of {len(req)} required comparisons confirm"
    checks = len(cells) - len(req)
    head += f"; {n_bad} of all {len(cells)} refute" if checks else f", {n_bad} refute"
    odd = pd.concat(
        [
            cells[cells["status"] == "refutes"],
            req[req["status"] == "undecided"],
        ]
    )
    if odd.empty:
        return head + "."
    shown = [one(r) for _, r in odd.head(limit).iterrows()]
    more = f"; and {len(odd) - limit} more" if len(odd) > limit else ""
    return f"{head}. Not confirming: " + "; ".join(shown) + more + "."


def _make_part(key, title, cells, k, alpha, *, empty_reason, votes=True, signed=True) -> Part:
    if cells.empty:
        return Part(key, title, UNDECIDED, pd.DataFrame(columns=CELL_COLUMNS), empty_reason, votes)
    cells = judge_cells(cells, k, alpha=alpha)
    verdict = part_verdict(cells)
    return Part(key, title, verdict, cells, _summarise(cells, signed=signed), votes)


def _decide(number: int, rule: str, specs: list[tuple], alpha: float, extra=()) -> ClaimResult:
    """``specs``: (key, title, unjudged cells, reason when empty, signed)."""
    k = sum(len(c) for _, _, c, _, _ in specs)
    parts = [
        _make_part(key, title, cells, k, alpha, empty_reason=reason, signed=signed)
        for key, title, cells, reason, signed in specs
    ]
    parts += list(extra)
    verdict = combine([p.verdict for p in parts if p.votes])
    sentences = [f"{p.key} — {p.title}: {p.verdict}. {p.sentence}".strip() for p in parts]
    return ClaimResult(number, CLAIMS[number], verdict, rule, parts, sentences)


def _at_reference(df: pd.DataFrame, ref: dict[str, str]) -> pd.DataFrame:
    if df.empty:
        return df
    keep = [ref.get(ds) == fr for ds, fr in zip(df["dataset"], df["fraction"])]
    return df[keep]


RULE_1 = (
    "Tested without DP at each dataset's natural balance. (a) Supported when the recall gap "
    "(majority recall − minority recall) has a 95 % CI above 0 on every dataset. (b) Supported "
    "when, for every pair of datasets of different minority share, the more skewed one's gap "
    "minus the other's (Welch interval, different data) is above 0. Contradicted when any "
    "interval lies below 0 at the Bonferroni-adjusted level; (b) cannot decide with fewer "
    "than two datasets of different skew."
)
RULE_2 = (
    "Tested with plain DP-SGD at each dataset's natural balance, on the avg/total row's "
    "pre, rec, spe, f1, geo, iba and on balanced accuracy. (a) Supported when every metric is "
    "lower with DP than without at every ε (paired by seed, 95 % CI of without − with above "
    "0). (b) Supported when every metric is lower at the smallest ε than at the largest "
    "(paired CI above 0) and no change between adjacent ε is significantly reversed. "
    "Contradicted when any of these differences is significantly reversed at the "
    "Bonferroni-adjusted level; (b) cannot decide with fewer than two ε."
)
RULE_3 = (
    "Tested with plain DP-SGD at each dataset's natural balance. (a) Supported when, at every "
    "ε, the minority class's cost of privacy in F1 exceeds the majority class's (paired by "
    "seed, 95 % CI of the difference above 0). (b) Supported when DP widens the recall gap "
    "at every ε (disparity amplification: gap with DP − gap without, paired CI above 0). "
    "Contradicted when any interval lies below 0 at the Bonferroni-adjusted level. (c) "
    "'may stop predicting the minority class' is existential and cannot be refuted by "
    "finitely many runs: it is reported (runs at ε = 1, or the smallest ε, that predict no "
    "minority example, with an exact binomial CI) and does not vote."
)
RULE_4 = (
    "Harm of DP: the cost of privacy in balanced accuracy (utility) and the disparity "
    "amplification of the recall gap (fairness), plain DP-SGD, at every ε. When a dataset "
    "was run at several minority fractions (a controlled comparison, paired by seed), "
    "supported when on every such dataset the harm at the most skewed fraction minus the "
    "harm at the least skewed has a 95 % CI above 0 for both measures at every ε, and no "
    "step between adjacent fractions is significantly reversed. Without fractions, the "
    "datasets' natural skews are compared instead (Welch intervals, confounded by the data). "
    "Contradicted when any comparison lies below 0 at the Bonferroni-adjusted level; cannot "
    "decide with neither several fractions nor datasets of different skew."
)


def _skew_label(r) -> str:
    if r["kind"] == "fractions":
        what = (
            f"{r['dataset_more']} (minority {fmt_share(r['share_more'])} − "
            f"{fmt_share(r['share_less'])})"
        )
    else:
        what = (
            f"{r['dataset_more']} ({fmt_share(r['share_more'])}) − "
            f"{r['dataset_less']} ({fmt_share(r['share_less'])})"
        )
    return what if r["privacy"] == "none" else f"{what}, ε = {r['privacy']}"


def claim_1(ev: Evidence) -> ClaimResult:
    """Claim 1: without privacy, minority worse than majority; more skew, larger gap.

    Cells of (a): per dataset, the recall gap (majority − minority) of the non-private
    model at the reference balance (:func:`aggregate_fairness`), required > 0. Cells of
    (b): per pair of datasets with different minority shares, gap(more skewed) −
    gap(less skewed), Welch interval, required > 0. Decided by the module's rule.
    """
    alpha = 1 - ev.confidence
    ref = reference_fractions(ev.fairness)
    fa = _at_reference(
        select_rows(ev.fairness, privacy="none", mitigation="none", measure="recall_gap"), ref
    )
    rows_a = []
    for _, r in fa.iterrows():
        r = r.copy()
        if not math.isfinite(float(r.get("p_value", math.nan))):
            r["p_value"] = one_sample_p(
                float(r["mean"]), float(r.get("std", math.nan)), int(r["n"])
            )
        rows_a.append((f"{r['dataset']}: recall gap without DP", "required", r))
    sk = select_rows(ev.skew, kind="datasets", measure="recall_gap", privacy="none")
    rows_b = [
        (_skew_label(r) + ": difference of recall gaps", "required", r) for _, r in sk.iterrows()
    ]
    res = _decide(
        1,
        RULE_1,
        [
            (
                "1a",
                "the minority class is served worse without privacy",
                _new_cells("1a", rows_a),
                "no non-private runs",
                False,
            ),
            (
                "1b",
                "the more skewed dataset has the larger gap",
                _new_cells("1b", rows_b),
                "needs non-private runs of at least two datasets of different minority share",
                True,
            ),
        ],
        alpha,
    )
    if not {"pima", "breast_cancer"} <= set(ev.fairness.get("dataset", ())):
        res.statement = CLAIM_1_ANY_DATA  # "(PIMA)" names the study's data, not this report's
    return res


def claim_2(ev: Evidence) -> ClaimResult:
    """Claim 2: DP lowers every utility metric, more as ε shrinks.

    Cells of (a): per dataset, ε and utility metric (avg/total ``pre rec spe f1 geo iba``
    and balanced accuracy), the cost of privacy (without − with DP, paired by seed),
    required > 0. Cells of (b): per dataset and metric, ``metric(ε_max) − metric(ε_min)``
    (required > 0) and ``metric(ε_i) − metric(ε_i+1)`` for adjacent ε (checks). Decided by
    the module's rule.
    """
    alpha = 1 - ev.confidence
    ref = reference_fractions(ev.cost if not ev.cost.empty else ev.epsilon_trend)
    c = _at_reference(select_rows(ev.cost, mitigation="none"), ref)
    if not c.empty:
        c = c[
            ((c["class"] == "avg/total") & c["metric"].isin(METRICS))
            | ((c["class"] == "avg/total") & (c["metric"] == "balanced_accuracy"))
        ]
    rows_a = [
        (
            f"{r['dataset']}, ε = {r['privacy']}: {METRIC_NAMES[r['metric']]} without − with DP",
            "required",
            r,
        )
        for _, r in dp_sorted(c).iterrows()
    ]
    t = _at_reference(select_rows(ev.epsilon_trend, mitigation="none"), ref)
    if not t.empty:
        t = t[t["metric"].isin(UTILITY)]
    rows_b = [
        (
            f"{r['dataset']}: {METRIC_NAMES[r['metric']]} at ε = {r['eps_high']} − at ε = "
            f"{r['eps_low']}",
            "required" if r["pair"] == "extremes" else "check",
            r,
        )
        for _, r in t.iterrows()
    ]
    return _decide(
        2,
        RULE_2,
        [
            (
                "2a",
                "DP-SGD lowers every utility metric",
                _new_cells("2a", rows_a),
                "needs non-private and DP runs",
                True,
            ),
            (
                "2b",
                "it lowers them more as ε shrinks",
                _new_cells("2b", rows_b),
                "needs DP runs at two or more ε",
                True,
            ),
        ],
        alpha,
    )


def claim_3(ev: Evidence) -> ClaimResult:
    """Claim 3: the minority pays most; fairness degrades; collapse at ε = 1 possible.

    Cells of (a): per dataset and ε, the minority's F1 cost of privacy − the majority's
    (paired by seed), required > 0. Cells of (b): per dataset and ε, the disparity
    amplification of the recall gap, required > 0. Part (c) is reported, not voted: the
    number of runs at ε = 1 (else the smallest ε) whose model predicts no minority example
    at all, with a Clopper–Pearson 95 % CI of the rate.
    """
    alpha = 1 - ev.confidence
    ref = reference_fractions(ev.amplification if not ev.amplification.empty else ev.collapse)
    g = _at_reference(select_rows(ev.class_cost_gap, mitigation="none"), ref)
    rows_a = [
        (f"{r['dataset']}, ε = {r['privacy']}: minority − majority F1 cost", "required", r)
        for _, r in dp_sorted(g).iterrows()
    ]
    a = _at_reference(select_rows(ev.amplification, mitigation="none", measure="recall_gap"), ref)
    rows_b = [
        (f"{r['dataset']}, ε = {r['privacy']}: recall gap with − without DP", "required", r)
        for _, r in dp_sorted(a).iterrows()
    ]
    return _decide(
        3,
        RULE_3,
        [
            (
                "3a",
                "the loss falls hardest on the minority class",
                _new_cells("3a", rows_a),
                "needs non-private and DP runs",
                True,
            ),
            (
                "3b",
                "fairness degrades with privacy",
                _new_cells("3b", rows_b),
                "needs non-private and DP runs",
                True,
            ),
        ],
        alpha,
        extra=[_collapse_part(ev, ref)],
    )


def _collapse_part(ev: Evidence, ref: dict[str, str]) -> Part:
    title = "at ε = 1 a model may stop predicting the minority class"
    c = _at_reference(select_rows(ev.collapse, mitigation="none"), ref)
    c = c[c["privacy"] != "none"] if not c.empty else c
    if c.empty:
        return Part(
            "3c",
            title,
            UNDECIDED,
            pd.DataFrame(columns=CELL_COLUMNS),
            "needs DP runs (reported, not voted).",
            votes=False,
        )
    eps = "1" if "1" in set(c["privacy"]) else min(c["privacy"], key=float)
    c = c[c["privacy"] == eps]
    texts = []
    seen = False
    for _, r in c.iterrows():
        k, n = int(r["collapsed"]), int(r["runs"])
        seen |= k > 0
        texts.append(
            f"{r['dataset']}: {k} of {n} runs (rate 95 % CI [{r['low']:.2f}, {r['high']:.2f}])"
        )
    verdict = SUPPORTED if seen else UNDECIDED
    sentence = (
        f"Runs at ε = {eps} that predict no minority example: "
        + "; ".join(texts)
        + ". "
        + (
            "Observed, so the possibility is established."
            if seen
            else "Not observed; the upper CI bound says how often it could still happen."
        )
        + " (Reported, not voted.)"
    )
    return Part("3c", title, verdict, pd.DataFrame(columns=CELL_COLUMNS), sentence, votes=False)


def claim_4(ev: Evidence) -> ClaimResult:
    """Claim 4: more skew magnifies the harm of DP on utility and fairness.

    Harm is measured per seed as the cost of privacy in balanced accuracy (utility) and
    as the disparity amplification of the recall gap (fairness). When any dataset has
    several minority fractions, the cells are, per such dataset, ε and measure:
    harm(most skewed fraction) − harm(least skewed), paired by seed (required > 0), and
    the same for adjacent fractions (checks). Otherwise the cells compare datasets of
    different natural skew (Welch, required > 0). Decided by the module's rule.
    """
    alpha = 1 - ev.confidence
    sk = select_rows(ev.skew, measure=["ba_cost", "amplification"])
    fr = select_rows(sk, kind="fractions")
    sk = fr if not fr.empty else select_rows(sk, kind="datasets")
    names = {"ba_cost": "balanced-accuracy cost", "amplification": "disparity amplification"}
    specs = []
    for key, measure, title in (
        ("4a", "ba_cost", "more skew, larger loss of utility"),
        ("4b", "amplification", "more skew, larger loss of fairness"),
    ):
        s = select_rows(sk, measure=measure)
        rows = [
            (
                f"{_skew_label(r)}: difference of {names[measure]}",
                "check" if r["pair"] == "adjacent" else "required",
                r,
            )
            for _, r in s.iterrows()
        ]
        specs.append(
            (
                key,
                title,
                _new_cells(key, rows),
                "needs several minority fractions of a dataset, or datasets of different "
                "skew, each with non-private and DP runs",
                True,
            )
        )
    result = _decide(4, RULE_4, specs, alpha)
    if not sk.empty and (sk["kind"] == "datasets").all():
        result.sentences.append(
            "The datasets differ in more than their class balance, so this comparison is "
            "confounded; a sweep over minority fractions of one dataset (the imbalance "
            "preset) tests the claim under control."
        )
    elif not sk.empty:
        for ds, g in sk.groupby("dataset_more", sort=False):
            most = g.sort_values("share_more").iloc[0]
            r = metric_row(ev, ds, most["fraction_more"], "none", "1", "rec")
            if r is not None and math.isfinite(r["high"]) and r["high"] < 0.05:
                result.sentences.append(
                    f"On {ds} at a minority share of {fmt_share(most['share_more'])} the "
                    f"non-private model's minority recall is already {row_ci(r)}: DP has "
                    "little left to take there, so the measured harm shrinks (a floor effect)."
                )
    return result


def evaluate_claims(ev: Evidence) -> list[ClaimResult]:
    """The verdicts on the four claims of the study (docs/protocol.md, section 5).

    Parameters
    ----------
    ev : Evidence
        From :func:`compute_evidence`, or built by hand.

    Returns
    -------
    list of ClaimResult
        Claims 1 to 4, each with its verdict (``supported``, ``contradicted`` or
        ``cannot decide``), parts, the cells that decided it and sentences.

    Examples
    --------
    >>> [c.verdict for c in evaluate_claims(Evidence())]
    ['cannot decide', 'cannot decide', 'cannot decide', 'cannot decide']
    """
    return [claim_1(ev), claim_2(ev), claim_3(ev), claim_4(ev)]
