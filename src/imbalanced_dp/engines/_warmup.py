"""Compile the fast engine's kernels ahead of time (numba caches them on disk).

Run once after installation (the Makefile does): the first training then starts at once
instead of spending ten to thirty seconds compiling.

    python -m imbalanced_dp.engines._warmup
"""

from __future__ import annotations

import time

import numpy as np


def warm_up(verbose: bool = False) -> float:
    """Compile (or load from the cache) every kernel signature the package uses; returns
    the seconds it took."""
    from ..models import architecture
    from ._base import RunConfig, TrainJob
    from ._fast import FastEngine

    t0 = time.perf_counter()
    arch = architecture(4, (3,))
    X = np.random.default_rng(0).normal(size=(12, 4))
    y = np.arange(12) % 2
    cfg = RunConfig(
        seed=0,
        private=True,
        epochs=1,
        batch_size=4,
        lr=0.1,
        steps=2,
        clip=1.0,
        noise_multiplier=1.0,
        sample_rate=0.3,
        expected_batch_size=4,
    )
    for dtype in ("float32", "float64"):
        eng = FastEngine(dtype)
        for threads in (1, 2):
            eng.train([TrainJob(X, y, arch, cfg)] * 2, threads=threads)
            if verbose:
                print(f"compiled {dtype}, {threads} thread(s): {time.perf_counter() - t0:.1f} s")
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"fast engine ready ({warm_up(verbose=True):.1f} s)")
