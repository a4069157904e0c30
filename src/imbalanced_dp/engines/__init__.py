"""Training engines: ``opacus`` (the reference) and ``fast`` (batched DP-SGD)."""

from ._base import (
    CLIP_RULES,
    Engine,
    RunConfig,
    TrainedModel,
    TrainJob,
    engine_names,
    get_engine,
    register_engine,
)
from ._fast import FastEngine
from ._opacus import OpacusEngine

register_engine("fast", FastEngine)
register_engine("opacus", OpacusEngine)

__all__ = [
    "CLIP_RULES",
    "Engine",
    "FastEngine",
    "OpacusEngine",
    "RunConfig",
    "TrainJob",
    "TrainedModel",
    "engine_names",
    "get_engine",
    "register_engine",
]
