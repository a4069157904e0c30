"""Private selection (docs/privacy.md, rule 13): the ε of the best of a random number of
trials, checked against dp-accounting's own implementation of Papernot & Steinke's theorems
and against the closed forms evaluated here, order by order; the calibration never
overshoots; the number of trials follows the stated distribution."""

from __future__ import annotations

import itertools
import logging
import math

import dp_accounting
import numpy as np
import pytest
from dp_accounting import dp_event
from dp_accounting.rdp.rdp_privacy_accountant import compute_delta, compute_epsilon
from scipy import stats

from imbalanced_dp.exceptions import ParameterError, PrivacyError
from imbalanced_dp.privacy import (
    CALIBRATION_TOLERANCE,
    SELECTION_ORDERS,
    THEOREM_2,
    THEOREM_6,
    CandidateSetting,
    TrialDistribution,
    candidate_rdp,
    gaussian_rdp,
    plan_selection,
    plan_with_noise,
    rdp_epsilon,
    selection_rdp,
)

logging.getLogger("absl").setLevel(logging.ERROR)
ORDERS = list(SELECTION_ORDERS)


def _dp_candidate_event(sigma, q, steps, laplace=()):
    """One candidate as dp-accounting's events: Poisson-subsampled Gaussian steps composed
    with Laplace queries (noise multiplier of a Laplace event: scale over sensitivity)."""
    gauss = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )
    if not laplace:
        return gauss
    return dp_accounting.ComposedDpEvent(
        [gauss, *(dp_accounting.LaplaceDpEvent(1.0 / e) for e in laplace)]
    )


def _dp_rdp(event, orders=ORDERS) -> np.ndarray:
    acc = dp_accounting.rdp.RdpAccountant(orders)
    acc.compose(event)
    return acc.rdp


CANDIDATES = [
    # sigma, q, steps, Laplace epsilons
    (1.2, 0.1, 200, ()),
    (4.0, 1 / 6, 300, (0.05,)),
    (12.0, 0.25, 1000, (0.04, 0.08)),
    (30.0, 1.0, 50, ()),
]


# ---------------------------------------------------------------------- the curves


@pytest.mark.parametrize(("sigma", "q", "steps", "laplace"), CANDIDATES)
def test_candidate_curve_is_dp_accountings(sigma, q, steps, laplace):
    got = candidate_rdp(
        noise_multiplier=sigma, sample_rate=q, steps=steps, laplace_epsilons=laplace
    )
    want = _dp_rdp(_dp_candidate_event(sigma, q, steps, laplace))
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("shape", [0.0, 0.5, 1.0, 3.0, math.inf])
@pytest.mark.parametrize(("sigma", "q", "steps", "laplace"), CANDIDATES)
def test_selection_matches_dp_accountings_repeat_and_select(shape, sigma, q, steps, laplace):
    """dp-accounting implements the same theorems (RepeatAndSelectDpEvent, written by one of
    the paper's authors): an implementation independent of ours. Its γ is solved from the
    mean by its own bisection (relative tolerance 1e-9), so the curves agree to about 1e-8."""
    mean = 15.0
    dist = (
        TrialDistribution.poisson(mean)
        if shape == math.inf
        else TrialDistribution.truncated_negative_binomial(mean, eta=shape)
    )
    ours = selection_rdp(
        candidate_rdp(noise_multiplier=sigma, sample_rate=q, steps=steps, laplace_epsilons=laplace),
        dist,
    )
    theirs = _dp_rdp(
        dp_event.RepeatAndSelectDpEvent(
            _dp_candidate_event(sigma, q, steps, laplace), dist.mean, shape
        )
    )
    # dp-accounting makes its truncated-negative-binomial bound non-decreasing in the order
    # (an RDP bound at an order holds below it); we do that for Poisson too
    assert np.all(ours <= theirs * (1 + 1e-9))
    theirs = np.minimum.accumulate(theirs[::-1])[::-1]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)
    for delta in (1e-5, 1e-4):
        assert rdp_epsilon(ours, delta)[0] == pytest.approx(
            compute_epsilon(ORDERS, theirs, delta)[0], rel=1e-6
        )


