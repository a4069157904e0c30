"""The driver of a sweep: plan the runs, start those whose noise is known, calibrate the
rest meanwhile, and store every batch as it finishes.

Only the driver writes the store, one transaction per finished batch. Ctrl-C and SIGTERM
(what ``kill``, ``timeout`` and job schedulers send) are handled alike: what finished is
stored, the workers are stopped, and :class:`StudyInterrupted` tells the caller how the
sweep ended so that it can print how to resume.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..exceptions import ParameterError, StoreError, StudyInterrupted
from ..privacy import CalibrationKey
from ._backends import Backend, get_backend
from ._execute import Batch, RunResult, check_run, make_plan
from ._planning import (
    StoreCalibrations,
    group_label,
    make_batches,
    run_key,
    validate_runs,
)
from ._progress import Progress
from ._runspec import RunSpec
from ._spec import changed_settings
from ._store import ResultsStore

#: Testing aid: after this many runs are stored, the driver writes the file named by
#: IMBALANCED_DP_TEST_PAUSE_FILE and waits (for a signal), so that tests can interrupt a
#: sweep at a known point instead of racing a clock.
_PAUSE_AFTER = "IMBALANCED_DP_TEST_PAUSE_AFTER"
_PAUSE_FILE = "IMBALANCED_DP_TEST_PAUSE_FILE"


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the driver like Ctrl-C."""


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


class _TermAsInterrupt:
    """Within the block, SIGTERM raises in the main thread like Ctrl-C does."""

    def __enter__(self):
        self._old = None
        if threading.current_thread() is threading.main_thread():

            def handler(signum, frame):
                raise _Terminated()

            self._old = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)


def check_same_settings(store: ResultsStore, study: str, spec: dict | None) -> None:
    """Refuse to run a study under a name the store already holds with other settings
    (epochs, learning rate, δ...): its runs would be reported as one study. More seeds,
    privacy levels, fractions or datasets are fine."""
    if not spec:
        return
    old = store.study_spec(study)
    if not old:
        return
    changed = changed_settings(old, spec)
    if changed:
        key = changed[0]
        raise StoreError(
            f"study {study!r} in {store.path} was run with {key} = {old.get(key)!r}; this "
            f"one has {key} = {spec.get(key)!r}: its results would be pooled with runs of "
            "other settings; give the study another name (or reproduce another --out) or "
            "use another --store"
        )


def _maybe_pause(stored: int) -> None:
    after = os.environ.get(_PAUSE_AFTER)
    if not after or stored < int(after):
        return
    path = os.environ.get(_PAUSE_FILE)
    if path:
        tmp = Path(path + ".tmp")
        tmp.write_text(f"{os.getpid()}\n", encoding="utf-8")
        tmp.replace(path)
    while True:
        time.sleep(0.1)


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

    Returns counts; raises :class:`StudyInterrupted` on Ctrl-C or SIGTERM after storing
    what finished and stopping the workers. With ``workers`` > 1 the runs go to a pool of
    processes: call it from a script's ``if __name__ == "__main__":`` block.

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
    workers = workers or default_workers()
    if workers < 1:
        raise ParameterError(f"workers must be at least 1; got {workers}")
    t0 = time.perf_counter()
    runs = validate_runs(specs)
    check_same_settings(store, study, study_spec)
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
    progress = Progress(len(pending), quiet=quiet, stream=progress_stream)
    be: Backend | None = None
    interrupted: KeyboardInterrupt | None = None
    with _TermAsInterrupt():
        try:
            be = get_backend(backend, workers, address)
            # Noise calibrations: those in the store are reused. Runs whose noise is known
            # (the non-private ones at least) start at once; meanwhile this process makes
            # the plans of the others, which calibrates each missing setting once, and
            # their batches follow.
            cache = StoreCalibrations(store)
            keys = {rid: run_key(s) for rid, s in pending}
            known = {k for k in set(keys.values()) - {None} if cache.get(k) is not None}
            ready = [(rid, s) for rid, s in pending if keys[rid] is None or keys[rid] in known]
            ready_ids = {rid for rid, _ in ready}
            waiting = [(rid, s) for rid, s in pending if rid not in ready_ids]
            batches = make_batches(ready, workers=workers, max_batch=max_batch)
            for b in batches:
                b.calibrations = cache.snapshot()
            missing = {keys[rid] for rid, _ in waiting}

            def calibrate_rest() -> list[Batch]:
                first: dict[CalibrationKey, RunSpec] = {}
                for rid, s in waiting:
                    first.setdefault(keys[rid], s)
                progress.stage(
                    f"calibrating the noise of {len(first)} privacy setting"
                    f"{'s' if len(first) != 1 else ''} (cached in the store) …"
                )
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # validate_runs already warned
                    for spec in first.values():
                        make_plan(spec, check_run(spec), cache)  # calibrates into the cache
                rest = make_batches(waiting, workers=workers, max_batch=max_batch)
                for b in rest:
                    b.calibrations = cache.snapshot()
                return rest

            n_batches = len(batches) + (1 if waiting else 0)
            progress.start(
                f"training {len(pending)} runs on {workers} worker"
                f"{'s' if workers != 1 else ''} ({backend})"
                + (f"; {len(missing)} noise setting(s) to calibrate" if missing else "")
                if n_batches
                else None
            )

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
                _maybe_pause(outcome.done + outcome.failed)

            be.run(batches, on_done, later=calibrate_rest if waiting else None)
        except KeyboardInterrupt as exc:
            interrupted = exc
        finally:
            progress.close()
            if be is not None:
                be.close(kill=interrupted is not None)
    outcome.seconds = time.perf_counter() - t0
    if interrupted is not None:
        signum = signal.SIGTERM if isinstance(interrupted, _Terminated) else signal.SIGINT
        raise StudyInterrupted(outcome.skipped + outcome.done, outcome.total, signum=signum)
    return outcome
