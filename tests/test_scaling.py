"""Feature scaling as an explicit, accounted choice (issue 13): the DP scaler's mechanism
against its closed form and an accountant, the total ε of every scaling, raw values for
``none``, the estimator's transformer and pipeline total, bad input, and the sensitivity
analysis on a tiny grid."""

from __future__ import annotations

import json
import math
import warnings
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from imbalanced_dp.data import bundled_bounds, load_dataset
from imbalanced_dp.engines import FastEngine
from imbalanced_dp.estimator import (
    DPMLPClassifier,
    DPStandardScaler,
    pipeline_privacy,
)
from imbalanced_dp.exceptions import DataError, ParameterError
from imbalanced_dp.privacy import PrivacyWarning, epsilon_spent
from imbalanced_dp.privacy._scaler import VARIANCE_FLOOR, dp_standard_scaler
from imbalanced_dp.studies import DatasetRef, RunSpec, run_single
from imbalanced_dp.studies import _execute as execute
from imbalanced_dp.studies._execute import SCALER_QUERY, prepare_run
from test_cli import assert_bad_input, cli, listing

PIMA = DatasetRef(name="pima")


# ---------------------------------------------------------------------- the mechanism


def test_dp_scaler_noise_has_the_closed_form_scale():
    """Laplace noise of scale b = 2d/ε on each released sum: its variance is 2b². Over 4000
    releases the sample variance of (noisy − true) is within 15 % of 2b² (the estimator's
    relative standard error is sqrt(5/4000) ≈ 3.5 % for Laplace noise, so 15 % is > 4 σ),
    and the mean within 5 standard errors of 0."""
    rng = np.random.default_rng(12345)
    d, n, eps = 3, 500, 0.7
    lower, upper = np.zeros(d), np.array([10.0, 4.0, 1.0])
    X = rng.uniform(-1.0, 12.0, size=(n, d))  # some rows outside the bounds: clipped
    z = (np.clip(X, lower, upper) - (lower + upper) / 2) / ((upper - lower) / 2)
    true_s1, true_s2 = z.sum(axis=0), (z * z).sum(axis=0)
    b = 2 * d / eps
    draws1, draws2 = [], []
    for _ in range(4000):
        _, _, rel = dp_standard_scaler(X, lower, upper, epsilon=eps, n=n, rng=rng)
        assert rel["laplace_scale"] == pytest.approx(b, rel=1e-15)
        draws1.append(np.asarray(rel["noisy_sums"]) - true_s1)
        draws2.append(np.asarray(rel["noisy_sums_of_squares"]) - true_s2)
    for noise in (np.array(draws1), np.array(draws2)):
        var = noise.var(axis=0, ddof=1)
        assert np.all(np.abs(var / (2 * b * b) - 1) < 0.15), var / (2 * b * b)
        se = math.sqrt(2 * b * b / len(noise))
        assert np.all(np.abs(noise.mean(axis=0)) < 5 * se)


def test_dp_scaler_statistics_follow_from_the_noisy_sums():
    """center and scale are post-processing of the released sums (never of the raw rows):
    recomputed from the sums, and the variance floor applies."""
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 10, size=(300, 2))
    X[:, 1] = 5.0  # a constant column: its variance is floored, never zero
    lower, upper = np.zeros(2), np.full(2, 10.0)
    center, scale, rel = dp_standard_scaler(X, lower, upper, epsilon=50.0, n=300, rng=rng)
    mu = np.clip(np.asarray(rel["noisy_sums"]) / 300, -1, 1)
    var = np.clip(np.asarray(rel["noisy_sums_of_squares"]) / 300 - mu**2, VARIANCE_FLOOR, 1)
    np.testing.assert_allclose(center, 5 + 5 * mu, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scale, 5 * np.sqrt(var), rtol=0, atol=1e-12)
    assert scale[1] >= 5 * math.sqrt(VARIANCE_FLOOR) - 1e-12
    # at a large ε the statistics are close to the exact ones
    assert abs(center[0] - X[:, 0].mean()) < 0.2 and abs(scale[0] / X[:, 0].std() - 1) < 0.1


