"""Studies: run specs, the SQLite results store, the runner (local processes or Ray),
presets, and aggregates over seeds."""

from ._aggregate import (
    aggregate_fairness,
    aggregate_metrics,
    cost_of_privacy,
    disparity_amplification,
    fairness_per_run,
    fraction_order,
    mitigation_effects,
    privacy_order,
    store_frame,
    study_tables,
)
from ._execute import Batch, RunResult, execute_batch, run_single, versions
from ._runner import BACKENDS, StudyInterrupted, StudyOutcome, default_workers, run_runs
from ._runspec import DatasetRef, RunSpec
from ._spec import ATTACKS, PRESETS, StudySpec, load_spec, preset, spec_from_dict
from ._store import DEFAULT_STORE, PREDICTION_COLUMNS, RESULT_COLUMNS, ResultsStore

__all__ = [
    "ATTACKS",
    "BACKENDS",
    "DEFAULT_STORE",
    "PREDICTION_COLUMNS",
    "PRESETS",
    "RESULT_COLUMNS",
    "Batch",
    "DatasetRef",
    "ResultsStore",
    "RunResult",
    "RunSpec",
    "StudyInterrupted",
    "StudyOutcome",
    "StudySpec",
    "aggregate_fairness",
    "aggregate_metrics",
    "cost_of_privacy",
    "default_workers",
    "disparity_amplification",
    "execute_batch",
    "fairness_per_run",
    "fraction_order",
    "load_spec",
    "mitigation_effects",
    "preset",
    "privacy_order",
    "run_runs",
    "run_single",
    "spec_from_dict",
    "store_frame",
    "study_tables",
    "versions",
]
