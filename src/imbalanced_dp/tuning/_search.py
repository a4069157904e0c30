"""The private hyperparameter search: random trials of DP-SGD, scored with noise on held-out
rows, the best released (Papernot & Steinke 2022; the accounting is
:func:`imbalanced_dp.privacy.plan_selection`).

One search, step by step:

1. The training split's rows are divided record by record, independently, into the rows
   the trials train on and the held-out rows that score them (``holdout`` of them on
   average), from the search's randomness (secret unless in research mode). A record is
   thus either trained on or scored, never both. The two sizes are public numbers from then
   on, like ``n`` in every run (docs/privacy.md, rule 12).
2. Every candidate *setting* of the space (batch size, epochs, mitigation, scaling: what
   decides a trial's privacy) gets its noise from the search's calibration, so that the
   best of ``K`` trials (``K`` drawn from the stated distribution) spends at most ε at δ,
   with retraining if asked.
3. ``K`` is drawn, then ``K`` settings, each uniformly from the space; the trials train
   together in batches on the fast engine (one batch per architecture).
4. Each trial is scored on the held-out rows: its confusion counts there, each with
   Gaussian noise (one record changes one count by one), give the objective.
5. The best trial (the first of equal scores) is the result: its settings, its noisy score
   and its model, or, with ``retrain``, its settings trained again on every training row
   with the same noise. Nothing else leaves the search: neither ``K`` nor the other trials'
   settings or scores (releasing them would void the theorem).
"""

from __future__ import annotations

import math
import secrets
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np

from ..data import Dataset, FittedScaler, PublicBounds, fit_scaler, scaling_ledger
from ..engines import RunConfig, TrainedModel, TrainJob, get_engine, public_stats
from ..exceptions import DataError, ParameterError, TrainingError
from ..metrics import per_class_report, run_scores
from ..mitigations import get_mitigation
from ..models import architecture
from ..privacy import (
    ADJACENCY,
    ADJACENCY_NOTE,
    CONVERSION,
    DEFAULT_ETA,
    NOISE_NOTE,
    ONCE_LAPLACE,
    PUBLIC_N_NOTE,
    RESEARCH_NOISE,
    RESEARCH_NOTE,
    SCALER_QUERY,
    SECRET_NOISE,
    SECRET_NOTE,
    SPLIT_NOTE,
    CandidateSetting,
    PrivacyLedger,
    PrivacyWarning,
    SelectionPlan,
    TrainingPlan,
    TrialDistribution,
    check_delta,
    default_delta,
    dp_standard_scaler,
    plan_run,
    plan_selection,
    plan_with_noise,
    research_key,
    sampling_plan,
    scaler_query,
)
from ._space import Candidate, SearchSpace

#: The objectives a search may maximise, with their formulas (on the held-out confusion
#: counts of label 1 as the positive class).
OBJECTIVES: dict[str, str] = {
    "balanced_accuracy": "(recall + specificity) / 2",
    "minority_recall": "recall of label 1: TP / (TP + FN)",
    "f1": "F1 of label 1: 2 TP / (2 TP + FP + FN)",
    "g_mean": "sqrt(recall x specificity)",
}
DEFAULT_OBJECTIVE = "balanced_accuracy"
DEFAULT_TRIALS = 10.0
#: A larger held-out share than a validation split usually takes: the scores carry noise of
#: a fixed size in counts, so more held-out rows make the selection less of a lottery.
DEFAULT_HOLDOUT = 0.35
#: The share of a candidate's ε that the DP scaler spends (as in a run).
SCALER_SHARE = 0.1
#: Fewest held-out rows of each class a search expects: below, its scores mean nothing.
MIN_HELDOUT_PER_CLASS = 5
#: The accountant named in a tuned model's ledger.
SELECTION_ACCOUNTANT = "rdp (dp-accounting) with private selection"

