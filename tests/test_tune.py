"""``imbalanced-dp tune`` (issue 14): the private search's rows (trials train on some
training rows, are scored on the others, never see the test rows), its ledger recomputed
independently, what it releases, the command's JSON and saved model, and every bad input
(exit code 2, one line, nothing written)."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import dp_accounting
import numpy as np
import pandas as pd
import pytest
from dp_accounting.rdp.rdp_privacy_accountant import compute_delta, compute_epsilon
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

from imbalanced_dp.cli._main import main
from imbalanced_dp.data import Dataset, FittedScaler, load_dataset, prepare_split
from imbalanced_dp.exceptions import SpecError
from imbalanced_dp.privacy import SECRET_NOISE
from imbalanced_dp.studies import DatasetRef
from imbalanced_dp.tuning import (
    OBJECTIVES,
    SECRET_TRIALS_NOTE,
    SearchSettings,
    SearchSpace,
    _search,
    load_space,
    objective_value,
    parse_dimension,
    private_search,
)

logging.getLogger("absl").setLevel(logging.ERROR)
PROG = "imbalanced-dp"
#: A small space: fast trials (logistic model, few epochs) that still vary what decides
#: their privacy (batch size, epochs, a mitigation with one-shot counts).
FAST = {
    "lr": [0.05, 0.2],
    "batch_size": [32, 64],
    "epochs": [3, 6],
    "layers": [[]],
    "mitigation": ["none", "class_weighted"],
    "scaling": ["none"],
}
FAST_FLAGS = ["--epochs", "5,10", "--layers", "none", "--batch-size", "32,64", "--trials", "4"]


# ---------------------------------------------------------------------- the objective


@pytest.mark.parametrize("objective", list(OBJECTIVES))
def test_objective_is_sklearns_on_exact_counts(objective):
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(20, 200))
        y = (rng.random(n) < rng.uniform(0.1, 0.5)).astype(int)
        y[:2] = [0, 1]  # both classes present
        pred = (rng.random(n) < rng.uniform(0.05, 0.95)).astype(int)
        tp = int(np.sum((y == 1) & (pred == 1)))
        fn = int(np.sum((y == 1) & (pred == 0)))
        tn = int(np.sum((y == 0) & (pred == 0)))
        fp = int(np.sum((y == 0) & (pred == 1)))
        rec1 = recall_score(y, pred, pos_label=1)
        rec0 = recall_score(y, pred, pos_label=0)
        want = {
            "balanced_accuracy": balanced_accuracy_score(y, pred),
            "minority_recall": rec1,
            "f1": f1_score(y, pred, pos_label=1, zero_division=0.0),
            "g_mean": math.sqrt(rec1 * rec0),
        }[objective]
        assert objective_value(objective, tp, fn, tn, fp) == pytest.approx(want, abs=1e-12)


def test_objective_of_noisy_counts_is_clamped_and_bounded():
    """Noisy counts may be negative: each is taken as at least 0 and every ratio stays in
    [0, 1] (post-processing of the released counts)."""
    rng = np.random.default_rng()
    for objective in OBJECTIVES:
        for counts in rng.normal(3.0, 10.0, size=(200, 4)):
            v = objective_value(objective, *counts)
            assert 0.0 <= v <= 1.0 and math.isfinite(v)
    assert objective_value("minority_recall", -3.0, -2.0, 5.0, 1.0) == 0.0


# ---------------------------------------------------------------------- the space


def test_parse_dimension_reads_the_flags():
    assert parse_dimension("layers", "preset/16/32,16/none") == ["preset", [16], [32, 16], []]
    assert parse_dimension("lr", "0.01, 0.1") == [0.01, 0.1]
    assert parse_dimension("batch_size", "32,64") == [32, 64]
    assert parse_dimension("threshold", "argmax,prior,0.3") == ["argmax", "prior", 0.3]
    assert parse_dimension("lr", "") == [] and parse_dimension("layers", "") == []


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"lr": []}, "search space 'lr'.*empty"),
        ({"batch_size": [0]}, "search space 'batch_size'"),
        ({"layers": ["wide"]}, "search space 'layers'"),
        ({"mitigation": ["oversample"]}, "oversampling is refused"),
        ({"mitigation": ["threshold"]}, "its own dimension"),
        ({"threshold": [1.5]}, "search space 'threshold'"),
        ({"scaling": ["robust"]}, "search space 'scaling'"),
        ({"learning_rate": [0.1]}, "unknown search space key 'learning_rate'"),
    ],
)
def test_a_bad_space_is_refused(values, match):
    with pytest.raises(SpecError, match=match):
        SearchSpace.from_dict(values)


def test_space_from_toml_and_its_check(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text('lr = [0.05, 0.2]\nlayers = ["preset", [16], []]\nbatch_size = [64, 512]\n')
    space = SearchSpace.from_dict(load_space(f))
    assert space.lr == (0.05, 0.2) and space.layers == ("preset", (16,), ())
    assert space.epochs == tuple(SearchSpace.default().epochs)  # the rest from the default
    assert space.check(n_rows=300, has_bounds=True).batch_size == (64,)  # 512 > 300 rows
    with pytest.raises(SpecError, match="every batch size"):
        space.check(n_rows=50, has_bounds=True)
    with pytest.raises(SpecError, match="needs public bounds"):
        space.with_values(scaling=["dp_standard"]).check(n_rows=300, has_bounds=False)
    (tmp_path / "bad.toml").write_text("lr = [0.1\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_space(tmp_path / "bad.toml")
    with pytest.raises(SpecError, match="no such file"):
        load_space(tmp_path / "missing.toml")


def test_a_trial_draws_every_dimension_uniformly():
    """3 000 draws: each value's count within 6 standard deviations of uniform (fails
    wrongly with probability ~1e-8 per value, whatever the generator's seed)."""
    space = SearchSpace.default().with_values(layers=["preset", []])
    rng = np.random.default_rng()
    n = 3_000
    draws = [space.sample(rng, (20, 10, 10)) for _ in range(n)]
    for dim in ("lr", "batch_size", "epochs", "clip", "mitigation", "threshold", "scaling"):
        values = getattr(space, dim)
        p = 1 / len(values)
        for v in values:
            count = sum(getattr(c, dim) == v for c in draws)
            assert abs(count - n * p) <= 6 * math.sqrt(n * p * (1 - p)), (dim, v, count)
    # the layers' "preset" resolves to the preset widths
    assert {c.layers for c in draws} == {(20, 10, 10), ()}


