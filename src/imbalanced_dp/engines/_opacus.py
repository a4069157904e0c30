"""The ``opacus`` engine: the study's training, one run at a time, through Opacus.

Non-private runs are plain PyTorch minibatch SGD over shuffled data; private runs go through
``opacus.PrivacyEngine.make_private`` with Poisson sampling, flat clipping at C and the
noise multiplier calibrated beforehand (the same σ the fast engine receives). It is the
reference the fast engine is checked against.

The Poisson sampler and the noise each get their own generator, seeded from the run's noise
key by two distinct derivations (or, without a key, from fresh OS entropy that is never
kept); per-example gradients that are not finite are zeroed before Opacus clips them, so
they never reach the sum (PRIVACY.md rule 5).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import warnings
from collections.abc import Sequence

import numpy as np

from ..exceptions import ParameterError
from ..models import build_mlp
from ._base import TrainedModel, TrainJob


def _flat_params(model) -> np.ndarray:
    parts = []
    for layer in model:
        if hasattr(layer, "weight"):
            parts.append(layer.weight.detach().cpu().double().numpy().ravel())
            parts.append(layer.bias.detach().cpu().double().numpy().ravel())
    return np.concatenate(parts)


def _load_flat(model, flat: np.ndarray) -> None:
    import torch

    off = 0
    with torch.no_grad():
        for layer in model:
            if hasattr(layer, "weight"):
                for p in (layer.weight, layer.bias):
                    n = p.numel()
                    p.copy_(torch.as_tensor(flat[off : off + n]).reshape(p.shape))
                    off += n


def _generator_seed(noise_key: int | None, purpose: str) -> int:
    """A 63-bit torch generator seed for ``purpose`` ("sampling" or "noise"): derived from
    the research-mode key, or fresh OS entropy when the run's noise is secret."""
    if noise_key is None:
        return secrets.randbits(63)
    digest = hashlib.sha256(f"opacus {purpose} {int(noise_key)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def drop_nonfinite_grad_samples(model) -> int:
    """Zero the per-example gradients (``grad_sample``) of every example whose gradient is
    not finite in some parameter, so that Opacus's clipping cannot turn it into NaN in the
    sum; returns how many examples were dropped."""
    import torch

    params = [p for p in model.parameters() if getattr(p, "grad_sample", None) is not None]
    if not params:
        return 0
    bad = None
    for p in params:
        gs = p.grad_sample
        b = ~torch.isfinite(gs.reshape(gs.shape[0], -1)).all(dim=1)
        bad = b if bad is None else bad | b
    count = int(bad.sum()) if bad is not None else 0
    if count:
        with torch.no_grad():
            for p in params:
                p.grad_sample[bad] = 0.0
    return count


class OpacusEngine:
    """Reference engine: Opacus 1.6 DP-SGD (or plain SGD), one run after the other."""

    name = "opacus"
    batched = False
    #: one run at a time through autograd hooks: about fifty times the fast engine's cost
    #: per run (benchmarks/engine_speed.py measures the ratio)
    relative_cost = 50.0
    clip_rules = ("standard",)
    devices = ("cpu", "cuda")

    def train(
        self,
        jobs: Sequence[TrainJob],
        *,
        device: str = "cpu",
        threads: int | None = None,
        init_params: np.ndarray | None = None,
    ) -> list[TrainedModel]:
        import torch

        if threads is not None:
            torch.set_num_threads(max(1, threads))
        out = []
        for i, job in enumerate(jobs):
            init = None if init_params is None else init_params[i]
            out.append(self._train_one(job, device=device, init=init))
        return out

    def _train_one(self, job: TrainJob, *, device: str, init: np.ndarray | None) -> TrainedModel:
        import torch
        from torch.utils.data import DataLoader, TensorDataset

        c = job.config
        if c.clip_rule != "standard" or (
            c.class_clip is not None and c.class_clip[0] != c.class_clip[1]
        ):
            raise ParameterError(
                "the opacus engine implements plain DP-SGD only; per-class clipping, DPSGD-F "
                "and DPSGD-Global-Adapt need --engine fast"
            )
        t0 = time.perf_counter()
        torch.manual_seed(c.seed)
        model = build_mlp(job.arch).to(device)
        if init is not None:
            _load_flat(model, init)
        X = torch.as_tensor(np.asarray(job.X, dtype=np.float32))
        y = torch.as_tensor(np.asarray(job.y, dtype=np.int64))
        w = (
            torch.ones(len(y))
            if job.weights is None
            else torch.as_tensor(np.asarray(job.weights, dtype=np.float32))
        )
        data = TensorDataset(X, y, w)
        if c.private:
            # the Poisson sampler draws from the loader's generator
            gen = torch.Generator().manual_seed(_generator_seed(c.noise_key, "sampling"))
        else:
            gen = torch.Generator().manual_seed(c.seed)
        loader = DataLoader(data, batch_size=c.batch_size, shuffle=True, generator=gen)
        optimizer = torch.optim.SGD(model.parameters(), lr=c.lr, momentum=0.0)
        engine = None
        if c.private:
            from opacus import PrivacyEngine

            with warnings.catch_warnings():
                # Opacus warns that secure_mode is off; the ledger says so instead.
                warnings.simplefilter("ignore")
                engine = PrivacyEngine(accountant="prv", secure_mode=False)
                model, optimizer, loader = engine.make_private(
                    module=model,
                    optimizer=optimizer,
                    data_loader=loader,
                    noise_multiplier=c.noise_multiplier,
                    max_grad_norm=c.clip,
                    poisson_sampling=True,
                    noise_generator=torch.Generator().manual_seed(
                        _generator_seed(c.noise_key, "noise")
                    ),
                )
            if abs(optimizer.expected_batch_size - c.expected_batch_size) > 0:
                raise ParameterError(
                    f"Opacus's expected batch size {optimizer.expected_batch_size} differs "
                    f"from the plan's {c.expected_batch_size}"
                )
        crit = torch.nn.CrossEntropyLoss(reduction="none")
        steps = 0
        nonfinite = 0
        model.train()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*full_backward_hook.*")
            warnings.filterwarnings("ignore", message=".*Using a non-full backward hook.*")
            for _ in range(c.epochs):
                for xb, yb, wb in loader:
                    optimizer.zero_grad(set_to_none=True)
                    xb, yb, wb = xb.to(device), yb.to(device), wb.to(device)
                    out = model(xb)
                    loss = (crit(out, yb) * wb).mean() if len(yb) else out.sum() * 0.0
                    loss.backward()
                    if engine is not None:
                        nonfinite += drop_nonfinite_grad_samples(model)
                    optimizer.step()
                    steps += 1
        if c.private and steps != c.steps:
            raise ParameterError(f"Opacus ran {steps} steps; the plan fixed {c.steps}")
        inner = model._module if hasattr(model, "_module") else model
        stats: dict = {"steps": steps, "nonfinite": nonfinite}
        if engine is not None:
            stats["opacus_history"] = [list(h) for h in engine.accountant.history]
        return TrainedModel(
            arch=job.arch,
            params=_flat_params(inner),
            stats=stats,
            seconds=time.perf_counter() - t0,
        )