SECRET_TRIALS_NOTE = (
    "the number of trials the search ran, the other trials' settings and their scores are "
    "not released (releasing them would void the selection theorem's bound); the search's "
    "running time grows with the number of trials and is not hidden"
)
SEARCH_SPLIT_NOTE = (
    "the search divided the {n} training rows record by record, independently, into {n_t} "
    "rows the trials train on and {n_v} held-out rows that score them; these two sizes are "
    "released and treated as public, like n"
)
TRAIN_COUNTS = (
    "the class counts of the training split ({n0} / {n1}) are released in the clear with "
    "the results: epsilon does not protect them (the threshold rule 'prior' uses their ratio)"
)
NONPRIVATE_SEARCH_NOTE = (
    "no differential privacy: every trial trained in the clear and scored exactly on the "
    "held-out rows"
)


def objective_value(objective: str, tp: float, fn: float, tn: float, fp: float) -> float:
    """The objective from confusion counts (noisy ones too: each count is taken as at least
    0 and each ratio's denominator as at least 1, post-processing of the release).

    >>> objective_value("balanced_accuracy", tp=8, fn=2, tn=30, fp=10)
    0.775
    >>> round(objective_value("g_mean", tp=8, fn=2, tn=30, fp=10), 4)
    0.7746
    """
    tp, fn, tn, fp = (max(float(v), 0.0) for v in (tp, fn, tn, fp))
    rec = tp / max(tp + fn, 1.0)
    spe = tn / max(tn + fp, 1.0)
    if objective == "balanced_accuracy":
        return 0.5 * (rec + spe)
    if objective == "minority_recall":
        return rec
    if objective == "f1":
        return 2 * tp / max(2 * tp + fp + fn, 1.0)
    if objective == "g_mean":
        return math.sqrt(rec * spe)
    raise ParameterError(f"objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")


def _dp_accounting_version() -> str:
    """The installed dp-accounting's version (its RdpAccountant computes the trials' curves)."""
    from importlib.metadata import version

    return version("dp-accounting")


@dataclass(frozen=True)
class SearchSettings:
    """How a search runs: the ``objective`` it maximises on held-out rows, the expected
    number of ``trials`` and their distribution (truncated negative binomial of shape
    ``eta``, 1 the geometric; or ``poisson``), the ``holdout`` share of the training rows
    that score the trials, and whether the winner is ``retrain``-ed on every training
    row."""

    objective: str = DEFAULT_OBJECTIVE
    trials: float = DEFAULT_TRIALS
    eta: float = DEFAULT_ETA
    poisson: bool = False
    holdout: float = DEFAULT_HOLDOUT
    retrain: bool = False

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ParameterError(
                f"objective must be one of {', '.join(OBJECTIVES)}; got {self.objective!r}"
            )
        if not (isinstance(self.holdout, int | float) and 0.05 <= float(self.holdout) <= 0.5):
            raise ParameterError(
                f"the held-out share of the training rows must be in [0.05, 0.5]; got "
                f"{self.holdout!r}"
            )
        self.distribution()  # validates trials and eta
        # 5 and 5.0 are one setting (the research key hashes them)
        for name in ("trials", "eta", "holdout"):
            object.__setattr__(self, name, float(getattr(self, name)))

    def distribution(self) -> TrialDistribution:
        if self.poisson:
            return TrialDistribution.poisson(self.trials)
        return TrialDistribution.truncated_negative_binomial(self.trials, eta=self.eta)

    def to_dict(self) -> dict:
        return {
            "objective": self.objective,
            "trials": self.trials,
            "eta": None if self.poisson else self.eta,
            "poisson": self.poisson,
            "holdout": self.holdout,
            "retrain": self.retrain,
        }


