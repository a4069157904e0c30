"""Confidence intervals and paired comparisons over seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass

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
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Interval(mean, math.nan, 1, math.nan)
    std = float(x.std(ddof=1))
    t = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1))
    return Interval(mean, t * std / math.sqrt(n), n, std)


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
    from scipy import stats

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
        p = float(stats.ttest_rel(a[keep], b[keep]).pvalue)
    return PairedTest(iv, p)