def test_dp_scaler_epsilon_is_the_laplace_mechanisms_by_an_accountant():
    """dp-accounting's PLD of a Laplace mechanism with the scaler's noise scale (in units of
    its L1 sensitivity 2d) gives the share of ε the plan assigned."""
    import dp_accounting
    from dp_accounting import pld

    spec = RunSpec(PIMA, seed=0, epsilon=2.0, epochs=5, scaling="dp_standard", reproducible=True)
    led = prepare_run("x", spec).ledger
    (comp,) = [c for c in led.components if c["query"] == SCALER_QUERY]
    d = 8
    assert comp["laplace_scale"] == pytest.approx(2 * d / comp["epsilon"], rel=1e-12)
    acc = pld.PLDAccountant(value_discretization_interval=1e-4)
    acc.compose(dp_accounting.LaplaceDpEvent(comp["laplace_scale"] / (2 * d)))
    # the PLD truncates its tails, so ask at a negligible δ: the Laplace mechanism's ε(δ)
    # falls below its pure ε only by O(δ)
    assert acc.get_epsilon(1e-12) == pytest.approx(comp["epsilon"], abs=2e-3)
    assert comp["epsilon"] == pytest.approx(0.1 * 2.0)


@pytest.mark.parametrize("accountant", ["pld", "prv", "rdp"])
@pytest.mark.parametrize("scaling", ["none", "standard", "minmax", "public", "dp_standard"])
def test_total_epsilon_stays_within_the_target_for_every_scaling(accountant, scaling):
    """Each scaling's run spends at most its target; dp_standard's total is its gradients'
    ε (recomputed by the accountant from σ, q, steps) plus the scaler's, by basic
    composition; the ledger lists a scaler fitted in the clear, and only such a one."""
    eps = 2.0
    spec = RunSpec(
        PIMA, seed=0, epsilon=eps, epochs=20, accountant=accountant, scaling=scaling,
        reproducible=True,
    )  # fmt: skip
    led = prepare_run("x", spec).ledger
    assert led.epsilon_spent <= eps
    gauss = epsilon_spent(
        noise_multiplier=led.noise_multiplier,
        sample_rate=led.sample_rate,
        steps=led.steps,
        delta=led.delta,
        accountant=accountant,
    )
    scaler = [c for c in led.components if c["query"] == SCALER_QUERY]
    if scaling == "dp_standard":
        assert led.epsilon_spent == pytest.approx(gauss + scaler[0]["epsilon"], rel=1e-6)
        assert gauss <= eps * (1 - 0.1) + 1e-9
    else:
        assert scaler == []
        assert led.epsilon_spent == pytest.approx(gauss, rel=1e-6)
    in_clear = [e for e in led.not_covered if "scaling" in e or "standardisation" in e]
    assert bool(in_clear) == (scaling in ("standard", "minmax")), led.not_covered


def test_the_cli_run_with_dp_standard_is_within_epsilon_and_names_no_scaler(capsys, tmp_path):
    """The acceptance command: --scaling dp_standard --json spends ≤ 2 for the whole
    pipeline and no longer lists the scaler as uncovered; none and standard are recorded."""
    code, out, err = cli(
        capsys, "run", "--dataset", "pima", "--epsilon", "2", "--scaling", "dp_standard",
        "--epochs", "10", "--json",
    )  # fmt: skip
    assert code == 0, err
    got = json.loads(out)
    led = got["ledger"]
    assert got["scaling"] == "dp_standard"
    assert led["epsilon_spent"] <= 2.0
    assert not any("scal" in e or "standardis" in e for e in led["not_covered"])
    assert [c["query"] for c in led["components"]] == ["gradients", SCALER_QUERY]
    for kind in ("none", "standard"):
        code, out, err = cli(
            capsys, "run", "--dataset", "pima", "--epsilon", "2", "--scaling", kind,
            "--epochs", "5", "--json",
        )  # fmt: skip
        assert code == 0, err
        assert json.loads(out)["scaling"] == kind


# ---------------------------------------------------------------------- what the model sees


