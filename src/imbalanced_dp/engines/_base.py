"""What every engine takes and returns, and the engine registry."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Protocol

import numpy as np

from ..exceptions import ParameterError
from ..models import Architecture

#: Clipping rules an engine may implement (see ``engines/_kernel.py``).
CLIP_RULES = ("standard", "dpsgd_f", "global_adapt")


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run, besides its data.

    For a private run ``sample_rate``, ``steps`` and ``expected_batch_size`` come from
    :func:`imbalanced_dp.privacy.sampling_plan` and ``noise_multiplier`` from the calibration;
    a non-private run uses shuffled minibatches of ``batch_size`` for ``epochs`` epochs.

    ``class_clip`` sets a clip bound per class (label 0, label 1) instead of ``clip``; the
    noise is then scaled by the larger bound. ``clip_rule`` selects DPSGD-F or
    DPSGD-Global-Adapt, whose settings are in ``aux`` (see :mod:`imbalanced_dp.mitigations`).
    """

    seed: int
    private: bool
    epochs: int
    batch_size: int
    lr: float
    steps: int
    clip: float = 1.0
    noise_multiplier: float = 0.0
    sample_rate: float = 0.0
    expected_batch_size: int = 1
    class_clip: tuple[float, float] | None = None
    clip_rule: str = "standard"
    aux: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.clip_rule not in CLIP_RULES:
            raise ParameterError(
                f"clip_rule must be one of {', '.join(CLIP_RULES)}; got {self.clip_rule!r}"
            )
        if self.private and not 0 < self.sample_rate <= 1:
            raise ParameterError(f"a private run needs 0 < q <= 1; got {self.sample_rate}")
        if self.steps < 0:
            raise ParameterError(f"steps must be >= 0; got {self.steps}")

    @property
    def clip_bounds(self) -> tuple[float, float]:
        return self.class_clip if self.class_clip is not None else (self.clip, self.clip)


@dataclass(eq=False)
class TrainJob:
    """One run to train: its data (scaled training rows), optional per-example loss weights
    (applied before clipping), architecture and configuration."""

    X: np.ndarray
    y: np.ndarray
    arch: Architecture
    config: RunConfig
    weights: np.ndarray | None = None


@dataclass(eq=False)
class TrainedModel:
    """The result of one run: flat parameters (per layer ``W`` then ``b``, ``W`` stored
    ``out x in`` as ``torch.nn.Linear`` does), statistics and timing."""

    arch: Architecture
    params: np.ndarray
    stats: dict = field(default_factory=dict)
    seconds: float = math.nan

    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        off = 0
        s = self.arch.sizes
        for a, b in pairwise(s):
            W = self.params[off : off + a * b].reshape(b, a)
            off += a * b
            bias = self.params[off : off + b]
            off += b
            out.append((W, bias))
        return out

    def logits(self, X: np.ndarray) -> np.ndarray:
        """Output logits for rows ``X`` (already scaled), in float64."""
        h = np.asarray(X, dtype=np.float64)
        layers = self.layers()
        for i, (W, b) in enumerate(layers):
            h = h @ W.astype(np.float64).T + b
            if i < len(layers) - 1:
                h = np.maximum(h, 0.0)
        return h

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = self.logits(X)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.logits(X).argmax(axis=1).astype(np.int64)

    def per_example_loss(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Cross-entropy of each row (what membership inference attacks look at)."""
        z = self.logits(X)
        m = z.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
        return lse - z[np.arange(len(y)), np.asarray(y, dtype=np.int64)]


class Engine(Protocol):
    """An engine trains a batch of runs that share an architecture."""

    name: str

    def train(
        self, jobs: Sequence[TrainJob], *, device: str = "cpu", threads: int | None = None
    ) -> list[TrainedModel]: ...


_ENGINES: dict[str, Callable[[], Engine]] = {}


def register_engine(name: str, factory: Callable[[], Engine]) -> None:
    """Make an engine available by name to every command and study."""
    _ENGINES[name] = factory


def engine_names() -> list[str]:
    return list(_ENGINES)


def get_engine(name: str) -> Engine:
    """The engine registered as ``name`` (``"fast"`` or ``"opacus"``)."""
    if name not in _ENGINES:
        raise ParameterError(f"engine must be one of {', '.join(_ENGINES)}; got {name!r}")
    return _ENGINES[name]()