def _theorem_by_hand(rdp, dist) -> np.ndarray:
    """The theorems evaluated here, one order at a time, then made non-decreasing."""
    lam = np.asarray(ORDERS, dtype=float)
    out = []
    for i, order in enumerate(lam):
        if dist.kind == "poisson":
            eps_hat = math.log(1 + 1 / (order - 1))
            # delta_hat: the smallest delta of the trial at eps_hat over the orders
            # (Canonne, Kamath & Steinke's conversion, dp-accounting's compute_delta)
            delta_hat = compute_delta(ORDERS, rdp, eps_hat)[0]
            out.append(rdp[i] + dist.mean * delta_hat + math.log(dist.mean) / (order - 1))
        else:
            eta, gamma = dist.eta, dist.gamma
            best_hat = min(
                (1 + eta) * (1 - 1 / lh) * rdp[j] + (1 + eta) * math.log(1 / gamma) / lh
                for j, lh in enumerate(lam)
            )
            out.append(rdp[i] + best_hat + math.log(dist.mean) / (order - 1))
    for i in range(len(out) - 2, -1, -1):  # an RDP bound at order j holds at every i < j
        out[i] = min(out[i], out[i + 1])
    return np.array(out)


@pytest.mark.parametrize("eta", [-0.5, 0.0, 1.0, None])
def test_selection_matches_the_closed_form_by_hand(eta):
    rdp = _dp_rdp(_dp_candidate_event(3.0, 0.1, 500, (0.05,)))
    dist = (
        TrialDistribution.poisson(20)
        if eta is None
        else TrialDistribution.truncated_negative_binomial(20, eta=eta)
    )
    np.testing.assert_allclose(selection_rdp(rdp, dist), _theorem_by_hand(rdp, dist), rtol=1e-12)


def test_pure_dp_trials_recover_liu_and_talwar():
    """ε-DP trials have RDP ≤ ε at every order; a geometric search of them is ~3ε-DP at
    very large orders (Liu & Talwar 2019; Papernot & Steinke's Corollary)."""
    dist = TrialDistribution.truncated_negative_binomial(10, eta=1.0)
    orders = [2.0, 1e3, 1e6, 1e9]
    out = selection_rdp([0.7] * 4, dist, orders=orders)
    assert out[-1] == pytest.approx(3 * 0.7, abs=1e-6)
    assert np.all(np.diff(out) >= 0)


def test_score_noise_stays_below_the_training_curve():
    from imbalanced_dp.privacy import score_noise_multiplier

    rdp = candidate_rdp(noise_multiplier=5.0, sample_rate=0.1, steps=400)
    s = score_noise_multiplier(rdp)
    score = gaussian_rdp(s)
    assert np.all(score <= rdp)
    # and as small as that allows: tight at one order
    assert np.max(score / rdp) == pytest.approx(1.0, rel=1e-9)


# ---------------------------------------------------------------------- calibration


SETTINGS = [
    CandidateSetting(1 / 6, 120, (), 1 / 8, 160),
    CandidateSetting(1 / 3, 600, (0.05,), 1 / 4, 800),
    CandidateSetting(1.0, 50, (0.05, 0.1), 1.0, 50),
]


def _independent_total(plan) -> float:
    """The plan's ε recomputed with dp-accounting alone: every setting's curve from its own
    events, their envelope, dp-accounting's repeat-and-select, plus the retraining."""
    curves, finals = [], []
    for s, n in zip(plan.settings, plan.noise):
        curves.append(
            _dp_rdp(
                _dp_candidate_event(n.noise_multiplier, s.sample_rate, s.steps, n.laplace_epsilons)
            )
        )
        # the score's Gaussian noise never raises the trial's curve
        assert np.all(gaussian_rdp(n.score_noise_multiplier) <= curves[-1] * (1 + 1e-9))
        if plan.retrain:
            finals.append(
                _dp_rdp(
                    _dp_candidate_event(
                        n.noise_multiplier, s.final_sample_rate, s.final_steps, n.laplace_epsilons
                    )
                )
            )
    envelope = np.max(curves, axis=0)
    if plan.distribution.kind == "poisson" or plan.distribution.eta >= 0:
        shape = math.inf if plan.distribution.kind == "poisson" else plan.distribution.eta
        # the envelope as an event: dp-accounting composes an arbitrary curve only through
        # its own events, so the theorem is applied by hand to the envelope here
        search = _theorem_by_hand(envelope, plan.distribution)
        if len(curves) == 1:  # one setting: dp-accounting can do the whole search itself
            s, n = plan.settings[0], plan.noise[0]
            search_dp = _dp_rdp(
                dp_event.RepeatAndSelectDpEvent(
                    _dp_candidate_event(
                        n.noise_multiplier, s.sample_rate, s.steps, n.laplace_epsilons
                    ),
                    plan.distribution.mean,
                    shape,
                )
            )
            search_dp = np.minimum.accumulate(search_dp[::-1])[::-1]
            np.testing.assert_allclose(search, search_dp, rtol=1e-6)
    else:
        search = _theorem_by_hand(envelope, plan.distribution)
    total = search + np.max(finals, axis=0) if finals else search
    return compute_epsilon(ORDERS, total, plan.delta)[0]


