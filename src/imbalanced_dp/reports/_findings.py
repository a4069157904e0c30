"""Findings computed from the numbers: the evidence tables, the verdicts on the study's four
claims (PROTOCOL.md section 5) and sentences that state results with their confidence
intervals.

Everything here is data. :func:`compute_evidence` turns the per-run frame into tables of
intervals (mean, 95 % CI, n, p-value); :func:`evaluate_claims` decides each claim from
those tables alone, so the decision rules can be tested on hand-made tables;
:func:`finding_sentences` writes sentences. Rendering lives in :mod:`._html`.

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
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import combinations, pairwise

import numpy as np
import pandas as pd

from ..metrics import METRICS, paired_difference
from ..studies._aggregate import (
    SETTING,
    aggregate_fairness,
    aggregate_metrics,
    cost_of_privacy,
    disparity_amplification,
    fraction_order,
    mitigation_effects,
    privacy_order,
)

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
UNDECIDED = "cannot decide"
VERDICTS = (SUPPORTED, CONTRADICTED, UNDECIDED)

#: The four claims of PROTOCOL.md section 5, verbatim.
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

#: Utility metrics of claim 2: the support-weighted ``avg/total`` row and balanced accuracy
#: (overall accuracy equals the weighted recall, so it is not counted twice).
UTILITY = (*METRICS, "balanced_accuracy")
METRIC_NAMES = {
    "pre": "precision",
    "rec": "recall",
    "spe": "specificity",
    "f1": "F1",
    "geo": "geometric mean",
    "iba": "IBA",
    "balanced_accuracy": "balanced accuracy",
    "accuracy": "accuracy",
}
INTERVAL = ["mean", "half_width", "low", "high", "n", "p_value"]
CELL_COLUMNS = ["part", "label", "role", *INTERVAL, "status"]


# --------------------------------------------------------------------------- formatting


def _num(x: float, digits: int, sign: str = "") -> str:
    """A number without a negative zero (``-0.001`` at 2 digits reads ``0.00``)."""
    r = round(x, digits)
    return f"{0.0 if r == 0 else r:{sign}.{digits}f}"


def fmt_ci(mean: float, low: float, high: float, *, digits: int = 2, signed: bool = False) -> str:
    """``"0.61 [0.57, 0.65]"``; ``"0.61 (no CI: one seed)"`` when the interval is unknown.

    A bound that is not zero but would print as ``0.00`` gets more digits (up to 4), so that
    an interval that crosses zero never reads as one that ends at zero.
    """
    if mean is None or not math.isfinite(mean):
        return "n/a"
    sign = "+" if signed else ""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return f"{_num(mean, digits, sign)} (no CI: one seed)"
    while digits < 4 and any(x != 0 and round(x, digits) == 0 for x in (low, high)):
        digits += 1
    return f"{_num(mean, digits, sign)} [{_num(low, digits)}, {_num(high, digits)}]"


def fmt_p(p: float) -> str:
    if p is None or not math.isfinite(p):
        return "p n/a"
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}"


def fmt_share(share: float) -> str:
    return f"{100 * share:.0f} %" if share >= 0.1 else f"{100 * share:.1f} %"


def _row_ci(r, **kw) -> str:
    return fmt_ci(float(r["mean"]), float(r["low"]), float(r["high"]), **kw)


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------- statistics


def _interval(pt) -> dict:
    iv = pt.interval
    return {
        "mean": iv.mean,
        "half_width": iv.half_width,
        "low": iv.low,
        "high": iv.high,
        "n": iv.n,
        "p_value": pt.p_value,
    }


def welch_difference(a, b, *, confidence: float = 0.95) -> dict:
    """Difference of the means of two independent samples ``mean(a) − mean(b)`` with a
    Welch (unequal variances) t interval and the two-sided Welch t-test's p-value.

    Used where no pairing exists (two different datasets). ``n`` is ``min(n_a, n_b)``;
    everything is NaN with fewer than two values on either side.
    """
    from scipy import stats

    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    nx, ny = x.size, y.size
    mean = float(x.mean() - y.mean()) if nx and ny else math.nan
    nan = dict.fromkeys(["half_width", "low", "high", "p_value"], math.nan)
    if nx < 2 or ny < 2:
        return {"mean": mean, "n": int(min(nx, ny))} | nan
    vx, vy = x.var(ddof=1) / nx, y.var(ddof=1) / ny
    se = math.sqrt(vx + vy)
    if se == 0:
        p = 1.0 if mean == 0 else 0.0
        return {
            "mean": mean,
            "half_width": 0.0,
            "low": mean,
            "high": mean,
            "n": int(min(nx, ny)),
            "p_value": p,
        }
    df = (vx + vy) ** 2 / (vx**2 / (nx - 1) + vy**2 / (ny - 1))
    hw = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, df))
    return {
        "mean": mean,
        "half_width": hw,
        "low": mean - hw,
        "high": mean + hw,
        "n": int(min(nx, ny)),
        "p_value": p,
    }


def one_sample_p(mean: float, std: float, n: int) -> float:
    """Two-sided p-value of the one-sample t-test of "mean = 0" from a summary."""
    from scipy import stats

    if not (n >= 2 and math.isfinite(mean) and math.isfinite(std)):
        return math.nan
    if std == 0:
        return 1.0 if mean == 0 else 0.0
    t = mean / (std / math.sqrt(n))
    return float(2 * stats.t.sf(abs(t), n - 1))


def clopper_pearson(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval of a rate ``k / n``."""
    from scipy import stats

    if n == 0:
        return math.nan, math.nan
    a = 1 - confidence
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


