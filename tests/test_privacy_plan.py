"""The privacy plan of every run (PRIVACY.md rules 9-12): secret noise unless research mode
is asked for, one mechanism per shared sample, no exact private statistic in an output that
its ledger does not list, the adjacency stated; bounded calibration at any ε."""

from __future__ import annotations

import inspect
import json
import math
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

from imbalanced_dp.cli._main import main
from imbalanced_dp.engines import (
    RELEASABLE_STATS,
    FastEngine,
    OpacusEngine,
    RunConfig,
    TrainJob,
)
from imbalanced_dp.engines import _kernel as K
from imbalanced_dp.engines._rng import _u52_open, inverse_normal_cdf
from imbalanced_dp.estimator import DPMLPClassifier
from imbalanced_dp.exceptions import ParameterError, PrivacyError
from imbalanced_dp.models import architecture
from imbalanced_dp.privacy import (
    ONCE_LAPLACE,
    SHARED_GAUSSIAN,
    PrivacyWarning,
    QuerySpec,
    effective_noise_multiplier,
    epsilon_spent,
    plan_run,
)
from imbalanced_dp.studies import DatasetRef, RunSpec, run_single
from imbalanced_dp.studies._execute import prepare_run

PIMA = DatasetRef(name="pima")


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0.7).astype(np.int64)
    return X, y


# ---------------------------------------------------------------------- rule 9: secret noise


def _ints_in(obj, seen=None) -> set[int]:
    """Every integer reachable from ``obj``'s attributes, lists and dicts."""
    seen = set() if seen is None else seen
    out: set[int] = set()
    if id(obj) in seen:
        return out
    seen.add(id(obj))
    if isinstance(obj, bool):
        return out
    if isinstance(obj, int | np.integer):
        return {int(obj)}
    if isinstance(obj, float) and obj.is_integer() and abs(obj) < 2**63:
        return {int(obj)}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out |= _ints_in(k, seen) | _ints_in(v, seen)
    elif isinstance(obj, list | tuple | set):
        for v in obj:
            out |= _ints_in(v, seen)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        out |= _ints_in(vars(obj), seen)
    return out


def test_a_default_model_cannot_be_replayed_from_anything_it_exposes():
    """PRIVACY.md rule 9. A default DPMLPClassifier keeps no seed or key: refitting with
    every integer the pickled model holds (and its seed_) as random_state never reproduces
    it, and two fits of the same data differ."""
    X, y = _data()
    params = {"epsilon": 1.0, "epochs": 3, "accountant": "rdp", "hidden_layer_sizes": (8,)}
    clf = DPMLPClassifier(**params).fit(X, y)
    clone = pickle.loads(pickle.dumps(clf))
    assert clone.seed_ is None
    assert clone.privacy_ledger_.noise_source == "secret"
    assert "noise_key" not in json.dumps(clone.privacy_ledger_.to_dict())
    assert set(clone.model_.stats) <= set(RELEASABLE_STATS)
    candidates = sorted(c for c in _ints_in(clone) if 0 <= c < 2**32)
    assert candidates, "the model exposes integers (steps, sizes...) to try"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)
        for c in candidates[:40]:
            replay = DPMLPClassifier(**params, random_state=c).fit(X, y)
            assert not np.array_equal(replay.model_.params, clf.model_.params), c
    again = DPMLPClassifier(**params).fit(X, y)
    assert not np.array_equal(again.model_.params, clf.model_.params)


def test_research_mode_is_explicit_reproducible_and_labelled():
    X, y = _data()
    params = {"epsilon": 1.0, "epochs": 3, "accountant": "rdp", "hidden_layer_sizes": (8,)}
    with pytest.warns(PrivacyWarning, match="research mode"):
        a = DPMLPClassifier(**params, random_state=5).fit(X, y)
    b = DPMLPClassifier(**params, random_state=5).fit(X, y)
    np.testing.assert_array_equal(a.model_.params, b.model_.params)
    led = a.privacy_ledger_
    assert led.noise_source == "research"
    assert any("assumes the seed stays secret" in n for n in led.notes)
    assert a.seed_ == 5


