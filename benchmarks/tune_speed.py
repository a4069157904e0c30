"""Speed of ``tune`` (issue 14, item 6): the default space with 20 expected trials on a
4 000-row table, and the same search with its trials trained by Opacus instead of the fast
engine.

The table is synthetic (4 000 rows, 12 features, 15 % positives; no data is downloaded).
Part 1 times ``tune`` as a user runs it (default space, ε = 2, no comparisons) over a few
seeds and prints the median. Part 2 runs one search twice in research mode, so that both
draw the same number of trials, the same settings and the same split: once with the trials
in batches on the fast engine, once one at a time through Opacus. Opacus implements plain
DP-SGD only, so part 2's space keeps the mitigations ``none`` and ``class_weighted``.

    python benchmarks/tune_speed.py                 # 3 seeds, Opacus side by side
    python benchmarks/tune_speed.py --no-opacus
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np


def synthetic_table(path: str, n: int = 4000, d: int = 12, positives: float = 0.15) -> None:
    """A table with a learnable but noisy signal in a few columns, columns on unlike
    scales (as in clinical tables)."""
    rng = np.random.default_rng(20261202)
    y = (rng.random(n) < positives).astype(int)
    X = rng.normal(size=(n, d))
    X[:, :4] += 0.9 * y[:, None] * np.array([1.0, -0.8, 0.6, 0.5])
    X = X * np.geomspace(0.5, 200.0, d) + np.linspace(0, 100, d)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(",".join(f"x{j}" for j in range(d)) + ",outcome\n")
        for row, label in zip(X, y):
            fh.write(",".join(f"{v:.4f}" for v in row) + f",{label}\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=float, default=20.0)
    ap.add_argument("--no-opacus", action="store_true")
    args = ap.parse_args()

    from imbalanced_dp.studies import DatasetRef
    from imbalanced_dp.tune import tune
    from imbalanced_dp.tuning import SearchSettings, SearchSpace, _search

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "table.csv")
        synthetic_table(path)
        ref = DatasetRef(csv=path, target="outcome")
        settings = SearchSettings(trials=args.trials)
        tune(ref, epsilon=2.0, seed=99, settings=SearchSettings(trials=2), compare=False)
        print(
            f"load average {os.getloadavg()[0]:.2f}; 4 000 rows, ε = 2, {args.trials:g} "
            "expected trials, default space"
        )
        walls = []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            out = tune(ref, epsilon=2.0, seed=seed, settings=settings, compare=False)
            walls.append(time.perf_counter() - t0)
            print(
                f"  seed {seed}: {walls[-1]:.1f} s (test balanced accuracy "
                f"{out.test['scores']['balanced_accuracy']:.3f})",
                flush=True,
            )
        print(f"tune, default space: median {statistics.median(walls):.1f} s")
        if args.no_opacus:
            return

        space = SearchSpace.default().with_values(mitigation=["none", "class_weighted"])
        fast_train = _search._train
        timings = {}
        for engine in ("fast", "opacus"):
            if engine == "opacus":
                from imbalanced_dp.engines import get_engine

                def opacus_train(trials, threads):
                    return get_engine("opacus").train([t.job for t in trials], threads=1)

                _search._train = opacus_train
            try:
                t0 = time.perf_counter()
                out = tune(
                    ref,
                    epsilon=2.0,
                    seed=7,
                    settings=settings,
                    space=space,
                    reproducible=True,
                    compare=False,
                )
                timings[engine] = time.perf_counter() - t0
            finally:
                _search._train = fast_train
            print(
                f"  same search, trials on {engine}: {timings[engine]:.1f} s (chose "
                f"{out.result.best.to_dict()})",
                flush=True,
            )
        print(f"Opacus / fast: {timings['opacus'] / timings['fast']:.1f}x")


if __name__ == "__main__":
    main()
