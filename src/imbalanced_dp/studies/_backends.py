"""Where batches run: this process, a pool of local worker processes, or Ray tasks.

A backend takes :class:`~._execute.Batch` objects, runs :func:`~._execute.execute_batch` on
each and hands every result back to the driver, which alone writes the store. Backends are
chosen by name from :data:`BACKENDS` (:func:`register_backend` adds one).

Local workers die with their driver. Each worker asks the kernel to kill it when its parent
dies (``PR_SET_PDEATHSIG`` on Linux) and also watches its parent from a thread (every
second; the portable fallback), so a driver killed by ``kill -9``, a scheduler or the OOM
killer leaves no worker behind. Workers ignore Ctrl-C and SIGTERM: the driver handles both,
stores what finished and stops them; they start with both signals blocked, so a Ctrl-C
during start-up cannot interrupt their imports with a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Protocol

from ..exceptions import ParameterError
from ._execute import Batch, RunResult, execute_batch

OnDone = Callable[[Batch, list[RunResult]], None]
Later = Callable[[], list[Batch]]
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Backend(Protocol):
    """Runs batches and reports each batch's results to ``on_done`` as it finishes;
    ``later`` (if given) is called in the driver while the first batches run, and the
    batches it returns run after them."""

    name: str

    def run(self, batches: list[Batch], on_done: OnDone, later: Later | None = None) -> None: ...

    def close(self, *, kill: bool = False) -> None: ...


# ---------------------------------------------------------------------- local workers


def _die_with_parent(parent: int) -> None:
    """Make this worker exit when ``parent`` (the driver) dies."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl
            pass
    if os.getppid() != parent:  # the driver died before prctl took effect
        os._exit(1)

    def watch() -> None:
        import time

        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="imbalanced-dp-parent-watch", daemon=True).start()


def worker_init(parent: int) -> None:
    """Initializer of a worker process of ``parent``: Ctrl-C and SIGTERM ignored (the
    parent handles them), and the worker dies with the parent (see the module docstring)."""
    _worker_init(parent)


def _worker_init(parent: int) -> None:
    # Ctrl-C and SIGTERM are the driver's to handle: it stores what finished, then stops
    # the workers. The signals were blocked when this process started (see _spawning), so
    # one sent during start-up is pending: ignoring first, then unblocking, discards it.
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _die_with_parent(parent)


def spawning_workers():
    """Start worker processes inside this block (see :func:`_spawning`)."""
    return _spawning()


@contextmanager
def _spawning():
    """Start workers with Ctrl-C and SIGTERM held back, in them and in the driver.

    The workers inherit a blocked mask, so a signal sent to the whole process group during
    their start-up waits until their initializer ignores it. The driver defers its own
    reaction to the end of the block: blocking the signal in its main thread is not enough,
    since the kernel then hands it to another thread (numpy's BLAS threads, say) and Python
    still raises KeyboardInterrupt in the main thread at once, possibly between starting a
    worker and sending it its start-up data. Such a worker is not yet a child the pool
    knows; it would wait for that data forever, holding the pool's queue open, and the
    driver would hang at exit (seen: 1 Ctrl-C in ~10 during start-up). So the block's
    handlers only record the signal, and it is raised again once every worker is started
    and known, where the driver stores what finished and stops them all."""
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not (
        threading.main_thread()
    ):
        yield
        return
    caught: list[int] = []

    def defer(signum, frame) -> None:
        caught.append(signum)

    # a signal the process ignores (a background job's Ctrl-C) stays ignored
    handlers = {
        sig: signal.signal(sig, defer)
        for sig in _STOP_SIGNALS
        if signal.getsignal(sig) not in (signal.SIG_IGN, None)
    }
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)  # a pending signal lands in defer
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if caught:
            signal.raise_signal(caught[0])  # the driver's own handler, now


class LocalBackend:
    """A pool of worker processes on this machine (or this process when ``workers`` is 1)."""

    name = "local"

    def __init__(self, workers: int, address: str | None = None) -> None:
        if address:
            raise ParameterError("--address is for the ray backend; the local one has none")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing as mp

            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=mp.get_context("spawn"),
                initializer=_worker_init,
                initargs=(os.getpid(),),
            )
        return self._pool

    def worker_pids(self) -> list[int]:
        """The pool's worker processes (for tests and diagnostics)."""
        import multiprocessing as mp

        return [p.pid for p in mp.active_children() if p.pid is not None]

    def run(self, batches: list[Batch], on_done: OnDone, later: Later | None = None) -> None:
        if self.workers <= 1:
            for b in batches:
                on_done(b, execute_batch(b))
            for b in later() if later else []:
                on_done(b, execute_batch(b))
            return
        pool = self._ensure_pool()
        pending: dict[Future, Batch] = {}
        queue = list(batches)

        def submit_more() -> None:
            # at most two batches per worker queued, so an interruption loses little
            while queue and len(pending) < 2 * self.workers:
                b = queue.pop(0)
                pending[pool.submit(execute_batch, b)] = b

        with _spawning():
            submit_more()  # the pool starts its workers on the first submissions
        if later is not None:
            queue.extend(later())
        while queue or pending:
            submit_more()
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
        pool, self._pool = self._pool, None
        if not kill:
            pool.shutdown(wait=True)
            return
        import multiprocessing as mp

        children = [p for p in mp.active_children() if p.is_alive()]
        pool.shutdown(wait=False, cancel_futures=True)
        for p in children:
            p.kill()
        for p in children:
            p.join(timeout=5)
        # Let the pool's manager thread see its dead workers and close its pipes now. Left
        # running, it closes them while the interpreter exits, where CPython 3.11's exit
        # hook (concurrent.futures.process._python_exit) may write to a pipe the thread is
        # closing: "Exception ignored ... OSError: [Errno 9] Bad file descriptor" on the
        # terminal after a Ctrl-C (seen once in CI).
        manager = getattr(pool, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(timeout=5)


# ---------------------------------------------------------------------- Ray


class RayBackend:
    """Ray tasks, on a cluster at ``address`` or on a local Ray instance started here."""

    name = "ray"

    def __init__(self, workers: int, address: str | None = None) -> None:
        from ._ray import connect_ray

        # connects within a time limit, or raises one clear line; a no-op when the caller
        # (pipeline.run_study) connected before opening the store
        self._started = connect_ray(address, workers=workers)
        import ray

        self.ray = ray
        self.workers = workers
        self._remote = ray.remote(num_cpus=1)(execute_batch)

    def run(self, batches: list[Batch], on_done: OnDone, later: Later | None = None) -> None:
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


#: Backends by name.
BACKENDS: dict[str, Callable[..., Backend]] = {}


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Make a backend available to ``study run --backend NAME`` and :func:`run_runs`:
    ``factory(workers, address)`` returns the backend."""
    BACKENDS[name] = factory


register_backend("local", LocalBackend)
register_backend("ray", RayBackend)


def backend_names() -> list[str]:
    return list(BACKENDS)


def get_backend(name: str, workers: int, address: str | None = None) -> Backend:
    if name not in BACKENDS:
        raise ParameterError(f"backend must be one of {', '.join(BACKENDS)}; got {name!r}")
    return BACKENDS[name](workers, address)
