"""A counter-based random number generator: Philox4x32-10 (Salmon et al., SC 2011).

A draw is a pure function of ``(key, counter)``: the key is the run's seed (initialisation,
shuffling) or its noise key (sampling and noise: secret unless in research mode, see
:mod:`imbalanced_dp.privacy`), and the counter names the purpose (stream), the step and the
position. A run therefore sees the same random numbers whether it is trained alone or
inside a batch of any size, on any worker, in any order: what makes sweeps resumable and
distributable.

Streams (the third counter word):

====== ========================================================================
0      parameter initialisation (second word: layer)
1      Poisson sampling gaps (second word: step)
2      Gaussian noise on the gradient sum (second word: step)
3      shuffling of the non-private baseline (second word: epoch)
4      noise of the auxiliary private queries of mitigations (second word: step)
====== ========================================================================

Uniforms in [0, 1) take 53 bits from two 32-bit words. Open uniforms, in (0, 1), take 52
bits ``x`` and return ``(x + 1/2) 2^-52``, which is exact in double precision, so they never
round to 0 or 1 (``(x + 1/2) 2^-53`` with 53 bits rounds to exactly 1.0 at the top value, and
so does ``x 2^-53 + 2^-54``).

Gaussians come from Marsaglia and Tsang's ziggurat (J. Stat. Softw. 5(8), 2000) with 1024
layers: normal number ``j`` of ``(key, stream, step)`` takes 64 bits of Philox block
``j // 2`` (its first or second half): 10 bits choose the layer, 1 bit the sign, 53 bits a
uniform ``u``, and ``x = u X[layer]`` is accepted at once when it lies inside the next
layer's edge (99.6 % of draws): a multiply and a comparison, in a pass that vectorises. The
other 0.4 % continue on blocks of their own counter, ``(j, step, stream, attempt)`` with
``attempt`` = 1, 2, ... (the main blocks have 0 there, so the counters never meet): the wedge
test against ``exp(-x^2 / 2)`` with a fresh uniform, a new candidate on rejection; the base
layer's tail beyond ``r`` by inversion, ``-Phi^-1(U P(Z > r))`` with U an open uniform, by
Wichura's algorithm AS241 (PPND16, Applied Statistics 37, 1988; relative accuracy about
1e-16). So a draw is exact (the ziggurat is a rejection method, not an approximation: its
only error is the rounding of the layer edges to double) and a pure function of
``(key, stream, step, j)``, whatever the other draws did. Doornik (2005) showed that the
original 32-bit ziggurat, which reuses the layer's bits in ``u``, fails tests; here the layer,
the sign and ``u`` use disjoint bits. Inverting every uniform with AS241, as this module did
before, cost 2.5 times as much per Gaussian: a third of a step of a 962-parameter model.
"""

from __future__ import annotations

import decimal
import math

import numpy as np
from numba import njit

STREAM_INIT = 0
STREAM_SAMPLE = 1
STREAM_NOISE = 2
STREAM_SHUFFLE = 3
STREAM_AUX = 4

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S5 = np.uint64(5)
_S6 = np.uint64(6)
_TWO26 = 67108864.0
_TWO_M53 = 1.0 / 9007199254740992.0
_TWO_M52 = 1.0 / 4503599627370496.0


