"""Model inversion on a table: does a trained model give away a patient's hidden attribute,
and the minority's more? And what does inverting a whole class reconstruct?

For every model seed the pool of records is split, stratified by class, into three parts:
the target's training records (*members*), as many *non-members*, and the attacker's
auxiliary records (the rest), which the target never sees. The target trains on the members
at each privacy level; ``shadows`` shadow models train the same way on random subsets of
the auxiliary records of the members' size. Then, for each hidden attribute:

* the **imputation** baseline (a regression on the other columns and the label) is fitted
  on the auxiliary records, with no model access;
* the **confidence attack** queries the target at each candidate value;
* the **learned attack** corrects the imputation with the target's answers to the same
  queries, as it learned to from the shadows' answers about their own training records
  (:class:`~._attribute.LearnedAttack`).

Each is scored on members and on non-members, per class; with ``seeds`` targets per privacy
level, the means get Student-t confidence intervals over the seeds and the differences
(attack − imputation on the same records, members − non-members) are paired by seed.

Finally each target is inverted class by class (:mod:`._model_inversion`), and the
reconstruction's distance to the nearest member and to the nearest non-member of its class
says whether it points at training records or only at the class.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from ..data import Dataset
from ..engines import FastEngine, TrainJob
from ..exceptions import ParameterError
from ..metrics import mean_ci
from ..models import architecture, hidden_for, lr_for
from ..privacy import default_delta
from ._attribute import (
    DEFAULT_BINS,
    AttributeBins,
    Imputer,
    LearnedAttack,
    candidate_confidence,
    confidence_guess,
    quantise_column,
    resolve_attributes,
)
from ._model_inversion import invert_classes, nearest_distance
from ._train import TrainingSettings, model_seed, plan_setting, privacy_label

#: The attribute-inference attacks, in the order of the records.
INVERSION_ATTACKS = ("confidence", "learned")
ALL_CLASSES = "all"

NOTES = (
    "Attribute inference: for each model seed the records are split, stratified by class, "
    "into the target's training records (members), as many non-members, and the attacker's "
    "auxiliary records (the rest, never seen by the target); shadow models train like the "
    "target, at the same privacy level, on subsets of the auxiliary records of the members' "
    "size.",
    "Continuous columns are quantised into bins between quantiles of the whole table (a "
    "column with few distinct values keeps each value); success is the share of records "
    "whose bin is guessed right, error the mean absolute difference between the bin's "
    "median and the true value. Like the feature scaling, the bins are fitted on all "
    "records outside DP-SGD: they do not depend on who is a member.",
    "Imputation (Jayaraman & Evans 2022): a multinomial logistic regression on the other "
    "columns (with spline transforms of their ranks) and the label, its regularisation "
    "chosen by 5-fold cross-validation, fitted on the auxiliary records; it never queries "
    "the model. Confidence attack (Fredrikson et al. 2014, Mehnaz et al. 2022): the "
    "candidate value (a bin's median) under which the target is most confident of the "
    "record's known label. Learned attack: a conditional logit over the candidates on the "
    "target's answers to the same queries (per label), with the imputation's "
    "log-probabilities as a fixed offset so that it falls back to imputation where the "
    "answers carry nothing, trained on shadow models' answers about their own training "
    "records and cross-fitted imputation.",
    "advantage_vs_imputation = attack − imputation on the same member records; "
    "advantage_members = success on members − success on non-members (Yeom et al. 2018); "
    "advantage_members_adjusted subtracts the imputation's own members − non-members "
    "difference on the same split (0 in expectation: it only carries the luck of the split) "
    "and decides members_leak_more. Intervals: Student-t over the model seeds, differences "
    "paired by seed.",
    "DP check, for the distinguishing view 'a correct guess means member': success on "
    "members ≤ e^ε · success on non-members + δ, and failures likewise the other way round; "
    "a record breaks it only if the excess is significantly above 0 over the seeds.",
    "Model inversion (Fredrikson et al. 2015): projected gradient ascent on the scaled "
    "input, from the average record, of log p(class | x) − ½‖x‖² (a standard normal prior "
    "on the scaled columns), inside the columns' observed range; distances are Euclidean "
    "in scaled units, to the nearest member and non-member of the class (equal numbers).",
)

MODEL_INVERSION_TEXT = (
    "On a table with {d} columns the reconstruction is one point in {d} dimensions: the "
    "model's idea of a typical patient of the class. It can reveal what the model learned "
    "about the class as a whole — which columns push towards it and how far — which is "
    "population knowledge that a useful model must hold; it cannot single out a patient "
    "unless it sits markedly closer to training records than to comparable non-members, "
    "and with a few hundred records in a few dimensions many real patients lie near any "
    "typical profile."
)


@dataclass(frozen=True)
class InversionConfig:
    """Settings of attribute inference and class inversion (``audit --attacks inversion``).

    ``seeds`` target models per privacy level, each with ``shadows`` shadow models;
    ``members`` training records per model (default a third of the table); ``bins`` per
    quantised column; ``attributes`` the columns to hide (default all features). Training
    settings default to the dataset's preset like :class:`AttackConfig`'s.
    """

    privacy: tuple[float | None, ...] = (None, 8.0, 2.0, 1.0)
    seeds: int = 10
    shadows: int = 3
    bins: int = DEFAULT_BINS
    attributes: tuple[str, ...] | None = None
    members: int | None = None
    epochs: int = 500
    batch_size: int = 64
    lr: float | None = None
    clip: float = 1.0
    hidden: tuple[int, ...] | None = None
    delta: float | None = None
    accountant: str = "prv"
    confidence: float = 0.95
    seed: int = 0
    inversion_steps: int = 500

    def __post_init__(self) -> None:
        if not self.privacy:
            raise ParameterError("give at least one privacy level, e.g. none,8,2,1")
        if self.seeds < 2:
            raise ParameterError(
                f"--seeds must be at least 2 (intervals over seeds); got {self.seeds}"
            )
        if self.shadows < 1:
            raise ParameterError(f"inversion shadows must be at least 1; got {self.shadows}")
        if self.bins < 2:
            raise ParameterError(f"--bins must be at least 2; got {self.bins}")
        if self.members is not None and self.members < 2:
            raise ParameterError(f"--members must be at least 2; got {self.members}")
        if self.epochs < 1:
            raise ParameterError(f"--epochs must be at least 1; got {self.epochs}")
        if not 0 < self.confidence < 1:
            raise ParameterError(f"confidence must be in (0, 1); got {self.confidence}")
        if self.inversion_steps < 0:
            raise ParameterError(f"inversion steps must be >= 0; got {self.inversion_steps}")

    @classmethod
    def from_attack_config(cls, config, **overrides) -> InversionConfig:
        """The inversion settings that share an :class:`AttackConfig`'s training settings,
        privacy levels, seed and confidence; ``overrides`` set the inversion's own."""
        shared = {
            k: getattr(config, k)
            for k in (
                "privacy",
                "epochs",
                "batch_size",
                "lr",
                "clip",
                "hidden",
                "delta",
                "accountant",
                "confidence",
                "seed",
            )
        }
        return cls(**(shared | {k: v for k, v in overrides.items() if v is not None}))

    def resolved(self, n_records: int, preset: str) -> dict:
        """:meth:`to_dict` with the dataset's presets and the defaults filled in (what the
        records and the store's fingerprint show)."""
        return self.to_dict() | {
            "lr": self.lr if self.lr is not None else lr_for(preset),
            "hidden": list(self.hidden if self.hidden is not None else hidden_for(preset)),
            "delta": self.delta if self.delta is not None else default_delta(n_records),
            "members": self.members if self.members is not None else n_records // 3,
        }

    def to_dict(self) -> dict:
        d = asdict(self)
        d["privacy"] = [privacy_label(p) for p in self.privacy]
        d["hidden"] = list(self.hidden) if self.hidden is not None else "preset"
        d["lr"] = "preset" if self.lr is None else self.lr
        d["attributes"] = list(self.attributes) if self.attributes is not None else "all"
        d["members"] = "third" if self.members is None else self.members
        return d


