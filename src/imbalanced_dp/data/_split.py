"""Stratified splits per seed, controlled imbalance, and scaling.

The order is fixed (docs/protocol.md, docs/architecture.md): split first, so the test set keeps the
natural class distribution; then, optionally, subsample the training split to a target
minority share; then fit the scaler on what remains of the training split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..exceptions import DataError, ParameterError
from ..settings import check_setting
from ._dataset import Dataset
from ._scaling import (
    DEFAULT_SCALING,
    FITTED_NOTES,
    FittedScaler,
    PublicBounds,
    check_scaling,
    fit_scaler,
)

IMBALANCE_METHODS = ("subsample_minority", "undersample_majority")

SCALING_NOTE = FITTED_NOTES["standard"]


def _rng(seed: int, purpose: int) -> np.random.Generator:
    # One independent stream per (seed, purpose): the split and the subsample of a seed never
    # share random numbers, and neither depends on anything but the seed.
    return np.random.default_rng([int(seed), purpose])


def _test_counts(counts: np.ndarray, n_test: int) -> np.ndarray:
    """Test rows per class: ``n_test`` shared in proportion to the class sizes, rounded by
    largest remainders (ties to the larger class, then the lower label)."""
    ideal = n_test * counts / counts.sum()
    out = np.floor(ideal).astype(np.int64)
    order = sorted(range(len(counts)), key=lambda c: (-(ideal[c] - out[c]), -counts[c], c))
    for c in order[: n_test - int(out.sum())]:
        out[c] += 1
    return out


def stratified_split(
    y: np.ndarray, *, seed: int, test_fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a stratified train/test split, the same for every use of ``seed``.

    ``ceil(test_fraction × n)`` rows go to the test split, shared among the classes in
    proportion to their sizes (largest remainders); each class's test rows are a uniformly
    random subset of its rows, drawn from a stream of ``seed`` that nothing else uses.
    Returns sorted ``(train_rows, test_rows)``.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0] * 80 + [1] * 20)
    >>> train, test = stratified_split(y, seed=0)
    >>> len(train), len(test), int(y[test].sum())
    (80, 20, 4)
    """
    check_setting("test_fraction", test_fraction)
    y = np.asarray(y)
    n = len(y)
    classes, counts = np.unique(y, return_counts=True)
    n_test = math.ceil(test_fraction * n)
    if len(classes) < 2 or counts.min() < 2 or n_test < len(classes) or n - n_test < len(classes):
        raise DataError(
            f"cannot make a stratified split of {n} rows with class counts "
            f"{', '.join(str(int(c)) for c in counts)} and {test_fraction:.0%} test: every "
            "class needs rows in both splits"
        )
    per_class = _test_counts(counts, n_test)
    rng = _rng(seed, 0x5B1)
    test_parts = []
    for c, k in zip(classes, per_class, strict=True):
        rows = np.flatnonzero(y == c)
        test_parts.append(rng.permutation(rows)[:k])
    test = np.sort(np.concatenate(test_parts))
    train = np.setdiff1d(np.arange(n), test)
    for name, rows in (("training", train), ("test", test)):
        missing = set((0, 1)) - set(np.unique(y[rows]).tolist())
        if missing:
            raise DataError(
                f"the {name} split of seed {seed} has no rows of class {min(missing)}: "
                "the class is too small for a stratified split with "
                f"{test_fraction:.0%} test"
            )
    return train, test


