"""Saving a model and applying it (issue 16, item 7a): `run --save`, `predict`, the
estimator's save/load, and loading that refuses anything that is not our model."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from imbalanced_dp import DPMLPClassifier, load_dataset, prepare_split
from imbalanced_dp.models import (
    FORMAT,
    FORMAT_VERSION,
    SAVED_SCALER_NOTE,
    ModelFileError,
    load_model,
)
from test_cli import assert_bad_input, cli, listing


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    d = tmp_path / "cwd"
    d.mkdir()
    monkeypatch.chdir(d)
    return d


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A DP run on PIMA saved with `run --save`, with its --json output."""
    import subprocess
    import sys

    d = tmp_path_factory.mktemp("saved")
    proc = subprocess.run(
        [
            sys.executable, "-m", "imbalanced_dp", "run", "--dataset", "pima", "--epsilon", "8",
            "--epochs", "30", "--reproducible", "--json", "--save", "model.skops",
        ],
        cwd=d, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "model saved to model.skops" in proc.stderr
    return d / "model.skops", json.loads(proc.stdout)


def test_run_save_writes_a_versioned_file_with_the_ledger(saved_run):
    path, out = saved_run
    with zipfile.ZipFile(path) as z:  # a skops archive
        assert "schema.json" in z.namelist()
    assert sio.get_untrusted_types(file=path) == []  # plain values only
    m = load_model(path)
    assert m.kind == "run"
    assert m.feature_names == load_dataset("pima").feature_names
    assert m.class_names == ("non-diabetic", "diabetic")
    assert m.layers == (8, 20, 5, 5, 2)
    assert m.run["run_id"] == out["run_id"]
    led = m.ledger
    assert led["epsilon_spent"] == out["ledger"]["epsilon_spent"] <= 8
    assert led["noise_multiplier"] == out["noise_multiplier"]
    # the saved scaling is listed as released in the clear; no noise key is stored
    assert SAVED_SCALER_NOTE in led["not_covered"]
    assert "noise_key" not in json.dumps(m.run) + json.dumps(led)


def test_predict_reproduces_the_runs_own_test_predictions(capsys, workdir, saved_run):
    """The saved model (scaler, weights, decision rule) gives exactly the probabilities the
    run computed on its test rows."""
    path, out = saved_run
    ds = load_dataset("pima")
    split = prepare_split(ds, seed=0)
    table = pd.DataFrame(ds.X[split.test_rows], columns=ds.feature_names)
    table["Outcome"] = ds.y[split.test_rows]  # extra columns are ignored
    table["note_id"] = np.arange(len(table))
    src = workdir.parent / "new.csv"
    table.to_csv(src, index=False, float_format="%.17g")
    dest = workdir / "scores.csv"
    code, stdout, err = cli(capsys, "predict", "--model", path, "--csv", src, "--out", dest)
    assert code == 0, err
    assert stdout == f"predictions: {dest} (154 rows)\n"
    got = pd.read_csv(dest)
    assert list(got.columns) == ["row", "p_positive", "y_pred", "predicted_class"]
    m = load_model(path)
    expected = m.predict_proba(table[list(ds.feature_names)].to_numpy())[:, 1]
    np.testing.assert_allclose(got["p_positive"], expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(got["y_pred"], (expected > 0.5).astype(int))
    assert set(got["predicted_class"]) <= {"non-diabetic", "diabetic"}
    rec = {c["class"]: c for c in out["classes"]}
    y = ds.y[split.test_rows]
    pred = got["y_pred"].to_numpy()
    assert ((pred == 1) & (y == 1)).sum() / (y == 1).sum() == pytest.approx(rec["1"]["rec"])
    # without --out, the same table on stdout
    code, stdout, err = cli(capsys, "predict", "--model", path, "--csv", src)
    assert code == 0, err
    assert stdout.splitlines()[0] == "row,p_positive,y_pred,predicted_class"
    assert len(stdout.splitlines()) == 155


def test_predict_refuses_what_it_cannot_apply(capsys, workdir, saved_run, tmp_path):
    path, _ = saved_run
    ds = load_dataset("pima")
    short = tmp_path / "short.csv"
    pd.DataFrame(ds.X[:5, :6], columns=ds.feature_names[:6]).to_csv(short, index=False)
    code, out, err = cli(capsys, "predict", "--model", path, "--csv", short)
    assert_bad_input(code, out, err, "lacks 2 of the model's feature columns", "Age")
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps({"format": FORMAT}))
    code, out, err = cli(capsys, "predict", "--model", pickled, "--csv", short)
    assert_bad_input(code, out, err, "is not an imbalanced-dp model file", "not a skops archive")
    other = tmp_path / "other.skops"
    sio.dump({"format": "something else"}, other)
    code, out, err = cli(capsys, "predict", "--model", other, "--csv", short)
    assert_bad_input(code, out, err, "not an imbalanced-dp model file")
    future = tmp_path / "future.skops"
    sio.dump({"format": FORMAT, "format_version": FORMAT_VERSION + 1}, future)
    code, out, err = cli(capsys, "predict", "--model", future, "--csv", short)
    assert_bad_input(code, out, err, f"format version {FORMAT_VERSION + 1}", "reads version 1")
    code, out, err = cli(capsys, "predict", "--model", tmp_path / "none.skops", "--csv", short)
    assert_bad_input(code, out, err, "no such file")
    assert listing(workdir) == set()


class Payload:
    """A class of the test module: nothing a model file may hold."""

    def __init__(self) -> None:
        self.command = "echo hello"


def test_a_skops_file_with_untrusted_types_is_refused_before_loading(tmp_path):
    path = tmp_path / "code.skops"
    sio.dump({"format": FORMAT, "format_version": FORMAT_VERSION, "x": Payload()}, path)
    assert sio.get_untrusted_types(file=path)  # skops itself would refuse to build it
    with pytest.raises(ModelFileError, match="holds types that a model file never holds"):
        load_model(path)


def test_run_save_refuses_a_bad_path_before_training(capsys, workdir):
    code, out, err = cli(
        capsys, "run", "--dataset", "pima", "--epochs", "1", "--save", workdir / "no" / "m.skops"
    )
    assert_bad_input(code, out, err, "--save", "does not exist")
    assert listing(workdir) == set()


def test_estimator_save_and_load_round_trip(tmp_path):
    ds = load_dataset("pima")
    X = pd.DataFrame(ds.X, columns=ds.feature_names)
    y = np.where(ds.y == 1, "yes", "no")
    clf = DPMLPClassifier(epsilon=4.0, epochs=5, accountant="rdp", random_state=3).fit(X, y)
    path = clf.save(tmp_path / "clf.skops")
    back = DPMLPClassifier.load(path)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    assert list(back.classes_) == ["no", "yes"]
    assert list(back.feature_names_in_) == list(ds.feature_names)
    assert back.get_params() == clf.get_params()
    assert back.privacy_ledger_ == clf.privacy_ledger_
    assert (back.epsilon_, back.delta_, back.seed_) == (clf.epsilon_, clf.delta_, clf.seed_)
    # a run's model is not an estimator, and says how to use it instead
    run_model = tmp_path / "run.skops"
    m = load_model(path)
    m.kind = "run"
    m.save(run_model)
    with pytest.raises(ModelFileError, match="apply it with imbalanced-dp predict"):
        DPMLPClassifier.load(run_model)