@dataclass
class InversionReport:
    """Everything :func:`run_inversion` measured, as plain records (see :meth:`to_json`)."""

    dataset: str
    n_records: int
    class_names: tuple[str, str]
    feature_names: tuple[str, ...]
    config: dict
    settings: list[dict]
    attributes: list[dict]
    results: list[dict]
    class_gaps: list[dict]
    model_inversion: list[dict]
    notes: list[str] = field(default_factory=lambda: list(NOTES))
    seconds: float = math.nan
    #: Per model seed: the indices of its members, non-members and auxiliary records.
    splits: list[dict] = field(default_factory=list, repr=False)
    #: Per privacy × attribute × attack (and ``"imputation"``) × seed: each evaluated
    #: record's (members first, then non-members) ``correct`` guess and absolute ``error``,
    #: from which every success in ``results`` can be recomputed. Not in the JSON.
    outcomes: list[dict] = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        """One JSON-ready object: ``results`` (one record per privacy × attribute × class ×
        attack), ``class_gaps``, ``model_inversion`` (one per privacy × class), the
        attributes' bins, the settings and notes."""
        from ._records import clean_json as _clean

        return _clean(
            {
                "dataset": self.dataset,
                "n_records": self.n_records,
                "class_names": list(self.class_names),
                "feature_names": list(self.feature_names),
                "results": self.results,
                "class_gaps": self.class_gaps,
                "model_inversion": self.model_inversion,
                "attributes": self.attributes,
                "settings": self.settings,
                "config": self.config,
                "notes": self.notes,
                "seconds": round(self.seconds, 3),
            }
        )

    def fingerprint(self) -> str:
        from ._records import config_fingerprint

        return config_fingerprint(self.dataset, self.config)

    def store_payloads(self) -> dict[str, dict]:
        """Store entries (kind ``"inversion"``) keyed ``inversion:<dataset>:<privacy>``."""
        from ._records import clean_json as _clean

        fp = self.fingerprint()
        out = {}
        for st in self.settings:
            lab = st["label"]
            out[f"inversion:{self.dataset}:{lab}"] = _clean(
                {
                    "dataset": self.dataset,
                    "privacy": lab,
                    "n_records": self.n_records,
                    "class_names": list(self.class_names),
                    "feature_names": list(self.feature_names),
                    "setting": st,
                    "attributes": self.attributes,
                    "results": [r for r in self.results if r["privacy"] == lab],
                    "class_gaps": [g for g in self.class_gaps if g["privacy"] == lab],
                    "model_inversion": [m for m in self.model_inversion if m["privacy"] == lab],
                    "config": self.config,
                    "notes": self.notes,
                    "fingerprint": fp,
                }
            )
        return out


