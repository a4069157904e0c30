"""Study specifications: a TOML file, command-line flags or a preset, expanded into runs.

A study is the grid datasets × minority fractions × privacy levels × mitigations × seeds,
with the training settings shared by all its runs::

    name = "my-study"                       # default: the file's name
    datasets = ["pima", {csv = "data.csv", target = "outcome", positive = "yes"}]
                                            # a table may also say sep = ";" and
                                            # drop = ["id"] or features = ["a", "b"]
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
    accountant = "pld"                      # or "prv", "rdp"
    engine = "fast"                         # or "opacus"
    test_fraction = 0.2
    imbalance_method = "subsample_minority" # or "undersample_majority"
    mitigations = ["none"]                  # "class_weighted", "dpsgd_f", "global_adapt"
    scaling = ["standard"]                  # and/or "none", "minmax", "public", "dp_standard"
    scaling_share = 0.1                     # the share of epsilon dp_standard spends
    bounds = "bounds.json"                  # public bounds of a table's columns (optional)
    tuning = ["none", "private"]            # fixed hyperparameters and/or a private search
    tuning_trials = 10                      # the search's expected number of trials
    tuning_objective = "balanced_accuracy"  # or "minority_recall", "f1", "g_mean"
    tuning_holdout = 0.35                   # share of the training rows scoring the trials
    tuning_space = {lr = [0.03, 0.1]}       # dimensions replacing the default space's
    attacks = []                            # "loss", "lira": membership inference;
                                            # "inversion": attribute inference

A CSV path in a spec file is relative to the file's folder.

``reproducible = true`` (the default of a study) is research mode: sampling and noise derive
from each run's seed and whole setting, so the study is reproducible bit for bit and its
runs at different settings have independent noise; every ledger then says that the
guarantee assumes the seeds stay secret. ``reproducible = false`` draws a secret key for
every run instead (docs/privacy.md, rule 9).

``tuning`` is an axis of the grid like ``scaling``: ``"none"`` (the default) runs the fixed
hyperparameters above; ``"private"`` adds, for every dataset × minority fraction × privacy
level × seed, one run whose hyperparameters come from a private search
(:func:`imbalanced_dp.tuning.private_search`) on that run's training split (the fixed run's
split), with the run's ε covering the search and the final model together, evaluated on the
same test rows. A non-private level runs the same search without privacy (the tuned curve's
own non-private reference). Mitigations and scalings are dimensions of the search, so a
tuned run does not multiply by ``mitigations`` or ``scaling``; it always trains on the fast
engine. ``["none", "private"]`` compares both on the same splits, and the fixed runs keep
the run_ids they have without tuning (adding ``"private"`` to a finished study reuses them).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..data import (
    DEFAULT_SCALING,
    IMBALANCE_METHODS,
    NEED_BOUNDS,
    SCALINGS,
    parse_bounds,
    read_bounds_file,
)
from ..engines import engine_names
from ..exceptions import DataError, SpecError
from ..privacy import ACCOUNTANTS, DEFAULT_ACCOUNTANT
from ..settings import SETTINGS
from ..tuning import (
    DEFAULT_HOLDOUT,
    DEFAULT_OBJECTIVE,
    DEFAULT_SPACE,
    DEFAULT_TRIALS,
    SearchSpace,
)
from ._runspec import DEFAULT_SCALING_SHARE, TUNINGS, DatasetRef, RunSpec

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
    "scaling",
    "scaling_share",
    "bounds",
    "tuning",
    "tuning_trials",
    "tuning_objective",
    "tuning_holdout",
    "tuning_space",
    "attacks",
)
ATTACKS = ("loss", "lira", "inversion")
#: Keys whose values a rerun may extend (more seeds, another ε...): every other key changes
#: the settings of the runs, so a study of the same name with another value is refused.
GRID_KEYS = (
    "name",
    "datasets",
    "minority_fractions",
    "privacy",
    "seeds",
    "mitigations",
    "scaling",
    "tuning",
    "attacks",
)
#: The tuning keys besides ``tuning``: left out of a study's spec dict when it does not tune.
TUNING_KEYS = ("tuning_trials", "tuning_objective", "tuning_holdout", "tuning_space")


def changed_settings(old: dict, new: dict) -> list[str]:
    """The setting keys (not grid axes) whose values differ between two study specs (as
    :meth:`StudySpec.to_dict` writes them); for ``mitigation_params``, only the
    parameters of mitigations both specs name."""
    out = []
    for key in sorted((set(old) | set(new)) - set(GRID_KEYS)):
        a, b = old.get(key), new.get(key)
        if key == "mitigation_params":
            a, b = a or {}, b or {}
            if any(a[m] != b[m] for m in set(a) & set(b)):
                out.append(key)
        elif a != b and key in old and key in new:
            out.append(key)
    return out


#: Every key of a study spec: what it means and its default (``imbalanced-dp study keys``).
KEY_HELP: dict[str, tuple[str, str]] = {
    "name": ("the study's name in the store", "the spec file's name"),
    "datasets": (
        'names (pima, breast_cancer) or tables {csv = "f.csv", target = "col", positive = '
        '..., sep = ";", drop = ["id"] or features = [...]}; a CSV path is relative to the '
        "spec file",
        "required",
    ),
    "minority_fractions": (
        'share of the minority class in the training split: "natural" or numbers in (0, 1)',
        '["natural"]',
    ),
    "privacy": ('"none" (plain SGD) and/or target epsilons', '["none", 8, 4, 2, 1]'),
    "delta": (
        "delta of every DP run, below 1/n",
        '"auto": 1e-4, or smaller for tables above 1 000 rows',
    ),
    "reproducible": (
        "research mode: sampling and noise derive from the seeds (the guarantee then assumes "
        "they stay secret); false draws a secret key per run",
        "true",
    ),
    "seeds": ("a count (seeds 0..N-1) or a list of distinct seeds", "10"),
    "epochs": ("passes over the training split", "500"),
    "batch_size": ("expected batch size (Poisson sampling under DP)", "64"),
    "lr": ('learning rate: "preset" (pima 0.01, breast_cancer 0.001) or a number', '"preset"'),
    "clip": ("per-example clip bound C of DP-SGD", "1.0"),
    "layers": ('hidden layer sizes: "preset" or a list like [20, 10, 10]', '"preset"'),
    "accountant": ('"prv" or "rdp" (Opacus\'s accountants)', '"prv"'),
    "engine": ('"fast" (batched, numba) or "opacus" (the reference)', '"fast"'),
    "test_fraction": ("share of each table held out for testing (stratified)", "0.2"),
    "imbalance_method": (
        'how a minority fraction is reached: "subsample_minority" or "undersample_majority"',
        '"subsample_minority"',
    ),
    "mitigations": (
        'applied to the DP runs: "none", "class_weighted", "dpsgd_f", "global_adapt", "threshold"',
        '["none"]',
    ),
    "mitigation_params": (
        "a table per mitigation, e.g. [mitigation_params.dpsgd_f] aux_share = 0.1",
        "each mitigation's defaults",
    ),
    "scaling": (
        'feature scaling, one or a list: "standard" (fitted on the training rows, not covered '
        'by epsilon), "none" (raw columns), "minmax", "public" (public bounds or statistics), '
        '"dp_standard" (mean and std released under DP with a share of epsilon); the '
        "non-private runs of dp_standard use standard",
        '["standard"]',
    ),
    "scaling_share": ("the share of epsilon that dp_standard spends on the scaler", "0.1"),
    "bounds": (
        'public bounds of a table\'s columns for "public" and "dp_standard": a JSON or TOML '
        "file (relative to the spec) or a table {column = [lower, upper]}",
        "the bundled datasets' own; required for a CSV",
    ),
    "tuning": (
        'how the hyperparameters are set, one or a list: "none" (the fixed settings above), '
        '"private" (a private search on each run\'s training split, its epsilon inside the '
        "run's; the search without privacy for the non-private runs)",
        '["none"]',
    ),
    "tuning_trials": ("the private search's expected number of trials", "10"),
    "tuning_objective": (
        'what the search maximises on held-out training rows: "balanced_accuracy", '
        '"minority_recall", "f1", "g_mean"',
        '"balanced_accuracy"',
    ),
    "tuning_holdout": ("the share of the training rows that scores the trials", "0.35"),
    "tuning_space": (
        "search dimensions replacing the default space's, e.g. {lr = [0.03, 0.1], epochs = "
        "[50, 100]} (lr, batch_size, epochs, clip, layers, mitigation, threshold, scaling)",
        '"default" (imbalanced-dp tune --help)',
    ),
    "attacks": (
        'threats measured after the runs: "loss", "lira" (membership inference and the '
        'epsilon audit), "inversion" (attribute inference and class inversion)',
        "[] (none)",
    ),
}


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
    accountant: str = DEFAULT_ACCOUNTANT
    engine: str = "fast"
    test_fraction: float = 0.2
    imbalance_method: str = "subsample_minority"
    mitigations: list[str] = field(default_factory=lambda: ["none"])
    mitigation_params: dict = field(default_factory=dict)
    scaling: list[str] = field(default_factory=lambda: [DEFAULT_SCALING])
    scaling_share: float = DEFAULT_SCALING_SHARE
    bounds: dict | None = None
    tuning: list[str] = field(default_factory=lambda: ["none"])
    tuning_trials: float = DEFAULT_TRIALS
    tuning_objective: str = DEFAULT_OBJECTIVE
    tuning_holdout: float = DEFAULT_HOLDOUT
    tuning_space: dict | None = None
    attacks: list[str] = field(default_factory=list)

    def expand(self) -> list[RunSpec]:
        """Every run of the grid, in a fixed order. Mitigations apply to private runs only:
        a non-private run is the common reference of all of them; so is the non-private run
        of the ``standard`` scaling for ``dp_standard`` (it has no budget for a DP
        scaler). A tuned run follows the fixed ones of its dataset (see the module
        docstring). Duplicates are kept once."""
        runs: dict[RunSpec, None] = {}
        for ds in self.datasets:
            if "none" in self.tuning:
                self._expand_fixed(ds, runs)
            if "private" in self.tuning:
                self._expand_tuned(ds, runs)
        return list(runs)

    def _expand_tuned(self, ds: DatasetRef, runs: dict) -> None:
        bounds = self._bounds_for(ds, tuned=True)
        for frac in self.minority_fractions:
            for eps in self.privacy:
                for seed in self.seeds:
                    run = RunSpec(
                        dataset=ds,
                        seed=seed,
                        epsilon=eps,
                        delta=self.delta,
                        layers=self.layers,
                        test_fraction=self.test_fraction,
                        minority_fraction=frac,
                        imbalance_method=self.imbalance_method,
                        reproducible=self.reproducible,
                        bounds=bounds,
                        tuning="private",
                        tuning_trials=self.tuning_trials,
                        tuning_objective=self.tuning_objective,
                        tuning_holdout=self.tuning_holdout,
                        tuning_space=self.tuning_space,
                    )
                    runs.setdefault(run, None)

    def _expand_fixed(self, ds: DatasetRef, runs: dict) -> None:
        bounds = self._bounds_for(ds)
        for scaling in self.scaling:
            for frac in self.minority_fractions:
                for eps in self.privacy:
                    mits = ["none"] if eps is None else self.mitigations
                    sc = "standard" if (eps is None and scaling == "dp_standard") else scaling
                    for mit in mits:
                        params = self.mitigation_params.get(mit, {}) if mit != "none" else {}
                        for seed in self.seeds:
                            run = RunSpec(
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
                                scaling=sc,
                                scaling_share=self.scaling_share,
                                bounds=bounds if sc in NEED_BOUNDS else None,
                            )
                            runs.setdefault(run, None)

    def _bounds_for(self, ds: DatasetRef, *, tuned: bool = False) -> tuple | None:
        """The spec's public bounds for a table (parsed against its columns), if its
        scalings (``tuned``: its search space's) need them; ``None`` leaves a bundled
        dataset its own."""
        if self.bounds is None:
            return None
        if tuned:
            space = self.tuning_space or {}
            scalings = space.get("scaling", DEFAULT_SPACE["scaling"])
            scalings = [scalings] if isinstance(scalings, str) else scalings
        else:
            scalings = self.scaling
        if not (set(scalings) & set(NEED_BOUNDS)):
            return None
        try:
            table = ds.load(self.test_fraction)
            return parse_bounds(self.bounds, table.feature_names).as_tuples()
        except DataError as exc:
            raise SpecError(f"study spec key 'bounds' for {ds.label}: {exc}") from None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["datasets"] = [ds.to_dict() for ds in self.datasets]
        d["minority_fractions"] = ["natural" if f is None else f for f in self.minority_fractions]
        d["privacy"] = ["none" if e is None else e for e in self.privacy]
        d["delta"] = "auto" if self.delta is None else self.delta
        d["lr"] = "preset" if self.lr is None else self.lr
        d["layers"] = "preset" if self.layers is None else list(self.layers)
        if self.scaling == [DEFAULT_SCALING] and self.bounds is None:
            # the default: the same spec as before scaling was a key (no "changed" refusal)
            for key in ("scaling", "scaling_share", "bounds"):
                d.pop(key)
        if self.tuning == ["none"]:
            # the default: the same spec as before tuning was a key
            for key in ("tuning", *TUNING_KEYS):
                d.pop(key)
        elif self.tuning_space is None:
            d["tuning_space"] = "default"
        return d


def _err(key: str, expected: str, got) -> SpecError:
    return SpecError(f"study spec key {key!r}: expected {expected}; got {got!r}")


def _setting(key: str, v, name: str):
    """A numeric spec value checked by the rule of setting ``name``
    (:mod:`imbalanced_dp.settings`), refused in the spec's words."""
    rule = SETTINGS[name]
    why = rule.problem(v)
    if why is not None:
        words = "a positive integer" if rule.integer else "a positive number"
        if rule.high is not None:
            words = f"a number in {rule.interval}, i.e. positive and below {rule.high:g}"
        raise _err(key, f"{words} ({rule.label} {why})", v)
    return int(v) if rule.integer else float(v)


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
        unknown = set(v) - {"csv", "target", "positive", "sep", "features", "drop"}
        if unknown or "csv" not in v or "target" not in v:
            raise _err(
                "datasets",
                'a table {csv = "file.csv", target = "column", positive = ..., sep = ";", '
                'drop = ["id"] or features = ["a", "b"]}',
                v,
            )
        path = Path(str(v["csv"]))
        if base is not None and not path.is_absolute():
            path = base / path
        pos = v.get("positive")
        cols = {}
        for key in ("features", "drop"):
            if key in v:
                c = v[key]
                if not isinstance(c, list) or not all(isinstance(x, str) for x in c):
                    raise _err("datasets", f"{key} = a list of column names", c)
                cols[key] = tuple(c)
        sep = v.get("sep")
        if sep is not None and not isinstance(sep, str):
            raise _err("datasets", 'sep = one character such as ";" or "\\t"', sep)
        return DatasetRef(
            csv=str(path),
            target=str(v["target"]),
            positive=None if pos is None else str(pos),
            sep=sep,
            **cols,
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
                if SETTINGS["minority_fraction"].problem(v) is not None:
                    raise _err("minority_fractions", '"natural" or numbers in (0, 1)', v)
                out.append(float(v))
        spec.minority_fractions = out
    if "privacy" in d:
        pr = d["privacy"]
        if not isinstance(pr, list) or not pr:
            raise _err("privacy", 'a non-empty list of "none" or positive epsilons', pr)
        out_p: list[float | None] = []
        for v in pr:
            out_p.append(None if v == "none" else _setting("privacy", v, "epsilon"))
        spec.privacy = out_p
    if "delta" in d:
        v = d["delta"]
        spec.delta = None if v == "auto" else _setting("delta", v, "delta")
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
            setattr(spec, key, _setting(key, d[key], key))
    if "lr" in d:
        spec.lr = None if d["lr"] == "preset" else _setting("lr", d["lr"], "lr")
    if "clip" in d:
        spec.clip = _setting("clip", d["clip"], "clip")
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
        spec.test_fraction = _setting("test_fraction", d["test_fraction"], "test_fraction")
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
    if "scaling" in d:
        v = d["scaling"]
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list) or not items:
            raise _err("scaling", "a scaling or a non-empty list of " + ", ".join(SCALINGS), v)
        spec.scaling = list(dict.fromkeys(_choice("scaling", x, SCALINGS) for x in items))
    if "scaling_share" in d:
        spec.scaling_share = _setting("scaling_share", d["scaling_share"], "share")
    if "bounds" in d:
        b = d["bounds"]
        if isinstance(b, str):
            path = Path(b)
            if base is not None and not path.is_absolute():
                path = base / path
            try:
                b = read_bounds_file(path)
            except DataError as exc:
                raise SpecError(f"study spec key 'bounds': {exc}") from None
        if not isinstance(b, dict) or not b:
            raise _err("bounds", "a file name or a table {column = [lower, upper], ...}", b)
        spec.bounds = dict(b)
    _tuning_keys(spec, d)
    if "attacks" in d:
        a = d["attacks"]
        if not isinstance(a, list):
            raise _err("attacks", "a list of " + ", ".join(ATTACKS), a)
        spec.attacks = [_choice("attacks", x, ATTACKS) for x in a]
    return spec


def _tuning_keys(spec: StudySpec, d: dict) -> None:
    """Read the tuning keys of a spec mapping into ``spec`` (validated)."""
    from ..tuning import OBJECTIVES

    if "tuning" in d:
        v = d["tuning"]
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list) or not items:
            raise _err("tuning", '"none", "private" or a list of both', v)
        spec.tuning = list(dict.fromkeys(_choice("tuning", x, TUNINGS) for x in items))
    if "tuning_trials" in d:
        v = d["tuning_trials"]
        ok = isinstance(v, int | float) and not isinstance(v, bool) and 1 <= v <= 1000
        if not ok:
            raise _err("tuning_trials", "an expected number of trials in [1, 1000]", v)
        spec.tuning_trials = float(v)
    if "tuning_objective" in d:
        spec.tuning_objective = _choice("tuning_objective", d["tuning_objective"], OBJECTIVES)
    if "tuning_holdout" in d:
        v = d["tuning_holdout"]
        ok = isinstance(v, int | float) and not isinstance(v, bool) and 0.05 <= v <= 0.5
        if not ok:
            raise _err("tuning_holdout", "a share of the training rows in [0.05, 0.5]", v)
        spec.tuning_holdout = float(v)
    if "tuning_space" in d:
        v = d["tuning_space"]
        if v == "default":
            spec.tuning_space = None
        elif isinstance(v, dict):
            try:
                SearchSpace.from_dict(v)
            except SpecError as exc:
                raise SpecError(f"study spec key 'tuning_space': {exc}") from None
            spec.tuning_space = {
                k: list(x) if isinstance(x, list | tuple) else [x] for k, x in v.items()
            }
        else:
            raise _err("tuning_space", '"default" or a table {lr = [0.03, 0.1], ...}', v)


