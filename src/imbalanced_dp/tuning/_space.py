"""The search space of a private hyperparameter search, and its candidates.

A space lists, for each dimension, the values a trial may take; a trial draws every
dimension uniformly and independently (random search). The space is fixed before any
private row is read: that is what makes a trial a mixture of mechanisms chosen independently
of the data (:mod:`imbalanced_dp.privacy`, private selection).

=============== ================================================ =========================
dimension        values                                           default
=============== ================================================ =========================
``lr``           learning rates of (noisy) SGD                    0.03, 0.1, 0.3
``batch_size``   expected batch sizes (the sample rate follows)   64, 128, 256
``epochs``       passes over the search's training rows           20, 50, 100
``clip``         per-example clip bound C                         0.5, 1
``layers``       hidden layers: ``"preset"`` (the dataset's),     [] (a logistic model)
                 a list of widths, ``[]`` for none
``mitigation``   ``none``, ``class_weighted``, ``dpsgd_f``,       all four
                 ``global_adapt`` (their default parameters)
``threshold``    decision rule on P(label 1): ``"argmax"``        "prior"
                 (0.5), ``"prior"`` (the training split's
                 minority share, a released count), a number
``scaling``      ``standard``, ``dp_standard``, ``public``,       "standard"
                 ``none``, ``minmax``
=============== ================================================ =========================

Why this default: every trial a search may draw is paid for, and with a random number of
trials (one in ten searches of the default distribution runs a single trial) a poor value
anywhere in the space is sometimes what is released; so the space holds only values that
train well under DP-SGD's noise. That means small steps (lr · C from 0.015 to 0.3: the
noise each step adds to the weights scales with lr · σ · C / batch), a logistic model (the
preset MLPs, and even one hidden layer of 16 or 8 units, were picked often enough under DP
to lose to the study's configuration), and the decision rule ``prior`` (predict label 1 when
P(label 1) reaches the minority share: the rule that maximises balanced accuracy for
calibrated probabilities) rather than ``argmax``, which under DP often predicts the majority
only. Measured with ``benchmarks/tune_vs_default.py --seeds 60`` on PIMA at total ε 2 and
1: tuned − study configuration +0.018 [+0.010, +0.027] and +0.011 [-0.000, +0.023] balanced
accuracy; the previous default (lr 0.1-1, C 0.5-2, the preset MLP beside the logistic
model) gave -0.005 and -0.003 (40 seeds), and the first one (lr 0.01-0.3, batches 32-256,
epochs 20-200, both rules, the DP scaler) -0.02 to -0.04. On Breast Cancer every version
wins by +0.2 to +0.3.
Hidden layers, ``argmax`` and ``dp_standard`` remain one flag away.

A TOML file gives any of these keys as lists (``lr = [0.05, 0.2]``, ``layers = ["preset",
[16], []]``); the command line's flags replace single dimensions.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import NEED_BOUNDS, SCALINGS
from ..exceptions import SpecError
from ..settings import SETTINGS

DIMENSIONS = ("lr", "batch_size", "epochs", "clip", "layers", "mitigation", "threshold", "scaling")
#: Mitigations a search may try (``threshold`` is the threshold dimension; ``oversample``
#: is refused under DP).
SEARCH_MITIGATIONS = ("none", "class_weighted", "dpsgd_f", "global_adapt")
THRESHOLD_RULES = ("argmax", "prior")
PRESET = "preset"

#: The default space: what a user who knows nothing about the table should try under DP
#: (larger batches and fewer epochs than the study's non-private settings, small steps, a
#: logistic model, each mitigation, the ``prior`` threshold rule; see the module docstring).
DEFAULT_SPACE: dict[str, list] = {
    "lr": [0.03, 0.1, 0.3],
    "batch_size": [64, 128, 256],
    "epochs": [20, 50, 100],
    "clip": [0.5, 1.0],
    "layers": [[]],
    "mitigation": list(SEARCH_MITIGATIONS),
    "threshold": ["prior"],
    "scaling": ["standard"],
}
#: What each dimension takes, in words (``imbalanced-dp tune --help`` and errors).
DIMENSION_HELP = {
    "lr": "learning rates (positive numbers)",
    "batch_size": "expected batch sizes (positive integers)",
    "epochs": "epochs (positive integers)",
    "clip": "clip bounds C (positive numbers)",
    "layers": '"preset" or lists of hidden widths, [] for none',
    "mitigation": ", ".join(SEARCH_MITIGATIONS),
    "threshold": '"argmax", "prior" or numbers in (0, 1)',
    "scaling": ", ".join(SCALINGS),
}


@dataclass(frozen=True)
class Candidate:
    """One trial's settings (a point of the space, its layers resolved)."""

    lr: float
    batch_size: int
    epochs: int
    clip: float
    layers: tuple[int, ...]
    mitigation: str
    threshold: str | float
    scaling: str

    def to_dict(self) -> dict:
        return {
            "lr": self.lr,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "clip": self.clip,
            "layers": list(self.layers),
            "mitigation": self.mitigation,
            "threshold": self.threshold,
            "scaling": self.scaling,
        }


