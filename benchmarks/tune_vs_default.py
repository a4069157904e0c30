"""Issue 14's acceptance: the privately tuned model against the study's default
configuration at the same total ε, on the same splits, over seeds.

For each bundled dataset, each total ε and each seed, ``tune`` searches on the training
split of that seed (search and final model within ε) and its test metrics are compared with
``run --seed`` at the same ε (the study's hyperparameters: batch 64, 500 epochs, SGD lr
0.01, C = 1) on the same test rows; the same search without privacy is the ceiling.
Prints, per dataset and ε, the mean balanced accuracies, the paired difference tuned −
default with its 95 % t interval, the largest ε spent, and which settings the search chose.

    python benchmarks/tune_vs_default.py                 # 10 seeds, ε = 2 and 1
    python benchmarks/tune_vs_default.py --seeds 3 --epsilon 2
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import time

import numpy as np


def paired_ci(diff: np.ndarray) -> tuple[float, float, float]:
    from scipy import stats

    m = float(diff.mean())
    if len(diff) < 2:
        return m, math.nan, math.nan
    h = float(stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / math.sqrt(len(diff)))
    return m, m - h, m + h


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", default="pima,breast_cancer")
    ap.add_argument("--epsilon", default="2,1", help="total budgets, comma-separated")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--json", help="also write every outcome to this JSON file")
    args = ap.parse_args()

    from imbalanced_dp.studies import DatasetRef
    from imbalanced_dp.tune import tune

    rows = []
    t0 = time.perf_counter()
    for name in args.datasets.split(","):
        for eps in (float(e) for e in args.epsilon.split(",")):
            for seed in range(args.seeds):
                out = tune(DatasetRef(name=name), epsilon=eps, seed=seed)
                res = out.result
                rows.append(
                    {
                        "dataset": name,
                        "epsilon": eps,
                        "seed": seed,
                        "tuned": out.test["scores"]["balanced_accuracy"],
                        "default": out.default.scores["balanced_accuracy"],
                        "nonprivate": out.nonprivate_test["scores"]["balanced_accuracy"],
                        "tuned_recall1": out.test["metrics"][1]["rec"],
                        "default_recall1": float(out.default.metrics[1]["rec"]),
                        "epsilon_spent": res.ledger.epsilon_spent,
                        "trial_epsilon": min(n.epsilon for n in res.selection.noise),
                        "best": res.best.to_dict(),
                        "seconds": out.seconds,
                    }
                )
                r = rows[-1]
                print(
                    f"{name:14s} eps {eps:g} seed {seed}: tuned {r['tuned']:.3f} default "
                    f"{r['default']:.3f} non-private {r['nonprivate']:.3f} "
                    f"(spent {r['epsilon_spent']:.4f}, {r['seconds']:.1f} s)",
                    flush=True,
                )
    print()
    print(
        f"{'dataset':14s} {'eps':>4s}  {'tuned':>6s} {'default':>7s} {'non-priv':>8s}  "
        f"{'tuned-default [95% CI]':>26s}  {'rec1 tuned':>10s} {'rec1 def':>8s}  "
        f"{'max spent':>9s} {'1 trial':>7s}"
    )
    for name in args.datasets.split(","):
        for eps in (float(e) for e in args.epsilon.split(",")):
            sel = [r for r in rows if r["dataset"] == name and r["epsilon"] == eps]
            tuned = np.array([r["tuned"] for r in sel])
            default = np.array([r["default"] for r in sel])
            m, lo, hi = paired_ci(tuned - default)
            print(
                f"{name:14s} {eps:4g}  {tuned.mean():6.3f} {default.mean():7.3f} "
                f"{np.mean([r['nonprivate'] for r in sel]):8.3f}  "
                f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]".ljust(26 + 42)
                + f"  {np.mean([r['tuned_recall1'] for r in sel]):10.3f} "
                f"{np.mean([r['default_recall1'] for r in sel]):8.3f}  "
                f"{max(r['epsilon_spent'] for r in sel):9.4f} "
                f"{np.median([r['trial_epsilon'] for r in sel]):7.3f}"
            )
    print("\nsettings the search chose (count over seeds and budgets):")
    for name in args.datasets.split(","):
        sel = [r for r in rows if r["dataset"] == name]
        print(f"  {name}:")
        for key in (
            "lr",
            "batch_size",
            "epochs",
            "clip",
            "layers",
            "mitigation",
            "threshold",
            "scaling",
        ):
            c = collections.Counter(str(r["best"].get(key)) for r in sel)
            print(f"    {key:11s} " + ", ".join(f"{k} x{v}" for k, v in c.most_common()))
    print(
        f"\n{len(rows)} tunes in {time.perf_counter() - t0:.0f} s; median "
        f"{np.median([r['seconds'] for r in rows]):.1f} s per tune (with its comparisons)"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
