"""The ``fast`` engine: batches of independent DP-SGD runs in one compiled loop."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Sequence

import numpy as np

from ..exceptions import ParameterError
from . import _kernel as k
from ._base import TrainedModel, TrainJob

_RULES = {
    "standard": k.MODE_STANDARD,
    "dpsgd_f": k.MODE_DPSGD_F,
    "global_adapt": k.MODE_GLOBAL_ADAPT,
}


def _default_threads() -> int:
    env = os.environ.get("IMBALANCED_DP_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def pack_jobs(jobs: Sequence[TrainJob], dtype: np.dtype):
    """Stack the jobs' data and settings into the kernel's arrays.

    Jobs that share the same ``X`` array object share one copy of it. A private run without
    a noise key gets a fresh secret key from the operating system's entropy here, at the
    last moment; it lives only in the returned settings array (PRIVACY.md rule 9)."""
    arch = jobs[0].arch
    for j in jobs:
        if j.arch != arch:
            raise ParameterError(
                f"a batch of the fast engine needs one architecture; got {arch} and {j.arch}"
            )
        if j.X.shape[1] != arch.sizes[0]:
            raise ParameterError(
                f"data has {j.X.shape[1]} features but the architecture expects {arch.sizes[0]}"
            )
    K = len(jobs)
    data_off: dict[int, int] = {}
    Xs, ys = [], []
    total = 0
    offsets = np.zeros(K, np.int64)
    for i, j in enumerate(jobs):
        key = id(j.X)
        if key not in data_off:
            data_off[key] = total
            Xs.append(np.asarray(j.X, dtype=dtype))
            ys.append(np.asarray(j.y, dtype=np.int64))
            total += len(j.y)
        offsets[i] = data_off[key]
    X = np.ascontiguousarray(np.concatenate(Xs, axis=0))
    y = np.ascontiguousarray(np.concatenate(ys))
    ws = []
    woff = np.zeros(K, np.int64)
    pos = 0
    for i, j in enumerate(jobs):
        n = len(j.y)
        w = np.ones(n, dtype) if j.weights is None else np.asarray(j.weights, dtype=dtype)
        if w.shape != (n,):
            raise ParameterError(f"per-example weights must have shape ({n},); got {w.shape}")
        ws.append(w)
        woff[i] = pos
        pos += n
    W = np.ascontiguousarray(np.concatenate(ws)) if ws else np.zeros(0, dtype)
    fs = np.zeros((K, k.N_SETTINGS), np.float64)
    ints = np.zeros((K, k.N_ISETTINGS), np.int64)
    for i, j in enumerate(jobs):
        c = j.config
        c0, c1 = c.clip_bounds
        fs[i, k.S_LR] = c.lr
        fs[i, k.S_SIGMA] = c.noise_multiplier if c.private else 0.0
        fs[i, k.S_NOISE_CLIP] = max(c0, c1)
        fs[i, k.S_CLIP0] = c0
        fs[i, k.S_CLIP1] = c1
        fs[i, k.S_Q] = c.sample_rate
        fs[i, k.S_EXP_BATCH] = c.expected_batch_size
        fs[i, k.S_AUX_SIGMA] = c.aux_noise_multiplier if c.private else 0.0
        if c.clip_rule == "dpsgd_f":
            fs[i, k.S_AUX_A] = float(c.aux.get("base_clip", c.clip))
        elif c.clip_rule == "global_adapt":
            fs[i, k.S_AUX_A] = float(c.aux["z0"])
            fs[i, k.S_AUX_B] = float(c.aux["lr_z"])
            fs[i, k.S_AUX_C] = float(c.aux.get("quantile", 0.9))
        ints[i, k.I_SEED] = c.seed
        ints[i, k.I_STEPS] = c.steps
        ints[i, k.I_PRIVATE] = int(c.private)
        ints[i, k.I_BATCH] = c.batch_size
        ints[i, k.I_MODE] = _RULES[c.clip_rule]
        ints[i, k.I_DATA_OFF] = offsets[i]
        ints[i, k.I_DATA_N] = len(j.y)
        ints[i, k.I_WEIGHT_OFF] = woff[i]
        if c.private:
            key = secrets.randbits(64) if c.noise_key is None else int(c.noise_key)
            ints[i, k.I_KEY_LO] = key & 0xFFFFFFFF
            ints[i, k.I_KEY_HI] = key >> 32
            del key
    return X, y, W, fs, ints


def stats_dict(row: np.ndarray) -> dict:
    return {
        "seen": [int(row[k.STAT_SEEN_0]), int(row[k.STAT_SEEN_1])],
        "clipped": [int(row[k.STAT_CLIPPED_0]), int(row[k.STAT_CLIPPED_1])],
        "nonfinite": int(row[k.STAT_NONFINITE]),
        "empty_steps": int(row[k.STAT_EMPTY_STEPS]),
        "max_batch": int(row[k.STAT_MAX_BATCH]),
        "clip_state": [float(row[k.STAT_CLIP_MEAN_0]), float(row[k.STAT_CLIP_MEAN_1])],
    }


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
