"""Statistical agreement of the fast engine with Opacus.

The PIMA protocol at ε = 2 (δ = 1e-4, PRV; q = 0.1, 5 000 steps, C = 1, lr 0.01) trained by
both engines over the same 30 seeds (the same splits); prints mean accuracy and minority
recall with 95 % CIs per engine and the difference of means, which must be within 0.03.

    python benchmarks/engine_agreement.py [--seeds 30] [--epochs 500] [--workers N]
                                          [--dataset breast_cancer]

On breast_cancer (learning rate 0.001) a model barely moves from its initial parameters in
500 epochs and the minority recall of a run is bimodal (near 0 or near 0.7) by its
initialisation: the two engines draw their initial parameters from the same distribution
but with different generators, so tens of seeds are needed before their means agree.
Started from the same parameters, they agree run by run (see the engine issue's note).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> int:
    from imbalanced_dp.metrics import mean_ci
    from imbalanced_dp.studies import DatasetRef, ResultsStore, RunSpec, run_runs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--tolerance", type=float, default=0.03)
    ap.add_argument("--dataset", default="pima", choices=["pima", "breast_cancer"])
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    rows = {}
    for engine in ("fast", "opacus"):
        specs = [
            RunSpec(DatasetRef(name=a.dataset), seed=s, epsilon=2.0, epochs=a.epochs, engine=engine)
            for s in range(a.seeds)
        ]
        store = ResultsStore(tmp / f"{engine}.sqlite")
        t0 = time.perf_counter()
        run_runs(specs, store, workers=a.workers, quiet=True)
        df = store.results_frame()
        rows[engine] = {
            "accuracy": df[df["class"] == "avg/total"]["accuracy"].to_numpy(),
            "minority recall": df[df["class"] == "1"]["rec"].to_numpy(),
            "seconds": time.perf_counter() - t0,
        }
    print(f"{a.dataset}, eps=2, {a.epochs} epochs, {a.seeds} seeds per engine")
    ok = True
    for metric in ("accuracy", "minority recall"):
        f = mean_ci(rows["fast"][metric])
        o = mean_ci(rows["opacus"][metric])
        diff = f.mean - o.mean
        good = abs(diff) <= a.tolerance
        ok &= good
        print(
            f"{metric:<16} fast {f.mean:.4f} [{f.low:.4f}, {f.high:.4f}]   "
            f"opacus {o.mean:.4f} [{o.low:.4f}, {o.high:.4f}]   "
            f"difference {diff:+.4f} ({'within' if good else 'OUTSIDE'} {a.tolerance})"
        )
    print(
        f"wall time: fast {rows['fast']['seconds']:.1f} s, opacus {rows['opacus']['seconds']:.1f} s"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
