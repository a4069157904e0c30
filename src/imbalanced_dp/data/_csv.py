"""Loading and validating a user's table.

Every problem is reported as a :class:`~imbalanced_dp.exceptions.DataError` whose one-line
message names what is wrong and how to fix it. Nothing is imputed, dropped or encoded
silently: a clinical table that needs any of that needs a human decision first.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import os
import re
import warnings
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..exceptions import DataError, DataWarning

if TYPE_CHECKING:
    import pandas as pd
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


_GZIP_MAGIC = b"\x1f\x8b"


def _decompress(path: Path, raw: bytes) -> bytes:
    """The table's bytes: gzip input (``.csv.gz``, recognised by its magic bytes) is
    decompressed."""
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read {path}: it is not a valid gzip file ({exc})") from None


#: Separators a header is checked for when it was read as one column.
_SEPARATORS = {",": "','", ";": "';'", "\t": "a tab", "|": "'|'"}
_SEP_FLAG = {",": ",", ";": "';'", "\t": "'\\t'", "|": "'|'"}


def parse_sep(sep: str | None) -> str:
    """The one-character field separator of a CSV table: ``None`` is a comma; ``"\\t"``
    (backslash t, as typed in a shell) and ``"tab"`` are a tab."""
    if sep is None:
        return ","
    if sep in ("\\t", "tab", "TAB"):
        return "\t"
    if len(sep) != 1 or sep in ('"', "\n", "\r"):
        raise DataError(
            f"--sep must be one character such as ',' ';' '|' or '\\t' (tab); got {sep!r}"
        )
    return sep


def _header(path: Path, text: str, sep: str) -> list[str]:
    reader = csv.reader(text.splitlines()[:1], delimiter=sep)
    try:
        return [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error) as exc:
        raise DataError(f"{path}: cannot parse the header line ({exc})") from None


def _check_separator(path: Path, header: list[str], sep: str) -> None:
    """A header read as one column that contains another separator: say which one."""
    if len(header) != 1:
        return
    for cand, name in _SEPARATORS.items():
        if cand != sep and cand in header[0]:
            raise DataError(
                f"{path}: the header was read as a single column with separator "
                f"{_SEPARATORS.get(sep, repr(sep))}, but it contains {name}: give --sep "
                f"{_SEP_FLAG[cand]} (in a study spec: sep = {json.dumps(cand)})"
            )


def resolve_positive(values: list, positive: str | None, column: str) -> object:
    """Which of the two target values is label 1 when the user names it.

    Given ``positive``, the value whose text (or number) equals it. Otherwise ``None``:
    :func:`load_csv` then takes the minority value (label 1 is the minority class).
    """
    if positive is None:
        return None
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


def _conventional_positive(values: list) -> object | None:
    """1 of a 0/1 target, ``True`` of a boolean one; ``None`` for other targets."""
    as_set = set(values)
    for pos, neg in ((1, 0), (True, False)):
        if as_set == {pos, neg}:
            return next(v for v in values if v == pos)
    return None


def _default_positive(values: list, counts: pd.Series, column: str, where: str) -> object:
    """The minority value; ties keep 1 (or ``True``) of a 0/1 target, else the later value.

    When a 0/1 (or boolean) target's 1 is the majority, the minority 0 becomes label 1 and
    a :class:`~imbalanced_dp.exceptions.DataWarning` says so: every output of imbalanced-dp
    calls label 1 the minority, positive class.
    """
    conv = _conventional_positive(values)
    minority = min(values, key=lambda v: (counts[v], -values.index(v)))
    if conv is None or counts[conv] <= counts[next(v for v in values if v != conv)]:
        return conv if conv is not None else minority
    share = counts[conv] / counts.sum()
    warnings.warn(
        f"target {column!r} of {where}: {conv} is the majority ({share:.1%} of rows); label 1 "
        f"is the minority class in imbalanced-dp, so {minority} is the positive class here "
        f"(give --positive {conv} to keep {conv}, which is then not the minority)",
        DataWarning,
        stacklevel=3,
    )
    return minority


def _warn_majority_positive(pos: object, counts: pd.Series, column: str, where: str) -> None:
    share = counts[pos] / counts.sum()
    if share <= 0.5:
        return
    other = next(v for v in counts.index if v != pos)
    warnings.warn(
        f"--positive {pos} is the majority of target {column!r} in {where} ({share:.1%} of "
        f"rows): label 1 is then not the minority, and what the outputs call the minority "
        f"class (minority share, minority recall, subsampling) is {pos}; drop --positive to "
        f"study the minority class {other}",
        DataWarning,
        stacklevel=3,
    )


_ID_NAME = re.compile(r"^(id|.*[_ ]id|patient.*)$", re.IGNORECASE)


def _identifier_columns(df: pd.DataFrame, features: list[str]) -> list[tuple[str, str]]:
    """Feature columns that look like identifiers: named like one, or integer and unique per
    row."""
    import pandas as pd

    out = []
    n = len(df)
    for c in features:
        col = df[c]
        if pd.api.types.is_bool_dtype(col):
            continue
        if _ID_NAME.match(c):
            out.append((c, "named like an identifier"))
            continue
        v = col.to_numpy(dtype=np.float64)
        if n >= 20 and np.all(np.isfinite(v)) and np.all(v == np.round(v)) and col.is_unique:
            out.append((c, "a different integer on every row"))
    return out


def _select(
    path: Path,
    columns: list[str],
    target: str,
    features: tuple[str, ...] | None,
    drop: tuple[str, ...] | None,
) -> list[str]:
    """The feature columns: every column but the target, or ``features``, less ``drop``."""
    if features is not None and drop is not None:
        raise DataError("give either --features or --drop, not both")
    for flag, names in (("--features", features), ("--drop", drop)):
        if names is None:
            continue
        if not names:
            raise DataError(f"{flag} needs at least one column name")
        unknown = [c for c in names if c not in columns]
        if unknown:
            raise DataError(
                f"{flag}: {_listing([repr(c) for c in unknown])} not in {path}; its columns "
                f"are {_listing(columns)}"
            )
        if target in names:
            raise DataError(
                f"{flag} names the target column {target!r}; the target is never a feature"
            )
        dup = sorted(c for c, k in Counter(names).items() if k > 1)
        if dup:
            raise DataError(f"{flag} names {_listing(dup)} twice")
    if features is not None:
        return list(features)
    gone = set(drop or ())
    return [c for c in columns if c != target and c not in gone]


def _overflowing(X: np.ndarray, features: list[str]) -> list[str]:
    """Columns whose standardisation overflows float64 (their mean or standard deviation is
    not finite), with their largest magnitude."""
    bad = []
    with np.errstate(over="ignore", invalid="ignore"):
        mean = X.mean(axis=0)
        sd = X.std(axis=0)
    for j, c in enumerate(features):
        if not (math.isfinite(mean[j]) and math.isfinite(sd[j])):
            bad.append(f"{c} (largest |value| {np.max(np.abs(X[:, j])):.3g})")
    return bad


def load_csv(
    path: str | os.PathLike[str],
    target: str,
    *,
    positive: str | None = None,
    test_fraction: float = 0.2,
    sep: str | None = None,
    features: tuple[str, ...] | list[str] | None = None,
    drop: tuple[str, ...] | list[str] | None = None,
) -> Dataset:
    """Load a user's CSV table as a :class:`Dataset`, validating it.

    Parameters
    ----------
    path : path-like
        A delimited text file with a header row, UTF-8; gzip-compressed files
        (``.csv.gz``) are read directly.
    target : str
        The column holding the two classes.
    positive : str, optional
        The target value that means "positive" (label 1). By default the minority value:
        label 1 is the minority class. When that is not 1 of a 0/1 target (or ``True`` of a
        boolean one), a :class:`~imbalanced_dp.exceptions.DataWarning` says so; a
        ``positive`` that names the majority is kept, with a warning.
    test_fraction : float, default 0.2
        Used only to check that each class has enough rows for a stratified split that keeps
        both classes in train and test.
    sep : str, optional
        The field separator, one character (default ``","``; ``"\\t"`` or ``"tab"`` for a
        tab). A header read as one column that contains ``;``, a tab or ``|`` is refused
        with a message naming the separator to give.
    features : sequence of str, optional
        Use only these columns as features, in this order.
    drop : sequence of str, optional
        Use every column but these (and the target) as features.

    Raises
    ------
    DataError
        Missing, unreadable or empty file; duplicate column names; target column absent;
        a target with other than two classes; ``positive`` not among its values; unknown
        ``features`` or ``drop`` columns; non-numeric feature columns; missing or infinite
        values; values too large to standardise; too few rows of a class.

    Warns
    -----
    DataWarning
        A feature column that looks like an identifier (named ``id``, ``*_id``,
        ``patient*``, or a different integer on every row); a positive class that is not
        the minority.
    """
    import pandas as pd

    p = Path(path)
    sep = parse_sep(sep)
    features = None if features is None else tuple(str(c) for c in features)
    drop = None if drop is None else tuple(str(c) for c in drop)
    raw = _decompress(p, _read_bytes(p))
    if not raw.strip():
        raise DataError(f"{p} is empty: expected a CSV table with a header row and data rows")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{p} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
    header = _header(p, text, sep)
    _check_separator(p, header, sep)
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
            df = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True, index_col=False)
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
    counts = y_raw.value_counts()
    pos = resolve_positive(values, positive, target)
    if pos is None:
        pos = _default_positive(values, counts, target, p.name)
    else:
        _warn_majority_positive(pos, counts, target, p.name)
    neg = next(v for v in values if v != pos)

    columns = list(df.columns)
    chosen = _select(p, columns, target, features, drop)
    if not chosen:
        raise DataError(f"{p} has no feature columns besides the target {target!r}")
    non_numeric = [
        c
        for c in chosen
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
    ]
    if non_numeric:
        raise DataError(
            f"non-numeric feature columns in {p}: {_listing(non_numeric)}; encode them as "
            "numbers first (for example one-hot columns with pandas.get_dummies), or leave "
            f"them out with --drop {','.join(non_numeric)}"
        )
    X = df[chosen].to_numpy(dtype=np.float64)
    bad = []
    for j, c in enumerate(chosen):
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
    huge = _overflowing(X, chosen)
    if huge:
        raise DataError(
            f"values too large to standardise in {p}: {_listing(huge)}; their mean or "
            "standard deviation overflows (not finite in float64): rescale these columns "
            "(other units, a logarithm) or leave them out with --drop"
        )
    ids = _identifier_columns(df, chosen)
    if ids:
        names = [c for c, _ in ids]
        why = "; ".join(f"{c!r}: {reason}" for c, reason in ids)
        warnings.warn(
            f"{'column' if len(ids) == 1 else 'columns'} of {p.name} that look like "
            f"identifiers are used as features ({why}); leave them out with "
            f"--drop {','.join(names)} if they are not features",
            DataWarning,
            stacklevel=2,
        )
    y = (y_raw == pos).to_numpy().astype(np.int64)
    check_class_counts(y, (str(neg), str(pos)), test_fraction=test_fraction, where=str(p))
    selection = f"\0{json.dumps(chosen)}" if chosen != [c for c in columns if c != target] else ""
    fp = hashlib.sha256(raw + f"\0{target}\0{pos}{selection}".encode()).hexdigest()
    return Dataset(
        name=table_name(p),
        X=X,
        y=y,
        feature_names=tuple(chosen),
        class_names=(str(neg), str(pos)),
        title=f"{p.name} (target {target!r}, positive {str(pos)!r})",
        source=f"user table {p.name}",
        fingerprint=fp,
        extra={
            "path": str(p),
            "target": target,
            "positive": str(pos),
            "sep": sep,
            "features": list(chosen),
        },
    )


def load_features(
    path: str | os.PathLike[str], names: tuple[str, ...] | list[str], *, sep: str | None = None
) -> np.ndarray:
    """The columns ``names`` of a table, in that order, as float64 rows: what a saved model
    reads (``imbalanced-dp predict``). Other columns (the target, an identifier) are ignored.

    Raises
    ------
    DataError
        An unreadable table, or a named column that is missing, not numeric, or has missing
        or infinite values.
    """
    import pandas as pd

    p = Path(path)
    sep = parse_sep(sep)
    raw = _decompress(p, _read_bytes(p))
    if not raw.strip():
        raise DataError(f"{p} is empty: expected a CSV table with a header row and data rows")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{p} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from None
    header = _header(p, text, sep)
    _check_separator(p, header, sep)
    missing = [c for c in names if c not in header]
    if missing:
        raise DataError(
            f"{p} lacks {len(missing)} of the model's feature columns: {_listing(missing)}; "
            f"the model reads {_listing(list(names))}"
        )
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True, index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p} is not a well-formed CSV table: {first}") from None
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) == 0:
        raise DataError(f"{p} has a header but no data rows")
    non_numeric = [
        c
        for c in names
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
    ]
    if non_numeric:
        raise DataError(
            f"non-numeric feature columns in {p}: {_listing(non_numeric)}; encode them as "
            "numbers, as in the table the model was trained on"
        )
    X = df[list(names)].to_numpy(dtype=np.float64)
    bad = [c for j, c in enumerate(names) if not np.isfinite(X[:, j]).all()]
    if bad:
        raise DataError(
            f"missing or infinite values in {p}: {_listing(bad)}; the model needs every "
            "feature of every row: fill or drop those rows first"
        )
    return X


def table_name(path: str | os.PathLike[str]) -> str:
    """A table's name: its file name without ``.csv``, ``.csv.gz``, ``.gz``..."""
    name = Path(path).name
    for suffix in (".gz", ".csv", ".tsv", ".txt"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
    return name


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