@dataclass
class SearchResult:
    """A finished search: the chosen settings ``best``, the final model (``model`` with its
    ``scaler`` and decision ``threshold``, ``None`` for the more probable class), the
    ``score`` of the best trial on the held-out rows (noisy under privacy), the privacy
    ``ledger`` of the final model and the search's ``selection`` plan (``None`` without
    privacy)."""

    private: bool
    best: Candidate
    model: TrainedModel
    scaler: FittedScaler
    threshold: float | None
    score: float
    objective: str
    ledger: PrivacyLedger
    selection: SelectionPlan | None
    plan: TrainingPlan
    n_train: int
    n_search: int
    n_heldout: int
    settings: SearchSettings
    seconds: float = math.nan
    released: dict = field(default_factory=dict)

    def predict_proba(self, X) -> np.ndarray:
        """P(label 0), P(label 1) of raw rows (scaled like the final model's training)."""
        with np.errstate(all="ignore"):
            return self.model.predict_proba(self.scaler.transform(X))

    def decide(self, p_positive: np.ndarray) -> np.ndarray:
        """Label 1 where P(label 1) reaches the threshold (is above 0.5 without one)."""
        p = np.asarray(p_positive, dtype=np.float64)
        if self.threshold is None:
            return (p > 0.5).astype(np.int64)
        return (p >= self.threshold).astype(np.int64)

    def predict(self, X) -> np.ndarray:
        return self.decide(self.predict_proba(X)[:, 1])

    def evaluate(self, X, y) -> dict:
        """Per-class metrics, accuracy and balanced accuracy of the final model on rows
        ``(X, y)`` (the test rows, used in the clear), and its predictions."""
        proba = self.predict_proba(X)
        if not np.isfinite(proba).all():
            raise TrainingError(
                "the tuned model's probabilities are not finite on the test rows: a feature "
                "overflows after scaling; rescale it or leave it out with --drop"
            )
        y_pred = self.decide(proba[:, 1])
        y = np.asarray(y, dtype=np.int64)
        rep = per_class_report(y, y_pred)
        rows = [
            {"class": idx, **{c: (int(v) if c == "sup" else float(v)) for c, v in row.items()}}
            for idx, row in rep.iterrows()
        ]
        return {
            "metrics": rows,
            "scores": run_scores(y, y_pred),
            "y_pred": y_pred,
            "p_positive": proba[:, 1].astype(np.float64),
        }


# ---------------------------------------------------------------------- randomness


class _Noise:
    """The search's random streams: secret (fresh OS entropy, never kept) by default, or in
    research mode derived from the seed and the search's whole setting."""

    def __init__(self, *, reproducible: bool, seed: int, setting: dict) -> None:
        self.reproducible = bool(reproducible)
        self.seed = int(seed)
        self.setting = setting
        if self.reproducible:
            key = research_key(self.seed, {"private search": setting})
            self.rng = np.random.default_rng([key & 0xFFFFFFFF, key >> 32, 0x5E1EC7])
        else:
            self.rng = np.random.default_rng(secrets.randbits(128))

    def init_seed(self) -> int:
        if self.reproducible:
            return int(self.rng.integers(2**31 - 1))
        return secrets.randbits(31)


# ---------------------------------------------------------------------- the search


@dataclass
class _Trial:
    candidate: Candidate
    scaler: FittedScaler
    plan: TrainingPlan
    job: TrainJob
    threshold: float | None
    released: dict


def _queries(cand: Candidate, n_features: int, *, private: bool):
    if not private:
        return ()
    mit = get_mitigation(cand.mitigation)
    queries = tuple(mit.queries(mit.validate({}, private=True)))
    if cand.scaling == "dp_standard":
        queries += (scaler_query(n_features, SCALER_SHARE),)
    return queries


def _setting(cand: Candidate, n_search: int, n_train: int, n_features: int) -> CandidateSetting:
    """The public constants of a candidate's privacy."""
    sp = sampling_plan(n=n_search, batch_size=cand.batch_size, epochs=cand.epochs)
    full = sampling_plan(n=n_train, batch_size=cand.batch_size, epochs=cand.epochs)
    shares = [
        q.share for q in _queries(cand, n_features, private=True) if q.mechanism == ONCE_LAPLACE
    ]
    return CandidateSetting(sp.sample_rate, sp.steps, tuple(shares), full.sample_rate, full.steps)


def _all_settings(space: SearchSpace, n_search: int, n_train: int, n_features: int):
    """Every privacy setting the space can draw (the calibration covers all of them)."""
    out = {}
    for b in space.batch_size:
        for e in space.epochs:
            for m in space.mitigation:
                for s in space.scaling:
                    cand = Candidate(0.1, b, e, 1.0, (), m, "argmax", s)
                    out[_setting(cand, n_search, n_train, n_features)] = None
    return list(out)


def _threshold(rule, prior: float) -> float | None:
    if rule == "argmax":
        return None
    if rule == "prior":
        return float(prior)
    return float(rule)