def with_overrides(spec: StudySpec, **values) -> StudySpec:
    """``spec`` with some keys replaced (``None`` values are ignored), validated again like
    a spec file: what ``study run --epsilon ... --seeds ...`` does."""
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return spec
    d = spec.to_dict()
    d["datasets"] = [x.get("name", x) for x in d["datasets"]]  # names as a spec writes them
    d.update(given)
    return spec_from_dict(d, name=spec.name)


def parse_list(text: str, key: str) -> list:
    """A comma-separated command-line list as spec values: numbers where they parse,
    words (``none``, ``natural``, a scaling) as they are."""
    out: list = []
    for item in (p.strip() for p in str(text).split(",")):
        if not item:
            continue
        try:
            num = float(item)
            out.append(int(num) if num.is_integer() and key == "seeds" else num)
        except ValueError:
            out.append(item)
    if not out:
        raise SpecError(f"--{key.replace('_', '-')} needs at least one value")
    return out


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


#: The study's protocol (datasets, privacy levels, seeds and hyperparameters) that every
#: preset sweeps something around.
_PROTOCOL: dict = {
    "datasets": ["pima", "breast_cancer"],
    "minority_fractions": ["natural"],
    "privacy": ["none", 8, 2, 1],
    "delta": 1e-4,
    "seeds": 10,
    "epochs": 500,
    "batch_size": 64,
    "clip": 1.0,
}

