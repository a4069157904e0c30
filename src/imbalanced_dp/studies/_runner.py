"""Running a list of runs: validation, calibration, batching, backends, progress.

Only this driver writes the store, one transaction per finished batch. Workers (local
processes or Ray tasks) receive picklable :class:`Batch` objects and return results.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

from ..exceptions import ParameterError
from ..privacy import (
    Calibration,
    CalibrationKey,
    MemoryCache,
    PrivacyWarning,
    accountant_version,
)
from ._execute import (
    Batch,
    RunResult,
    check_run,
    execute_batch,
    make_plan,
)
from ._runspec import RunSpec
from ._store import ResultsStore

BACKENDS = ("local", "ray")


class StudyInterrupted(Exception):
    """Raised after Ctrl-C, once what had finished is stored."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(f"interrupted after {done} of {total} runs")
        self.done = done
        self.total = total


@dataclass
class StudyOutcome:
    total: int
    skipped: int
    done: int
    failed: int
    seconds: float
    failures: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def group_label(spec: RunSpec) -> str:
    frac = "natural" if spec.minority_fraction is None else f"{spec.minority_fraction:g}"
    priv = "none" if spec.epsilon is None else f"eps={spec.epsilon:g}"
    return f"{spec.dataset.label} | minority={frac} | {priv} | {spec.mitigation}"


# ---------------------------------------------------------------------- progress