# ---------------------------------------------------------------------- the search's rows

N_ROWS, N_TEST = 500, 100


def _synthetic(poison_test: bool = True) -> tuple[Dataset, np.ndarray]:
    """500 rows, 4 features and a last column that is the row's id / 1000 (exact in
    float64, so every array the search reads names its rows); 30 % positives. The last 100
    rows play the test rows: their features are NaN, so reading them anywhere shows."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(N_ROWS, 4))
    y = (rng.random(N_ROWS) < 1 / (1 + np.exp(-(X[:, 0] + X[:, 1] - 1.2)))).astype(int)
    X = np.column_stack([X, np.arange(N_ROWS) / 1000])
    if poison_test:
        X[N_ROWS - N_TEST :, :] = np.nan
    ds = Dataset(
        name="synthetic",
        X=X,
        y=y,
        feature_names=("a", "b", "c", "d", "row_id"),
        class_names=("no", "yes"),
    )
    train_rows = rng.permutation(N_ROWS - N_TEST)
    return ds, train_rows


def _ids(X) -> frozenset:
    X = np.asarray(X, dtype=np.float64)
    assert np.isfinite(X).all(), "the search read a poisoned (test) row"
    return frozenset(np.rint(X[:, -1] * 1000).astype(int).tolist())


def _recording(monkeypatch):
    """Record the rows of every array scaled (trials' rows, held-out rows, the final
    model's rows) and of every training job."""
    seen = {"scaled": [], "jobs": []}
    real_job, real_transform = _search.TrainJob, FittedScaler.transform

    def job(X, y, *a, **k):
        seen["jobs"].append(_ids(X))
        return real_job(X, y, *a, **k)

    def transform(self, X):
        seen["scaled"].append(_ids(X))
        return real_transform(self, X)

    monkeypatch.setattr(_search, "TrainJob", job)
    monkeypatch.setattr(FittedScaler, "transform", transform)
    return seen


def _ledger_epsilon_by_hand(sel: dict) -> float:
    """ε of a search from its ledger entry alone: each setting's curve by dp-accounting's
    RdpAccountant from the noise multipliers the ledger states, their envelope, the theorem
    written out, the retraining added, dp-accounting's conversion."""
    orders = sel["orders"]
    curves, finals = [], []
    for s in sel["settings"]:
        for q, steps, out in (
            (s["sample_rate"], s["steps"], curves),
            (s["final_sample_rate"], s["final_steps"], finals),
        ):
            if out is finals and not sel["retrain"]:
                continue
            acc = dp_accounting.rdp.RdpAccountant(orders)
            acc.compose(
                dp_accounting.PoissonSampledDpEvent(
                    q, dp_accounting.GaussianDpEvent(s["noise_multiplier"])
                ),
                steps,
            )
            for e in s["laplace_epsilons"]:
                acc.compose(dp_accounting.LaplaceDpEvent(1 / e))
            out.append(np.array(acc._rdp))
    env = np.max(curves, axis=0)
    mean = sel["mean"]
    search = []
    for i, lam in enumerate(orders):
        if sel["distribution"] == "poisson":
            dhat = compute_delta(orders, env, math.log(1 + 1 / (lam - 1)))[0]
            search.append(env[i] + mean * dhat + math.log(mean) / (lam - 1))
        else:
            eta, gamma = sel["eta"], sel["gamma"]
            hat = min(
                (1 + eta) * (1 - 1 / lh) * env[j] + (1 + eta) * math.log(1 / gamma) / lh
                for j, lh in enumerate(orders)
            )
            search.append(env[i] + hat + math.log(mean) / (lam - 1))
    search = np.minimum.accumulate(np.array(search)[::-1])[::-1]
    total = search + np.max(finals, axis=0) if finals else search
    return compute_epsilon(orders, total, sel["delta"])[0]


@pytest.mark.parametrize("mode", ["private", "retrain", "nonprivate"])
def test_trials_and_held_out_rows_are_disjoint_and_test_rows_unread(monkeypatch, mode):
    ds, train_rows = _synthetic()
    seen = _recording(monkeypatch)
    epsilon = None if mode == "nonprivate" else 1.0
    res = private_search(
        ds,
        train_rows,
        epsilon=epsilon,
        space=SearchSpace.from_dict(FAST),
        settings=SearchSettings(trials=3, retrain=mode == "retrain"),
        delta=1e-4,
    )
    train = frozenset(train_rows.tolist())
    jobs = seen["jobs"][:-1] if mode == "retrain" else seen["jobs"]
    trial_rows = jobs[0]
    assert all(j == trial_rows for j in jobs)  # every trial trains on the same rows
    held = {s for s in seen["scaled"] if s != trial_rows and s != train}
    assert len(held) == 1  # one held-out set scores every trial
    (held_rows,) = held
    assert not trial_rows & held_rows and trial_rows | held_rows == train
    assert (len(trial_rows), len(held_rows)) == (res.n_search, res.n_heldout)
    assert res.n_train == len(train)
    # each record held out independently with probability h: the count is binomial
    h = res.settings.holdout
    assert abs(res.n_heldout - h * len(train)) < 6 * math.sqrt(len(train) * h * (1 - h))
    if mode == "retrain":
        assert seen["jobs"][-1] == train and res.plan.n == len(train)
    else:
        assert res.plan.n == res.n_search
    assert math.isfinite(res.score)
    assert np.isfinite(res.predict_proba(ds.X[train_rows])).all()
    if epsilon is None:
        assert res.selection is None and res.best.mitigation == "none"
        return
    led = res.ledger
    assert led.epsilon_target == epsilon
    assert epsilon - 0.01 <= led.epsilon_spent <= epsilon
    sel = led.to_dict()["selection"]
    assert sel["retrain"] == (mode == "retrain")
    assert _ledger_epsilon_by_hand(sel) == pytest.approx(led.epsilon_spent, rel=1e-6)
    assert _ledger_epsilon_by_hand(sel) <= epsilon * (1 + 1e-9)
    # the final model ran with the noise the calibration gave its setting
    chosen = [
        s
        for s in sel["settings"]
        if s["noise_multiplier"] == res.plan.effective_noise_multiplier
        and (
            (s["final_sample_rate"], s["final_steps"])
            if mode == "retrain"
            else (s["sample_rate"], s["steps"])
        )
        == (res.plan.sample_rate, res.plan.steps)
    ]
    assert chosen, (res.plan, sel["settings"])
    score = [c for c in led.components if c["query"] == "heldout_score"]
    assert [c["noise_multiplier"] for c in score] == [chosen[0]["score_noise_multiplier"]]
    assert SECRET_TRIALS_NOTE in led.notes
    assert led.noise_source == SECRET_NOISE  # not in research mode: the noise is secret


def test_a_search_whose_winner_is_dp_scaled_still_names_the_trials_scalers(monkeypatch):
    """A space with a scaling fitted in the clear ('standard') is outside ε whichever trial
    wins: the losing trials' scalers decided the choice too. The first trial is made to use
    'dp_standard' and to win; the ledger must still say that standardisation in the clear
    is not covered (and must not depend on how many trials there were)."""
    from imbalanced_dp.data import bundled_bounds
    from imbalanced_dp.tuning import _space

    ds = load_dataset("pima")
    split = prepare_split(ds, seed=0, scaling="none")
    bounds = bundled_bounds(ds.name, ds.feature_names)
    space = SearchSpace.from_dict({**FAST, "scaling": ["standard", "dp_standard"]})
    real_sample = _space.SearchSpace.sample
    drawn = []

    def sample(self, rng, preset):
        c = real_sample(self, rng, preset)
        c = _space.Candidate(**{**c.__dict__, "scaling": "standard" if drawn else "dp_standard"})
        drawn.append(c)
        return c

    scores = iter(range(1000, 0, -1))  # the first trial scored gets the best score
    monkeypatch.setattr(_space.SearchSpace, "sample", sample)
    monkeypatch.setattr(_search, "objective_value", lambda *a: next(scores))
    res = private_search(
        ds, split.train_rows, epsilon=2.0, space=space, settings=SearchSettings(trials=3),
        bounds=bounds,
    )  # fmt: skip
    assert res.best.scaling == "dp_standard"
    fitted = [x for x in res.ledger.not_covered if "standardisation" in x and "fitted" in x]
    assert fitted, res.ledger.not_covered


def test_research_mode_repeats_the_search_bit_for_bit():
    ds, train_rows = _synthetic()
    kw = dict(
        epsilon=1.0,
        space=SearchSpace.from_dict(FAST),
        settings=SearchSettings(trials=3),
        delta=1e-4,
        reproducible=True,
    )
    a = private_search(ds, train_rows, seed=5, **kw)
    b = private_search(ds, train_rows, seed=5, **kw)
    assert a.best == b.best and a.score == b.score and a.n_heldout == b.n_heldout
    np.testing.assert_array_equal(a.model.params, b.model.params)
    assert a.ledger.to_dict() == b.ledger.to_dict()
    assert any("the guarantee assumes the seed stays secret" in x for x in a.ledger.notes)
    assert a.ledger.noise_source != SECRET_NOISE


# ---------------------------------------------------------------------- tune(): the API


FORBIDDEN_KEYS = {"k", "trials", "n_trials", "trials_run", "scores", "candidates", "history"}


def _keys(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield k, f"{path}.{k}"
            yield from _keys(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _keys(v, f"{path}[{i}]")


def test_tune_never_gives_the_search_its_test_rows(monkeypatch):
    """tune() splits like ``run --seed``; the search gets the dataset with every row it
    was not given set to NaN, and still runs: it reads its training rows only."""
    from imbalanced_dp import tune as tune_mod

    got = {}
    real = tune_mod.private_search

    def poisoned(ds, train_rows, **kw):
        X = ds.X.copy()
        mask = np.ones(len(X), dtype=bool)
        mask[train_rows] = False
        X[mask] = np.nan
        got["rows"] = np.array(train_rows)
        bad = Dataset(
            name=ds.name, X=X, y=ds.y, feature_names=ds.feature_names, class_names=ds.class_names
        )
        return real(bad, train_rows, **kw)

    monkeypatch.setattr(tune_mod, "private_search", poisoned)
    space = SearchSpace.from_dict({**FAST, "scaling": ["standard", "dp_standard"]})
    out = tune_mod.tune(
        DatasetRef(name="pima"),
        epsilon=2.0,
        space=space,
        settings=SearchSettings(trials=3),
        compare=False,
    )
    assert not set(got["rows"].tolist()) & set(out.test_rows.tolist())
    assert len(got["rows"]) + len(out.test_rows) == 768
    j = tune_mod.tune_json(out)
    assert set(j) == {
        "dataset", "seed", "best", "epsilon_target", "epsilon_total", "delta", "objective",
        "heldout_score", "trials_expected", "trial_distribution", "epsilon_per_trial", "test",
        "baseline_default", "non_private_tuned", "train_class_counts", "test_class_counts",
        "rows", "reproducible", "seconds", "ledger",
    }  # fmt: skip
    assert j["epsilon_total"] <= 2.0 and j["baseline_default"] is None
    assert math.isfinite(j["test"]["balanced_accuracy"])
    # nothing about K, the other trials' settings or scores is released
    leaked = [p for k, p in _keys(j) if k in FORBIDDEN_KEYS]
    assert not leaked, leaked
    assert set(j["ledger"]["selection"]["best"]) == set(j["best"]) - {"decision_threshold"}
    assert j["test_class_counts"] == np.bincount(out.dataset.y[out.test_rows]).tolist()


# ---------------------------------------------------------------------- the command


def program(*argv, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("IMBALANCED_DP_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "imbalanced_dp", *map(str, argv)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_tune_json_and_out_folder_reproduce_the_model(tmp_path, capsys):
    out_dir = tmp_path / "tuned"
    p = program("tune", "--dataset", "pima", "--epsilon", "2", "--json", "--out", out_dir,
                *FAST_FLAGS, cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    for key in ("best", "epsilon_total", "delta", "test", "baseline_default",
                "non_private_tuned", "ledger"):  # fmt: skip
        assert key in j, key
    assert 2.0 - 0.01 <= j["epsilon_total"] <= 2.0 and j["delta"] == 1e-4
    assert j["ledger"]["epsilon_spent"] == j["epsilon_total"]
    assert j["ledger"]["selection"]["theorem"].startswith("Papernot & Steinke (ICLR 2022)")
    assert 0 <= j["test"]["balanced_accuracy"] <= 1
    assert [r["class"] for r in j["test"]["per_class"]][:2] == ["0", "1"]
    assert 0 <= j["baseline_default"]["balanced_accuracy"] <= 1
    assert 0 <= j["non_private_tuned"]["balanced_accuracy"] <= 1
    assert set(j["best"]) >= {"lr", "batch_size", "epochs", "clip", "layers", "mitigation",
                              "threshold", "scaling", "decision_threshold"}  # fmt: skip
    assert any("comparisons" in x for x in j["ledger"]["not_covered"])
    assert sorted(os.listdir(out_dir)) == ["model.skops", "summary.md", "tune.json"]
    assert json.loads((out_dir / "tune.json").read_text()) == j
    assert "Privately tuned model" in (out_dir / "summary.md").read_text()
    assert "tuned model written to" in p.stderr

    # the saved model, applied by `predict` to the test rows of the same split, gives the
    # test metrics the command printed
    from imbalanced_dp.models import load_model

    ds = load_dataset("pima")
    test_rows = prepare_split(ds, seed=0, scaling="none").test_rows
    assert np.bincount(ds.y[test_rows]).tolist() == j["test_class_counts"]
    model = load_model(out_dir / "model.skops")
    assert model.ledger["epsilon_spent"] == j["epsilon_total"]
    assert model.threshold == j["best"]["decision_threshold"]
    table = tmp_path / "test_rows.csv"
    pd.DataFrame(ds.X[test_rows], columns=ds.feature_names).to_csv(table, index=False)
    preds = tmp_path / "pred.csv"
    code = main(["predict", "--model", str(out_dir / "model.skops"), "--csv", str(table),
                 "--out", str(preds)])  # fmt: skip
    capsys.readouterr()
    assert code == 0
    pr = pd.read_csv(preds)
    y = ds.y[test_rows]
    # rows within 1e-9 of the threshold may round either way between two code paths
    thr = 0.5 if model.threshold is None else model.threshold
    sure = np.abs(pr["p_positive"].to_numpy() - thr) > 1e-9
    assert sure.mean() > 0.9
    if sure.all():
        assert balanced_accuracy_score(y, pr["y_pred"]) == pytest.approx(
            j["test"]["balanced_accuracy"], abs=1e-12
        )
        rec = recall_score(y, pr["y_pred"], pos_label=1)
        assert rec == pytest.approx(j["test"]["per_class"][1]["rec"], abs=1e-12)


def test_tune_prints_its_report_and_writes_without_comparisons(tmp_path, capsys):
    code = main(["tune", "--dataset", "pima", "--epsilon", "1", "--no-compare", *FAST_FLAGS,
                 "--out", str(tmp_path / "t")])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "private search: total ε = 1 at δ = 0.0001" in out and "chosen: lr " in out
    assert "default configuration" not in out  # --no-compare
    assert "not covered by ε:" in out
    j = json.loads((tmp_path / "t" / "tune.json").read_text())
    assert j["baseline_default"] is None and j["non_private_tuned"] is None
    assert 1.0 - 0.01 <= j["epsilon_total"] <= 1.0
    assert not any("comparisons" in x for x in j["ledger"]["not_covered"])


def test_tune_help():
    p = subprocess.run(
        [sys.executable, "-m", "imbalanced_dp", "tune", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0
    for flag in ("--epsilon", "--delta", "--objective", "--trials", "--seed", "--json", "--out"):
        assert flag in p.stdout


# ---------------------------------------------------------------------- bad input


def assert_bad_input(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{PROG}: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def _tables(folder: Path) -> dict:
    rng = np.random.default_rng(3)
    n = 300
    X = rng.normal(size=(n, 3))
    y = (rng.random(n) < 0.3).astype(int)
    ok = pd.DataFrame(X, columns=["a", "b", "c"]).assign(outcome=y)
    ok.to_csv(folder / "ok.csv", index=False)
    # 8 positives: about 6 training rows, fewer than 5 held out even at --holdout 0.5
    few = ok.assign(outcome=np.r_[np.ones(8, int), np.zeros(n - 8, int)])
    few.to_csv(folder / "few.csv", index=False)
    (folder / "empty.toml").write_text("lr = []\n")
    return {"ok": folder / "ok.csv", "few": folder / "few.csv", "toml": folder / "empty.toml"}


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--dataset", "pima", "--lr", ""], ["search space 'lr'", "empty"]),
        (["--dataset", "pima", "--space", "{toml}"], ["search space 'lr'", "empty"]),
        (["--dataset", "pima", "--batch-size", "1000,2000"], ["every batch size", "above"]),
        (
            ["--csv", "{ok}", "--target", "outcome", "--scaling", "standard,dp_standard"],
            ["dp_standard needs public bounds", "--bounds"],
        ),
        (["--csv", "{few}", "--target", "outcome"], ["is not defined for this table"]),
        (
            ["--dataset", "pima", "--epsilon", "0.001", *FAST_FLAGS],
            ["epsilon 0.001", "cannot pay for a private search"],
        ),
        (["--dataset", "pima", "--poisson", "--eta", "0.5"], ["either --poisson or --eta"]),
        (["--dataset", "pima", "--trials", "1"], ["above 1"]),
        (["--dataset", "pima", "--holdout", "0.9"], ["held-out share"]),
    ],
    ids=[
        "empty-dimension",
        "empty-toml-dimension",
        "batches-above-rows",
        "scaling-needs-bounds",
        "objective-undefined",
        "budget-too-small",
        "poisson-and-eta",
        "one-trial",
        "holdout",
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, args, fragments):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    paths = _tables(tmp_path)
    argv = [a.format(**paths) for a in args]
    code = main(["tune", *argv, "--out", str(tmp_path / "new")])
    out, err = capsys.readouterr()
    assert_bad_input(code, out, err, *fragments)
    assert not (tmp_path / "new").exists()
    assert not list(cwd.iterdir())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".new")]


def test_an_out_folder_with_files_is_refused_untouched(tmp_path, capsys):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine\n")
    code = main(["tune", "--dataset", "pima", *FAST_FLAGS, "--out", str(full)])
    out, err = capsys.readouterr()
    assert_bad_input(code, out, err, "is a folder that is not empty")
    assert os.listdir(full) == ["keep.txt"] and (full / "keep.txt").read_text() == "mine\n"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    code = main(["tune", "--dataset", "pima", *FAST_FLAGS, "--out", str(a_file)])
    out, err = capsys.readouterr()
    assert_bad_input(code, out, err, "is a file")
    assert a_file.read_text() == "x"
