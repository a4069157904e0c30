"""The fused DP-SGD training loop of the ``fast`` engine, compiled by numba.

One call trains one run from start to finish: Poisson sampling, forward pass, per-example
gradient norms, clipping, the clipped sum, noise, the update. Batches of runs are trained by
calling it for each run on its own thread (``prange``); a run's arithmetic and random numbers
depend only on its own inputs, so its result is the same alone or in any batch.

Layout. Activations and back-propagated errors of layer ``l`` are ``(width_l, n)`` blocks of
flat buffers with the examples of the batch contiguous, so the inner loops run over examples
and vectorise. Parameters are one flat vector per run: for each layer the weight matrix
``W_l`` (``out x in``, row-major, as ``torch.nn.Linear`` stores it), then its bias.

Per-example gradient norms use the identity for a linear layer with bias
``||g_i||^2 = sum_l ||delta_{l,i}||^2 (||a_{l-1,i}||^2 + 1)`` (the per-example gradient of a
layer is the outer product of its error and its input), so the per-example gradients are
never materialised; the clipped sum is then ``sum_i c_i delta_{l,i} a_{l-1,i}^T``.

Clipping rules (``mode``):

0. plain DP-SGD, with a clip bound per class ``clip[y_i]`` (equal bounds: Abadi et al.);
   noise std ``sigma * noise_clip``;
1. DPSGD-F (Xu, Du & Wu 2021): per step, noisy per-class counts of examples whose norm
   exceeds ``C0`` (noise ``sigma_aux``) set per-class bounds
   ``C_k = C0 (1 + r_k / mean_k r_k)``, ``r_k`` the noisy share clipped; noise std
   ``sigma * max_k C_k``;
2. DPSGD-Global-Adapt (Esipova et al. 2023): examples with norm ``<= Z`` are scaled by
   ``C / Z``, the others clipped to ``C``; noise std ``sigma * C``; then ``Z`` tracks the
   ``gamma`` quantile of the norms as in adaptive clipping (Andrew et al. 2021):
   ``Z <- Z exp(-eta_Z (b - gamma))``, ``b`` the noisy count (noise ``sigma_aux``) of
   examples with norm ``<= Z`` over the expected batch size.

Non-finite per-example gradients get factor 0 and are counted: they never reach the sum.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._rng import (
    STREAM_AUX,
    STREAM_INIT,
    STREAM_NOISE,
    STREAM_SAMPLE,
    STREAM_SHUFFLE,
    fill_normal_block,
    normal_pair,
    seed_key,
    uniform_pair,
)

MODE_STANDARD = 0
MODE_DPSGD_F = 1
MODE_GLOBAL_ADAPT = 2

# Columns of the per-run statistics array.
STAT_SEEN_0 = 0  # examples of class 0 drawn into batches, over all steps
STAT_SEEN_1 = 1
STAT_CLIPPED_0 = 2  # of which clipped (norm above the class's bound / C0 / Z)
STAT_CLIPPED_1 = 3
STAT_NONFINITE = 4  # examples whose gradient was not finite (dropped)
STAT_EMPTY_STEPS = 5  # steps whose Poisson batch was empty
STAT_MAX_BATCH = 6
STAT_CLIP_MEAN_0 = 7  # mean per-class clip bound over steps (mode 1); final Z (mode 2)
STAT_CLIP_MEAN_1 = 8
N_STATS = 9

# Columns of the per-run scalar settings (float64).
S_LR = 0
S_SIGMA = 1
S_NOISE_CLIP = 2
S_CLIP0 = 3
S_CLIP1 = 4
S_Q = 5
S_EXP_BATCH = 6
S_AUX_SIGMA = 7  # mode 1 and 2: noise multiplier of the auxiliary counts
S_AUX_A = 8  # mode 1: C0; mode 2: initial Z
S_AUX_B = 9  # mode 2: eta_Z, the learning rate of Z
S_AUX_C = 10  # mode 2: gamma, the quantile Z tracks
N_SETTINGS = 11

# Columns of the per-run integer settings (int64).
I_SEED = 0
I_STEPS = 1
I_PRIVATE = 2
I_BATCH = 3
I_MODE = 4
I_DATA_OFF = 5
I_DATA_N = 6
I_WEIGHT_OFF = 7
I_KEY_LO = 8  # noise key (Poisson sampling, gradient noise, noisy counts): low 32 bits
I_KEY_HI = 9  # and high 32 bits
N_ISETTINGS = 10


@njit(cache=True)
def init_params(params, sizes, seed):
    """PyTorch's default ``nn.Linear`` initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for
    weights and biases, drawn from the run's own stream."""
    k0, k1 = seed_key(seed)
    off = 0
    for layer in range(sizes.shape[0] - 1):
        fan_in = sizes[layer]
        count = (sizes[layer] + 1) * sizes[layer + 1]
        bound = 1.0 / math.sqrt(fan_in)
        for blk in range((count + 1) // 2):
            a, b = uniform_pair(k0, k1, STREAM_INIT, layer, blk)
            params[off + 2 * blk] = (2.0 * a - 1.0) * bound
            if 2 * blk + 1 < count:
                params[off + 2 * blk + 1] = (2.0 * b - 1.0) * bound
        off += count


#: uniforms drawn per pass of :func:`poisson_batch` (a multiple of two: one Philox block
#: gives two)
SAMPLE_CHUNK = 32


@njit(cache=True)
def _fill_uniforms(u, k0, k1, stream, step, first_block):
    """``u[2 m], u[2 m + 1]`` = the uniforms of block ``first_block + m`` of ``(key, stream,
    step)``, for ``2 m < len(u)``: the same numbers as :func:`uniform_pair`, in a loop that
    vectorises."""
    for m in range(u.shape[0] // 2):
        u[2 * m], u[2 * m + 1] = uniform_pair(k0, k1, stream, step, first_block + m)


@njit(cache=True)
def poisson_batch(idx, n, q, k0, k1, step, ubuf=None):
    """Fill ``idx`` with a Poisson sample of ``range(n)`` (each row independently with
    probability ``q``) and return its size.

    Gaps between included rows are geometric: ``floor(log(U) / log(1 - q))`` with U uniform
    in (0, 1], which has exactly the distribution of the gaps of independent Bernoulli(q)
    draws; it needs about ``q n`` uniforms instead of ``n``. Uniform number ``j`` is the same
    as ever (block ``j // 2`` of the step's sampling stream); they are drawn
    ``SAMPLE_CHUNK`` at a time into ``ubuf`` (scratch of that length), in a loop that
    vectorises, instead of one Philox block at a time.
    """
    if q >= 1.0:
        for i in range(n):
            idx[i] = i
        return n
    u = np.empty(SAMPLE_CHUNK) if ubuf is None else ubuf
    lq = math.log1p(-q)
    pos = -1
    count = 0
    j = 0
    while True:
        m = j % SAMPLE_CHUNK
        if m == 0:
            _fill_uniforms(u, k0, k1, STREAM_SAMPLE, step, j // 2)
        j += 1
        gap = math.floor(math.log(1.0 - u[m]) / lq)
        if gap >= n:  # also guards the conversion below
            break
        pos += int(gap) + 1
        if pos >= n:
            break
        idx[count] = pos
        count += 1
    return count


@njit(cache=True)
def shuffle_perm(perm, n, k0, k1, epoch):
    """A uniformly random permutation of ``range(n)`` (Fisher-Yates) for ``epoch``."""
    for i in range(n):
        perm[i] = i
    for i in range(n - 1, 0, -1):
        blk = (n - 1 - i) >> 1
        a, b = uniform_pair(k0, k1, STREAM_SHUFFLE, epoch, blk)
        u = a if ((n - 1 - i) & 1) == 0 else b
        j = int(u * (i + 1))
        if j > i:
            j = i
        t = perm[i]
        perm[i] = perm[j]
        perm[j] = t


@njit(cache=True, fastmath={"reassoc", "contract"}, inline="always")
def _axpy_rows(out, W, w0, wstep, M, src, nmax, count, B):
    """``out += sum_k W[w0 + k wstep] * M[src + k nmax : ... + B]`` for k < count, four rows
    per pass over ``out``."""
    k = 0
    while k + 3 < count:
        c0 = W[w0 + k * wstep]
        c1 = W[w0 + (k + 1) * wstep]
        c2 = W[w0 + (k + 2) * wstep]
        c3 = W[w0 + (k + 3) * wstep]
        r0 = M[src + k * nmax : src + k * nmax + B]
        r1 = M[src + (k + 1) * nmax : src + (k + 1) * nmax + B]
        r2 = M[src + (k + 2) * nmax : src + (k + 2) * nmax + B]
        r3 = M[src + (k + 3) * nmax : src + (k + 3) * nmax + B]
        for b in range(B):
            out[b] += (c0 * r0[b] + c1 * r1[b]) + (c2 * r2[b] + c3 * r3[b])
        k += 4
    while k < count:
        c0 = W[w0 + k * wstep]
        r0 = M[src + k * nmax : src + k * nmax + B]
        for b in range(B):
            out[b] += c0 * r0[b]
        k += 1


@njit(cache=True, fastmath={"reassoc", "contract"}, inline="always")
def _axpy_rows2(out0, out1, W, w0, w1, wstep, M, src, nmax, count, B):
    """:func:`_axpy_rows` for two outputs at once, ``out0`` with the coefficients from
    ``w0`` and ``out1`` from ``w1``: each input row is loaded once for both, and there are
    half as many passes (a forward layer took a quarter less time than one output a pass)."""
    k = 0
    while k + 3 < count:
        c0 = W[w0 + k * wstep]
        c1 = W[w0 + (k + 1) * wstep]
        c2 = W[w0 + (k + 2) * wstep]
        c3 = W[w0 + (k + 3) * wstep]
        e0 = W[w1 + k * wstep]
        e1 = W[w1 + (k + 1) * wstep]
        e2 = W[w1 + (k + 2) * wstep]
        e3 = W[w1 + (k + 3) * wstep]
        r0 = M[src + k * nmax : src + k * nmax + B]
        r1 = M[src + (k + 1) * nmax : src + (k + 1) * nmax + B]
        r2 = M[src + (k + 2) * nmax : src + (k + 2) * nmax + B]
        r3 = M[src + (k + 3) * nmax : src + (k + 3) * nmax + B]
        for b in range(B):
            x0 = r0[b]
            x1 = r1[b]
            x2 = r2[b]
            x3 = r3[b]
            out0[b] += (c0 * x0 + c1 * x1) + (c2 * x2 + c3 * x3)
            out1[b] += (e0 * x0 + e1 * x1) + (e2 * x2 + e3 * x3)
        k += 4
    while k < count:
        c0 = W[w0 + k * wstep]
        e0 = W[w1 + k * wstep]
        r0 = M[src + k * nmax : src + k * nmax + B]
        for b in range(B):
            x0 = r0[b]
            out0[b] += c0 * x0
            out1[b] += e0 * x0
        k += 1


@njit(cache=True, fastmath={"reassoc", "contract"}, inline="always")
def _sum_squares(out, M, src, nmax, count, B):
    """``out[:B]`` = the sum over ``k < count`` of ``M[src + k nmax : ... + B] ** 2``, in
    float64 (squares of float32 values are exact there), four rows per pass."""
    for b in range(B):
        out[b] = 0.0
    k = 0
    while k + 3 < count:
        r0 = M[src + k * nmax : src + k * nmax + B]
        r1 = M[src + (k + 1) * nmax : src + (k + 1) * nmax + B]
        r2 = M[src + (k + 2) * nmax : src + (k + 2) * nmax + B]
        r3 = M[src + (k + 3) * nmax : src + (k + 3) * nmax + B]
        for b in range(B):
            x0 = np.float64(r0[b])
            x1 = np.float64(r1[b])
            x2 = np.float64(r2[b])
            x3 = np.float64(r3[b])
            out[b] += (x0 * x0 + x1 * x1) + (x2 * x2 + x3 * x3)
        k += 4
    while k < count:
        r0 = M[src + k * nmax : src + k * nmax + B]
        for b in range(B):
            x0 = np.float64(r0[b])
            out[b] += x0 * x0
        k += 1


@njit(cache=True, fastmath={"reassoc", "contract"})
def forward_backward(XT, y, w, idx, B, sizes, params, w_off, b_off, a_off, A, D, nmax, sq, xsq):
    """Forward pass of the ``B`` rows ``idx[:B]`` and back-propagation of the per-example
    (weighted) cross-entropy; per-example squared gradient norms go to ``sq[:B]``.
    ``XT`` is the data transposed (features x rows): a feature's values of a sorted batch
    then lie close together, where rows of ``X`` put each in its own cache line. ``xsq``
    holds each data row's squared norm (the input layer's term never changes).

    Inner loops run over row slices indexed from 0 so that numba drops its negative-index
    handling and LLVM vectorises them."""
    L = sizes.shape[0] - 1
    d0 = sizes[0]
    for i in range(d0):
        row = A[a_off[0] + i * nmax : a_off[0] + i * nmax + B]
        xi = XT[i]
        for b in range(B):
            row[b] = xi[idx[b]]
    # forward: out_j = b_j + sum_i W_ji a_i, two outputs and four inputs per pass over the
    # output rows (fewer loads and stores per multiply-add than one of each per pass)
    for layer in range(L):
        din = sizes[layer]
        dout = sizes[layer + 1]
        W = params[w_off[layer] : w_off[layer] + din * dout]
        src = a_off[layer]
        relu = layer < L - 1
        j = 0
        while j + 1 < dout:
            o = a_off[layer + 1] + j * nmax
            out0 = A[o : o + B]
            out1 = A[o + nmax : o + nmax + B]
            bias0 = params[b_off[layer] + j]
            bias1 = params[b_off[layer] + j + 1]
            for b in range(B):
                out0[b] = bias0
                out1[b] = bias1
            _axpy_rows2(out0, out1, W, j * din, (j + 1) * din, 1, A, src, nmax, din, B)
            if relu:
                for b in range(B):
                    out0[b] = max(out0[b], 0)
                    out1[b] = max(out1[b], 0)
            j += 2
        if j < dout:
            o = a_off[layer + 1] + j * nmax
            out = A[o : o + B]
            bias = params[b_off[layer] + j]
            for b in range(B):
                out[b] = bias
            _axpy_rows(out, W, j * din, 1, A, src, nmax, din, B)
            if relu:
                for b in range(B):
                    out[b] = max(out[b], 0)
    # softmax cross-entropy gradient at the logits, times the example's weight
    dl = sizes[L]
    lo = a_off[L]
    if dl == 2:
        # two logits: p1 = sigmoid(z1 - z0), one exponential per example
        for b in range(B):
            d = A[lo + nmax + b] - A[lo + b]
            wb = w[idx[b]]
            # exp of -|d| never overflows; a select, not a branch on the sign of d (a coin
            # flip to the branch predictor)
            e = math.exp(-abs(d))
            p1 = (1.0 if d >= 0 else e) / (1.0 + e)
            g1 = (p1 - (1.0 if y[idx[b]] == 1 else 0.0)) * wb
            D[lo + nmax + b] = g1
            D[lo + b] = -g1
    else:
        for b in range(B):
            m = A[lo + b]
            for j in range(1, dl):
                m = max(m, A[lo + j * nmax + b])
            tot = 0.0
            for j in range(dl):
                tot += math.exp(A[lo + j * nmax + b] - m)
            lse = m + math.log(tot)
            wb = w[idx[b]]
            label = y[idx[b]]
            for j in range(dl):
                p = math.exp(A[lo + j * nmax + b] - lse)
                D[lo + j * nmax + b] = (p - (1.0 if j == label else 0.0)) * wb
    # back-propagate errors to every layer: delta_prev_i = sum_j W_ji delta_j, masked by
    # the ReLU
    for layer in range(L - 1, 0, -1):
        din = sizes[layer]
        dout = sizes[layer + 1]
        W = params[w_off[layer] : w_off[layer] + din * dout]
        src = a_off[layer + 1]
        i = 0
        while i + 1 < din:  # two at a time, as in the forward pass
            o = a_off[layer] + i * nmax
            out0 = D[o : o + B]
            out1 = D[o + nmax : o + nmax + B]
            for b in range(B):
                out0[b] = 0.0
                out1[b] = 0.0
            _axpy_rows2(out0, out1, W, i, i + 1, din, D, src, nmax, dout, B)
            act0 = A[o : o + B]
            act1 = A[o + nmax : o + nmax + B]
            for b in range(B):
                if act0[b] <= 0:
                    out0[b] = 0.0
                if act1[b] <= 0:
                    out1[b] = 0.0
            i += 2
        if i < din:
            o = a_off[layer] + i * nmax
            out = D[o : o + B]
            for b in range(B):
                out[b] = 0.0
            _axpy_rows(out, W, i, din, D, src, nmax, dout, B)
            act = A[o : o + B]
            for b in range(B):
                if act[b] <= 0:
                    out[b] = 0.0
    # per-example squared norms: sum_l ||delta_l||^2 (||a_{l-1}||^2 + 1)
    res = sq[0:B]
    nd = sq[B : 2 * B]
    na = sq[2 * B : 3 * B]
    for b in range(B):
        res[b] = 0.0
    for layer in range(L):
        _sum_squares(nd, D, a_off[layer + 1], nmax, sizes[layer + 1], B)
        if layer == 0:
            for b in range(B):
                na[b] = xsq[idx[b]]
        else:
            _sum_squares(na, A, a_off[layer], nmax, sizes[layer], B)
        for b in range(B):
            res[b] += nd[b] * (na[b] + 1.0)


@njit(cache=True)
def input_norms(X):
    """Squared norm of every row of ``X``, in float64."""
    out = np.zeros(X.shape[0], np.float64)
    for r in range(X.shape[0]):
        acc = 0.0
        for i in range(X.shape[1]):
            v = float(X[r, i])
            acc += v * v
        out[r] = acc
    return out


@njit(cache=True)
def drop_nonfinite(B, sizes, a_off, A, D, nmax, sq):
    """Zero the activations and errors of examples whose gradient norm is not finite, so
    that ``0 * inf`` cannot turn the clipped sum into NaN: they never reach the sum."""
    L = sizes.shape[0] - 1
    for b in range(B):
        if math.isfinite(sq[b]):
            continue
        for layer in range(L + 1):
            for j in range(sizes[layer]):
                A[a_off[layer] + j * nmax + b] = 0.0
                D[a_off[layer] + j * nmax + b] = 0.0


@njit(cache=True, fastmath={"reassoc", "contract"})
def accumulate(B, sizes, w_off, b_off, a_off, A, D, nmax, factor, grad, tmp):
    """``grad = sum_b factor[b] * g_b`` from the stored activations and errors. The scaled
    errors overwrite ``D`` (they are not needed afterwards); weight gradients are dot
    products over the batch, two outputs by two inputs at a time to share the loads.

    Sums start from a zero of the arithmetic's own type: numba types ``float32 * 0`` as
    float64, and float64 accumulators would halve the vector width and convert every
    product (in float32 that cost 40 % of this function)."""
    L = sizes.shape[0] - 1
    zero = D.dtype.type(0)
    f = factor[0:B]
    for layer in range(L):
        din = sizes[layer]
        dout = sizes[layer + 1]
        for j in range(dout):
            o = a_off[layer + 1] + j * nmax
            d = D[o : o + B]
            gb = zero
            for b in range(B):
                d[b] = f[b] * d[b]
                gb += d[b]
            grad[b_off[layer] + j] = gb
        G = grad[w_off[layer] : w_off[layer] + din * dout]
        t_off = a_off[layer + 1]
        s_off = a_off[layer]
        j = 0
        while j + 1 < dout:
            t0 = D[t_off + j * nmax : t_off + j * nmax + B]
            t1 = D[t_off + (j + 1) * nmax : t_off + (j + 1) * nmax + B]
            i = 0
            while i + 1 < din:
                a0 = A[s_off + i * nmax : s_off + i * nmax + B]
                a1 = A[s_off + (i + 1) * nmax : s_off + (i + 1) * nmax + B]
                s00 = zero
                s01 = s00
                s10 = s00
                s11 = s00
                for b in range(B):
                    x0 = t0[b]
                    x1 = t1[b]
                    y0 = a0[b]
                    y1 = a1[b]
                    s00 += x0 * y0
                    s01 += x0 * y1
                    s10 += x1 * y0
                    s11 += x1 * y1
                G[j * din + i] = s00
                G[j * din + i + 1] = s01
                G[(j + 1) * din + i] = s10
                G[(j + 1) * din + i + 1] = s11
                i += 2
            if i < din:
                a0 = A[s_off + i * nmax : s_off + i * nmax + B]
                s0 = zero
                s1 = s0
                for b in range(B):
                    s0 += t0[b] * a0[b]
                    s1 += t1[b] * a0[b]
                G[j * din + i] = s0
                G[(j + 1) * din + i] = s1
            j += 2
        if j < dout:
            t0 = D[t_off + j * nmax : t_off + j * nmax + B]
            for i in range(din):
                a0 = A[s_off + i * nmax : s_off + i * nmax + B]
                s0 = zero
                for b in range(B):
                    s0 += t0[b] * a0[b]
                G[j * din + i] = s0


@njit(cache=True)
def train_one(X, y, w, sizes, params_out, fs, ints, stats_out):
    """Train one run in place (``params``) and fill its ``stats``; see the module docstring.

    ``X`` (rows, d0), ``y`` and ``w`` are this run's training rows, labels and per-example
    loss weights; ``fs`` and ``ints`` its settings (``S_*`` and ``I_*`` columns).
    """
    n = ints[I_DATA_N]
    steps = ints[I_STEPS]
    private = ints[I_PRIVATE] != 0
    batch = ints[I_BATCH]
    mode = ints[I_MODE]
    seed = ints[I_SEED]
    lr = fs[S_LR]
    sigma = fs[S_SIGMA]
    q = fs[S_Q]
    exp_batch = fs[S_EXP_BATCH]
    k0, k1 = seed_key(seed)  # shuffling of the non-private baseline
    # sampling and noise of a private run: the noise key (secret unless in research mode)
    nk0 = np.uint64(ints[I_KEY_LO])
    nk1 = np.uint64(ints[I_KEY_HI])
    # Work on private copies: runs on neighbouring threads would otherwise write to the
    # same cache lines at every step (false sharing).
    params = params_out.copy()
    stats = np.zeros(N_STATS, np.float64)
    dt = params.dtype

    L = sizes.shape[0] - 1
    w_off = np.zeros(L, np.int64)
    b_off = np.zeros(L, np.int64)
    a_off = np.zeros(L + 1, np.int64)
    P = 0
    width = 0
    for layer in range(L):
        w_off[layer] = P
        P += sizes[layer] * sizes[layer + 1]
        b_off[layer] = P
        P += sizes[layer + 1]
    # Batches are padded (copies of a real row whose clip factor is 0) to a multiple of 128
    # bytes, 32 float32 or 16 float64 columns: LLVM vectorises the loops over examples two
    # 512-bit vectors at a time and leaves the rest to a 128-bit loop. Padded to 8 columns,
    # most of a 56-example batch went through that narrow loop; padded to 128 bytes a step
    # is 10-14 % faster, the extra columns included.
    pad = 128 // params.itemsize
    nmax = ((n + pad - 1) // pad) * pad
    for layer in range(L + 1):
        a_off[layer] = width * nmax
        width += sizes[layer]
    A = np.zeros(width * nmax, dt)
    D = np.zeros(width * nmax, dt)
    sq = np.zeros(3 * nmax, np.float64)
    factor = np.zeros(nmax, dt)
    tmp = np.zeros(nmax, dt)
    grad = np.zeros(P, dt)
    idx = np.zeros(nmax, np.int64)
    perm = np.zeros(n, np.int64)
    znoise = np.zeros(P + 1, np.float64)
    tnoise = np.zeros(P + 2, np.int64)
    xsq = input_norms(X)
    XT = np.ascontiguousarray(X.T)
    ubuf = np.empty(SAMPLE_CHUNK)

    clip = np.empty(2, np.float64)
    clip[0] = fs[S_CLIP0]
    clip[1] = fs[S_CLIP1]
    noise_clip = fs[S_NOISE_CLIP]
    aux_sigma = fs[S_AUX_SIGMA]
    zthr = fs[S_AUX_A]  # mode 2: Z
    steps_per_epoch = (n + batch - 1) // batch
    clip_sum0 = 0.0
    clip_sum1 = 0.0

    for t in range(steps):
        if private:
            B = poisson_batch(idx, n, q, nk0, nk1, t, ubuf)
        else:
            epoch = t // steps_per_epoch
            pos = t % steps_per_epoch
            if pos == 0:
                shuffle_perm(perm, n, k0, k1, epoch)
            start = pos * batch
            stop = min(start + batch, n)
            B = stop - start
            for b in range(B):
                idx[b] = perm[start + b]
        if stats[STAT_MAX_BATCH] < B:
            stats[STAT_MAX_BATCH] = B
        Bp = ((B + pad - 1) // pad) * pad
        for b in range(B, Bp):
            idx[b] = idx[0]
        if B == 0:
            stats[STAT_EMPTY_STEPS] += 1
        else:
            forward_backward(
                XT, y, w, idx, Bp, sizes, params, w_off, b_off, a_off, A, D, nmax, sq, xsq
            )
            for b in range(B):
                stats[STAT_SEEN_0 + y[idx[b]]] += 1
        # Clip factors. The auxiliary private queries of modes 1 and 2 run at every step,
        # empty batch included: the mechanism must not depend on the data.
        if not private:
            for b in range(B):
                factor[b] = 1.0 / B
        elif mode == MODE_STANDARD:
            for b in range(B):
                c = clip[y[idx[b]]]
                nrm = math.sqrt(sq[b])
                if not math.isfinite(nrm):
                    factor[b] = 0.0
                    stats[STAT_NONFINITE] += 1
                elif nrm > c:
                    factor[b] = c / nrm
                    stats[STAT_CLIPPED_0 + y[idx[b]]] += 1
                else:
                    factor[b] = 1.0
        elif mode == MODE_DPSGD_F:
            c0 = fs[S_AUX_A]
            m0 = 0.0
            m1 = 0.0
            o0 = 0.0
            o1 = 0.0
            for b in range(B):
                nrm = math.sqrt(sq[b])
                if not math.isfinite(nrm):
                    continue
                above = nrm > c0
                if y[idx[b]] == 0:
                    m0 += 1.0 if above else 0.0
                    o0 += 0.0 if above else 1.0
                else:
                    m1 += 1.0 if above else 0.0
                    o1 += 0.0 if above else 1.0
            z0, z1 = normal_pair(nk0, nk1, STREAM_AUX, t, 0)
            z2, z3 = normal_pair(nk0, nk1, STREAM_AUX, t, 1)
            mm0 = max(math.floor(m0 + aux_sigma * z0), 0.0)
            mm1 = max(math.floor(m1 + aux_sigma * z1), 0.0)
            oo0 = max(math.floor(o0 + aux_sigma * z2), 0.0)
            oo1 = max(math.floor(o1 + aux_sigma * z3), 0.0)
            r0 = mm0 / (mm0 + oo0) if mm0 + oo0 > 0 else 1.0
            r1 = mm1 / (mm1 + oo1) if mm1 + oo1 > 0 else 1.0
            mean_r = 0.5 * (r0 + r1) + 1e-8
            clip[0] = c0 * (1.0 + r0 / mean_r)
            clip[1] = c0 * (1.0 + r1 / mean_r)
            clip_sum0 += clip[0]
            clip_sum1 += clip[1]
            noise_clip = max(clip[0], clip[1])
            for b in range(B):
                c = clip[y[idx[b]]]
                nrm = math.sqrt(sq[b])
                if not math.isfinite(nrm):
                    factor[b] = 0.0
                    stats[STAT_NONFINITE] += 1
                else:
                    if nrm > c0:
                        stats[STAT_CLIPPED_0 + y[idx[b]]] += 1
                    factor[b] = c / nrm if nrm > c else 1.0
        else:  # MODE_GLOBAL_ADAPT
            cc = fs[S_CLIP0]
            below = 0.0
            for b in range(B):
                nrm = math.sqrt(sq[b])
                if not math.isfinite(nrm):
                    factor[b] = 0.0
                    stats[STAT_NONFINITE] += 1
                    continue
                if nrm > zthr:
                    factor[b] = cc / nrm if nrm > cc else 1.0
                    stats[STAT_CLIPPED_0 + y[idx[b]]] += 1
                else:
                    factor[b] = cc / zthr
                    below += 1.0
            z0, z1 = normal_pair(nk0, nk1, STREAM_AUX, t, 0)
            frac = (below + aux_sigma * z0) / exp_batch
            zthr = zthr * math.exp(-fs[S_AUX_B] * (frac - fs[S_AUX_C]))
        if B > 0:
            for b in range(B, Bp):
                factor[b] = 0.0
            drop_nonfinite(Bp, sizes, a_off, A, D, nmax, sq)  # padding copies a real row
            accumulate(Bp, sizes, w_off, b_off, a_off, A, D, nmax, factor, grad, tmp)
        else:
            for p in range(P):
                grad[p] = 0.0
        if private:
            std = sigma * noise_clip
            scale = lr / exp_batch
            fill_normal_block(znoise, tnoise, nk0, nk1, STREAM_NOISE, t, P)
            for p in range(P):
                params[p] -= scale * (grad[p] + std * znoise[p])
        else:
            for p in range(P):
                params[p] -= lr * grad[p]
    if mode == MODE_DPSGD_F:
        stats[STAT_CLIP_MEAN_0] = clip_sum0 / max(steps, 1)
        stats[STAT_CLIP_MEAN_1] = clip_sum1 / max(steps, 1)
    elif mode == MODE_GLOBAL_ADAPT:
        stats[STAT_CLIP_MEAN_0] = zthr
        stats[STAT_CLIP_MEAN_1] = zthr
    params_out[:] = params
    stats_out[:] = stats


@njit(cache=True)
def train_job(k, X, y, w, sizes, params, fs, ints, stats, init):
    """Train run ``k`` of a batch on its own slice of ``X``/``y``/``w``."""
    if init[k]:
        init_params(params[k], sizes, ints[k, I_SEED])
    off = ints[k, I_DATA_OFF]
    n = ints[k, I_DATA_N]
    woff = ints[k, I_WEIGHT_OFF]
    train_one(
        X[off : off + n],
        y[off : off + n],
        w[woff : woff + n],
        sizes,
        params[k],
        fs[k],
        ints[k],
        stats[k],
    )


# The parallel and the serial loop are two functions, not one function compiled twice:
# numba's cache keys an entry by the function's bytecode and signature, not by its options,
# so a parallel and a serial compilation of one function shared an entry and whichever was
# compiled first was loaded for both. The warm-up compiles the serial loop first, so every
# "parallel" batch ran on one thread.


@njit(cache=True, parallel=True)
def train_batch(X, y, w, sizes, params, fs, ints, stats, init):
    """Train ``params.shape[0]`` runs, one run per thread of numba's thread pool."""
    for k in prange(params.shape[0]):
        train_job(k, X, y, w, sizes, params, fs, ints, stats, init)


@njit(cache=True)
def train_batch_serial(X, y, w, sizes, params, fs, ints, stats, init):
    """Train ``params.shape[0]`` runs on the calling thread."""
    for k in range(params.shape[0]):
        train_job(k, X, y, w, sizes, params, fs, ints, stats, init)


@njit(cache=True, fastmath={"reassoc", "contract"})
def clipped_sum(X, y, w, idx, B, sizes, params, clip0, clip1, out_grad, out_norms):
    """Noise-free clipped sum of per-example gradients of rows ``idx[:B]`` (for tests and
    for the reference comparison); per-example norms go to ``out_norms``."""
    n = X.shape[0]
    L = sizes.shape[0] - 1
    w_off = np.zeros(L, np.int64)
    b_off = np.zeros(L, np.int64)
    a_off = np.zeros(L + 1, np.int64)
    P = 0
    width = 0
    for layer in range(L):
        w_off[layer] = P
        P += sizes[layer] * sizes[layer + 1]
        b_off[layer] = P
        P += sizes[layer + 1]
    nmax = max(B, 1)
    for layer in range(L + 1):
        a_off[layer] = width * nmax
        width += sizes[layer]
    dt = params.dtype
    A = np.zeros(width * nmax, dt)
    D = np.zeros(width * nmax, dt)
    sq = np.zeros(3 * nmax, np.float64)
    factor = np.zeros(nmax, dt)
    tmp = np.zeros(nmax, dt)
    for p in range(P):
        out_grad[p] = 0.0
    if B == 0 or n == 0:
        return
    xsq = input_norms(X)
    XT = np.ascontiguousarray(X.T)
    forward_backward(XT, y, w, idx, B, sizes, params, w_off, b_off, a_off, A, D, nmax, sq, xsq)
    for b in range(B):
        nrm = math.sqrt(sq[b])
        out_norms[b] = nrm
        c = clip0 if y[idx[b]] == 0 else clip1
        if not math.isfinite(nrm):
            factor[b] = 0.0
        elif nrm > c:
            factor[b] = c / nrm
        else:
            factor[b] = 1.0
    drop_nonfinite(B, sizes, a_off, A, D, nmax, sq)
    accumulate(B, sizes, w_off, b_off, a_off, A, D, nmax, factor, out_grad, tmp)
