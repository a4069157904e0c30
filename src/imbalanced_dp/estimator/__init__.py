"""A scikit-learn compatible classifier trained with DP-SGD: :class:`DPMLPClassifier`."""

from ._classifier import (
    BALANCED_WEIGHTS_NOTE,
    ESTIMATOR_HYPERPARAMETER_NOTE,
    PREDICT_NOTE,
    PREPROCESSING_NOTE,
    TUNING_NOTE,
    DPMLPClassifier,
)

__all__ = [
    "BALANCED_WEIGHTS_NOTE",
    "ESTIMATOR_HYPERPARAMETER_NOTE",
    "PREDICT_NOTE",
    "PREPROCESSING_NOTE",
    "TUNING_NOTE",
    "DPMLPClassifier",
]
