"""A scikit-learn transformer that standardises features with statistics released under
differential privacy: :class:`DPStandardScaler`."""

from __future__ import annotations

import math
import secrets
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ..data import PublicBounds, parse_bounds
from ..exceptions import DataError, ParameterError
from ..privacy import (
    VARIANCE_FLOOR,
    PrivacyLedger,
    PrivacyWarning,
    dp_standard_scaler,
    scaler_sensitivity,
)

_MAX_SEED = 2**32 - 1

#: Ledger note of the scaler: what its ε protects and what it uses in the clear.
SCALER_ADJACENCY = (
    "add or remove one row of the data given to fit; the number of rows n (the divisor of "
    "the released sums) is treated as public and listed as released"
)


def _is_int(x: object) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


class DPStandardScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardise features with a mean and standard deviation released under ε-DP.

    Every column is clipped to its public bounds ``[l, u]``; the column sums and sums of
    squares of the clipped rows (mapped to ``[-1, 1]``) are released with Laplace noise of
    scale ``2 d / epsilon`` (``d`` columns: one row changes the ``2 d`` sums by at most 1
    each, so the release is ε-DP, Dwork et al. 2006). The mean and standard deviation follow
    from the noisy sums and the public number of rows, with the variance floored at 1 % of
    the half-range squared; ``transform`` clips new rows to the same bounds and then maps
    them to ``(x - mean_) / scale_``.

    Put it in a :class:`~sklearn.pipeline.Pipeline` in front of
    :class:`~imbalanced_dp.estimator.DPMLPClassifier`; the whole pipeline's ε is the sum of
    the steps' (:func:`~imbalanced_dp.estimator.pipeline_privacy`).

    Parameters
    ----------
    epsilon : float, default=0.1
        ε of the release (pure ε-DP, δ = 0). It is spent on the rows given to ``fit``, in
        addition to what later steps spend on them.
    bounds : PublicBounds, mapping, sequence of pairs, pair of numbers or None, default=None
        Public bounds of the columns, never computed from the data: a
        :class:`~imbalanced_dp.data.PublicBounds` (the bundled datasets' from
        :func:`~imbalanced_dp.data.bundled_bounds`, or a user's from
        :func:`~imbalanced_dp.data.parse_bounds`), a mapping
        ``{column: [lower, upper]}`` over every column (names from a DataFrame's columns,
        else ``x0``, ``x1``, ...), a sequence of ``(lower, upper)`` per column, or one
        ``(lower, upper)`` pair for every column. Required: without bounds the sums have no
        sensitivity and no ε can be claimed.
    random_state : int, RandomState instance or None, default=None
        ``None``: the noise comes from a secret key drawn from the operating system's
        entropy, never stored. Anything else is research mode: the seed draws the noise, the
        same seed gives the same statistics, a :class:`~imbalanced_dp.privacy.PrivacyWarning`
        says so and the ledger states that the guarantee assumes the seed stays secret.

    Attributes
    ----------
    mean_ : ndarray of shape (n_features_in_,)
        The released per-column mean (in the column's units).
    scale_ : ndarray of shape (n_features_in_,)
        The released per-column standard deviation.
    lower_, upper_ : ndarray of shape (n_features_in_,)
        The public bounds, in column order.
    epsilon_ : float
        ε spent by ``fit``.
    delta_ : float
        0.0: the Laplace mechanism is pure ε-DP.
    privacy_ledger_ : PrivacyLedger
        The mechanism, its sensitivity and noise scale, the noisy sums it released, and what
        the guarantee does and does not cover.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when ``X`` has string column names.

    See Also
    --------
    sklearn.preprocessing.StandardScaler : the non-private scaler (fitted in the clear).
    pipeline_privacy : the total ε of a pipeline of private steps.

    Examples
    --------
    >>> import numpy as np
    >>> from imbalanced_dp.estimator import DPStandardScaler
    >>> X = np.random.default_rng(0).uniform(0, 10, size=(1000, 2))
    >>> scaler = DPStandardScaler(epsilon=1.0, bounds=(0, 10)).fit(X)
    >>> scaler.epsilon_, scaler.delta_
    (1.0, 0.0)
    >>> bool(np.all(np.abs(scaler.mean_ - 5) < 0.5))
    True
    """

    def __init__(
        self,
        *,
        epsilon: float = 0.1,
        bounds: Mapping | Sequence | None = None,
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.epsilon = epsilon
        self.bounds = bounds
        self.random_state = random_state

    # ------------------------------------------------------------------ validation

    def _invalid(self, name: str, expected: str) -> ParameterError:
        return ParameterError(
            f"The {name!r} parameter of {type(self).__name__} must be {expected}. "
            f"Got {getattr(self, name)!r} instead."
        )

    def _epsilon(self) -> float:
        e = self.epsilon
        if isinstance(e, bool) or not isinstance(e, int | float | np.number):
            raise self._invalid("epsilon", "a positive finite float")
        if not (math.isfinite(float(e)) and float(e) > 0):
            raise self._invalid("epsilon", "a positive finite float")
        return float(e)

    def _bounds(self, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        b = self.bounds
        d = len(names)
        if b is None:
            raise ParameterError(
                f"{type(self).__name__} needs public bounds of every column (bounds=...): "
                "without them one row can move the mean without limit and no epsilon holds; "
                "take them from what the columns measure, never from the data"
            )
        if isinstance(b, PublicBounds):
            if b.mean is not None:
                raise DataError(
                    f"{type(self).__name__} takes bounds [lower, upper] per column, not statistics"
                )
            if set(b.columns) == set(names):
                pos = {c: i for i, c in enumerate(b.columns)}
                idx = [pos[c] for c in names]
            elif len(b.columns) == d and not hasattr(self, "feature_names_in_"):
                idx = list(range(d))  # plain arrays: the bounds' own column order
            else:
                raise DataError(
                    f"the public bounds are for columns {', '.join(b.columns[:4])}"
                    f"{' ...' if len(b.columns) > 4 else ''}; X has {d} columns "
                    f"({', '.join(names[:4])}{' ...' if d > 4 else ''})"
                )
            return b.lower[idx].copy(), b.upper[idx].copy()
        if isinstance(b, Mapping):
            spec = dict(b)
        else:
            try:
                pairs = list(b)
            except TypeError:
                raise self._invalid("bounds", "a mapping, a sequence of pairs or a pair") from None
            if len(pairs) == 2 and all(
                isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in pairs
            ):
                pairs = [pairs] * d
            elif len(pairs) != d:
                raise DataError(
                    f"bounds give {len(pairs)} pairs for {d} columns; give one (lower, upper) "
                    "per column, or one pair for all"
                )
            spec = {}
            for name, pair in zip(names, pairs, strict=True):
                try:
                    spec[name] = [float(v) if _is_num(v) else v for v in pair]
                except TypeError:
                    raise DataError(
                        f"public bounds of column {name!r} must be [lower, upper]; got {pair!r}"
                    ) from None
        parsed = parse_bounds(spec, names)
        if parsed.mean is not None:
            raise DataError(
                f"{type(self).__name__} takes bounds [lower, upper] per column, not statistics"
            )
        return parsed.lower, parsed.upper

    def _seed(self) -> int | None:
        rs = self.random_state
        if rs is None:
            return None
        if _is_int(rs):
            if not 0 <= rs <= _MAX_SEED:
                raise self._invalid(
                    "random_state", f"an int in [0, {_MAX_SEED}], a RandomState or None"
                )
            return int(rs)
        try:
            return int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        except ValueError:
            raise self._invalid("random_state", "an int, a RandomState or None") from None

    # ------------------------------------------------------------------ fit / transform

    def fit(self, X, y=None) -> DPStandardScaler:
        """Release the mean and standard deviation of each column of ``X`` under ε-DP.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The private rows.
        y : None
            Ignored.

        Returns
        -------
        self : DPStandardScaler
        """
        eps = self._epsilon()
        X = validate_data(self, X, dtype=np.float64)
        names = (
            [str(c) for c in self.feature_names_in_]
            if hasattr(self, "feature_names_in_")
            else [f"x{i}" for i in range(X.shape[1])]
        )
        lower, upper = self._bounds(names)
        seed = self._seed()
        if seed is not None:
            warnings.warn(
                f"{type(self).__name__}(random_state={self.random_state!r}) releases in "
                "research mode: the noise derives from the seed, so anyone who knows it can "
                "remove the noise; the ledger says so. Leave random_state=None for secret noise",
                PrivacyWarning,
                stacklevel=2,
            )
            rng = np.random.default_rng([seed, 0x5CA1E])
        else:
            rng = np.random.default_rng(secrets.randbits(128))
        n = int(X.shape[0])
        center, scale, released = dp_standard_scaler(X, lower, upper, epsilon=eps, n=n, rng=rng)
        d = X.shape[1]
        self.mean_ = center
        self.scale_ = scale
        self.lower_ = lower
        self.upper_ = upper
        self.epsilon_ = eps
        self.delta_ = 0.0
        notes = [
            f"n = {n} rows, released in the clear (the divisor of the noisy sums)",
            "rows given to transform are clipped to the same bounds and used in the clear",
            f"the released variance is floored at {VARIANCE_FLOOR:g} of the half-range "
            "squared (post-processing)",
        ]
        if seed is not None:
            notes.append(
                f"research mode: the noise derives from random_state {self.random_state!r}; "
                "the guarantee assumes the seed stays secret"
            )
        self.privacy_ledger_ = PrivacyLedger(
            privacy="laplace",
            sampling="none: every row, once",
            steps=1,
            delta=0.0,
            epsilon_target=eps,
            epsilon_spent=eps,
            components=[
                {
                    "query": "scaler",
                    "description": (
                        "per-column sums and sums of squares of the rows clipped to public "
                        "bounds and mapped to [-1, 1] (Laplace mechanism)"
                    ),
                    "mechanism": "laplace, once",
                    "sensitivity": f"L1 norm {scaler_sensitivity(d):g} (2 per column)",
                    "laplace_scale": released["laplace_scale"],
                    "epsilon": eps,
                    "share": 1.0,
                    **released,
                }
            ],
            composition="one Laplace release: pure epsilon-DP",
            adjacency=SCALER_ADJACENCY,
            noise_source="research" if seed is not None else "secret",
            notes=notes,
        )
        return self

    def transform(self, X) -> np.ndarray:
        """Clip ``X`` to the public bounds and standardise it with the released statistics.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return (np.clip(X, self.lower_, self.upper_) - self.mean_) / self.scale_

    def inverse_transform(self, X) -> np.ndarray:
        """Map standardised values back to the columns' units (clipping is not undone).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X * self.scale_ + self.mean_


def _is_num(v: object) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool)