@contextmanager
def quiet_constant_differences() -> Iterator[None]:
    """Silence SciPy's "precision loss" warning for paired differences that are equal up
    to rounding (e.g. the same count difference over seeds, divided by the same total).

    The t statistic of such differences is huge and its p-value tiny, which is the right
    answer (the difference is the same on every seed); only the warning is noise.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message="Precision loss occurred in moment calculation",
            category=RuntimeWarning,
        )
        yield


# --------------------------------------------------------------------------- evidence


def reference_fractions(df: pd.DataFrame) -> dict[str, str]:
    """Per dataset, the fraction claims 1–3 are tested at: ``natural`` if present, else the
    largest minority fraction (the least skewed)."""
    if df.empty:
        return {}
    d = df[df["mitigation"] == "none"] if "mitigation" in df else df
    out = {}
    for ds, g in d.groupby("dataset", sort=False):
        out[ds] = fraction_order(g["fraction"])[0]
    return out


@dataclass
class Evidence:
    """The interval tables the claims and sentences are decided on.

    Attributes
    ----------
    metrics, fairness, cost, amplification, mitigation : DataFrame
        :func:`~imbalanced_dp.studies.aggregate_metrics`, ``aggregate_fairness``,
        ``cost_of_privacy``, ``disparity_amplification``, ``mitigation_effects``.
    class_cost_gap : DataFrame
        ``dataset, fraction, privacy, mitigation, metric`` + interval: the minority class's
        cost of privacy minus the majority class's, paired by seed.
    epsilon_trend : DataFrame
        ``dataset, fraction, mitigation, metric, eps_high, eps_low, pair`` + interval:
        ``metric(ε_high) − metric(ε_low)`` of the avg/total row, paired by seed; ``pair``
        is ``extremes`` (largest vs smallest ε) or ``adjacent``.
    skew : DataFrame
        ``kind, pair, dataset_more, fraction_more, share_more, dataset_less,
        fraction_less, share_less, privacy, measure`` + interval: a measure in the more
        skewed setting minus the less skewed one. ``kind`` is ``fractions`` (one dataset,
        paired by seed) or ``datasets`` (two datasets at their reference balance, Welch).
        ``measure`` is ``recall_gap`` (privacy ``none``), ``ba_cost`` (balanced accuracy
        without DP − with DP) or ``amplification`` (recall gap with DP − without).
    collapse : DataFrame
        ``dataset, fraction, privacy, mitigation, runs, collapsed, rate, low, high``: runs
        that predict no minority example at all, with an exact binomial CI of the rate.
    shares : DataFrame
        ``dataset, fraction, share``: mean minority share of the training split.
    """

    metrics: pd.DataFrame = field(default_factory=pd.DataFrame)
    fairness: pd.DataFrame = field(default_factory=pd.DataFrame)
    cost: pd.DataFrame = field(default_factory=pd.DataFrame)
    amplification: pd.DataFrame = field(default_factory=pd.DataFrame)
    mitigation: pd.DataFrame = field(default_factory=pd.DataFrame)
    class_cost_gap: pd.DataFrame = field(default_factory=pd.DataFrame)
    epsilon_trend: pd.DataFrame = field(default_factory=pd.DataFrame)
    skew: pd.DataFrame = field(default_factory=pd.DataFrame)
    collapse: pd.DataFrame = field(default_factory=pd.DataFrame)
    shares: pd.DataFrame = field(default_factory=pd.DataFrame)
    confidence: float = 0.95


def per_run_wide(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per run: setting, seed, minority share, ``<metric>_<class>`` for classes
    ``0``, ``1`` and ``avg`` (avg/total), accuracy, balanced accuracy and recall gap."""
    base = (
        frame.drop_duplicates("run_id")
        .set_index("run_id")[[*SETTING, "seed", "minority_fraction", "accuracy"]]
        .copy()
    )
    base["balanced_accuracy"] = frame.drop_duplicates("run_id").set_index("run_id")[
        "balanced_accuracy"
    ]
    for cls, tag in (("0", "0"), ("1", "1"), ("avg/total", "avg")):
        sub = frame[frame["class"] == cls].set_index("run_id")[list(METRICS)]
        base = base.join(sub.add_suffix(f"_{tag}"))
    base["recall_gap"] = base["rec_0"] - base["rec_1"]
    return base.reset_index()


