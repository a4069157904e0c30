"""Private selection: the ε of a hyperparameter search whose number of trials is random.

A private search runs a randomized algorithm ``Q`` (draw a candidate setting at random from
a space fixed in advance, train it with DP-SGD, score it with a noisy count on held-out
rows) a random number ``K`` of times and releases only the best output. Papernot & Steinke
("Hyperparameter tuning with Rényi differential privacy", ICLR 2022) bound the Rényi DP of
the whole search by that of one trial; this module evaluates their bounds and calibrates the
trials' noise so that the search (and, optionally, retraining the chosen setting) spends at
most a target (ε, δ).

What is ours and what is a library's
-------------------------------------
* The Rényi DP curve ``ε_Q(λ)`` of one candidate (its Poisson-subsampled Gaussian steps and
  its one-shot Laplace queries) comes from dp-accounting's ``RdpAccountant`` at the orders
  :data:`SELECTION_ORDERS` (integers, where its computation is exact and fast).
* A trial draws its setting at random, so ``Q`` is a mixture of the settings' mechanisms
  chosen independently of the data; Rényi divergence is jointly quasi-convex (van Erven &
  Harremoës 2014, Theorem 13), so ``ε_Q(λ) ≤ max_c ε_c(λ)`` order by order (the *envelope*).
* The theorems (written here from the paper):

  - **Theorem 2**, ``K`` truncated negative binomial ``D_{η,γ}`` (``η > -1``,
    ``0 < γ < 1``; ``η = 1`` is the geometric distribution, ``η = 0`` the logarithmic):
    ``P[K = k] = (1-γ)^k / (γ^{-η} - 1) · Π_{l<k} (l+η)/(l+1)`` for ``k ≥ 1``
    (``(1-γ)^k / (k log(1/γ))`` at ``η = 0``), with mean ``η(1-γ) / (γ(1-γ^η))``. If ``Q``
    is ``(λ, ε(λ))``- and ``(λ̂, ε(λ̂))``-RDP, the search is ``(λ, ε'(λ))``-RDP with
    ``ε' = ε(λ) + (1+η)(1 - 1/λ̂) ε(λ̂) + (1+η) log(1/γ)/λ̂ + log(E[K]) / (λ-1)``; we take
    the best ``λ̂`` of the grid.
  - **Theorem 6**, ``K ~ Poisson(μ)``: if ``Q`` is ``(λ, ε(λ))``-RDP and ``(ε̂, δ̂)``-DP with
    ``e^ε̂ ≤ 1 + 1/(λ-1)``, the search is ``(λ, ε(λ) + μ δ̂ + log(μ)/(λ-1))``-RDP; we take
    ``ε̂ = log(1 + 1/(λ-1))`` and ``δ̂`` from ``Q``'s curve by the conversion below.

  Both bounds are then made non-decreasing in λ (Rényi divergence is: the bound at λ may
  take the smaller bound of a higher order).
* Composition with the final retraining (chosen by the search, so adaptively) adds the RDP
  curves order by order; the conversion of the total curve to (ε, δ) is dp-accounting's
  ``compute_epsilon``: ``ε = min_λ ε(λ) + log(1 - 1/λ) - log(δ λ)/(λ-1)`` (Canonne, Kamath &
  Steinke 2020, Proposition 12; Asoodeh et al. 2021), the same conversion as its
  ``RdpAccountant.get_epsilon``.

Calibration
-----------
Each candidate *setting* (its sample rate, steps and one-shot queries: the public
constants that decide its privacy) gets its own noise multiplier. All of them are tied to
one parameter ``μ``: a setting of ``T`` steps at rate ``q`` gets the σ whose Gaussian
differential privacy parameter ``q √(T (e^{1/σ²} - 1))`` (Bu et al. 2020, the central limit
of composed subsampled Gaussians) is ``μ``, so that every setting is about equally private.
``μ`` is then searched (bracketed, safeguarded secant steps, like the noise calibration of a
run) until the search's ε computed *exactly* from the envelope, by the theorem and the
conversion, is at most the target and within :data:`CALIBRATION_TOLERANCE` of it. The GDP
formula only ties the settings together; every ε reported is the accountant's.

Scores
------
A trial's score is computed from its confusion counts on held-out rows, each released with
Gaussian noise: one record changes one count by one (L2 sensitivity 1). The held-out rows
are drawn record by record, independently of each other, so a record is either trained on
or scored, never both; by joint quasi-convexity again the trial is ``(λ, max(ε_train(λ),
ε_score(λ)))``-RDP. The score's noise multiplier is the smallest that keeps its curve
``λ / (2 σ_s²)`` at or below the training curve at every order of the grid: the score then
costs nothing beyond the training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..exceptions import ParameterError, PrivacyError
from ._accounting import CALIBRATION_TOLERANCE, check_epsilon

#: Rényi orders of the selection accounting (integers: dp-accounting's subsampled Gaussian
#: RDP is exact and fast there; a search at the study's budgets is optimal between 4 and 64).
SELECTION_ORDERS: tuple[float, ...] = (
    *range(2, 13),
    14,
    16,
    18,
    20,
    24,
    28,
    32,
    40,
    48,
    56,
    64,
    80,
    96,
    128,
    192,
    256,
)
TRUNCATED_NEGATIVE_BINOMIAL = "truncated_negative_binomial"
POISSON = "poisson"
#: Shape of the default distribution of the number of trials: the geometric distribution
#: (eta = 1). Smaller shapes cost less privacy per trial but run a single trial more often
#: (logarithmic, eta = 0, at a mean of 20: one trial in 22 % of searches, median 6, 1 % above
#: 180) and negative shapes rarely tune at all; the geometric runs one trial in 5 % (median
#: 14, 99th percentile 91), and Poisson's fixed-ish count costs a third more per trial
#: (docs/privacy.md, private selection).
DEFAULT_ETA = 1.0
THEOREM_2 = (
    "Papernot & Steinke (ICLR 2022), Theorem 2: K ~ truncated negative binomial D(eta, gamma); "
    "eps'(lambda) = eps(lambda) + (1+eta)(1 - 1/lambda_hat) eps(lambda_hat) "
    "+ (1+eta) log(1/gamma)/lambda_hat + log(E[K])/(lambda-1)"
)
THEOREM_6 = (
    "Papernot & Steinke (ICLR 2022), Theorem 6: K ~ Poisson(mu); eps'(lambda) = eps(lambda) "
    "+ mu delta_hat + log(mu)/(lambda-1), delta_hat the trial's delta at "
    "eps_hat = log(1 + 1/(lambda-1))"
)
CONVERSION = (
    "RDP to (epsilon, delta) by dp-accounting's compute_epsilon: min over orders of "
    "eps(lambda) + log(1 - 1/lambda) - log(delta lambda)/(lambda-1) (Canonne, Kamath & "
    "Steinke 2020, Proposition 12)"
)
MIXTURE_NOTE = (
    "each trial draws its setting at random from the space, independently of the data: a "
    "mixture of the settings' mechanisms, whose Renyi divergence is at most the largest of "
    "theirs at every order (joint quasi-convexity), so the trial's curve is the envelope of "
    "the settings' curves"
)
_MAX_TRIALS_MEAN = 10_000.0


# ---------------------------------------------------------------------- the number of trials


def _tnb_mean(gamma: float, eta: float) -> float:
    if eta == 0:
        return (1.0 - gamma) / (gamma * math.log(1.0 / gamma))
    return eta * (1.0 - gamma) / (gamma * (1.0 - gamma**eta))


def _tnb_gamma(mean: float, eta: float) -> float:
    """The γ whose truncated negative binomial has this mean (the mean falls as γ grows)."""
    if eta == 1:
        return 1.0 / mean
    lo, hi = 1e-300, 1.0 - 1e-15
    if _tnb_mean(hi, eta) >= mean:
        return hi
    for _ in range(200):
        mid = math.sqrt(lo * hi) if hi / lo > 4 else 0.5 * (lo + hi)
        if _tnb_mean(mid, eta) > mean:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return hi  # the larger gamma: its mean is at most the one asked for


@dataclass(frozen=True)
class TrialDistribution:
    """The distribution of the number of trials of a private search.

    Build it with :meth:`truncated_negative_binomial` (Theorem 2; ``eta=1`` geometric,
    ``eta=0`` logarithmic) or :meth:`poisson` (Theorem 6). ``mean`` is ``E[K]``.

    Examples
    --------
    >>> d = TrialDistribution.truncated_negative_binomial(20, eta=1.0)
    >>> d.gamma, d.mean
    (0.05, 20.0)
    >>> round(float(d.pmf([1])[0]), 4)
    0.05
    """

    kind: str
    mean: float
    eta: float | None = None
    gamma: float | None = None

    @classmethod
    def truncated_negative_binomial(cls, mean: float, eta: float = DEFAULT_ETA):
        """``D_{η,γ}`` with ``E[K] = mean``; ``γ`` is solved from the mean."""
        mean, eta = _check_mean(mean), float(eta)
        if not (eta > -1 and math.isfinite(eta)):
            raise ParameterError(f"eta (the shape of the number of trials) must be > -1; got {eta}")
        if mean <= 1:
            raise ParameterError(
                f"the expected number of trials must be above 1 for a truncated negative "
                f"binomial (K >= 1); got {mean:g}"
            )
        gamma = _tnb_gamma(mean, eta)
        return cls(TRUNCATED_NEGATIVE_BINOMIAL, float(_tnb_mean(gamma, eta)), eta, gamma)

    @classmethod
    def poisson(cls, mean: float):
        """``K ~ Poisson(mean)`` (``K = 0`` releases nothing)."""
        mean = _check_mean(mean)
        if mean < 1:
            raise ParameterError(
                f"the expected number of trials of a Poisson search must be at least 1; "
                f"got {mean:g}"
            )
        return cls(POISSON, mean)

    def pmf(self, k) -> np.ndarray:
        """``P[K = k]`` for integers ``k``."""
        from scipy.special import gammaln

        k = np.asarray(k, dtype=np.float64)
        if self.kind == POISSON:
            out = np.exp(k * math.log(self.mean) - self.mean - gammaln(k + 1))
            return np.where(k >= 0, out, 0.0)
        g, eta = float(self.gamma), float(self.eta)
        kk = np.maximum(k, 1.0)
        if eta == 0:
            log_p = kk * math.log1p(-g) - np.log(kk) - math.log(math.log(1.0 / g))
        else:
            # prod_{l<k} (l+eta)/(l+1) = Gamma(k+eta) / (Gamma(eta) Gamma(k+1)), taken as a
            # product of positive ratios for -1 < eta < 0 too (its sign is that of eta)
            log_ratio = (
                gammaln(kk + eta) - gammaln(kk + 1.0) - gammaln(1.0 + eta) + math.log(abs(eta))
            )
            log_p = kk * math.log1p(-g) + log_ratio - math.log(abs(g**-eta - 1.0))
        return np.where(k >= 1, np.exp(log_p), 0.0)

    def sample(self, rng: np.random.Generator) -> int:
        """Draw ``K`` (by inversion of the distribution function with one uniform of
        ``rng``; the caller's generator is secret unless in research mode)."""
        if self.kind == POISSON:
            return int(rng.poisson(self.mean))
        u = float(rng.random())
        g, eta = float(self.gamma), float(self.eta)
        k = 1
        p = float(self.pmf([1])[0])
        cdf = p
        while u > cdf and p > 0.0:
            p *= (1.0 - g) * (k + eta) / (k + 1)
            k += 1
            cdf += p
        return k

    @property
    def theorem(self) -> str:
        return THEOREM_6 if self.kind == POISSON else THEOREM_2

    def describe(self) -> str:
        if self.kind == POISSON:
            return f"Poisson with mean {self.mean:g}"
        name = {0.0: "logarithmic", 1.0: "geometric"}.get(float(self.eta or 0), "")
        what = f"{name} (truncated negative binomial" if name else "truncated negative binomial"
        return (
            f"{what}{')' if name else ''} with eta = {self.eta:g}, gamma = {self.gamma:.6g}, "
            f"mean {self.mean:.6g}"
        )

    def to_dict(self) -> dict:
        return {
            "distribution": self.kind,
            "mean": self.mean,
            "eta": self.eta,
            "gamma": self.gamma,
            "description": self.describe(),
        }


def _check_mean(mean) -> float:
    try:
        m = float(mean)
    except (TypeError, ValueError):
        raise ParameterError(
            f"the expected number of trials must be a number; got {mean!r}"
        ) from None
    if not (math.isfinite(m) and 0 < m <= _MAX_TRIALS_MEAN):
        raise ParameterError(
            f"the expected number of trials must be in [1, {_MAX_TRIALS_MEAN:g}]; got {mean!r}"
        )
    return m


# ---------------------------------------------------------------------- RDP curves


def _orders(orders: Sequence[float] | None) -> np.ndarray:
    o = np.asarray(SELECTION_ORDERS if orders is None else orders, dtype=np.float64)
    if o.ndim != 1 or len(o) == 0 or not np.all(o > 1) or not np.all(np.diff(o) > 0):
        raise ParameterError("Renyi orders must be increasing numbers above 1")
    return o


@lru_cache(maxsize=8192)
def _step_rdp(q: float, sigma: float, orders: tuple[float, ...]) -> tuple[float, ...]:
    """dp-accounting's RDP of one Poisson-subsampled Gaussian step."""
    import dp_accounting

    acc = dp_accounting.rdp.RdpAccountant(list(orders))
    acc.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)))
    return tuple(float(v) for v in acc.rdp)


