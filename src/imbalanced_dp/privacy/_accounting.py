"""Noise calibration and epsilon accounting, by maintained accountants.

Nothing here composes privacy losses by hand: every epsilon of a subsampled Gaussian
mechanism comes from a maintained accountant (PRIVACY.md rule 1): Google's dp-accounting
PLD accountant (``pld``, the default: privacy loss distributions with a pessimistic
discretisation, tight like PRV and about ten times faster at the study's step counts, and
without PyTorch), Opacus's PRV accountant (``prv``) or Opacus's RDP accountant (``rdp``).
What is ours is the search for the noise multiplier: a bracketed, safeguarded secant search
on the accountant's own epsilon, which never returns a sigma whose epsilon exceeds the
target (rule 2) and stops within ``tolerance`` of it; guards that refuse, before any memory
is spent, an evaluation an accountant cannot do in bounded memory; and a persistent cache
of calibrations (:mod:`._cache`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

from ..exceptions import ParameterError, PrivacyError
from ._cache import (
    Calibration,
    CalibrationCache,
    CalibrationKey,
    user_cache,
)

#: Accountants by name.
ACCOUNTANTS: dict[str, str] = {
    "pld": (
        "dp-accounting PLDAccountant (privacy loss distributions, pessimistic estimate; "
        "Meiser & Mohammadi 2018, Koskela et al. 2020)"
    ),
    "prv": "Opacus PRVAccountant (privacy random variables, Gopi et al. 2021)",
    "rdp": "Opacus RDPAccountant (Renyi DP, Mironov 2017)",
}
DEFAULT_ACCOUNTANT = "pld"
#: Value discretisation of the PLD accountant. Its pessimistic estimate is an upper bound of
#: epsilon, looser than the exact value by a few thousandths at 3e-4 (at 1e-3 it was 0.03
#: looser at epsilon 0.3 over 5 000 steps; at 1e-4 it costs three times as long at epsilon 8).
PLD_DISCRETIZATION = 3e-4
#: Smallest noise multiplier the PLD accountant is asked about: below, its distributions
#: grow to gigabytes (a target epsilon of hundreds, which protects nothing).
PLD_MIN_SIGMA = 0.2
#: Calibrated epsilon lies in [target - CALIBRATION_TOLERANCE, target].
CALIBRATION_TOLERANCE = 0.01
_MAX_SIGMA = 1e5
_MIN_SIGMA = 1e-3
#: Most discretisation points the PRV accountant may use (about 160 bytes each at its peak):
#: beyond this its numerical composition needs gigabytes (tiny sigma, very many steps).
PRV_MAX_POINTS = 4_000_000
#: The largest delta the default policy gives (the study's delta).
DELTA_CAP = 1e-4


class PrivacyWarning(UserWarning):
    """A privacy setting is allowed but weaker than recommended."""


class AccountingLimit(PrivacyError):
    """The accountant cannot evaluate this mechanism in bounded memory."""


class EpsilonTooLarge(PrivacyError):
    """A target ε so large that no noise the accountant can vouch for reaches it."""


def check_accountant(name: str) -> str:
    if name not in ACCOUNTANTS:
        raise ParameterError(f"accountant must be one of {', '.join(ACCOUNTANTS)}; got {name!r}")
    return name


# ---------------------------------------------------------------------- epsilon


def epsilon_spent(
    *,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    accountant: str,
) -> float:
    """ε of ``steps`` Poisson-subsampled Gaussian steps at ``delta``, by the named accountant.

    Queries answered on the same Poisson sample (a gradient sum and noisy counts) form one
    such mechanism with the effective noise multiplier ``(Σ σ_i⁻²)^(−1/2)``
    (:func:`effective_noise_multiplier`); that is what a run's plan passes here.

    Raises :class:`AccountingLimit` (a :class:`~imbalanced_dp.exceptions.PrivacyError`)
    when the PRV accountant would need more than :data:`PRV_MAX_POINTS` points.

    Examples
    --------
    >>> round(epsilon_spent(noise_multiplier=1.5, sample_rate=0.04, steps=2250,
    ...                     delta=1e-5, accountant="rdp"), 6)
    7.329111
    """
    return _epsilon(
        float(noise_multiplier), float(sample_rate), int(steps), float(delta), accountant
    )


def effective_noise_multiplier(sigmas) -> float:
    """σ_eff = (Σ σ_i⁻²)^(−1/2): several Gaussian queries of L2 sensitivity 1 (in units of
    their own noise scale) answered on one sample are one Gaussian mechanism with this noise
    multiplier (PRIVACY.md rule 10).

    >>> round(effective_noise_multiplier([2.0, 2.0]), 6)
    1.414214
    """
    inv = sum(1.0 / (float(s) * float(s)) for s in sigmas)
    if not inv > 0:
        raise ParameterError(f"need at least one finite noise multiplier; got {list(sigmas)}")
    return 1.0 / math.sqrt(inv)


def prv_points(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> int:
    """The number of points Opacus's PRV accountant would discretise this mechanism on (its
    memory grows with it); computed from its own domain rule without composing anything."""
    return _prv_points(float(noise_multiplier), float(sample_rate), int(steps), float(delta))


@lru_cache(maxsize=4096)
def _prv_points(sigma: float, q: float, steps: int, delta: float) -> int:
    import numpy as np
    from opacus.accountants import PRVAccountant
    from opacus.accountants.analysis.prv import PoissonSubsampledGaussianPRV

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            domain = PRVAccountant()._get_domain(
                prvs=[PoissonSubsampledGaussianPRV(q, sigma)],
                num_self_compositions=[steps],
                eps_error=0.01,
                delta_error=delta / 1000,
            )
        except (ValueError, OverflowError, FloatingPointError, ZeroDivisionError):
            return 2**62
    size = domain.size
    return int(size) if math.isfinite(size) else 2**62


def _pld_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    if sigma < PLD_MIN_SIGMA:
        raise AccountingLimit(
            f"the pld accountant is not asked about noise multipliers below {PLD_MIN_SIGMA} "
            f"(got {sigma:.3g}): its distributions would need gigabytes"
        )
    import dp_accounting
    from dp_accounting import pld

    acc = pld.PLDAccountant(
        neighboring_relation=dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE,
        value_discretization_interval=PLD_DISCRETIZATION,
    )
    event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
    acc.compose(dp_accounting.SelfComposedDpEvent(event, steps))
    return float(acc.get_epsilon(delta))


def _dp_rdp_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    """dp-accounting's RDP bound: the PLD search's upper bracket (no PyTorch needed)."""
    import logging

    import dp_accounting

    acc = dp_accounting.rdp.RdpAccountant()
    event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
    # At small fractional orders dp-accounting may fail to converge; it then drops that
    # order from the minimum (the bound stays valid, only less tight) and logs a warning
    # through absl for each. The bracket does not need them: keep them off the user's screen.
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        acc.compose(dp_accounting.SelfComposedDpEvent(event, steps))
        return float(acc.get_epsilon(delta))
    finally:
        absl.setLevel(level)


#: Internal name of dp-accounting's RDP accountant, used only to bracket PLD's search.
_DP_RDP = "dp-accounting rdp"


@lru_cache(maxsize=4096)
def _epsilon(sigma: float, q: float, steps: int, delta: float, accountant: str) -> float:
    import numpy as np

    if accountant == _DP_RDP:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eps = _dp_rdp_epsilon(sigma, q, steps, delta)
        if not math.isfinite(eps):
            raise PrivacyError(f"no RDP bound for noise multiplier {sigma:.4g}")
        return eps
    check_accountant(accountant)
    if accountant == "pld":
        with np.errstate(all="ignore"):
            eps = _pld_epsilon(sigma, q, steps, delta)
        if not math.isfinite(eps):
            raise PrivacyError(
                f"the pld accountant returned a non-finite epsilon for noise multiplier "
                f"{sigma:.4g}, q={q:.4g}, {steps} steps at delta={delta}"
            )
        return eps
    from opacus.accountants import create_accountant

    if accountant == "prv":
        points = _prv_points(sigma, q, steps, delta)
        if points > PRV_MAX_POINTS:
            raise AccountingLimit(
                f"the prv accountant cannot evaluate noise multiplier {sigma:.3g} at q={q:.4g} "
                f"over {steps} steps in bounded memory ({points:.3g} points, limit "
                f"{PRV_MAX_POINTS:.3g})"
            )
    acc = create_accountant(mechanism=accountant)
    acc.history = [(sigma, q, steps)]
    # At q = 1 (one batch per epoch) the PRV accountant takes log(1 - q) = log(0); its
    # epsilon is still finite and valid (checked against dp-accounting's PLD in the tests).
    with warnings.catch_warnings(), np.errstate(divide="ignore", over="ignore"):
        warnings.filterwarnings("ignore", message="Optimal order is the")
        eps = float(acc.get_epsilon(delta=delta))
    if not math.isfinite(eps):
        raise PrivacyError(
            f"the {accountant} accountant returned a non-finite epsilon for noise multiplier "
            f"{sigma:.4g}, q={q:.4g}, {steps} steps at delta={delta}"
        )
    return eps


# ---------------------------------------------------------------------- calibration


def calibrate(
    key: CalibrationKey,
    *,
    cache: CalibrationCache | None = None,
    tolerance: float = CALIBRATION_TOLERANCE,
) -> Calibration:
    """The noise multiplier of ``key`` and the ε it spends, from ``cache`` when it holds
    the key (then stored there if it did not); the default cache is this process's memory
    in front of the user's calibration cache file (:func:`._cache.user_cache`).

    The σ returned satisfies ``key.epsilon - tolerance <= ε(σ) <= key.epsilon`` by the
    accountant itself. A target the accountant cannot reach (too small for these steps) or
    cannot evaluate in bounded memory (too large) raises
    :class:`~imbalanced_dp.exceptions.PrivacyError` at once.
    """
    if cache is None:
        cache = user_cache()
    got = cache.get(key)
    if got is not None:
        return got
    check_accountant(key.accountant)
    check_epsilon(key.epsilon)
    if not 0 < key.delta < 1:
        raise ParameterError(f"delta must be in (0, 1); got {key.delta}")
    if not 0 < key.sample_rate <= 1:
        raise ParameterError(f"sample rate must be in (0, 1]; got {key.sample_rate}")
    if key.steps < 1:
        raise ParameterError(f"steps must be at least 1; got {key.steps}")
    sigma = _calibrate(
        key.epsilon, key.delta, key.sample_rate, key.steps, key.accountant, float(tolerance)
    )
    cal = Calibration(
        noise_multiplier=sigma,
        epsilon_spent=_epsilon(sigma, key.sample_rate, key.steps, key.delta, key.accountant),
    )
    cache.put(key, cal)
    return cal


def calibrate_noise_multiplier(
    *,
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    accountant: str = DEFAULT_ACCOUNTANT,
    tolerance: float = CALIBRATION_TOLERANCE,
) -> float:
    """The noise multiplier σ whose whole run spends at most ``target_epsilon`` at ``delta``
    (see :func:`calibrate`; a run's plan calls that with a named key).

    Examples
    --------
    >>> sigma = calibrate_noise_multiplier(target_epsilon=2.0, delta=1e-4, sample_rate=0.1,
    ...                                    steps=5000, accountant="rdp")
    >>> eps = epsilon_spent(noise_multiplier=sigma, sample_rate=0.1, steps=5000, delta=1e-4,
    ...                     accountant="rdp")
    >>> 1.99 <= eps <= 2.0
    True
    """
    key = CalibrationKey(accountant, target_epsilon, delta, sample_rate, steps)
    return calibrate(key, tolerance=tolerance).noise_multiplier


def _gdp_delta(eps: float, mu: float) -> float:
    from scipy.stats import norm

    return float(norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * norm.cdf(-eps / mu - mu / 2))


def _gdp_guess(target: float, delta: float, q: float, steps: int) -> float:
    """First guess of sigma: the mu-GDP central limit of ``steps`` Poisson-subsampled
    Gaussian steps, ``mu = q sqrt(T (exp(1 / sigma^2) - 1))``, solved for the mu whose
    (epsilon, delta) curve meets the target."""
    from scipy.optimize import brentq

    try:
        if _gdp_delta(target, 1e-6) > delta or _gdp_delta(target, 50.0) < delta:
            return math.nan
        mu = brentq(lambda m: _gdp_delta(target, m) - delta, 1e-6, 50.0, xtol=1e-10)
        return 1.0 / math.sqrt(math.log1p(mu * mu / (q * q * steps)))
    except (ValueError, OverflowError, ZeroDivisionError):
        return math.nan


def _too_large(target: float, delta: float, q: float, steps: int, accountant: str, why: str):
    return EpsilonTooLarge(
        f"epsilon {target:g} is too large to calibrate with the {accountant} accountant for "
        f"q={q:.4g} and {steps} steps at delta={delta:g} ({why}); such an epsilon protects "
        "nothing: choose a smaller epsilon, or train without privacy (--non-private)"
    )


@lru_cache(maxsize=1024)
def _calibrate(target: float, delta: float, q: float, steps: int, accountant: str, tol: float):
    if accountant in ("rdp", _DP_RDP):
        return _search(target, delta, q, steps, accountant, tol, start=None)
    # PLD and PRV: bracket with the RDP accountant first. It is cheap at any sigma and its
    # conversion is looser, so its sigma is an upper bracket; it also refuses absurd targets
    # at once (sigma below 0.001). RDP cannot certify very small targets at all (its orders
    # stop at 63): the search then starts from the GDP guess, at large sigma, where the
    # numerical accountants are cheap.
    # (PLD brackets with dp-accounting's RDP, PRV with Opacus's: PLD never needs PyTorch)
    try:
        hi0 = _calibrate(target, delta, q, steps, _DP_RDP if accountant == "pld" else "rdp", tol)
    except EpsilonTooLarge:
        raise _too_large(
            target, delta, q, steps, accountant, "even the RDP bound needs sigma below 0.001"
        ) from None
    except PrivacyError:
        hi0 = None
    if accountant == "pld":
        if hi0 is not None and hi0 < PLD_MIN_SIGMA:
            raise _too_large(
                target,
                delta,
                q,
                steps,
                accountant,
                f"the noise multiplier would fall below {PLD_MIN_SIGMA}, where its "
                "distributions need gigabytes",
            )
        return _search(target, delta, q, steps, accountant, tol, start=hi0)
    # PRV: PLD computes nearly the same epsilon ten times faster, so its calibration is the
    # starting point and PRV usually confirms it in one or two evaluations.
    if hi0 is not None and _prv_points(hi0, q, steps, delta) > PRV_MAX_POINTS:
        raise _too_large(
            target,
            delta,
            q,
            steps,
            accountant,
            "its numerical composition would need gigabytes; --accountant rdp can",
        )
    try:
        start = _calibrate(target, delta, q, steps, "pld", tol / 4)
    except PrivacyError:
        start = hi0
    return _search(target, delta, q, steps, accountant, tol, start=start, step0=1.005)


def _search(target, delta, q, steps, accountant, tol, *, start, step0: float = 1.04) -> float:
    def eps(s: float) -> float:
        return _epsilon(s, q, steps, delta, accountant)

    if start is not None:
        g = start
    else:
        # First guess from the central limit theorem for composed subsampled Gaussians
        # (mu-GDP, Bu et al. 2020): usually within a few per cent of the accountant's
        # answer; RDP's conversion is looser, so its sigma sits a little higher. The guess
        # only steers the search; every epsilon below is the accountant's.
        looser = 1.06 if accountant in ("rdp", _DP_RDP) else 1.0
        guess = _gdp_guess(target, delta, q, steps) * looser
        g = guess if math.isfinite(guess) and guess > 0 else 1.0
        g = min(max(g, _MIN_SIGMA), _MAX_SIGMA)
    step = step0
    e_g = eps(g)
    if e_g <= target:
        hi, e_hi = g, e_g
        if target - e_hi <= tol:
            return hi
        lo = g / step
        while True:
            if lo < _MIN_SIGMA:
                raise _too_large(
                    target,
                    delta,
                    q,
                    steps,
                    accountant,
                    f"noise multiplier {_MIN_SIGMA} still spends only {e_hi:.3g}",
                )
            try:
                e_lo = eps(lo)
            except AccountingLimit:
                # The accountant cannot look below ``lo``: ``hi`` is the smallest sigma it
                # can vouch for.
                raise _too_large(
                    target,
                    delta,
                    q,
                    steps,
                    accountant,
                    f"below noise multiplier {lo:.3g} its numerical composition would need "
                    f"gigabytes, and {hi:.3g} spends only {e_hi:.3g}",
                ) from None
            if e_lo > target:
                break
            hi, e_hi = lo, e_lo
            if target - e_hi <= tol:
                return hi
            step *= step
            lo = hi / step
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
                    f"epsilon {target:g} at delta {delta:g} cannot be reached with q={q:.4g} "
                    f"and {steps} steps: the budget is too small"
                )
            e_hi = eps(hi)
    if target - e_hi <= tol:
        return hi
    # Invariant: e_lo > target >= e_hi and lo < hi. Secant steps on log(eps) against
    # log(sigma) through the two latest evaluations, aimed at the middle of the accepted
    # window and kept at least a tenth of the bracket away from its ends, so the bracket
    # shrinks every step and the search cannot stall.
    aim = math.log(max(target - tol / 2, target / 2))  # (tiny targets: inside the window)
    floor = 1e-300  # a numerical accountant may report exactly 0 (δ met at ε = 0)
    p0, p1 = (math.log(lo), math.log(e_lo)), (math.log(hi), math.log(max(e_hi, floor)))
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
        try:
            e = eps(s)
        except AccountingLimit:
            e = math.inf  # cannot vouch for it: treat as above the target
        p0, p1 = p1, (x, math.log(max(e, floor)) if math.isfinite(e) else p1[1] + 1.0)
        if e <= target:
            hi, e_hi = s, e
        else:
            lo, e_lo = s, e
    if not e_hi <= target:  # pragma: no cover - guarded by the invariant
        raise PrivacyError("calibration failed to stay within the budget")
    return hi


# ---------------------------------------------------------------------- public constants


@dataclass(frozen=True)
class SamplingPlan:
    """The public constants of a DP-SGD run, fixed before any private data is touched.

    As in Opacus, ``sample_rate`` is ``1 / ceil(n / batch_size)`` and there are
    ``ceil(n / batch_size)`` steps per epoch; the expected batch size, the divisor of the noisy
    sum, is ``int(n * sample_rate)``. Only ``n``, the number of training rows, enters, as a
    public number (PRIVACY.md rule 12): the plan never looks at the rows.
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
    """Raise :class:`ParameterError` unless 1 ≤ batch ≤ n, epochs ≥ 1, lr > 0, C > 0 (the
    rules of :mod:`imbalanced_dp.settings`)."""
    from ..settings import SETTINGS, check_setting

    if SETTINGS["batch_size"].problem(batch_size) is not None or batch_size > n:
        raise ParameterError(
            f"batch size must be between 1 and the {n} training rows; got {batch_size}"
        )
    check_setting("epochs", epochs)
    if lr is not None:
        check_setting("lr", lr)
    if clip is not None:
        check_setting("clip", clip)


def check_epsilon(epsilon: float) -> None:
    from ..settings import check_setting

    check_setting("epsilon", epsilon)


def check_delta(delta: float, n: int) -> None:
    """Reject δ ≥ 1/n, warn above 1/(10 n) (PRIVACY.md rule 6)."""
    if not 0 < delta < 1:
        raise PrivacyError(f"delta must be in (0, 1); got {delta}")
    if delta >= 1.0 / n:
        suggestion = default_delta(n)
        raise PrivacyError(
            f"delta {delta:g} is not below 1/n = {1.0 / n:.3g} for n = {n} training rows: "
            f"such a delta allows leaking a whole record; choose delta < 1/n (e.g. "
            f"{suggestion:g}, the default for this size)"
        )
    if delta > 1.0 / (10 * n):
        warnings.warn(
            f"delta {delta:g} is above 1/(10 n) = {1.0 / (10 * n):.3g} for n = {n}: "
            f"a smaller delta is recommended (e.g. {default_delta(n):g})",
            PrivacyWarning,
            stacklevel=2,
        )


def default_delta(n: int) -> float:
    """The one δ policy of every command: the study's 1e-4, or the largest power of ten not
    above ``1 / (10 n)`` when that is smaller (``n``: the rows of the table, a public upper
    bound of the training rows).

    >>> default_delta(768), default_delta(3000), default_delta(100_000)
    (0.0001, 1e-05, 1e-06)
    """
    if n < 1:
        raise ParameterError(f"need at least one row to choose delta; got {n}")
    return min(DELTA_CAP, 10.0 ** math.floor(math.log10(1.0 / (10 * n))))
