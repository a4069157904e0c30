"""The ε lower bound of an audit in one training run (Steinke, Nasr & Jagielski 2023).

``m`` canaries are each included in the training set independently with probability ½. An
auditor looks at the trained model, guesses "in" for some canaries and "out" for others and
abstains on the rest: ``r`` guesses, of which ``v`` are correct. If training is
(ε, δ)-differentially private with respect to each canary, the number of correct guesses is
stochastically dominated by a Binomial(r, e^ε / (1 + e^ε)) up to a δ term (their Theorem 3.1
with δ > 0)::

    P[W ≥ v] ≤ P[W' ≥ v] + 2 m δ · max_{1 ≤ i ≤ v} P[v > W' ≥ v − i] / i,
    W' ~ Binomial(r, e^ε / (1 + e^ε)).

The right-hand side is the p-value of the hypothesis "training is (ε, δ)-DP" given ``v``;
ε_LB is the smallest ε this p-value does not reject at the chosen confidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..exceptions import ParameterError

#: ε above which the search gives up (a p-value still below the level there means the
#: guesses are essentially all correct; ε_LB is then reported as this cap).
EPSILON_SEARCH_CAP = 50.0
_GRID_STEP = 0.05


def audit_p_value(*, m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """P-value of ``v`` correct guesses out of ``r`` (``m`` canaries) under (ε, δ)-DP.

    Parameters
    ----------
    m : int
        Number of canaries, each included independently with probability ½.
    r : int
        Number of guesses (abstentions excluded), ``0 <= r <= m``.
    v : int
        Number of correct guesses, ``0 <= v <= r``.
    epsilon, delta : float
        The DP guarantee under test.

    Examples
    --------
    With ε = 0 every guess is a fair coin: 10 correct out of 10 has p = 2^-10.

    >>> round(audit_p_value(m=10, r=10, v=10, epsilon=0.0, delta=0.0) * 1024, 6)
    1.0
    """
    from scipy.special import expit
    from scipy.stats import binom

    if not (0 <= v <= r <= m):
        raise ParameterError(f"need 0 <= v <= r <= m; got v={v}, r={r}, m={m}")
    if not epsilon >= 0 or not 0 <= delta <= 1:
        raise ParameterError(f"need epsilon >= 0 and 0 <= delta <= 1; got {epsilon}, {delta}")
    q = float(expit(epsilon))
    beta = float(binom.sf(v - 1, r, q))  # P[W' >= v]
    if delta == 0 or v == 0:
        return min(beta, 1.0)
    i = np.arange(1, v + 1)
    between = binom.sf(v - i - 1, r, q) - beta  # P[v > W' >= v - i]
    alpha = float(np.max(between / i))
    return min(beta + 2.0 * m * delta * alpha, 1.0)


def epsilon_lower_bound(*, m: int, r: int, v: int, delta: float, confidence: float = 0.95) -> float:
    """ε_LB: the smallest ε whose (ε, δ)-DP hypothesis ``v`` correct guesses do not reject.

    Formally ``inf {ε ≥ 0 : p(ε) ≥ 1 − confidence}`` with ``p`` from :func:`audit_p_value`:
    if training is (ε*, δ)-DP then ``ε_LB > ε*`` only when ``p(ε*)`` rejected, which happens
    with probability at most ``1 − confidence``; taking the first crossing makes this hold
    without assuming that ``p`` is monotone in ε. Returns 0 when nothing is rejected.

    Examples
    --------
    >>> round(epsilon_lower_bound(m=1000, r=1000, v=1000, delta=0.0), 2)
    5.81
    >>> epsilon_lower_bound(m=100, r=20, v=11, delta=1e-5)
    0.0
    """
    if not 0 < confidence < 1:
        raise ParameterError(f"confidence must be in (0, 1); got {confidence}")
    level = 1.0 - confidence

    def rejected(e: float) -> bool:
        return audit_p_value(m=m, r=r, v=v, epsilon=e, delta=delta) < level

    if r == 0 or not rejected(0.0):
        return 0.0
    lo = 0.0
    hi = _GRID_STEP
    while rejected(hi):
        lo = hi
        hi = round(hi + _GRID_STEP, 10)
        if hi > EPSILON_SEARCH_CAP:
            return EPSILON_SEARCH_CAP
    for _ in range(40):  # bisection between the last rejected and the first accepted ε
        mid = 0.5 * (lo + hi)
        if rejected(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-6:
            break
    return lo


@dataclass(frozen=True)
class AuditBound:
    """The result of auditing one set of canary scores.

    ``epsilon_lower_bound`` is the largest of the bounds of the guessing rules tried, each at
    confidence ``1 − (1 − confidence) / rules`` (Bonferroni), so the maximum holds at
    ``confidence``. ``k_pos`` and ``k_neg`` are the best rule's numbers of "in" and "out"
    guesses, ``correct`` its correct guesses; ``ceiling`` is the bound the same rules would
    give if every guess were right, the most these canaries can ever show.
    """

    epsilon_lower_bound: float
    canaries: int
    included: int
    k_pos: int
    k_neg: int
    correct: int
    confidence: float
    delta: float
    rules: int
    ceiling: float = float("nan")

    def to_dict(self) -> dict:
        return {
            "epsilon_lower_bound": self.epsilon_lower_bound,
            "canaries": self.canaries,
            "included": self.included,
            "guesses": self.k_pos + self.k_neg,
            "guesses_in": self.k_pos,
            "guesses_out": self.k_neg,
            "correct": self.correct,
            "confidence": self.confidence,
            "delta": self.delta,
            "guess_rules": self.rules,
            "epsilon_lower_bound_max": self.ceiling,
        }


#: Shares of the canaries guessed (half "in" from the top scores, half "out" from the
#: bottom): fixed before looking at any score, so the Bonferroni correction is honest.
DEFAULT_GUESS_SHARES = (0.1, 0.2, 0.4, 0.7, 1.0)


def audit_scores(
    scores: np.ndarray,
    included: np.ndarray,
    *,
    delta: float,
    confidence: float = 0.95,
    guess_shares: tuple[float, ...] = DEFAULT_GUESS_SHARES,
) -> AuditBound:
    """ε_LB from canary ``scores`` (higher means "more likely included") and the truth.

    For each share ``s`` in ``guess_shares`` the auditor guesses "in" for the
    ``round(s m / 2)`` highest scores and "out" for as many lowest, abstaining on the rest;
    each rule is tested at level ``(1 − confidence) / len(guess_shares)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> inc = rng.random(2000) < 0.5
    >>> bound = audit_scores(rng.normal(size=2000) + 6.0 * inc, inc, delta=0.0)
    >>> 4.0 < bound.epsilon_lower_bound < 8.0
    True
    """
    s = np.asarray(scores, dtype=np.float64)
    inc = np.asarray(included, dtype=bool)
    if s.ndim != 1 or s.shape != inc.shape:
        raise ParameterError(
            f"scores and included must be 1-D of one length; got {s.shape} and {inc.shape}"
        )
    if not np.all(np.isfinite(s)):
        raise ParameterError("canary scores must be finite")
    if not guess_shares or not all(0 < g <= 1 for g in guess_shares):
        raise ParameterError(f"guess shares must be in (0, 1]; got {guess_shares}")
    m = int(s.size)
    # A stable order with ties broken by index: the guesses are a fixed function of the scores.
    order = np.argsort(-s, kind="stable")
    truth = inc[order]
    rules = len(guess_shares)
    conf_each = 1.0 - (1.0 - confidence) / rules
    best = None
    ceiling = 0.0
    for share in guess_shares:
        k = max(1, round(share * m / 2)) if m >= 2 else 0
        k = min(k, m // 2)
        v = int(truth[:k].sum() + (~truth[m - k :]).sum()) if k > 0 else 0
        eps = epsilon_lower_bound(m=m, r=2 * k, v=v, delta=delta, confidence=conf_each)
        top = epsilon_lower_bound(m=m, r=2 * k, v=2 * k, delta=delta, confidence=conf_each)
        ceiling = max(ceiling, top)
        if best is None or eps > best[0]:
            best = (eps, k, v)
    eps, k, v = best if best is not None else (0.0, 0, 0)
    return AuditBound(
        epsilon_lower_bound=float(eps),
        canaries=m,
        included=int(inc.sum()),
        k_pos=k,
        k_neg=k,
        correct=v,
        confidence=confidence,
        delta=float(delta),
        rules=rules,
        ceiling=float(ceiling),
    )


def gaussian_epsilon(mu: float, delta: float) -> float:
    """ε of the Gaussian mechanism with sensitivity/σ ratio ``mu`` at ``delta``: the exact
    privacy profile δ(ε) = Φ(μ/2 − ε/μ) − e^ε Φ(−μ/2 − ε/μ) (Balle & Wang 2018), inverted.

    Used to check the auditor on synthetic scores (members N(μ, 1), non-members N(0, 1)).
    """
    from scipy.optimize import brentq
    from scipy.stats import norm

    if not mu > 0 or not 0 < delta < 1:
        raise ParameterError(f"need mu > 0 and 0 < delta < 1; got {mu}, {delta}")

    def profile(e: float) -> float:
        return float(norm.cdf(mu / 2 - e / mu) - math.exp(e) * norm.cdf(-mu / 2 - e / mu))

    if profile(0.0) <= delta:
        return 0.0
    hi = 1.0
    while profile(hi) > delta:
        hi *= 2.0
    return float(brentq(lambda e: profile(e) - delta, 0.0, hi, xtol=1e-10))
