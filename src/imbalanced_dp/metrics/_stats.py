"""Confidence intervals, paired and unpaired comparisons over seeds, exact binomial
intervals."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A mean with its 95 % (by default) Student-t confidence interval."""

    mean: float
    half_width: float
    n: int
    std: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def excludes(self, value: float = 0.0) -> bool:
        return math.isfinite(self.half_width) and not (self.low <= value <= self.high)


def mean_ci(values, *, confidence: float = 0.95) -> Interval:
    """Mean and Student-t confidence interval half-width of ``values`` (NaN ignored).

    A single value has a NaN half-width (nothing is known of the spread); no value at all
    gives a NaN mean.

    Examples
    --------
    >>> iv = mean_ci([0.6, 0.7, 0.8])
    >>> round(iv.mean, 3), round(iv.half_width, 3)
    (0.7, 0.248)
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, 1, math.nan)
    std = float(x.std(ddof=1))
    return Interval(mean, _t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n), n, std)


@lru_cache(maxsize=1024)
def _t_quantile(p: float, df: int) -> float:
    """Student-t quantile (``scipy.special.stdtrit``: the same function as
    ``scipy.stats.t.ppf``, without its argument checking)."""
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def _t_two_sided_p(t: float, df: float) -> float:
    """Two-sided p-value of a Student-t statistic (``scipy.special.stdtr``)."""
    from scipy.special import stdtr

    return float(2.0 * stdtr(df, -abs(t)))


@dataclass(frozen=True)
class PairedTest:
    """Mean of paired differences ``a - b`` with its CI and a two-sided paired t-test."""

    interval: Interval
    p_value: float


def paired_difference(a, b, *, confidence: float = 0.95) -> PairedTest:
    """Paired comparison of two metrics measured on the same seeds.

    Differences are ``a - b``; pairs with a NaN on either side are dropped. The p-value is
    the two-sided paired t-test's (``scipy.stats.ttest_rel``), NaN with fewer than two pairs
    and 1.0 when every difference is exactly zero.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    iv = mean_ci(d, confidence=confidence)
    if d.size < 2:
        p = math.nan
    elif np.ptp(d) <= 1e-12 * max(1.0, float(np.max(np.abs(d)))):
        # constant differences (up to rounding): the t statistic is undefined
        p = 1.0 if abs(float(d.mean())) <= 1e-12 else 0.0
    else:
        # the paired t-test (scipy.stats.ttest_rel): t = mean / (std / sqrt(n)), n - 1 df
        p = _t_two_sided_p(iv.mean / (iv.std / math.sqrt(iv.n)), iv.n - 1)
    return PairedTest(iv, p)


def interval_dict(pt: PairedTest) -> dict:
    """A paired test as a record: ``mean, half_width, low, high, n, p_value``."""
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
    from scipy.special import stdtrit

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
    hw = float(stdtrit(df, 0.5 + confidence / 2)) * se
    p = _t_two_sided_p(mean / se, df)
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
    if not (n >= 2 and math.isfinite(mean) and math.isfinite(std)):
        return math.nan
    if std == 0:
        return 1.0 if mean == 0 else 0.0
    return _t_two_sided_p(mean / (std / math.sqrt(n)), n - 1)


def clopper_pearson(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval of a rate ``k / n`` (quantiles of the beta
    distribution, ``scipy.special.betaincinv``)."""
    from scipy.special import betaincinv

    if n == 0:
        return math.nan, math.nan
    a = 1 - confidence
    lo = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, a / 2))
    hi = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - a / 2))
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
