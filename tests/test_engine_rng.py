"""The fast engine's Gaussians: the ziggurat on the Philox streams (``engines/_rng.py``).

Its tables against an independent high-precision computation, its first draws and its
rare paths (wedges, rejections, the tail) against a straightforward pure-Python
implementation of the same algorithm, its distribution (KS, chi-square, moments, tail
frequencies), and the property that makes batches possible: a draw depends only on
``(key, stream, step, position)``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtr, ndtri

from imbalanced_dp.engines import _rng
from imbalanced_dp.engines._rng import (
    STREAM_AUX,
    STREAM_NOISE,
    ZIG_LAYERS,
    ZIG_R,
    ZIG_TAIL,
    fill_normal,
    normal_at,
    normal_pair,
    seed_key,
)

X, F = _rng._ZX, _rng._ZF
V = float(_rng._V)

# ---------------------------------------------------------------- a reference in Python

M32 = 0xFFFFFFFF


def philox_py(ctr: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, ...]:
    """Philox4x32-10 (Salmon et al. 2011) on Python integers."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for r in range(10):
        if r:
            k0 = (k0 + 0x9E3779B9) & M32
            k1 = (k1 + 0xBB67AE85) & M32
        p0 = 0xD2511F53 * c0
        p1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & M32, (p0 >> 32) ^ c3 ^ k1, p0 & M32
    return c0, c1, c2, c3


def u53_py(a: int, b: int) -> float:
    return ((a >> 5) * 2**26 + (b >> 6)) / 2.0**53


def u52_open_py(a: int, b: int) -> float:
    return ((a >> 6) * 2**26 + (b >> 6) + 0.5) / 2.0**52