@njit(cache=True, inline="always")
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32 with 10 rounds; all arguments and results are uint64 holding 32 bits."""
    for r in range(10):
        if r > 0:
            k0 = (k0 + _W0) & _MASK
            k1 = (k1 + _W1) & _MASK
        p0 = _M0 * c0
        p1 = _M1 * c2
        hi0 = p0 >> _S32
        lo0 = p0 & _MASK
        hi1 = p1 >> _S32
        lo1 = p1 & _MASK
        c0 = hi1 ^ c1 ^ k0
        c1 = lo1
        c2 = hi0 ^ c3 ^ k1
        c3 = lo0
    return c0, c1, c2, c3


@njit(cache=True, inline="always")
def seed_key(seed):
    s = np.uint64(seed)
    return s & _MASK, (s >> _S32) & _MASK


@njit(cache=True, inline="always")
def _u53(a, b):
    return (float(a >> _S5) * _TWO26 + float(b >> _S6)) * _TWO_M53


@njit(cache=True, inline="always")
def _u52_open(a, b):
    """Open uniform in (0, 1) from 26 + 26 bits: exact, so never 0 or 1."""
    return (float(a >> _S6) * _TWO26 + float(b >> _S6) + 0.5) * _TWO_M52


@njit(cache=True, inline="always")
def uniform_pair(k0, k1, stream, step, block):
    """Two uniforms in [0, 1) from one Philox block."""
    x0, x1, x2, x3 = philox4x32(
        np.uint64(block),
        np.uint64(step),
        np.uint64(stream),
        np.uint64(0),
        np.uint64(k0),
        np.uint64(k1),
    )
    return _u53(x0, x1), _u53(x2, x3)


# AS241 (PPND16) coefficients, lowest degree first; Wichura (1988).
_A = (
    3.3871328727963666080e0,
    1.3314166789178437745e2,
    1.9715909503065514427e3,
    1.3731693765509461125e4,
    4.5921953931549871457e4,
    6.7265770927008700853e4,
    3.3430575583588128105e4,
    2.5090809287301226727e3,
)
_B = (
    1.0,
    4.2313330701600911252e1,
    6.8718700749205790830e2,
    5.3941960214247511077e3,
    2.1213794301586595867e4,
    3.9307895800092710610e4,
    2.8729085735721942674e4,
    5.2264952788528545610e3,
)
_C = (
    1.42343711074968357734e0,
    4.63033784615654529590e0,
    5.76949722146069140550e0,
    3.64784832476320460504e0,
    1.27045825245236838258e0,
    2.41780725177450611770e-1,
    2.27238449892691845833e-2,
    7.74545014278341407640e-4,
)
_D = (
    1.0,
    2.05319162663775882187e0,
    1.67638483018380384940e0,
    6.89767334985100004550e-1,
    1.48103976427480074590e-1,
    1.51986665636164571966e-2,
    5.47593808499534494600e-4,
    1.05075007164441684324e-9,
)
_E = (
    6.65790464350110377720e0,
    5.46378491116411436990e0,
    1.78482653991729133580e0,
    2.96560571828504891230e-1,
    2.65321895265761230930e-2,
    1.24266094738807843860e-3,
    2.71155556874348757815e-5,
    2.01033439929228813265e-7,
)
_F = (
    1.0,
    5.99832206555887937690e-1,
    1.36929880922735805310e-1,
    1.48753612908506148525e-2,
    7.86869131145613259100e-4,
    1.84631831751005468180e-5,
    1.42151175831644588870e-7,
    2.04426310338993978564e-15,
)


@njit(cache=True, inline="always")
def _horner(c, x):
    return (
        (((((c[7] * x + c[6]) * x + c[5]) * x + c[4]) * x + c[3]) * x + c[2]) * x + c[1]
    ) * x + c[0]


@njit(cache=True)
def inverse_normal_cdf(p):
    """Standard normal quantile of ``p`` in (0, 1), by AS241 (PPND16)."""
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return q * _horner(_A, r) / _horner(_B, r)
    r = math.sqrt(-math.log(p if q < 0.0 else 1.0 - p))
    if r <= 5.0:
        r -= 1.6
        v = _horner(_C, r) / _horner(_D, r)
    else:
        r -= 5.0
        v = _horner(_E, r) / _horner(_F, r)
    return -v if q < 0.0 else v


# ---------------------------------------------------------------- ziggurat

#: layers of the ziggurat: the layer is the low 10 bits of a Philox word, the sign the next
ZIG_LAYERS = 1024
ZIG_SIGN_BIT = 10
#: right edge ``r`` of the base layer and area ``v`` of every layer, under the unnormalised
#: density ``exp(-x^2 / 2)``: the root of the closing condition for 1024 layers (Marsaglia &
#: Tsang 2000), solved to 60 digits with mpmath, 32 kept
_R = "4.0388498461095045227144234053359"
_V = "0.0012263246463530880728853709277371"
ZIG_R = float(_R)
#: ``P(Z > r)`` (mpmath): the mass of the tail beyond ``r``
ZIG_TAIL = 2.68569673034276e-05


def ziggurat_tables() -> tuple[np.ndarray, np.ndarray]:
    """``(X, F)``: layer ``i`` of the ziggurat is the rectangle ``[0, X[i]) x [F[i], F[i+1])``
    under ``f(x) = exp(-x^2 / 2)``, all of area ``v``; layer 0 is the base, ``[0, r)`` under
    ``f(r)`` and the tail beyond, with ``X[0] = v / f(r)`` its equivalent width;
    ``X[1024] = 0`` and ``F[1024] = 1`` close the top.

    The edges follow from ``F[i+1] = F[i] + v / X[i]`` and ``X[i+1] = sqrt(-2 ln F[i+1])``,
    computed in 30-digit decimal arithmetic (exact to the last rounding on every platform,
    about 40 ms) and rounded to double once: in double precision the recurrence drifts to
    4e-14 (relative) by the top layer."""
    n = ZIG_LAYERS
    with decimal.localcontext() as ctx:
        ctx.prec = 30
        r = decimal.Decimal(_R)
        v = decimal.Decimal(_V)
        fx = (-r * r / 2).exp()
        xs = [v / fx, r]
        fs = [decimal.Decimal(0), fx]
        x = r
        for _ in range(1, n - 1):
            fx = fx + v / x
            x = (-2 * fx.ln()).sqrt()
            xs.append(x)
            fs.append(fx)
    xs.append(decimal.Decimal(0))
    fs.append(decimal.Decimal(1))
    return np.array([float(t) for t in xs]), np.array([float(t) for t in fs])


_ZX, _ZF = ziggurat_tables()
_LAYER_MASK = np.uint64(ZIG_LAYERS - 1)
_SIGN_SHIFT = np.uint64(ZIG_SIGN_BIT)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO32 = 4294967296.0


@njit(cache=True, inline="always")
def _zig_candidate(a, b):
    """Layer, sign and ``x = u X[layer]`` of the 64 bits ``(a, b)``: bits 0-9 of ``a`` the
    layer, bit 10 the sign, bits 11-31 of ``a`` and all of ``b`` the 53 bits of ``u``."""
    i = a & _LAYER_MASK
    neg = ((a >> _SIGN_SHIFT) & _ONE) != 0
    u = (float(a >> _S11) * _TWO32 + float(b)) * _TWO_M53
    return i, neg, u * _ZX[i]


@njit(cache=True, inline="always")
def _zig_fast(a, b):
    """The ziggurat's first try on ``(a, b)``: the normal, or NaN when the candidate lies
    outside the next layer's edge (a wedge or the tail: :func:`_zig_slow` decides)."""
    i, neg, x = _zig_candidate(a, b)
    x = x if x < _ZX[i + _ONE] else math.nan
    return -x if neg else x


