"""Per-class metrics (imbalanced-learn), fairness measures, confidence intervals."""

from ._report import AVG_LABEL, COLUMNS, METRICS, format_report, per_class_report, run_scores
from ._stats import Interval, PairedTest, mean_ci, paired_difference

__all__ = [
    "AVG_LABEL",
    "COLUMNS",
    "METRICS",
    "Interval",
    "PairedTest",
    "format_report",
    "mean_ci",
    "paired_difference",
    "per_class_report",
    "run_scores",
]
