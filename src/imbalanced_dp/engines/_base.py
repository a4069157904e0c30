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
#: Rules that answer noisy counts at every step.
AUX_RULES = ("dpsgd_f", "global_adapt")
#: Training statistics a private run may release: the number of steps (public) and what is
#: computed from noisy answers only (``clip_state``: DPSGD-F's mean class bounds, Global-
#: Adapt's final threshold). The others count private examples (seen and clipped per class,
#: non-finite gradients, empty steps, the largest batch) and never leave the engine's result
#: (PRIVACY.md rule 11).
RELEASABLE_STATS = ("steps", "clip_state", "opacus_history")


def public_stats(stats: dict, *, private: bool) -> dict:
    """What of an engine's statistics a run may output: all of them without privacy, the
    :data:`RELEASABLE_STATS` with it."""
    if not private:
        return dict(stats)
    return {k: v for k, v in stats.items() if k in RELEASABLE_STATS}


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines one training run, besides its data.

    For a private run ``sample_rate``, ``steps`` and ``expected_batch_size`` come from
    :func:`imbalanced_dp.privacy.sampling_plan` and ``noise_multiplier`` from the calibration;
    a non-private run uses shuffled minibatches of ``batch_size`` for ``epochs`` epochs.

    ``class_clip`` sets a clip bound per class (label 0, label 1) instead of ``clip``; the
    noise is then scaled by the larger bound. ``clip_rule`` selects DPSGD-F or
    DPSGD-Global-Adapt, whose settings are in ``aux`` (see :mod:`imbalanced_dp.mitigations`)
    and whose per-step counts get Gaussian noise of multiplier ``aux_noise_multiplier``.

    ``seed`` draws the initialisation (and the non-private baseline's shuffling).
    ``noise_key`` draws Poisson sampling and all noise of a private run: ``None`` (the
    default) makes the engine draw a secret key from the operating system's entropy when
    training starts and forget it (PRIVACY.md rule 9); research mode sets it from the plan
    (:attr:`imbalanced_dp.privacy.TrainingPlan.noise_key`). Build a private configuration
    with :meth:`from_plan`.
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
    noise_key: int | None = None
    aux_noise_multiplier: float = 0.0

    def __post_init__(self) -> None:
        if self.clip_rule not in CLIP_RULES:
            raise ParameterError(
                f"clip_rule must be one of {', '.join(CLIP_RULES)}; got {self.clip_rule!r}"
            )
        if self.private and not 0 < self.sample_rate <= 1:
            raise ParameterError(f"a private run needs 0 < q <= 1; got {self.sample_rate}")
        if self.steps < 0:
            raise ParameterError(f"steps must be >= 0; got {self.steps}")
        if self.noise_key is not None and not 0 <= self.noise_key < 2**64:
            raise ParameterError(
                f"noise_key must be a 64-bit unsigned integer; got {self.noise_key}"
            )
        if self.private and self.clip_rule in AUX_RULES and self.noise_multiplier != 0:
            # (σ = 0 everywhere is the noiseless control of tests and audits: no guarantee
            # is claimed; noised gradients beside unnoised counts would claim a false one)
            s = self.aux_noise_multiplier
            if not (s > 0 and math.isfinite(s)):
                raise ParameterError(
                    f"a private {self.clip_rule} run answers noisy counts at every step and "
                    f"needs their noise multiplier from its privacy plan; got "
                    f"aux_noise_multiplier={s!r} (unnoised counts would break the guarantee)"
                )

    @classmethod
    def from_plan(
        cls,
        plan,
        *,
        seed: int,
        lr: float,
        clip: float = 1.0,
        class_clip: tuple[float, float] | None = None,
        clip_rule: str = "standard",
        aux: dict | None = None,
        aux_query: str | None = None,
    ) -> RunConfig:
        """The configuration of a run planned by :func:`imbalanced_dp.privacy.plan_run`:
        its steps, sample rate, divisor, noise multipliers and noise key come from the plan
        (``aux_query`` names the plan's query whose noise the per-step counts use)."""
        if not plan.private:
            return cls(
                seed=int(seed),
                private=False,
                epochs=plan.epochs,
                batch_size=plan.batch_size,
                lr=float(lr),
                steps=plan.steps,
            )
        return cls(
            seed=int(seed),
            private=True,
            epochs=plan.epochs,
            batch_size=plan.batch_size,
            lr=float(lr),
            steps=plan.steps,
            clip=float(clip),
            noise_multiplier=float(plan.noise_multiplier),
            sample_rate=float(plan.sample_rate),
            expected_batch_size=int(plan.expected_batch_size),
            class_clip=class_clip,
            clip_rule=clip_rule,
            aux=dict(aux or {}),
            noise_key=plan.noise_key,
            aux_noise_multiplier=(
                float(plan.query(aux_query).noise_multiplier) if aux_query else 0.0
            ),
        )

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
    """An engine trains a batch of runs that share an architecture.

    Its capabilities are attributes, so that no caller special-cases an engine by name:
    ``batched`` (it trains many runs in one call, so a sweep gives it large batches),
    ``relative_cost`` (seconds per run relative to the fast engine, for scheduling),
    ``clip_rules`` (the clipping rules of :data:`CLIP_RULES` it implements) and
    ``devices`` (where it can train).
    """

    name: str
    batched: bool
    relative_cost: float
    clip_rules: tuple[str, ...]
    devices: tuple[str, ...]

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