@pytest.mark.parametrize(
    ("epsilon", "delta", "dist", "settings", "retrain"),
    [
        (0.5, 1e-5, TrialDistribution.truncated_negative_binomial(10, 1.0), SETTINGS[:1], False),
        (1.0, 1e-4, TrialDistribution.truncated_negative_binomial(20, 1.0), SETTINGS, False),
        (2.0, 1e-4, TrialDistribution.truncated_negative_binomial(20, 0.0), SETTINGS, True),
        (4.0, 1e-5, TrialDistribution.poisson(20), SETTINGS[1:2], False),
        (8.0, 1e-4, TrialDistribution.truncated_negative_binomial(5, 1.0), SETTINGS, True),
        (1.0, 1e-4, TrialDistribution.truncated_negative_binomial(20, -0.5), SETTINGS[:2], False),
    ],
)
def test_calibration_never_exceeds_the_target(epsilon, delta, dist, settings, retrain):
    plan = plan_selection(
        settings, epsilon=epsilon, delta=delta, distribution=dist, retrain=retrain
    )
    assert epsilon - 0.01 <= plan.epsilon_spent <= epsilon
    assert _independent_total(plan) == pytest.approx(plan.epsilon_spent, rel=1e-6)
    # every candidate alone spends less than the whole search
    assert all(n.epsilon < plan.epsilon_spent for n in plan.noise)
    if retrain:
        assert plan.epsilon_search < plan.epsilon_spent
    d = plan.to_dict()
    assert d["theorem"].startswith("Papernot & Steinke (ICLR 2022), Theorem")
    assert d["epsilon_total"] == plan.epsilon_spent and len(d["candidate_rdp"]) == len(ORDERS)


@pytest.mark.parametrize("epsilon", [0.3, 0.5, 1.0, 2.0, 4.0, 8.0])
@pytest.mark.parametrize("delta", [1e-6, 1e-5, 1e-4])
@pytest.mark.parametrize("mean", [3.0, 20.0, 60.0])
def test_calibration_never_exceeds_the_target_grid(epsilon, delta, mean):
    for dist in (
        TrialDistribution.truncated_negative_binomial(mean, 1.0),
        TrialDistribution.poisson(mean),
    ):
        try:
            plan = plan_selection(SETTINGS, epsilon=epsilon, delta=delta, distribution=dist)
        except PrivacyError:
            assert epsilon <= 0.5  # only the smallest budgets may be refused
            continue
        assert epsilon - 0.01 <= plan.epsilon_spent <= epsilon
        assert _independent_total(plan) <= epsilon * (1 + 1e-9)


def test_a_budget_too_small_for_the_search_is_refused():
    with pytest.raises(PrivacyError, match="cannot pay for a private search with 50"):
        plan_selection(
            SETTINGS,
            epsilon=0.05,
            delta=1e-4,
            distribution=TrialDistribution.truncated_negative_binomial(50, 1.0),
        )


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: TrialDistribution.truncated_negative_binomial(0.5), "above 1"),
        (lambda: TrialDistribution.truncated_negative_binomial(10, eta=-1.0), "eta"),
        (lambda: TrialDistribution.poisson(float("nan")), "expected number of trials"),
        (lambda: CandidateSetting(0.1, 10, (0.6, 0.5)), "sum below 1"),
        (lambda: CandidateSetting(1.5, 10), "0 < q <= 1"),
    ],
)
def test_bad_search_parameters_are_refused(make, match):
    with pytest.raises(ParameterError, match=match):
        make()


