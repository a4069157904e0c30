"""Packing a batch of training jobs into the arrays of the fast engine's kernels (the
compiled CPU loop and the batched torch path share it), and reading their statistics."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import numpy as np

from ..exceptions import ParameterError
from . import _kernel as k
from ._base import TrainJob

RULES = {
    "standard": k.MODE_STANDARD,
    "dpsgd_f": k.MODE_DPSGD_F,
    "global_adapt": k.MODE_GLOBAL_ADAPT,
}


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
        ints[i, k.I_MODE] = RULES[c.clip_rule]
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
