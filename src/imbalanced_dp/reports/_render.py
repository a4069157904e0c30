"""Drawing a report's figures: deferred, cached by what they show, and in parallel.

A section asks for a figure as a :class:`Plot` (a figure function and its arguments)
instead of a drawn figure. The report hands each one, as soon as it is asked for, to
worker processes (one per core) unless the figure cache holds it, and goes on building
the rest of the page, with a placeholder where each PNG goes; the figures are collected at
the end. A figure's cache key is a hash of the function, the source of the modules that
draw figures, the arguments (DataFrames by their content) and the matplotlib version: the
same numbers always give the same files, so a report rebuilt on an unchanged store, or a
study that added runs to one dataset, redraws only what changed.

The cache lives in the user's cache folder (``$IMBALANCED_DP_CACHE_DIR/figures``, see
:mod:`imbalanced_dp.privacy`; off when that is off) and keeps the most recently used
:data:`CACHE_ENTRIES` figures. Figures hold aggregates that the report publishes anyway.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

#: How many figures the cache keeps (the least recently used go first).
CACHE_ENTRIES = 400
#: Placeholder of a figure's data URI in the page until the figure is drawn.
_TOKEN = "@@imbalanced-dp-figure-{}@@"


@dataclass(frozen=True)
class Plot:
    """A figure to draw later: ``builder(*args, **kwargs)`` returns a matplotlib Figure."""

    builder: Callable
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def draw(self):
        return self.builder(*self.args, **self.kwargs)

    def key(self) -> str:
        h = hashlib.sha256()
        h.update(f"{self.builder.__module__}.{self.builder.__qualname__}".encode())
        h.update(_code_fingerprint(self.builder.__module__).encode())
        _feed(h, self.args)
        _feed(h, sorted(self.kwargs.items()))
        return h.hexdigest()[:32]


@lru_cache(maxsize=32)
def _code_fingerprint(module: str) -> str:
    """The source of the module that draws (and of the shared figure helpers), and the
    matplotlib version: a change to how figures look invalidates the cache."""
    from importlib.metadata import version

    h = hashlib.sha256(version("matplotlib").encode())
    for name in dict.fromkeys([module, "imbalanced_dp.reports._figures"]):
        mod = sys.modules.get(name)
        try:
            h.update(inspect.getsource(mod).encode() if mod is not None else name.encode())
        except (OSError, TypeError):
            h.update(name.encode())
    return h.hexdigest()


def _feed(h, obj) -> None:
    """Hash ``obj`` by content (DataFrames, arrays, containers, scalars)."""
    if isinstance(obj, pd.DataFrame):
        h.update(b"df")
        h.update(repr((list(obj.columns), [str(t) for t in obj.dtypes])).encode())
        h.update(pd.util.hash_pandas_object(obj, index=True).to_numpy().tobytes())
    elif isinstance(obj, pd.Series):
        _feed(h, obj.to_frame())
    elif isinstance(obj, np.ndarray):
        h.update(b"nd" + repr((obj.shape, str(obj.dtype))).encode() + obj.tobytes())
    elif isinstance(obj, dict):
        h.update(b"{")
        for k, v in sorted(obj.items(), key=lambda kv: repr(kv[0])):
            _feed(h, k)
            _feed(h, v)
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    else:
        h.update(repr(obj).encode())


@dataclass
class _Job:
    token: str
    plot: Plot
    png: Path
    svg: Path | None  # None: no SVG asked for
    key: str


def _draw(plot: Plot, png: str, svg: str | None) -> bytes:
    """Draw and save one figure (in a worker); returns the PNG bytes."""
    from ._figures import save_figure

    fig = plot.draw()
    saved = save_figure(fig, Path(png).parent, Path(png).stem, svg=svg is not None)
    if saved.svg != (None if svg is None else Path(svg)):  # pragma: no cover
        raise RuntimeError("figure paths disagree")
    return saved.png_bytes


def figure_cache_dir() -> Path | None:
    """Where figures are cached (``None`` when the user's cache is off)."""
    from ..privacy import cache_dir

    base = cache_dir()
    return None if base is None else base / "figures"


class FigureRenderer:
    """Collects the figures of one report, starts drawing each one the cache does not hold
    as soon as it is added (in ``workers`` processes), and gathers them all in
    :meth:`render` (see the module docstring). Use it as a context manager, or call
    :meth:`close`, so that its workers stop when the report fails half-way."""

    def __init__(
        self,
        *,
        workers: int | None = None,
        cache: Path | bool | None = True,
        svg: bool | None = None,
    ):
        from ._figures import writes_svg

        self.jobs: list[_Job] = []
        self.workers = workers
        #: write an SVG beside each PNG (default: as :func:`save_figure` would now)
        self.svg = writes_svg() if svg is None else bool(svg)
        self.cache = figure_cache_dir() if cache is True else (cache or None)
        self.drawn = 0
        self.reused = 0
        self._pool = None
        self._futures: dict[str, object] = {}  # cache key -> Future of its PNG bytes

    def __enter__(self) -> FigureRenderer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def add(self, plot: Plot, directory: Path, stem: str) -> tuple[str, Path, Path | None]:
        """Register a figure (and start drawing it unless the cache holds it); returns the
        placeholder of its data URI and its paths (the SVG's ``None`` without SVGs)."""
        token = _TOKEN.format(len(self.jobs))
        png = directory / f"{stem}.png"
        svg = directory / f"{stem}.svg" if self.svg else None
        job = _Job(token, plot, png, svg, plot.key())
        self.jobs.append(job)
        if job.key not in self._futures and not self._in_cache(job):
            pool = self._workers_pool()
            if pool is not None:
                from ..studies import spawning_workers

                # the pool may start a worker on any submission (all of them on the first,
                # where processes fork): with Ctrl-C held back until it is known
                with spawning_workers():
                    self._futures[job.key] = pool.submit(
                        _draw, plot, str(png), None if svg is None else str(svg)
                    )
        return token, png, svg

    def cache_is_empty(self) -> bool:
        """No figure cached at all (or no cache): every figure will be drawn."""
        if self.cache is None:
            return True
        try:
            return next(self.cache.glob("*.png"), None) is None
        except OSError:
            return True

    def start(self) -> None:
        """Start the workers now (they load matplotlib while the report reads its data);
        otherwise they start with the first figure to draw."""
        self._workers_pool()

    def close(self) -> None:
        """Stop the workers (figures not yet drawn are dropped)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ cache

    def _in_cache(self, job: _Job) -> bool:
        if self.cache is None:
            return False
        wanted = ("png", "svg") if job.svg is not None else ("png",)
        return all((self.cache / f"{job.key}.{ext}").is_file() for ext in wanted)

    def _cached(self, job: _Job) -> bytes | None:
        if self.cache is None:
            return None
        png, svg = self.cache / f"{job.key}.png", self.cache / f"{job.key}.svg"
        try:
            data = png.read_bytes()
            job.png.parent.mkdir(parents=True, exist_ok=True)
            if job.svg is not None:
                shutil.copyfile(svg, job.svg)
            job.png.write_bytes(data)
            os.utime(png)  # recently used
            return data
        except OSError:
            return None

    def _keep(self, job: _Job, data: bytes) -> None:
        if self.cache is None:
            return
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
            # the PNG last: it marks an entry (whose SVG is there if it was drawn)
            files = [(job.svg, "svg")] if job.svg is not None else []
            for src, ext in [*files, (job.png, "png")]:
                tmp = self.cache / f".{job.key}.{ext}.{os.getpid()}.tmp"
                shutil.copyfile(src, tmp)
                os.replace(tmp, self.cache / f"{job.key}.{ext}")
        except OSError:
            return

    def _prune(self) -> None:
        if self.cache is None:
            return
        try:
            pngs = sorted(self.cache.glob("*.png"), key=lambda p: p.stat().st_mtime)
            for p in pngs[: max(0, len(pngs) - CACHE_ENTRIES)]:
                p.unlink(missing_ok=True)
                p.with_suffix(".svg").unlink(missing_ok=True)
        except OSError:
            return

    # ------------------------------------------------------------------ drawing

    def render(self) -> dict[str, bytes]:
        """Every figure drawn (or copied from the cache); returns PNG bytes by placeholder.
        The workers stop here."""
        try:
            return self._render()
        finally:
            self.close()

    def _render(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        first: dict[str, _Job] = {}  # the job that draws each key; the others copy it
        for job in self.jobs:
            if job.key in first:
                continue
            future = self._futures.get(job.key)
            got = future.result() if future is not None else self._cached(job)
            if future is None and got is None:
                # not in the cache after all (pruned meanwhile) or drawn here (one worker)
                got = _draw(job.plot, str(job.png), None if job.svg is None else str(job.svg))
                future = True
            if future is None:
                self.reused += 1
            else:
                self._keep(job, got)
                self.drawn += 1
            first[job.key] = job
            out[job.token] = got
        for job in self.jobs:
            if job.token not in out:
                src = first[job.key]
                job.png.parent.mkdir(parents=True, exist_ok=True)
                if job.svg is not None:
                    shutil.copyfile(src.svg, job.svg)
                shutil.copyfile(src.png, job.png)
                out[job.token] = out[src.token]
        self._prune()
        return out

    def _workers_pool(self):
        """The worker pool (started on the first figure to draw); ``None`` with one
        worker, where :meth:`render` draws in this process."""
        if self._pool is not None:
            return self._pool
        workers = self.workers
        if workers is None:
            from ..studies import default_workers

            workers = default_workers()
        if workers <= 1:
            return None
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from ..studies import spawning_workers

        # fork where it exists: quicker to start than a fresh interpreter
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=mp.get_context(method),
            initializer=_worker_start,
            initargs=(os.getpid(),),
        )
        with spawning_workers():  # (see add)
            self._pool.submit(int)  # starts the workers (all of them where processes fork)
        return self._pool


def _worker_start(parent: int) -> None:
    """A figure worker's initializer: the study workers' (signals, dies with ``parent``),
    then matplotlib loaded and one small figure drawn, so that fonts and the Agg canvas are
    ready before the first real figure arrives."""
    from ..studies import worker_init

    worker_init(parent)
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(1, 1))
    fig.subplots().set_title("ε 0.5")
    fig.savefig(io.BytesIO(), format="png", dpi=50)


def fill_figures(html: str, pngs: dict[str, bytes]) -> str:
    """Replace each placeholder by its PNG as a data URI."""
    for token, data in pngs.items():
        html = html.replace(token, "data:image/png;base64," + base64.b64encode(data).decode())
    return html
