"""Mitigations: their total ε stays within the target (checked independently with
dp-accounting), they reduce to their non-private counterparts without noise or clipping,
DPSGD-F moves its clip bounds the way the paper says, and oversampling is refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imbalanced_dp.cli._main import main
from imbalanced_dp.data import load_dataset, prepare_split
from imbalanced_dp.engines import FastEngine, RunConfig, TrainJob
from imbalanced_dp.exceptions import ParameterError
from imbalanced_dp.mitigations import class_weights_from_counts, laplace_counts
from imbalanced_dp.models import architecture, build_mlp
from imbalanced_dp.privacy import effective_noise_multiplier, epsilon_spent
from imbalanced_dp.studies import DatasetRef, RunSpec, run_single
from imbalanced_dp.studies._execute import choose_threshold, prepare_run

PIMA = DatasetRef(name="pima")
ARCH = architecture(8, (20, 5, 5))


def spec(mitigation, eps=1.0, accountant="rdp", **params):
    return RunSpec(
        PIMA,
        seed=0,
        epsilon=eps,
        epochs=20,
        accountant=accountant,
        mitigation=mitigation,
        mitigation_params=tuple(sorted(params.items())),
        reproducible=True,
    )


def dp_accounting_epsilon(sigmas, q, steps, delta):
    import dp_accounting

    acc = dp_accounting.rdp.RdpAccountant()
    for s in sigmas:
        event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(s))
        acc.compose(dp_accounting.SelfComposedDpEvent(event, steps))
    return acc.get_epsilon(delta)


# ---------------------------------------------------------------- accounting


@pytest.mark.parametrize("eps", [8.0, 2.0, 1.0])
def test_class_weighted_shares_add_up_to_at_most_the_target(eps):
    p = prepare_run("x", spec("class_weighted", eps=eps, count_share=0.1))
    led = p.ledger
    grad, counts = led.components
    assert (grad["query"], counts["query"]) == ("gradients", "class_counts")
    assert counts["epsilon"] == pytest.approx(0.1 * eps)
    assert counts["laplace_scale"] == pytest.approx(1 / (0.1 * eps))
    sgd = epsilon_spent(
        noise_multiplier=led.noise_multiplier,
        sample_rate=led.sample_rate,
        steps=led.steps,
        delta=led.delta,
        accountant="rdp",
    )
    assert sgd <= 0.9 * eps + 1e-12
    assert led.epsilon_spent == pytest.approx(counts["epsilon"] + sgd)
    assert 0.98 * eps < led.epsilon_spent <= eps
    # the gradient noise is what the remaining budget allows, by an independent accountant
    ref = dp_accounting_epsilon([led.noise_multiplier], led.sample_rate, led.steps, led.delta)
    assert ref <= 0.9 * eps + 0.01
    n0, n1 = counts["noisy_counts"]
    w = class_weights_from_counts(n0, n1)
    np.testing.assert_allclose(p.weights, np.where(p.split.y_train == 1, w[1], w[0]))


@pytest.mark.parametrize("mitigation", ["dpsgd_f", "global_adapt"])
@pytest.mark.parametrize("eps", [8.0, 1.0])
def test_per_step_count_mechanisms_are_one_mechanism_within_the_target(mitigation, eps):
    """The counts share the gradients' Poisson batch: one subsampled Gaussian mechanism
    with σ_eff = (σ_g⁻² + σ_a⁻²)^(−1/2), calibrated to the whole target."""
    p = prepare_run("x", spec(mitigation, eps=eps, aux_share=0.2))
    led = p.ledger
    grad, counts = led.components
    sg, sa = grad["noise_multiplier"], counts["noise_multiplier"]
    assert p.config.noise_multiplier == sg and p.config.aux_noise_multiplier == sa
    assert (grad["share"], counts["share"]) == pytest.approx((0.8, 0.2))
    s_eff = effective_noise_multiplier([sg, sa])
    assert led.effective_noise_multiplier == pytest.approx(s_eff, rel=1e-12)
    assert sa == pytest.approx(s_eff / np.sqrt(0.2)) and sg == pytest.approx(s_eff / np.sqrt(0.8))
    spent = epsilon_spent(
        noise_multiplier=s_eff,
        sample_rate=led.sample_rate,
        steps=led.steps,
        delta=led.delta,
        accountant="rdp",
    )
    assert led.epsilon_spent == pytest.approx(spent, rel=1e-9)
    assert eps - 0.02 < led.epsilon_spent <= eps
    # an independent RDP accountant agrees
    assert dp_accounting_epsilon([s_eff], led.sample_rate, led.steps, led.delta) <= eps + 0.01
    # the gradients alone at sg would spend less: the counts are accounted for
    alone = epsilon_spent(
        noise_multiplier=sg,
        sample_rate=led.sample_rate,
        steps=led.steps,
        delta=led.delta,
        accountant="rdp",
    )
    assert alone < led.epsilon_spent


def test_prv_accounting_for_mitigations_too():
    p = prepare_run("x", spec("dpsgd_f", eps=2.0, accountant="prv"))
    assert 1.98 <= p.ledger.epsilon_spent <= 2.0


def test_public_weights_spend_nothing_and_say_so():
    p = prepare_run("x", spec("class_weighted", prior=[0.65, 0.35]))
    plain = prepare_run("x", spec("none"))
    assert p.config.noise_multiplier == plain.config.noise_multiplier
    assert [c["query"] for c in p.ledger.components] == ["gradients"]
    w0, w1 = 1 / (2 * 0.65), 1 / (2 * 0.35)
    y = p.split.y_train
    np.testing.assert_allclose(p.weights, np.where(y == 1, w1, w0))
    assert any("public class prior" in n for n in p.ledger.notes)


def test_laplace_counts_are_unbiased():
    y = np.array([0] * 400 + [1] * 200)
    rng = np.random.default_rng(0)
    draws = np.array([laplace_counts(y, 0.5, rng) for _ in range(4000)])
    # Laplace(scale 2): mean 0, variance 8
    assert abs(draws[:, 0].mean() - 400) < 5 * np.sqrt(8 / 4000)
    assert draws[:, 1].var() == pytest.approx(8, rel=0.15)
    assert class_weights_from_counts(400, 200) == pytest.approx((0.75, 1.5))


# ---------------------------------------------------------------- no noise, no clipping


def _one_full_batch_step(split, n, cfg, weights=None):
    X, y = split.X_train[:n], split.y_train[:n]
    flat = np.random.default_rng(0).normal(0, 0.5, ARCH.n_params)
    out = FastEngine("float64").train([TrainJob(X, y, ARCH, cfg, weights)], init_params=flat[None])
    model = build_mlp(ARCH).double()
    off = 0
    with torch.no_grad():
        for layer in model:
            if hasattr(layer, "weight"):
                for p in (layer.weight, layer.bias):
                    p.copy_(torch.as_tensor(flat[off : off + p.numel()]).reshape(p.shape))
                    off += p.numel()
    w = torch.ones(n, dtype=torch.float64) if weights is None else torch.as_tensor(weights)
    loss = torch.nn.functional.cross_entropy(
        model(torch.as_tensor(X)), torch.as_tensor(y), reduction="none"
    )
    (loss * w).mean().backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= cfg.lr * p.grad
    ref = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy()
    return out[0], ref


@pytest.mark.parametrize("rule", ["standard_weighted", "dpsgd_f", "global_adapt"])
def test_without_noise_and_clipping_each_is_plain_sgd(rule):
    split = prepare_split(load_dataset("pima"), seed=0)
    n = 90
    big = 1e30
    base = dict(
        seed=0,
        private=True,
        epochs=1,
        batch_size=n,
        lr=0.2,
        steps=1,
        clip=big,
        noise_multiplier=0.0,
        sample_rate=1.0,
        expected_batch_size=n,
    )
    weights = None
    if rule == "standard_weighted":
        cfg = RunConfig(**base)
        weights = np.where(split.y_train[:n] == 1, 1.7, 0.6)
    elif rule == "dpsgd_f":
        cfg = RunConfig(clip_rule="dpsgd_f", aux={"base_clip": big}, **base)
    else:
        cfg = RunConfig(
            clip_rule="global_adapt", aux={"z0": big, "lr_z": 1e-9, "quantile": 0.5}, **base
        )
    out, ref = _one_full_batch_step(split, n, cfg, weights)
    np.testing.assert_allclose(out.params, ref, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- DPSGD-F's clip bounds


def test_dpsgd_f_raises_the_bound_of_the_class_clipped_more_often():
    # Class 1 rows get inputs 50x larger: their gradients are far larger, so they are
    # clipped at C0 far more often, and DPSGD-F gives class 1 the larger bound.
    rng = np.random.default_rng(0)
    n = 400
    y = (np.arange(n) % 4 == 0).astype(np.int64)
    X = rng.normal(size=(n, 8))
    X[y == 1] *= 50.0
    c0 = 4.0
    cfg = RunConfig(
        seed=1,
        private=True,
        epochs=5,
        batch_size=40,
        lr=0.01,
        steps=50,
        clip=c0,
        noise_multiplier=0.5,
        sample_rate=0.1,
        expected_batch_size=40,
        clip_rule="dpsgd_f",
        aux={"base_clip": c0},
        aux_noise_multiplier=0.5,
        noise_key=11,
    )
    out = FastEngine("float64").train([TrainJob(X, y, ARCH, cfg)])[0]
    seen, clipped = out.stats["seen"], out.stats["clipped"]
    share = [clipped[k] / seen[k] for k in (0, 1)]
    assert share[1] > 2 * share[0]
    c_0, c_1 = out.stats["clip_state"]  # mean bounds over steps
    assert c_1 > c_0
    # C_k = C0 (1 + r_k / mean r): the bounds sum to 4 C0 at a step where anything is
    # clipped, to 2 C0 where nothing is (every ratio 0)
    assert 2 * c0 <= c_0 + c_1 <= 4 * c0 * (1 + 1e-9)
    assert c_0 >= c0 and c_1 <= 3 * c0


def test_dpsgd_f_bounds_follow_the_formula_on_one_step():
    rng = np.random.default_rng(1)
    n = 60
    y = (np.arange(n) % 3 == 0).astype(np.int64)
    X = rng.normal(size=(n, 8))
    X[y == 1] *= 30.0
    c0 = 0.4
    cfg = RunConfig(
        seed=2,
        private=True,
        epochs=1,
        batch_size=n,
        lr=0.0,
        steps=1,
        clip=c0,
        noise_multiplier=0.0,
        sample_rate=1.0,
        expected_batch_size=n,
        clip_rule="dpsgd_f",
        aux={"base_clip": c0},
    )
    flat = rng.normal(0, 0.5, ARCH.n_params)
    out = FastEngine("float64").train([TrainJob(X, y, ARCH, cfg)], init_params=flat[None])[0]
    from imbalanced_dp.engines import _kernel as K

    norms = np.zeros(n)
    g = np.zeros(ARCH.n_params)
    K.clipped_sum(
        X, y, np.ones(n), np.arange(n), n, np.asarray(ARCH.sizes), flat, 1e30, 1e30, g, norms
    )
    r = [np.mean(norms[y == k] > c0) for k in (0, 1)]
    mean_r = np.mean(r) + 1e-8
    expected = [c0 * (1 + rk / mean_r) for rk in r]
    np.testing.assert_allclose(out.stats["clip_state"], expected, rtol=1e-9)


# ---------------------------------------------------------------- refusals and thresholds


def test_oversampling_is_refused_with_an_explanation(capsys):
    code = main(
        [
            "run",
            "--dataset",
            "pima",
            "--epsilon",
            "2",
            "--mitigation",
            "oversample",
            "--epochs",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "#813" in err and "class_weighted" in err and len(err.strip().splitlines()) == 1


def test_mitigations_need_a_private_run():
    with pytest.raises(ParameterError, match="DP runs"):
        prepare_run("x", RunSpec(PIMA, seed=0, epsilon=None, mitigation="dpsgd_f"))
    with pytest.raises(ParameterError, match="takes no parameter"):
        prepare_run("x", spec("dpsgd_f", bogus=1))


def test_noised_gradients_with_unnoised_counts_are_refused():
    base = dict(seed=0, private=True, epochs=1, batch_size=8, lr=0.1, steps=1, sample_rate=0.5)
    for rule in ("dpsgd_f", "global_adapt"):
        with pytest.raises(ParameterError, match="needs their noise multiplier"):
            RunConfig(clip_rule=rule, noise_multiplier=1.0, **base)
        RunConfig(clip_rule=rule, noise_multiplier=1.0, aux_noise_multiplier=2.0, **base)


def test_choose_threshold_maximises_balanced_accuracy():
    rng = np.random.default_rng(3)
    y = (rng.uniform(size=200) < 0.3).astype(int)
    p = np.clip(0.2 * y + rng.uniform(0, 0.6, 200), 0, 1)
    t = choose_threshold(p, y)

    def bal(th):
        pred = p >= th
        return 0.5 * (pred[y == 1].mean() + (~pred[y == 0]).mean())

    best = max(bal(th) for th in np.unique(p))
    assert bal(t) == pytest.approx(best)


def test_heldout_threshold_is_declared_in_the_ledger():
    res = run_single(spec("threshold", holdout=0.25))
    notes = " ".join(res.ledger.not_covered)
    assert "held out from training" in notes
    assert res.data["n_train"] == 614 - round(0.25 * 614)  # the held-out rows never trained
    t = res.stats["threshold"]
    p = res.predictions["p_positive"]
    np.testing.assert_array_equal(res.predictions["y_pred"], (p >= t).astype(int))
    pub = run_single(spec("threshold", value=0.3))
    assert pub.stats["threshold"] == 0.3
    assert any("public" in n for n in pub.ledger.notes)
