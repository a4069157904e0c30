"""The fast engine's algorithm in batched torch, for ``device="cuda"`` (and CPU-tested).

Same mechanism, same counter-based random streams as the compiled CPU loop
(``_kernel.py``): Philox4x32-10 keyed by the run's seed (initialisation, shuffling) and its
noise key (sampling, noise), Poisson sampling by geometric gaps, ziggurat Gaussians (the same
draws: see :mod:`._rng`), the same clipping rules. The K runs of a batch are stacked along a
leading dimension; Poisson batches are padded to the largest one and masked (never
truncated). Results agree with the CPU engine to rounding: integer random streams are
identical, floating-point reductions run in another order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..exceptions import ParameterError
from . import _kernel as k
from ._base import TrainedModel, TrainJob
from ._pack import pack_jobs, stats_dict
from ._rng import (
    _A,
    _B,
    _C,
    _D,
    _E,
    _F,
    _ZF,
    _ZX,
    STREAM_AUX,
    STREAM_INIT,
    STREAM_NOISE,
    STREAM_SAMPLE,
    ZIG_LAYERS,
    ZIG_SIGN_BIT,
    ZIG_TAIL,
)

_M0 = 0xD2511F53
_M1 = 0xCD9E8D57
_W0 = 0x9E3779B9
_W1 = 0xBB67AE85
_MASK32 = 0xFFFFFFFF


def _mulhilo(a, m: int):
    """hi and lo 32-bit words of a * m for int64 tensors ``a`` < 2**32 and a 32-bit constant,
    without overflowing int64."""
    a_lo = a & 0xFFFF
    a_hi = a >> 16
    p1 = a_lo * m  # < 2**48
    p2 = a_hi * m  # < 2**48
    s = p1 + ((p2 & 0xFFFF) << 16)  # < 2**49
    lo = s & _MASK32
    hi = (p2 >> 16) + (s >> 32)
    return hi & _MASK32, lo


def philox(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 on broadcastable int64 tensors holding 32-bit values."""
    for r in range(10):
        if r > 0:
            k0 = (k0 + _W0) & _MASK32
            k1 = (k1 + _W1) & _MASK32
        hi0, lo0 = _mulhilo(c0, _M0)
        hi1, lo1 = _mulhilo(c2, _M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def _u53(a, b, *, open_: bool):
    """Uniform in [0, 1) from 53 bits, or open in (0, 1) from 52 bits (exact: never 0 or 1),
    as ``_rng._u53`` and ``_rng._u52_open``."""
    import torch

    if open_:
        v = (a >> 6).to(torch.float64) * 67108864.0 + (b >> 6).to(torch.float64) + 0.5
        return v * (1.0 / 4503599627370496.0)
    v = (a >> 5).to(torch.float64) * 67108864.0 + (b >> 6).to(torch.float64)
    return v * (1.0 / 9007199254740992.0)


def _blocks(keys, stream: int, step, count: int, device):
    """The first ``count`` 53-bit uniform pairs' words for every run: tensors (K, count)."""
    import torch

    k0, k1 = keys
    blk = torch.arange(count, device=device, dtype=torch.int64)[None, :]
    step_t = step if isinstance(step, torch.Tensor) else torch.full_like(k0, int(step))
    c1 = step_t.reshape(-1, 1).expand(-1, count)
    c2 = torch.full_like(c1, stream)
    c3 = torch.zeros_like(c1)
    return philox(blk.expand_as(c1), c1, c2, c3, k0[:, None], k1[:, None])


def uniforms(keys, stream: int, step, count: int, device, *, open_: bool = False):
    """Uniform number j < count of each run's (stream, step): shape (K, count)."""
    import torch

    nb = (count + 1) // 2
    x0, x1, x2, x3 = _blocks(keys, stream, step, nb, device)
    u = torch.stack([_u53(x0, x1, open_=open_), _u53(x2, x3, open_=open_)], dim=-1)
    return u.reshape(u.shape[0], -1)[:, :count]


def _horner(c, x):
    acc = c[7] * x + c[6]
    for i in range(5, -1, -1):
        acc = acc * x + c[i]
    return acc


def inverse_normal_cdf(p):
    """AS241 (PPND16) on a float64 tensor in (0, 1)."""
    import torch

    q = p - 0.5
    r = 0.180625 - q * q
    central = q * _horner(_A, r) / _horner(_B, r)
    tail_p = torch.where(q < 0, p, 1.0 - p)
    rr = torch.sqrt(-torch.log(tail_p))
    near = _horner(_C, rr - 1.6) / _horner(_D, rr - 1.6)
    far = _horner(_E, rr - 5.0) / _horner(_F, rr - 5.0)
    tail = torch.where(rr <= 5.0, near, far)
    tail = torch.where(q < 0, -tail, tail)
    return torch.where(q.abs() <= 0.425, central, tail)


def _zig_candidate(a, b, zx):
    """Layer, sign and candidate ``u X[layer]`` of the 64 bits ``(a, b)``, as
    ``_rng._zig_candidate``."""
    import torch

    i = a & (ZIG_LAYERS - 1)
    neg = ((a >> ZIG_SIGN_BIT) & 1) != 0
    u = ((a >> 11).to(torch.float64) * 4294967296.0 + b.to(torch.float64)) * (
        1.0 / 9007199254740992.0
    )
    return i, neg, u * zx[i]


def _zig_slow(a, b, k0, k1, stream: int, step, j, zx, zf):
    """The draws whose first try ``(a, b)`` was not accepted at once (1-D tensors, one
    entry per draw: words, key, step, index ``j``), as ``_rng._zig_slow``: every round
    takes block ``(j, step, stream, attempt)`` for the draws still open, and the attempt
    number is the same for all of them (each round settles a draw or consumes one block)."""
    import torch

    out = torch.empty(a.shape, dtype=torch.float64, device=a.device)
    pos = torch.arange(a.shape[0], device=a.device)
    attempt = 1
    while pos.numel():
        i, neg, x = _zig_candidate(a, b, zx)
        fast = x < zx[i + 1]
        e0, e1, e2, e3 = philox(
            j, step, torch.full_like(j, stream), torch.full_like(j, attempt), k0, k1
        )
        tail = ~fast & (i == 0)
        x_tail = -inverse_normal_cdf(_u53(e0, e1, open_=True) * ZIG_TAIL)
        y = zf[i] + _u53(e0, e1, open_=False) * (zf[i + 1] - zf[i])
        wedge = ~fast & (i != 0) & (y < torch.exp(-0.5 * x * x))
        done = fast | tail | wedge
        val = torch.where(tail, x_tail, x)
        val = torch.where(neg, -val, val)
        out[pos[done]] = val[done]
        keep = ~done
        pos, a, b, j, step, k0, k1 = (v[keep] for v in (pos, e2, e3, j, step, k0, k1))
        attempt += 1
    return out


def normals(keys, stream: int, step, count: int, device):
    """Standard normal number j < count of each run's (stream, step): shape (K, count),
    the same draws as ``_rng.fill_normal_block`` (the ziggurat)."""
    import torch

    nb = (count + 1) // 2
    x0, x1, x2, x3 = _blocks(keys, stream, step, nb, device)
    K = x0.shape[0]
    a = torch.stack([x0, x2], dim=-1).reshape(K, -1)[:, :count]
    b = torch.stack([x1, x3], dim=-1).reshape(K, -1)[:, :count]
    zx = torch.as_tensor(_ZX, dtype=torch.float64, device=device)
    zf = torch.as_tensor(_ZF, dtype=torch.float64, device=device)
    i, neg, x = _zig_candidate(a, b, zx)
    z = torch.where(neg, -x, x)
    slow = x >= zx[i + 1]
    if bool(slow.any()):
        rows, cols = torch.nonzero(slow, as_tuple=True)
        k0, k1 = keys
        step_t = step if isinstance(step, torch.Tensor) else torch.full_like(k0, int(step))
        z[rows, cols] = _zig_slow(
            a[rows, cols], b[rows, cols], k0[rows], k1[rows], stream, step_t[rows], cols, zx, zf
        )
    return z


def poisson_masks(keys, step: int, n, q, device):
    """Per-run Poisson sample at ``step`` as a boolean (K, n_max) membership matrix, drawn
    with the same geometric gaps and uniforms as the CPU kernel."""
    import torch

    K = n.shape[0]
    n_max = int(n.max().item())
    q = torch.where(q > 0, q, torch.full_like(q, 0.5))  # runs without sampling: ignored
    lq = torch.log1p(-q)  # (K,)
    expect = float((q * n).max().item())
    count = int(expect + 8.0 * math.sqrt(expect + 1.0) + 16)
    while True:
        u = uniforms(keys, STREAM_SAMPLE, step, count, device)
        gaps = torch.floor(torch.log(1.0 - u) / lq[:, None])
        gaps = torch.clamp(gaps, max=float(n_max) + 1.0)
        pos = torch.cumsum(gaps + 1.0, dim=1) - 1.0
        if bool((pos[:, -1] >= n.to(torch.float64)).all()):
            break
        count *= 2
    member = torch.zeros((K, n_max + 1), dtype=torch.bool, device=device)
    valid = pos < n[:, None].to(torch.float64)
    idx = torch.where(valid, pos, torch.full_like(pos, float(n_max))).to(torch.int64)
    member.scatter_(1, idx, True)
    full = q >= 1.0
    if bool(full.any()):
        ar = torch.arange(n_max + 1, device=device)[None, :]
        member[full] = (ar < n[:, None])[full]
    return member[:, :n_max]


def train_torch(
    jobs: Sequence[TrainJob],
    *,
    device: str = "cuda",
    dtype=np.float32,
    init_params: np.ndarray | None = None,
) -> list[TrainedModel]:
    """Train ``jobs`` with batched torch on ``device`` (see the module docstring)."""
    import time

    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ParameterError("device 'cuda' was asked for but torch sees no CUDA device")
    dev = torch.device(device)
    tdt = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
    t0 = time.perf_counter()
    X, y, W, fs, ints = pack_jobs(jobs, np.dtype(dtype))
    K = len(jobs)
    sizes = list(jobs[0].arch.sizes)
    L = len(sizes) - 1
    n = torch.as_tensor(ints[:, k.I_DATA_N], device=dev)
    n_max = int(n.max().item())
    # per-run data matrices, padded to n_max rows
    Xr = torch.zeros((K, n_max, sizes[0]), dtype=tdt, device=dev)
    yr = torch.zeros((K, n_max), dtype=torch.int64, device=dev)
    wr = torch.zeros((K, n_max), dtype=tdt, device=dev)
    for i in range(K):
        off, ni, wo = ints[i, k.I_DATA_OFF], ints[i, k.I_DATA_N], ints[i, k.I_WEIGHT_OFF]
        Xr[i, :ni] = torch.as_tensor(X[off : off + ni], device=dev)
        yr[i, :ni] = torch.as_tensor(y[off : off + ni], device=dev)
        wr[i, :ni] = torch.as_tensor(W[wo : wo + ni], device=dev)
    seeds = ints[:, k.I_SEED].astype(np.uint64)
    keys = (  # initialisation
        torch.as_tensor((seeds & np.uint64(_MASK32)).astype(np.int64), device=dev),
        torch.as_tensor((seeds >> np.uint64(32)).astype(np.int64), device=dev),
    )
    nkeys = (  # sampling and noise (secret unless in research mode)
        torch.as_tensor(ints[:, k.I_KEY_LO].astype(np.int64), device=dev),
        torch.as_tensor(ints[:, k.I_KEY_HI].astype(np.int64), device=dev),
    )
    ints[:, k.I_KEY_LO] = 0
    ints[:, k.I_KEY_HI] = 0
    P = jobs[0].arch.n_params
    if init_params is not None:
        flat = torch.as_tensor(np.asarray(init_params), dtype=torch.float64, device=dev)
    else:
        flat = torch.zeros((K, P), dtype=torch.float64, device=dev)
        off = 0
        for layer in range(L):
            cnt = (sizes[layer] + 1) * sizes[layer + 1]
            bound = 1.0 / math.sqrt(sizes[layer])
            u = uniforms(keys, STREAM_INIT, layer, cnt, dev)
            flat[:, off : off + cnt] = (2.0 * u - 1.0) * bound
            off += cnt
    flat = flat.to(tdt)
    # views of W_l (K, out, in) and b_l (K, out) into the flat parameters
    views = []
    off = 0
    for layer in range(L):
        a, b = sizes[layer], sizes[layer + 1]
        views.append((off, off + a * b, off + a * b + b))
        off += (a + 1) * b

    def layer_params(p):
        out = []
        for layer in range(L):
            a, b = sizes[layer], sizes[layer + 1]
            s, m, e = views[layer]
            out.append((p[:, s:m].reshape(K, b, a), p[:, m:e]))
        return out

    f64 = lambda col: torch.as_tensor(fs[:, col], dtype=torch.float64, device=dev)  # noqa: E731
    lr, sigma, q, exp_b = f64(k.S_LR), f64(k.S_SIGMA), f64(k.S_Q), f64(k.S_EXP_BATCH)
    clip = torch.stack([f64(k.S_CLIP0), f64(k.S_CLIP1)], dim=1)
    noise_clip = f64(k.S_NOISE_CLIP)
    aux_sigma, aux_a = f64(k.S_AUX_SIGMA), f64(k.S_AUX_A)
    aux_b, aux_c = f64(k.S_AUX_B), f64(k.S_AUX_C)
    mode = torch.as_tensor(ints[:, k.I_MODE], device=dev)
    private = torch.as_tensor(ints[:, k.I_PRIVATE] != 0, device=dev)
    steps = ints[:, k.I_STEPS]
    batch = ints[:, k.I_BATCH]
    zthr = aux_a.clone()
    stats = torch.zeros((K, k.N_STATS), dtype=torch.float64, device=dev)
    clip_sum = torch.zeros((K, 2), dtype=torch.float64, device=dev)
    T = int(steps.max())
    perms: dict = {}
    for t in range(T):
        active = torch.as_tensor(steps > t, device=dev)
        # ---- membership (K, n_max) of this step's batch
        member = torch.zeros((K, n_max), dtype=torch.bool, device=dev)
        if bool(private.any()):
            member |= poisson_masks(nkeys, t, n, q, dev) & private[:, None]
        for i in np.nonzero(~ints[:, k.I_PRIVATE].astype(bool))[0]:
            ni, bi = int(ints[i, k.I_DATA_N]), int(batch[i])
            per_epoch = (ni + bi - 1) // bi
            epoch, pos = divmod(t, per_epoch)
            if pos == 0 or i not in perms:
                perm = np.empty(ni, np.int64)
                kk0, kk1 = int(seeds[i] & np.uint64(_MASK32)), int(seeds[i] >> np.uint64(32))
                k.shuffle_perm(perm, ni, np.uint64(kk0), np.uint64(kk1), epoch)
                perms[i] = perm
            rows = perms[i][pos * bi : min((pos + 1) * bi, ni)]
            member[i, torch.as_tensor(rows, device=dev)] = True
        member &= active[:, None]
        B = member.sum(dim=1)  # (K,)
        stats[:, k.STAT_MAX_BATCH] = torch.maximum(stats[:, k.STAT_MAX_BATCH], B.double())
        stats[:, k.STAT_EMPTY_STEPS] += ((B == 0) & active).double()
        mf = member.to(tdt)
        # ---- forward over all rows, masked (rows outside the batch contribute nothing)
        acts = [Xr]
        h = Xr
        for layer, (Wl, bl) in enumerate(layer_params(flat)):
            h = torch.baddbmm(bl[:, None, :], h, Wl.transpose(1, 2))
            if layer < L - 1:
                h = torch.relu(h)
            acts.append(h)
        p = torch.softmax(acts[-1].to(torch.float64), dim=-1).to(tdt)
        onehot = torch.nn.functional.one_hot(yr, sizes[-1]).to(tdt)
        delta = (p - onehot) * (wr * mf)[..., None]
        deltas = [delta]
        for layer in range(L - 1, 0, -1):
            Wl = layer_params(flat)[layer][0]
            delta = torch.bmm(delta, Wl) * (acts[layer] > 0).to(tdt)
            deltas.insert(0, delta)
        sq = torch.zeros((K, n_max), dtype=torch.float64, device=dev)
        for layer in range(L):
            nd = (deltas[layer].double() ** 2).sum(-1)
            na = (acts[layer].double() ** 2).sum(-1) + 1.0
            sq += nd * na
        nrm = torch.sqrt(sq)
        finite = torch.isfinite(nrm)
        ycls = yr
        for c in (0, 1):
            stats[:, k.STAT_SEEN_0 + c] += (member & (ycls == c)).sum(1).double()
        factor = torch.zeros((K, n_max), dtype=torch.float64, device=dev)
        # non-private: mean over the realised batch
        np_f = torch.where(member, 1.0 / B.clamp_min(1).double()[:, None], 0.0)
        factor = torch.where(~private[:, None], np_f, factor)
        stats[:, k.STAT_NONFINITE] += (member & ~finite & private[:, None]).sum(1).double()
        safe = torch.where(finite & (nrm > 0), nrm, torch.ones_like(nrm))
        # mode 0: per-class bounds
        cb = torch.gather(clip, 1, ycls)
        f0 = torch.where(nrm > cb, cb / safe, 1.0)
        clipped0 = member & finite & (nrm > cb)
        # mode 1: DPSGD-F
        c0 = aux_a[:, None]
        above = finite & (nrm > c0) & member
        below = finite & ~(nrm > c0) & member
        z = normals(nkeys, STREAM_AUX, t, 4, dev)
        cnt = []
        for c in (0, 1):
            cnt.append((above & (ycls == c)).sum(1).double())
        for c in (0, 1):
            cnt.append((below & (ycls == c)).sum(1).double())
        mm0 = torch.clamp(torch.floor(cnt[0] + aux_sigma * z[:, 0]), min=0.0)
        mm1 = torch.clamp(torch.floor(cnt[1] + aux_sigma * z[:, 1]), min=0.0)
        oo0 = torch.clamp(torch.floor(cnt[2] + aux_sigma * z[:, 2]), min=0.0)
        oo1 = torch.clamp(torch.floor(cnt[3] + aux_sigma * z[:, 3]), min=0.0)
        r0 = torch.where(mm0 + oo0 > 0, mm0 / (mm0 + oo0).clamp_min(1e-300), 1.0)
        r1 = torch.where(mm1 + oo1 > 0, mm1 / (mm1 + oo1).clamp_min(1e-300), 1.0)
        mean_r = 0.5 * (r0 + r1) + 1e-8
        cf = torch.stack([aux_a * (1.0 + r0 / mean_r), aux_a * (1.0 + r1 / mean_r)], dim=1)
        cbf = torch.gather(cf, 1, ycls)
        f1 = torch.where(nrm > cbf, cbf / safe, 1.0)
        # mode 2: Global-Adapt
        zt = zthr[:, None]
        cc = clip[:, 0:1]
        f2 = torch.where(nrm > zt, torch.where(nrm > cc, cc / safe, 1.0), cc / zt)
        below_t = (finite & member & ~(nrm > zt)).sum(1).double()
        m0, m1 = (mode == 0)[:, None], (mode == 1)[:, None]
        fpriv = torch.where(m0, f0, torch.where(m1, f1, f2))
        fpriv = torch.where(finite & member, fpriv, 0.0)
        factor = torch.where(private[:, None], fpriv, factor)
        clipped = (
            torch.where(m0, clipped0, torch.where(m1, above, member & finite & (nrm > zt)))
            & private[:, None]
        )
        for c in (0, 1):
            stats[:, k.STAT_CLIPPED_0 + c] += (clipped & (ycls == c)).sum(1).double()
        is1 = (mode == 1) & private & active
        clip_sum += torch.where(is1[:, None], cf, 0.0)
        nclip = torch.where(mode == 1, torch.maximum(cf[:, 0], cf[:, 1]), noise_clip)
        is2 = (mode == 2) & private & active
        frac = (below_t + aux_sigma * z[:, 0]) / exp_b
        zthr = torch.where(is2, zthr * torch.exp(-aux_b * (frac - aux_c)), zthr)
        # ---- clipped sum, noise, update
        fac = factor.to(tdt)[..., None]
        keep = finite[..., None]  # non-finite examples never reach the sum (0 * inf = nan)
        grads = []
        for layer in range(L):
            gd = torch.where(keep, deltas[layer] * fac, 0.0)
            a_in = torch.where(keep, acts[layer], 0.0)
            grads.append(torch.bmm(gd.transpose(1, 2), a_in).reshape(K, -1))
            grads.append(gd.sum(1))
        g = torch.cat(grads, dim=1).to(torch.float64)
        noise = normals(nkeys, STREAM_NOISE, t, P, dev)
        std = (sigma * nclip)[:, None]
        upd_priv = (lr / exp_b)[:, None] * (g + std * noise)
        upd_np = lr[:, None] * g
        upd = torch.where(private[:, None], upd_priv, upd_np)
        upd = torch.where(active[:, None], upd, 0.0)
        flat = (flat.to(torch.float64) - upd).to(tdt)
    stats[:, k.STAT_CLIP_MEAN_0] = torch.where(
        mode == 1, clip_sum[:, 0] / torch.as_tensor(np.maximum(steps, 1), device=dev), 0.0
    )
    stats[:, k.STAT_CLIP_MEAN_1] = torch.where(
        mode == 1, clip_sum[:, 1] / torch.as_tensor(np.maximum(steps, 1), device=dev), 0.0
    )
    stats[:, k.STAT_CLIP_MEAN_0] = torch.where(mode == 2, zthr, stats[:, k.STAT_CLIP_MEAN_0])
    stats[:, k.STAT_CLIP_MEAN_1] = torch.where(mode == 2, zthr, stats[:, k.STAT_CLIP_MEAN_1])
    params = flat.detach().to("cpu").double().numpy()
    st = stats.to("cpu").numpy()
    elapsed = (time.perf_counter() - t0) / K
    return [
        TrainedModel(jobs[i].arch, params[i].copy(), stats_dict(st[i]), elapsed) for i in range(K)
    ]