def test_a_candidate_plan_takes_its_noise_from_the_search():
    plan = plan_with_noise(
        n=300,
        batch_size=50,
        epochs=10,
        noise_multiplier=4.0,
        delta=1e-4,
        epsilon_target=2.0,
        epsilon_spent=0.7,
        accountant="private selection",
        reproducible=True,
        seed=3,
        setting={"candidate": 1},
    )
    assert (plan.noise_multiplier, plan.sample_rate, plan.steps) == (4.0, 1 / 6, 60)
    assert plan.noise_key is not None and plan.calibration is None
    other = plan_with_noise(
        n=300,
        batch_size=50,
        epochs=10,
        noise_multiplier=4.5,
        delta=1e-4,
        epsilon_target=2.0,
        epsilon_spent=0.6,
        accountant="private selection",
        reproducible=True,
        seed=3,
        setting={"candidate": 1},
    )
    assert other.noise_key != plan.noise_key  # another noise, another stream
    led = plan.ledger(clip=1.0)
    assert "accounted by private selection" in led.composition
    assert "selection" not in led.to_dict()  # a fixed run's ledger is unchanged


# ---------------------------------------------------------------------- the number of trials


def _reference_pmf(dist, k: np.ndarray) -> np.ndarray:
    """scipy's distributions (the truncated negative binomial is scipy's negative binomial
    conditioned on K >= 1), or the defining product for a negative shape."""
    if dist.kind == "poisson":
        return stats.poisson(dist.mean).pmf(k)
    eta, gamma = dist.eta, dist.gamma
    if eta == 1:
        return stats.geom(gamma).pmf(k)
    if eta == 0:
        return stats.logser(1 - gamma).pmf(k)
    if eta > 0:
        nb = stats.nbinom(eta, gamma)
        return nb.pmf(k) / nb.sf(0)
    # prod_{l<k} (l+eta)/(l+1), accumulated term by term (k = 1, 2, ...)
    kmax = int(np.max(k))
    ell = np.arange(kmax, dtype=float)
    prods = np.cumprod((ell + eta) / (ell + 1))
    kk = np.asarray(k, dtype=int)
    return (1 - gamma) ** kk / (gamma**-eta - 1) * prods[kk - 1]


@pytest.mark.parametrize(
    "dist",
    [
        TrialDistribution.truncated_negative_binomial(20, 1.0),
        TrialDistribution.truncated_negative_binomial(20, 0.0),
        TrialDistribution.truncated_negative_binomial(8, 2.5),
        TrialDistribution.truncated_negative_binomial(6, -0.5),
        TrialDistribution.poisson(20),
    ],
    ids=["geometric", "logarithmic", "eta-2.5", "eta-minus-0.5", "poisson"],
)
def test_number_of_trials_follows_the_stated_distribution(dist):
    """A chi-square test of 20 000 draws from a fresh, unseeded generator against the
    reference probabilities, bins pooled so that each expects at least 20 draws. The test
    fails wrongly with probability 1e-6 (its p-value threshold); a sampler off by a few per
    cent in one bin is caught (a 3 % error in a bin of 2 000 gives chi-square ≈ 30 alone)."""
    n = 20_000
    rng = np.random.default_rng()
    draws = np.array([dist.sample(rng) for _ in range(n)])
    lo = 0 if dist.kind == "poisson" else 1
    assert draws.min() >= lo
    ks = np.arange(lo, 2000)
    ref = _reference_pmf(dist, ks)
    np.testing.assert_allclose(dist.pmf(ks), ref, rtol=1e-9, atol=1e-300)
    edges, exp_counts, obs_counts = [], [], []
    acc_e, acc_o = 0.0, 0
    counts = np.bincount(draws - lo, minlength=len(ks))[: len(ks)]
    for i in range(len(ks)):
        acc_e += n * ref[i]
        acc_o += int(counts[i])
        if acc_e >= 20:
            edges.append(ks[i])
            exp_counts.append(acc_e)
            obs_counts.append(acc_o)
            acc_e, acc_o = 0.0, 0
    # the tail beyond the last bin (and beyond the table) joins the last bin
    tail_o = int((draws >= ks[-1] + 1).sum()) + acc_o
    tail_e = n - sum(exp_counts)
    exp_counts[-1] += tail_e
    obs_counts[-1] += tail_o
    assert sum(obs_counts) == n
    chi2, p = stats.chisquare(obs_counts, exp_counts)
    assert p > 1e-6, (chi2, p, len(exp_counts))
    # the mean, the parameter users give: within 6 standard errors (variance by the pmf)
    var = float(np.sum(ref * (ks - dist.mean) ** 2))
    assert abs(draws.mean() - dist.mean) < 6 * math.sqrt(var / n) + 1e-9


