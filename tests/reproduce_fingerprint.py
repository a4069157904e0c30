"""The floating-point fingerprint of a machine, for the reproduce fixture.

Three computations whose last bits depend on the CPU's vector width (numba's fastmath
kernels, numpy's SIMD loops), on the math library and on the accountant's numerics: if all
three give the bits recorded with the fixture, a fresh ``reproduce --seeds 2`` must give
the fixture's results.csv byte for byte.
"""

from __future__ import annotations

import hashlib


def arithmetic_fingerprint() -> dict:
    import numpy as np

    from imbalanced_dp.data import load_dataset, prepare_split
    from imbalanced_dp.engines import FastEngine, RunConfig, TrainJob
    from imbalanced_dp.models import architecture
    from imbalanced_dp.privacy import epsilon_spent

    split = prepare_split(load_dataset("pima"), seed=0)
    cfg = RunConfig(
        seed=0,
        private=True,
        epochs=2,
        batch_size=64,
        lr=0.01,
        steps=20,
        noise_multiplier=1.5,
        sample_rate=0.1,
        expected_batch_size=61,
        noise_key=12345,
    )
    model = FastEngine().train(
        [TrainJob(split.X_train, split.y_train, architecture(8, (20, 5, 5)), cfg)], threads=1
    )[0]
    return {
        "fast_engine_float32": hashlib.sha256(model.params.tobytes()).hexdigest()[:16],
        "scaler_mean": hashlib.sha256(np.asarray(split.scaler_mean).tobytes()).hexdigest()[:16],
        "pld_epsilon": repr(
            epsilon_spent(
                noise_multiplier=12.382, sample_rate=0.1, steps=5000, delta=1e-4, accountant="pld"
            )
        ),
    }
