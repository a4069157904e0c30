"""Speed of the fast engine against Opacus on the study's protocol.

Both datasets, ε = 2 (δ = 1e-4, the default accountant: it sets σ, which does not change the
engines' cost), 500 epochs, batch 64, C = 1; run ``s`` of a batch has the fixed noise key
``1000 + s`` (research mode), so every measurement trains the same runs. Each measurement
runs in child processes so that peak memory (max RSS) is their own; start-up, imports and
the one-off numba compilation are excluded by a warm-up.

Both engines get the whole machine. Opacus's tiny models run fastest on one torch thread, so
its best throughput is one single-threaded process per core, all at once: its seconds per
run are the wall time of a run divided by the number of processes. The fast engine trains
K = 40 runs in one batch on all cores. Prints seconds per run (medians over repeats), the
ratio Opacus / fast, the same ratio in CPU seconds per run (what each run costs the
processors, which time-sharing with other processes inflates far less than wall time), peak
memory per process, and the machine's load average before and after (other processes on the
cores slow both engines: compare ratios of one invocation, and use ``--rounds`` to
interleave repeated measurements of the two).

    python benchmarks/engine_speed.py [--opacus-runs 2] [--fast-repeats 5] [--threads N]
                                      [--rounds 1] [--device cuda]
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
    from imbalanced_dp.privacy import (
        DEFAULT_ACCOUNTANT,
        calibrate_noise_multiplier,
        sampling_plan,
    )

    ds = load_dataset(name)
    split = prepare_split(ds, seed=0)
    plan = sampling_plan(n=split.n_train, batch_size=64, epochs=epochs)
    sigma = calibrate_noise_multiplier(
        target_epsilon=2.0,
        delta=1e-4,
        sample_rate=plan.sample_rate,
        steps=plan.steps,
        accountant=DEFAULT_ACCOUNTANT,
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
            noise_key=1000 + s,
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
    cpu = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        c0 = time.process_time()
        eng.train(jobs, threads=threads, **kw)
        times.append((time.perf_counter() - t0) / len(jobs))
        cpu.append((time.process_time() - c0) / len(jobs))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"per_run": times, "cpu_per_run": cpu, "max_rss_mb": rss}))


def measure(engine, name, runs, repeats, threads, epochs, processes=1, device="cpu"):
    """Per-run seconds of ``processes`` concurrent children (each run's wall time divided by
    the number of processes: the machine's throughput), per-run CPU seconds (all threads of
    a child) and the largest peak memory."""
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
    return {
        "per_run": [t / processes for o in outs for t in o["per_run"]],
        "cpu_per_run": [t for o in outs for t in o["cpu_per_run"]],
        "max_rss_mb": max(o["max_rss_mb"] for o in outs),
    }


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
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure both engines this many times, interleaved (load changes hit both)",
    )
    a = ap.parse_args()
    print(
        f"DP-SGD at eps=2, {a.epochs} epochs, batch 64, C=1, {a.threads} cores. Opacus: "
        f"{a.threads} single-threaded processes at once (its best throughput here); "
        f"fast: K={a.k} runs per batch on {a.threads} threads"
    )
    print(f"load average before: {_load()}")
    print(
        f"{'dataset':<15}{'opacus s/run':>14}{'fast s/run':>12}{'ratio':>9}{'cpu ratio':>11}"
        f"{'opacus MB':>11}{'fast MB':>9}  per-round ratios"
    )
    for name in ("pima", "breast_cancer"):
        res: dict[str, dict[str, list[float]]] = {
            e: {"per_run": [], "cpu_per_run": []} for e in ("opacus", "fast")
        }
        rounds = []
        rss = {"opacus": 0.0, "fast": 0.0}
        for _ in range(a.rounds):
            m = {
                "opacus": measure(
                    "opacus",
                    name,
                    a.opacus_runs,
                    a.opacus_repeats,
                    1,
                    a.epochs,
                    processes=a.threads,
                ),
                "fast": measure(
                    "fast", name, a.k, a.fast_repeats, a.threads, a.epochs, device=a.device
                ),
            }
            for e, r in m.items():
                for key in ("per_run", "cpu_per_run"):
                    res[e][key] += r[key]
                rss[e] = max(rss[e], r["max_rss_mb"])
            med = {e: statistics.median(r["per_run"]) for e, r in m.items()}
            rounds.append(med["opacus"] / med["fast"])
        to, tf = (statistics.median(res[e]["per_run"]) for e in ("opacus", "fast"))
        co, cf = (statistics.median(res[e]["cpu_per_run"]) for e in ("opacus", "fast"))
        per_round = " ".join(f"{r:.0f}" for r in rounds)
        print(
            f"{name:<15}{to:>14.3f}{tf:>12.4f}{to / tf:>8.0f}x{co / cf:>10.0f}x"
            f"{rss['opacus']:>11.0f}{rss['fast']:>9.0f}  {per_round}  "
            f"(target >= {TARGETS[name]}x)",
            flush=True,
        )
    print(f"load average after: {_load()}")


def _load() -> str:
    """The 1, 5 and 15 minute load averages (runnable processes; the cores are shared)."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


#: issue 17's acceptance line: engine-level median ratio against Opacus
TARGETS = {"pima": 250, "breast_cancer": 150}


if __name__ == "__main__":
    main()