# ---------------------------------------------------------------------- the paper's formulas


def _paper_pmf(eta: float, gamma: float, kmax: int) -> np.ndarray:
    """``P[K = k]`` for k = 1..kmax, term by term from Papernot & Steinke's definition of
    D_{η,γ}: ``(1-γ)^k / (γ^{-η} - 1) · Π_{l<k} (l+η)/(l+1)``, and ``(1-γ)^k / (k log(1/γ))``
    at η = 0 (plain Python floats, nothing shared with the module)."""
    out = []
    prod = 1.0  # prod_{l<k} (l+eta)/(l+1), updated as k grows
    for k in range(1, kmax + 1):
        if eta == 0:
            out.append((1 - gamma) ** k / (k * math.log(1 / gamma)))
        else:
            prod *= ((k - 1) + eta) / k  # the factor l = k - 1
            out.append((1 - gamma) ** k / (gamma**-eta - 1) * prod)
    return np.array(out)


@pytest.mark.parametrize("mean", [10.0, 20.0])
@pytest.mark.parametrize("eta", [1.0, 0.0, 0.5, 2.5, -0.5])
def test_trial_distribution_is_the_papers(eta, mean):
    dist = TrialDistribution.truncated_negative_binomial(mean, eta=eta)
    assert dist.mean == pytest.approx(mean, rel=1e-9)  # γ is solved from the mean asked for
    kmax = 30_000  # the tails beyond are below 1e-12 for every case here
    k = np.arange(1, kmax + 1)
    ref = _paper_pmf(eta, dist.gamma, kmax)
    np.testing.assert_allclose(dist.pmf(k), ref, rtol=1e-9, atol=1e-300)
    assert ref.sum() == pytest.approx(1.0, abs=1e-9)
    assert float(np.sum(k * ref)) == pytest.approx(mean, rel=1e-8)
    # the paper's mean in closed form, η(1-γ)/(γ(1-γ^η)) (and its η → 0 limit)
    g = dist.gamma
    closed = (1 - g) / (g * math.log(1 / g)) if eta == 0 else eta * (1 - g) / (g * (1 - g**eta))
    assert closed == pytest.approx(mean, rel=1e-9)
    assert dist.pmf([0, -1]).tolist() == [0.0, 0.0]  # K >= 1
    if eta == 1:
        assert dist.gamma == pytest.approx(1 / mean, rel=1e-12)  # geometric: γ = 1/E[K]


@pytest.mark.parametrize("mean", [1.0, 10.0, 20.0])
def test_poisson_number_of_trials_is_poissons(mean):
    dist = TrialDistribution.poisson(mean)
    k = np.arange(0, 400)
    ref = np.array([math.exp(-mean + kk * math.log(mean) - math.lgamma(kk + 1)) for kk in k])
    np.testing.assert_allclose(dist.pmf(k), ref, rtol=1e-9, atol=1e-300)
    assert ref.sum() == pytest.approx(1.0, abs=1e-12)
    assert float(np.sum(k * ref)) == pytest.approx(mean, rel=1e-12)


@pytest.mark.parametrize(
    "dist",
    [
        TrialDistribution.truncated_negative_binomial(10, 1.0),
        TrialDistribution.truncated_negative_binomial(20, 0.0),
        TrialDistribution.truncated_negative_binomial(20, 0.5),
        TrialDistribution.poisson(10),
    ],
    ids=["geometric-10", "logarithmic-20", "eta-0.5-20", "poisson-10"],
)
def test_sample_mean_is_the_stated_mean(dist):
    """4 000 draws from a fresh, unseeded generator: their mean within 6 standard errors of
    the stated mean (variance from the paper's pmf), which fails wrongly with probability
    ~2e-9 (a heavy tail, η = 0, makes the normal approximation rougher: still far inside)."""
    n = 4_000
    rng = np.random.default_rng()
    draws = np.array([dist.sample(rng) for _ in range(n)])
    if dist.kind == "poisson":
        var = dist.mean
    else:
        k = np.arange(1, 30_001)
        p = _paper_pmf(dist.eta, dist.gamma, len(k))
        var = float(np.sum(p * (k - dist.mean) ** 2))
    assert abs(draws.mean() - dist.mean) < 6 * math.sqrt(var / n)