@lru_cache(maxsize=1024)
def _laplace_rdp(epsilon: float, orders: tuple[float, ...]) -> tuple[float, ...]:
    """dp-accounting's RDP of an ε-DP Laplace query of L1 sensitivity 1 (Mironov 2017)."""
    import dp_accounting

    acc = dp_accounting.rdp.RdpAccountant(list(orders))
    acc.compose(dp_accounting.LaplaceDpEvent(1.0 / epsilon))
    return tuple(float(v) for v in acc.rdp)


def candidate_rdp(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    laplace_epsilons: Sequence[float] = (),
    orders: Sequence[float] | None = None,
) -> np.ndarray:
    """The Rényi DP curve of one candidate: ``steps`` Poisson-subsampled Gaussian steps at
    ``sample_rate`` with ``noise_multiplier`` (the σ_eff of everything answered on a step's
    batch) composed with one-shot Laplace queries of the given ε (pure DP, L1 sensitivity in
    units of their noise), by dp-accounting's ``RdpAccountant`` at ``orders``.

    Examples
    --------
    >>> import dp_accounting
    >>> curve = candidate_rdp(noise_multiplier=2.0, sample_rate=0.1, steps=100, orders=[4, 8])
    >>> acc = dp_accounting.rdp.RdpAccountant([4, 8])
    >>> _ = acc.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.PoissonSampledDpEvent(
    ...     0.1, dp_accounting.GaussianDpEvent(2.0)), 100))
    >>> bool(np.allclose(curve, acc.rdp))
    True
    """
    o = tuple(float(x) for x in _orders(orders))
    sigma, q, steps = float(noise_multiplier), float(sample_rate), int(steps)
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ParameterError(f"noise multiplier must be positive; got {noise_multiplier}")
    if not 0 < q <= 1:
        raise ParameterError(f"sample rate must be in (0, 1]; got {sample_rate}")
    if steps < 1:
        raise ParameterError(f"steps must be at least 1; got {steps}")
    out = steps * np.asarray(_step_rdp(q, sigma, o))
    for eps in laplace_epsilons:
        if not (eps > 0 and math.isfinite(eps)):
            raise ParameterError(f"a Laplace query's epsilon must be positive; got {eps}")
        out = out + np.asarray(_laplace_rdp(float(eps), o))
    return out