class _SpyEngine(FastEngine):
    jobs: ClassVar[list] = []

    def train(self, jobs, **kw):
        type(self).jobs.extend(jobs)
        return super().train(jobs, **kw)


def test_scaling_none_trains_on_the_csv_rows_as_they_are(tmp_path, monkeypatch, make_table):
    """The first layer's input of a ``none`` run is the CSV's rows, value for value."""
    table = make_table(60, 30)
    table["f1"] = table["f1"] * 100 + 1000  # far from standardised
    path = tmp_path / "raw.csv"
    table.to_csv(path, index=False)
    _SpyEngine.jobs = []
    monkeypatch.setattr(execute, "get_engine", lambda name: _SpyEngine())
    ref = DatasetRef(csv=str(path), target="y")
    res = run_single(RunSpec(ref, seed=3, epsilon=None, epochs=2, batch_size=8, scaling="none"))
    assert res.status == "done"
    (job,) = _SpyEngine.jobs
    csv = pd.read_csv(path)[["f1", "f2", "f3"]].to_numpy(dtype=np.float64)
    rows = {tuple(r) for r in csv}
    assert job.X.shape[1] == 3 and len(job.X) == 72
    assert all(tuple(r) in rows for r in job.X)  # exact floats, not standardised ones
    assert job.X[:, 0].mean() > 900
    # and standard does standardise the same rows
    _SpyEngine.jobs = []
    run_single(RunSpec(ref, seed=3, epsilon=None, epochs=2, batch_size=8))
    (job,) = _SpyEngine.jobs
    np.testing.assert_allclose(job.X.mean(axis=0), 0, atol=1e-12)


def test_public_bounds_map_columns_to_the_unit_interval():
    ds = load_dataset("pima")
    bounds = bundled_bounds("pima", ds.feature_names)
    spec = RunSpec(PIMA, seed=0, epsilon=None, epochs=1, scaling="public")
    split = prepare_run("x", spec).split
    X = ds.X[split.train_rows]
    np.testing.assert_allclose(
        split.X_train, (X - bounds.lower) / (bounds.upper - bounds.lower), atol=1e-12
    )
    assert split.X_train.min() >= 0 and split.X_train.max() <= 1


# ---------------------------------------------------------------------- the estimator


@parametrize_with_checks([DPStandardScaler(epsilon=1.0, bounds=(-5.0, 5.0))])
def test_dp_standard_scaler_is_a_scikit_learn_transformer(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyWarning)  # checks set random_state=0
        check(estimator)


def test_dp_standard_scaler_matches_the_mechanism_and_clips_new_rows():
    """The transformer is the study's mechanism: the same released statistics for the same
    noise, new rows clipped to the bounds before scaling, and a ledger of pure ε."""
    rng = np.random.default_rng(4)
    X = rng.uniform(0, 10, size=(400, 2))
    with pytest.warns(PrivacyWarning, match="research mode"):
        sc = DPStandardScaler(epsilon=0.5, bounds=[(0, 10), (0, 20)], random_state=3).fit(X)
    center, scale, _ = dp_standard_scaler(
        X,
        np.array([0.0, 0.0]),
        np.array([10.0, 20.0]),
        epsilon=0.5,
        n=400,
        rng=np.random.default_rng([3, 0x5CA1E]),
    )
    np.testing.assert_array_equal(sc.mean_, center)
    np.testing.assert_array_equal(sc.scale_, scale)
    out = sc.transform(np.array([[-50.0, 100.0]]))
    np.testing.assert_allclose(out, [[(0 - center[0]) / scale[0], (20 - center[1]) / scale[1]]])
    led = sc.privacy_ledger_
    assert (sc.epsilon_, sc.delta_) == (0.5, 0.0)
    assert led.noise_source == "research" and led.components[0]["laplace_scale"] == 8.0
    # secret by default: two fits differ, nothing seeds them
    a = DPStandardScaler(epsilon=0.5, bounds=(0, 20)).fit(X).mean_
    b = DPStandardScaler(epsilon=0.5, bounds=(0, 20)).fit(X).mean_
    assert not np.array_equal(a, b)