def _bad(dim: str, got, why: str = "") -> SpecError:
    extra = f" ({why})" if why else ""
    return SpecError(
        f"search space {dim!r}: expected a non-empty list of {DIMENSION_HELP[dim]}{extra}; "
        f"got {got!r}"
    )


def _values(dim: str, raw) -> tuple:
    items = raw if isinstance(raw, list | tuple) else [raw]
    if not items:
        raise _bad(dim, raw, "the space is empty")
    out = []
    for v in items:
        if dim in ("lr", "batch_size", "epochs", "clip"):
            rule = SETTINGS[dim]
            if rule.problem(v) is not None:
                raise _bad(dim, raw, f"{v!r} {rule.problem(v)}")
            out.append(int(v) if rule.integer else float(v))
        elif dim == "layers":
            if v == PRESET:
                out.append(PRESET)
            elif isinstance(v, list | tuple) and all(
                isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v
            ):
                out.append(tuple(int(x) for x in v))
            else:
                raise _bad(dim, raw, f"{v!r} is neither")
        elif dim == "mitigation":
            if v == "threshold":
                raise _bad(
                    dim,
                    raw,
                    'the decision threshold is its own dimension: threshold = ["argmax", "prior"]',
                )
            if v == "oversample":
                from ..mitigations import OVERSAMPLE_REFUSAL

                raise SpecError(f"search space 'mitigation': {OVERSAMPLE_REFUSAL}")
            if v not in SEARCH_MITIGATIONS:
                raise _bad(dim, raw, f"{v!r} is not one of them")
            out.append(str(v))
        elif dim == "threshold":
            if v in THRESHOLD_RULES:
                out.append(str(v))
            elif isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1:
                out.append(float(v))
            else:
                raise _bad(dim, raw, f"{v!r} is not one of them")
        else:  # scaling
            if v not in SCALINGS:
                raise _bad(dim, raw, f"{v!r} is not one of them")
            out.append(str(v))
    return tuple(dict.fromkeys(out))