def gaussian_rdp(noise_multiplier: float, orders: Sequence[float] | None = None) -> np.ndarray:
    """RDP ``λ / (2 σ²)`` of a Gaussian mechanism of L2 sensitivity 1 (Mironov 2017)."""
    o = _orders(orders)
    return o / (2.0 * float(noise_multiplier) ** 2)


def score_noise_multiplier(rdp, orders: Sequence[float] | None = None) -> float:
    """The smallest noise multiplier of a Gaussian score (L2 sensitivity 1) whose curve
    ``λ / (2 σ_s²)`` stays at or below ``rdp`` at every order: ``max_λ sqrt(λ / (2 ε(λ)))``."""
    o = _orders(orders)
    r = np.asarray(rdp, dtype=np.float64)
    if np.any(r <= 0):
        raise ParameterError("a candidate's RDP curve must be positive at every order")
    s = float(np.sqrt(o / (2.0 * r)).max())
    # guard against rounding: the score's curve must not exceed the training's anywhere
    return s * (1.0 + 1e-12)


def _monotone(rdp: np.ndarray) -> np.ndarray:
    """An RDP bound at order λ also holds below it: the running minimum from the right."""
    return np.minimum.accumulate(rdp[::-1])[::-1]


def selection_rdp(
    rdp, distribution: TrialDistribution, orders: Sequence[float] | None = None
) -> np.ndarray:
    """The Rényi DP curve of the best of ``K`` trials of a mechanism with curve ``rdp``
    (Theorem 2 or 6 of Papernot & Steinke, per the distribution; see the module docstring).

    Examples
    --------
    With pure ε-DP trials (RDP ≤ ε at every order) and a geometric ``K`` (η = 1), large
    orders approach Liu & Talwar's ``3ε``:

    >>> d = TrialDistribution.truncated_negative_binomial(10, eta=1.0)
    >>> o = [2.0, 1000.0, 1e6]
    >>> r = selection_rdp([1.0, 1.0, 1.0], d, orders=o)
    >>> round(float(r[-1]), 3)
    3.0
    """
    o = _orders(orders)
    r = np.asarray(rdp, dtype=np.float64)
    if r.shape != o.shape:
        raise ParameterError("the RDP curve and the orders must have the same length")
    if distribution.kind == POISSON:
        from dp_accounting.rdp.rdp_privacy_accountant import compute_delta

        mu = distribution.mean
        out = np.empty_like(r)
        for i, lam in enumerate(o):
            eps_hat = math.log1p(1.0 / (lam - 1.0))
            delta_hat, _ = compute_delta(o, r, eps_hat)
            out[i] = r[i] + mu * delta_hat + math.log(mu) / (lam - 1.0)
    else:
        eta, gamma = float(distribution.eta), float(distribution.gamma)
        hat = (1.0 - 1.0 / o) * r + math.log(1.0 / gamma) / o
        out = r + (1.0 + eta) * float(hat.min()) + math.log(distribution.mean) / (o - 1.0)
    return _monotone(out)