def test_the_engine_draws_a_secret_key_and_writes_nothing_back():
    X, y = _data(60)
    arch = architecture(4, (6,))
    cfg = RunConfig(
        seed=1,
        private=True,
        epochs=2,
        batch_size=10,
        lr=0.1,
        steps=12,
        noise_multiplier=1.0,
        sample_rate=1 / 6,
        expected_batch_size=10,
    )
    job = TrainJob(X, y, arch, cfg)
    a, b = FastEngine("float64").train([job, job])
    assert not np.array_equal(a.params, b.params)  # two secret keys
    assert job.config.noise_key is None
    fixed = TrainJob(X, y, arch, RunConfig(**{**vars(cfg), "noise_key": 77}))
    c, d = FastEngine("float64").train([fixed, fixed])
    np.testing.assert_array_equal(c.params, d.params)


def test_privacy_levels_of_one_seed_have_independent_noise():
    """Runs released together (several ε of one seed) use independent noise streams; the
    split and the initialisation stay paired."""
    plans = {
        e: plan_run(
            n=614,
            batch_size=64,
            epochs=2,
            epsilon=e,
            accountant="rdp",
            reproducible=True,
            seed=0,
            setting={"dataset": "pima"},
        )
        for e in (8.0, 2.0, 1.0)
    }
    keys = {p.noise_key for p in plans.values()}
    assert len(keys) == 3 and None not in keys
    # first Poisson batch of each: different samples
    idx = np.zeros(614, np.int64)
    batches = []
    for p in plans.values():
        k = p.noise_key
        b = K.poisson_batch(
            idx, 614, p.sample_rate, np.uint64(k & 0xFFFFFFFF), np.uint64(k >> 32), 0
        )
        batches.append(tuple(idx[:b]))
    assert len(set(batches)) == 3
    # the same plan again gives the same key (reproducible)
    again = plan_run(
        n=614,
        batch_size=64,
        epochs=2,
        epsilon=8.0,
        accountant="rdp",
        reproducible=True,
        seed=0,
        setting={"dataset": "pima"},
    )
    assert again.noise_key == plans[8.0].noise_key
    # studies: the runs at 8, 2, 1 of one seed share split and initialisation seed only
    runs = [
        prepare_run("x", RunSpec(PIMA, seed=3, epsilon=e, epochs=2, reproducible=True))
        for e in (8.0, 2.0)
    ]
    assert runs[0].config.seed == runs[1].config.seed == 3
    assert runs[0].config.noise_key != runs[1].config.noise_key
    np.testing.assert_array_equal(runs[0].split.train_rows, runs[1].split.train_rows)


def test_secret_runs_and_the_cli(capsys):
    """`run` is secret by default: the same command twice gives different models, and
    --reproducible gives the same one twice, labelled research mode."""
    args = ["run", "--dataset", "pima", "--epsilon", "2", "--epochs", "3", "--json"]
    outs = []
    for extra in ([], [], ["--reproducible"], ["--reproducible"]):
        assert main([*args, *extra]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0]["ledger"]["noise_source"] == "secret"
    assert outs[0]["reproducible"] is False
    assert outs[2]["ledger"]["noise_source"] == "research"
    assert outs[2]["reproducible"] is True
    assert any("assumes the seed stays secret" in n for n in outs[2]["ledger"]["notes"])
    assert outs[2]["classes"] == outs[3]["classes"]


def test_opacus_engine_seeds_sampler_and_noise_from_the_key_and_drops_nonfinite():
    pytest.importorskip("opacus")
    X, y = _data(80)
    arch = architecture(4, (6,))
    base = dict(
        seed=2,
        private=True,
        epochs=2,
        batch_size=16,
        lr=0.1,
        steps=10,
        noise_multiplier=1.0,
        sample_rate=0.2,
        expected_batch_size=16,
    )
    eng = OpacusEngine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = eng.train([TrainJob(X, y, arch, RunConfig(**base, noise_key=9))])[0]
        b = eng.train([TrainJob(X, y, arch, RunConfig(**base, noise_key=9))])[0]
        c = eng.train([TrainJob(X, y, arch, RunConfig(**base, noise_key=10))])[0]
        np.testing.assert_array_equal(a.params, b.params)
        assert not np.array_equal(a.params, c.params)
        # a record whose gradient overflows never reaches the sum: the model stays finite
        Xbad = X.copy()
        Xbad[0] = np.inf  # a record whose gradient is not finite
        bad = eng.train(
            [
                TrainJob(
                    Xbad,
                    y,
                    arch,
                    RunConfig(
                        **{
                            **base,
                            "batch_size": 80,
                            "steps": 2,
                            "sample_rate": 1.0,
                            "expected_batch_size": 80,
                        },
                        noise_key=1,
                    ),
                )
            ]
        )[0]
    assert np.all(np.isfinite(bad.params))
    assert bad.stats["nonfinite"] > 0
    from imbalanced_dp.engines._opacus import _generator_seed

    assert _generator_seed(5, "sampling") != _generator_seed(5, "noise")
    assert _generator_seed(5, "noise") != _generator_seed(5 + 1_000_003, "sampling")


