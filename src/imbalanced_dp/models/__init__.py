"""MLP builder and the study's presets."""

from ._mlp import (
    DEFAULT_HIDDEN,
    DEFAULT_LR,
    HIDDEN_PRESETS,
    LR_PRESETS,
    Architecture,
    architecture,
    build_mlp,
    hidden_for,
    lr_for,
    parse_layers,
)

__all__ = [
    "DEFAULT_HIDDEN",
    "DEFAULT_LR",
    "HIDDEN_PRESETS",
    "LR_PRESETS",
    "Architecture",
    "architecture",
    "build_mlp",
    "hidden_for",
    "lr_for",
    "parse_layers",
]
