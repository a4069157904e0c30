"""Datasets: the registry (``pima`` bundled, ``breast_cancer`` from scikit-learn), user
tables with validation, stratified splits, controlled imbalance and scaling."""

from ._csv import load_csv, load_features, min_rows_per_class, parse_sep, table_name
from ._dataset import Dataset, dataset_names, load_dataset, register_dataset
from ._split import (
    IMBALANCE_METHODS,
    SCALING_NOTE,
    PreparedSplit,
    make_imbalanced,
    prepare_split,
    stratified_split,
)

__all__ = [
    "IMBALANCE_METHODS",
    "SCALING_NOTE",
    "Dataset",
    "PreparedSplit",
    "dataset_names",
    "load_csv",
    "load_dataset",
    "load_features",
    "make_imbalanced",
    "min_rows_per_class",
    "parse_sep",
    "prepare_split",
    "register_dataset",
    "stratified_split",
    "table_name",
]