def test_open_uniforms_never_reach_zero_or_one():
    top = np.uint64(0xFFFFFFFF)
    zero = np.uint64(0)
    hi = _u52_open(top, top)
    lo = _u52_open(zero, zero)
    assert 0.0 < lo < hi < 1.0
    assert hi == 1.0 - 2.0**-53 and lo == 2.0**-53
    assert math.isfinite(inverse_normal_cdf(hi)) and math.isfinite(inverse_normal_cdf(lo))
    assert inverse_normal_cdf(hi) == pytest.approx(-inverse_normal_cdf(lo), rel=1e-12)
    torch = pytest.importorskip("torch")
    from imbalanced_dp.engines._torch_fast import _u53

    t = torch.tensor([0xFFFFFFFF, 0], dtype=torch.int64)
    u = _u53(t, t, open_=True)
    assert u.tolist() == [hi, lo]


# ---------------------------------------------------------------------- rule 10: one sample


def _pld_epsilon(sigma, q, steps, delta):
    import dp_accounting
    from dp_accounting import pld

    acc = pld.PLDAccountant(value_discretization_interval=1e-4)
    event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
    acc.compose(dp_accounting.SelfComposedDpEvent(event, steps))
    return acc.get_epsilon(delta)


def _rdp_epsilon(sigma, q, steps, delta):
    import dp_accounting

    acc = dp_accounting.rdp.RdpAccountant()
    event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
    acc.compose(dp_accounting.SelfComposedDpEvent(event, steps))
    return acc.get_epsilon(delta)