# ---------------------------------------------------------------------- curves in closed form


def _laplace_rdp_mironov(eps: float, order: float) -> float:
    """RDP of the Laplace mechanism of scale b = 1/ε (sensitivity 1), Mironov 2017, Table II:
    1/(λ-1) log( λ/(2λ-1) e^{(λ-1)/b} + (λ-1)/(2λ-1) e^{-λ/b} )."""
    b = 1.0 / eps
    lam = order
    up = lam / (2 * lam - 1) * math.exp((lam - 1) / b)
    down = (lam - 1) / (2 * lam - 1) * math.exp(-lam / b)
    return math.log(up + down) / (lam - 1)


@pytest.mark.parametrize(
    ("sigma", "steps", "laplace"), [(3.0, 40, ()), (10.0, 200, (0.05,)), (25.0, 7, (0.02, 0.3))]
)
def test_candidate_curve_in_closed_form(sigma, steps, laplace):
    """Without subsampling (q = 1) a candidate's curve is ``T λ/(2σ²)`` plus its Laplace
    queries' curves: both written here from Mironov (2017), not taken from dp-accounting —
    this also fixes the meaning of a Laplace query's ε (scale 1/ε at sensitivity 1)."""
    got = candidate_rdp(
        noise_multiplier=sigma, sample_rate=1.0, steps=steps, laplace_epsilons=laplace
    )
    want = np.array(
        [
            steps * lam / (2 * sigma**2) + sum(_laplace_rdp_mironov(e, lam) for e in laplace)
            for lam in ORDERS
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-9)
    np.testing.assert_allclose(gaussian_rdp(sigma), np.array(ORDERS) / (2 * sigma**2), rtol=1e-15)


# ---------------------------------------------------------------------- the plan, recomputed


def _accountant_curve(sigma, q, steps, laplace=()) -> np.ndarray:
    """One candidate's curve by dp-accounting's RdpAccountant at SELECTION_ORDERS: the
    Poisson-subsampled Gaussian step composed ``steps`` times, then each Laplace query."""
    acc = dp_accounting.rdp.RdpAccountant(ORDERS)
    acc.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)
    for e in laplace:
        acc.compose(dp_accounting.LaplaceDpEvent(1.0 / e))
    return np.array(acc._rdp, dtype=float)


def _delta_by_hand(rdp, eps: float) -> float:
    """δ of an RDP curve at ε, written out: the smallest over the orders of Canonne, Kamath &
    Steinke's Proposition 12, ``exp((λ-1)(ε(λ) - ε + log(1-1/λ)) - log λ)``, and of the KL
    bound ``sqrt(1 - exp(-ε(λ)))`` (D_λ ≥ KL): both valid bounds, the same as dp-accounting's
    compute_delta."""
    best = math.inf
    for lam, r in zip(ORDERS, rdp):
        best = min(best, 0.5 * math.log1p(-math.exp(-r)))
        best = min(best, (lam - 1) * (r - eps + math.log1p(-1 / lam)) - math.log(lam))
    return min(math.exp(best), 1.0)


def _epsilon_by_hand(rdp, delta: float) -> float:
    """``min_λ ε(λ) + log(1-1/λ) - log(δλ)/(λ-1)`` (Proposition 12 again)."""
    return min(
        r + math.log1p(-1 / lam) - math.log(delta * lam) / (lam - 1) for lam, r in zip(ORDERS, rdp)
    )


def _theorem_written_out(rdp, dist) -> np.ndarray:
    """Theorem 2 / Theorem 6 at every order of the grid, then the running minimum from the
    right (an RDP bound at an order holds at every smaller one; the module does the same)."""
    out = []
    for i, lam in enumerate(ORDERS):
        if dist.kind == "poisson":
            mu = dist.mean
            eps_hat = math.log(1 + 1 / (lam - 1))  # e^ε̂ = 1 + 1/(λ-1)
            out.append(rdp[i] + mu * _delta_by_hand(rdp, eps_hat) + math.log(mu) / (lam - 1))
        else:
            eta, gamma = dist.eta, dist.gamma
            over_hat = min(
                (1 + eta) * (1 - 1 / lh) * rdp[j] + (1 + eta) * math.log(1 / gamma) / lh
                for j, lh in enumerate(ORDERS)
            )
            out.append(rdp[i] + over_hat + math.log(dist.mean) / (lam - 1))
    for i in range(len(out) - 2, -1, -1):
        out[i] = min(out[i], out[i + 1])
    return np.array(out)


