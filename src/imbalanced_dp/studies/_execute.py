"""Executing runs: data preparation, calibration, training, evaluation.

:func:`execute_batch` is the unit of work of every backend (in process, a local process
pool, a Ray task): a plain function of picklable arguments returning picklable results.
"""

from __future__ import annotations

import math
import platform
import time
import traceback
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data import SCALING_NOTE, Dataset, PreparedSplit, prepare_split
from ..engines import RunConfig, TrainJob, get_engine
from ..exceptions import ImbalancedDPError
from ..metrics import per_class_report, run_scores
from ..privacy import (
    HYPERPARAMETER_NOTE,
    NOISE_NOTE,
    PUBLIC_N_NOTE,
    SPLIT_NOTE,
    PrivacyLedger,
    accountant_version,
    calibrate_noise_multiplier,
    check_delta,
    check_training_params,
    epsilon_spent,
    sampling_plan,
)
from ._runspec import RunSpec


def versions() -> dict:
    """Library versions that a stored result depends on."""
    import imblearn
    import numba
    import sklearn

    import imbalanced_dp

    out = {
        "imbalanced_dp": imbalanced_dp.__version__,
        "numpy": np.__version__,
        "numba": numba.__version__,
        "scikit-learn": sklearn.__version__,
        "imbalanced-learn": imblearn.__version__,
        "python": platform.python_version(),
    }
    try:
        from importlib.metadata import version

        out["opacus"] = version("opacus")
        out["torch"] = version("torch")
    except Exception:  # pragma: no cover - metadata missing
        pass
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


@dataclass
class Batch:
    """Runs that share a dataset, an architecture and an engine, trained together.

    The dataset travels with the batch, so a worker on another machine (a Ray cluster)
    needs no access to the user's files."""

    runs: list[tuple[str, RunSpec]]  # (run_id, spec)
    dataset: Dataset | None = None
    sigmas: dict = field(default_factory=dict)  # calibration key -> sigma
    spent: dict = field(default_factory=dict)  # calibration key -> epsilon spent
    threads: int = 1
    batch_id: str = ""


def own_calibration(spec: RunSpec) -> bool:
    """Whether a run's mitigation calibrates its own noise (the plain σ is then unused)."""
    params = dict(spec.mitigation_params)
    if spec.mitigation == "class_weighted":
        return not ("weights" in params or "prior" in params)
    return spec.mitigation in ("dpsgd_f", "global_adapt")


def calibration_key(spec: RunSpec, q: float, steps: int) -> tuple:
    return (spec.accountant, float(spec.epsilon or 0.0), float(spec.delta), float(q), int(steps))


@dataclass
class PreparedRun:
    run_id: str
    spec: RunSpec
    split: PreparedSplit
    config: RunConfig
    weights: np.ndarray | None
    ledger: PrivacyLedger
    threshold: float | str | None = None  # None: argmax; a number; "heldout"


_SPLIT_CACHE: dict = {}


def get_split(spec: RunSpec, dataset: Dataset | None = None) -> PreparedSplit:
    """The (cached) prepared split of a run: it depends on the data, the seed, the test
    fraction and the imbalance settings only, never on the privacy level."""
    ds = dataset if dataset is not None else spec.dataset.load(spec.test_fraction)
    holdout = heldout_share(spec)
    key = (
        ds.fingerprint,
        spec.seed,
        spec.test_fraction,
        spec.minority_fraction,
        spec.imbalance_method,
        holdout,
    )
    if key not in _SPLIT_CACHE:
        if len(_SPLIT_CACHE) > 256:
            _SPLIT_CACHE.clear()
        _SPLIT_CACHE[key] = prepare_split(
            ds,
            seed=spec.seed,
            test_fraction=spec.test_fraction,
            minority_fraction=spec.minority_fraction,
            imbalance_method=spec.imbalance_method,
            holdout=holdout,
        )
    return _SPLIT_CACHE[key]


def heldout_share(spec: RunSpec) -> float:
    """Share of the training split held out to choose a decision threshold (0 if none)."""
    params = dict(spec.mitigation_params)
    if spec.mitigation == "threshold" and "value" not in params:
        return float(params.get("holdout", 0.2))
    if params.get("threshold") == "heldout":
        return float(params.get("holdout", 0.2))
    return 0.0


def plan_run(spec: RunSpec, dataset: Dataset | None = None):
    """Validate a run against its data and return its split and sampling plan.

    Raises :class:`~imbalanced_dp.exceptions.ImbalancedDPError` on a bad setting (δ ≥ 1/n,
    a batch larger than the training split...)."""
    from ..mitigations import check_mitigation

    check_mitigation(spec)
    split = get_split(spec, dataset)
    n = split.n_train
    r = spec.resolve()
    check_training_params(n=n, batch_size=r.batch_size, epochs=r.epochs, lr=r.lr, clip=r.clip)
    plan = sampling_plan(n=n, batch_size=r.batch_size, epochs=r.epochs)
    if spec.private:
        check_delta(spec.delta, n)
    return split, plan


