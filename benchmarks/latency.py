"""What a user waits for: wall time of whole commands in fresh processes.

For each command, the median (and range) over ``--repeats`` fresh processes:

- ``imbalanced-dp --help`` and ``imbalanced-dp datasets``;
- ``run --dataset pima --non-private`` (500 epochs);
- ``run --dataset pima --epsilon 2`` (500 epochs, PLD) with a warm calibration cache (the
  user's cache holds σ) and a cold one (an empty cache folder: σ is calibrated);
- the same DP run end to end with Opacus alone: a fresh process that loads PIMA,
  standardises it, builds the study's MLP and trains it with
  ``PrivacyEngine.make_private_with_epsilon`` (Poisson sampling, ε = 2, δ = 1e-4, 500
  epochs, C = 1, its default PRV accountant), then predicts the test split — the ratio
  Opacus / imbalanced-dp is printed next to it;
- ``report`` on a 320-run store (the ``imbalance`` preset, trained once first), with the
  figure cache cold (every figure drawn) and warm (copied);
- ``reproduce`` (the default: 240 runs, 30 seeds) into a fresh folder, with ``--no-report``.

The machine is shared and noisy: read medians and ratios, and the load printed at the top.

    python benchmarks/latency.py [--repeats 5] [--skip reproduce,report]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OPACUS_RUN = r"""
import numpy as np, torch
from opacus import PrivacyEngine
from imbalanced_dp.data import load_dataset, prepare_split
torch.set_num_threads(1)
ds = load_dataset("pima")
split = prepare_split(ds, seed=0)
X = torch.tensor(split.X_train, dtype=torch.float32)
y = torch.tensor(split.y_train, dtype=torch.int64)
torch.manual_seed(0)
layers, width = [], X.shape[1]
for h in (20, 10, 10):  # the study's PIMA model
    layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
    width = h
model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.01)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=64)
engine = PrivacyEngine(accountant="prv")
model, opt, loader = engine.make_private_with_epsilon(
    module=model, optimizer=opt, data_loader=loader, target_epsilon=2.0, target_delta=1e-4,
    epochs=500, max_grad_norm=1.0, poisson_sampling=True)
loss = torch.nn.CrossEntropyLoss()
for _ in range(500):
    for xb, yb in loader:
        if len(xb) == 0:
            continue
        opt.zero_grad()
        loss(model(xb), yb).backward()
        opt.step()
with torch.no_grad():
    pred = model(torch.tensor(split.X_test, dtype=torch.float32)).argmax(1).numpy()
print("minority recall", float((pred[split.y_test == 1] == 1).mean()))
"""


def timed(argv: list[str], *, env: dict, cwd: Path, before=None) -> float:
    if before is not None:
        before()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-2000:]}")
    return wall


def measure(name, argv, repeats, *, env, cwd, before=None) -> list[float]:
    walls = [timed(argv, env=env, cwd=cwd, before=before) for _ in range(repeats)]
    med = statistics.median(walls)
    print(f"{name:<44}{med:>8.2f} s   (range {min(walls):.2f}–{max(walls):.2f})", flush=True)
    return walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip", default="", help="comma-separated: opacus,report,reproduce")
    args = ap.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    exe = [sys.executable, "-m", "imbalanced_dp"]
    with tempfile.TemporaryDirectory(prefix="imbalanced-dp-latency-") as tmp:
        tmp = Path(tmp)
        warm = tmp / "warm-cache"
        env = dict(os.environ, IMBALANCED_DP_CACHE_DIR=str(warm))
        env.pop("IMBALANCED_DP_DEBUG", None)
        load = os.getloadavg()
        print(
            f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
            f"median of {args.repeats} fresh processes\n"
        )
        # one untimed run of each: numba's compiled engine and the calibration are cached
        timed([*exe, "run", "--dataset", "pima", "--epsilon", "2"], env=env, cwd=tmp)
        r = args.repeats
        measure("imbalanced-dp --help", [*exe, "--help"], r, env=env, cwd=tmp)
        measure("imbalanced-dp datasets", [*exe, "datasets"], r, env=env, cwd=tmp)
        measure(
            "run --dataset pima --non-private",
            [*exe, "run", "--dataset", "pima", "--non-private"],
            r, env=env, cwd=tmp,
        )  # fmt: skip
        dp = [*exe, "run", "--dataset", "pima", "--epsilon", "2"]
        ours = measure("run --dataset pima --epsilon 2 (warm cache)", dp, r, env=env, cwd=tmp)
        cold = tmp / "cold-cache"
        measure(
            "run --dataset pima --epsilon 2 (cold cache)",
            dp, r, env=dict(env, IMBALANCED_DP_CACHE_DIR=str(cold)), cwd=tmp,
            before=lambda: shutil.rmtree(cold, ignore_errors=True),
        )  # fmt: skip
        if "opacus" not in skip:
            theirs = measure(
                "Opacus make_private_with_epsilon, same run",
                [sys.executable, "-c", OPACUS_RUN], r, env=env, cwd=tmp,
            )  # fmt: skip
            ratio = statistics.median(theirs) / statistics.median(ours)
            print(f"{'  ratio Opacus / imbalanced-dp (warm)':<44}{ratio:>8.1f} ×")
        if "report" not in skip:
            store = tmp / "imbalance.sqlite"
            print("(training the 320-run imbalance store, not timed …)", flush=True)
            timed(
                [*exe, "study", "run", "--preset", "imbalance", "--store", str(store),
                 "--no-report", "-q"], env=env, cwd=tmp,
            )  # fmt: skip
            rep = [*exe, "report", "--store", str(store), "--out", str(tmp / "rep"), "--force"]
            figures = warm / "figures"
            measure(
                "report, 320 runs (figures drawn)", rep, r, env=env, cwd=tmp,
                before=lambda: shutil.rmtree(figures, ignore_errors=True),
            )  # fmt: skip
            measure("report, 320 runs (figures cached)", rep, r, env=env, cwd=tmp)
        if "reproduce" not in skip:
            out = tmp / "repro"
            measure(
                "reproduce --no-report (240 runs)",
                [*exe, "reproduce", "--no-report", "-q", "--out", str(out)], r, env=env, cwd=tmp,
                before=lambda: shutil.rmtree(out, ignore_errors=True),
            )  # fmt: skip


if __name__ == "__main__":
    main()
