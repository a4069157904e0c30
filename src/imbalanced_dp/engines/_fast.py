"""The ``fast`` engine: batches of independent DP-SGD runs in one compiled loop."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np

from ..exceptions import ParameterError
from . import _kernel as k
from ._base import TrainedModel, TrainJob
from ._pack import pack_jobs, stats_dict


def _default_threads() -> int:
    env = os.environ.get("IMBALANCED_DP_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class FastEngine:
    """Batched DP-SGD, exactly the mechanism of PRIVACY.md, in one compiled loop per run.

    Runs of one batch share an architecture and may differ in everything else (data split,
    seed, privacy, sigma, clip, learning rate, weights, clipping rule). Each run is trained by
    one thread from its own counter-based random streams (initialisation from its seed,
    sampling and noise from its noise key), so the result of a run does not depend on the
    batch it is in.

    Parameters
    ----------
    dtype : {"float32", "float64"}
        Arithmetic precision; float32, like Opacus, by default.
    """

    name = "fast"
    batched = True
    relative_cost = 1.0
    clip_rules = ("standard", "dpsgd_f", "global_adapt")
    devices = ("cpu", "cuda")

    def __init__(self, dtype: str = "float32") -> None:
        if dtype not in ("float32", "float64"):
            raise ParameterError(f"dtype must be float32 or float64; got {dtype!r}")
        self.dtype = np.dtype(dtype)

    def train(
        self,
        jobs: Sequence[TrainJob],
        *,
        device: str = "cpu",
        threads: int | None = None,
        init_params: np.ndarray | None = None,
    ) -> list[TrainedModel]:
        """Train ``jobs`` and return one :class:`TrainedModel` each, in order.

        ``init_params`` (K, P) replaces the seeded initialisation (used by tests)."""
        if not jobs:
            return []
        if device != "cpu":
            from ._torch_fast import train_torch

            return train_torch(jobs, device=device, dtype=self.dtype, init_params=init_params)
        t0 = time.perf_counter()
        X, y, W, fs, ints = pack_jobs(jobs, self.dtype)
        K = len(jobs)
        P = jobs[0].arch.n_params
        sizes = np.asarray(jobs[0].arch.sizes, dtype=np.int64)
        params = np.zeros((K, P), self.dtype)
        init = np.ones(K, np.bool_)
        if init_params is not None:
            params[:] = init_params
            init[:] = False
        stats = np.zeros((K, k.N_STATS), np.float64)
        n_threads = min(threads or _default_threads(), K)
        if n_threads > 1:
            import numba

            numba.set_num_threads(min(n_threads, numba.config.NUMBA_NUM_THREADS))
            k.train_batch(X, y, W, sizes, params, fs, ints, stats, init)
        else:
            k.train_batch_serial(X, y, W, sizes, params, fs, ints, stats, init)
        ints[:, k.I_KEY_LO] = 0  # forget the keys
        ints[:, k.I_KEY_HI] = 0
        elapsed = (time.perf_counter() - t0) / K
        return [
            TrainedModel(
                arch=jobs[i].arch,
                params=params[i].astype(np.float64),
                stats=stats_dict(stats[i]),
                seconds=elapsed,
            )
            for i in range(K)
        ]