def rdp_epsilon(rdp, delta: float, orders: Sequence[float] | None = None) -> tuple[float, float]:
    """``(ε, optimal order)`` of an RDP curve at ``delta`` by dp-accounting's
    ``compute_epsilon`` (see :data:`CONVERSION`)."""
    from dp_accounting.rdp.rdp_privacy_accountant import compute_epsilon

    o = _orders(orders)
    eps, order = compute_epsilon(o, np.asarray(rdp, dtype=np.float64), float(delta))
    return float(eps), float(order)


# ---------------------------------------------------------------------- calibration


@dataclass(frozen=True)
class CandidateSetting:
    """The public constants that decide one candidate setting's privacy.

    ``laplace_shares`` are the shares of the candidate's own ε taken by its one-shot Laplace
    queries (a mitigation's class counts, a DP scaler). ``final_sample_rate`` and
    ``final_steps`` describe retraining the setting on all training rows, if the search's
    winner is retrained."""

    sample_rate: float
    steps: int
    laplace_shares: tuple[float, ...] = ()
    final_sample_rate: float | None = None
    final_steps: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "sample_rate", float(self.sample_rate))
        object.__setattr__(self, "steps", int(self.steps))
        object.__setattr__(
            self, "laplace_shares", tuple(sorted(float(s) for s in self.laplace_shares))
        )
        if not 0 < self.sample_rate <= 1 or self.steps < 1:
            raise ParameterError(
                f"a candidate needs 0 < q <= 1 and at least one step; got q={self.sample_rate}, "
                f"{self.steps} steps"
            )
        if sum(self.laplace_shares) >= 1 or any(s <= 0 for s in self.laplace_shares):
            raise ParameterError(
                f"one-shot queries' shares must be positive and sum below 1; got "
                f"{list(self.laplace_shares)}"
            )