def _seeded(w: pd.DataFrame, ds, fr, pr, mit) -> pd.DataFrame:
    g = w[
        (w["dataset"] == ds)
        & (w["fraction"] == fr)
        & (w["privacy"] == pr)
        & (w["mitigation"] == mit)
    ]
    return g.drop_duplicates("seed").set_index("seed")


def _paired_series(a: pd.Series, b: pd.Series, confidence: float) -> dict:
    j = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    return _interval(
        paired_difference(j["a"].to_numpy(float), j["b"].to_numpy(float), confidence=confidence)
    )


def _harm(w, ds, fr, pr, measure) -> pd.Series:
    """Per seed: the harm of DP at ``pr`` (plain DP-SGD) against the non-private run."""
    base = _seeded(w, ds, fr, "none", "none")
    dp = _seeded(w, ds, fr, pr, "none")
    if measure == "ba_cost":
        return (base["balanced_accuracy"] - dp["balanced_accuracy"]).dropna()
    return (dp["recall_gap"] - base["recall_gap"]).dropna()


def compute_evidence(
    frame: pd.DataFrame,
    *,
    confidence: float = 0.95,
    metrics: pd.DataFrame | None = None,
    fairness: pd.DataFrame | None = None,
    cost: pd.DataFrame | None = None,
    amplification: pd.DataFrame | None = None,
    mitigation: pd.DataFrame | None = None,
) -> Evidence:
    """Every evidence table from a per-run frame.

    Parameters
    ----------
    frame : DataFrame
        One row per run × class (:func:`imbalanced_dp.studies.store_frame`).
    confidence : float
        Level of every confidence interval.
    metrics, fairness, cost, amplification, mitigation : DataFrame, optional
        Aggregates already computed from ``frame`` (recomputed when omitted).

    Returns
    -------
    Evidence
        The interval tables the claims and sentences are decided on.
    """
    if frame.empty:
        return Evidence(confidence=confidence)
    with quiet_constant_differences():
        return _compute_evidence(
            frame,
            confidence=confidence,
            metrics=metrics,
            fairness=fairness,
            cost=cost,
            amplification=amplification,
            mitigation=mitigation,
        )


