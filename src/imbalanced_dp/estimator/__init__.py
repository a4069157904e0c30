"""scikit-learn estimators with differential privacy: :class:`DPMLPClassifier` (an MLP
trained with DP-SGD), :class:`DPStandardScaler` (a scaler whose statistics are released
under ε-DP), :func:`pipeline_privacy` (the total ε of a pipeline of them), and
:class:`PrivateSearchCV` (a private hyperparameter search whose ε covers the whole search)
with the model it releases, :class:`TunedDPClassifier`."""

from ._classifier import (
    BALANCED_COUNT_SHARE,
    ESTIMATOR_HYPERPARAMETER_NOTE,
    PREDICT_NOTE,
    PREPROCESSING_NOTE,
    RESEARCH_WARNING,
    TUNING_NOTE,
    DPMLPClassifier,
)
from ._pipeline import PipelinePrivacy, pipeline_privacy
from ._scaler import DPStandardScaler
from ._search import PrivateSearchCV, TunedDPClassifier

__all__ = [
    "BALANCED_COUNT_SHARE",
    "ESTIMATOR_HYPERPARAMETER_NOTE",
    "PREDICT_NOTE",
    "PREPROCESSING_NOTE",
    "RESEARCH_WARNING",
    "TUNING_NOTE",
    "DPMLPClassifier",
    "DPStandardScaler",
    "PipelinePrivacy",
    "PrivateSearchCV",
    "TunedDPClassifier",
    "pipeline_privacy",
]