@njit(cache=True)
def _zig_slow(a, b, k0, k1, stream, step, j):
    """Normal number ``j`` whose first try, the 64 bits ``(a, b)``, was not accepted at
    once; further random bits come from blocks ``(j, step, stream, attempt)``, attempt >= 1."""
    attempt = 1
    while True:
        i, neg, x = _zig_candidate(a, b)
        if x < _ZX[i + _ONE]:
            break
        e0, e1, e2, e3 = philox4x32(
            np.uint64(j),
            np.uint64(step),
            np.uint64(stream),
            np.uint64(attempt),
            np.uint64(k0),
            np.uint64(k1),
        )
        attempt += 1
        if i == 0:
            # the tail beyond r, by inversion: P(Z > x) = U P(Z > r), U open, so x > r
            x = -inverse_normal_cdf(_u52_open(e0, e1) * ZIG_TAIL)
            break
        # a wedge: accept (x, y) under the curve, y uniform in the layer's height
        y = _ZF[i] + _u53(e0, e1) * (_ZF[i + _ONE] - _ZF[i])
        if y < math.exp(-0.5 * x * x):
            break
        a = e2  # rejected: the next candidate
        b = e3
    return -x if neg else x


@njit(cache=True)
def normal_at(k0, k1, stream, step, j):
    """Standard normal number ``j`` of ``(key, stream, step)`` (one draw; for a whole
    vector :func:`fill_normal_block` is several times faster)."""
    x0, x1, x2, x3 = philox4x32(
        np.uint64(j >> 1),
        np.uint64(step),
        np.uint64(stream),
        np.uint64(0),
        np.uint64(k0),
        np.uint64(k1),
    )
    a = x0 if (j & 1) == 0 else x2
    b = x1 if (j & 1) == 0 else x3
    z = _zig_fast(a, b)
    if z != z:
        z = _zig_slow(a, b, k0, k1, stream, step, j)
    return z