PRESETS: dict[str, dict] = {
    "paper": {"name": "paper", **_PROTOCOL},
    "imbalance": {
        "name": "imbalance",
        **_PROTOCOL,
        "minority_fractions": ["natural", 0.2, 0.1, 0.05],
    },
    "mitigation": {
        "name": "mitigation",
        **_PROTOCOL,
        "mitigations": ["none", "class_weighted", "dpsgd_f", "global_adapt"],
    },
    # The study's protocol under each choice it leaves unstated that moves its results:
    # the feature scaling (none, as its text literally reads; standardised, our default;
    # min-max; standardised with statistics released under DP).
    "sensitivity": {
        "name": "sensitivity",
        **_PROTOCOL,
        "scaling": ["none", "standard", "minmax", "dp_standard"],
    },
}


def preset(name: str) -> StudySpec:
    """A named preset: ``paper`` (what ``reproduce`` runs), ``imbalance``, ``mitigation`` or
    ``sensitivity`` (the paper's protocol under each feature scaling)."""
    if name not in PRESETS:
        raise SpecError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return spec_from_dict(PRESETS[name], name=name)


def keys_text() -> str:
    """Every study spec key with its meaning and default, as aligned text."""
    width = max(len(k) for k in KEYS) + 2
    lines = []
    for key in KEYS:
        meaning, default = KEY_HELP[key]
        lines.append(f"{key:<{width}}{meaning}")
        lines.append(f"{'':<{width}}default: {default}")
    return "\n".join(lines)
