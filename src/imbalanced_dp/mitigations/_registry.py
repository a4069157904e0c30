"""The registry of mitigations: each turns a prepared plain run into its mitigated form
(engine configuration, per-example weights, privacy ledger)."""

from __future__ import annotations

from collections.abc import Callable

from ..exceptions import ParameterError


def _none(prepared, sigmas):
    return prepared


MITIGATIONS: dict[str, Callable] = {"none": _none}


def mitigation_names() -> list[str]:
    return list(MITIGATIONS)


def apply_mitigation(prepared, sigmas):
    name = prepared.spec.mitigation
    if name not in MITIGATIONS:
        raise ParameterError(
            f"mitigation must be one of {', '.join(MITIGATIONS)}; got {name!r}"
        )
    return MITIGATIONS[name](prepared, sigmas)


def calibration_keys_for(spec, plan) -> list[tuple]:
    """Extra noise calibrations a mitigation needs (none for plain DP-SGD)."""
    return []
