"""Training engines: ``opacus`` (the reference) and ``fast`` (batched DP-SGD).

The engines are registered by name and imported on first use: listing them (the command
line's choices) imports neither numba nor PyTorch.
"""

from importlib import import_module

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

_LAZY = {"FastEngine": "._fast", "OpacusEngine": "._opacus"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


register_engine("fast", lambda: __getattr__("FastEngine")())
register_engine("opacus", lambda: __getattr__("OpacusEngine")())

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
