"""Mitigations of the disparate impact of DP-SGD that keep the privacy accounting true."""

from ._registry import (
    HELDOUT,
    MITIGATIONS,
    OVERSAMPLE_REFUSAL,
    Configured,
    Mitigation,
    check_mitigation,
    class_weights_from_counts,
    class_weights_from_shares,
    get_mitigation,
    laplace_counts,
    mitigation_names,
    register_mitigation,
    threshold_rule,
)

__all__ = [
    "HELDOUT",
    "MITIGATIONS",
    "OVERSAMPLE_REFUSAL",
    "Configured",
    "Mitigation",
    "check_mitigation",
    "class_weights_from_counts",
    "class_weights_from_shares",
    "get_mitigation",
    "laplace_counts",
    "mitigation_names",
    "register_mitigation",
    "threshold_rule",
]
