"""A scikit-learn compatible classifier trained with DP-SGD: :class:`DPMLPClassifier`."""

from ._classifier import (
    BALANCED_COUNT_SHARE,
    ESTIMATOR_HYPERPARAMETER_NOTE,
    PREDICT_NOTE,
    PREPROCESSING_NOTE,
    RESEARCH_WARNING,
    TUNING_NOTE,
    DPMLPClassifier,
)

__all__ = [
    "BALANCED_COUNT_SHARE",
    "ESTIMATOR_HYPERPARAMETER_NOTE",
    "PREDICT_NOTE",
    "PREPROCESSING_NOTE",
    "RESEARCH_WARNING",
    "TUNING_NOTE",
    "DPMLPClassifier",
]