@dataclass(frozen=True)
class SearchSpace:
    """The values of each dimension (see the module docstring); build it with
    :meth:`from_dict` (validated), :meth:`default` or :func:`load_space`.

    Examples
    --------
    >>> space = SearchSpace.from_dict({"lr": [0.1], "epochs": [10, 20]})
    >>> space.lr, space.epochs, space.mitigation
    ((0.1,), (10, 20), ('none', 'class_weighted', 'dpsgd_f', 'global_adapt'))
    >>> space.size  # 1 lr x 3 batch sizes x 2 epochs x 2 clips x 4 mitigations
    48
    """

    lr: tuple[float, ...]
    batch_size: tuple[int, ...]
    epochs: tuple[int, ...]
    clip: tuple[float, ...]
    layers: tuple
    mitigation: tuple[str, ...]
    threshold: tuple
    scaling: tuple[str, ...]

    @classmethod
    def default(cls) -> SearchSpace:
        return cls.from_dict({})

    @classmethod
    def from_dict(cls, values: Mapping, *, base: Mapping | None = None) -> SearchSpace:
        """A space from ``values`` (dimension → list), the other dimensions from ``base``
        (default: :data:`DEFAULT_SPACE`). Unknown keys, empty or bad lists raise
        :class:`~imbalanced_dp.exceptions.SpecError` naming the dimension."""
        unknown = sorted(set(values) - set(DIMENSIONS))
        if unknown:
            raise SpecError(
                f"unknown search space key {unknown[0]!r}; the dimensions are: "
                + ", ".join(DIMENSIONS)
            )
        merged = {**(DEFAULT_SPACE if base is None else base), **values}
        return cls(**{d: _values(d, merged[d]) for d in DIMENSIONS})

    def with_values(self, **values) -> SearchSpace:
        """This space with some dimensions replaced (``None`` values are ignored)."""
        given = {k: v for k, v in values.items() if v is not None}
        return SearchSpace.from_dict(given, base=self.to_dict()) if given else self

    @property
    def size(self) -> int:
        """The number of distinct points."""
        return math.prod(len(getattr(self, d)) for d in DIMENSIONS)

    def to_dict(self) -> dict:
        out = {}
        for d in DIMENSIONS:
            out[d] = [list(v) if isinstance(v, tuple) else v for v in getattr(self, d)]
        return out

    def sample(self, rng: np.random.Generator, preset: tuple[int, ...]) -> Candidate:
        """One trial's settings: every dimension drawn uniformly and independently."""

        def pick(values):
            return values[int(rng.integers(len(values)))]

        layers = pick(self.layers)
        return Candidate(
            lr=pick(self.lr),
            batch_size=pick(self.batch_size),
            epochs=pick(self.epochs),
            clip=pick(self.clip),
            layers=tuple(preset) if layers == PRESET else tuple(layers),
            mitigation=pick(self.mitigation),
            threshold=pick(self.threshold),
            scaling=pick(self.scaling),
        )

    def check(self, *, n_rows: int, has_bounds: bool) -> SearchSpace:
        """This space for a search on ``n_rows`` training rows: batch sizes above them are
        left out (all of them above is refused), a scaling that needs public bounds is
        refused without them. Raises :class:`~imbalanced_dp.exceptions.SpecError`."""
        batches = tuple(b for b in self.batch_size if b <= n_rows)
        if not batches:
            raise SpecError(
                "search space 'batch_size': every batch size "
                f"({', '.join(map(str, self.batch_size))}) is above the {n_rows} rows a "
                "candidate trains on; give smaller ones"
            )
        need = [s for s in self.scaling if s in NEED_BOUNDS]
        if need and not has_bounds:
            raise SpecError(
                f"search space 'scaling': {', '.join(need)} needs public bounds of every "
                "column (--bounds FILE); only the bundled datasets ship them"
            )
        return SearchSpace(
            lr=self.lr,
            batch_size=batches,
            epochs=self.epochs,
            clip=self.clip,
            layers=self.layers,
            mitigation=self.mitigation,
            threshold=self.threshold,
            scaling=self.scaling,
        )


def load_space(path: str | Path) -> dict:
    """The dimensions a TOML file gives (validated by :meth:`SearchSpace.from_dict`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"cannot read search space {p}: no such file") from None
    except OSError as exc:
        raise SpecError(f"cannot read search space {p}: {exc.strerror or exc}") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{p} is not valid TOML: {exc}") from None
    SearchSpace.from_dict(d)  # validate now, naming the file's dimension
    return d


def parse_dimension(dim: str, text: str) -> list:
    """A command-line value of one dimension: comma-separated values; ``layers`` separates
    alternatives with ``/`` (``preset/16/32,16/none``, ``none`` for no hidden layer)."""
    if dim == "layers":
        out: list = []
        for part in (p.strip() for p in text.split("/")):
            if not part:
                continue
            if part in (PRESET, "none"):
                out.append(PRESET if part == PRESET else [])
                continue
            try:
                out.append([int(x) for x in part.split(",") if x.strip()])
            except ValueError:
                raise _bad(dim, text, "alternatives separated by /, widths by commas") from None
        return out
    out = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        try:
            num = float(item)
            out.append(int(num) if num.is_integer() and dim in ("batch_size", "epochs") else num)
        except ValueError:
            out.append(item)
    return out
