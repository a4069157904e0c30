"""Loading and validating a user's table.

Every problem is reported as a :class:`~imbalanced_dp.exceptions.DataError` whose one-line
message names what is wrong and how to fix it. Nothing is imputed, dropped or encoded
silently: a clinical table that needs any of that needs a human decision first.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import DataError
from ._dataset import Dataset

_MAX_LISTED = 8


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = len(items) - _MAX_LISTED
    return shown + (f" and {more} more" if more > 0 else "")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"cannot read {path}: it is a directory, not a CSV file") from None
    except PermissionError:
        raise DataError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None


def _header(path: Path, text: str) -> list[str]:
    reader = csv.reader(text.splitlines()[:1])
    try:
        return [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise DataError(f"{path}: cannot parse the header line ({exc})") from None


def resolve_positive(values: list, positive: str | None, column: str) -> object:
    """Which of the two target values is label 1.

    Given ``positive``, the value whose text (or number) equals it. Otherwise: 1 for 0/1
    targets, ``True`` for booleans, else the less frequent value (label 1 is the minority),
    ties broken by sort order.
    """
    if positive is not None:
        for v in values:
            if str(v) == positive:
                return v
            try:
                if float(v) == float(positive):
                    return v
            except (TypeError, ValueError):
                pass
        shown = ", ".join(repr(str(v)) for v in values)
        raise DataError(
            f"--positive {positive!r} is not a value of target column {column!r}; "
            f"its values are {shown}"
        )
    as_set = set(values)
    for pos, neg in ((1, 0), (True, False)):
        if as_set == {pos, neg}:
            return next(v for v in values if v == pos)
    return None  # decided by frequency in load_csv


def load_csv(
    path: str | os.PathLike[str],
    target: str,
    *,
    positive: str | None = None,
    test_fraction: float = 0.2,
) -> Dataset:
    """Load a user's CSV table as a :class:`Dataset`, validating it.

    Parameters
    ----------
    path : path-like
        A comma-separated file with a header row.
    target : str
        The column holding the two classes.
    positive : str, optional
        The target value that means "positive" (label 1). By default 1 for 0/1 targets,
        ``True`` for booleans, otherwise the less frequent value.
    test_fraction : float, default 0.2
        Used only to check that each class has enough rows for a stratified split that keeps
        both classes in train and test.

    Raises
    ------
    DataError
        Missing, unreadable or empty file; duplicate column names; target column absent;
        a target with other than two classes; ``positive`` not among its values; non-numeric
        feature columns; missing or infinite values; too few rows of a class.
    """
    p = Path(path)
    raw = _read_bytes(p)
    if not raw.strip():
        raise DataError(f"{p} is empty: expected a CSV table with a header row and data rows")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{p} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
    header = _header(p, text)
    unnamed = [str(i + 1) for i, name in enumerate(header) if not name]
    if unnamed:
        raise DataError(
            f"{p}: column {_listing(unnamed)} of the header has no name (a saved row index?); "
            "name it, or drop it if it is not a feature"
        )
    dup = sorted(name for name, k in Counter(header).items() if k > 1)
    if dup:
        raise DataError(
            f"{p} has duplicate column names: {_listing(dup)}; rename them so each is unique"
        )
    if target not in header:
        raise DataError(
            f"target column {target!r} is not in {p}; its columns are {_listing(header)}"
        )
    try:
        with warnings.catch_warnings():
            # Rows longer than the header would silently become a row index: refuse them.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(p, encoding="utf-8-sig", skipinitialspace=True, index_col=False)
    except pd.errors.ParserWarning:
        raise DataError(
            f"{p}: data rows have more fields than the {len(header)} columns of the header; "
            "make every row match the header"
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{p} is empty: expected a CSV table with a header row") from None
    except (pd.errors.ParserError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p} is not a well-formed CSV table: {first}") from None
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise DataError(f"{p} has a header but no data rows")

    y_raw = df[target]
    n_missing_target = int(y_raw.isna().sum())
    if n_missing_target:
        raise DataError(
            f"target column {target!r} has {n_missing_target} missing values; "
            "drop or label those rows first (nothing is imputed)"
        )
    values = sorted(pd.unique(y_raw).tolist(), key=lambda v: (str(type(v)), v))
    if len(values) != 2:
        shown = ", ".join(repr(str(v)) for v in values[:_MAX_LISTED])
        more = " ..." if len(values) > _MAX_LISTED else ""
        raise DataError(
            f"target column {target!r} has {len(values)} "
            f"{'class' if len(values) == 1 else 'classes'} ({shown}{more}); "
            "imbalanced-dp needs exactly two"
        )
    pos = resolve_positive(values, positive, target)
    counts = y_raw.value_counts()
    if pos is None:
        # Label 1 is the minority class by convention; ties go to the later value.
        pos = min(values, key=lambda v: (counts[v], -values.index(v)))
    neg = next(v for v in values if v != pos)

    features = [c for c in df.columns if c != target]
    if not features:
        raise DataError(f"{p} has no feature columns besides the target {target!r}")
    non_numeric = [
        c
        for c in features
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
    ]
    if non_numeric:
        raise DataError(
            f"non-numeric feature columns in {p}: {_listing(non_numeric)}; encode them as "
            "numbers first (for example one-hot columns with pandas.get_dummies)"
        )
    X = df[features].to_numpy(dtype=np.float64)
    bad = []
    for j, c in enumerate(features):
        n_nan = int(np.isnan(X[:, j]).sum())
        n_inf = int(np.isinf(X[:, j]).sum())
        if n_nan or n_inf:
            parts = [f"{n_nan} missing"] if n_nan else []
            parts += [f"{n_inf} infinite"] if n_inf else []
            bad.append(f"{c} ({', '.join(parts)})")
    if bad:
        raise DataError(
            f"missing or infinite values in {p}: {_listing(bad)}; imbalanced-dp does not "
            "impute silently: fill or drop them first"
        )
    y = (y_raw == pos).to_numpy().astype(np.int64)
    check_class_counts(y, (str(neg), str(pos)), test_fraction=test_fraction, where=str(p))
    fp = hashlib.sha256(raw + f"\0{target}\0{pos}".encode()).hexdigest()
    return Dataset(
        name=p.stem,
        X=X,
        y=y,
        feature_names=tuple(features),
        class_names=(str(neg), str(pos)),
        title=f"{p.name} (target {target!r}, positive {str(pos)!r})",
        source=f"user table {p.name}",
        fingerprint=fp,
        extra={"path": str(p), "target": target, "positive": str(pos)},
    )


def min_rows_per_class(test_fraction: float) -> int:
    """Fewest rows a class needs so that a stratified split keeps it in train and test."""
    smaller = min(test_fraction, 1.0 - test_fraction)
    return max(2, math.ceil(1.0 / smaller - 1e-9))


def check_class_counts(
    y: np.ndarray, class_names: tuple[str, str], *, test_fraction: float, where: str
) -> None:
    """Raise :class:`DataError` if a class is too small for a stratified split."""
    need = min_rows_per_class(test_fraction)
    counts = np.bincount(y, minlength=2)
    for label in (0, 1):
        if counts[label] < need:
            raise DataError(
                f"{where}: class {class_names[label]!r} has {int(counts[label])} rows; a "
                f"stratified split with {test_fraction:.0%} test needs at least {need} rows "
                "of each class so both classes are in train and test"
            )