def _compute_evidence(frame, *, confidence, metrics, fairness, cost, amplification, mitigation):
    kw = {"confidence": confidence}
    ev = Evidence(
        metrics=aggregate_metrics(frame, **kw) if metrics is None else metrics,
        fairness=aggregate_fairness(frame, **kw) if fairness is None else fairness,
        cost=cost_of_privacy(frame, **kw) if cost is None else cost,
        amplification=(
            disparity_amplification(frame, **kw) if amplification is None else amplification
        ),
        mitigation=mitigation_effects(frame, **kw) if mitigation is None else mitigation,
        confidence=confidence,
    )
    w = per_run_wide(frame)
    ev.shares = (
        w.groupby(["dataset", "fraction"], sort=False)["minority_fraction"]
        .mean()
        .rename("share")
        .reset_index()
    )
    ev.class_cost_gap = _class_cost_gap(w, confidence)
    ev.epsilon_trend = _epsilon_trend(w, confidence)
    ev.skew = _skew(w, ev.shares, confidence)
    ev.collapse = _collapse(w, confidence)
    return ev


def _class_cost_gap(w: pd.DataFrame, confidence: float, metric: str = "f1") -> pd.DataFrame:
    rows = []
    for (ds, fr, pr, mit), _ in w[w["privacy"] != "none"].groupby(SETTING, sort=False):
        base = _seeded(w, ds, fr, "none", "none")
        dp = _seeded(w, ds, fr, pr, mit)
        if base.empty:
            continue
        cost1 = base[f"{metric}_1"] - dp[f"{metric}_1"]
        cost0 = base[f"{metric}_0"] - dp[f"{metric}_0"]
        res = _paired_series(cost1.dropna(), cost0.dropna(), confidence)
        rows.append(dict(zip(SETTING, (ds, fr, pr, mit))) | {"metric": metric} | res)
    return pd.DataFrame(rows, columns=[*SETTING, "metric", *INTERVAL])


def _epsilon_trend(w: pd.DataFrame, confidence: float) -> pd.DataFrame:
    cols = ["dataset", "fraction", "mitigation", "metric", "eps_high", "eps_low", "pair"]
    rows = []
    for (ds, fr, mit), g in w.groupby(["dataset", "fraction", "mitigation"], sort=False):
        eps = [p for p in privacy_order(g["privacy"]) if p != "none"]
        if len(eps) < 2:
            continue
        pairs = [(eps[0], eps[-1], "extremes")]
        if len(eps) > 2:
            pairs += [(a, b, "adjacent") for a, b in pairwise(eps)]
        for hi, lo, kind in pairs:
            a, b = _seeded(w, ds, fr, hi, mit), _seeded(w, ds, fr, lo, mit)
            for m in UTILITY:
                col = m if m == "balanced_accuracy" else f"{m}_avg"
                res = _paired_series(a[col].dropna(), b[col].dropna(), confidence)
                rows.append(dict(zip(cols, (ds, fr, mit, m, hi, lo, kind))) | res)
    return pd.DataFrame(rows, columns=[*cols, *INTERVAL])


SKEW_COLUMNS = [
    "kind",
    "pair",
    "dataset_more",
    "fraction_more",
    "share_more",
    "dataset_less",
    "fraction_less",
    "share_less",
    "privacy",
    "measure",
]


