"""Speed of the fast engine against Opacus on the study's protocol.

Both datasets, ε = 2 (δ = 1e-4, PRV), 500 epochs, batch 64, C = 1. Each measurement runs in
child processes so that peak memory (max RSS) is their own; start-up, imports and the
one-off numba compilation are excluded by a warm-up.

Both engines get the whole machine. Opacus's tiny models run fastest on one torch thread, so
its best throughput is one single-threaded process per core, all at once: its seconds per
run are the wall time of a run divided by the number of processes. The fast engine trains
K = 40 runs in one batch on all cores. Prints seconds per run (medians over repeats), the
ratio Opacus / fast, and peak memory per process.

    python benchmarks/engine_speed.py [--opacus-runs 2] [--fast-repeats 5] [--threads N]
                                      [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time


def jobs_for(name: str, k: int, epochs: int):
    from imbalanced_dp.data import load_dataset, prepare_split
    from imbalanced_dp.engines import RunConfig, TrainJob
    from imbalanced_dp.models import architecture, hidden_for, lr_for
    from imbalanced_dp.privacy import calibrate_noise_multiplier, sampling_plan

    ds = load_dataset(name)
    split = prepare_split(ds, seed=0)
    plan = sampling_plan(n=split.n_train, batch_size=64, epochs=epochs)
    sigma = calibrate_noise_multiplier(
        target_epsilon=2.0,
        delta=1e-4,
        sample_rate=plan.sample_rate,
        steps=plan.steps,
        accountant="prv",
    )
    arch = architecture(ds.n_features, hidden_for(name))
    out = []
    for s in range(k):
        cfg = RunConfig(
            seed=s,
            private=True,
            epochs=epochs,
            batch_size=64,
            lr=lr_for(name),
            steps=plan.steps,
            clip=1.0,
            noise_multiplier=sigma,
            sample_rate=plan.sample_rate,
            expected_batch_size=plan.expected_batch_size,
        )
        out.append(TrainJob(split.X_train, split.y_train, arch, cfg))
    return out


def child(
    engine: str, name: str, runs: int, repeats: int, threads: int, epochs: int, device: str
) -> None:
    from imbalanced_dp.engines import get_engine

    eng = get_engine(engine)
    warm = jobs_for(name, 1, 1)
    kw = {"device": device} if engine == "fast" else {}
    eng.train(warm, threads=threads, **kw)  # imports, numba compilation / Opacus set-up
    jobs = jobs_for(name, runs, epochs)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        eng.train(jobs, threads=threads, **kw)
        times.append((time.perf_counter() - t0) / len(jobs))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"per_run": times, "max_rss_mb": rss}))


def measure(engine, name, runs, repeats, threads, epochs, processes=1, device="cpu"):
    """Per-run seconds of ``processes`` concurrent children (each run's wall time divided by
    the number of processes: the machine's throughput) and the largest peak memory."""
    cmd = [sys.executable, __file__, "--child", engine, name]
    cmd += [str(v) for v in (runs, repeats, threads, epochs)] + [device]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode:
            raise RuntimeError(err)
        outs.append(json.loads(out.strip().splitlines()[-1]))
    per_run = [t / processes for o in outs for t in o["per_run"]]
    return {"per_run": per_run, "max_rss_mb": max(o["max_rss_mb"] for o in outs)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        e, n, r, rep, th, ep, dev = sys.argv[2:9]
        child(e, n, int(r), int(rep), int(th), int(ep), dev)
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--opacus-runs", type=int, default=2, help="Opacus runs per repeat")
    ap.add_argument("--opacus-repeats", type=int, default=2)
    ap.add_argument("--fast-repeats", type=int, default=5)
    ap.add_argument("--k", type=int, default=40, help="runs per fast batch")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--device", default="cpu", help="device of the fast engine (cpu or cuda)")
    a = ap.parse_args()
    print(
        f"DP-SGD at eps=2, {a.epochs} epochs, batch 64, C=1, {a.threads} cores. Opacus: "
        f"{a.threads} single-threaded processes at once (its best throughput here); "
        f"fast: K={a.k} runs per batch on {a.threads} threads"
    )
    print(
        f"{'dataset':<15}{'opacus s/run':>14}{'fast s/run':>12}{'ratio':>9}"
        f"{'opacus MB':>11}{'fast MB':>9}"
    )
    ratios = []
    for name in ("pima", "breast_cancer"):
        o = measure(
            "opacus", name, a.opacus_runs, a.opacus_repeats, 1, a.epochs, processes=a.threads
        )
        f = measure("fast", name, a.k, a.fast_repeats, a.threads, a.epochs, device=a.device)
        to, tf = statistics.median(o["per_run"]), statistics.median(f["per_run"])
        ratios.append(to / tf)
        print(
            f"{name:<15}{to:>14.3f}{tf:>12.4f}{to / tf:>8.0f}x{o['max_rss_mb']:>11.0f}"
            f"{f['max_rss_mb']:>9.0f}"
        )
    print(
        f"ratio (median over datasets of median times): {statistics.median(ratios):.0f}x "
        f"(target >= 100x)"
    )


if __name__ == "__main__":
    main()
