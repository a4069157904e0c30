"""Training engines: ``opacus`` (the reference) and ``fast`` (batched DP-SGD)."""

from ._base import (
    AUX_RULES,
    CLIP_RULES,
    RELEASABLE_STATS,
    Engine,
    RunConfig,
    TrainedModel,
    TrainJob,
    engine_names,
    get_engine,
    public_stats,
    register_engine,
)
from ._fast import FastEngine
from ._opacus import OpacusEngine

register_engine("fast", FastEngine)
register_engine("opacus", OpacusEngine)

__all__ = [
    "AUX_RULES",
    "CLIP_RULES",
    "RELEASABLE_STATS",
    "Engine",
    "FastEngine",
    "OpacusEngine",
    "RunConfig",
    "TrainJob",
    "TrainedModel",
    "engine_names",
    "get_engine",
    "public_stats",
    "register_engine",
]
