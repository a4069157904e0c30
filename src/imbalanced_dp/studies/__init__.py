"""Studies: run specs, the SQLite results store, the runner (local processes or Ray),
presets, and aggregates over seeds."""

from ._aggregate import (
    FULL_SETTING,
    SETTING,
    aggregate_fairness,
    aggregate_metrics,
    ambiguous_settings,
    cost_of_privacy,
    disparity_amplification,
    fairness_per_run,
    fraction_order,
    mitigation_effects,
    privacy_order,
    require_one_config,
    store_frame,
    study_tables,
)
from ._backends import BACKENDS, Backend, backend_names, get_backend, register_backend
from ._execute import Batch, RunResult, execute_batch, run_single, versions
from ._planning import group_label, make_batches, validate_runs
from ._runner import StudyInterrupted, StudyOutcome, default_workers, run_runs
from ._runspec import DatasetRef, RunSpec
from ._spec import ATTACKS, PRESETS, StudySpec, load_spec, preset, spec_from_dict
from ._store import DEFAULT_STORE, PREDICTION_COLUMNS, RESULT_COLUMNS, ResultsStore

__all__ = [
    "ATTACKS",
    "BACKENDS",
    "DEFAULT_STORE",
    "FULL_SETTING",
    "PREDICTION_COLUMNS",
    "PRESETS",
    "RESULT_COLUMNS",
    "SETTING",
    "Backend",
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
    "ambiguous_settings",
    "backend_names",
    "cost_of_privacy",
    "default_workers",
    "disparity_amplification",
    "execute_batch",
    "fairness_per_run",
    "fraction_order",
    "get_backend",
    "group_label",
    "load_spec",
    "make_batches",
    "mitigation_effects",
    "preset",
    "privacy_order",
    "register_backend",
    "require_one_config",
    "run_runs",
    "run_single",
    "spec_from_dict",
    "store_frame",
    "study_tables",
    "validate_runs",
    "versions",
]