def _recompute(plan) -> dict:
    """The plan's curves and ε from its noise multipliers alone, by the accountant's
    per-candidate curves and the formulas above."""
    curves, finals = [], []
    for s, n in zip(plan.settings, plan.noise):
        c = _accountant_curve(n.noise_multiplier, s.sample_rate, s.steps, n.laplace_epsilons)
        curves.append(c)
        if plan.retrain:
            finals.append(
                _accountant_curve(
                    n.noise_multiplier, s.final_sample_rate, s.final_steps, n.laplace_epsilons
                )
            )
    envelope = np.max(curves, axis=0)
    search = _theorem_written_out(envelope, plan.distribution)
    final = np.max(finals, axis=0) if finals else None
    total = search + final if final is not None else search
    return {
        "curves": curves,
        "envelope": envelope,
        "search": search,
        "final": final,
        "total": total,
        "epsilon": _epsilon_by_hand(total, plan.delta),
        "epsilon_search": _epsilon_by_hand(search, plan.delta),
    }


@pytest.mark.parametrize("retrain", [False, True])
@pytest.mark.parametrize(
    "dist",
    [
        TrialDistribution.truncated_negative_binomial(10, 1.0),
        TrialDistribution.truncated_negative_binomial(20, 0.5),
        TrialDistribution.truncated_negative_binomial(20, 0.0),
        TrialDistribution.poisson(10),
    ],
    ids=["geometric-10", "eta-0.5-20", "logarithmic-20", "poisson-10"],
)
def test_plan_is_the_theorem_of_the_accountants_curves(dist, retrain):
    """Every curve and ε the plan reports, recomputed from its noise multipliers: the
    per-candidate RDP by dp-accounting's RdpAccountant, the theorem, the composition with
    the retraining and the conversion written out here. The same arithmetic in another
    order: agreement to 1e-9 relative."""
    plan = plan_selection(SETTINGS, epsilon=1.0, delta=1e-5, distribution=dist, retrain=retrain)
    ref = _recompute(plan)
    np.testing.assert_allclose(plan.rdp_candidate, ref["envelope"], rtol=1e-9)
    np.testing.assert_allclose(plan.rdp_search, ref["search"], rtol=1e-9)
    np.testing.assert_allclose(plan.rdp_total, ref["total"], rtol=1e-9)
    if retrain:
        np.testing.assert_allclose(plan.rdp_final, ref["final"], rtol=1e-9)
        # the curves add: the total is the search's plus the retraining's, order by order
        np.testing.assert_allclose(
            plan.rdp_total, np.add(plan.rdp_search, plan.rdp_final), rtol=1e-12
        )
    else:
        assert plan.rdp_final is None
    assert plan.epsilon_spent == pytest.approx(ref["epsilon"], rel=1e-9)
    assert plan.epsilon_search == pytest.approx(ref["epsilon_search"], rel=1e-9)
    assert ref["epsilon"] <= 1.0
    for n, c in zip(plan.noise, ref["curves"]):
        assert n.epsilon == pytest.approx(_epsilon_by_hand(c, plan.delta), rel=1e-9)
    # the ledger entry says the same (and lets a reader redo all of it)
    d = plan.to_dict()
    assert d["orders"] == ORDERS and d["epsilon_total"] == plan.epsilon_spent
    assert d["theorem"] == (THEOREM_6 if dist.kind == "poisson" else THEOREM_2)
    for entry, s, n in zip(d["settings"], plan.settings, plan.noise):
        assert (entry["sample_rate"], entry["steps"]) == (s.sample_rate, s.steps)
        assert entry["noise_multiplier"] == n.noise_multiplier
        if retrain:
            assert (entry["final_sample_rate"], entry["final_steps"]) == (
                s.final_sample_rate,
                s.final_steps,
            )