def _skew(w: pd.DataFrame, shares: pd.DataFrame, confidence: float) -> pd.DataFrame:
    rows = []
    share = {(r.dataset, r.fraction): float(r.share) for r in shares.itertuples()}
    plain = w[w["mitigation"] == "none"]

    def eps_of(ds, fr):
        g = plain[(plain["dataset"] == ds) & (plain["fraction"] == fr)]
        return [p for p in privacy_order(g["privacy"]) if p != "none"]

    def values(ds, fr, pr, measure) -> pd.Series:
        if measure == "recall_gap":
            return _seeded(w, ds, fr, "none", "none")["recall_gap"].dropna()
        return _harm(w, ds, fr, pr, measure)

    def add(kind, pair, more, less, compare):
        (dm, fm), (dl, fl) = more, less
        common = [p for p in eps_of(dm, fm) if p in set(eps_of(dl, fl))]
        for pr, measure in [("none", "recall_gap")] + [
            (p, m) for p in common for m in ("ba_cost", "amplification")
        ]:
            a, b = values(dm, fm, pr, measure), values(dl, fl, pr, measure)
            if a.empty or b.empty:
                continue
            res = compare(a, b)
            key = (kind, pair, dm, fm, share[more], dl, fl, share[less], pr, measure)
            rows.append(dict(zip(SKEW_COLUMNS, key)) | res)

    def paired(a, b):
        return _paired_series(a, b, confidence)

    def welch(a, b):
        return welch_difference(a.to_numpy(float), b.to_numpy(float), confidence=confidence)

    # one dataset, several minority fractions: a controlled comparison, paired by seed
    for ds, g in plain.groupby("dataset", sort=False):
        fr = sorted(dict.fromkeys(g["fraction"]), key=lambda f: -share[(ds, f)])
        if len(fr) < 2:
            continue
        pairs = [(fr[-1], fr[0], "extremes")]
        if len(fr) > 2:
            pairs += [(b, a, "adjacent") for a, b in pairwise(fr)]
        for more, less, kind in pairs:
            add("fractions", kind, (ds, more), (ds, less), paired)
    # several datasets at their reference balance: different data, Welch
    ref = reference_fractions(plain)
    items = [(ds, fr) for ds, fr in ref.items() if (ds, fr) in share]
    for x, y in combinations(items, 2):
        if round(share[x], 4) == round(share[y], 4):
            continue
        more, less = (x, y) if share[x] < share[y] else (y, x)
        add("datasets", "pair", more, less, welch)
    return pd.DataFrame(rows, columns=[*SKEW_COLUMNS, *INTERVAL])


