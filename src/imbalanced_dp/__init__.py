"""imbalanced-dp: how much differential privacy can a diagnostic model on imbalanced patient
data afford, and who pays for it.

The Python API, importable from the top-level package:

- datasets: :func:`load_dataset`, :func:`load_csv`, :func:`dataset_names`, :class:`Dataset`;
  a split and an imbalanced split: :func:`prepare_split`, :func:`make_imbalanced`,
  :class:`PreparedSplit`
- training runs with an engine: :func:`get_engine`, :class:`RunConfig`, :class:`TrainJob`,
  :class:`TrainedModel`; one whole run (split, calibration, training, evaluation) from a
  :class:`RunSpec` with :func:`run_single`
- privacy: :func:`sampling_plan`, :func:`calibrate_noise_multiplier`,
  :func:`epsilon_spent`, :class:`PrivacyLedger`, :class:`PrivacyWarning`
- the per-class report: :func:`per_class_report`, :func:`format_report`
- studies: :class:`StudySpec`, :func:`preset`, :func:`load_spec`, :func:`run_runs`,
  :class:`ResultsStore`; the report: :func:`write_report`
- scikit-learn: :class:`DPMLPClassifier`, :class:`DPStandardScaler`, :func:`pipeline_privacy`,
  and :class:`PrivateSearchCV` (private hyperparameter search, ε covering the whole search)
- errors: :class:`ImbalancedDPError` (a ``ValueError``) and its subclasses in
  :mod:`imbalanced_dp.exceptions`

Names are imported on first use, so that ``import imbalanced_dp`` and the command line stay
fast.

Examples
--------
>>> from imbalanced_dp import DPMLPClassifier, load_dataset, per_class_report, prepare_split
>>> split = prepare_split(load_dataset("pima"), seed=0)
>>> clf = DPMLPClassifier(epsilon=2.0, epochs=20, accountant="rdp", random_state=0)
>>> report = per_class_report(split.y_test, clf.fit(split.X_train, split.y_train).predict(
...     split.X_test))
>>> report.index.tolist(), report.columns.tolist()
(['0', '1', 'avg/total'], ['pre', 'rec', 'spe', 'f1', 'geo', 'iba', 'sup'])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .data import (
        Dataset,
        PreparedSplit,
        dataset_names,
        load_csv,
        load_dataset,
        make_imbalanced,
        prepare_split,
    )
    from .engines import RunConfig, TrainedModel, TrainJob, get_engine
    from .estimator import DPMLPClassifier, DPStandardScaler, PrivateSearchCV, pipeline_privacy
    from .exceptions import ImbalancedDPError
    from .metrics import format_report, per_class_report
    from .pipeline import write_report
    from .privacy import (
        PrivacyLedger,
        PrivacyWarning,
        calibrate_noise_multiplier,
        epsilon_spent,
        sampling_plan,
    )
    from .studies import (
        DatasetRef,
        ResultsStore,
        RunSpec,
        StudySpec,
        load_spec,
        preset,
        run_runs,
        run_single,
    )

# submodule -> the public names it provides (imported on first access)
_EXPORTS: dict[str, tuple[str, ...]] = {
    "data": (
        "Dataset",
        "PreparedSplit",
        "dataset_names",
        "load_csv",
        "load_dataset",
        "make_imbalanced",
        "prepare_split",
    ),
    "engines": ("RunConfig", "TrainJob", "TrainedModel", "get_engine"),
    "estimator": ("DPMLPClassifier", "DPStandardScaler", "PrivateSearchCV", "pipeline_privacy"),
    "exceptions": ("ImbalancedDPError",),
    "metrics": ("format_report", "per_class_report"),
    "pipeline": ("write_report",),
    "privacy": (
        "PrivacyLedger",
        "PrivacyWarning",
        "calibrate_noise_multiplier",
        "epsilon_spent",
        "sampling_plan",
    ),
    "studies": (
        "DatasetRef",
        "ResultsStore",
        "RunSpec",
        "StudySpec",
        "load_spec",
        "preset",
        "run_runs",
        "run_single",
    ),
}
_LAZY = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "DPMLPClassifier",
    "DPStandardScaler",
    "Dataset",
    "DatasetRef",
    "ImbalancedDPError",
    "PreparedSplit",
    "PrivacyLedger",
    "PrivacyWarning",
    "PrivateSearchCV",
    "ResultsStore",
    "RunConfig",
    "RunSpec",
    "StudySpec",
    "TrainJob",
    "TrainedModel",
    "__version__",
    "calibrate_noise_multiplier",
    "dataset_names",
    "epsilon_spent",
    "format_report",
    "get_engine",
    "load_csv",
    "load_dataset",
    "load_spec",
    "make_imbalanced",
    "per_class_report",
    "pipeline_privacy",
    "prepare_split",
    "preset",
    "run_runs",
    "run_single",
    "sampling_plan",
    "write_report",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups do not come back here
    return value


def __dir__() -> list[str]:
    # the public names and the subpackages already imported, not this module's own
    # machinery (annotations, importlib, TYPE_CHECKING)
    subpackages = {k for k, v in globals().items() if type(v) is type(importlib)}
    return sorted({*__all__, *(subpackages - {"importlib"})})