@njit(cache=True, inline="always")
def normal_pair(k0, k1, stream, step, block):
    """Standard normal numbers ``2 block`` and ``2 block + 1`` of ``(key, stream, step)``."""
    return (
        normal_at(k0, k1, stream, step, 2 * block),
        normal_at(k0, k1, stream, step, 2 * block + 1),
    )


@njit(cache=True)
def fill_normal_block(z, slow, k0, k1, stream, step, count):
    """``z[j]`` = standard normal number ``j`` of ``(key, stream, step)`` for ``j < count``;
    the same numbers as :func:`normal_at`, computed in passes that vectorise (``z`` at least
    ``count`` rounded up to even long; ``slow`` int64 scratch one longer, for the indices of
    the draws that the first try did not settle)."""
    nb = (count + 1) // 2
    for blk in range(nb):
        x0, x1, x2, x3 = philox4x32(
            np.uint64(blk),
            np.uint64(step),
            np.uint64(stream),
            np.uint64(0),
            np.uint64(k0),
            np.uint64(k1),
        )
        z[2 * blk] = _zig_fast(x0, x1)
        z[2 * blk + 1] = _zig_fast(x2, x3)
    # collect the unsettled draws (NaN) branch-free: a branch per draw would be mispredicted
    # on every one of them
    cnt = 0
    for j in range(2 * nb):
        slow[cnt] = j
        cnt += 1 if z[j] != z[j] else 0
    for m in range(cnt):
        j = slow[m]
        x0, x1, x2, x3 = philox4x32(
            np.uint64(j >> 1),
            np.uint64(step),
            np.uint64(stream),
            np.uint64(0),
            np.uint64(k0),
            np.uint64(k1),
        )
        if (j & 1) == 0:
            z[j] = _zig_slow(x0, x1, k0, k1, stream, step, j)
        else:
            z[j] = _zig_slow(x2, x3, k0, k1, stream, step, j)


@njit(cache=True)
def fill_normal(out, seed, stream, step):
    """``out[j]`` = standard normal number ``j`` of ``(seed, stream, step)``."""
    k0, k1 = seed_key(seed)
    n = out.shape[0]
    m = n + (n & 1)
    z = np.empty(m)
    slow = np.empty(m + 1, np.int64)
    fill_normal_block(z, slow, k0, k1, stream, step, n)
    out[:] = z[:n]


@njit(cache=True)
def philox_block(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 of one counter and key (for known-answer tests)."""
    return philox4x32(
        np.uint64(c0), np.uint64(c1), np.uint64(c2), np.uint64(c3), np.uint64(k0), np.uint64(k1)
    )
