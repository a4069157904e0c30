"""Membership inference scores: the loss-threshold attack and LiRA, offline and online.

Scores are computed for every (target model, record) pair of an experiment in which M models
were trained on random halves of a pool of records, by *leave one model out*: each model in
turn is the target, and the other M − 1 are its shadow models. Higher scores mean "member".

* ``loss`` (Yeom et al. 2018): the negative cross-entropy of the record under the target;
  thresholding it is the loss-threshold attack.
* ``lira_offline`` (Carlini et al. 2022): how far the target's logit-scaled confidence
  φ = log(p_y / (1 − p_y)) lies above the record's OUT distribution, fitted as a Gaussian on
  the shadows that did not train on the record: (φ − μ_out) / σ_out, a one-sided test.
* ``lira_online``: the log-likelihood ratio of φ under the record's IN and OUT Gaussians.

Means are per record; the variance is *global* by default (pooled over the records of the
experiment, separately for IN and OUT), which Carlini et al. recommend when each record has
few shadows (here about (M − 1) / 2 on each side); ``variance="per_example"`` uses each
record's own variance instead.
"""

from __future__ import annotations

import numpy as np

from ..exceptions import ParameterError

ATTACK_NAMES = ("loss", "lira_offline", "lira_online")
VARIANCES = ("global", "per_example")
_MIN_VAR = 1e-12


def logit_confidence(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """φ = log(p_y / (1 − p_y)) of each row, computed stably from the logits as
    ``z_y − logsumexp_{j ≠ y} z_j`` (for two classes simply ``z_y − z_other``).

    Examples
    --------
    >>> import numpy as np
    >>> logit_confidence(np.array([[0.0, 2.0], [1.0, -1.0]]), np.array([1, 1])).tolist()
    [2.0, -2.0]
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    rows = np.arange(z.shape[0])
    zy = z[rows, y]
    other = z.copy()
    other[rows, y] = -np.inf
    m = other.max(axis=1)
    lse = m + np.log(np.exp(other - m[:, None]).sum(axis=1))
    return zy - lse


def loss_scores(losses: np.ndarray) -> np.ndarray:
    """Scores of the loss-threshold attack: minus each pair's cross-entropy."""
    return -np.asarray(losses, dtype=np.float64)


def _leave_one_out_moments(phi: np.ndarray, side: np.ndarray, variance: str):
    """Per (target, record): mean and variance of φ over the *other* models on ``side``."""
    M = phi.shape[0]
    w = side.astype(np.float64)
    s1 = (w * phi).sum(axis=0)
    s2 = (w * phi * phi).sum(axis=0)
    cnt = w.sum(axis=0)
    # remove the target's own contribution
    c = cnt[None, :] - w
    t1 = s1[None, :] - w * phi
    t2 = s2[None, :] - w * phi * phi
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = t1 / c
        ss = np.maximum(t2 - t1 * mean, 0.0)  # within-record sum of squares
    # a record with no shadow on this side gets the pooled mean of its target's shadows
    missing = ~(c > 0)
    if missing.any():
        pooled = np.array([np.nansum(t1[t]) / max(np.nansum(c[t]), 1.0) for t in range(M)])
        mean = np.where(missing, pooled[:, None], mean)
    if variance == "global":
        dof = np.maximum(c - 1.0, 0.0)
        ss_ok = np.where(c > 1, ss, 0.0)
        var_t = ss_ok.sum(axis=1) / np.maximum(dof.sum(axis=1), 1.0)
        var = np.broadcast_to(var_t[:, None], phi.shape)
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(c > 1, ss / (c - 1.0), np.nan)
        fill = np.nanmedian(var) if np.isfinite(var).any() else 1.0
        var = np.where(np.isfinite(var), var, fill)
    return mean, np.maximum(var, _MIN_VAR)


def lira_scores(
    phi: np.ndarray, members: np.ndarray, *, online: bool, variance: str = "global"
) -> np.ndarray:
    """LiRA scores of every (target, record) pair by leave one model out.

    Parameters
    ----------
    phi : (M, N) array
        Logit-scaled confidence of each record (column) under each model (row).
    members : (M, N) bool array
        Whether each model trained on each record.
    online : bool
        ``False``: offline LiRA, ``(φ − μ_out) / σ_out`` (one-sided: only the OUT shadows are
        used). ``True``: online LiRA, ``log N(φ; μ_in, σ_in²) − log N(φ; μ_out, σ_out²)``.
    variance : {"global", "per_example"}
        Pooled variance per target (default) or each record's own.
    """
    phi = np.asarray(phi, dtype=np.float64)
    members = np.asarray(members, dtype=bool)
    if phi.ndim != 2 or phi.shape != members.shape:
        raise ParameterError(
            f"phi and members must be (models, records); got {phi.shape}, {members.shape}"
        )
    if phi.shape[0] < 3:
        raise ParameterError(
            f"LiRA needs at least 3 models (one target, two shadows); got {phi.shape[0]}"
        )
    if variance not in VARIANCES:
        raise ParameterError(f"variance must be one of {', '.join(VARIANCES)}; got {variance!r}")
    mu_out, var_out = _leave_one_out_moments(phi, ~members, variance)
    if not online:
        return (phi - mu_out) / np.sqrt(var_out)
    mu_in, var_in = _leave_one_out_moments(phi, members, variance)
    return (
        -0.5 * (phi - mu_in) ** 2 / var_in
        + 0.5 * (phi - mu_out) ** 2 / var_out
        - 0.5 * np.log(var_in / var_out)
    )


def attack_scores(
    name: str, *, losses: np.ndarray, phi: np.ndarray, members: np.ndarray, variance: str = "global"
) -> np.ndarray:
    """Scores of attack ``name`` (one of :data:`ATTACK_NAMES`) for every pair."""
    if name == "loss":
        return loss_scores(losses)
    if name == "lira_offline":
        return lira_scores(phi, members, online=False, variance=variance)
    if name == "lira_online":
        return lira_scores(phi, members, online=True, variance=variance)
    raise ParameterError(f"attack must be one of {', '.join(ATTACK_NAMES)}; got {name!r}")
