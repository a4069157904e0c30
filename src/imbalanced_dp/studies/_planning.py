"""Planning a sweep before anything runs: validating every run against its data, naming the
noise calibrations the runs need (cached in the store), and grouping runs into batches."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

from ..engines import get_engine
from ..privacy import (
    Calibration,
    CalibrationKey,
    MemoryCache,
    PrivacyWarning,
    calibration_version,
    user_cache,
)
from ._execute import Batch, check_run
from ._runspec import RunSpec
from ._store import ResultsStore


def group_label(spec: RunSpec) -> str:
    """The label of a run's group in ``study status``: dataset, imbalance, privacy,
    mitigation (``tuned`` for a run whose search chooses it)."""
    frac = "natural" if spec.minority_fraction is None else f"{spec.minority_fraction:g}"
    priv = "none" if spec.epsilon is None else f"eps={spec.epsilon:g}"
    how = "tuned" if spec.tuned else spec.mitigation
    return f"{spec.dataset.label} | minority={frac} | {priv} | {how}"


def validate_runs(specs: Sequence[RunSpec]) -> list[tuple[str, RunSpec]]:
    """Resolve every spec, check it against its data and return ``(run_id, spec)`` pairs
    (duplicates once, in the order given).

    Bad settings raise before anything runs; privacy warnings (δ above 1/(10 n)) are
    emitted once per distinct message."""
    out = []
    seen_warnings: set[str] = set()
    for spec in specs:
        r = spec.resolve()
        ds = r.dataset.load(r.test_fraction)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PrivacyWarning)
            check_run(r, ds)
        for w in caught:
            msg = str(w.message)
            if msg not in seen_warnings:
                seen_warnings.add(msg)
                warnings.warn(msg, PrivacyWarning, stacklevel=2)
        out.append((r.run_id(ds.fingerprint), r))
    uniq: dict[str, RunSpec] = {}
    for rid, s in out:
        uniq.setdefault(rid, s)
    return list(uniq.items())


class StoreCalibrations:
    """The calibration cache of a sweep: this process's memory, then the store's table (for
    the accountant's version), then the user's calibration cache; what is computed goes to
    all three."""

    def __init__(self, store: ResultsStore) -> None:
        self.store = store
        self.memory = MemoryCache()
        self.user = user_cache()

    def get(self, key: CalibrationKey) -> Calibration | None:
        got = self.memory.get(key)
        if got is not None:
            return got
        version = calibration_version(key.accountant)
        got = self.store.get_calibration(key, version)
        if got is None:
            got = self.user.get(key)
            if got is not None:
                self.store.put_calibration(key, got, version)
        if got is not None:
            self.memory.put(key, got)
        return got

    def put(self, key: CalibrationKey, value: Calibration) -> None:
        self.memory.put(key, value)
        self.store.put_calibration(key, value, calibration_version(key.accountant))
        self.user.put(key, value)

    def snapshot(self) -> dict:
        """What a batch carries to its worker."""
        return dict(self.memory.items)


def run_key(spec: RunSpec) -> CalibrationKey | None:
    """The noise calibration a run's plan needs (``None`` without privacy)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return check_run(spec).key


def run_cost(spec: RunSpec) -> float:
    """Relative cost of a run (epochs × rows × weights × the engine's relative cost), for
    ordering batches."""
    r = spec.resolve()
    ds = r.dataset.load(r.test_fraction)
    width = sum(a * b for a, b in zip((ds.n_features, *r.layers), (*r.layers, 2)))
    if r.tuned:  # about the expected trials at the space's mean epochs
        space = r.search_space()
        epochs = sum(space.epochs) / len(space.epochs)
        return r.tuning_trials * epochs * ds.n_rows * width * get_engine("fast").relative_cost
    return r.epochs * ds.n_rows * width * get_engine(r.engine).relative_cost


def make_batches(
    runs: Sequence[tuple[str, RunSpec]], *, workers: int, max_batch: int = 40
) -> list[Batch]:
    """Group runs by dataset, architecture and engine; split groups so every worker gets
    work (about two batches per worker), batches of a batched engine holding at most
    ``max_batch`` runs and those of an engine that trains one run at a time one run each;
    a tuned run (whose search trains its trials in batches itself) gets a batch of its
    own; the costliest batches first, so the tail is short."""
    groups: dict[tuple, list[tuple[str, RunSpec]]] = {}
    for rid, spec in runs:
        key = (spec.dataset, spec.test_fraction, tuple(spec.layers or ()), spec.engine, spec.tuned)
        groups.setdefault(key, []).append((rid, spec))
    total = len(runs)
    batches = []
    for (ref, tf, _layers, engine, tuned), members in groups.items():
        if tuned:
            size = 1
        elif get_engine(engine).batched:
            share = math.ceil(len(members) / total * 2 * workers) if total else 1
            size = max(1, min(max_batch, math.ceil(len(members) / max(1, share))))
        else:
            size = 1
        ds = ref.load(tf)
        for i in range(0, len(members), size):
            chunk = members[i : i + size]
            batches.append(Batch(runs=chunk, dataset=ds, batch_id=chunk[0][0][:12]))
    batches.sort(key=lambda b: -sum(run_cost(s) for _, s in b.runs))
    return batches
