"""Membership-inference statistics and the one-run audit bound, on synthetic scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom
from sklearn.metrics import roc_auc_score

from imbalanced_dp.attacks import (
    BootstrapPlan,
    audit_p_value,
    audit_scores,
    dp_bound,
    epsilon_lower_bound,
    gaussian_epsilon,
    lira_scores,
    logit_confidence,
    parse_privacy,
    roc_auc,
    roc_curve,
    summarize_roc,
    tpr_at_fpr,
)
from imbalanced_dp.exceptions import ParameterError

# ---------------------------------------------------------------------- ROC


def test_roc_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    u = rng.random(500) < 0.4
    s = np.round(rng.normal(size=500) + 0.8 * u, 1)  # many ties
    assert roc_auc(s, u) == pytest.approx(roc_auc_score(u, s), abs=1e-12)


def test_tpr_at_fpr_is_the_step_curve_without_interpolation():
    # members 0.9, 0.3; non-members 0.8, 0.1
    s, u = [0.9, 0.8, 0.3, 0.1], [True, False, True, False]
    fpr, tpr = roc_curve(s, u)
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert tpr_at_fpr(s, u, 0.0) == 0.5
    assert tpr_at_fpr(s, u, 0.49) == 0.5
    assert tpr_at_fpr(s, u, 0.5) == 1.0


def test_a_tied_group_is_never_split():
    # all scores equal: the only thresholds give (0, 0) and (1, 1)
    s, u = np.zeros(10), np.arange(10) % 2 == 0
    assert tpr_at_fpr(s, u, 0.5) == 0.0
    assert roc_auc(s, u) == 0.5


def test_roc_rejects_one_sided_input():
    with pytest.raises(ParameterError, match="both members and non-members"):
        roc_auc([1.0, 2.0], [True, True])


def test_pooled_summary_equals_flat_roc_and_bootstrap_is_reproducible():
    rng = np.random.default_rng(1)
    M, N = 8, 60
    U = rng.random((M, N)) < 0.5
    S = rng.normal(size=(M, N)) + 0.7 * U
    y = (np.arange(N) % 3 == 0).astype(int)
    plan = BootstrapPlan.draw(n_models=M, labels=y, replicates=100, seed=3)
    summ = summarize_roc(S, U, plan=plan)
    assert summ.auc == pytest.approx(roc_auc(S.ravel(), U.ravel()))
    assert summ.tpr[0.01] == tpr_at_fpr(S.ravel(), U.ravel(), 0.01)
    lo, hi = summ.auc_ci
    assert lo < summ.auc < hi
    cls1 = np.flatnonzero(y == 1)
    s1 = summarize_roc(S, U, records=cls1, plan=plan)
    assert s1.auc == pytest.approx(roc_auc(S[:, cls1].ravel(), U[:, cls1].ravel()))
    again = summarize_roc(
        S, U, plan=BootstrapPlan.draw(n_models=M, labels=y, replicates=100, seed=3)
    )
    assert again.auc_ci == summ.auc_ci
    # a stratified record bootstrap keeps class sizes in every replicate
    assert np.all(plan.records[:, y == 1].sum(axis=1) == (y == 1).sum())


# ---------------------------------------------------------------------- scores


def test_logit_confidence_is_log_odds_of_the_true_class():
    rng = np.random.default_rng(2)
    for k in (2, 3):
        z = rng.normal(size=(50, k)) * 3
        y = rng.integers(0, k, 50)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        py = p[np.arange(50), y]
        np.testing.assert_allclose(logit_confidence(z, y), np.log(py / (1 - py)), rtol=1e-9)
    # stable far out where 1 - p underflows
    assert logit_confidence(np.array([[0.0, 800.0]]), np.array([1]))[0] == 800.0


def _naive_lira(phi, members, online, variance):
    M, N = phi.shape
    out = np.zeros_like(phi)
    for t in range(M):
        others = np.arange(M) != t
        mu_in, mu_out, v_in, v_out = (np.zeros(N) for _ in range(4))
        ss = {True: [0.0, 0.0], False: [0.0, 0.0]}
        for i in range(N):
            for side, mu, v in ((True, mu_in, v_in), (False, mu_out, v_out)):
                vals = phi[others & (members[:, i] == side), i]
                mu[i] = vals.mean()
                v[i] = vals.var(ddof=1)
                ss[side][0] += ((vals - vals.mean()) ** 2).sum()
                ss[side][1] += len(vals) - 1
        if variance == "global":
            v_in[:] = ss[True][0] / ss[True][1]
            v_out[:] = ss[False][0] / ss[False][1]
        if online:
            out[t] = (
                -0.5 * (phi[t] - mu_in) ** 2 / v_in
                + 0.5 * (phi[t] - mu_out) ** 2 / v_out
                - 0.5 * np.log(v_in / v_out)
            )
        else:
            out[t] = (phi[t] - mu_out) / np.sqrt(v_out)
    return out


@pytest.mark.parametrize("variance", ["global", "per_example"])
@pytest.mark.parametrize("online", [False, True])
def test_lira_leave_one_model_out_matches_a_naive_loop(online, variance):
    rng = np.random.default_rng(4)
    M, N = 10, 12
    members = np.zeros((M, N), bool)
    for i in range(N):  # every record has at least 3 IN and 3 OUT models
        members[rng.permutation(M)[:5], i] = True
    phi = rng.normal(size=(M, N)) + members
    got = lira_scores(phi, members, online=online, variance=variance)
    np.testing.assert_allclose(got, _naive_lira(phi, members, online, variance), rtol=1e-9)


# ---------------------------------------------------------------------- audit bound


def test_p_value_without_delta_is_the_binomial_tail():
    for r, v, eps in ((10, 10, 0.0), (50, 40, 1.0), (200, 120, 0.3)):
        q = math.exp(eps) / (1 + math.exp(eps))
        assert audit_p_value(m=300, r=r, v=v, epsilon=eps, delta=0.0) == pytest.approx(
            binom.sf(v - 1, r, q)
        )
    with_delta = audit_p_value(m=300, r=50, v=40, epsilon=1.0, delta=1e-4)
    assert with_delta > audit_p_value(m=300, r=50, v=40, epsilon=1.0, delta=0.0)


def test_epsilon_lower_bound_basic_properties():
    assert epsilon_lower_bound(m=100, r=40, v=20, delta=0.0) == 0.0  # chance accuracy
    bounds = [epsilon_lower_bound(m=400, r=200, v=v, delta=1e-5) for v in (120, 150, 180, 200)]
    assert bounds == sorted(bounds)
    assert bounds[0] > 0
    # all correct: Binomial(r, q) = r has probability q^r = 0.05 at the bound
    e = epsilon_lower_bound(m=1000, r=1000, v=1000, delta=0.0)
    q = math.exp(e) / (1 + math.exp(e))
    assert q**1000 == pytest.approx(0.05, rel=1e-3)


@pytest.mark.parametrize("mu", [0.5, 1.0, 2.0, 4.0])
def test_audit_of_a_gaussian_mechanism_stays_below_its_epsilon(mu):
    """Members' scores N(mu, 1), non-members' N(0, 1): each canary's score is a Gaussian
    mechanism on its inclusion bit, (ε(δ), δ)-DP by the exact profile; ε_LB must not exceed
    it."""
    delta = 1e-5
    eps = gaussian_epsilon(mu, delta)
    for seed in range(5):
        rng = np.random.default_rng([seed, 17])
        inc = rng.random(2000) < 0.5
        b = audit_scores(rng.normal(size=2000) + mu * inc, inc, delta=delta)
        assert b.epsilon_lower_bound <= eps
    assert b.epsilon_lower_bound <= b.ceiling
    if mu >= 4.0:  # strong leakage is detected
        assert b.epsilon_lower_bound > 1.5


def test_gaussian_epsilon_matches_the_privacy_profile():
    from scipy.stats import norm

    mu, delta = 1.0, 1e-5
    e = gaussian_epsilon(mu, delta)
    prof = norm.cdf(mu / 2 - e / mu) - math.exp(e) * norm.cdf(-mu / 2 - e / mu)
    assert prof == pytest.approx(delta, rel=1e-6)


def test_audit_is_valid_and_nearly_tight_on_randomized_response():
    """Randomized response at ε is exactly ε-DP: the 95 % bound may exceed ε in at most
    about 5 % of runs, and with many canaries it comes close to ε."""
    eps, m, runs = 1.0, 5000, 40
    keep = math.exp(eps) / (1 + math.exp(eps))
    over, bounds = 0, []
    for seed in range(runs):
        rng = np.random.default_rng([seed, 99])
        inc = rng.random(m) < 0.5
        truthful = rng.random(m) < keep
        score = np.where(truthful, inc, ~inc).astype(float)
        b = audit_scores(score, inc, delta=0.0).epsilon_lower_bound
        over += b > eps
        bounds.append(b)
    assert over <= 5  # P[Binomial(40, 0.05) > 5] < 0.05
    assert np.median(bounds) > 0.7


def test_audit_scores_rejects_bad_input():
    with pytest.raises(ParameterError):
        audit_scores(np.zeros(3), np.zeros(4, bool), delta=0.0)
    with pytest.raises(ParameterError):
        audit_scores(np.array([0.0, np.nan]), np.array([True, False]), delta=0.0)


# ---------------------------------------------------------------------- helpers


def test_dp_bound_and_privacy_parsing():
    assert dp_bound(1.0, 1e-4, 0.01) == pytest.approx(math.e * 0.01 + 1e-4)
    assert dp_bound(8.0, 1e-4, 0.01) == 1.0
    assert parse_privacy("none,8, 2,1") == [None, 8.0, 2.0, 1.0]
    for bad in ("foo", "none,-1", "8,8", ""):
        with pytest.raises(ParameterError):
            parse_privacy(bad)