def make_imbalanced(
    rows: np.ndarray,
    y: np.ndarray,
    *,
    minority_fraction: float,
    seed: int,
    method: str = "subsample_minority",
) -> np.ndarray:
    """Subsample training ``rows`` so that class 1 makes up ``minority_fraction`` of them.

    ``subsample_minority`` (the default) removes positive rows without replacement and
    refuses a target above the natural share; ``undersample_majority`` removes negative rows
    instead, which can raise the positive share. The result is sorted and the realised share
    is the closest achievable to the target with at least one row of each class.
    """
    if method not in IMBALANCE_METHODS:
        raise ParameterError(
            f"imbalance_method must be one of {', '.join(IMBALANCE_METHODS)}; got {method!r}"
        )
    check_setting("minority_fraction", minority_fraction)
    pos = rows[y[rows] == 1]
    neg = rows[y[rows] == 0]
    natural = len(pos) / len(rows)
    rng = _rng(seed, 0x1B1)
    if method == "subsample_minority":
        if minority_fraction > natural + 1e-12:
            raise ParameterError(
                f"minority_fraction {minority_fraction} is above the natural share "
                f"{natural:.3f} of the training split; subsampling the minority cannot raise "
                'it (choose imbalance_method = "undersample_majority" to remove majority rows)'
            )
        # keep k positives with k / (k + n_neg) as close as possible to the target
        k = round(minority_fraction * len(neg) / (1.0 - minority_fraction))
        k = max(1, min(len(pos), k))
        keep = rng.choice(pos, size=k, replace=False)
        out = np.concatenate([keep, neg])
    else:
        m = round(len(pos) * (1.0 - minority_fraction) / minority_fraction)
        m = max(1, min(len(neg), m))
        keep = rng.choice(neg, size=m, replace=False)
        out = np.concatenate([pos, keep])
    return np.sort(out)


