"""The :class:`Dataset` container and the registry of named datasets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np

from ..exceptions import DataError


@dataclass(frozen=True, eq=False)
class Dataset:
    """A binary classification table ready for training.

    Label 1 is the positive class ("disease present"), which in the study's datasets is also
    the minority class.

    Attributes
    ----------
    name : str
        Registry name (``"pima"``) or, for a user's table, the file name.
    X : ndarray of shape (n_rows, n_features), float64
    y : ndarray of shape (n_rows,), int64 with values 0 and 1
    feature_names : tuple of str
    class_names : tuple of (str, str)
        How the table names label 0 and label 1.
    title, source, citation : str
        Human-readable description, where the data comes from, how to cite it.
    fingerprint : str
        sha256 of the content (values, labels and names): part of every run's ``run_id``.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    class_names: tuple[str, str]
    title: str = ""
    source: str = ""
    citation: str = ""
    fingerprint: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        X = np.ascontiguousarray(self.X, dtype=np.float64)
        y = np.ascontiguousarray(self.y, dtype=np.int64)
        if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
            raise DataError(
                f"dataset {self.name!r}: X must be 2-D and y 1-D with as many rows; "
                f"got X {X.shape} and y {y.shape}"
            )
        if not np.isin(y, (0, 1)).all():
            raise DataError(f"dataset {self.name!r}: labels must be 0 and 1")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        if not self.fingerprint:
            object.__setattr__(self, "fingerprint", content_fingerprint(X, y, self.feature_names))

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def class_counts(self) -> tuple[int, int]:
        """Rows of label 0 and of label 1."""
        counts = np.bincount(self.y, minlength=2)
        return int(counts[0]), int(counts[1])

    @property
    def minority_share(self) -> float:
        """Share of the smaller class among all rows."""
        return min(self.class_counts) / self.n_rows

    def summary(self) -> dict:
        """Rows, features, class counts and minority share, as a plain dict."""
        n0, n1 = self.class_counts
        return {
            "name": self.name,
            "title": self.title,
            "rows": self.n_rows,
            "features": self.n_features,
            "class_0": self.class_names[0],
            "class_1": self.class_names[1],
            "count_0": n0,
            "count_1": n1,
            "minority_share": self.minority_share,
            "source": self.source,
        }


def content_fingerprint(X: np.ndarray, y: np.ndarray, names: tuple[str, ...]) -> str:
    """sha256 of a table's values, labels and column names."""
    h = hashlib.sha256()
    h.update(json.dumps(list(names)).encode())
    h.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, tuple[Callable[[], Dataset], str]] = {}


def register_dataset(name: str, loader: Callable[[], Dataset], *, title: str = "") -> None:
    """Register a named dataset; ``loader`` is called (once, cached) on first use."""
    _REGISTRY[name] = (loader, title)
    _load_cached.cache_clear()


def dataset_names() -> list[str]:
    """Names of the registered datasets, in registration order."""
    return list(_REGISTRY)


@cache
def _load_cached(name: str) -> Dataset:
    return _REGISTRY[name][0]()


def load_dataset(name: str) -> Dataset:
    """Load a registered dataset by name (``"pima"``, ``"breast_cancer"``).

    Examples
    --------
    >>> from imbalanced_dp import load_dataset
    >>> ds = load_dataset("pima")
    >>> ds.X.shape, ds.class_counts
    ((768, 8), (500, 268))
    """
    if name not in _REGISTRY:
        known = ", ".join(_REGISTRY)
        raise DataError(
            f"unknown dataset {name!r}; known datasets: {known} (or give a table with --csv)"
        )
    return _load_cached(name)


# --------------------------------------------------------------------------- built-ins


def _file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _load_pima() -> Dataset:
    files = resources.files("imbalanced_dp.data") / "files"
    meta = json.loads((files / "pima.json").read_text(encoding="utf-8"))
    raw = (files / meta["file"]).read_bytes()
    digest = _file_sha256(raw)
    if digest != meta["sha256"]:
        raise DataError(
            f"the bundled PIMA table is corrupt: sha256 {digest} != recorded {meta['sha256']}; "
            "reinstall imbalanced-dp"
        )
    lines = raw.decode("utf-8").strip().splitlines()
    header = lines[0].split(",")
    values = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    target = header.index(meta["target"])
    X = np.delete(values, target, axis=1)
    y = values[:, target].astype(np.int64)
    names = tuple(h for i, h in enumerate(header) if i != target)
    return Dataset(
        name="pima",
        X=X,
        y=y,
        feature_names=names,
        class_names=(meta["class_names"]["0"], meta["class_names"]["1"]),
        title=meta["title"],
        source=meta["origin"],
        citation=meta["citation"],
        fingerprint=digest,
        extra={"licence": meta["licence"], "sha256": digest, "target": meta["target"]},
    )


#: The ten nucleus measurements of Breast Cancer Wisconsin, in the table's column order;
#: each appears as its mean, its standard error and its worst value (Street et al. 1993).
_BC_MEASURES = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
)
BREAST_CANCER_FEATURES = (
    *(f"mean {m}" for m in _BC_MEASURES),
    *(f"{m} error" for m in _BC_MEASURES),
    *(f"worst {m}" for m in _BC_MEASURES),
)


def _breast_cancer_arrays() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(X, target, target_names)`` of the copy of the table that scikit-learn ships, read
    from its file without importing scikit-learn (which takes a second); scikit-learn's own
    loader when the file is not where it used to be."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")
    path = None
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "datasets" / "data" / "breast_cancer.csv"
    if path is not None and path.is_file():
        lines = path.read_text(encoding="utf-8").strip().splitlines()
        head = lines[0].split(",")
        n_rows, n_cols = int(head[0]), int(head[1])
        values = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
        if values.shape == (n_rows, n_cols + 1) and n_cols == len(BREAST_CANCER_FEATURES):
            return values[:, :n_cols], values[:, n_cols].astype(np.int64), tuple(head[2:])
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    return bunch.data, bunch.target, tuple(str(t) for t in bunch.target_names)


def _load_breast_cancer() -> Dataset:
    X, target, target_names = _breast_cancer_arrays()
    # scikit-learn codes malignant as 0 and benign as 1; the study's label 1 is malignant.
    malignant = list(target_names).index("malignant")
    y = (target == malignant).astype(np.int64)
    return Dataset(
        name="breast_cancer",
        X=X,
        y=y,
        feature_names=BREAST_CANCER_FEATURES,
        class_names=("benign", "malignant"),
        title="Breast Cancer Wisconsin (Diagnostic)",
        source="scikit-learn sklearn.datasets.load_breast_cancer (UCI ML repository copy)",
        citation=(
            "Street, W.N., Wolberg, W.H., Mangasarian, O.L. (1993). Nuclear feature extraction "
            "for breast tumor diagnosis. IS&T/SPIE Symposium on Electronic Imaging, vol. 1905, "
            "861-870."
        ),
    )


register_dataset("pima", _load_pima, title="Pima Indians Diabetes")
register_dataset("breast_cancer", _load_breast_cancer, title="Breast Cancer Wisconsin (Diagnostic)")
