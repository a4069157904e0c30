"""Noise calibration and ε accounting (wrapping Opacus), and the privacy ledger."""

from ._accounting import (
    ACCOUNTANTS,
    CALIBRATION_TOLERANCE,
    DEFAULT_ACCOUNTANT,
    PrivacyWarning,
    SamplingPlan,
    accountant_version,
    calibrate_noise_multiplier,
    check_accountant,
    check_delta,
    check_epsilon,
    check_training_params,
    default_delta,
    epsilon_spent,
    sampling_plan,
)
from ._ledger import (
    HYPERPARAMETER_NOTE,
    NOISE_NOTE,
    PUBLIC_N_NOTE,
    SPLIT_NOTE,
    PrivacyLedger,
)

__all__ = [
    "ACCOUNTANTS",
    "CALIBRATION_TOLERANCE",
    "DEFAULT_ACCOUNTANT",
    "HYPERPARAMETER_NOTE",
    "NOISE_NOTE",
    "PUBLIC_N_NOTE",
    "SPLIT_NOTE",
    "PrivacyLedger",
    "PrivacyWarning",
    "SamplingPlan",
    "accountant_version",
    "calibrate_noise_multiplier",
    "check_accountant",
    "check_delta",
    "check_epsilon",
    "check_training_params",
    "default_delta",
    "epsilon_spent",
    "sampling_plan",
]