def _decide(p: np.ndarray, threshold: float | None) -> np.ndarray:
    return (p > 0.5) if threshold is None else (p >= threshold)


def _prepare(
    cand: Candidate,
    *,
    X: np.ndarray,
    y: np.ndarray,
    n_train_for_plan: int,
    selection: SelectionPlan | None,
    setting: CandidateSetting | None,
    delta: float | None,
    epsilon: float | None,
    bounds: PublicBounds | None,
    prior: float,
    noise: _Noise,
    tag: dict,
) -> _Trial:
    """Scale, plan and configure one trial (or the final retraining) on rows ``(X, y)``."""
    private = selection is not None
    d = X.shape[1]
    queries = _queries(cand, d, private=private)
    if private:
        cn = selection.noise_for(setting)
        lap = {}
        for q in queries:
            if q.mechanism == ONCE_LAPLACE:
                lap[q.name] = cn.laplace_epsilons[setting.laplace_shares.index(q.share)]
        plan = plan_with_noise(
            n=n_train_for_plan,
            batch_size=cand.batch_size,
            epochs=cand.epochs,
            noise_multiplier=cn.noise_multiplier,
            laplace_epsilons=lap,
            delta=float(delta),
            epsilon_target=float(epsilon),
            epsilon_spent=cn.epsilon,
            accountant=SELECTION_ACCOUNTANT,
            queries=queries,
            reproducible=noise.reproducible,
            seed=noise.seed,
            setting={**tag, **cand.to_dict()},
        )
    else:
        plan = plan_run(
            n=n_train_for_plan, batch_size=cand.batch_size, epochs=cand.epochs, epsilon=None
        )
    released: dict = {}
    if cand.scaling == "dp_standard" and private:
        q = plan.query(SCALER_QUERY)
        center, scale, released[SCALER_QUERY] = dp_standard_scaler(
            X, bounds.lower, bounds.upper, epsilon=q.epsilon, n=plan.n, rng=plan.rng(SCALER_QUERY)
        )
        scaler = FittedScaler("dp_standard", center, scale, bounds.lower, bounds.upper)
    else:
        kind = "standard" if cand.scaling == "dp_standard" else cand.scaling
        with np.errstate(all="ignore"):
            scaler = fit_scaler(kind, X, bounds)
    Xs = scaler.transform(X)
    if private:
        mit = get_mitigation(cand.mitigation)
        conf = mit.configure(mit.validate({}, private=True), plan=plan, y=y, clip=cand.clip)
        released.update(conf.released)
        config = RunConfig.from_plan(
            plan,
            seed=noise.init_seed(),
            lr=cand.lr,
            clip=cand.clip,
            clip_rule=conf.clip_rule,
            aux=conf.aux,
            aux_query=conf.aux_query,
        )
        weights = conf.weights
    else:
        config = RunConfig.from_plan(plan, seed=noise.init_seed(), lr=cand.lr)
        weights = None
    job = TrainJob(Xs, y, architecture(d, cand.layers), config, weights)
    return _Trial(cand, scaler, plan, job, _threshold(cand.threshold, prior), released)


def _train(trials: list[_Trial], threads: int | None) -> list[TrainedModel]:
    """Train the trials in one batch per architecture on the fast engine (order kept)."""
    engine = get_engine("fast")
    out: list[TrainedModel | None] = [None] * len(trials)
    groups: dict[tuple, list[int]] = {}
    for i, t in enumerate(trials):
        groups.setdefault(t.job.arch.sizes, []).append(i)
    for idx in groups.values():
        models = engine.train([trials[i].job for i in idx], threads=threads)
        for i, m in zip(idx, models):
            out[i] = m
    return out  # type: ignore[return-value]


