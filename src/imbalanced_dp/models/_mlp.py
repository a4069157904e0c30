"""The study's multilayer perceptrons.

Fully connected layers with ReLU between them and two output logits; no batch
normalisation, which mixes examples and breaks per-example privacy (docs/protocol.md, section 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from ..exceptions import ParameterError

#: Hidden layer sizes of the study's models, and of any other table by default.
HIDDEN_PRESETS: dict[str, tuple[int, ...]] = {
    "pima": (20, 5, 5),
    "breast_cancer": (20, 10, 10),
}
DEFAULT_HIDDEN: tuple[int, ...] = (20, 10, 10)

#: The study's learning rates (docs/protocol.md, section 3); 0.01 for any other table.
LR_PRESETS: dict[str, float] = {"pima": 0.01, "breast_cancer": 0.001}
DEFAULT_LR = 0.01


@dataclass(frozen=True)
class Architecture:
    """Layer widths from input to the two output logits, e.g. ``(8, 20, 5, 5, 2)``."""

    sizes: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or any(int(s) < 1 for s in self.sizes):
            raise ParameterError(f"layer sizes must be positive integers; got {self.sizes}")

    @property
    def n_params(self) -> int:
        return sum((a + 1) * b for a, b in pairwise(self.sizes))

    def __str__(self) -> str:
        return "-".join(str(s) for s in self.sizes)


def hidden_for(dataset_name: str) -> tuple[int, ...]:
    """The hidden layers of ``dataset_name``'s preset (the generic default otherwise)."""
    return HIDDEN_PRESETS.get(dataset_name, DEFAULT_HIDDEN)


def lr_for(dataset_name: str) -> float:
    return LR_PRESETS.get(dataset_name, DEFAULT_LR)


def parse_layers(text: str | Sequence[int]) -> tuple[int, ...]:
    """Parse ``"20,10,10"`` (or a sequence) into hidden layer sizes."""
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            sizes = tuple(int(p) for p in parts)
        except ValueError:
            raise ParameterError(
                f"--layers must be comma-separated positive integers like 20,10,10; got {text!r}"
            ) from None
    else:
        sizes = tuple(int(s) for s in text)
    if not sizes or any(s < 1 for s in sizes):
        raise ParameterError(f"hidden layer sizes must be positive integers; got {text!r}")
    return sizes


def architecture(n_features: int, hidden: Sequence[int], n_classes: int = 2) -> Architecture:
    return Architecture((int(n_features), *(int(h) for h in hidden), int(n_classes)))


def build_mlp(arch: Architecture):
    """A ``torch.nn.Sequential`` of Linear and ReLU layers for ``arch``."""
    from torch import nn

    layers: list = []
    sizes = arch.sizes
    for i, (a, b) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