def test_score_noise_is_below_every_settings_curve_at_every_order():
    """Item 4: each setting's score noise multiplier keeps ``λ/(2σ_s²)`` at or below that
    setting's own training curve at every order (so the trial's curve is the training's),
    and is the smallest that does (tight at some order)."""
    plan = plan_selection(
        SETTINGS,
        epsilon=2.0,
        delta=1e-5,
        distribution=TrialDistribution.truncated_negative_binomial(20, 1.0),
    )
    ref = _recompute(plan)
    for n, c in zip(plan.noise, ref["curves"]):
        score = np.array(ORDERS) / (2 * n.score_noise_multiplier**2)
        assert np.all(score <= c * (1 + 1e-9))
        assert np.max(score / c) == pytest.approx(1.0, rel=1e-6)


# ---------------------------------------------------------------------- ε_total ≤ target


def _space_settings(batches, epochs, shares, n_train=350, holdout=0.2):
    """The candidate settings of a search on ``n_train`` rows (``holdout`` of them held out),
    written out from the sampling rule (q = 1 / ceil(n / batch), ceil(n / batch) steps per
    epoch): one per batch size, epochs and one-shot shares (none; a class-weighted
    mitigation's counts 0.05; a DP scaler's 0.1; both)."""
    n_t = round(n_train * (1 - holdout))
    out = []
    for b, e, s in itertools.product(batches, epochs, shares):
        per, per_full = math.ceil(n_t / b), math.ceil(n_train / b)
        out.append(CandidateSetting(1 / per, per * e, s, 1 / per_full, per_full * e))
    return out


SHARES = [(), (0.05,), (0.1,), (0.05, 0.1)]
SMALL_SPACE = _space_settings([32, 128], [20, 100], [(), (0.05, 0.1)])
DEFAULT_SPACE = _space_settings([32, 64, 128, 256], [20, 50, 100, 200], SHARES)
BUDGETS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
SEARCHES = [
    TrialDistribution.truncated_negative_binomial(10, 1.0),
    TrialDistribution.truncated_negative_binomial(20, 1.0),
    TrialDistribution.poisson(10),
]
SEARCH_IDS = ["geometric-10", "geometric-20", "poisson-10"]


def _check_budget(settings, epsilon, dist, retrain):
    plan = plan_selection(settings, epsilon=epsilon, delta=1e-4, distribution=dist, retrain=retrain)
    assert epsilon - CALIBRATION_TOLERANCE <= plan.epsilon_spent <= epsilon
    ref = _recompute(plan)
    assert ref["epsilon"] <= epsilon * (1 + 1e-9)
    assert ref["epsilon"] == pytest.approx(plan.epsilon_spent, rel=1e-6)
    # every candidate alone spends less than the search, the retrained model too
    assert max(n.epsilon for n in plan.noise) < plan.epsilon_spent
    if retrain:
        assert plan.epsilon_search < plan.epsilon_spent


@pytest.mark.parametrize("retrain", [False, True])
@pytest.mark.parametrize("dist", SEARCHES, ids=SEARCH_IDS)
@pytest.mark.parametrize("epsilon", BUDGETS)
def test_total_epsilon_within_the_target_over_a_grid(epsilon, dist, retrain):
    _check_budget(SMALL_SPACE, epsilon, dist, retrain)


@pytest.mark.slow
@pytest.mark.parametrize("retrain", [False, True])
@pytest.mark.parametrize("dist", SEARCHES, ids=SEARCH_IDS)
@pytest.mark.parametrize("epsilon", BUDGETS)
def test_total_epsilon_within_the_target_on_the_default_space(epsilon, dist, retrain):
    """The default space's 64 settings on 350 rows (slow: ~1 s a plan)."""
    _check_budget(DEFAULT_SPACE, epsilon, dist, retrain)


@pytest.mark.parametrize(("epsilon", "mean"), [(0.001, 20.0), (0.01, 10.0), (0.02, 100.0)])
def test_a_budget_too_small_for_one_candidate_is_refused(epsilon, mean):
    with pytest.raises(PrivacyError, match=rf"epsilon {epsilon:g} at delta 0.0001 cannot pay") as e:
        plan_selection(
            SMALL_SPACE,
            epsilon=epsilon,
            delta=1e-4,
            distribution=TrialDistribution.truncated_negative_binomial(mean, 1.0),
        )
    msg = str(e.value)
    assert "\n" not in msg and "raise --epsilon" in msg