def normal_py(key: tuple[int, int], stream: int, step: int, j: int) -> tuple[float, str]:
    """Normal number ``j`` of ``(key, stream, step)`` by the ziggurat, written plainly; also
    the path it took ("fast", "wedge", "retry" when a wedge rejected at least once, "tail").
    The tail is inverted with scipy's ``ndtri``, not with the module's AS241."""
    words = philox_py((j // 2, step, stream, 0), key)
    a, b = words[2 * (j % 2)], words[2 * (j % 2) + 1]
    attempt = 1
    path = "fast"
    while True:
        layer = a & (ZIG_LAYERS - 1)
        sign = -1.0 if (a >> 10) & 1 else 1.0
        u = ((a >> 11) * 2**32 + b) / 2.0**53
        x = u * X[layer]
        if x < X[layer + 1]:
            return sign * x, path
        e = philox_py((j, step, stream, attempt), key)
        attempt += 1
        if layer == 0:
            return sign * -ndtri(u52_open_py(e[0], e[1]) * ZIG_TAIL), "tail"
        y = F[layer] + u53_py(e[0], e[1]) * (F[layer + 1] - F[layer])
        if y < math.exp(-0.5 * x * x):
            return sign * x, path if path == "retry" else "wedge"
        a, b = e[2], e[3]
        path = "retry"


# ---------------------------------------------------------------- tables


def test_ziggurat_tables_match_a_high_precision_computation():
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    r = mp.mpf(_rng._R)
    v = mp.mpf(_rng._V)

    def f(x):
        return mp.e ** (-x * x / 2)

    # r and v: v is the area of the base layer (rectangle plus tail) and the ladder of
    # equal areas closes exactly at the top
    assert abs(r * f(r) + mp.sqrt(mp.pi / 2) * mp.erfc(r / mp.sqrt(2)) - v) < mp.mpf("1e-30")
    xs = [v / f(r), r]
    for _ in range(1, ZIG_LAYERS - 1):
        xs.append(mp.sqrt(-2 * mp.log(f(xs[-1]) + v / xs[-1])))
    assert abs(f(xs[-1]) + v / xs[-1] - 1) < mp.mpf("1e-28")
    xs.append(mp.mpf(0))
    # the double tables are those numbers, rounded once
    for i in range(ZIG_LAYERS + 1):
        assert X[i] == pytest.approx(float(xs[i]), rel=2**-52, abs=0)
        if 1 <= i < ZIG_LAYERS:
            assert F[i] == pytest.approx(float(f(xs[i])), rel=2**-52, abs=0)
    assert F[ZIG_LAYERS] == 1.0
    assert X[ZIG_LAYERS] == 0.0
    assert pytest.approx(float(mp.erfc(r / mp.sqrt(2)) / 2), rel=1e-15) == ZIG_TAIL
    assert pytest.approx(ndtr(-ZIG_R), rel=1e-13) == ZIG_TAIL


def test_ziggurat_layers_have_equal_areas():
    assert np.all(np.diff(X) < 0) and np.all(np.diff(F[1:]) > 0)
    areas = X[1:ZIG_LAYERS] * np.diff(F[1:])
    # the rounding of the edges to double is the only error; subtracting neighbouring
    # heights magnifies it by at most F / dF ~ 1e3
    np.testing.assert_allclose(areas, V, rtol=1e-12)
    assert X[0] * F[1] == pytest.approx(V, rel=1e-15)


# ---------------------------------------------------------------- known answers


KEY = 12345
STEP = 7


def test_first_draws_match_the_python_reference():
    key = tuple(int(k) for k in seed_key(KEY))
    n = 4000
    z = np.empty(n)
    fill_normal(z, KEY, STREAM_NOISE, STEP)
    ref = [normal_py(key, STREAM_NOISE, STEP, j) for j in range(n)]
    paths = {p for _, p in ref}
    assert {"fast", "wedge"} <= paths  # the slow path is exercised, not only the fast one
    # the same arithmetic on the fast path (a product); exp, and in the tail AS241
    # against ndtri, agree to rounding
    np.testing.assert_allclose(z, [x for x, _ in ref], rtol=1e-13, atol=0)


def test_rare_paths_match_the_python_reference():
    key = tuple(int(k) for k in seed_key(KEY))
    n = 300_000
    z = np.empty(n)
    fill_normal(z, KEY, STREAM_NOISE, STEP)
    # draws beyond r come from the tail only (wedges lie inside their layer, below r)
    tails = np.flatnonzero(np.abs(z) > ZIG_R)
    assert 4 <= tails.size <= 40  # 2 P(Z > r) n = 16 expected
    # draws that a first try did not settle: found from the Philox words alone
    slow = []
    for blk in range(3000, 12000):
        words = philox_py((blk, STEP, STREAM_NOISE, 0), key)
        for half in (0, 1):
            a, b = words[2 * half], words[2 * half + 1]
            layer = a & (ZIG_LAYERS - 1)
            u = ((a >> 11) * 2**32 + b) / 2.0**53
            if not u * X[layer] < X[layer + 1]:
                slow.append(2 * blk + half)
    checked = {}
    for j in [*tails.tolist(), *slow]:
        x, path = normal_py(key, STREAM_NOISE, STEP, j)
        checked.setdefault(path, 0)
        checked[path] += 1
        assert z[j] == pytest.approx(x, rel=1e-13, abs=0), (j, path)
        assert normal_at(*seed_key(KEY), STREAM_NOISE, STEP, j) == z[j]
    assert checked.keys() >= {"wedge", "retry", "tail"}, checked


def test_a_draw_is_a_function_of_key_stream_step_and_position():
    seed = np.uint64(2**63 + 99)  # both key words in use
    k0, k1 = seed_key(seed)
    z = np.empty(1001)
    fill_normal(z, seed, STREAM_NOISE, 3)
    shorter = np.empty(10)
    fill_normal(shorter, seed, STREAM_NOISE, 3)
    assert np.array_equal(shorter, z[:10])  # the count does not change the numbers
    for j in (0, 1, 2, 17, 500, 1000):
        assert normal_at(k0, k1, STREAM_NOISE, 3, j) == z[j]
    a, b = normal_pair(k0, k1, STREAM_NOISE, 3, 250)
    assert (a, b) == (z[500], z[501])
    # other streams, steps and keys give other numbers
    other = np.empty(1001)
    for s, stream, step in ((seed, STREAM_AUX, 3), (seed, STREAM_NOISE, 4), (np.uint64(7), 2, 3)):
        fill_normal(other, s, stream, step)
        assert abs(np.corrcoef(z, other)[0, 1]) < 0.15


# ---------------------------------------------------------------- distribution


@pytest.fixture(scope="module")
def many():
    z = np.empty(3_000_000)
    fill_normal(z, 2024, STREAM_NOISE, 0)
    return z


def test_normals_pass_ks_and_chi_square(many):
    assert stats.kstest(many[:200_000], "norm").pvalue > 1e-3
    # 1024 equiprobable bins: every region of the density, the wedges' included
    edges = ndtri(np.linspace(0, 1, 1025))
    counts, _ = np.histogram(many, edges)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_normals_have_the_normal_moments(many):
    n = many.size
    # standard errors of the sample mean, variance, skewness and excess kurtosis
    assert abs(many.mean()) < 5 / math.sqrt(n)
    assert abs(many.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(stats.skew(many)) < 5 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(many)) < 5 * math.sqrt(24 / n)
    # symmetric: the sign bit is independent of the magnitude
    assert abs(np.mean(many > 0) - 0.5) < 4 * math.sqrt(0.25 / n)


@pytest.mark.parametrize("threshold", [1.0, 2.5, 3.5, ZIG_R, 4.5])
def test_tail_frequencies_are_the_normal_ones(many, threshold):
    # binomial z-test of P(|Z| > t), across the base layer's edge r too
    p = 2 * ndtr(-threshold)
    k = np.sum(np.abs(many) > threshold)
    z = (k - many.size * p) / math.sqrt(many.size * p * (1 - p))
    assert abs(z) < 4, (threshold, k, many.size * p)


def test_torch_normals_match_the_compiled_ones():
    torch = pytest.importorskip("torch")
    from imbalanced_dp.engines._torch_fast import normals

    seeds = [np.uint64(KEY), np.uint64(2**63 + 12345)]
    n = 100_001
    keys = tuple(
        torch.tensor([int(seed_key(s)[w]) for s in seeds], dtype=torch.int64) for w in (0, 1)
    )
    got = normals(keys, STREAM_NOISE, STEP, n, "cpu").numpy()
    for row, s in enumerate(seeds):
        z = np.empty(n)
        fill_normal(z, s, STREAM_NOISE, STEP)
        assert np.sum(np.abs(z) > ZIG_R) > 0  # tail draws are compared too
        np.testing.assert_allclose(got[row], z, rtol=1e-13, atol=0)
    # a step per run, as the torch engine's auxiliary queries may use
    steps = torch.tensor([STEP, STEP + 1])
    got = normals(keys, STREAM_NOISE, steps, 5000, "cpu").numpy()
    z = np.empty(5000)
    fill_normal(z, seeds[1], STREAM_NOISE, STEP + 1)
    np.testing.assert_allclose(got[1], z, rtol=1e-13, atol=0)