def test_sigma_eff_is_dp_accountings_own_composition_of_two_gaussians():
    """Two Gaussian queries on one sample are one Gaussian with σ_eff: dp-accounting's
    composition of the two agrees with σ_eff to its discretisation."""
    import dp_accounting
    from dp_accounting import pld

    for sg, sa in ((2.0, 3.0), (1.0, 1.0), (4.0, 0.8)):
        both = pld.PLDAccountant(value_discretization_interval=1e-4)
        both.compose(
            dp_accounting.ComposedDpEvent(
                [dp_accounting.GaussianDpEvent(sg), dp_accounting.GaussianDpEvent(sa)]
            )
        )
        one = pld.PLDAccountant(value_discretization_interval=1e-4)
        one.compose(dp_accounting.GaussianDpEvent(effective_noise_multiplier([sg, sa])))
        assert both.get_epsilon(1e-5) == pytest.approx(one.get_epsilon(1e-5), rel=1e-6)


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
@pytest.mark.parametrize("epochs", [1, 20])
@pytest.mark.parametrize("aux_share", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("eps", [1.0, 8.0])
def test_shared_batch_queries_stay_within_the_target(accountant, epochs, aux_share, eps):
    """ε of gradients + per-step counts, recomputed with dp-accounting (PLD for PRV plans,
    RDP for RDP plans) from σ_eff of the two noise multipliers the engine uses."""
    q = QuerySpec("counts", "per-step counts", SHARED_GAUSSIAN, "L2 1", aux_share)
    plan = plan_run(
        n=614, batch_size=64, epochs=epochs, epsilon=eps, accountant=accountant, queries=[q]
    )
    sg, sa = plan.noise_multiplier, plan.query("counts").noise_multiplier
    s_eff = effective_noise_multiplier([sg, sa])
    assert s_eff == pytest.approx(plan.effective_noise_multiplier, rel=1e-12)
    ref = (_pld_epsilon if accountant == "prv" else _rdp_epsilon)(
        s_eff, plan.sample_rate, plan.steps, plan.delta
    )
    assert plan.epsilon_spent <= eps
    # PLD is PRV's independent twin (both numerical, within ~1e-3); dp-accounting's RDP uses
    # another grid of orders and drops fractional orders it cannot evaluate at small σ, so
    # on a 10-step run at ε = 8 it is up to 3e-4 looser than Opacus's RDP
    assert ref <= eps * (1 + 1e-3)
    assert plan.epsilon_spent >= eps - 0.011


@pytest.mark.parametrize("mitigation", ["dpsgd_f", "global_adapt"])
def test_acceptance_mitigations_at_eps_8_20_epochs_aux_share_half(mitigation):
    """The issue's case: PIMA, ε = 8, 20 epochs, aux_share 0.5 — recomputed independently
    with σ_eff, at most 8 (it used to spend 9.7)."""
    spec = RunSpec(
        PIMA,
        seed=0,
        epsilon=8.0,
        epochs=20,
        mitigation=mitigation,
        mitigation_params=(("aux_share", 0.5),),
    )
    led = prepare_run("x", spec).ledger
    sg, sa = (c["noise_multiplier"] for c in led.components)
    s_eff = effective_noise_multiplier([sg, sa])
    assert _pld_epsilon(s_eff, led.sample_rate, led.steps, led.delta) <= 8.0
    assert led.epsilon_spent <= 8.0
    # the counts' noise is what the engine gets
    assert prepare_run("x", spec).config.aux_noise_multiplier == sa


def test_laplace_queries_compose_by_basic_composition():
    q = QuerySpec("counts", "class counts", ONCE_LAPLACE, "L1 1", 0.05)
    plan = plan_run(n=614, batch_size=64, epochs=5, epsilon=2.0, accountant="rdp", queries=[q])
    assert plan.query("counts").epsilon == pytest.approx(0.1)
    gauss = epsilon_spent(
        noise_multiplier=plan.noise_multiplier,
        sample_rate=plan.sample_rate,
        steps=plan.steps,
        delta=plan.delta,
        accountant="rdp",
    )
    assert plan.epsilon_spent == pytest.approx(gauss + 0.1)
    assert plan.epsilon_spent <= 2.0
    assert gauss <= 1.9


def test_undeclared_or_oversized_queries_are_refused():
    with pytest.raises(ParameterError, match="no private query"):
        plan_run(n=614, batch_size=64, epochs=1, epsilon=2.0, accountant="rdp").query("counts")
    big = [
        QuerySpec("a", "a", SHARED_GAUSSIAN, "L2 1", 0.6),
        QuerySpec("b", "b", SHARED_GAUSSIAN, "L2 1", 0.5),
    ]
    with pytest.raises(ParameterError, match="sum below 1"):
        plan_run(n=614, batch_size=64, epochs=1, epsilon=2.0, accountant="rdp", queries=big)


# ---------------------------------------------------------------------- rule 11: outputs

#: How each field of `run --json` of a DP run is covered: a public setting of the run, an
#: output of a mechanism, a test-set statistic (used in the clear, SPLIT_NOTE), the ledger
#: itself, or listed in the ledger's not_covered (the substring that must appear there).
RUN_JSON_FIELDS = {
    "run_id": "setting",
    "dataset": "setting",
    "minority_fraction": "listed:minority share they give",
    "privacy": "setting",
    "epsilon_target": "setting",
    "epsilon_spent": "ledger",
    "delta": "setting",
    "noise_multiplier": "ledger",
    "sample_rate": "listed:number of training rows",
    "steps": "setting",
    "accountant": "setting",
    "engine": "setting",
    "mitigation": "setting",
    "seed": "setting",
    "epochs": "setting",
    "batch_size": "setting",
    "lr": "setting",
    "clip": "setting",
    "accuracy": "test",
    "balanced_accuracy": "test",
    "classes": "test",
    "train_class_counts": "listed:class counts of the training split",
    "test_class_counts": "test",
    "ledger": "ledger",
    "seconds": "setting",
    "reproducible": "setting",
    "scaling": "setting",
}


@pytest.mark.parametrize("mitigation", ["none", "class_weighted", "dpsgd_f"])
def test_every_field_of_run_json_is_noised_public_or_listed(capsys, mitigation):
    code = main(
        [
            "run",
            "--dataset",
            "pima",
            "--epsilon",
            "2",
            "--epochs",
            "2",
            "--mitigation",
            mitigation,
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == set(RUN_JSON_FIELDS), "a new field must be classified here"
    not_covered = " ".join(out["ledger"]["not_covered"])
    n0, n1 = out["train_class_counts"]
    for field, how in RUN_JSON_FIELDS.items():
        if how.startswith("listed:"):
            assert how.removeprefix("listed:") in not_covered, field
    assert f"({n0} / {n1})" in not_covered  # the very numbers are named
    # released noisy statistics are in the ledger's components, never the exact ones
    for comp in out["ledger"]["components"]:
        if "noisy_counts" in comp:
            assert comp["noisy_counts"] != [n0, n1]
    text = json.dumps(out)
    for forbidden in ('"seen"', '"clipped"', '"nonfinite"', '"empty_steps"', '"max_batch"'):
        assert forbidden not in text


def test_stored_stats_of_dp_runs_are_only_releasable_ones(tmp_store):
    from imbalanced_dp.studies import run_runs

    specs = [
        RunSpec(PIMA, seed=0, epsilon=e, epochs=2, accountant="rdp", mitigation=m)
        for e, m in ((None, "none"), (2.0, "none"), (2.0, "dpsgd_f"))
    ]
    run_runs(specs, tmp_store, workers=1, quiet=True)
    runs = tmp_store.runs_frame()
    for _, r in runs.iterrows():
        stats = json.loads(r["stats_json"])
        if r["privacy"] == "dp":
            assert set(stats) <= set(RELEASABLE_STATS), stats
            led = json.loads(r["ledger_json"])
            assert any("class counts of the training split" in x for x in led["not_covered"])
        else:
            assert "seen" in stats  # without privacy everything may be shown


# ---------------------------------------------------------------------- rule 12: adjacency


def test_the_plan_sees_only_public_inputs_and_says_the_adjacency():
    """The plan's inputs are public numbers (no data argument): built for the public n it is
    the same object whether the data hold a record or not, and the engine then runs the
    dataset minus one record with the same q and divisor."""
    sig = inspect.signature(plan_run)
    assert not {"X", "y", "data", "dataset"} & set(sig.parameters)
    a = plan_run(n=614, batch_size=64, epochs=3, epsilon=2.0, accountant="rdp")
    b = plan_run(n=614, batch_size=64, epochs=3, epsilon=2.0, accountant="rdp")
    assert a == b
    led = a.ledger()
    assert led.adjacency == "add or remove one record; n public"
    assert any("n = 614, is treated as public" in n for n in led.notes)
    assert any("(n = 614) is released in the clear" in n for n in led.not_covered)
    X, y = _data(614)
    arch = architecture(4, (6,))
    cfg = RunConfig.from_plan(a, seed=0, lr=0.1)
    full, minus = FastEngine("float64").train(
        [TrainJob(X, y, arch, cfg), TrainJob(X[1:], y[1:], arch, cfg)]
    )
    assert np.all(np.isfinite(full.params)) and np.all(np.isfinite(minus.params))
    assert cfg.expected_batch_size == a.expected_batch_size == 61  # the same divisor


# ---------------------------------------------------------------------- huge ε, bounded memory


@pytest.mark.parametrize("accountant", ["prv", "rdp"])
@pytest.mark.parametrize("epsilon", ["500", "1e9", "1e12"])
def test_a_huge_epsilon_is_refused_in_bounded_memory(accountant, epsilon, tmp_path):
    """`run --epsilon 1e12` used to grow to 24 GB inside the PRV accountant. Under a 2 GB
    address-space limit it must end with exit 2 and one line (RDP reaches ε = 500 and
    trains; PRV refuses it: its composition would need gigabytes)."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))\n"
        "from imbalanced_dp.cli._main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "run",
            "--dataset",
            "pima",
            "--epsilon",
            epsilon,
            "--epochs",
            "20",
            "--accountant",
            accountant,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    if accountant == "rdp" and epsilon == "500":
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["epsilon_spent"] <= 500
        return
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "too large" in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_calibration_refuses_before_spending_memory():
    from imbalanced_dp.privacy import PRV_MAX_POINTS, calibrate_noise_multiplier, prv_points

    assert prv_points(0.5, 0.1, 5000, 1e-4) > PRV_MAX_POINTS  # what ε ≈ 400 would need
    with pytest.raises(PrivacyError, match="too large"):
        calibrate_noise_multiplier(
            target_epsilon=400, delta=1e-4, sample_rate=0.1, steps=5000, accountant="prv"
        )
    with pytest.raises(PrivacyError, match="too large"):
        calibrate_noise_multiplier(
            target_epsilon=1e12, delta=1e-4, sample_rate=0.1, steps=5000, accountant="rdp"
        )


def test_run_single_is_secret_by_default():
    spec = RunSpec(PIMA, seed=0, epsilon=2.0, epochs=2, accountant="rdp")
    a, b = run_single(spec), run_single(spec)
    assert a.ledger.noise_source == "secret"
    assert a.run_id == b.run_id
    assert a.predictions["p_positive"].tolist() != b.predictions["p_positive"].tolist()
