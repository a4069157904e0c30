"""Feature scaling as an explicit choice of every run.

The study never says how it preprocessed its features, and the choice moves its
conclusions: with DP-SGD's fixed clip bound C = 1, raw PIMA columns (glucose in the
hundreds) and standardised ones give different models. So the scaling is a setting of
every run, recorded in its ``run_id`` and in ``results.csv``:

============== ======================================================= =======================
``none``       the raw columns, as the study literally describes        nothing private used
``standard``   (x − mean) / std, fitted on the training rows            not covered by ε
``minmax``     (x − min) / (max − min), fitted on the training rows     not covered by ε
``public``     public bounds or statistics the user supplies            nothing private used
``dp_standard`` mean and std released under DP from the training rows   paid with a share of ε
               clipped to public bounds (:mod:`imbalanced_dp.privacy`)
============== ======================================================= =======================

A scaler is an affine map ``(clip(x) − center) / scale`` with optional clipping to public
bounds first (``public`` with bounds, and ``dp_standard``): what it does to new rows (test
rows, a saved model's inputs) is fixed by a few numbers, listed in :class:`FittedScaler`.

Public bounds are per column: ``{"column": [lower, upper], ...}`` (JSON or TOML, or a dict);
or, for ``public``, statistics ``{"column": {"mean": m, "std": s}}``. The bundled datasets
ship bounds from the physiology and the measurements behind their columns, never from the
data (:func:`bundled_bounds`).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..exceptions import DataError, ParameterError

SCALINGS = ("none", "standard", "minmax", "public", "dp_standard")
DEFAULT_SCALING = "standard"
#: Scalings that read the private training rows in the clear (listed as not covered).
FITTED_IN_THE_CLEAR = ("standard", "minmax")
#: Scalings that need public bounds (or, for public, statistics).
NEED_BOUNDS = ("public", "dp_standard")


#: not_covered entry of a scaling fitted on the training rows in the clear.
FITTED_NOTES = {
    "standard": (
        "feature standardisation (mean and standard deviation) is fitted on the private "
        "training split outside DP-SGD: it is not covered by epsilon"
    ),
    "minmax": (
        "feature min-max scaling (minimum and maximum of each column) is fitted on the "
        "private training split outside DP-SGD: it is not covered by epsilon"
    ),
}


def scaling_ledger(kind: str, bounds: PublicBounds | None = None) -> tuple[list, list]:
    """``(not_covered, notes)`` entries of a run's ledger for its scaling."""
    check_scaling(kind)
    if kind in FITTED_NOTES:
        return [FITTED_NOTES[kind]], []
    if kind == "none":
        return [], ["features used as they are (scaling none): nothing fitted on the rows"]
    src = bounds.source if bounds is not None else "given by the user"
    if kind == "public":
        what = "statistics" if bounds is not None and bounds.mean is not None else "bounds"
        return [], [f"features scaled with public {what} ({src}): no private data used"]
    return [], [
        "features standardised with per-column means and standard deviations released "
        f"under DP (Laplace) from the training rows clipped to public bounds ({src}); the "
        "noisy statistics are in the components, and their epsilon is part of the total"
    ]


def check_scaling(name: str) -> str:
    if name not in SCALINGS:
        raise ParameterError(f"scaling must be one of {', '.join(SCALINGS)}; got {name!r}")
    return name


@dataclass(frozen=True)
class FittedScaler:
    """``(clip(x, lower, upper) − center) / scale``, column by column (``lower``/``upper``
    ±inf where nothing is clipped)."""

    kind: str
    center: np.ndarray
    scale: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return (np.clip(X, self.lower, self.upper) - self.center) / self.scale

    @classmethod
    def identity(cls, d: int, kind: str = "none") -> FittedScaler:
        return cls(kind, np.zeros(d), np.ones(d), np.full(d, -np.inf), np.full(d, np.inf))


@dataclass(frozen=True)
class PublicBounds:
    """Public per-column information: ``lower``/``upper`` bounds, and optionally public
    ``mean``/``std`` (for ``public`` scaling by statistics). ``source`` says where they
    come from, in words (for the ledger)."""

    columns: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    source: str = "given by the user"

    def as_tuples(self) -> tuple:
        """A hashable, JSON-able form (what a run spec and its run_id carry)."""
        stats = None if self.mean is None else (tuple(self.mean), tuple(self.std))
        return (self.columns, tuple(self.lower), tuple(self.upper), stats, self.source)

    @classmethod
    def from_tuples(cls, t: Sequence) -> PublicBounds:
        columns, lower, upper, stats, source = t
        mean = std = None
        if stats is not None:
            mean, std = (np.asarray(v, dtype=np.float64) for v in stats)
        return cls(
            tuple(columns),
            np.asarray(lower, dtype=np.float64),
            np.asarray(upper, dtype=np.float64),
            mean,
            std,
            str(source),
        )