@dataclass(frozen=True)
class CandidateNoise:
    """The noise a candidate setting gets from the search's calibration: the per-step
    mechanism's noise multiplier σ_eff, the ε of each one-shot Laplace query (in the order
    of the setting's ``laplace_shares``), the noise multiplier of its score, and (for the
    ledger) the ε the candidate would spend on its own at the search's δ."""

    noise_multiplier: float
    laplace_epsilons: tuple[float, ...]
    score_noise_multiplier: float
    epsilon: float
    final_epsilon: float | None = None


@dataclass(frozen=True)
class SelectionPlan:
    """The calibrated privacy plan of a private search (see :func:`plan_selection`)."""

    epsilon_target: float
    delta: float
    distribution: TrialDistribution
    orders: tuple[float, ...]
    mu: float
    settings: tuple[CandidateSetting, ...]
    noise: tuple[CandidateNoise, ...]
    rdp_candidate: tuple[float, ...]
    rdp_search: tuple[float, ...]
    rdp_final: tuple[float, ...] | None
    rdp_total: tuple[float, ...]
    epsilon_search: float
    epsilon_spent: float
    optimal_order: float
    retrain: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    def noise_for(self, setting: CandidateSetting) -> CandidateNoise:
        """The noise of a candidate setting of this search."""
        for s, n in zip(self.settings, self.noise):
            if s == setting:
                return n
        raise ParameterError(f"the search has no candidate setting {setting}")

    @property
    def theorem(self) -> str:
        return self.distribution.theorem

    def to_dict(self) -> dict:
        """The search's entry of a privacy ledger: theorem, parameters, curves, conversion."""
        eps = [n.epsilon for n in self.noise]
        return {
            "theorem": self.theorem,
            **self.distribution.to_dict(),
            "orders": list(self.orders),
            "candidate_rdp": list(self.rdp_candidate),
            "candidate_rdp_is": (
                "the envelope (largest value at each order) of every candidate setting's "
                "RDP curve by dp-accounting's RdpAccountant: Poisson-subsampled Gaussian "
                "steps composed with its one-shot Laplace queries; the scores' Gaussian "
                "noise is below it at every order"
            ),
            "search_rdp": list(self.rdp_search),
            "final_rdp": None if self.rdp_final is None else list(self.rdp_final),
            "total_rdp": list(self.rdp_total),
            "conversion": CONVERSION,
            "optimal_order": self.optimal_order,
            "epsilon_search": self.epsilon_search,
            "epsilon_total": self.epsilon_spent,
            "delta": self.delta,
            "retrain": self.retrain,
            "gdp_mu": self.mu,
            "settings": [
                {
                    "sample_rate": s.sample_rate,
                    "steps": s.steps,
                    "final_sample_rate": s.final_sample_rate,
                    "final_steps": s.final_steps,
                    "laplace_shares": list(s.laplace_shares),
                    "noise_multiplier": n.noise_multiplier,
                    "laplace_epsilons": list(n.laplace_epsilons),
                    "score_noise_multiplier": n.score_noise_multiplier,
                    "epsilon_alone": n.epsilon,
                }
                for s, n in zip(self.settings, self.noise)
            ],
            "candidate_epsilon_range": [min(eps), max(eps)],
            "notes": list(self.notes),
        }


