"""Mitigations of the disparate impact of DP-SGD that keep the privacy accounting true."""

from ._registry import MITIGATIONS, apply_mitigation, calibration_keys_for, mitigation_names

__all__ = ["MITIGATIONS", "apply_mitigation", "calibration_keys_for", "mitigation_names"]
