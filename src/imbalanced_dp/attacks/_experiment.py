"""The whole threat measurement of one dataset: membership inference per class at every
privacy level, the one-run audit of ε, and (with ``"inversion"``) attribute inference and
class inversion (:mod:`._inversion`). The ``audit`` command and studies with
``attacks = [...]`` call :func:`run_attacks`."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..data import Dataset
from ..exceptions import ImbalancedDPError, ParameterError
from ..models import architecture, hidden_for, lr_for
from ..privacy import DEFAULT_ACCOUNTANT, default_delta
from ..settings import check_setting
from ._audit import DEFAULT_RADIUS, audit_runs
from ._inversion import (
    InversionConfig,
    InversionReport,
    check_inversion,
    run_inversion,
)
from ._mia import VARIANCES, attack_scores
from ._records import clean_json as _clean
from ._records import config_fingerprint
from ._roc import REPORT_FPRS, BootstrapPlan, paired_gap_ci, summarize_roc
from ._train import CONTROL, TrainingSettings, privacy_label, train_membership_models

#: What a study's ``attacks`` list and the library accept, and the attacks each one runs.
ATTACK_FAMILIES: dict[str, tuple[str, ...]] = {
    "loss": ("loss",),
    "lira": ("lira_offline", "lira_online"),
}
#: The attack kind that runs attribute inference and class inversion (:mod:`._inversion`).
INVERSION = "inversion"
#: Everything ``--attacks`` and a study's ``attacks`` list accept.
ATTACK_CHOICES: tuple[str, ...] = (*ATTACK_FAMILIES, INVERSION)
#: Field name of each report FPR in the records.
FPR_FIELDS = {0.01: "tpr_at_fpr_1pct", 0.001: "tpr_at_fpr_0_1pct"}
ALL_CLASSES = "all"

NOTES = (
    "Features are standardised with the mean and standard deviation of the whole pool of "
    "records, fitted outside DP-SGD; the statistics do not depend on which records a model "
    "trains on, so they do not affect the membership experiment, but they are not covered "
    "by epsilon.",
    "Each of the M models per privacy level trains on a uniformly random half of the "
    "records (the same halves and seeds at every level); attacks are evaluated by leave "
    "one model out, pooling the (score, member) pairs of all M targets.",
    "LiRA uses the logit-scaled confidence, per-record means and a variance pooled over "
    "the records (global); offline LiRA is a one-sided test against the OUT shadows only.",
    "Confidence intervals: percentile two-way bootstrap over target models and records "
    "(records resampled within their class); class gaps are paired on the same "
    "replicates. Compare classes by these intervals, not by raw rates (Kulynych et al. "
    "2022).",
    "Audit: Steinke, Nasr & Jagielski (2023), one training run per setting on all records "
    "plus Dirac canaries, each included with probability 1/2; the sampling plan uses the "
    "public size rows + m/2. epsilon_lower_bound holds at the stated confidence "
    "(Bonferroni over the guessing rules); the sigma0 control is DP-SGD's clipping and "
    "Poisson sampling without noise.",
)


@dataclass(frozen=True)
class AttackConfig:
    """Settings of a threat measurement (the ``audit`` command's options).

    ``privacy`` lists ``None`` (non-private) and target ε values; ``shadows`` is M, the
    number of models trained per privacy level (each in turn the target, the other M − 1
    its shadows); ``canaries`` is m of the audit (0 skips it); ``lr`` and ``hidden`` default
    to the dataset's preset and ``delta`` to the one δ policy
    (:func:`~imbalanced_dp.privacy.default_delta` of the table's rows).
    """

    privacy: tuple[float | None, ...] = (None, 8.0, 2.0, 1.0)
    shadows: int = 64
    canaries: int = 200
    epochs: int = 500
    batch_size: int = 64
    lr: float | None = None
    clip: float = 1.0
    hidden: tuple[int, ...] | None = None
    delta: float | None = None
    accountant: str = DEFAULT_ACCOUNTANT
    attacks: tuple[str, ...] = ("loss", "lira")
    variance: str = "global"
    bootstrap: int = 200
    confidence: float = 0.95
    seed: int = 0
    canary_radius: float = DEFAULT_RADIUS

    def __post_init__(self) -> None:
        unknown = [a for a in self.attacks if a not in ATTACK_CHOICES]
        if unknown:
            raise ParameterError(
                f"attacks must be among {', '.join(ATTACK_CHOICES)}; got {unknown[0]!r}"
            )
        if not self.privacy:
            raise ParameterError("give at least one privacy level, e.g. none,8,2,1")
        if self.attack_names and self.shadows < 4:
            raise ParameterError(f"--shadows must be at least 4; got {self.shadows}")
        if self.canaries < 0 or self.canaries == 1:
            raise ParameterError(
                f"--canaries must be 0 (no audit) or at least 2; got {self.canaries}"
            )
        check_setting("epochs", self.epochs, label="--epochs")
        check_setting("batch_size", self.batch_size, label="--batch-size")
        check_setting("clip", self.clip, label="clip")
        if self.lr is not None:
            check_setting("lr", self.lr, label="--lr")
        if self.delta is not None:
            check_setting("delta", self.delta, label="--delta")
        if self.variance not in VARIANCES:
            raise ParameterError(
                f"variance must be one of {', '.join(VARIANCES)}; got {self.variance!r}"
            )
        if self.bootstrap < 0:
            raise ParameterError(f"bootstrap replicates must be >= 0; got {self.bootstrap}")
        if not 0 < self.confidence < 1:
            raise ParameterError(f"confidence must be in (0, 1); got {self.confidence}")

    @property
    def attack_names(self) -> tuple[str, ...]:
        """The membership-inference attacks to run (``inversion`` is not one of them)."""
        return tuple(a for fam in self.attacks for a in ATTACK_FAMILIES.get(fam, ()))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["privacy"] = [privacy_label(p) for p in self.privacy]
        d["hidden"] = list(self.hidden) if self.hidden is not None else "preset"
        d["lr"] = "preset" if self.lr is None else self.lr
        d["attacks"] = list(self.attacks)
        return d


@dataclass
class AttackReport:
    """Everything :func:`run_attacks` measured, as plain records (see :meth:`to_json`)."""

    dataset: str
    n_records: int
    class_names: tuple[str, str]
    config: dict
    settings: list[dict]
    results: list[dict]
    class_gaps: list[dict]
    curves: list[dict]
    audit: list[dict]
    notes: list[str] = field(default_factory=lambda: list(NOTES))
    seconds: float = math.nan
    inversion: InversionReport | None = None

    def to_json(self, *, curves: bool = False) -> dict:
        """One JSON-ready object: ``results`` (one record per privacy × class × attack),
        ``audit`` (one per audited setting), ``class_gaps``, the settings and notes; with
        ``"inversion"`` among the attacks also ``inversion``
        (:meth:`InversionReport.to_json`)."""
        out = {
            "dataset": self.dataset,
            "n_records": self.n_records,
            "class_names": list(self.class_names),
            "results": self.results,
            "audit": self.audit,
            "class_gaps": self.class_gaps,
            "settings": self.settings,
            "config": self.config,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }
        if curves:
            out["roc_curves"] = self.curves
        if self.inversion is not None:
            out["inversion"] = self.inversion.to_json()
        return _clean(out)

    def fingerprint(self) -> str:
        return config_fingerprint(self.dataset, self.config)

    def store_payloads(self) -> dict[str, dict]:
        """Store entries keyed ``attack:<dataset>:<privacy>`` (and ``...:sigma0`` for the
        control's audit), each with that level's records, curves, gaps and audit."""
        fp = self.fingerprint()
        labels = [s["label"] for s in self.settings] + [
            a["privacy"]
            for a in self.audit
            if a["privacy"] not in {s["label"] for s in self.settings}
        ]
        out = {}
        for lab in dict.fromkeys(labels):
            out[f"attack:{self.dataset}:{lab}"] = _clean(
                {
                    "dataset": self.dataset,
                    "privacy": lab,
                    "n_records": self.n_records,
                    "class_names": list(self.class_names),
                    "setting": next((s for s in self.settings if s["label"] == lab), None),
                    "results": [r for r in self.results if r["privacy"] == lab],
                    "class_gaps": [g for g in self.class_gaps if g["privacy"] == lab],
                    "curves": [c for c in self.curves if c["privacy"] == lab],
                    "audit": next((a for a in self.audit if a["privacy"] == lab), None),
                    "config": self.config,
                    "notes": self.notes,
                    "fingerprint": fp,
                }
            )
        return out


def standardise(X: np.ndarray) -> np.ndarray:
    """Columns to mean 0 and standard deviation 1 (a constant column is only centred)."""
    X = np.asarray(X, dtype=np.float64)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return (X - mean) / scale


def dp_bound(epsilon: float, delta: float, fpr) -> np.ndarray:
    """The largest TPR an (ε, δ)-DP model allows at ``fpr``: min(1, e^ε · FPR + δ)."""
    return np.minimum(1.0, math.exp(epsilon) * np.asarray(fpr, dtype=np.float64) + delta)


def run_attacks(
    dataset: Dataset,
    config: AttackConfig = AttackConfig(),
    *,
    inversion: InversionConfig | None = None,
    label: str | None = None,
    preset: str | None = None,
    threads: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> AttackReport:
    """Membership inference per class and the one-run ε audit of ``dataset``, and attribute
    inference with class inversion when ``config.attacks`` holds ``"inversion"``.

    Parameters
    ----------
    dataset : Dataset
        The pool of records (all rows are used).
    config : AttackConfig
        Privacy levels, number of models, canaries, training settings.
    inversion : InversionConfig, optional
        The inversion's own settings (default: :meth:`InversionConfig.from_attack_config`
        of ``config``); used only with ``"inversion"`` among the attacks. Its attributes are
        checked before anything is trained.
    label : str, optional
        The dataset's name in the records (default ``dataset.name``).
    preset : str, optional
        Dataset name whose model and learning-rate preset to use (default: ``label`` if it
        has one, else the generic default).
    progress : callable, optional
        Receives one line per stage (the command line prints them on stderr).

    Examples
    --------
    >>> from imbalanced_dp.data import load_dataset
    >>> cfg = AttackConfig(privacy=(None,), shadows=4, canaries=0, epochs=2, bootstrap=0)
    >>> rep = run_attacks(load_dataset("pima"), cfg)
    >>> sorted({r["class"] for r in rep.results})
    ['0', '1', 'all']
    """
    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    name = label or dataset.name
    preset = preset if preset is not None else name
    inv_cfg = None
    if INVERSION in config.attacks:
        inv_cfg = inversion or InversionConfig.from_attack_config(config)
        check_inversion(dataset, inv_cfg, preset=preset)
    X = standardise(dataset.X)
    y = np.asarray(dataset.y, dtype=np.int64)
    N, d = X.shape
    if min(np.bincount(y, minlength=2)) < 2:
        raise ParameterError(f"{name}: each class needs at least 2 records for an attack")
    cfg_dict = _resolved_config(config, N, preset)
    hidden, lr, delta = tuple(cfg_dict["hidden"]), cfg_dict["lr"], cfg_dict["delta"]
    arch = architecture(d, hidden)
    if (config.attack_names or config.canaries > 0) and config.batch_size > N // 2:
        raise ParameterError(
            f"batch size {config.batch_size} is larger than the {N // 2} records each model "
            "trains on; give a smaller --batch-size"
        )
    training = TrainingSettings(
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=lr,
        clip=config.clip,
        delta=delta,
        accountant=config.accountant,
    )
    levels = list(config.privacy)
    results: list[dict] = []
    gaps: list[dict] = []
    curves: list[dict] = []
    settings: list[dict] = []
    names = tuple(dataset.class_names)

    if config.attack_names:
        say(
            f"{name}: {N} records; training {len(levels) * config.shadows} models "
            f"({len(levels)} privacy levels × {config.shadows}) on random halves of "
            f"{N // 2} records, {config.epochs} epochs …"
        )
        t1 = time.perf_counter()
        groups = train_membership_models(
            X,
            y,
            arch=arch,
            levels=levels,
            n_models=config.shadows,
            training=training,
            seed=config.seed,
            threads=threads,
        )
        say(
            f"  trained in {time.perf_counter() - t1:.1f} s; attacking with "
            f"{', '.join(config.attack_names)} ({config.bootstrap} bootstrap replicates) …"
        )
        t1 = time.perf_counter()
        plan = (
            BootstrapPlan.draw(
                n_models=config.shadows, labels=y, replicates=config.bootstrap, seed=config.seed
            )
            if config.bootstrap > 0
            else None
        )
        for g in groups:
            st = g.setting
            settings.append(st.to_dict())
            for attack in config.attack_names:
                S = attack_scores(
                    attack,
                    losses=g.losses,
                    phi=g.phi,
                    members=g.members,
                    variance=config.variance,
                )
                per_class = {}
                for cls, cols in (
                    ("0", np.flatnonzero(y == 0)),
                    ("1", np.flatnonzero(y == 1)),
                    (ALL_CLASSES, None),
                ):
                    summ = summarize_roc(
                        S, g.members, records=cols, plan=plan, confidence=config.confidence
                    )
                    per_class[cls] = summ
                    results.append(_record(name, st, cls, names, attack, summ, config))
                    curves.append(_curve(st, cls, attack, summ))
                gaps.extend(_gaps(name, st, attack, per_class, config.confidence))
        say(f"  attacks evaluated in {time.perf_counter() - t1:.1f} s")
    audit: list[dict] = []
    if config.canaries > 0:
        audit_levels: list = []
        for lv in levels:
            audit_levels.append(lv)
            if lv is None:
                audit_levels.append(CONTROL)
        if CONTROL not in audit_levels:
            audit_levels.insert(0, CONTROL)
        say(
            f"  audit: {len(audit_levels)} training runs (one per setting, σ = 0 control "
            f"included) with {config.canaries} canaries …"
        )
        runs = audit_runs(
            X,
            y,
            arch=arch,
            levels=audit_levels,
            canaries=config.canaries,
            training=training,
            seed=config.seed,
            radius=config.canary_radius,
            confidence=config.confidence,
            threads=threads,
        )
        audit = [{"dataset": name} | r.to_dict() for r in runs]
    inverted = None
    if inv_cfg is not None:
        inverted = run_inversion(
            dataset, inv_cfg, label=name, preset=preset, threads=threads, progress=say
        )
    report = AttackReport(
        dataset=name,
        n_records=N,
        class_names=names,
        config=cfg_dict,
        settings=settings,
        results=results,
        class_gaps=gaps,
        curves=curves,
        audit=audit,
        inversion=inverted,
    )
    report.seconds = time.perf_counter() - t0
    say(f"  done in {report.seconds:.1f} s")
    return report


def _record(dataset, st, cls, names, attack, s, config) -> dict:
    rec = {
        "dataset": dataset,
        "privacy": st.label,
        "epsilon": st.epsilon,
        "epsilon_spent": st.epsilon_spent,
        "noise_multiplier": st.noise_multiplier,
        "delta": st.delta,
        "class": cls,
        "class_name": ALL_CLASSES if cls == ALL_CLASSES else names[int(cls)],
        "attack": attack,
        "auc": s.auc,
        "auc_low": s.auc_ci[0],
        "auc_high": s.auc_ci[1],
    }
    for a in REPORT_FPRS:
        f = FPR_FIELDS[a]
        rec[f] = s.tpr[a]
        rec[f"{f}_low"], rec[f"{f}_high"] = s.tpr_ci[a]
    rec["n_members"] = s.n_members
    rec["n_nonmembers"] = s.n_nonmembers
    rec["models"] = config.shadows
    rec["confidence"] = config.confidence
    if st.epsilon is not None:
        for a in REPORT_FPRS:
            rec[f"dp_bound_{FPR_FIELDS[a].removeprefix('tpr_')}"] = float(
                dp_bound(st.epsilon, st.delta, a)
            )
        # Checked where the curve is resolved: FPR of at least one non-member pair.
        ok = s.curve_fpr >= 1.0 / max(s.n_nonmembers, 1)
        low = np.where(np.isfinite(s.curve_low), s.curve_low, s.curve_tpr)
        rec["dp_bound_respected"] = bool(
            np.all(low[ok] <= dp_bound(st.epsilon, st.delta, s.curve_fpr[ok]) + 1e-12)
        )
    return rec


def _curve(st, cls, attack, s) -> dict:
    return {
        "privacy": st.label,
        "epsilon": st.epsilon,
        "delta": st.delta,
        "class": cls,
        "attack": attack,
        "fpr": s.curve_fpr,
        "tpr": s.curve_tpr,
        "low": s.curve_low,
        "high": s.curve_high,
        "min_fpr": 1.0 / max(s.n_nonmembers, 1),
    }


def _gaps(dataset, st, attack, per_class, confidence) -> list[dict]:
    """Minority (label 1) minus majority (label 0), paired on the bootstrap replicates."""
    a, b = per_class["1"], per_class["0"]
    ci = paired_gap_ci(a, b, confidence=confidence) if a.replicates.size else None
    out = []
    metrics = [("auc", a.auc - b.auc)] + [(FPR_FIELDS[f], a.tpr[f] - b.tpr[f]) for f in REPORT_FPRS]
    for j, (metric, diff) in enumerate(metrics):
        low, high = ci[j] if ci is not None else (math.nan, math.nan)
        out.append(
            {
                "dataset": dataset,
                "privacy": st.label,
                "epsilon": st.epsilon,
                "attack": attack,
                "metric": metric,
                "minority_minus_majority": float(diff),
                "low": float(low),
                "high": float(high),
                "minority_leaks_more": bool(low > 0),
                "majority_leaks_more": bool(high < 0),
            }
        )
    return out


def config_for_spec(spec, *, shadows: int = 64, canaries: int = 200) -> AttackConfig:
    """The :class:`AttackConfig` of a study spec's attacks (its training settings); the
    audit's canaries only go with membership inference (``loss``, ``lira``)."""
    if not any(a in ATTACK_FAMILIES for a in spec.attacks):
        canaries = 0
    return AttackConfig(
        privacy=tuple(spec.privacy),
        shadows=shadows,
        canaries=canaries,
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        lr=spec.lr,
        clip=spec.clip,
        hidden=tuple(spec.layers) if spec.layers is not None else None,
        delta=spec.delta,
        accountant=spec.accountant,
        attacks=tuple(dict.fromkeys(spec.attacks)),
    )


#: Models per privacy level and canaries of the attacks a study runs.
STUDY_SHADOWS = 64
STUDY_CANARIES = 200
#: Target models per privacy level of a study's attribute inference.
STUDY_INVERSION_SEEDS = 10


def _stored_fingerprints(store, kind: str) -> dict[str, str | None]:
    try:
        stored = store.extras(kind)
        return {r: p.get("fingerprint") for r, p in zip(stored["run_id"], stored["payload"])}
    except Exception:
        return {}


def run_study_attacks(
    spec,
    store,
    run_ids: Sequence[str] | None = None,
    *,
    quiet: bool = False,
    echo: Callable[[str], None] = print,
    threads: int | None = None,
    shadows: int = STUDY_SHADOWS,
    canaries: int = STUDY_CANARIES,
    inversion_seeds: int = STUDY_INVERSION_SEEDS,
) -> list[str]:
    """Attack every dataset of a study at each of its privacy levels and store the records:
    membership inference and the audit (kind ``"attack"``, keys
    ``attack:<dataset>:<privacy>``) when the study lists ``loss`` or ``lira``, attribute
    inference and class inversion (kind ``"inversion"``, keys
    ``inversion:<dataset>:<privacy>``) when it lists ``inversion``. Entries already stored
    with the same settings are skipped. Returns the keys written.

    Attacks use the study's training settings (epochs, batch size, learning rate, clip,
    layers, δ, accountant) on the whole table at its natural imbalance, with ``shadows``
    models per privacy level and ``canaries`` canaries for the audit, and
    ``inversion_seeds`` target models per privacy level for the inversion."""
    written: list[str] = []
    cfg = config_for_spec(spec, shadows=shadows, canaries=canaries)
    families = tuple(a for a in cfg.attacks if a in ATTACK_FAMILIES)
    mia = replace(cfg, attacks=families, delta=spec.delta)
    inv = (
        InversionConfig.from_attack_config(replace(cfg, delta=spec.delta), seeds=inversion_seeds)
        if INVERSION in cfg.attacks
        else None
    )
    have = _stored_fingerprints(store, "attack") if families else {}
    have_inv = _stored_fingerprints(store, "inversion") if inv is not None else {}
    for ref in spec.datasets:
        ds = ref.load(spec.test_fraction)
        name = ref.label
        preset = ref.name or ""
        jobs: list[tuple[str, Callable[[], dict[str, dict]]]] = []
        if families:
            fp = config_fingerprint(name, _resolved_config(mia, len(ds.y), preset))
            keys = [f"attack:{name}:{privacy_label(p)}" for p in mia.privacy]
            if keys and all(have.get(k) == fp for k in keys):
                if not quiet:
                    echo(f"attacks on {name}: already stored")
            else:
                jobs.append(
                    (
                        "attack",
                        lambda ds=ds, name=name, preset=preset: run_attacks(
                            ds,
                            mia,
                            label=name,
                            preset=preset,
                            threads=threads,
                            progress=None if quiet else echo,
                        ).store_payloads(),
                    )
                )
        if inv is not None:
            fp = config_fingerprint(name, inv.resolved(len(ds.y), preset))
            keys = [f"inversion:{name}:{privacy_label(p)}" for p in inv.privacy]
            if all(have_inv.get(k) == fp for k in keys):
                if not quiet:
                    echo(f"attribute inference on {name}: already stored")
            else:
                jobs.append(
                    (
                        "inversion",
                        lambda ds=ds, name=name, preset=preset: run_inversion(
                            ds,
                            inv,
                            label=name,
                            preset=preset,
                            threads=threads,
                            progress=None if quiet else echo,
                        ).store_payloads(),
                    )
                )
        for kind, job in jobs:
            try:
                payloads = job()
            except ImbalancedDPError as exc:  # one dataset's bad setting must not sink the study
                what = "attacks" if kind == "attack" else "attribute inference"
                echo(f"{what} on {name} failed: {' '.join(str(exc).split())}")
                continue
            for key, payload in payloads.items():
                store.write_extra(key, kind, payload)
                written.append(key)
    return written


def _resolved_config(config: AttackConfig, n_records: int, preset: str) -> dict:
    """The configuration with the dataset's presets filled in (what the fingerprint and the
    records show)."""
    hidden = config.hidden if config.hidden is not None else hidden_for(preset)
    lr = config.lr if config.lr is not None else lr_for(preset)
    delta = config.delta if config.delta is not None else default_delta(n_records)
    return config.to_dict() | {"lr": lr, "hidden": list(hidden), "delta": delta}