def _sigma_for_mu(mu: float, q: float, steps: int) -> float:
    """σ whose GDP parameter ``q √(T (e^{1/σ²} - 1))`` is ``mu``."""
    x = mu * mu / (q * q * steps)
    return 1.0 / math.sqrt(math.log1p(x))


def _gdp_epsilon(mu: float, delta: float) -> float:
    """ε of μ-GDP at δ (Dong, Roth & Su 2019): used only to size one-shot queries."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    def d(eps: float) -> float:
        return float(norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2))

    if d(0.0) <= delta:
        return 0.0
    hi = 1.0
    while d(hi) > delta:
        hi *= 2
    return float(brentq(lambda e: d(e) - delta, 0.0, hi, xtol=1e-10))


@dataclass(frozen=True)
class _Evaluation:
    noise: tuple[CandidateNoise, ...]
    envelope: np.ndarray
    search: np.ndarray
    final: np.ndarray | None
    total: np.ndarray
    epsilon_search: float
    epsilon: float
    order: float


def _evaluate(
    mu: float,
    settings: tuple[CandidateSetting, ...],
    distribution: TrialDistribution,
    delta: float,
    orders: tuple[float, ...],
    retrain: bool,
) -> _Evaluation:
    o = np.asarray(orders)
    eps_ref = _gdp_epsilon(mu, delta)
    curves, finals, raw = [], [], []
    for s in settings:
        shares = s.laplace_shares
        # the one-shot queries take a share of the candidate's budget, the Gaussian steps the
        # rest of its GDP parameter
        mu_g = mu * math.sqrt(max(1.0 - sum(shares), 1e-12))
        sigma = _sigma_for_mu(mu_g, s.sample_rate, s.steps)
        lap = tuple(max(sh * eps_ref, 1e-9) for sh in shares)
        c = candidate_rdp(
            noise_multiplier=sigma,
            sample_rate=s.sample_rate,
            steps=s.steps,
            laplace_epsilons=lap,
            orders=orders,
        )
        curves.append(c)
        raw.append((sigma, lap))
        if retrain:
            finals.append(
                candidate_rdp(
                    noise_multiplier=sigma,
                    sample_rate=float(s.final_sample_rate),
                    steps=int(s.final_steps),
                    laplace_epsilons=lap,
                    orders=orders,
                )
            )
    envelope = np.max(np.vstack(curves), axis=0)
    search = selection_rdp(envelope, distribution, o)
    final = np.max(np.vstack(finals), axis=0) if retrain else None
    total = search + final if final is not None else search
    eps_search, _ = rdp_epsilon(search, delta, o)
    eps, order = rdp_epsilon(total, delta, o)
    noise = []
    for (sigma, lap), c, f in zip(raw, curves, finals or [None] * len(curves)):
        noise.append(
            CandidateNoise(
                noise_multiplier=sigma,
                laplace_epsilons=lap,
                score_noise_multiplier=score_noise_multiplier(c, o),
                epsilon=rdp_epsilon(c, delta, o)[0],
                final_epsilon=None if f is None else rdp_epsilon(f, delta, o)[0],
            )
        )
    return _Evaluation(tuple(noise), envelope, search, final, total, eps_search, eps, order)


def plan_selection(
    settings: Sequence[CandidateSetting],
    *,
    epsilon: float,
    delta: float,
    distribution: TrialDistribution,
    retrain: bool = False,
    orders: Sequence[float] | None = None,
    tolerance: float = CALIBRATION_TOLERANCE,
) -> SelectionPlan:
    """Calibrate the noise of every candidate setting so that the whole search (the best of
    ``K`` trials, ``K`` from ``distribution``) and, with ``retrain``, retraining the chosen
    setting on all training rows spend at most ``epsilon`` at ``delta``, and within
    ``tolerance`` of it (see the module docstring).

    Raises :class:`~imbalanced_dp.exceptions.PrivacyError` when no noise reaches the target
    (the selection's own overhead, ``log E[K]/(λ-1)`` and the distribution's terms, already
    exceeds it).

    Examples
    --------
    >>> s = CandidateSetting(sample_rate=0.1, steps=500)
    >>> plan = plan_selection([s], epsilon=2.0, delta=1e-4,
    ...                       distribution=TrialDistribution.truncated_negative_binomial(10))
    >>> 1.99 <= plan.epsilon_spent <= 2.0, plan.noise[0].epsilon < 2.0
    (True, True)
    """
    check_epsilon(epsilon)
    target, delta = float(epsilon), float(delta)
    if not 0 < delta < 1:
        raise ParameterError(f"delta must be in (0, 1); got {delta}")
    uniq = tuple(dict.fromkeys(settings))
    if not uniq:
        raise ParameterError("a private search needs at least one candidate setting")
    if retrain and any(s.final_steps is None or s.final_sample_rate is None for s in uniq):
        raise ParameterError("retraining needs every setting's final sample rate and steps")
    o = tuple(float(x) for x in _orders(orders))
    return _plan(uniq, target, delta, distribution, bool(retrain), o, float(tolerance))


@lru_cache(maxsize=256)
def _plan(
    settings: tuple[CandidateSetting, ...],
    target: float,
    delta: float,
    distribution: TrialDistribution,
    retrain: bool,
    orders: tuple[float, ...],
    tol: float,
) -> SelectionPlan:
    cache: dict[float, _Evaluation] = {}

    def ev(mu: float) -> _Evaluation:
        if mu not in cache:
            cache[mu] = _evaluate(mu, settings, distribution, delta, orders, retrain)
        return cache[mu]

    def too_small(why: str) -> PrivacyError:
        return PrivacyError(
            f"epsilon {target:g} at delta {delta:g} cannot pay for a private search with "
            f"{distribution.mean:g} expected trials ({why}); raise --epsilon, lower --trials, "
            "or train one run with fixed settings (imbalanced-dp run)"
        )

    # start from the GDP parameter of a single run at the target: the search costs more
    lo_mu = None
    hi_mu = 1.0
    while _gdp_epsilon(hi_mu, delta) < target and hi_mu < 1e3:
        hi_mu *= 2
    mu = hi_mu
    # shrink until the search fits (mu small = much noise)
    while ev(mu).epsilon > target:
        hi_mu = mu
        mu /= 2
        if mu < 1e-4:
            raise too_small(
                f"even noise this large leaves {ev(mu).epsilon:.3g}: the selection alone costs more"
            )
    lo_mu = mu
    if target - ev(lo_mu).epsilon <= tol:
        return _finish(ev(lo_mu), lo_mu, settings, target, delta, distribution, orders, retrain)
    if ev(hi_mu).epsilon <= target:  # pragma: no cover - the first bracket always overshoots
        lo_mu = hi_mu
    # secant steps on log eps against log mu, kept inside the bracket
    a, b = lo_mu, hi_mu
    for _ in range(60):
        ea, eb = ev(a).epsilon, ev(b).epsilon
        if target - ea <= tol or b / a - 1 < 1e-9:
            break
        la, lb = math.log(a), math.log(b)
        ya, yb = math.log(max(ea, 1e-300)), math.log(eb)
        aim = math.log(target - tol / 2)
        x = la + (aim - ya) * (lb - la) / (yb - ya) if yb != ya else 0.5 * (la + lb)
        w = lb - la
        x = min(max(x, la + 0.1 * w), lb - 0.1 * w)
        m = math.exp(x)
        if ev(m).epsilon <= target:
            a = m
        else:
            b = m
    return _finish(ev(a), a, settings, target, delta, distribution, orders, retrain)


def _finish(e, mu, settings, target, delta, distribution, orders, retrain) -> SelectionPlan:
    if not e.epsilon <= target:  # pragma: no cover - guarded by the search
        raise PrivacyError("the search's calibration failed to stay within the budget")
    notes = (
        MIXTURE_NOTE,
        "each setting's noise multiplier gives it the same Gaussian-DP parameter "
        f"mu = {mu:.6g} (q sqrt(T (exp(1/sigma^2) - 1)), Bu et al. 2020), mu chosen so that "
        "the total is within the target; every epsilon is the accountant's, the GDP formula "
        "only ties the settings together",
    )
    return SelectionPlan(
        epsilon_target=target,
        delta=delta,
        distribution=distribution,
        orders=orders,
        mu=mu,
        settings=settings,
        noise=e.noise,
        rdp_candidate=tuple(float(x) for x in e.envelope),
        rdp_search=tuple(float(x) for x in e.search),
        rdp_final=None if e.final is None else tuple(float(x) for x in e.final),
        rdp_total=tuple(float(x) for x in e.total),
        epsilon_search=e.epsilon_search,
        epsilon_spent=e.epsilon,
        optimal_order=e.order,
        retrain=retrain,
        notes=notes,
    )


__all__ = [
    "CONVERSION",
    "DEFAULT_ETA",
    "POISSON",
    "SELECTION_ORDERS",
    "THEOREM_2",
    "THEOREM_6",
    "TRUNCATED_NEGATIVE_BINOMIAL",
    "CandidateNoise",
    "CandidateSetting",
    "SelectionPlan",
    "TrialDistribution",
    "candidate_rdp",
    "gaussian_rdp",
    "plan_selection",
    "rdp_epsilon",
    "score_noise_multiplier",
    "selection_rdp",
]