def _confusion(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    y1, p1 = y == 1, pred.astype(bool)
    return np.array(
        [np.sum(y1 & p1), np.sum(y1 & ~p1), np.sum(~y1 & ~p1), np.sum(~y1 & p1)], dtype=float
    )


def private_search(
    dataset: Dataset,
    train_rows: np.ndarray,
    *,
    epsilon: float | None,
    space: SearchSpace | None = None,
    settings: SearchSettings | None = None,
    delta: float | None = None,
    seed: int = 0,
    reproducible: bool = False,
    bounds: PublicBounds | None = None,
    preset: tuple[int, ...] = (20, 10, 10),
    threads: int | None = None,
) -> SearchResult:
    """Search the space privately on ``dataset``'s rows ``train_rows`` (the test rows are
    never read), spending at most ``epsilon`` at ``delta`` for the whole search and the final
    model (see the module docstring). ``epsilon=None`` runs the same search without privacy
    (``round(trials)`` trials, trained in the clear, scored exactly): the comparison a user
    may want, which protects nothing.

    ``bounds`` are the table's public bounds (for ``dp_standard`` and ``public`` scaling);
    ``preset`` the hidden layers of the space's ``"preset"``; the noise is secret unless
    ``reproducible`` (research mode, from ``seed``). Raises
    :class:`~imbalanced_dp.exceptions.ImbalancedDPError` for a space or budget that cannot
    work, before anything is trained.

    Examples
    --------
    >>> import numpy as np
    >>> from imbalanced_dp import load_dataset
    >>> from imbalanced_dp.tuning import SearchSettings, SearchSpace, private_search
    >>> ds = load_dataset("pima")
    >>> space = SearchSpace.from_dict({"epochs": [5], "layers": [[]], "scaling": ["standard"]})
    >>> res = private_search(ds, np.arange(600), epsilon=2.0, space=space,
    ...                      settings=SearchSettings(trials=3), reproducible=True)
    >>> res.ledger.epsilon_spent <= 2.0, res.ledger.selection["theorem"][:17]
    (True, 'Papernot & Steink')
    """
    t0 = time.perf_counter()
    private = epsilon is not None
    space = SearchSpace.default() if space is None else space
    settings = SearchSettings() if settings is None else settings
    rows = np.asarray(train_rows, dtype=np.int64)
    X_all, y_all = dataset.X[rows], dataset.y[rows]
    n = len(rows)
    n0, n1 = (int(c) for c in np.bincount(y_all, minlength=2))
    expected = settings.holdout * min(n0, n1)
    if expected < MIN_HELDOUT_PER_CLASS:
        raise DataError(
            f"the objective {settings.objective} is not defined for this table: the held-out "
            f"rows would hold about {expected:.1f} rows of its smaller class ({min(n0, n1)} of "
            f"{n} training rows, {settings.holdout:.0%} held out); a search needs at least "
            f"{MIN_HELDOUT_PER_CLASS} (raise --holdout, or use a larger table)"
        )
    if private:
        if delta is None:
            delta = default_delta(dataset.n_rows)
        check_delta(float(delta), n)  # (delta >= 1/n is refused before anything is drawn)
    tag = {
        "dataset": dataset.fingerprint,
        "rows": int(n),
        "epsilon": epsilon,
        "delta": delta,
        "space": space.to_dict(),
        "settings": settings.to_dict(),
    }
    noise = _Noise(reproducible=reproducible, seed=seed, setting=tag)
    if not private:
        # a comparison, not a private release: its split and draws follow the seed
        noise = _Noise(reproducible=True, seed=seed, setting={**tag, "nonprivate": True})
    held = noise.rng.random(n) < settings.holdout
    n_v = int(held.sum())
    n_t = n - n_v
    if n_t < 2 or n_v < 2:
        raise DataError(f"too few training rows ({n}) for a search with held-out rows")
    if private:
        check_delta(float(delta), n_t)  # the trials train on n_t rows (warns once if large)
    space = space.check(n_rows=n_t, has_bounds=bounds is not None)
    if not private:
        space = space.with_values(
            mitigation=["none"],
            scaling=list(
                dict.fromkeys("standard" if s == "dp_standard" else s for s in space.scaling)
            ),
        )
    d = dataset.n_features
    selection = None
    if private:
        selection = plan_selection(
            _all_settings(space, n_t, n, d),
            epsilon=float(epsilon),
            delta=float(delta),
            distribution=settings.distribution(),
            retrain=settings.retrain,
        )
        k = settings.distribution().sample(noise.rng)
        if k == 0:
            raise TrainingError(
                f"the search drew no trial (a Poisson number of trials is 0 with probability "
                f"exp(-{settings.trials:g})): nothing is released, and the search's epsilon is "
                f"spent all the same (running it again until a trial is drawn would be a "
                f"different distribution, outside the theorem); a larger --trials or the "
                f"default truncated negative binomial never draws 0"
            )
    else:
        k = max(1, round(settings.trials))
    X_t, y_t = X_all[~held], y_all[~held]
    X_v, y_v = X_all[held], y_all[held]
    prior = n1 / n
    trials = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)  # (delta was checked above)
        for i in range(k):
            cand = space.sample(noise.rng, preset)
            setting = _setting(cand, n_t, n, d) if private else None
            trials.append(
                _prepare(
                    cand,
                    X=X_t,
                    y=y_t,
                    n_train_for_plan=n_t,
                    selection=selection,
                    setting=setting,
                    delta=delta,
                    epsilon=epsilon,
                    bounds=bounds,
                    prior=prior,
                    noise=noise,
                    tag={"trial": i, "search": tag},
                )
            )
    models = _train(trials, threads)
    best_i, best_score = -1, -math.inf
    for i, (t, m) in enumerate(zip(trials, models)):
        with np.errstate(all="ignore"):
            p = m.predict_proba(t.scaler.transform(X_v))[:, 1]
        if not np.isfinite(p).all():
            continue  # a diverged trial scores -inf (a function of its model alone)
        counts = _confusion(y_v, _decide(p, t.threshold))
        if private:
            s_score = selection.noise_for(_setting(t.candidate, n_t, n, d)).score_noise_multiplier
            counts = counts + noise.rng.normal(0.0, s_score, size=4)
        score = objective_value(settings.objective, *counts)
        if score > best_score:
            best_i, best_score = i, score
    if best_i < 0:
        raise TrainingError(
            "every trial of the search diverged (its probabilities are not finite): lower the "
            "learning rates of the space, or rescale features with extreme values"
        )
    best = trials[best_i]
    final, model = best, models[best_i]
    if settings.retrain:
        final = _prepare(
            best.candidate,
            X=X_all,
            y=y_all,
            n_train_for_plan=n,
            selection=selection,
            setting=_setting(best.candidate, n_t, n, d) if private else None,
            delta=delta,
            epsilon=epsilon,
            bounds=bounds,
            prior=prior,
            noise=noise,
            tag={"final": True, "search": tag},
        )
        model = _train([final], threads)[0]
        if not np.all(np.isfinite(model.params)):
            raise TrainingError(
                "retraining the chosen settings on every training row diverged; run again "
                "without --retrain"
            )
    ledger = _ledger(
        final=final,
        best_score=best_score,
        selection=selection,
        settings=settings,
        space=space,
        n=n,
        n_t=n_t,
        n_v=n_v,
        n0=n0,
        n1=n1,
        bounds=bounds,
        noise=noise,
        epsilon=epsilon,
        best_setting=_setting(best.candidate, n_t, n, d) if private else None,
    )
    # the engine's per-class counts of the trials are private (docs/privacy.md, rule 11)
    model = replace(model, stats=public_stats(model.stats, private=private))
    return SearchResult(
        private=private,
        best=best.candidate,
        model=model,
        scaler=final.scaler,
        threshold=final.threshold,
        score=float(best_score),
        objective=settings.objective,
        ledger=ledger,
        selection=selection,
        plan=final.plan,
        n_train=n,
        n_search=n_t,
        n_heldout=n_v,
        settings=settings,
        seconds=time.perf_counter() - t0,
        released=final.released,
    )