# ---------------------------------------------------------------------- the experiment


def member_split(
    y: np.ndarray, n_members: int, *, seed: int | Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split record indices, stratified by class, into ``n_members`` members, as many
    non-members (same class counts) and the auxiliary rest; each class's share of the
    members is its share of the table (largest remainders)."""
    y = np.asarray(y, dtype=np.int64)
    rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), 0x1F15])
    classes, counts = np.unique(y, return_counts=True)
    quota = n_members * counts / y.size
    q = np.floor(quota).astype(np.int64)
    for k in np.argsort(-(quota - q), kind="stable")[: n_members - int(q.sum())]:
        q[k] += 1
    mem, non, aux = [], [], []
    for c, qc in zip(classes, q):
        idx = rng.permutation(np.flatnonzero(y == c))
        if 2 * qc > idx.size:
            raise ParameterError(
                f"{n_members} members and as many non-members need {2 * qc} records of class "
                f"{c}; it has {idx.size}: give fewer --members"
            )
        mem.append(idx[:qc])
        non.append(idx[qc : 2 * qc])
        aux.append(idx[2 * qc :])
    return tuple(np.sort(np.concatenate(p)) for p in (mem, non, aux))  # type: ignore[return-value]


@dataclass
class _Seed:
    members: np.ndarray
    nonmembers: np.ndarray
    aux: np.ndarray
    shadow_sets: list[np.ndarray]

    @property
    def evaluated(self) -> np.ndarray:
        return np.concatenate([self.members, self.nonmembers])


def _target_name(dataset: Dataset) -> str | None:
    t = dataset.extra.get("target") if isinstance(dataset.extra, dict) else None
    return str(t) if t else None


def check_attributes(dataset: Dataset, attributes: Sequence[str] | None, *, bins: int):
    """The bins of every attribute to hide, or the :class:`~imbalanced_dp.exceptions.DataError`
    that names the first bad one (not a column, the target, constant, too few values)."""
    cols = resolve_attributes(
        dataset.feature_names,
        attributes,
        dataset=dataset.name,
        target=_target_name(dataset),
    )
    return [
        quantise_column(dataset.X[:, j], name=dataset.feature_names[j], column=j, bins=bins)
        for j in cols
    ]


def check_inversion(dataset: Dataset, config: InversionConfig, *, preset: str | None = None):
    """Everything about ``config`` on ``dataset`` that can be refused before training: the
    attributes (:func:`check_attributes`), the number of members, the batch size, δ.
    Returns the attributes' bins, the members per model, the resolved configuration and
    the training settings."""
    attrs = check_attributes(dataset, config.attributes, bins=config.bins)
    N = dataset.n_rows
    n_m = config.members if config.members is not None else N // 3
    if 3 * n_m > N:
        raise ParameterError(
            f"--members {n_m} is too many for {N} records: members, as many non-members and "
            f"at least as many auxiliary records for the shadow models need 3 × {n_m}; "
            f"give at most {N // 3}"
        )
    if min(np.bincount(dataset.y, minlength=2)) < 3:
        raise ParameterError(f"{dataset.name}: each class needs at least 3 records")
    cfg = config.resolved(N, preset if preset is not None else dataset.name)
    if config.batch_size > n_m:
        raise ParameterError(
            f"batch size {config.batch_size} is larger than the {n_m} records each model "
            "trains on; give a smaller --batch-size or more --members"
        )
    training = TrainingSettings(
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=cfg["lr"],
        clip=config.clip,
        delta=cfg["delta"],
        accountant=config.accountant,
    )
    training.check(n_m)
    return attrs, n_m, cfg, training


def run_inversion(
    dataset: Dataset,
    config: InversionConfig = InversionConfig(),
    *,
    label: str | None = None,
    preset: str | None = None,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> InversionReport:
    """Attribute inference per class at every privacy level, and the inversion of each class.

    Parameters
    ----------
    dataset : Dataset
        The pool of records (all rows are used).
    config : InversionConfig
        Privacy levels, seeds, shadows, bins, attributes and training settings.
    label : str, optional
        The dataset's name in the records (default ``dataset.name``).
    preset : str, optional
        Dataset name whose model and learning-rate preset to use (default ``label``).
    threads : int, optional
        Threads of the fast engine.
    progress : callable, optional
        Receives one line per stage.

    Returns
    -------
    InversionReport

    Examples
    --------
    >>> from imbalanced_dp.data import load_dataset
    >>> cfg = InversionConfig(privacy=(None,), seeds=2, shadows=1, epochs=2,
    ...                       attributes=("Glucose",))
    >>> rep = run_inversion(load_dataset("pima"), cfg)
    >>> sorted({(r["attack"], r["class"]) for r in rep.results})[:3]
    [('confidence', '0'), ('confidence', '1'), ('confidence', 'all')]
    """
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    name = label or dataset.name
    preset = preset if preset is not None else name
    attrs, n_m, cfg, training = check_inversion(dataset, config, preset=preset)
    X_raw = np.asarray(dataset.X, dtype=np.float64)
    y = np.asarray(dataset.y, dtype=np.int64)
    N, d = X_raw.shape
    mean = X_raw.mean(axis=0)
    scale = X_raw.std(axis=0)
    scale[scale == 0] = 1.0
    Xs = (X_raw - mean) / scale
    hidden = tuple(cfg["hidden"])
    arch = architecture(d, hidden)
    levels = list(config.privacy)
    settings = [plan_setting(lv, n=n_m, training=training) for lv in levels]
    seeds = []
    for s in range(config.seeds):
        mem, non, aux = member_split(y, n_m, seed=(config.seed, s))
        rng = np.random.default_rng([config.seed, s, 0x5AD0])
        shadow_sets = [np.sort(rng.choice(aux, n_m, replace=False)) for _ in range(config.shadows)]
        seeds.append(_Seed(mem, non, aux, shadow_sets))

    per_level = config.seeds * (1 + config.shadows)
    say(
        f"{name}: attribute inference on {len(attrs)} column(s); training "
        f"{len(levels) * per_level} models ({len(levels)} privacy levels × {config.seeds} "
        f"targets with {config.shadows} shadow(s) each) on {n_m} records, "
        f"{config.epochs} epochs …"
    )
    t1 = time.perf_counter()
    jobs = []
    for st in settings:
        for s, sd in enumerate(seeds):
            for i, rows in enumerate([sd.members, *sd.shadow_sets]):
                seed_i = model_seed(config.seed, s * (1 + config.shadows) + i, 0x1A7E)
                jobs.append(
                    TrainJob(
                        np.ascontiguousarray(Xs[rows]),
                        np.ascontiguousarray(y[rows]),
                        arch,
                        st.config(seed_i, training),
                    )
                )
    models = FastEngine().train(jobs, threads=threads)

    def model(level: int, s: int, i: int):
        return models[level * per_level + s * (1 + config.shadows) + i]

    say(f"  trained in {time.perf_counter() - t1:.1f} s; inferring attributes …")
    t1 = time.perf_counter()
    names = tuple(dataset.class_names)
    results: list[dict] = []
    gaps: list[dict] = []
    outcomes: list[dict] = []
    for b in attrs:
        j = b.column
        truth = b.bin_of(X_raw[:, j])
        reps_s = (b.representatives - mean[j]) / scale[j]
        # outcome[level][attack] = list over seeds of (correct, abs error) on the evaluated
        per: dict[str, list[list[tuple[np.ndarray, np.ndarray]]]] = {
            a: [[] for _ in levels] for a in (*INVERSION_ATTACKS, "imputation")
        }
        for s, sd in enumerate(seeds):
            ev = sd.evaluated
            imp = Imputer(b.n_bins, j, seed=model_seed(config.seed, s, 0x1B0)).fit(
                Xs[sd.aux], y[sd.aux], truth[sd.aux]
            )
            imp_out = _outcome(imp.predict(Xs[ev], y[ev]), truth[ev], b, X_raw[ev, j])
            imp_ev = imp.log_proba(Xs[ev], y[ev])
            for k in range(len(levels)):
                per["imputation"][k].append(imp_out)
                phi = candidate_confidence(model(k, s, 0), Xs[ev], y[ev], j, reps_s)
                per["confidence"][k].append(
                    _outcome(confidence_guess(phi), truth[ev], b, X_raw[ev, j])
                )
                offsets, answers, train_t = [], [], []
                for i, rows in enumerate(sd.shadow_sets, start=1):
                    answers.append(
                        candidate_confidence(model(k, s, i), Xs[rows], y[rows], j, reps_s)
                    )
                    offsets.append(imp.oof_log_proba_[np.searchsorted(sd.aux, rows)])
                    train_t.append(rows)
                rows_all = np.concatenate(train_t)
                learned = LearnedAttack(b.n_bins).fit(
                    np.vstack(offsets), np.vstack(answers), truth[rows_all], y[rows_all]
                )
                guess = learned.predict(imp_ev, phi, y[ev])
                per["learned"][k].append(_outcome(guess, truth[ev], b, X_raw[ev, j]))
        for k, st in enumerate(settings):
            for attack in (*INVERSION_ATTACKS, "imputation"):
                for s, (ok, ae) in enumerate(per[attack][k]):
                    outcomes.append(
                        {
                            "privacy": st.label,
                            "attribute": b.name,
                            "attack": attack,
                            "seed": s,
                            "correct": ok,
                            "error": ae,
                        }
                    )
            for attack in INVERSION_ATTACKS:
                by_class = {}
                for cls in ("0", "1", ALL_CLASSES):
                    vals = _seed_values(per[attack][k], per["imputation"][k], seeds, y, cls)
                    by_class[cls] = vals
                    results.append(_record(name, st, b, cls, names, attack, vals, truth, y, config))
                gaps.extend(_gaps(name, st, b, attack, by_class, config.confidence))
    say(f"  attributes inferred in {time.perf_counter() - t1:.1f} s; inverting the classes …")

    inversion = _invert(
        name, settings, seeds, models, per_level, config, Xs, X_raw, y, dataset, mean, scale
    )
    rep = InversionReport(
        dataset=name,
        n_records=N,
        class_names=names,
        feature_names=tuple(dataset.feature_names),
        config=cfg,
        settings=[st.to_dict() for st in settings],
        attributes=[_attribute_dict(b) for b in attrs],
        results=results,
        class_gaps=gaps,
        model_inversion=inversion,
        splits=[
            {"members": sd.members, "nonmembers": sd.nonmembers, "aux": sd.aux} for sd in seeds
        ],
        outcomes=outcomes,
    )
    rep.seconds = time.perf_counter() - t0
    say(f"  inversion done in {rep.seconds:.1f} s")
    return rep


def _outcome(guess, truth, b: AttributeBins, values) -> tuple[np.ndarray, np.ndarray]:
    return guess == truth, np.abs(b.representatives[guess] - values)


def _seed_values(outcomes, imputed, seeds, y, cls) -> dict[str, np.ndarray]:
    """Per seed: success and error of the attack and the imputation on members and on
    non-members of class ``cls``."""
    keys = ("member", "nonmember", "imp_member", "imp_nonmember")
    acc = {k: np.full(len(seeds), np.nan) for k in keys}
    err = {k: np.full(len(seeds), np.nan) for k in keys}
    n_mem = n_non = 0
    for s, sd in enumerate(seeds):
        ev = sd.evaluated
        is_mem = np.zeros(ev.size, dtype=bool)
        is_mem[: sd.members.size] = True
        in_cls = np.ones(ev.size, dtype=bool) if cls == ALL_CLASSES else y[ev] == int(cls)
        for key, (ok, ae), side in (
            ("member", outcomes[s], is_mem),
            ("nonmember", outcomes[s], ~is_mem),
            ("imp_member", imputed[s], is_mem),
            ("imp_nonmember", imputed[s], ~is_mem),
        ):
            m = side & in_cls
            if m.any():
                acc[key][s] = ok[m].mean()
                err[key][s] = ae[m].mean()
        n_mem = int((is_mem & in_cls).sum())
        n_non = int((~is_mem & in_cls).sum())
    return {"acc": acc, "err": err, "n_members": n_mem, "n_nonmembers": n_non}  # type: ignore[dict-item]


def _ci_fields(prefix: str, values, confidence: float) -> dict:
    iv = mean_ci(values, confidence=confidence)
    return {prefix: iv.mean, f"{prefix}_low": iv.low, f"{prefix}_high": iv.high}


def _record(dataset, st, b: AttributeBins, cls, names, attack, v, truth, y, config) -> dict:
    conf = config.confidence
    acc, err = v["acc"], v["err"]
    in_cls = np.ones(y.size, dtype=bool) if cls == ALL_CLASSES else y == int(cls)
    rec = {
        "dataset": dataset,
        "privacy": st.label,
        "epsilon": st.epsilon,
        "epsilon_spent": st.epsilon_spent,
        "noise_multiplier": st.noise_multiplier,
        "delta": st.delta,
        "attribute": b.name,
        "kind": b.kind,
        "bins": b.n_bins,
        "class": cls,
        "class_name": ALL_CLASSES if cls == ALL_CLASSES else names[int(cls)],
        "attack": attack,
        **_ci_fields("member_success", acc["member"], conf),
        **_ci_fields("nonmember_success", acc["nonmember"], conf),
        **_ci_fields("imputation_success", acc["imp_member"], conf),
        **_ci_fields("imputation_nonmember_success", acc["imp_nonmember"], conf),
        **_ci_fields("advantage_vs_imputation", acc["member"] - acc["imp_member"], conf),
        **_ci_fields(
            "advantage_vs_imputation_nonmembers", acc["nonmember"] - acc["imp_nonmember"], conf
        ),
        **_ci_fields("advantage_members", acc["member"] - acc["nonmember"], conf),
        **_ci_fields("advantage_members_adjusted", _adjusted(acc), conf),
        "majority_bin_share": float(np.bincount(truth[in_cls]).max() / max(in_cls.sum(), 1)),
    }
    if b.kind == "quantised":
        rec |= {
            **_ci_fields("member_error", err["member"], conf),
            **_ci_fields("nonmember_error", err["nonmember"], conf),
            **_ci_fields("imputation_error", err["imp_member"], conf),
            **_ci_fields("error_advantage_vs_imputation", err["imp_member"] - err["member"], conf),
            **_ci_fields("error_advantage_members", err["nonmember"] - err["member"], conf),
        }
    else:
        for k in (
            "member_error",
            "nonmember_error",
            "imputation_error",
            "error_advantage_vs_imputation",
            "error_advantage_members",
        ):
            rec |= {k: None, f"{k}_low": None, f"{k}_high": None}
    rec["beats_imputation"] = bool(rec["advantage_vs_imputation_low"] > 0)
    rec["members_leak_more"] = bool(rec["advantage_members_adjusted_low"] > 0)
    if st.epsilon is not None:
        e = math.exp(st.epsilon)
        tpr, fpr = acc["member"], acc["nonmember"]
        rec["dp_bound_member_success"] = float(min(1.0, e * rec["nonmember_success"] + st.delta))
        rec["dp_bound_respected"] = distinguishing_bound_respected(
            tpr, fpr, epsilon=st.epsilon, delta=st.delta, confidence=conf
        )
    rec["n_members"] = v["n_members"]
    rec["n_nonmembers"] = v["n_nonmembers"]
    rec["models"] = int(np.isfinite(acc["member"]).sum())
    rec["confidence"] = conf
    return rec


def _adjusted(acc: dict) -> np.ndarray:
    """Members − non-members, net of the imputation's own members − non-members difference
    on the same split: the imputation never sees the model, so that difference is 0 in
    expectation and only carries the luck of which records fell on which side."""
    return (acc["member"] - acc["nonmember"]) - (acc["imp_member"] - acc["imp_nonmember"])


def distinguishing_bound_respected(
    member_success, nonmember_success, *, epsilon: float, delta: float, confidence: float = 0.95
) -> bool:
    """Whether per-seed success rates on members (TPR of the test "a correct guess means
    member") and on non-members (its FPR) stay inside what (ε, δ)-DP allows.

    DP bounds every test: TPR ≤ e^ε · FPR + δ, and (for the complementary test)
    1 − FPR ≤ e^ε · (1 − TPR) + δ. The bound counts as broken only where the mean per-seed
    excess is significantly above 0 (the lower end of its Student-t interval).

    Examples
    --------
    >>> distinguishing_bound_respected([0.5, 0.52, 0.48], [0.3, 0.31, 0.29], epsilon=1.0,
    ...                                delta=1e-4)
    True
    >>> distinguishing_bound_respected([0.9, 0.92, 0.88], [0.3, 0.31, 0.29], epsilon=1.0,
    ...                                delta=1e-4)
    False
    """
    tpr = np.asarray(member_success, dtype=np.float64)
    fpr = np.asarray(nonmember_success, dtype=np.float64)
    e = math.exp(epsilon)
    return bool(
        _not_above(tpr - e * fpr - delta, confidence)
        and _not_above((1 - fpr) - e * (1 - tpr) - delta, confidence)
    )


def _not_above(excess: np.ndarray, confidence: float) -> bool:
    """Whether ``excess`` is not significantly above 0 over the seeds."""
    iv = mean_ci(excess, confidence=confidence)
    low = iv.low if math.isfinite(iv.low) else iv.mean
    return not low > 0


def _gaps(dataset, st, b, attack, by_class, confidence) -> list[dict]:
    """Minority (label 1) minus majority (label 0) of each advantage, paired by seed."""
    out = []
    a, c = by_class["1"]["acc"], by_class["0"]["acc"]
    for measure, one, zero in (
        ("advantage_vs_imputation", a["member"] - a["imp_member"], c["member"] - c["imp_member"]),
        ("advantage_members", a["member"] - a["nonmember"], c["member"] - c["nonmember"]),
        ("advantage_members_adjusted", _adjusted(a), _adjusted(c)),
    ):
        iv = mean_ci(one - zero, confidence=confidence)
        out.append(
            {
                "dataset": dataset,
                "privacy": st.label,
                "epsilon": st.epsilon,
                "attribute": b.name,
                "attack": attack,
                "metric": measure,
                "minority_minus_majority": iv.mean,
                "low": iv.low,
                "high": iv.high,
                "minority_leaks_more": bool(iv.low > 0),
                "majority_leaks_more": bool(iv.high < 0),
            }
        )
    return out


def _attribute_dict(b: AttributeBins) -> dict:
    return {
        "attribute": b.name,
        "kind": b.kind,
        "bins": b.n_bins,
        "edges": b.edges.tolist(),
        "representatives": b.representatives.tolist(),
        "counts": b.counts.tolist(),
    }


def _invert(name, settings, seeds, models, per_level, config, Xs, X_raw, y, dataset, mean, scale):
    """Invert each target model's classes; distances to the nearest member and non-member."""
    low, high = Xs.min(axis=0), Xs.max(axis=0)
    out = []
    conf = config.confidence
    names = dataset.class_names
    for k, st in enumerate(settings):
        targets = [models[k * per_level + s * (1 + config.shadows)] for s in range(len(seeds))]
        R, prob = invert_classes(targets, (0, 1), low=low, high=high, steps=config.inversion_steps)
        for c in (0, 1):
            d_mem = np.array(
                [
                    float(nearest_distance(R[s, c], Xs[sd.members[y[sd.members] == c]]))
                    for s, sd in enumerate(seeds)
                ]
            )
            d_non = np.array(
                [
                    float(nearest_distance(R[s, c], Xs[sd.nonmembers[y[sd.nonmembers] == c]]))
                    for s, sd in enumerate(seeds)
                ]
            )
            centroid = Xs[y == c].mean(axis=0)
            d_cen = np.sqrt(((R[:, c] - centroid) ** 2).sum(axis=1))
            rec_s = R[:, c].mean(axis=0)
            gap = mean_ci(d_non - d_mem, confidence=conf)
            out.append(
                {
                    "dataset": name,
                    "privacy": st.label,
                    "epsilon": st.epsilon,
                    "class": str(c),
                    "class_name": names[c],
                    "features": list(dataset.feature_names),
                    "reconstruction": (rec_s * scale + mean).tolist(),
                    "reconstruction_scaled": rec_s.tolist(),
                    "reconstruction_scaled_sd": R[:, c].std(axis=0, ddof=1).tolist(),
                    "class_mean": X_raw[y == c].mean(axis=0).tolist(),
                    "class_mean_scaled": centroid.tolist(),
                    **_ci_fields("probability", prob[:, c], conf),
                    **_ci_fields("distance_member", d_mem, conf),
                    **_ci_fields("distance_nonmember", d_non, conf),
                    "distance_gap": gap.mean,
                    "distance_gap_low": gap.low,
                    "distance_gap_high": gap.high,
                    "closer_to_members": bool(gap.low > 0),
                    **_ci_fields("distance_class_mean", d_cen, conf),
                    "models": len(seeds),
                    "confidence": conf,
                }
            )
    return out
