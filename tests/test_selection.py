"""Private selection (docs/privacy.md, rule 13): the ε of the best of a random number of
trials, checked against dp-accounting's own implementation of Papernot & Steinke's theorems
and against the closed forms evaluated here, order by order; the calibration never
overshoots; the number of trials follows the stated distribution."""

from __future__ import annotations

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
    SELECTION_ORDERS,
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
