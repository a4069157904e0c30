"""Executing runs: data preparation, calibration, training, evaluation.

:func:`execute_batch` is the unit of work of every backend (in process, a local process
pool, a Ray task): a plain function of picklable arguments returning picklable results.
"""

from __future__ import annotations

import contextlib
import math
import platform
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..data import (
    Dataset,
    FittedScaler,
    PreparedSplit,
    PublicBounds,
    prepare_split,
    rescale,
    scaling_ledger,
)
from ..engines import RunConfig, TrainJob, get_engine, public_stats
from ..exceptions import DataError, ImbalancedDPError, ParameterError, TrainingError
from ..metrics import per_class_report, run_scores
from ..mitigations import Configured, get_mitigation
from ..privacy import (
    HYPERPARAMETER_NOTE,
    SCALER_QUERY,
    SPLIT_NOTE,
    CalibrationCache,
    CalibrationKey,
    MemoryCache,
    PrivacyLedger,
    QuerySpec,
    TrainingPlan,
    calibration_key,
    check_delta,
    check_training_params,
    dp_standard_scaler,
    plan_run,
    scaler_query,
)
from ._runspec import RunSpec

#: not_covered entry of a private run: what its outputs say about the training split.
TRAIN_COUNTS_NOTE = (
    "the class counts of the training split ({n0} / {n1}) and the minority share they give "
    "({share:.4f}) are reported in the clear with the results (minority_fraction in "
    "results.csv, the store, the run's output): epsilon does not protect them"
)


