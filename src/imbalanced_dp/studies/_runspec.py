"""Run specifications: everything that determines one run's result, and its ``run_id``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

from ..data import (
    DEFAULT_SCALING,
    NEED_BOUNDS,
    Dataset,
    PublicBounds,
    bundled_bounds,
    check_scaling,
    load_csv,
    load_dataset,
)
from ..exceptions import ParameterError
from ..models import architecture, hidden_for, lr_for
from ..privacy import DEFAULT_ACCOUNTANT, check_accountant, default_delta
from ..settings import check_setting
from ..tuning import DEFAULT_HOLDOUT, DEFAULT_OBJECTIVE, DEFAULT_TRIALS, SearchSettings, SearchSpace

#: Share of ε the DP scaler (scaling "dp_standard") spends by default.
DEFAULT_SCALING_SHARE = 0.1
#: Bumped whenever a change of the code changes results for the same spec; part of run_id.
#: 2: noise keys (secret by default, research mode from the seed and the whole setting),
#: per-step counts accounted with the gradients as one mechanism, 52-bit open uniforms.
RESULTS_VERSION = 2
#: Bumped whenever a change of the private search changes a tuned run's result for the same
#: spec; part of a tuned run's run_id only.
TUNED_RESULTS_VERSION = 1
#: How a run's hyperparameters are set: ``none``, the fixed settings of the spec (every run
#: before tuning was a setting); ``private``, a private hyperparameter search on the run's
#: training split (:func:`imbalanced_dp.tuning.private_search`) whose ε is the run's.
TUNINGS = ("none", "private")
#: The fields of a spec that a tuned run does not use (the search chooses them, or they
#: concern the fixed run only): left out of a tuned run's dict and run_id.
FIXED_ONLY = (
    "epochs",
    "batch_size",
    "lr",
    "clip",
    "accountant",
    "engine",
    "mitigation",
    "mitigation_params",
    "scaling",
    "scaling_share",
)
TUNING_FIELDS = (
    "tuning",
    "tuning_trials",
    "tuning_objective",
    "tuning_holdout",
    "tuning_space",
)


@dataclass(frozen=True)
class DatasetRef:
    """A registered dataset by ``name``, or a user's ``csv`` table with its ``target``
    column, optional ``positive`` value, field separator ``sep`` and the columns to use
    (``features``) or leave out (``drop``).

    Everything but the table's path enters the ``run_id`` of its runs (the table's content
    does, through its fingerprint), so two selections of one table never share results."""

    name: str | None = None
    csv: str | None = None
    target: str | None = None
    positive: str | None = None
    sep: str | None = None
    features: tuple[str, ...] | None = None
    drop: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.name is None) == (self.csv is None):
            raise ParameterError("give either a dataset name or a CSV path (with its target)")
        if self.csv is not None and not self.target:
            raise ParameterError(f"the CSV table {self.csv} needs a target column (--target)")
        for key in ("features", "drop"):
            v = getattr(self, key)
            if v is not None and not isinstance(v, tuple):
                object.__setattr__(self, key, tuple(str(c) for c in v))
        if self.name is not None and (
            self.sep is not None or self.features is not None or self.drop is not None
        ):
            raise ParameterError(
                "--sep, --features and --drop apply to --csv tables only, not to the "
                f"bundled dataset {self.name!r}"
            )
        if self.features is not None and self.drop is not None:
            raise ParameterError("give either --features or --drop, not both")
        if self.sep is not None:
            from ..data import parse_sep

            object.__setattr__(self, "sep", parse_sep(self.sep))
            if self.sep == ",":
                object.__setattr__(self, "sep", None)  # the default: same run_ids as before

    def load(self, test_fraction: float = 0.2) -> Dataset:
        return _load(self, test_fraction)

    @property
    def label(self) -> str:
        if self.name is not None:
            return self.name
        from ..data import table_name

        return table_name(self.csv or "")

    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if v is not None}
        for key in ("features", "drop"):
            if key in d:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DatasetRef:
        return cls(**d)


@lru_cache(maxsize=32)
def _load(ref: DatasetRef, test_fraction: float) -> Dataset:
    if ref.name is not None:
        return load_dataset(ref.name)
    return load_csv(
        ref.csv,
        ref.target,
        positive=ref.positive,
        test_fraction=test_fraction,
        sep=ref.sep,
        features=ref.features,
        drop=ref.drop,
    )


def _frozen(x):
    """Lists to tuples, all the way down (bounds read from JSON)."""
    if isinstance(x, list | tuple):
        return tuple(_frozen(v) for v in x)
    return x


def _listed(x):
    if isinstance(x, list | tuple):
        return [_listed(v) for v in x]
    return x


@dataclass(frozen=True)
class RunSpec:
    """One run of a study. ``epsilon`` is ``None`` for a non-private run; ``lr`` and
    ``layers`` (hidden sizes) default to the dataset's preset; ``delta`` to the one δ policy
    (:func:`~imbalanced_dp.privacy.default_delta` of the table's rows: 1e-4 for the bundled
    datasets); ``minority_fraction`` is ``None`` for the natural class balance.

    ``scaling`` is the feature scaling (:mod:`imbalanced_dp.data._scaling`: ``none``,
    ``standard``, ``minmax``, ``public``, ``dp_standard``); ``bounds`` the public bounds
    (:meth:`PublicBounds.as_tuples`) of ``public`` and ``dp_standard``, else the bundled
    dataset's; ``scaling_share`` the share of ε the DP scaler spends.

    ``reproducible`` is research mode: sampling and noise derive from the seed and the
    run's whole setting, so the run is reproducible bit for bit (studies and ``reproduce``
    use it); otherwise they come from a secret key drawn when training starts.

    ``tuning = "private"`` makes the run a private hyperparameter search on its training
    split (the split of the fixed run of the same seed, dataset and minority fraction):
    ``tuning_trials`` expected trials, maximising ``tuning_objective`` on ``tuning_holdout``
    of the training rows, in the space ``tuning_space`` (dimension → values, the others
    from :data:`~imbalanced_dp.tuning.DEFAULT_SPACE`; its ``"preset"`` layers are
    ``layers``); the search and its final model spend ``epsilon`` together. A
    non-private tuned run is the same search without privacy. Such a run ignores the
    fixed settings (:data:`FIXED_ONLY`) and always trains on the fast engine."""

    dataset: DatasetRef
    seed: int
    epsilon: float | None
    delta: float | None = None
    epochs: int = 500
    batch_size: int = 64
    lr: float | None = None
    clip: float = 1.0
    layers: tuple[int, ...] | None = None
    accountant: str = DEFAULT_ACCOUNTANT
    engine: str = "fast"
    test_fraction: float = 0.2
    minority_fraction: float | None = None
    imbalance_method: str = "subsample_minority"
    mitigation: str = "none"
    mitigation_params: tuple[tuple[str, object], ...] = field(default_factory=tuple)
    reproducible: bool = False
    scaling: str = DEFAULT_SCALING
    scaling_share: float = DEFAULT_SCALING_SHARE
    bounds: tuple | None = None
    tuning: str = "none"
    tuning_trials: float = DEFAULT_TRIALS
    tuning_objective: str = DEFAULT_OBJECTIVE
    tuning_holdout: float = DEFAULT_HOLDOUT
    tuning_space: tuple | None = None

    def __post_init__(self) -> None:
        if self.epsilon is not None:
            check_setting("epsilon", self.epsilon)
        check_accountant(self.accountant)
        if self.delta is not None:
            check_setting("delta", self.delta)
        check_setting("epochs", self.epochs)
        check_setting("batch_size", self.batch_size)
        if self.lr is not None:
            check_setting("lr", self.lr)
        check_setting("clip", self.clip)
        check_setting("test_fraction", self.test_fraction)
        if self.minority_fraction is not None:
            check_setting("minority_fraction", self.minority_fraction)
        check_setting("seed", self.seed)
        check_scaling(self.scaling)
        check_setting("share", self.scaling_share, label="the DP scaler's share of epsilon")
        if self.scaling == "dp_standard" and self.epsilon is None:
            raise ParameterError(
                "scaling 'dp_standard' spends a share of epsilon: a non-private run has "
                "none; use scaling 'standard' for the non-private reference"
            )
        if self.bounds is not None and not isinstance(self.bounds, tuple):
            object.__setattr__(self, "bounds", _frozen(self.bounds))
        if self.tuning not in TUNINGS:
            raise ParameterError(f"tuning must be one of {', '.join(TUNINGS)}; got {self.tuning!r}")
        if self.tuning_space is not None and not isinstance(self.tuning_space, tuple):
            if not isinstance(self.tuning_space, dict):
                raise ParameterError(
                    "tuning_space must map search dimensions to lists of values; got "
                    f"{self.tuning_space!r}"
                )
            object.__setattr__(self, "tuning_space", _frozen_space(self.tuning_space))
        if self.tuned:
            self.search_settings()  # validates the objective, the trials and the holdout
            self.search_space()  # validates the space

    @property
    def tuned(self) -> bool:
        """Whether the run's hyperparameters come from a search (``tuning`` not ``none``)."""
        return self.tuning != "none"

    def search_space(self) -> SearchSpace:
        """The space of a tuned run's search: ``tuning_space`` over the default space."""
        return SearchSpace.from_dict(_space_dict(self.tuning_space))

    def search_settings(self) -> SearchSettings:
        """The settings of a tuned run's search."""
        return SearchSettings(
            objective=self.tuning_objective,
            trials=float(self.tuning_trials),
            holdout=float(self.tuning_holdout),
        )

    def public_bounds(self) -> PublicBounds | None:
        """The public bounds of this run's scaling: the spec's, else the bundled dataset's
        (``None`` when neither exists)."""
        if self.bounds is not None:
            return PublicBounds.from_tuples(self.bounds)
        ds = self.dataset.load(self.test_fraction)
        return bundled_bounds(ds.name if self.dataset.name else "", ds.feature_names)

    @property
    def private(self) -> bool:
        return self.epsilon is not None

    @property
    def privacy(self) -> str:
        return "dp" if self.private else "none"

    def resolve(self) -> RunSpec:
        """Fill the preset learning rate and layers of the dataset, δ by the policy, and the
        bundled public bounds of a scaling that needs them."""
        name = self.dataset.name or ""
        delta = self.delta
        if delta is None:
            delta = default_delta(self.dataset.load(self.test_fraction).n_rows)
        if self.tuned:
            return self._resolve_tuned(float(delta), name)
        bounds = self.bounds
        if bounds is None and self.scaling in NEED_BOUNDS:
            found = self.public_bounds()
            if found is None:
                raise ParameterError(
                    f"scaling {self.scaling!r} needs public bounds for every column of "
                    f"{self.dataset.label}: give --bounds FILE (JSON or TOML, e.g. "
                    '{"age": [0, 120], ...}); only the bundled datasets ship them'
                )
            bounds = found.as_tuples()
        return replace(
            self,
            lr=self.lr if self.lr is not None else lr_for(name),
            layers=tuple(self.layers) if self.layers is not None else hidden_for(name),
            delta=float(delta),
            bounds=bounds if self.scaling in NEED_BOUNDS else None,
        )

    def _resolve_tuned(self, delta: float, name: str) -> RunSpec:
        """A tuned run resolved: the whole search space (scalings that need public bounds
        left out of the default space of a table without them; refused when the spec's
        space names one), the bounds its scalings need, δ and the preset layers."""
        space = self.search_space()
        given = _space_dict(self.tuning_space)
        bounds = self.bounds
        need = [s for s in space.scaling if s in NEED_BOUNDS]
        if need and bounds is None:
            found = self.public_bounds()
            if found is not None:
                bounds = found.as_tuples()
            elif "scaling" in given:
                raise ParameterError(
                    f"tuning space scaling {', '.join(need)} needs public bounds for every "
                    f"column of {self.dataset.label}: give the study key bounds (a JSON or "
                    "TOML file); only the bundled datasets ship them"
                )
            else:
                kept = [s for s in space.scaling if s not in NEED_BOUNDS] or ["standard"]
                space = space.with_values(scaling=kept)
        need = [s for s in space.scaling if s in NEED_BOUNDS]
        return replace(
            self,
            layers=tuple(self.layers) if self.layers is not None else hidden_for(name),
            delta=delta,
            bounds=bounds if need else None,
            engine="fast",
            tuning_space=_frozen_space(space.to_dict()),
        )

    def noise_setting(self) -> dict:
        """What identifies this run besides its seed, for its research-mode noise key: the
        resolved spec without the engine (which does not change the mechanism) and the
        table's path (its content is the data, not the setting)."""
        d = self.resolve().to_dict()
        d.pop("engine", None)
        d.pop("seed", None)
        d["dataset"] = {k: v for k, v in d["dataset"].items() if k != "csv"}
        return d

    def arch(self, n_features: int):
        return architecture(n_features, self.resolve().layers or ())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dataset"] = self.dataset.to_dict()
        d["layers"] = list(self.layers) if self.layers is not None else None
        d["mitigation_params"] = dict(self.mitigation_params)
        d["bounds"] = _listed(self.bounds)
        if self.tuned:
            # a tuned run: what the search uses, not the fixed settings it ignores
            for key in FIXED_ONLY:
                d.pop(key)
            d["tuning_space"] = (
                None if self.tuning_space is None else _space_dict(self.tuning_space)
            )
            return d
        for key in TUNING_FIELDS:
            d.pop(key)  # the default: the same spec (and run_id) as before tuning was a key
        if self.scaling == DEFAULT_SCALING:
            # the default scaling: the same spec (and run_id) as before scaling was a setting
            for key in ("scaling", "scaling_share", "bounds"):
                d.pop(key)
        elif self.scaling != "dp_standard":
            d.pop("scaling_share")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        d = dict(d)
        d["dataset"] = DatasetRef.from_dict(d["dataset"])
        if d.get("layers") is not None:
            d["layers"] = tuple(d["layers"])
        d["mitigation_params"] = tuple(sorted((d.get("mitigation_params") or {}).items()))
        if d.get("bounds") is not None:
            d["bounds"] = _frozen(d["bounds"])
        if d.get("tuning_space") is not None:
            d["tuning_space"] = _frozen_space(d["tuning_space"])
        return cls(**d)

    def run_id(self, fingerprint: str) -> str:
        """Stable hash of the resolved spec, the data's content and the results version.

        What does not change the result is left out: a CSV's path (its content is in the
        fingerprint) and a non-private run's delta, accountant, clip and noise mode (it has
        no noise; its shuffling always follows the seed)."""
        d = self.resolve().to_dict()
        d["dataset"] = {k: v for k, v in d["dataset"].items() if k != "csv"}
        if not self.private:
            for key in ("delta", "accountant", "clip", "reproducible"):
                if key in d or not self.tuned:
                    d[key] = None
        version: dict = {"v": RESULTS_VERSION}
        if self.tuned:
            version["tuned_v"] = TUNED_RESULTS_VERSION
        payload = json.dumps(
            {"spec": d, "data": fingerprint, **version}, sort_keys=True, default=str
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _frozen_space(space: dict) -> tuple:
    """A search space (dimension → values) as a hashable, ordered tuple."""
    return tuple(
        sorted(
            (str(k), _frozen(list(v) if isinstance(v, list | tuple) else [v]))
            for k, v in dict(space).items()
        )
    )


def _space_dict(space: tuple | None) -> dict:
    """The dimension → values mapping of a frozen space (empty for ``None``)."""
    return {k: _listed(v) for k, v in (space or ())}