@dataclass(frozen=True, eq=False)
class PreparedSplit:
    """One seed's training and test data, scaled, with what was done to it.

    ``train_rows`` and ``test_rows`` index the dataset's original rows; ``scaler`` is the
    feature scaling every row went through (:class:`~._scaling.FittedScaler`).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    train_rows: np.ndarray
    test_rows: np.ndarray
    minority_fraction: float
    minority_fraction_target: float | None
    scaler: FittedScaler
    X_hold: np.ndarray | None = None
    y_hold: np.ndarray | None = None
    hold_rows: np.ndarray | None = None
    feature_names: tuple[str, ...] = ()

    @property
    def n_train(self) -> int:
        return len(self.y_train)

    @property
    def train_class_counts(self) -> tuple[int, int]:
        c = np.bincount(self.y_train, minlength=2)
        return int(c[0]), int(c[1])

    @property
    def test_class_counts(self) -> tuple[int, int]:
        c = np.bincount(self.y_test, minlength=2)
        return int(c[0]), int(c[1])

    @property
    def scaler_mean(self) -> np.ndarray:
        """The centre of each column's scaling."""
        return self.scaler.center

    @property
    def scaler_scale(self) -> np.ndarray:
        """The scale of each column's scaling."""
        return self.scaler.scale

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Scale other rows (e.g. for membership inference) like the training split."""
        return self.scaler.transform(X)


def fit_standard_scaler(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population standard deviation of each column (a constant column gets scale
    1 and is only centred), the statistics of scikit-learn's ``StandardScaler``."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    std = np.sqrt(((X - mean) ** 2).mean(axis=0))
    constant = np.ptp(X, axis=0) == 0 if len(X) else np.ones(X.shape[1], dtype=bool)
    return mean, np.where(constant, 1.0, std)


def _check_scaled(
    dataset: Dataset,
    mean: np.ndarray,
    scale: np.ndarray,
    X_train: np.ndarray,
    X_test: np.ndarray,
    seed: int,
) -> None:
    """Refuse a split whose standardisation overflows: a non-finite mean or scale, or a
    scaled value that is not finite, names its column (one line, like an infinite value)."""
    ok = np.isfinite(mean) & np.isfinite(scale)
    ok &= np.isfinite(X_train).all(axis=0) & np.isfinite(X_test).all(axis=0)
    if ok.all():
        return
    names = dataset.feature_names or tuple(f"column {j}" for j in range(dataset.n_features))
    bad = [str(names[j]) for j in np.flatnonzero(~ok)]
    shown = ", ".join(bad[:8]) + (f" and {len(bad) - 8} more" if len(bad) > 8 else "")
    raise DataError(
        f"values too large to standardise in {dataset.name}: {shown} (seed {seed}'s training "
        "split gives a mean, standard deviation or scaled value that is not finite in "
        "float64); rescale these columns (other units, a logarithm) or leave them out "
        "with --drop"
    )


def prepare_split(
    dataset: Dataset,
    *,
    seed: int,
    test_fraction: float = 0.2,
    minority_fraction: float | None = None,
    imbalance_method: str = "subsample_minority",
    holdout: float = 0.0,
    scaling: str = DEFAULT_SCALING,
    bounds: PublicBounds | None = None,
) -> PreparedSplit:
    """Split ``dataset`` for ``seed``, optionally make the training split more imbalanced,
    and scale the features (``scaling``, see :mod:`._scaling`: by default standardised with
    statistics of the training split; ``public`` uses ``bounds``; ``dp_standard`` is left
    to the run's privacy plan and :func:`rescale`).

    ``holdout`` > 0 keeps that share of the training rows (stratified) out of training, for
    choosing a decision threshold; they are scaled like the rest but never trained on.

    Examples
    --------
    >>> from imbalanced_dp import load_dataset, prepare_split
    >>> split = prepare_split(load_dataset("pima"), seed=0)
    >>> split.train_class_counts, split.test_class_counts
    ((400, 214), (100, 54))
    >>> split = prepare_split(load_dataset("pima"), seed=0, minority_fraction=0.1)
    >>> split.train_class_counts
    (400, 44)
    """
    check_scaling(scaling)
    train, test = stratified_split(dataset.y, seed=seed, test_fraction=test_fraction)
    if minority_fraction is not None:
        train = make_imbalanced(
            train,
            dataset.y,
            minority_fraction=minority_fraction,
            seed=seed,
            method=imbalance_method,
        )
    hold = None
    if holdout > 0:
        if not 0 < holdout < 1:
            raise ParameterError(f"holdout must be in (0, 1); got {holdout}")
        inner_train, inner_hold = stratified_split(
            dataset.y[train], seed=seed + 7919, test_fraction=holdout
        )
        train, hold = train[inner_train], train[inner_hold]
    if scaling == "dp_standard":
        # fitted with the run's privacy plan (a share of epsilon): see rescale()
        scaler = FittedScaler.identity(dataset.n_features, kind="dp_standard (pending)")
    elif scaling == "standard":
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            mean, scale = fit_standard_scaler(dataset.X[train])
        scaler = FittedScaler(
            "standard", mean, scale, np.full_like(mean, -np.inf), np.full_like(mean, np.inf)
        )
    else:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            scaler = fit_scaler(scaling, dataset.X[train], bounds)
    return _scaled(
        dataset,
        scaler,
        seed=seed,
        train=train,
        test=test,
        hold=hold,
        minority_fraction=minority_fraction,
    )


def rescale(dataset: Dataset, split: PreparedSplit, scaler: FittedScaler, *, seed: int):
    """The same split with another scaling (e.g. the DP scaler a run's plan released)."""
    return _scaled(
        dataset,
        scaler,
        seed=seed,
        train=split.train_rows,
        test=split.test_rows,
        hold=split.hold_rows,
        minority_fraction=split.minority_fraction_target,
    )


def _scaled(dataset, scaler, *, seed, train, test, hold, minority_fraction) -> PreparedSplit:
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        X_train = scaler.transform(dataset.X[train])
        X_test = scaler.transform(dataset.X[test])
    _check_scaled(dataset, scaler.center, scaler.scale, X_train, X_test, seed)
    y_train = dataset.y[train]
    extra = {}
    if hold is not None:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            extra = {
                "X_hold": scaler.transform(dataset.X[hold]),
                "y_hold": dataset.y[hold],
                "hold_rows": hold,
            }
    return PreparedSplit(
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=dataset.y[test],
        train_rows=train,
        test_rows=test,
        minority_fraction=float(y_train.mean()),
        minority_fraction_target=minority_fraction,
        scaler=scaler,
        feature_names=tuple(dataset.feature_names),
        **extra,
    )
