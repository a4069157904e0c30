"""ROC curves of membership inference, pooled over target models, with bootstrap CIs.

An attack gives every (target model, record) pair a score, higher meaning "member". The ROC
curve sweeps one threshold over all pairs; its points are taken at the ends of groups of
tied scores, so ties count half in the AUC (trapezoidal rule) and never split a threshold.
``TPR at FPR = α`` is the largest TPR of a threshold whose FPR is at most α (no
interpolation: the step curve an attacker can actually realise).

Confidence intervals come from a two-way ("pigeonhole") bootstrap: each replicate draws the
target models with replacement and, independently, the records with replacement within each
class, and weighs every pair by (times its model was drawn) × (times its record was drawn).
Pairs share both a model and a record, so resampling only one of the two understates the
variance; with stratified records, every replicate keeps the class sizes, and a class gap
computed on one replicate is paired.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..exceptions import ParameterError

#: FPR levels reported in every record (Carlini et al. 2022 argue for low FPRs).
REPORT_FPRS = (0.01, 0.001)
#: FPR grid at which ROC curves are stored for plotting (log-spaced).
CURVE_FPRS = tuple(float(x) for x in np.logspace(-5, 0, 81))


@dataclass
class RocSummary:
    """AUC and TPR at the report FPRs of one pooled ROC, with bootstrap percentile CIs.

    ``curve_fpr``/``curve_tpr`` (and ``curve_low``/``curve_high``) sample the step curve on
    :data:`CURVE_FPRS`; ``replicates`` holds the bootstrap values (columns: AUC, then each
    report FPR) for paired comparisons.
    """

    auc: float
    auc_ci: tuple[float, float]
    tpr: dict[float, float]
    tpr_ci: dict[float, tuple[float, float]]
    n_members: int
    n_nonmembers: int
    curve_fpr: np.ndarray
    curve_tpr: np.ndarray
    curve_low: np.ndarray
    curve_high: np.ndarray
    replicates: np.ndarray = field(repr=False)


def _tie_ends(sorted_scores: np.ndarray) -> np.ndarray:
    """Index of the last element of each run of equal values in a sorted array."""
    if sorted_scores.size == 0:
        return np.zeros(0, np.int64)
    change = sorted_scores[1:] != sorted_scores[:-1]
    return np.flatnonzero(np.r_[change, True])


def _curves(w_member: np.ndarray, w_non: np.ndarray, ends: np.ndarray):
    """Cumulative TPR and FPR at tie-group ends, row-wise for 2-D weights."""
    tp = np.cumsum(w_member, axis=-1)[..., ends]
    fp = np.cumsum(w_non, axis=-1)[..., ends]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = tp / tp[..., -1:]
        fpr = fp / fp[..., -1:]
    return tpr, fpr


def _auc(tpr: np.ndarray, fpr: np.ndarray) -> np.ndarray:
    """Trapezoidal area under step curves starting at (0, 0), row-wise."""
    z = np.zeros((*tpr.shape[:-1], 1))
    t = np.concatenate([z, tpr], axis=-1)
    f = np.concatenate([z, fpr], axis=-1)
    return np.sum(np.diff(f, axis=-1) * (t[..., 1:] + t[..., :-1]) * 0.5, axis=-1)


def _tpr_at(tpr: np.ndarray, fpr: np.ndarray, levels) -> np.ndarray:
    """Largest TPR with FPR <= level, for a 1-D curve (FPR non-decreasing)."""
    levels = np.asarray(levels, dtype=np.float64)
    if not np.isfinite(fpr[-1]):
        return np.full(levels.shape, np.nan)
    # a tiny tolerance so that FPR = k/N is accepted at level k/N despite rounding
    j = np.searchsorted(fpr, levels * (1 + 1e-12), side="right") - 1
    return np.where(j >= 0, tpr[np.maximum(j, 0)], 0.0)


def roc_curve(scores, members) -> tuple[np.ndarray, np.ndarray]:
    """FPR and TPR of every distinct threshold, from (0, 0) to (1, 1).

    Examples
    --------
    >>> fpr, tpr = roc_curve([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    s, u = _check(scores, members)
    order = np.argsort(-s, kind="stable")
    ends = _tie_ends(s[order])
    uu = u[order].astype(np.float64)
    tpr, fpr = _curves(uu, 1.0 - uu, ends)
    return np.r_[0.0, fpr], np.r_[0.0, tpr]


def roc_auc(scores, members) -> float:
    """Area under the ROC curve: P(member score > non-member score), ties counting half.

    Examples
    --------
    >>> roc_auc([0.9, 0.8, 0.3, 0.1], [True, False, True, False])
    0.75
    """
    fpr, tpr = roc_curve(scores, members)
    return float(_auc(tpr[1:], fpr[1:]))


def tpr_at_fpr(scores, members, fpr_level: float) -> float:
    """Largest TPR among thresholds whose FPR is at most ``fpr_level``.

    Examples
    --------
    >>> tpr_at_fpr([0.9, 0.8, 0.3, 0.1], [True, False, True, False], 0.0)
    0.5
    """
    fpr, tpr = roc_curve(scores, members)
    return float(_tpr_at(tpr, fpr, [fpr_level])[0])


def _check(scores, members) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    u = np.asarray(members, dtype=bool).ravel()
    if s.shape != u.shape:
        raise ParameterError(f"scores and members differ in size: {s.size} and {u.size}")
    if not np.all(np.isfinite(s)):
        raise ParameterError("attack scores must be finite")
    if u.all() or not u.any():
        raise ParameterError("an ROC curve needs both members and non-members")
    return s, u


@dataclass(frozen=True)
class BootstrapPlan:
    """Replicate weights of a two-way bootstrap: ``models`` (B, M) and ``records`` (B, N)
    multiplicities, records drawn within each class of ``labels``."""

    models: np.ndarray
    records: np.ndarray

    @classmethod
    def draw(cls, *, n_models: int, labels: np.ndarray, replicates: int, seed: int):
        rng = np.random.default_rng([int(seed), 0xB007])
        B = int(replicates)
        a = rng.multinomial(n_models, np.full(n_models, 1.0 / n_models), size=B).astype(np.float64)
        labels = np.asarray(labels)
        b = np.zeros((B, labels.size), np.float64)
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            b[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size), size=B)
        return cls(a, b)


def summarize_roc(
    scores: np.ndarray,
    members: np.ndarray,
    *,
    records: np.ndarray | None = None,
    plan: BootstrapPlan | None = None,
    confidence: float = 0.95,
    fprs=REPORT_FPRS,
    chunk: int = 32,
) -> RocSummary:
    """Pooled ROC of a (models × records) score matrix, restricted to ``records``.

    Parameters
    ----------
    scores, members : (M, N) arrays
        Attack score and membership of every record in every target model.
    records : index array, optional
        The records (columns) to evaluate, e.g. one class; all by default.
    plan : BootstrapPlan, optional
        Replicate weights; without it the CIs are NaN.
    """
    S = np.asarray(scores, dtype=np.float64)
    U = np.asarray(members, dtype=bool)
    if S.ndim != 2 or S.shape != U.shape:
        raise ParameterError(
            f"scores and members must be (models, records); got {S.shape}, {U.shape}"
        )
    cols = np.arange(S.shape[1]) if records is None else np.asarray(records)
    M = S.shape[0]
    s = S[:, cols].ravel()
    u = U[:, cols].ravel()
    _check(s, u)
    mi = np.repeat(np.arange(M), cols.size)
    ri = np.tile(cols, M)
    order = np.argsort(-s, kind="stable")
    s, u, mi, ri = s[order], u[order], mi[order], ri[order]
    ends = _tie_ends(s)
    uf = u.astype(np.float64)
    tpr, fpr = _curves(uf, 1.0 - uf, ends)
    levels = np.asarray(fprs, dtype=np.float64)
    grid = np.asarray(CURVE_FPRS)
    auc = float(_auc(tpr, fpr))
    tpr_pt = _tpr_at(tpr, fpr, levels)
    curve = _tpr_at(tpr, fpr, grid)
    n_rep = 0 if plan is None else plan.models.shape[0]
    # keep a chunk's weight matrices near 2e6 entries whatever the number of pairs
    chunk = max(1, min(chunk, int(2_000_000 // max(s.size, 1))))
    reps = np.full((n_rep, 1 + levels.size), np.nan)
    rep_curves = np.full((n_rep, grid.size), np.nan)
    for start in range(0, n_rep, chunk):
        stop = min(start + chunk, n_rep)
        w = plan.models[start:stop][:, mi] * plan.records[start:stop][:, ri]
        t_b, f_b = _curves(w * uf, w * (1.0 - uf), ends)
        reps[start:stop, 0] = _auc(t_b, f_b)
        for k in range(stop - start):
            reps[start + k, 1:] = _tpr_at(t_b[k], f_b[k], levels)
            rep_curves[start + k] = _tpr_at(t_b[k], f_b[k], grid)
    lo_q, hi_q = 50 * (1 - confidence), 50 * (1 + confidence)

    def ci(x: np.ndarray) -> tuple[float, float]:
        x = x[np.isfinite(x)]
        if x.size == 0:
            return (float("nan"), float("nan"))
        return (float(np.percentile(x, lo_q)), float(np.percentile(x, hi_q)))

    if n_rep:
        c_low = np.nanpercentile(rep_curves, lo_q, axis=0)
        c_high = np.nanpercentile(rep_curves, hi_q, axis=0)
    else:
        c_low = c_high = np.full(grid.size, np.nan)
    return RocSummary(
        auc=auc,
        auc_ci=ci(reps[:, 0]),
        tpr={float(a): float(t) for a, t in zip(levels, tpr_pt)},
        tpr_ci={float(a): ci(reps[:, 1 + i]) for i, a in enumerate(levels)},
        n_members=int(u.sum()),
        n_nonmembers=int((~u).sum()),
        curve_fpr=grid,
        curve_tpr=curve,
        curve_low=c_low,
        curve_high=c_high,
        replicates=reps,
    )


def paired_gap_ci(a: RocSummary, b: RocSummary, *, confidence: float = 0.95) -> np.ndarray:
    """Bootstrap percentile CIs of ``a − b`` for AUC and each report FPR's TPR, from
    replicates drawn with one :class:`BootstrapPlan` (so the difference is paired).

    Returns an array (k, 2) of (low, high)."""
    d = a.replicates - b.replicates
    out = np.full((d.shape[1], 2), np.nan)
    for j in range(d.shape[1]):
        x = d[:, j][np.isfinite(d[:, j])]
        if x.size:
            out[j] = np.percentile(x, [50 * (1 - confidence), 50 * (1 + confidence)])
    return out