def _number(v, column: str, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise DataError(f"public bounds: {what} of column {column!r} must be a number; got {v!r}")
    if not math.isfinite(v):
        raise DataError(f"public bounds: {what} of column {column!r} must be finite; got {v!r}")
    return float(v)


def parse_bounds(
    spec: Mapping, feature_names: Sequence[str], *, source: str = "given by the user"
) -> PublicBounds:
    """Public bounds from a mapping ``{column: [lower, upper]}`` or ``{column: {"lower": ,
    "upper": }}`` or statistics ``{column: {"mean": , "std": }}``, for every feature.

    Raises :class:`~imbalanced_dp.exceptions.DataError` naming the column for a missing
    column, lower ≥ upper, a non-numeric or infinite value, a std ≤ 0."""
    if not isinstance(spec, Mapping) or not spec:
        raise DataError('public bounds must be a table of columns, e.g. {"age": [0, 120]}')
    names = list(feature_names)
    unknown = sorted(set(map(str, spec)) - set(names))
    if unknown:
        raise DataError(
            f"public bounds name column {unknown[0]!r}, which the table does not have; "
            f"its features: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}"
        )
    missing = [c for c in names if c not in spec]
    if missing:
        raise DataError(
            f"public bounds miss column {missing[0]!r} (every feature needs bounds"
            + (f"; {len(missing)} are missing)" if len(missing) > 1 else ")")
        )
    lower, upper, mean, std = [], [], [], []
    has_stats = False
    for c in names:
        v = spec[c]
        if isinstance(v, Mapping) and ("mean" in v or "std" in v):
            has_stats = True
            m = _number(v.get("mean"), c, "the mean")
            s = _number(v.get("std"), c, "the std")
            if not s > 0:
                raise DataError(f"public bounds: the std of column {c!r} must be positive; got {s}")
            mean.append(m)
            std.append(s)
            lo = v.get("lower", -math.inf)
            hi = v.get("upper", math.inf)
            lower.append(float(lo) if lo is not None else -math.inf)
            upper.append(float(hi) if hi is not None else math.inf)
            continue
        if isinstance(v, Mapping):
            v = [v.get("lower"), v.get("upper")]
        if not isinstance(v, list | tuple) or len(v) != 2:
            raise DataError(f"public bounds of column {c!r} must be [lower, upper]; got {v!r}")
        lo, hi = _number(v[0], c, "the lower bound"), _number(v[1], c, "the upper bound")
        if not lo < hi:
            raise DataError(
                f"public bounds of column {c!r}: lower {lo:g} must be below upper {hi:g}"
            )
        lower.append(lo)
        upper.append(hi)
        mean.append(math.nan)
        std.append(math.nan)
    if has_stats and any(math.isnan(m) for m in mean):
        raise DataError("public statistics must give mean and std for every column, or none")
    return PublicBounds(
        tuple(names),
        np.asarray(lower),
        np.asarray(upper),
        np.asarray(mean) if has_stats else None,
        np.asarray(std) if has_stats else None,
        source,
    )


def read_bounds_file(path: str | Path) -> dict:
    """Read a JSON or TOML file of public bounds (see :func:`parse_bounds`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"cannot read public bounds {p}: no such file") from None
    except OSError as exc:
        raise DataError(f"cannot read public bounds {p}: {exc.strerror or exc}") from None
    try:
        if p.suffix.lower() == ".toml":
            return tomllib.loads(text)
        return json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DataError(
            f"public bounds {p} are not valid {p.suffix[1:].upper() or 'JSON'}: {exc}"
        ) from None


def fit_scaler(kind: str, X: np.ndarray, bounds: PublicBounds | None = None) -> FittedScaler:
    """Fit a scaler that needs no privacy budget (``none``, ``standard``, ``minmax``,
    ``public``); ``dp_standard`` is fitted by
    :func:`imbalanced_dp.privacy.dp_standard_scaler` with the run's plan."""
    check_scaling(kind)
    X = np.asarray(X, dtype=np.float64)
    d = X.shape[1]
    inf = np.full(d, np.inf)
    if kind == "none":
        return FittedScaler.identity(d)
    if kind == "standard":
        mean = X.mean(axis=0)
        std = X.std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant column is only centred (as sklearn)
        return FittedScaler(kind, mean, std, -inf, inf)
    if kind == "minmax":
        lo, hi = X.min(axis=0), X.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)
        return FittedScaler(kind, lo, span, -inf, inf)
    if kind == "public":
        if bounds is None:
            raise ParameterError(
                "scaling 'public' needs public bounds or statistics per column (--bounds FILE)"
            )
        if bounds.mean is not None:
            return FittedScaler(kind, bounds.mean, bounds.std, bounds.lower, bounds.upper)
        return FittedScaler(
            kind, bounds.lower, bounds.upper - bounds.lower, bounds.lower, bounds.upper
        )
    raise ParameterError("scaling 'dp_standard' is fitted with the run's privacy plan")


