"""A differentially private standard scaler: per-column mean and standard deviation of the
training rows released by the Laplace mechanism, for the ``dp_standard`` scaling.

Mechanism
---------
Each column is clipped to its public bounds ``[l, u]`` and mapped to ``z = (x − m) / r``
in ``[−1, 1]`` (``m = (l + u) / 2``, ``r = (u − l) / 2``). The mechanism releases the ``d``
column sums ``Σ z`` and the ``d`` sums of squares ``Σ z²``: adding or removing one record
changes each of these ``2d`` numbers by at most 1, so the vector has L1 sensitivity ``2d``
and Laplace noise of scale ``2d / ε`` on each coordinate gives ε-DP (Dwork et al. 2006).
With the public number of rows ``n`` (docs/privacy.md rule 12):

- mean ``μ_z = clip(S₁ / n, −1, 1)``, variance ``v_z = clip(S₂ / n − μ_z², v₀, 1)`` with the
  floor ``v₀ = 1e-4`` (a standard deviation of 1 % of the half-range: noise must never make
  a column blow up), both post-processing of the release;
- in the column's units: ``center = m + r μ_z`` and ``scale = r √v_z``; new rows are clipped
  to ``[l, u]`` before scaling, like the training rows.

The ε is a share of the run's budget, declared to the run's plan as a one-shot Laplace
query and added to DP-SGD's by basic composition (:mod:`._plan`).
"""

from __future__ import annotations

import numpy as np

#: Floor of the released variance in [-1, 1] units (a standard deviation of 1 % of the
#: half-range of the column's public bounds).
VARIANCE_FLOOR = 1e-4


def scaler_sensitivity(n_features: int) -> float:
    """L1 sensitivity of the released sums: 2 per column (its sum and its sum of squares)."""
    return 2.0 * n_features


#: The name of the DP scaler's query in a plan.
SCALER_QUERY = "scaler"


def scaler_query(n_features: int, share: float):
    """The DP scaler's query, declared to a run's plan (a one-shot Laplace query taking
    ``share`` of ε)."""
    from ._plan import ONCE_LAPLACE, QuerySpec

    return QuerySpec(
        name=SCALER_QUERY,
        description=(
            "per-column sums and sums of squares of the training rows clipped to "
            "public bounds, for the DP standard scaler (Laplace mechanism)"
        ),
        mechanism=ONCE_LAPLACE,
        sensitivity=f"L1 norm {scaler_sensitivity(n_features):g} (2 per column)",
        share=share,
        l1_sensitivity=scaler_sensitivity(n_features),
    )


def dp_standard_scaler(
    X: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    epsilon: float,
    n: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(center, scale, released)`` of the DP standard scaler (see the module docstring).

    ``n`` is the public number of training rows; ``rng`` the plan's generator for this query
    (secret unless in research mode). ``released`` holds the noisy sums, what the mechanism
    published (the center and scale follow from them)."""
    X = np.asarray(X, dtype=np.float64)
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    d = X.shape[1]
    m = (lower + upper) / 2.0
    r = (upper - lower) / 2.0
    z = (np.clip(X, lower, upper) - m) / r
    scale_noise = scaler_sensitivity(d) / float(epsilon)
    s1 = z.sum(axis=0) + rng.laplace(0.0, scale_noise, size=d)
    s2 = (z * z).sum(axis=0) + rng.laplace(0.0, scale_noise, size=d)
    mu = np.clip(s1 / n, -1.0, 1.0)
    var = np.clip(s2 / n - mu * mu, VARIANCE_FLOOR, 1.0)
    center = m + r * mu
    scale = r * np.sqrt(var)
    released = {
        "noisy_sums": s1.tolist(),
        "noisy_sums_of_squares": s2.tolist(),
        "laplace_scale": scale_noise,
        "noisy_means": center.tolist(),
        "noisy_stds": scale.tolist(),
    }
    return center, scale, released
