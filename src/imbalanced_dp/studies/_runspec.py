"""Run specifications: everything that determines one run's result, and its ``run_id``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

from ..data import Dataset, load_csv, load_dataset
from ..exceptions import ParameterError
from ..models import architecture, hidden_for, lr_for
from ..privacy import DEFAULT_ACCOUNTANT, check_accountant, default_delta
from ..settings import check_setting

#: Bumped whenever a change of the code changes results for the same spec; part of run_id.
#: 2: noise keys (secret by default, research mode from the seed and the whole setting),
#: per-step counts accounted with the gradients as one mechanism, 52-bit open uniforms.
RESULTS_VERSION = 2


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


@dataclass(frozen=True)
class RunSpec:
    """One run of a study. ``epsilon`` is ``None`` for a non-private run; ``lr`` and
    ``layers`` (hidden sizes) default to the dataset's preset; ``delta`` to the one δ policy
    (:func:`~imbalanced_dp.privacy.default_delta` of the table's rows: 1e-4 for the bundled
    datasets); ``minority_fraction`` is ``None`` for the natural class balance.

    ``reproducible`` is research mode: sampling and noise derive from the seed and the
    run's whole setting, so the run is reproducible bit for bit (studies and ``reproduce``
    use it); otherwise they come from a secret key drawn when training starts."""

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

    @property
    def private(self) -> bool:
        return self.epsilon is not None

    @property
    def privacy(self) -> str:
        return "dp" if self.private else "none"

    def resolve(self) -> RunSpec:
        """Fill the preset learning rate and layers of the dataset, and δ by the policy."""
        name = self.dataset.name or ""
        delta = self.delta
        if delta is None:
            delta = default_delta(self.dataset.load(self.test_fraction).n_rows)
        return replace(
            self,
            lr=self.lr if self.lr is not None else lr_for(name),
            layers=tuple(self.layers) if self.layers is not None else hidden_for(name),
            delta=float(delta),
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
        return d

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        d = dict(d)
        d["dataset"] = DatasetRef.from_dict(d["dataset"])
        if d.get("layers") is not None:
            d["layers"] = tuple(d["layers"])
        d["mitigation_params"] = tuple(sorted((d.get("mitigation_params") or {}).items()))
        return cls(**d)

    def run_id(self, fingerprint: str) -> str:
        """Stable hash of the resolved spec, the data's content and the results version.

        What does not change the result is left out: a CSV's path (its content is in the
        fingerprint) and a non-private run's delta, accountant, clip and noise mode (it has
        no noise; its shuffling always follows the seed)."""
        d = self.resolve().to_dict()
        d["dataset"] = {k: v for k, v in d["dataset"].items() if k != "csv"}
        if not self.private:
            d["delta"] = None
            d["accountant"] = None
            d["clip"] = None
            d["reproducible"] = None
        payload = json.dumps(
            {"spec": d, "data": fingerprint, "v": RESULTS_VERSION}, sort_keys=True, default=str
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:20]