def versions() -> dict:
    """Library versions that a stored result depends on (read from the installed packages'
    metadata: nothing is imported)."""
    from importlib.metadata import PackageNotFoundError, version

    import imbalanced_dp

    out = {
        "imbalanced_dp": imbalanced_dp.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    for key, dist in (
        ("numba", "numba"),
        ("scikit-learn", "scikit-learn"),
        ("imbalanced-learn", "imbalanced-learn"),
        ("opacus", "opacus"),
        ("torch", "torch"),
    ):
        with contextlib.suppress(PackageNotFoundError):  # an optional package missing
            out[key] = version(dist)
    return out


@dataclass
class RunResult:
    """What a run produced, ready to be stored."""

    run_id: str
    spec: RunSpec
    status: str  # "done" or "failed"
    error: str | None = None
    ledger: PrivacyLedger | None = None
    metrics: list[dict] = field(default_factory=list)  # one per class and avg/total
    scores: dict = field(default_factory=dict)  # accuracy, balanced_accuracy
    predictions: dict | None = None  # row, y_true, y_pred, p_positive arrays
    data: dict = field(default_factory=dict)  # class counts, realised minority fraction
    stats: dict = field(default_factory=dict)
    seconds: float = math.nan
    versions: dict = field(default_factory=dict)
    #: the trained model, kept only when asked (``run_single(keep_model=True)``); never
    #: stored
    model: object | None = None
    #: a tuned run's search: the chosen settings, the decision threshold, the objective,
    #: the held-out score, the trials (empty for a run of fixed settings)
    tuned: dict = field(default_factory=dict)


@dataclass
class Batch:
    """Runs that share a dataset, an architecture and an engine, trained together.

    The dataset travels with the batch, so a worker on another machine (a Ray cluster)
    needs no access to the user's files; so do the noise calibrations the driver made."""

    runs: list[tuple[str, RunSpec]]  # (run_id, spec)
    dataset: Dataset | None = None
    calibrations: dict = field(default_factory=dict)  # CalibrationKey -> Calibration
    threads: int = 1
    batch_id: str = ""


@dataclass
class PreparedRun:
    run_id: str
    spec: RunSpec
    split: PreparedSplit
    plan: TrainingPlan
    config: RunConfig
    weights: np.ndarray | None
    ledger: PrivacyLedger
    threshold: float | str | None = None  # None: argmax; a number; "heldout"


@dataclass(frozen=True)
class RunCheck:
    """A run checked against its data: its split, its validated mitigation parameters and
    the noise calibration its plan needs (``None`` without privacy)."""

    split: PreparedSplit
    params: dict
    key: CalibrationKey | None


_SPLIT_CACHE: dict = {}


def get_split(spec: RunSpec, dataset: Dataset | None = None, holdout: float = 0.0):
    """The (cached) prepared split of a run: it depends on the data, the seed, the test
    fraction, the imbalance settings and the held-out share only, never on the privacy
    level."""
    ds = dataset if dataset is not None else spec.dataset.load(spec.test_fraction)
    key = (
        ds.fingerprint,
        spec.seed,
        spec.test_fraction,
        spec.minority_fraction,
        spec.imbalance_method,
        holdout,
        spec.scaling,
        spec.bounds,
    )
    if key not in _SPLIT_CACHE:
        if len(_SPLIT_CACHE) > 256:
            _SPLIT_CACHE.clear()
        bounds = None if spec.bounds is None else PublicBounds.from_tuples(spec.bounds)
        _SPLIT_CACHE[key] = prepare_split(
            ds,
            seed=spec.seed,
            test_fraction=spec.test_fraction,
            minority_fraction=spec.minority_fraction,
            imbalance_method=spec.imbalance_method,
            holdout=holdout,
            scaling=spec.scaling,
            bounds=bounds,
        )
    return _SPLIT_CACHE[key]


def run_queries(spec: RunSpec, params: dict, n_features: int) -> tuple[QuerySpec, ...]:
    """The private queries of a (resolved, private) run besides the gradients: its
    mitigation's, and the DP scaler's when it scales with ``dp_standard``."""
    queries = tuple(get_mitigation(spec.mitigation).queries(params))
    if spec.scaling == "dp_standard":
        queries += (scaler_query(n_features, spec.scaling_share),)
    return queries


def check_run(spec: RunSpec, dataset: Dataset | None = None) -> RunCheck:
    """Validate a run against its data before anything is trained: the mitigation and its
    parameters, the split, the training settings, δ; and name the calibration it needs.

    Raises :class:`~imbalanced_dp.exceptions.ImbalancedDPError` on a bad setting (δ ≥ 1/n,
    a batch larger than the training split...)."""
    r = spec.resolve()
    if r.tuned:
        return check_tuned(r, dataset)
    mit = get_mitigation(r.mitigation)
    params = mit.validate(dict(r.mitigation_params), private=r.private)
    engine = get_engine(r.engine)
    if r.private and mit.clip_rule not in engine.clip_rules:
        raise ParameterError(
            f"the {r.engine} engine implements {', '.join(engine.clip_rules)} clipping only; "
            f"mitigation {r.mitigation!r} needs {mit.clip_rule!r}: use --engine fast"
        )
    split = get_split(r, dataset, mit.holdout(params))
    n = split.n_train
    check_training_params(n=n, batch_size=r.batch_size, epochs=r.epochs, lr=r.lr, clip=r.clip)
    key = None
    if r.private:
        check_delta(r.delta, n)
        key = calibration_key(
            n=n,
            batch_size=r.batch_size,
            epochs=r.epochs,
            epsilon=r.epsilon,
            delta=r.delta,
            accountant=r.accountant,
            queries=run_queries(r, params, split.X_train.shape[1]),
        )
    return RunCheck(split=split, params=params, key=key)


def tuned_split(spec: RunSpec, dataset: Dataset | None = None) -> PreparedSplit:
    """The split of a tuned run: the rows of the fixed run of the same seed, dataset, test
    fraction and imbalance (unscaled: the search scales each trial itself)."""
    return get_split(replace(spec, scaling="none", bounds=None, tuning="none"), dataset)


def check_tuned(spec: RunSpec, dataset: Dataset | None = None) -> RunCheck:
    """Validate a tuned run against its data before anything is trained: the search space
    (batch sizes, public bounds), the held-out rows of each class, δ. Its noise is
    calibrated by the search itself (``key`` is ``None``)."""
    from ..tuning import MIN_HELDOUT_PER_CLASS

    r = spec.resolve()
    split = tuned_split(r, dataset)
    n = split.n_train
    n0, n1 = split.train_class_counts
    settings = r.search_settings()
    expected = settings.holdout * min(n0, n1)
    if expected < MIN_HELDOUT_PER_CLASS:
        frac = "natural" if r.minority_fraction is None else f"{r.minority_fraction:g}"
        raise DataError(
            f"tuning on {r.dataset.label} at minority fraction {frac}: the search's held-out "
            f"rows would hold about {expected:.1f} rows of the minority class ({min(n0, n1)} "
            f"of {n} training rows, {settings.holdout:.0%} held out); it needs at least "
            f"{MIN_HELDOUT_PER_CLASS}: raise tuning_holdout or leave that fraction out"
        )
    r.search_space().check(
        n_rows=max(2, int(n * (1 - settings.holdout))), has_bounds=r.bounds is not None
    )
    if r.private:
        check_delta(r.delta, n)
    return RunCheck(split=split, params={}, key=None)


def run_tuned(
    run_id: str, spec: RunSpec, dataset: Dataset | None = None, *, threads: int = 1
) -> RunResult:
    """A tuned run: the private search (:func:`imbalanced_dp.tuning.private_search`) on the
    run's training split at the run's ε (without privacy for a non-private run), its final
    model evaluated on the run's test rows. Raises like :func:`run_single`."""
    from ..tuning import private_search

    r = spec.resolve()
    ds = dataset if dataset is not None else r.dataset.load(r.test_fraction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the driver already warned about delta
        split = check_tuned(r, ds).split
        res = private_search(
            ds,
            split.train_rows,
            epsilon=r.epsilon,
            space=r.search_space(),
            settings=r.search_settings(),
            delta=r.delta if r.private else None,
            seed=r.seed,
            reproducible=r.reproducible,
            bounds=None if r.bounds is None else PublicBounds.from_tuples(r.bounds),
            preset=tuple(r.layers or ()),
            threads=threads,
        )
    ev = res.evaluate(ds.X[split.test_rows], ds.y[split.test_rows])
    n0, n1 = split.train_class_counts
    t0, t1 = split.test_class_counts
    stats = public_stats(res.model.stats, private=res.private)
    if res.threshold is not None:
        stats["threshold"] = float(res.threshold)
    tuned = {
        "best": res.best.to_dict(),
        "decision_threshold": res.threshold,
        "objective": res.objective,
        "heldout_score": res.score,
        "trials_expected": res.settings.trials,
        "rows": {"training": res.n_train, "search": res.n_search, "held_out": res.n_heldout},
        "search_seconds": res.seconds,
    }
    if res.selection is not None:
        per = [n.epsilon for n in res.selection.noise]
        tuned["trial_distribution"] = res.selection.distribution.describe()
        tuned["epsilon_per_trial"] = [min(per), max(per)]
    return RunResult(
        run_id=run_id,
        spec=r,
        status="done",
        ledger=res.ledger,
        metrics=ev["metrics"],
        scores=ev["scores"],
        predictions={
            "row": split.test_rows.astype(np.int64),
            "y_true": ds.y[split.test_rows].astype(np.int64),
            "y_pred": ev["y_pred"].astype(np.int64),
            "p_positive": ev["p_positive"],
        },
        data={
            "n_train": split.n_train,
            "train_count_0": n0,
            "train_count_1": n1,
            "test_count_0": t0,
            "test_count_1": t1,
            "minority_fraction": split.minority_fraction,
        },
        stats=stats,
        seconds=res.seconds,
        tuned=tuned,
    )


def make_plan(
    spec: RunSpec, check: RunCheck, calibrations: CalibrationCache | None = None
) -> TrainingPlan:
    """The privacy plan of a checked run (calibrating through ``calibrations``)."""
    r = spec.resolve()
    n_features = check.split.X_train.shape[1]
    return plan_run(
        n=check.split.n_train,
        batch_size=r.batch_size,
        epochs=r.epochs,
        epsilon=r.epsilon,
        delta=r.delta if r.private else None,
        accountant=r.accountant,
        queries=run_queries(r, check.params, n_features) if r.private else (),
        reproducible=r.reproducible,
        seed=r.seed,
        setting=r.noise_setting(),
        calibrations=calibrations,
    )


def prepare_run(
    run_id: str,
    spec: RunSpec,
    calibrations: CalibrationCache | None = None,
    dataset: Dataset | None = None,
) -> PreparedRun:
    """Check a run, make its plan, let its mitigation configure it, write its ledger."""
    r = spec.resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the driver already warned about delta
        chk = check_run(r, dataset)
        plan = make_plan(r, chk, calibrations)
    split = chk.split
    released: dict = {}
    bounds = None if r.bounds is None else PublicBounds.from_tuples(r.bounds)
    if r.scaling == "dp_standard":
        # the DP scaler, a one-shot query of the plan, fitted on the training rows
        ds = dataset if dataset is not None else r.dataset.load(r.test_fraction)
        q = plan.query(SCALER_QUERY)
        center, scale, released[SCALER_QUERY] = dp_standard_scaler(
            ds.X[split.train_rows],
            bounds.lower,
            bounds.upper,
            epsilon=q.epsilon,
            n=plan.n,
            rng=plan.rng(SCALER_QUERY),
        )
        scaler = FittedScaler("dp_standard", center, scale, bounds.lower, bounds.upper)
        split = rescale(ds, split, scaler, seed=r.seed)
    mit = get_mitigation(r.mitigation)
    conf = (
        mit.configure(chk.params, plan=plan, y=split.y_train, clip=r.clip)
        if r.private
        else Configured()
    )
    config = RunConfig.from_plan(
        plan,
        seed=r.seed,
        lr=float(r.lr),
        clip=r.clip,
        clip_rule=conf.clip_rule,
        aux=conf.aux,
        aux_query=conf.aux_query,
    )
    scaling_not_covered, scaling_notes = scaling_ledger(r.scaling, bounds)
    not_covered = [*scaling_not_covered, HYPERPARAMETER_NOTE]
    if r.private:
        n0, n1 = split.train_class_counts
        not_covered.append(TRAIN_COUNTS_NOTE.format(n0=n0, n1=n1, share=split.minority_fraction))
    ledger = plan.ledger(
        clip=r.clip if r.private else None,
        not_covered=not_covered,
        notes=[*scaling_notes, SPLIT_NOTE, *conf.notes] if r.private else scaling_notes,
    )
    released.update(conf.released)
    for comp in ledger.components:
        comp.update(released.get(comp["query"], {}))
    return PreparedRun(run_id, r, split, plan, config, conf.weights, ledger, conf.threshold)


def choose_threshold(p_positive: np.ndarray, y: np.ndarray) -> float:
    """The threshold on P(class 1) that maximises balanced accuracy on ``(p, y)``; ties go
    to the threshold closest to 0.5."""
    cands = np.unique(np.concatenate([p_positive, [0.5]]))
    best, best_t = -1.0, 0.5
    pos, neg = max(int((y == 1).sum()), 1), max(int((y == 0).sum()), 1)
    for t in cands:
        pred = p_positive >= t
        bal = 0.5 * ((pred & (y == 1)).sum() / pos + (~pred & (y == 0)).sum() / neg)
        if bal > best + 1e-12 or (abs(bal - best) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best, best_t = bal, float(t)
    return best_t


def _nonfinite_reason(prepared: PreparedRun, model, X: np.ndarray, bad: np.ndarray) -> str:
    """Why a model's probabilities are not finite, in one line: diverged weights, or the
    feature whose scaled value is the largest on the rows concerned."""
    n_bad, n = int(bad.sum()), len(bad)
    what = f"the predicted probabilities are not finite for {n_bad} of {n} rows"
    params = getattr(model, "params", None)
    if params is not None and not np.all(np.isfinite(params)):
        return (
            f"{what}: training diverged (the weights are not finite after "
            f"{prepared.plan.steps} steps at lr {prepared.spec.lr:g}); lower the learning "
            "rate, or rescale features with extreme values"
        )
    names = prepared.split.feature_names
    with np.errstate(invalid="ignore"):
        mag = np.nan_to_num(np.abs(X[bad]), nan=np.inf).max(axis=0)
    j = int(np.argmax(mag))
    col = names[j] if j < len(names) else f"column {j}"
    return (
        f"{what}: their values overflow in the model (feature {col!r} reaches "
        f"{mag[j]:.3g} standard deviations from the training mean); rescale that column "
        "(other units, a logarithm) or leave it out with --drop"
    )


#: How the error of a run whose probabilities are not finite begins.
NONFINITE = "NonFiniteOutput: "


def _failed(prepared: PreparedRun, reason: str, seconds: float = math.nan) -> RunResult:
    return RunResult(
        run_id=prepared.run_id,
        spec=prepared.spec,
        status="failed",
        error=f"{NONFINITE}{reason}",
        seconds=seconds,
    )


def evaluate(prepared: PreparedRun, model) -> RunResult:
    """Predict the test rows (and choose a threshold on held-out rows, if the run's
    mitigation asks for one) and compute the per-class metrics.

    A model whose probabilities are not finite (training diverged, or a feature overflows
    after scaling) gives a ``failed`` result whose ``error`` says why: nothing non-finite
    ever reaches the store."""
    split = prepared.split
    with np.errstate(all="ignore"):
        proba = model.predict_proba(split.X_test)
    bad = ~np.isfinite(proba).all(axis=1)
    if bad.any():
        return _failed(prepared, _nonfinite_reason(prepared, model, split.X_test, bad))
    y_pred = proba.argmax(axis=1).astype(np.int64)
    if prepared.threshold is not None:
        if prepared.threshold == "heldout":
            with np.errstate(all="ignore"):
                p_hold = model.predict_proba(split.X_hold)
            bad = ~np.isfinite(p_hold).all(axis=1)
            if bad.any():
                return _failed(prepared, _nonfinite_reason(prepared, model, split.X_hold, bad))
            t = choose_threshold(p_hold[:, 1], split.y_hold)
            n_hold = len(split.y_hold)
            prepared.ledger.not_covered.append(
                f"decision threshold {t:.4f} chosen to balance the classes on {n_hold} training "
                "rows held out from training, in the clear: those rows were not trained on and "
                "are not protected by epsilon"
            )
        else:
            t = float(prepared.threshold)
            prepared.ledger.notes.append(
                f"decision threshold {t:g} given as public information (not fitted on data)"
            )
        y_pred = (proba[:, 1] >= t).astype(np.int64)
    stats = public_stats(model.stats, private=prepared.config.private)
    if prepared.threshold is not None:
        stats["threshold"] = t
    rep = per_class_report(split.y_test, y_pred)
    rows = [
        {"class": idx, **{c: (int(v) if c == "sup" else float(v)) for c, v in row.items()}}
        for idx, row in rep.iterrows()
    ]
    n0, n1 = split.train_class_counts
    t0, t1 = split.test_class_counts
    return RunResult(
        run_id=prepared.run_id,
        spec=prepared.spec,
        status="done",
        ledger=prepared.ledger,
        metrics=rows,
        scores=run_scores(split.y_test, y_pred),
        predictions={
            "row": split.test_rows.astype(np.int64),
            "y_true": split.y_test.astype(np.int64),
            "y_pred": y_pred,
            "p_positive": proba[:, 1].astype(np.float64),
        },
        data={
            "n_train": split.n_train,
            "train_count_0": n0,
            "train_count_1": n1,
            "test_count_0": t0,
            "test_count_1": t1,
            "minority_fraction": split.minority_fraction,
        },
        stats=stats,
        seconds=model.seconds,
    )


def _failure(run_id: str, spec: RunSpec, exc: BaseException, *, trace: bool) -> RunResult:
    msg = f"{type(exc).__name__}: {exc}"
    if trace:
        msg += "\n" + "".join(traceback.format_exception(exc)[-6:])
    return RunResult(run_id=run_id, spec=spec, status="failed", error=msg)


def execute_batch(batch: Batch) -> list[RunResult]:
    """Train and evaluate a batch; failures come back as ``failed`` results with the error,
    never as exceptions, so that a sweep goes on."""
    ver = versions()
    if any(spec.tuned for _, spec in batch.runs):
        results = []
        for rid, spec in batch.runs:  # (make_batches gives a tuned run a batch of its own)
            try:
                res = (
                    run_tuned(rid, spec, batch.dataset, threads=batch.threads)
                    if spec.tuned
                    else execute_batch(Batch([(rid, spec)], batch.dataset, batch.calibrations))[0]
                )
            except Exception as exc:
                res = _failure(rid, spec, exc, trace=not isinstance(exc, ImbalancedDPError))
            res.versions = ver
            results.append(res)
        return results
    cache = MemoryCache(batch.calibrations)
    try:
        prepared = [prepare_run(rid, spec, cache, batch.dataset) for rid, spec in batch.runs]
    except Exception as exc:
        user = isinstance(exc, ImbalancedDPError)
        return [_failure(rid, s, exc, trace=not user) for rid, s in batch.runs]
    try:
        results = train_prepared(prepared, threads=batch.threads)
    except Exception as exc:
        user = isinstance(exc, ImbalancedDPError)
        return [_failure(rid, s, exc, trace=not user) for rid, s in batch.runs]
    for r in results:
        r.versions = ver
    return results


def train_prepared(
    prepared: Sequence[PreparedRun], *, threads: int = 1, keep_models: bool = False
) -> list[RunResult]:
    """Train prepared runs of one engine and architecture together and evaluate them (each
    model's ``seconds`` is its share of the engine's time; ``keep_models``: each result
    keeps its trained model in ``model``)."""
    engine = get_engine(prepared[0].spec.engine)
    jobs = [
        TrainJob(p.split.X_train, p.split.y_train, _arch(p), p.config, p.weights) for p in prepared
    ]
    models = engine.train(jobs, threads=threads)
    results = []
    for p, m in zip(prepared, models):
        try:
            res = evaluate(p, m)
        except Exception as exc:  # one run's evaluation must not fail its whole batch
            res = _failure(p.run_id, p.spec, exc, trace=not isinstance(exc, ImbalancedDPError))
        if keep_models:
            res.model = m
        results.append(res)
    return results


def _arch(p: PreparedRun):
    return p.spec.arch(p.split.X_train.shape[1])


def run_single(spec: RunSpec, *, threads: int = 1, keep_model: bool = False) -> RunResult:
    """Validate, train and evaluate one run in this process (what ``imbalanced-dp run``
    does). Bad settings raise :class:`~imbalanced_dp.exceptions.ImbalancedDPError`, and so
    does a run whose model gives probabilities that are not finite (its message says why).
    ``keep_model`` keeps the trained model and the run's scaling in the result (``model``,
    a :class:`~imbalanced_dp.models.SavedModel` ready for ``save``).

    Examples
    --------
    >>> from imbalanced_dp import DatasetRef, RunSpec, run_single
    >>> res = run_single(RunSpec(DatasetRef(name="pima"), seed=0, epsilon=2.0, epochs=5,
    ...                          accountant="rdp"))
    >>> res.status, [m["class"] for m in res.metrics]
    ('done', ['0', '1', 'avg/total'])
    >>> res.ledger.epsilon_spent <= 2.0 and res.ledger.steps == 50
    True
    """
    ds = spec.dataset.load(spec.test_fraction)
    check_run(spec, ds)
    if spec.tuned:
        if keep_model:
            raise ParameterError(
                "a tuned run keeps no model here: imbalanced-dp tune --out saves one"
            )
        res = run_tuned(spec.run_id(ds.fingerprint), spec, ds, threads=threads)
        res.versions = versions()
        return res
    prepared = prepare_run(spec.run_id(ds.fingerprint), spec, None, ds)
    res = train_prepared([prepared], threads=threads, keep_models=keep_model)[0]
    if res.status != "done":
        err = str(res.error)
        if err.startswith(NONFINITE):
            raise TrainingError(err[len(NONFINITE) :])
        raise RuntimeError(err.splitlines()[0])
    res.versions = versions()
    if keep_model:
        res.model = saved_model(res, prepared, ds)
    return res


def saved_model(result: RunResult, prepared: PreparedRun, dataset: Dataset):
    """The :class:`~imbalanced_dp.models.SavedModel` of a finished run whose result kept its
    trained model: weights, the split's scaling, the table's names, the decision threshold
    and the ledger, which lists the saved scaling as released in the clear."""
    from ..models import SAVED_SCALER_NOTE, SavedModel

    ledger = result.ledger.to_dict()
    if result.spec.private and result.spec.scaling in ("standard", "minmax"):
        # (none has no statistics, public uses public ones, dp_standard's are DP-released)
        ledger["not_covered"] = [*ledger.get("not_covered", []), SAVED_SCALER_NOTE]
    threshold = result.stats.get("threshold")
    trained = result.model
    return SavedModel(
        layers=tuple(trained.arch.sizes),
        params=trained.params,
        feature_names=tuple(dataset.feature_names),
        scaler_mean=prepared.split.scaler_mean,
        scaler_scale=prepared.split.scaler_scale,
        scaler_lower=prepared.split.scaler.lower,
        scaler_upper=prepared.split.scaler.upper,
        class_names=tuple(dataset.class_names),
        kind="run",
        threshold=None if threshold is None else float(threshold),
        target=dataset.extra.get("target"),
        ledger=ledger,
        run={"run_id": result.run_id, "dataset": dataset.name, **result.spec.to_dict()},
        versions=versions(),
    )
