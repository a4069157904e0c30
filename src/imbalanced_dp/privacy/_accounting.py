"""Noise calibration and epsilon accounting, by Opacus's maintained accountants.

Nothing here composes privacy losses: every epsilon comes from Opacus's RDP or PRV accountant
(PRIVACY.md rule 1). What is ours is the search for the noise multiplier: a bracketed,
safeguarded secant search on the accountant's own epsilon, which never returns a sigma whose
epsilon exceeds the target (rule 2) and stops within ``tolerance`` of it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

from ..exceptions import ParameterError, PrivacyError

#: Accountants by name: Opacus's mechanism names.
ACCOUNTANTS: dict[str, str] = {
    "prv": "Opacus PRVAccountant (privacy random variables, Gopi et al. 2021)",
    "rdp": "Opacus RDPAccountant (Renyi DP, Mironov 2017)",
}
DEFAULT_ACCOUNTANT = "prv"
#: Calibrated epsilon lies in [target - CALIBRATION_TOLERANCE, target].
CALIBRATION_TOLERANCE = 0.01
_MAX_SIGMA = 1e5


class PrivacyWarning(UserWarning):
    """A privacy setting is allowed but weaker than recommended."""


def accountant_version() -> str:
    """``"opacus X.Y.Z"``, read from the installed metadata (importing Opacus takes seconds)."""
    from importlib.metadata import version

    return f"opacus {version('opacus')}"


def check_accountant(name: str) -> str:
    if name not in ACCOUNTANTS:
        raise ParameterError(f"accountant must be one of {', '.join(ACCOUNTANTS)}; got {name!r}")
    return name


def epsilon_spent(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: str,
    extra: tuple = (),
) -> float:
    """ε of ``steps`` Poisson-subsampled Gaussian steps at ``delta``, by the named accountant.

    ``extra`` adds other Poisson-subsampled Gaussian mechanisms run on the same data, as
    ``(noise_multiplier, sample_rate, steps)`` triples (e.g. the noisy counts of DPSGD-F);
    the accountant composes them all.

    Examples
    --------
    >>> round(epsilon_spent(noise_multiplier=1.5, sample_rate=0.04, steps=2250,
    ...                     delta=1e-5, accountant="rdp"), 6)
    7.329111
    """
    history = ((float(noise_multiplier), float(sample_rate), int(steps)), *_norm(extra))
    return _epsilon_history(history, float(delta), accountant)


def _norm(extra) -> tuple:
    return tuple((float(s), float(q), int(t)) for s, q, t in extra)


@lru_cache(maxsize=4096)
def _epsilon_history(history: tuple, delta: float, accountant: str) -> float:
    import numpy as np
    from opacus.accountants import create_accountant

    acc = create_accountant(mechanism=check_accountant(accountant))
    acc.history = list(history)
    # At q = 1 (one batch per epoch) the PRV accountant takes log(1 - q) = log(0); its
    # epsilon is still finite and valid (checked against dp-accounting's PLD in the tests).
    with warnings.catch_warnings(), np.errstate(divide="ignore"):
        warnings.filterwarnings("ignore", message="Optimal order is the")
        eps = float(acc.get_epsilon(delta=delta))
    if not math.isfinite(eps):
        raise PrivacyError(
            f"the {accountant} accountant returned a non-finite epsilon for the mechanisms "
            f"{list(history)} at delta={delta}"
        )
    return eps


def calibrate_noise_multiplier(
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = DEFAULT_ACCOUNTANT,
    tolerance: float = CALIBRATION_TOLERANCE,
    extra: tuple = (),
) -> float:
    """The noise multiplier σ whose whole run spends at most ``target_epsilon`` at ``delta``.

    ``extra`` lists other mechanisms composed with the run (see :func:`epsilon_spent`):
    σ is then chosen so that the composition spends at most the target.

    The returned σ satisfies ``target_epsilon - tolerance <= ε(σ) <= target_epsilon`` by the
    accountant itself (checked before returning).

    Examples
    --------
    >>> sigma = calibrate_noise_multiplier(target_epsilon=2.0, delta=1e-4, sample_rate=0.1,
    ...                                    steps=5000, accountant="rdp")
    >>> eps = epsilon_spent(noise_multiplier=sigma, sample_rate=0.1, steps=5000, delta=1e-4,
    ...                     accountant="rdp")
    >>> 1.99 <= eps <= 2.0
    True
    """
    check_accountant(accountant)
    if not (target_epsilon > 0 and math.isfinite(target_epsilon)):
        raise ParameterError(f"epsilon must be a positive number; got {target_epsilon}")
    if not 0 < delta < 1:
        raise ParameterError(f"delta must be in (0, 1); got {delta}")
    if not 0 < sample_rate <= 1:
        raise ParameterError(f"sample rate must be in (0, 1]; got {sample_rate}")
    if steps < 1:
        raise ParameterError(f"steps must be at least 1; got {steps}")
    extra = _norm(extra)
    if extra:
        floor = _epsilon_history(extra, float(delta), accountant)
        if floor >= target_epsilon:
            raise PrivacyError(
                f"the other mechanisms alone spend epsilon {floor:.3f} >= the target "
                f"{target_epsilon}: nothing is left for the gradients"
            )
    return _calibrate(
        float(target_epsilon),
        float(delta),
        float(sample_rate),
        int(steps),
        accountant,
        float(tolerance),
        extra,
    )


def _gdp_delta(eps: float, mu: float) -> float:
    from scipy.stats import norm

    return float(norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2))


def _gdp_guess(target: float, delta: float, q: float, steps: int, extra: tuple) -> float:
    """First guess of sigma: the mu-GDP central limit of ``steps`` Poisson-subsampled
    Gaussian steps, ``mu = q sqrt(T (exp(1 / sigma^2) - 1))``, solved for the mu whose
    (epsilon, delta) curve meets the target, less what the ``extra`` mechanisms take."""
    from scipy.optimize import brentq

    try:
        if _gdp_delta(target, 1e-6) > delta or _gdp_delta(target, 50.0) < delta:
            return math.nan
        mu = brentq(lambda m: _gdp_delta(target, m) - delta, 1e-6, 50.0, xtol=1e-10)
        mu2 = mu * mu
        for s, qq, t in extra:
            mu2 -= qq * qq * t * math.expm1(1.0 / (s * s))
        if mu2 <= 0:
            return math.nan
        return 1.0 / math.sqrt(math.log1p(mu2 / (q * q * steps)))
    except (ValueError, OverflowError, ZeroDivisionError):
        return math.nan


@lru_cache(maxsize=1024)
def _calibrate(
    target: float,
    delta: float,
    q: float,
    steps: int,
    accountant: str,
    tol: float,
    extra: tuple = (),
) -> float:
    def eps(s: float) -> float:
        return _epsilon_history(((s, q, steps), *extra), delta, accountant)

    # Bracket the answer around a first guess from the central limit theorem for composed
    # subsampled Gaussians (mu-GDP, Bu et al. 2020): usually within a few per cent of the
    # accountant's answer, so two or three evaluations bracket it. The guess only steers the
    # search; every epsilon below is the accountant's.
    guess = _gdp_guess(target, delta, q, steps, extra)
    if accountant == "rdp":
        guess *= 1.06  # RDP's conversion is looser: its sigma sits a little higher
    step = 1.04
    g = guess if math.isfinite(guess) and guess > 0 else 1.0
    e_g = eps(g)
    if e_g <= target:
        hi, e_hi = g, e_g
        if target - e_hi <= tol:
            return hi
        lo = g / step
        e_lo = eps(lo)
        while e_lo <= target:
            hi, e_hi = lo, e_lo
            if target - e_hi <= tol:
                return hi
            step *= step
            lo = hi / step
            if lo < 1e-3:
                raise PrivacyError(
                    f"epsilon {target} is too large to calibrate (sigma below 0.001 still "
                    "spends less); train without privacy instead"
                )
            e_lo = eps(lo)
    else:
        lo, e_lo = g, e_g
        hi = g * step
        e_hi = eps(hi)
        while e_hi > target:
            lo, e_lo = hi, e_hi
            step *= step
            hi = lo * step
            if hi > _MAX_SIGMA:
                raise PrivacyError(
                    f"epsilon {target} at delta {delta} cannot be reached with q={q} and "
                    f"{steps} steps: the budget is too small"
                )
            e_hi = eps(hi)
    # Invariant: e_lo > target >= e_hi and lo < hi. Secant steps on log(eps) against
    # log(sigma) through the two latest evaluations, aimed at the middle of the accepted
    # window and kept at least a tenth of the bracket away from its ends, so the bracket
    # shrinks every step and the search cannot stall.
    aim = math.log(target - tol / 2)
    p0, p1 = (math.log(lo), math.log(e_lo)), (math.log(hi), math.log(e_hi))
    for _ in range(200):
        if target - e_hi <= tol or hi - lo <= 1e-12 * hi:
            break
        (x0, y0), (x1, y1) = p0, p1
        x = x1 + (aim - y1) * (x1 - x0) / (y1 - y0) if y1 != y0 else math.nan
        a, b = math.log(lo), math.log(hi)
        w = b - a
        if not math.isfinite(x):
            x = 0.5 * (a + b)
        x = min(max(x, a + 0.1 * w), b - 0.1 * w)
        s = math.exp(x)
        e = eps(s)
        p0, p1 = p1, (x, math.log(e))
        if e <= target:
            hi, e_hi = s, e
        else:
            lo, e_lo = s, e
    if not e_hi <= target:  # pragma: no cover - guarded by the invariant
        raise PrivacyError("calibration failed to stay within the budget")
    return hi


@dataclass(frozen=True)
class SamplingPlan:
    """The public constants of a DP-SGD run, fixed before any private data is touched.

    As in Opacus, ``sample_rate`` is ``1 / ceil(n / batch_size)`` and there are
    ``ceil(n / batch_size)`` steps per epoch; the expected batch size, the divisor of the noisy
    sum, is ``int(n * sample_rate)``. Only ``n``, the number of training rows, enters: it is
    treated as public, as Opacus does.
    """

    n: int
    batch_size: int
    epochs: int
    sample_rate: float
    steps: int
    steps_per_epoch: int
    expected_batch_size: int


def sampling_plan(*, n: int, batch_size: int, epochs: int) -> SamplingPlan:
    """Sample rate, steps and expected batch size of a run (see :class:`SamplingPlan`)."""
    check_training_params(n=n, batch_size=batch_size, epochs=epochs)
    per_epoch = math.ceil(n / batch_size)
    q = 1.0 / per_epoch
    return SamplingPlan(
        n=n,
        batch_size=batch_size,
        epochs=epochs,
        sample_rate=q,
        steps=per_epoch * epochs,
        steps_per_epoch=per_epoch,
        expected_batch_size=max(1, int(n * q)),
    )


def check_training_params(
    *,
    n: int,
    batch_size: int,
    epochs: int,
    lr: float | None = None,
    clip: float | None = None,
) -> None:
    """Raise :class:`ParameterError` unless 1 ≤ batch ≤ n, epochs ≥ 1, lr > 0, C > 0."""
    if not 1 <= batch_size <= n:
        raise ParameterError(
            f"batch size must be between 1 and the {n} training rows; got {batch_size}"
        )
    if epochs < 1:
        raise ParameterError(f"epochs must be at least 1; got {epochs}")
    if lr is not None and not (lr > 0 and math.isfinite(lr)):
        raise ParameterError(f"learning rate must be a positive number; got {lr}")
    if clip is not None and not clip > 0:
        raise ParameterError(f"clip bound C must be positive; got {clip}")


def check_epsilon(epsilon: float) -> None:
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ParameterError(f"epsilon must be a positive number; got {epsilon}")


def check_delta(delta: float, n: int) -> None:
    """Reject δ ≥ 1/n, warn above 1/(10 n) (PRIVACY.md rule 6)."""
    if not 0 < delta < 1:
        raise PrivacyError(f"delta must be in (0, 1); got {delta}")
    if delta >= 1.0 / n:
        raise PrivacyError(
            f"delta {delta:g} is not below 1/n = {1.0 / n:.3g} for n = {n} training rows: "
            "such a delta allows leaking a whole record; choose delta < 1/n (e.g. 1e-4 or less)"
        )
    if delta > 1.0 / (10 * n):
        warnings.warn(
            f"delta {delta:g} is above 1/(10 n) = {1.0 / (10 * n):.3g} for n = {n}: "
            "a smaller delta is recommended",
            PrivacyWarning,
            stacklevel=2,
        )


def default_delta(n: int) -> float:
    """The largest power of ten not above ``1 / (10 n)``: 1e-4 for n up to 1 000."""
    return 10.0 ** math.floor(math.log10(1.0 / (10 * n)))