# ---------------------------------------------------------------------- bundled bounds

# Public bounds of the bundled datasets: physiological or measurement ranges, chosen from
# what the columns measure, wide enough for any patient, never read off the data.
_PIMA_BOUNDS = {
    # number of times pregnant: a count; 20 is beyond any recorded woman in such cohorts
    "Pregnancies": [0, 20],
    # plasma glucose 2 h into an oral glucose tolerance test, mg/dL (0 codes "missing");
    # severe hyperglycaemia stays below 400
    "Glucose": [0, 400],
    # diastolic blood pressure, mm Hg (0 codes "missing"); a hypertensive crisis is ~130
    "BloodPressure": [0, 160],
    # triceps skinfold thickness, mm (0 codes "missing"); calipers read up to ~100 mm
    "SkinThickness": [0, 100],
    # 2-hour serum insulin, µU/mL (0 codes "missing"); marked hyperinsulinaemia < 1 000
    "Insulin": [0, 1000],
    # body mass index, kg/m² (0 codes "missing"); extreme obesity stays below 80
    "BMI": [0, 80],
    # diabetes pedigree function: a family-history score (Smith et al. 1988), below 3 by
    # construction of its weights
    "DiabetesPedigreeFunction": [0, 3],
    # age in years: the study enrolled women of 21 and over
    "Age": [21, 100],
}

# Breast Cancer Wisconsin: ten nucleus measurements from digitised fine-needle aspirate
# images (Street et al. 1993), each as the mean, standard error ("se") and mean of the
# three largest ("worst") over the nuclei of an image. Lengths are in pixels of the
# 640 × 480 images at the study's magnification (a nucleus is at most a few tens of pixels
# across); the shape measures are dimensionless ratios bounded by their definitions.
_BC_BASE = {
    "radius": 50.0,  # pixels: a nucleus spans well under a tenth of the image
    "texture": 60.0,  # standard deviation of grey levels (0-255 scale); in practice < 60
    "perimeter": 320.0,  # ≈ 2π × the radius bound
    "area": 8000.0,  # ≈ π × the radius bound²
    "smoothness": 0.3,  # local variation of radius lengths, relative to the radius
    "compactness": 1.5,  # perimeter² / area − 1 (a circle gives 0), normalised
    "concavity": 1.5,  # severity of concave portions of the contour, normalised
    "concave points": 0.4,  # share of the contour in concave portions, normalised
    "symmetry": 0.8,  # relative difference of chords across the major axis
    "fractal dimension": 0.3,  # "coastline" approximation − 1, normalised
}


def _bc_bounds(feature_names: Sequence[str]) -> dict:
    out = {}
    for name in feature_names:
        stat, _, base = name.partition(" ")
        if stat not in ("mean", "worst") and name.endswith(" error"):
            base, stat = name[: -len(" error")], "se"
        if base not in _BC_BASE:
            raise DataError(f"no public bound is known for breast_cancer column {name!r}")
        # a standard error over an image's nuclei is at most half the range of the values
        hi = _BC_BASE[base] * (0.5 if stat == "se" else 1.0)
        out[name] = [0.0, hi]
    return out


def bundled_bounds(dataset_name: str, feature_names: Sequence[str]) -> PublicBounds | None:
    """The public bounds shipped for a bundled dataset (``None`` for other tables)."""
    if dataset_name == "pima":
        spec = _PIMA_BOUNDS
        src = "physiological ranges of the PIMA columns shipped with imbalanced-dp"
    elif dataset_name == "breast_cancer":
        spec = _bc_bounds(feature_names)
        src = (
            "measurement ranges of the Breast Cancer Wisconsin features shipped with imbalanced-dp"
        )
    else:
        return None
    return parse_bounds(spec, feature_names, source=src)