def test_dp_standard_scaler_takes_bounds_by_name_and_refuses_bad_ones():
    ds = load_dataset("pima")
    frame = pd.DataFrame(ds.X, columns=ds.feature_names)
    bounds = bundled_bounds("pima", ds.feature_names)
    by_name = {c: [lo, hi] for c, lo, hi in zip(bounds.columns, bounds.lower, bounds.upper)}
    shuffled = dict(reversed(list(by_name.items())))
    sc = DPStandardScaler(bounds=shuffled).fit(frame)
    np.testing.assert_array_equal(sc.lower_, bounds.lower)
    np.testing.assert_array_equal(DPStandardScaler(bounds=bounds).fit(ds.X).upper_, bounds.upper)
    bad = [
        (None, ParameterError, "needs public bounds"),
        ({**by_name, "Glucose": [5, 5]}, DataError, "lower 5 must be below upper 5"),
        ({k: v for k, v in by_name.items() if k != "Age"}, DataError, "miss column 'Age'"),
        ({**by_name, "BMI": ["a", 3]}, DataError, "must be a number"),
        ([(0, 1)] * 3, DataError, "3 pairs for 8 columns"),
    ]
    for b, err, msg in bad:
        with pytest.raises(err, match=msg):
            DPStandardScaler(bounds=b).fit(frame)
    with pytest.raises(ParameterError, match="epsilon"):
        DPStandardScaler(epsilon=0, bounds=bounds).fit(ds.X)


def test_pipeline_privacy_sums_the_steps_and_lists_what_is_in_the_clear():
    ds = load_dataset("pima")
    bounds = bundled_bounds("pima", ds.feature_names)
    clf = {"epochs": 3, "accountant": "rdp"}
    private = make_pipeline(
        DPStandardScaler(epsilon=0.3, bounds=bounds), DPMLPClassifier(epsilon=1.7, **clf)
    ).fit(ds.X, ds.y)
    total = pipeline_privacy(private)
    eps_clf = private[-1].epsilon_
    assert total.epsilon == pytest.approx(0.3 + eps_clf) and total.epsilon <= 2.0
    assert total.delta == private[-1].delta_
    assert [s["epsilon"] for s in total.steps] == [0.3, eps_clf]
    assert not any("StandardScaler" in e or "preprocessing" in e for e in total.not_covered)
    # a scaler fitted in the clear makes no claim at all
    clear = make_pipeline(StandardScaler(), DPMLPClassifier(epsilon=2.0, **clf)).fit(ds.X, ds.y)
    total = pipeline_privacy(clear)
    assert total.epsilon == math.inf
    assert any("standardscaler (StandardScaler)" in e for e in total.not_covered)
    # a non-private classifier likewise
    assert pipeline_privacy(DPMLPClassifier(epsilon=None, epochs=1).fit(ds.X, ds.y)).epsilon == (
        math.inf
    )


# ---------------------------------------------------------------------- bad input


@pytest.fixture
def pima_bounds():
    ds = load_dataset("pima")
    b = bundled_bounds("pima", ds.feature_names)
    return {c: [float(lo), float(hi)] for c, lo, hi in zip(b.columns, b.lower, b.upper)}


def _bad_cases(tmp_path, pima_bounds, good_csv):
    def write(name, obj):
        p = tmp_path / name
        p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
        return p

    missing = {k: v for k, v in pima_bounds.items() if k != "Insulin"}
    toml_with_text_glucose = "".join(
        f"{k} = {['low', 400] if k == 'Glucose' else v}\n" for k, v in pima_bounds.items()
    )
    return [
        # public scaling of a CSV with no bounds to fall back on
        (["--csv", good_csv, "--target", "y", "--scaling", "public"], ["--bounds FILE"]),
        (["--dataset", "pima", "--scaling", "public", "--bounds", write("m.json", missing)],
         ["miss column 'Insulin'"]),
        (["--dataset", "pima", "--scaling", "dp_standard", "--bounds",
          write("e.json", {**pima_bounds, "BMI": [80, 10]})], ["'BMI'", "must be below"]),
        (["--dataset", "pima", "--scaling", "dp_standard", "--bounds",
          write("n.toml", toml_with_text_glucose)], ["'Glucose'", "must be a number"]),
        (["--dataset", "pima", "--scaling", "dp_standard", "--bounds",
          write("s.json", {**pima_bounds, "Age": ["21", 100]})], ["'Age'", "must be a number"]),
        (["--dataset", "pima", "--scaling", "dp_standard", "--scaling-share", "1"],
         ["--scaling-share", "(0, 1)"]),
        (["--dataset", "pima", "--scaling", "dp_standard", "--scaling-share", "0"],
         ["--scaling-share", "(0, 1)"]),
        (["--dataset", "pima", "--scaling", "zscore"], ["scaling must be one of"]),
        (["--dataset", "pima", "--scaling", "standard", "--bounds",
          write("b.json", pima_bounds)], ["--bounds is for"]),
    ]  # fmt: skip