class Progress:
    """Runs done / total with an ETA: a rich bar on a terminal, plain lines otherwise,
    nothing when quiet."""

    def __init__(self, total: int, *, quiet: bool = False, stream=None) -> None:
        self.total = total
        self.done = 0
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._bar = None
        if not quiet and total > 0 and getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._bar = RichProgress(
                TextColumn("runs"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("elapsed"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._task = self._bar.add_task("runs", total=total)
            self._bar.start()

    def advance(self, k: int, failed: int = 0) -> None:
        self.done += k
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
            return
        now = time.perf_counter()
        if now - self._last < 2.0 and self.done < self.total:
            return
        self._last = now
        el = now - self.t0
        eta = el / self.done * (self.total - self.done) if self.done else math.nan
        msg = f"[{self.done:>{len(str(self.total))}}/{self.total}] {self.done / self.total:4.0%}"
        msg += f"  elapsed {el:5.1f}s  eta {eta:5.1f}s"
        if failed:
            msg += f"  ({failed} failed)"
        print(msg, file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


# ---------------------------------------------------------------------- planning


def validate_runs(specs: Sequence[RunSpec]) -> list[tuple[str, RunSpec]]:
    """Resolve every spec, check it against its data and return ``(run_id, spec)`` pairs.

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
    ids = [rid for rid, _ in out]
    if len(set(ids)) != len(ids):
        uniq: dict[str, RunSpec] = {}
        for rid, s in out:
            uniq.setdefault(rid, s)
        out = list(uniq.items())
    return out


class StoreCalibrations:
    """The calibration cache of a sweep: the store's table (for this accountant version) in
    front of the memory of this process."""

    def __init__(self, store: ResultsStore) -> None:
        self.store = store
        self.version = accountant_version()
        self.memory = MemoryCache()

    def get(self, key: CalibrationKey) -> Calibration | None:
        got = self.memory.get(key)
        if got is None:
            got = self.store.get_calibration(key, self.version)
            if got is not None:
                self.memory.put(key, got)
        return got

    def put(self, key: CalibrationKey, value: Calibration) -> None:
        self.memory.put(key, value)
        self.store.put_calibration(key, value, self.version)


def run_key(spec: RunSpec) -> CalibrationKey | None:
    """The noise calibration a run's plan needs (``None`` without privacy)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return check_run(spec).key


def make_batches(
    runs: Sequence[tuple[str, RunSpec]], *, workers: int, max_batch: int = 40
) -> list[Batch]:
    """Group runs by dataset, architecture and engine; split groups so every worker gets
    work (about two batches per worker), fast-engine batches holding at most ``max_batch``
    runs and Opacus batches one run each."""
    groups: dict[tuple, list[tuple[str, RunSpec]]] = {}
    for rid, spec in runs:
        key = (spec.dataset, spec.test_fraction, tuple(spec.layers or ()), spec.engine)
        groups.setdefault(key, []).append((rid, spec))
    total = len(runs)
    batches = []
    for (ref, tf, _layers, engine), members in groups.items():
        if engine == "fast":
            share = math.ceil(len(members) / total * 2 * workers) if total else 1
            size = max(1, min(max_batch, math.ceil(len(members) / max(1, share))))
        else:
            size = 1
        ds = ref.load(tf)
        for i in range(0, len(members), size):
            chunk = members[i : i + size]
            batches.append(Batch(runs=chunk, dataset=ds, batch_id=chunk[0][0][:12]))
    # longest first: the slow batches start early and the tail is short
    batches.sort(key=lambda b: -sum(_cost(s) for _, s in b.runs))
    return batches


def _cost(spec: RunSpec) -> float:
    r = spec.resolve()
    ds = r.dataset.load(r.test_fraction)
    width = sum(a * b for a, b in zip((ds.n_features, *r.layers), (*r.layers, 2)))
    return r.epochs * ds.n_rows * width * (50.0 if r.engine == "opacus" else 1.0)


# ---------------------------------------------------------------------- backends


def _worker_init() -> None:
    # Ctrl-C is the driver's to handle: it stores what finished, then stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


class LocalBackend:
    """A pool of worker processes on this machine (or this process when ``workers`` is 1)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing as mp

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_worker_init,
            )
        return self._pool

    def run(
        self,
        batches: list[Batch],
        on_done: Callable[[Batch, list[RunResult]], None],
        later: Callable[[], list[Batch]] | None = None,
    ):
        """Run ``batches``; ``later`` (if given) is called in this process while the first
        batches train, and the batches it returns run after them."""
        if self.workers <= 1:
            for b in batches:
                on_done(b, execute_batch(b))
            for b in later() if later else []:
                on_done(b, execute_batch(b))
            return
        pool = self._ensure_pool()
        pending: dict[Future, Batch] = {}
        queue = list(batches)
        while queue and len(pending) < 2 * self.workers:
            b = queue.pop(0)
            pending[pool.submit(execute_batch, b)] = b
        if later is not None:
            queue.extend(later())
        # keep at most two batches per worker queued, so Ctrl-C loses little
        while queue or pending:
            while queue and len(pending) < 2 * self.workers:
                b = queue.pop(0)
                pending[pool.submit(execute_batch, b)] = b
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                b = pending.pop(fut)
                try:
                    results = fut.result()
                except Exception as exc:  # a worker died
                    results = [
                        RunResult(rid, s, "failed", error=f"worker failed: {exc!r}")
                        for rid, s in b.runs
                    ]
                on_done(b, results)

    def close(self, *, kill: bool = False) -> None:
        if self._pool is None:
            return
        if kill:
            procs = list(getattr(self._pool, "_processes", {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:
                if p.is_alive():
                    p.kill()
        else:
            self._pool.shutdown(wait=True)
        self._pool = None


class RayBackend:
    """Ray tasks, on a cluster at ``address`` or on a local Ray instance started here."""

    def __init__(self, workers: int, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ParameterError(
                "the ray backend needs Ray: pip install 'imbalanced-dp[ray]'"
            ) from None
        self.ray = ray
        self.workers = workers
        self._started = False
        if not ray.is_initialized():
            kwargs: dict = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = workers
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ray.init(**kwargs)
            self._started = True
        self._remote = ray.remote(num_cpus=1)(execute_batch)

    def run(
        self,
        batches: list[Batch],
        on_done: Callable[[Batch, list[RunResult]], None],
        later: Callable[[], list[Batch]] | None = None,
    ):
        ray = self.ray
        refs = {self._remote.remote(b): b for b in batches}
        for b in later() if later else []:
            refs[self._remote.remote(b)] = b
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for ref in ready:
                b = refs.pop(ref)
                try:
                    results = ray.get(ref)
                except Exception as exc:
                    results = [
                        RunResult(rid, s, "failed", error=f"ray task failed: {exc!r}")
                        for rid, s in b.runs
                    ]
                on_done(b, results)

    def close(self, *, kill: bool = False) -> None:
        if self._started:
            self.ray.shutdown()


# ---------------------------------------------------------------------- driver


def run_runs(
    specs: Sequence[RunSpec],
    store: ResultsStore,
    *,
    study: str = "adhoc",
    study_spec: dict | None = None,
    backend: str = "local",
    workers: int | None = None,
    address: str | None = None,
    quiet: bool = False,
    max_batch: int = 40,
    progress_stream=None,
    on_results: Callable[[list[RunResult]], None] | None = None,
) -> StudyOutcome:
    """Run every spec not yet done in ``store`` and store the results as they finish.

    Returns counts; raises :class:`StudyInterrupted` on Ctrl-C after storing what finished.
    With ``workers`` > 1 the runs go to a pool of processes: call it from a script's
    ``if __name__ == "__main__":`` block.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from imbalanced_dp import DatasetRef, ResultsStore, RunSpec, run_runs
    >>> specs = [RunSpec(DatasetRef(name="pima"), seed=s, epsilon=e, epochs=3,
    ...                  accountant="rdp") for s in (0, 1) for e in (None, 2.0)]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with ResultsStore(pathlib.Path(tmp) / "r.sqlite") as store:
    ...         first = run_runs(specs, store, workers=1, quiet=True)
    ...         again = run_runs(specs, store, workers=1, quiet=True)
    >>> (first.done, first.skipped), (again.done, again.skipped)
    ((4, 0), (0, 4))
    """
    if backend not in BACKENDS:
        raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    workers = workers or default_workers()
    if workers < 1:
        raise ParameterError(f"workers must be at least 1; got {workers}")
    t0 = time.perf_counter()
    runs = validate_runs(specs)
    store.record_study(study, study_spec or {}, [(rid, group_label(s)) for rid, s in runs])
    done_before = store.done_ids()
    pending = [(rid, s) for rid, s in runs if rid not in done_before]
    outcome = StudyOutcome(
        total=len(runs),
        skipped=len(runs) - len(pending),
        done=0,
        failed=0,
        seconds=0.0,
        run_ids=[rid for rid, _ in runs],
    )
    if not pending:
        outcome.seconds = time.perf_counter() - t0
        return outcome
    be: LocalBackend | RayBackend
    be = RayBackend(workers, address) if backend == "ray" else LocalBackend(workers)
    progress = None
    interrupted = False
    try:
        # Noise calibrations: those in the store are reused. Runs whose noise is known (the
        # non-private ones at least) start at once; meanwhile this process makes the plans
        # of the others, which calibrates each missing setting once, and their batches
        # follow.
        cache = StoreCalibrations(store)
        keys = {rid: run_key(s) for rid, s in pending}
        known = {k for k in set(keys.values()) - {None} if cache.get(k) is not None}
        ready = [(rid, s) for rid, s in pending if keys[rid] is None or keys[rid] in known]
        ready_ids = {rid for rid, _ in ready}
        waiting = [(rid, s) for rid, s in pending if rid not in ready_ids]
        batches = make_batches(ready, workers=workers, max_batch=max_batch)
        for b in batches:
            b.calibrations = dict(cache.memory.items)

        def calibrate_rest() -> list[Batch]:
            first: dict[CalibrationKey, RunSpec] = {}
            for rid, s in waiting:
                first.setdefault(keys[rid], s)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # validate_runs already warned
                for spec in first.values():
                    make_plan(spec, check_run(spec), cache)  # calibrates into the cache
            rest = make_batches(waiting, workers=workers, max_batch=max_batch)
            for b in rest:
                b.calibrations = dict(cache.memory.items)
            return rest

        progress = Progress(len(pending), quiet=quiet, stream=progress_stream)

        def on_done(batch: Batch, results: list[RunResult]) -> None:
            store.write_results(results, batch_id=batch.batch_id)
            for r in results:
                if r.status == "done":
                    outcome.done += 1
                else:
                    outcome.failed += 1
                    if len(outcome.failures) < 20:
                        outcome.failures.append(f"{r.run_id}: {r.error}")
            if on_results is not None:
                on_results(results)
            progress.advance(len(results), outcome.failed)

        be.run(batches, on_done, later=calibrate_rest if waiting else None)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if progress is not None:
            progress.close()
        be.close(kill=interrupted)
    outcome.seconds = time.perf_counter() - t0
    if interrupted:
        raise StudyInterrupted(outcome.skipped + outcome.done, outcome.total)
    return outcome