def prepare_run(
    run_id: str,
    spec: RunSpec,
    sigmas: dict,
    dataset: Dataset | None = None,
    spent: dict | None = None,
) -> PreparedRun:
    from ..mitigations import apply_mitigation

    r = spec.resolve()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the driver already warned about delta
        split, plan = plan_run(r, dataset)
    not_covered = [SCALING_NOTE, HYPERPARAMETER_NOTE]
    if r.private:
        key = calibration_key(r, plan.sample_rate, plan.steps)
        sigma = sigmas.get(key)
        if sigma is None and not own_calibration(r):
            sigma = calibrate_noise_multiplier(
                target_epsilon=r.epsilon,
                delta=r.delta,
                sample_rate=plan.sample_rate,
                steps=plan.steps,
                accountant=r.accountant,
            )
        # a mitigation that calibrates its own noise fills sigma and epsilon in below
        sigma = math.nan if sigma is None else sigma
        ledger = PrivacyLedger(
            privacy="dp",
            sampling="poisson",
            steps=plan.steps,
            clip=r.clip,
            accountant=r.accountant,
            accountant_version=accountant_version(),
            noise_multiplier=float(sigma),
            sample_rate=plan.sample_rate,
            expected_batch_size=plan.expected_batch_size,
            delta=r.delta,
            epsilon_target=r.epsilon,
            epsilon_spent=math.nan
            if math.isnan(sigma)
            else (spent or {}).get(key)
            or epsilon_spent(
                noise_multiplier=sigma,
                sample_rate=plan.sample_rate,
                steps=plan.steps,
                delta=r.delta,
                accountant=r.accountant,
            ),
            not_covered=[*not_covered, PUBLIC_N_NOTE],
            notes=[NOISE_NOTE, SPLIT_NOTE],
        )
        config = RunConfig(
            seed=r.seed,
            private=True,
            epochs=r.epochs,
            batch_size=r.batch_size,
            lr=float(r.lr),
            steps=plan.steps,
            clip=r.clip,
            noise_multiplier=float(sigma),
            sample_rate=plan.sample_rate,
            expected_batch_size=plan.expected_batch_size,
        )
    else:
        ledger = PrivacyLedger(
            privacy="none",
            sampling="shuffle",
            steps=plan.steps,
            not_covered=["no differential privacy: the model is trained in the clear"],
        )
        config = RunConfig(
            seed=r.seed,
            private=False,
            epochs=r.epochs,
            batch_size=r.batch_size,
            lr=float(r.lr),
            steps=plan.steps,
        )
    prepared = PreparedRun(run_id, r, split, config, None, ledger)
    return apply_mitigation(prepared, sigmas)


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


def evaluate(prepared: PreparedRun, model) -> RunResult:
    split = prepared.split
    proba = model.predict_proba(split.X_test)
    y_pred = proba.argmax(axis=1).astype(np.int64)
    if prepared.threshold is not None:
        if prepared.threshold == "heldout":
            t = choose_threshold(model.predict_proba(split.X_hold)[:, 1], split.y_hold)
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
        model.stats["threshold"] = t
        y_pred = (proba[:, 1] >= t).astype(np.int64)
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
        stats=model.stats,
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
    try:
        prepared = [
            prepare_run(rid, spec, batch.sigmas, batch.dataset, batch.spent)
            for rid, spec in batch.runs
        ]
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


def train_prepared(prepared: Sequence[PreparedRun], *, threads: int = 1) -> list[RunResult]:
    """Train prepared runs of one engine and architecture together and evaluate them."""
    engine_name = prepared[0].spec.engine
    engine = get_engine(engine_name)
    jobs = [
        TrainJob(p.split.X_train, p.split.y_train, _arch(p), p.config, p.weights) for p in prepared
    ]
    t0 = time.perf_counter()
    models = engine.train(jobs, threads=threads)
    elapsed = time.perf_counter() - t0
    results = []
    for p, m in zip(prepared, models):
        if engine_name == "fast":
            m.seconds = elapsed / len(models)
        results.append(evaluate(p, m))
    return results


def _arch(p: PreparedRun):
    return p.spec.arch(p.split.X_train.shape[1])


def run_single(spec: RunSpec, *, threads: int = 1) -> RunResult:
    """Validate, train and evaluate one run in this process (what ``imbalanced-dp run``
    does). Bad settings raise :class:`~imbalanced_dp.exceptions.ImbalancedDPError`.

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
    plan_run(spec)
    prepared = prepare_run(spec.run_id(ds.fingerprint), spec, {})
    res = train_prepared([prepared], threads=threads)[0]
    res.versions = versions()
    return res
