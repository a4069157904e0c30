"""Mitigations of the disparate impact of DP-SGD that keep the privacy accounting true."""

from ._registry import (
    MITIGATIONS,
    OVERSAMPLE_REFUSAL,
    apply_mitigation,
    calibration_keys_for,
    check_mitigation,
    class_weights_from_counts,
    laplace_counts,
    mitigation_names,
)

__all__ = [
    "MITIGATIONS",
    "OVERSAMPLE_REFUSAL",
    "apply_mitigation",
    "calibration_keys_for",
    "check_mitigation",
    "class_weights_from_counts",
    "laplace_counts",
    "mitigation_names",
]
