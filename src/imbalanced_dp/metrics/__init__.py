"""Per-class metrics (imbalanced-learn), fairness measures, confidence intervals."""

from ._fairness import FAIRNESS, fairness_per_run, recall_gap
from ._report import AVG_LABEL, COLUMNS, METRICS, format_report, per_class_report, run_scores
from ._stats import (
    Interval,
    PairedTest,
    clopper_pearson,
    interval_dict,
    mean_ci,
    one_sample_p,
    paired_difference,
    quiet_constant_differences,
    welch_difference,
)

__all__ = [
    "AVG_LABEL",
    "COLUMNS",
    "FAIRNESS",
    "METRICS",
    "Interval",
    "PairedTest",
    "clopper_pearson",
    "fairness_per_run",
    "format_report",
    "interval_dict",
    "mean_ci",
    "one_sample_p",
    "paired_difference",
    "per_class_report",
    "quiet_constant_differences",
    "recall_gap",
    "run_scores",
    "welch_difference",
]