def _ledger(
    *,
    final: _Trial,
    best_score: float,
    selection: SelectionPlan | None,
    settings: SearchSettings,
    space: SearchSpace,
    n: int,
    n_t: int,
    n_v: int,
    n0: int,
    n1: int,
    bounds: PublicBounds | None,
    noise: _Noise,
    epsilon: float | None,
    best_setting: CandidateSetting | None,
) -> PrivacyLedger:
    cand = final.candidate
    sc_not_covered, sc_notes = scaling_ledger(
        "standard" if (cand.scaling == "dp_standard" and selection is None) else cand.scaling,
        bounds,
    )
    if selection is not None:
        # every trial's scaler is part of the search: a scaling fitted in the clear by the
        # trials that lost still decided which one won, whatever the winner's scaling
        for kind in space.scaling:
            if kind == cand.scaling:
                continue
            for entry in scaling_ledger(kind, bounds)[0]:
                sc_not_covered.append(
                    f"{entry} (the search's trials with scaling {kind}: the choice of the "
                    "released model depends on them)"
                )
    split = SEARCH_SPLIT_NOTE.format(n=n, n_t=n_t, n_v=n_v)
    search = {
        "objective": settings.objective,
        "objective_formula": OBJECTIVES[settings.objective],
        "trials_expected": settings.trials,
        "holdout": settings.holdout,
        "rows": {"training": n, "search": n_t, "held_out": n_v},
        "space": space.to_dict(),
        "best": cand.to_dict(),
        "best_score": best_score,
    }
    if selection is None:
        led = final.plan.ledger(
            not_covered=[NONPRIVATE_SEARCH_NOTE, *sc_not_covered], notes=[split, *sc_notes]
        )
        led.selection = {"private": False, **search}
        return led
    cn = selection.noise_for(best_setting)
    lap = ", ".join(f"{e:.4g}" for e in cn.laplace_epsilons)
    lap_note = f"; one-shot Laplace queries of epsilon {lap}" if lap else ""
    composition = (
        f"private selection: the best of K trials, K {selection.distribution.describe()}; "
        f"{selection.theorem}. Each trial's RDP curve: its DP-SGD steps (noise multiplier set "
        f"per setting, {cn.noise_multiplier:.6g} for the chosen one{lap_note}), its held-out "
        f"score (Gaussian noise {cn.score_noise_multiplier:.4g} on each confusion count, "
        "below the training curve at every order, in parallel since a record is trained on "
        "or scored, never both); the envelope over the space's settings; "
        + (
            "plus the retraining of the chosen settings on every training row (adaptive "
            "composition of RDP curves); "
            if selection.retrain
            else "the final model is the best trial's; "
        )
        + f"{CONVERSION}: epsilon {selection.epsilon_spent:.6g} at delta {selection.delta:g} "
        f"(order {selection.optimal_order:g}); a trial alone would spend "
        f"{min(n.epsilon for n in selection.noise):.4g} to "
        f"{max(n.epsilon for n in selection.noise):.4g}"
    )
    not_covered = [
        PUBLIC_N_NOTE.format(n=n),
        split,
        TRAIN_COUNTS.format(n0=n0, n1=n1),
        *sc_not_covered,
    ]
    research = noise.reproducible
    notes = [
        ADJACENCY_NOTE.format(n=n),
        RESEARCH_NOTE.format(seed=noise.seed) if research else SECRET_NOTE,
        NOISE_NOTE,
        SECRET_TRIALS_NOTE,
        *sc_notes,
        SPLIT_NOTE,
        *selection.notes,
    ]
    base = final.plan.ledger(clip=cand.clip)
    components = [c for c in base.components]
    for comp in components:
        comp.update(final.released.get(comp["query"], {}))
    components.append(
        {
            "query": "heldout_score",
            "mechanism": (
                "confusion counts of each trial on the held-out rows, Gaussian noise on each "
                f"count; the released value is the best trial's {settings.objective}"
            ),
            "kind": "gaussian_score",
            "sampling": f"once per trial, on the {n_v} held-out rows",
            "sensitivity": "L2 norm 1 (one record changes one count by one)",
            "share": None,
            "noise_multiplier": cn.score_noise_multiplier,
            "laplace_scale": None,
            "epsilon": None,
            "released_score": best_score,
        }
    )
    return replace(
        base,
        accountant=SELECTION_ACCOUNTANT,
        accountant_version=f"dp-accounting {_dp_accounting_version()}",
        epsilon_target=float(epsilon),
        epsilon_spent=selection.epsilon_spent,
        not_covered=not_covered,
        notes=notes,
        components=components,
        adjacency=ADJACENCY,
        noise_source=RESEARCH_NOISE if research else SECRET_NOISE,
        composition=composition,
        selection={"private": True, **selection.to_dict(), **search},
    )