def test_bad_scaling_input_is_one_line_exit_2_and_writes_nothing(
    capsys, tmp_path, workdir, pima_bounds, good_csv
):
    for args, fragments in _bad_cases(tmp_path, pima_bounds, good_csv):
        model = workdir / "model.skops"
        code, out, err = cli(
            capsys, "run", *args, "--epsilon", "2", "--epochs", "1", "--save", model
        )
        assert_bad_input(code, out, err, *fragments)
        store = workdir / "s.sqlite"
        code, out, err = cli(
            capsys, "study", "run", "--store", store, *_study_args(args), "--seeds", "1",
            "--epochs", "1", "-q",
        )  # fmt: skip
        if code != 2:  # every case but the CSV one is also a study option
            raise AssertionError((args, code, err))
        assert err.startswith("imbalanced-dp: error: ") and len(err.splitlines()) == 1, err
        assert listing(workdir) == set(), (args, listing(workdir))


def _study_args(args: list) -> list:
    out = []
    for a in args:
        out.append({"--scaling": "--scaling", "--dataset": "--datasets"}.get(a, a))
    return out


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty current folder, to check that a refused command writes nothing."""
    d = tmp_path / "cwd"
    d.mkdir()
    monkeypatch.chdir(d)
    return d


# ---------------------------------------------------------------------- the sensitivity analysis


def test_sensitivity_on_a_tiny_grid_gives_one_verdict_per_claim_per_choice(tmp_store, tmp_path):
    """The sensitivity preset's shape on a tiny grid: every claim gets a verdict under every
    scaling, in the report's table, verdicts_by_scaling.csv, findings.md and claims.csv;
    dp_standard has no non-private runs of its own and borrows standard's."""
    from imbalanced_dp.reports import VERDICTS, build_report
    from imbalanced_dp.studies import preset, run_runs

    spec = preset("sensitivity")
    spec.privacy = [None, 2.0]
    spec.seeds = [0, 1, 2]
    spec.epochs = 2
    runs = spec.expand()
    scalings = ["none", "standard", "minmax", "dp_standard"]
    assert sorted({r.scaling for r in runs}) == sorted(scalings)
    assert not any(r.scaling == "dp_standard" and not r.private for r in runs)
    assert len(runs) == 2 * 3 * (4 * 2 - 1)
    run_runs(runs, tmp_store, study="sensitivity", study_spec=spec.to_dict(), workers=1, quiet=True)
    out = tmp_path / "report"
    build_report(tmp_store, out)
    table = pd.read_csv(out / "tables" / "verdicts_by_scaling.csv")
    assert table["claim"].tolist() == [1, 2, 3, 4]
    assert list(table.columns) == ["claim", "statement", *scalings]
    assert set(table[scalings].to_numpy().ravel()) <= set(VERDICTS)
    md = (out / "findings.md").read_text()
    assert "## What the study did not say: the feature scaling" in md
    assert md.count("| 1 |") == 1 and "With minmax, runs that predict no minority" in md
    html = (out / "report.html").read_text()
    assert "What the study did not say" in html and "privacy_utility_by_scaling" in html
    claims = pd.read_csv(out / "claims.csv")
    assert set(claims["scaling"]) == set(scalings)
    for s in scalings:
        assert (out / "tables" / f"table4_scaling-{s}.csv").exists()
