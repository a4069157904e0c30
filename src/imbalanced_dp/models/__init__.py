"""MLP builder, the study's presets, and saved models (``run --save``, ``predict``)."""

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
from ._saved import (
    FORMAT,
    FORMAT_VERSION,
    SAVED_SCALER_NOTE,
    ModelFileError,
    SavedModel,
    load_model,
)

__all__ = [
    "DEFAULT_HIDDEN",
    "DEFAULT_LR",
    "FORMAT",
    "FORMAT_VERSION",
    "HIDDEN_PRESETS",
    "LR_PRESETS",
    "SAVED_SCALER_NOTE",
    "Architecture",
    "ModelFileError",
    "SavedModel",
    "architecture",
    "build_mlp",
    "hidden_for",
    "load_model",
    "lr_for",
    "parse_layers",
]
