"""Study specifications: a TOML file, command-line flags or a preset, expanded into runs.

A study is the grid datasets × minority fractions × privacy levels × mitigations × seeds,
with the training settings shared by all its runs::

    name = "my-study"                       # default: the file's name
    datasets = ["pima", {csv = "data.csv", target = "outcome", positive = "yes"}]
    minority_fractions = ["natural", 0.2, 0.1, 0.05]
    privacy = ["none", 8, 4, 2, 1]          # "none" or target epsilons
    delta = "auto"                          # 1e-4, or smaller for tables above 1 000 rows
    reproducible = true                     # research mode: noise from the seed (see below)
    seeds = 10                              # seeds 0..9, or an explicit list [0, 3, 7]
    epochs = 500
    batch_size = 64
    lr = "preset"                           # the dataset's preset, or a number
    clip = 1.0
    layers = "preset"                       # the dataset's preset, or e.g. [20, 10, 10]
    accountant = "prv"                      # or "rdp"
    engine = "fast"                         # or "opacus"
    test_fraction = 0.2
    imbalance_method = "subsample_minority" # or "undersample_majority"
    mitigations = ["none"]                  # "class_weighted", "dpsgd_f", "global_adapt"
    attacks = []                            # "loss", "lira": membership inference;
                                            # "inversion": attribute inference

A CSV path in a spec file is relative to the file's folder.

``reproducible = true`` (the default of a study) is research mode: sampling and noise derive
from each run's seed and whole setting, so the study is reproducible bit for bit and its
runs at different settings have independent noise; every ledger then says that the
guarantee assumes the seeds stay secret. ``reproducible = false`` draws a secret key for
every run instead (PRIVACY.md rule 9).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..data import IMBALANCE_METHODS
from ..engines import engine_names
from ..exceptions import SpecError
from ..privacy import ACCOUNTANTS
from ._runspec import DatasetRef, RunSpec

KEYS = (
    "name",
    "datasets",
    "minority_fractions",
    "privacy",
    "delta",
    "reproducible",
    "seeds",
    "epochs",
    "batch_size",
    "lr",
    "clip",
    "layers",
    "accountant",
    "engine",
    "test_fraction",
    "imbalance_method",
    "mitigations",
    "mitigation_params",
    "attacks",
)
ATTACKS = ("loss", "lira", "inversion")


@dataclass
class StudySpec:
    """A validated study specification (see the module docstring for the format).

    Examples
    --------
    >>> from imbalanced_dp import preset
    >>> spec = preset("imbalance")
    >>> spec.minority_fractions, spec.privacy, len(spec.seeds)
    ([None, 0.2, 0.1, 0.05], [None, 8.0, 2.0, 1.0], 10)
    >>> len(spec.expand())
    320
    """

    name: str = "study"
    datasets: list[DatasetRef] = field(default_factory=list)
    minority_fractions: list[float | None] = field(default_factory=lambda: [None])
    privacy: list[float | None] = field(default_factory=lambda: [None, 8.0, 4.0, 2.0, 1.0])
    delta: float | None = None
    reproducible: bool = True
    seeds: list[int] = field(default_factory=lambda: list(range(10)))
    epochs: int = 500
    batch_size: int = 64
    lr: float | None = None
    clip: float = 1.0
    layers: tuple[int, ...] | None = None
    accountant: str = "prv"
    engine: str = "fast"
    test_fraction: float = 0.2
    imbalance_method: str = "subsample_minority"
    mitigations: list[str] = field(default_factory=lambda: ["none"])
    mitigation_params: dict = field(default_factory=dict)
    attacks: list[str] = field(default_factory=list)

    def expand(self) -> list[RunSpec]:
        """Every run of the grid. Mitigations apply to private runs only: a non-private run
        is the common reference of all of them."""
        runs = []
        for ds in self.datasets:
            for frac in self.minority_fractions:
                for eps in self.privacy:
                    mits = ["none"] if eps is None else self.mitigations
                    for mit in mits:
                        params = self.mitigation_params.get(mit, {}) if mit != "none" else {}
                        for seed in self.seeds:
                            runs.append(
                                RunSpec(
                                    dataset=ds,
                                    seed=seed,
                                    epsilon=eps,
                                    delta=self.delta,
                                    epochs=self.epochs,
                                    batch_size=self.batch_size,
                                    lr=self.lr,
                                    clip=self.clip,
                                    layers=self.layers,
                                    accountant=self.accountant,
                                    engine=self.engine,
                                    test_fraction=self.test_fraction,
                                    minority_fraction=frac,
                                    imbalance_method=self.imbalance_method,
                                    mitigation=mit,
                                    mitigation_params=tuple(sorted(params.items())),
                                    reproducible=self.reproducible,
                                )
                            )
        return runs

    def to_dict(self) -> dict:
        d = asdict(self)
        d["datasets"] = [ds.to_dict() for ds in self.datasets]
        d["minority_fractions"] = ["natural" if f is None else f for f in self.minority_fractions]
        d["privacy"] = ["none" if e is None else e for e in self.privacy]
        d["delta"] = "auto" if self.delta is None else self.delta
        d["lr"] = "preset" if self.lr is None else self.lr
        d["layers"] = "preset" if self.layers is None else list(self.layers)
        return d


def _err(key: str, expected: str, got) -> SpecError:
    return SpecError(f"study spec key {key!r}: expected {expected}; got {got!r}")


def _pos_number(key: str, v, *, integer: bool = False, upper: float | None = None):
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    if integer:
        ok = ok and float(v).is_integer()
    if upper is not None:
        ok = ok and v < upper
    if not ok:
        what = "a positive integer" if integer else "a positive number"
        if upper is not None:
            what += f" below {upper:g}"
        raise _err(key, what, v)
    return int(v) if integer else float(v)


def _choice(key: str, v, options) -> str:
    if v not in options:
        raise _err(key, "one of " + ", ".join(repr(o) for o in options), v)
    return v


def _dataset(v, base: Path | None) -> DatasetRef:
    from ..data import dataset_names

    if isinstance(v, str):
        if v not in dataset_names():
            raise _err(
                "datasets",
                f"a dataset name ({', '.join(dataset_names())}) or a table "
                '{csv = "file.csv", target = "column"}',
                v,
            )
        return DatasetRef(name=v)
    if isinstance(v, dict):
        unknown = set(v) - {"csv", "target", "positive"}
        if unknown or "csv" not in v or "target" not in v:
            raise _err(
                "datasets", 'a table {csv = "file.csv", target = "column", positive = ...}', v
            )
        path = Path(str(v["csv"]))
        if base is not None and not path.is_absolute():
            path = base / path
        pos = v.get("positive")
        return DatasetRef(
            csv=str(path), target=str(v["target"]), positive=None if pos is None else str(pos)
        )
    raise _err("datasets", "a list of dataset names or tables", v)


def spec_from_dict(d: dict, *, base: Path | None = None, name: str = "study") -> StudySpec:
    """Validate a spec mapping (from TOML or a preset). Unknown keys and bad values raise
    :class:`~imbalanced_dp.exceptions.SpecError` naming the key and what is expected."""
    unknown = sorted(set(d) - set(KEYS))
    if unknown:
        raise SpecError(f"unknown study spec key {unknown[0]!r}; known keys: {', '.join(KEYS)}")
    spec = StudySpec(name=str(d.get("name", name)))
    if "datasets" not in d:
        raise SpecError("study spec: 'datasets' is required (names or CSV tables)")
    ds = d["datasets"]
    if not isinstance(ds, list) or not ds:
        raise _err("datasets", "a non-empty list", ds)
    spec.datasets = [_dataset(v, base) for v in ds]
    if "minority_fractions" in d:
        fr = d["minority_fractions"]
        if not isinstance(fr, list) or not fr:
            raise _err(
                "minority_fractions", 'a non-empty list of "natural" or numbers in (0, 1)', fr
            )
        out = []
        for v in fr:
            if v == "natural":
                out.append(None)
            else:
                ok = isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 1
                if not ok:
                    raise _err("minority_fractions", '"natural" or numbers in (0, 1)', v)
                out.append(float(v))
        spec.minority_fractions = out
    if "privacy" in d:
        pr = d["privacy"]
        if not isinstance(pr, list) or not pr:
            raise _err("privacy", 'a non-empty list of "none" or positive epsilons', pr)
        out_p: list[float | None] = []
        for v in pr:
            out_p.append(None if v == "none" else _pos_number("privacy", v))
        spec.privacy = out_p
    if "delta" in d:
        v = d["delta"]
        spec.delta = None if v == "auto" else _pos_number("delta", v, upper=1.0)
    if "reproducible" in d:
        v = d["reproducible"]
        if not isinstance(v, bool):
            raise _err("reproducible", "true (research mode) or false (secret noise)", v)
        spec.reproducible = v
    if "seeds" in d:
        s = d["seeds"]
        if isinstance(s, int) and not isinstance(s, bool):
            if s < 1:
                raise _err("seeds", "a count >= 1 or a list of non-negative integers", s)
            spec.seeds = list(range(s))
        elif (
            isinstance(s, list)
            and s
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in s)
        ):
            if len(set(s)) != len(s):
                raise _err("seeds", "distinct seeds", s)
            spec.seeds = list(s)
        else:
            raise _err("seeds", "a count >= 1 or a list of non-negative integers", s)
    for key in ("epochs", "batch_size"):
        if key in d:
            setattr(spec, key, _pos_number(key, d[key], integer=True))
    if "lr" in d:
        spec.lr = None if d["lr"] == "preset" else _pos_number("lr", d["lr"])
    if "clip" in d:
        spec.clip = _pos_number("clip", d["clip"])
    if "layers" in d:
        v = d["layers"]
        if v == "preset":
            spec.layers = None
        elif (
            isinstance(v, list)
            and v
            and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)
        ):
            spec.layers = tuple(v)
        else:
            raise _err("layers", '"preset" or a list of positive integers like [20, 10, 10]', v)
    if "accountant" in d:
        spec.accountant = _choice("accountant", d["accountant"], tuple(ACCOUNTANTS))
    if "engine" in d:
        spec.engine = _choice("engine", d["engine"], tuple(engine_names()))
    if "test_fraction" in d:
        spec.test_fraction = _pos_number("test_fraction", d["test_fraction"], upper=1.0)
    if "imbalance_method" in d:
        spec.imbalance_method = _choice(
            "imbalance_method", d["imbalance_method"], IMBALANCE_METHODS
        )
    if "mitigations" in d:
        from ..mitigations import mitigation_names

        m = d["mitigations"]
        if not isinstance(m, list) or not m:
            raise _err("mitigations", "a non-empty list of " + ", ".join(mitigation_names()), m)
        spec.mitigations = [_choice("mitigations", x, tuple(mitigation_names())) for x in m]
    if "mitigation_params" in d:
        mp = d["mitigation_params"]
        if not isinstance(mp, dict) or not all(isinstance(v, dict) for v in mp.values()):
            raise _err(
                "mitigation_params", "a table of tables, e.g. [mitigation_params.dpsgd_f]", mp
            )
        spec.mitigation_params = {k: dict(v) for k, v in mp.items()}
    if "attacks" in d:
        a = d["attacks"]
        if not isinstance(a, list):
            raise _err("attacks", "a list of " + ", ".join(ATTACKS), a)
        spec.attacks = [_choice("attacks", x, ATTACKS) for x in a]
    return spec


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a TOML study spec."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"cannot read study spec {p}: no such file") from None
    except OSError as exc:
        raise SpecError(f"cannot read study spec {p}: {exc.strerror or exc}") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{p} is not valid TOML: {exc}") from None
    return spec_from_dict(d, base=p.parent, name=p.stem)


PRESETS: dict[str, dict] = {
    "paper": {
        "name": "paper",
        "datasets": ["pima", "breast_cancer"],
        "minority_fractions": ["natural"],
        "privacy": ["none", 8, 2, 1],
        "delta": 1e-4,
        "seeds": 10,
        "epochs": 500,
        "batch_size": 64,
        "clip": 1.0,
    },
    "imbalance": {
        "name": "imbalance",
        "datasets": ["pima", "breast_cancer"],
        "minority_fractions": ["natural", 0.2, 0.1, 0.05],
        "privacy": ["none", 8, 2, 1],
        "delta": 1e-4,
        "seeds": 10,
        "epochs": 500,
        "batch_size": 64,
        "clip": 1.0,
    },
    "mitigation": {
        "name": "mitigation",
        "datasets": ["pima", "breast_cancer"],
        "minority_fractions": ["natural"],
        "privacy": ["none", 8, 2, 1],
        "delta": 1e-4,
        "seeds": 10,
        "epochs": 500,
        "batch_size": 64,
        "clip": 1.0,
        "mitigations": ["none", "class_weighted", "dpsgd_f", "global_adapt"],
    },
}


def preset(name: str) -> StudySpec:
    """A named preset: ``paper`` (what ``reproduce`` runs), ``imbalance`` or ``mitigation``."""
    if name not in PRESETS:
        raise SpecError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return spec_from_dict(PRESETS[name], name=name)