def _collapse(w: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Runs that predict no minority example: recall of class 1 is 0 (no true positive)
    and its specificity is 1 (no false positive)."""
    rows = []
    for key, g in w.groupby(SETTING, sort=False):
        dead = (g["rec_1"] == 0.0) & (g["spe_1"] == 1.0)
        k, n = int(dead.sum()), len(g)
        lo, hi = clopper_pearson(k, n, confidence=confidence)
        rows.append(
            dict(zip(SETTING, key))
            | {"runs": n, "collapsed": k, "rate": k / n, "low": lo, "high": hi}
        )
    return pd.DataFrame(rows, columns=[*SETTING, "runs", "collapsed", "rate", "low", "high"])


# --------------------------------------------------------------------------- verdicts


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
    """A claim of PROTOCOL.md section 5 with its verdict, the rule that decided it, its
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
        return f"{r['label']}: {_row_ci(r, signed=signed)} ({r['status']})"

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


def _sel(df: pd.DataFrame, **eq) -> pd.DataFrame:
    if df.empty:
        return df
    m = pd.Series(True, index=df.index)
    for k, v in eq.items():
        m &= df[k].isin(v) if isinstance(v, (list, tuple, set)) else df[k] == v
    return df[m]


def _at_reference(df: pd.DataFrame, ref: dict[str, str]) -> pd.DataFrame:
    if df.empty:
        return df
    keep = [ref.get(ds) == fr for ds, fr in zip(df["dataset"], df["fraction"])]
    return df[keep]


def _dp_sorted(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by dataset (order of appearance), then ε from largest to smallest."""
    if df.empty:
        return df
    p = {x: i for i, x in enumerate(privacy_order(df["privacy"]))}
    d = {x: i for i, x in enumerate(dict.fromkeys(df["dataset"]))}
    return (
        df.assign(_d=df["dataset"].map(d), _p=df["privacy"].map(p))
        .sort_values(["_d", "_p"], kind="stable")
        .drop(columns=["_d", "_p"])
    )


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
        _sel(ev.fairness, privacy="none", mitigation="none", measure="recall_gap"), ref
    )
    rows_a = []
    for _, r in fa.iterrows():
        r = r.copy()
        if not math.isfinite(float(r.get("p_value", math.nan))):
            r["p_value"] = one_sample_p(
                float(r["mean"]), float(r.get("std", math.nan)), int(r["n"])
            )
        rows_a.append((f"{r['dataset']}: recall gap without DP", "required", r))
    sk = _sel(ev.skew, kind="datasets", measure="recall_gap", privacy="none")
    rows_b = [
        (_skew_label(r) + ": difference of recall gaps", "required", r) for _, r in sk.iterrows()
    ]
    return _decide(
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
    c = _at_reference(_sel(ev.cost, mitigation="none"), ref)
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
        for _, r in _dp_sorted(c).iterrows()
    ]
    t = _at_reference(_sel(ev.epsilon_trend, mitigation="none"), ref)
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
    g = _at_reference(_sel(ev.class_cost_gap, mitigation="none"), ref)
    rows_a = [
        (f"{r['dataset']}, ε = {r['privacy']}: minority − majority F1 cost", "required", r)
        for _, r in _dp_sorted(g).iterrows()
    ]
    a = _at_reference(_sel(ev.amplification, mitigation="none", measure="recall_gap"), ref)
    rows_b = [
        (f"{r['dataset']}, ε = {r['privacy']}: recall gap with − without DP", "required", r)
        for _, r in _dp_sorted(a).iterrows()
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
    c = _at_reference(_sel(ev.collapse, mitigation="none"), ref)
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
    sk = _sel(ev.skew, measure=["ba_cost", "amplification"])
    fr = _sel(sk, kind="fractions")
    sk = fr if not fr.empty else _sel(sk, kind="datasets")
    names = {"ba_cost": "balanced-accuracy cost", "amplification": "disparity amplification"}
    specs = []
    for key, measure, title in (
        ("4a", "ba_cost", "more skew, larger loss of utility"),
        ("4b", "amplification", "more skew, larger loss of fairness"),
    ):
        s = _sel(sk, measure=measure)
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
            r = _metric_row(ev, ds, most["fraction_more"], "none", "1", "rec")
            if r is not None and math.isfinite(r["high"]) and r["high"] < 0.05:
                result.sentences.append(
                    f"On {ds} at a minority share of {fmt_share(most['share_more'])} the "
                    f"non-private model's minority recall is already {_row_ci(r)}: DP has "
                    "little left to take there, so the measured harm shrinks (a floor effect)."
                )
    return result


def evaluate_claims(ev: Evidence) -> list[ClaimResult]:
    """The verdicts on the four claims of PROTOCOL.md section 5.

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


# --------------------------------------------------------------------------- sentences


def _class_name(class_names, ds: str, cls: str) -> str:
    role = "minority" if cls == "1" else "majority"
    if class_names and ds in class_names:
        return f"the {role} class ({class_names[ds][int(cls)]})"
    return f"the {role} class ({cls})"


def _metric_row(ev: Evidence, ds, fr, pr, cls, metric, mit="none"):
    g = _sel(ev.metrics, dataset=ds, fraction=fr, privacy=pr, mitigation=mit)
    g = g[(g["class"] == cls) & (g["metric"] == metric)] if not g.empty else g
    return None if g.empty else g.iloc[0]


def _recall_change(name: str, a, b, cost) -> str:
    """How a class's recall moved under DP, judged on the paired CI of (without − with)."""
    head = f"the recall of {name}"
    if cost is None or not math.isfinite(cost["low"]):
        return f"{head} goes from {_row_ci(a)} to {_row_ci(b)}"
    p = fmt_p(cost["p_value"])
    if cost["low"] > 0:
        return f"{head} falls from {_row_ci(a)} to {_row_ci(b)} (paired drop {_row_ci(cost)}, {p})"
    if cost["high"] < 0:
        rise = fmt_ci(-cost["mean"], -cost["high"], -cost["low"])
        return f"{head} rises from {_row_ci(a)} to {_row_ci(b)} (paired rise {rise}, {p})"
    return (
        f"{head} does not change significantly ({_row_ci(a)} without DP, {_row_ci(b)} with; "
        f"paired difference {_row_ci(cost, signed=True)}, {p})"
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
        r0 = _metric_row(ev, ds, fr, "none", "0", "rec")
        r1 = _metric_row(ev, ds, fr, "none", "1", "rec")
        gap = _sel(
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
                f"{_class_name(class_names, ds, '1')} has recall {_row_ci(r1)} against "
                f"{_row_ci(r0)} for {_class_name(class_names, ds, '0')}"
            )
            if not gap.empty:
                s += f": a recall gap of {_row_ci(gap.iloc[0])}"
            out.append(s + ".")
        eps = [
            p
            for p in privacy_order(_sel(ev.metrics, dataset=ds, fraction=fr)["privacy"])
            if p != "none"
        ]
        if not eps:
            continue
        e = eps[-1]
        parts = []
        for cls in ("1", "0"):
            a = _metric_row(ev, ds, fr, "none", cls, "rec")
            b = _metric_row(ev, ds, fr, e, cls, "rec")
            c = _sel(ev.cost, dataset=ds, fraction=fr, privacy=e, mitigation="none")
            c = c[(c["class"] == cls) & (c["metric"] == "rec")] if not c.empty else c
            if a is None or b is None:
                continue
            cr = None if c.empty else c.iloc[0]
            parts.append(_recall_change(_class_name(class_names, ds, cls), a, b, cr))
        if parts:
            out.append(f"On {ds} at ε = {e}, " + "; ".join(parts) + ".")
        ba = [("no DP", _metric_row(ev, ds, fr, "none", "avg/total", "balanced_accuracy"))]
        ba += [
            (f"ε = {p}", _metric_row(ev, ds, fr, p, "avg/total", "balanced_accuracy")) for p in eps
        ]
        ba = [f"{_row_ci(r)} with {lab}" for lab, r in ba if r is not None]
        if len(ba) > 1:
            out.append(f"Balanced accuracy on {ds}: " + _join(ba) + ".")
        amp = _dp_sorted(
            _sel(ev.amplification, dataset=ds, fraction=fr, mitigation="none", measure="recall_gap")
        )
        if not amp.empty:
            items = [f"{_row_ci(r, signed=True)} at ε = {r['privacy']}" for _, r in amp.iterrows()]
            out.append(
                f"DP-SGD changes the recall gap on {ds} (gap with DP − gap without, paired; "
                "positive means the classes drift apart) by " + _join(items) + "."
            )
        col = _sel(ev.collapse, dataset=ds, fraction=fr, mitigation="none")
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
                    for _, r in _dp_sorted(dead).iterrows()
                ]
                out.append(
                    f"On {ds}, models that predict no example of {minority} at all: "
                    + _join(items)
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
        eps = [p for p in privacy_order(_sel(ev.metrics, dataset=ds)["privacy"]) if p != "none"]
        pieces = []
        for pr in ["none", *eps[-1:]]:
            a = _metric_row(ev, ds, least["fraction"], pr, "1", "rec")
            b = _metric_row(ev, ds, most["fraction"], pr, "1", "rec")
            if a is None or b is None:
                continue
            where = "without privacy" if pr == "none" else f"at ε = {pr}"
            pieces.append(f"{where} from {_row_ci(a)} to {_row_ci(b)}")
        if not pieces:
            continue
        s = (
            f"On {ds}, shrinking the minority share of the training split from "
            f"{fmt_share(least['share'])} ({least['fraction']}) to {fmt_share(most['share'])} "
            f"moves the recall of {minority} " + "; ".join(pieces) + "."
        )
        b = _metric_row(ev, ds, most["fraction"], "none", "1", "rec")
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
                items.append(f"{name} by {_row_ci(g.loc[measure], signed=True)}")
        if items:
            bal = "" if fr == "natural" else f" (minority fraction {fr})"
            out.append(
                f"On {ds}{bal} at ε = {pr}, {mit} changes "
                + _join(items)
                + " against plain DP-SGD (paired by seed)."
            )
    return out
