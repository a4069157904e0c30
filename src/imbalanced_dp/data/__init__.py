"""Datasets: the registry (``pima`` bundled, ``breast_cancer`` from scikit-learn), user
tables with validation, stratified splits, controlled imbalance and scaling."""

from ._csv import load_csv, load_features, min_rows_per_class, parse_sep, table_name
from ._dataset import Dataset, dataset_names, load_dataset, register_dataset
from ._scaling import (
    DEFAULT_SCALING,
    FITTED_IN_THE_CLEAR,
    NEED_BOUNDS,
    SCALINGS,
    FittedScaler,
    PublicBounds,
    bundled_bounds,
    check_scaling,
    fit_scaler,
    parse_bounds,
    read_bounds_file,
    scaling_ledger,
)
from ._split import (
    IMBALANCE_METHODS,
    SCALING_NOTE,
    PreparedSplit,
    make_imbalanced,
    prepare_split,
    rescale,
    stratified_split,
)

__all__ = [
    "DEFAULT_SCALING",
    "FITTED_IN_THE_CLEAR",
    "IMBALANCE_METHODS",
    "NEED_BOUNDS",
    "SCALINGS",
    "SCALING_NOTE",
    "Dataset",
    "FittedScaler",
    "PreparedSplit",
    "PublicBounds",
    "bundled_bounds",
    "check_scaling",
    "dataset_names",
    "fit_scaler",
    "load_csv",
    "load_dataset",
    "load_features",
    "make_imbalanced",
    "min_rows_per_class",
    "parse_bounds",
    "parse_sep",
    "prepare_split",
    "read_bounds_file",
    "register_dataset",
    "rescale",
    "scaling_ledger",
    "stratified_split",
    "table_name",
]
