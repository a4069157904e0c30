"""Datasets: the bundled PIMA table, breast cancer, user tables with validation, splits."""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from imbalanced_dp.data import (
    dataset_names,
    load_csv,
    load_dataset,
    make_imbalanced,
    min_rows_per_class,
    prepare_split,
    stratified_split,
)
from imbalanced_dp.exceptions import DataError, DataWarning, ImbalancedDPError, ParameterError

PIMA_SHA256 = "bf81d06e0c0512662862248241ab46d7c29258c6ceaad32f3cab56b52a17fdab"
PIMA_FEATURES = (
    "Pregnancies",
    "Glucose",
    "BloodPressure",
    "SkinThickness",
    "Insulin",
    "BMI",
    "DiabetesPedigreeFunction",
    "Age",
)


def _pima_files():
    return resources.files("imbalanced_dp.data") / "files"


# ----------------------------------------------------------------------------- bundled PIMA


def test_pima_file_checksum_matches_record_and_pinned_value():
    files = _pima_files()
    meta = json.loads((files / "pima.json").read_text(encoding="utf-8"))
    digest = hashlib.sha256((files / "pima.csv").read_bytes()).hexdigest()
    # Pinned here as well, so that the file and its record cannot drift together.
    assert digest == meta["sha256"] == PIMA_SHA256
    assert meta["rows"] == 768
    assert meta["class_counts"] == {"0": 500, "1": 268}
    assert meta["origin"]
    assert meta["licence"]
    assert meta["source_sha256"]


def test_pima_counts_and_columns():
    ds = load_dataset("pima")
    assert ds.X.shape == (768, 8)
    assert ds.feature_names == PIMA_FEATURES
    assert ds.class_counts == (500, 268)
    assert ds.class_names == ("non-diabetic", "diabetic")
    assert ds.minority_share == pytest.approx(268 / 768)
    assert ds.fingerprint == PIMA_SHA256
    assert ds.X.dtype == np.float64
    assert ds.y.dtype == np.int64


def test_pima_values_are_the_uci_table():
    """Published statistics of the UCI table, including its zeros that code missing values
    (kept as in the original: nothing is imputed)."""
    ds = load_dataset("pima")
    col = {name: ds.X[:, j] for j, name in enumerate(ds.feature_names)}
    zeros = {name: int((v == 0).sum()) for name, v in col.items()}
    assert zeros["Glucose"] == 5
    assert zeros["BloodPressure"] == 35
    assert zeros["SkinThickness"] == 227
    assert zeros["Insulin"] == 374
    assert zeros["BMI"] == 11
    means = {
        "Pregnancies": 3.845052,
        "Glucose": 120.894531,
        "BloodPressure": 69.105469,
        "SkinThickness": 20.536458,
        "Insulin": 79.799479,
        "BMI": 31.992578,
        "DiabetesPedigreeFunction": 0.471876,
        "Age": 33.240885,
    }
    for name, m in means.items():
        assert col[name].mean() == pytest.approx(m, abs=1e-6), name
    # first and last records of the UCI file
    np.testing.assert_array_equal(ds.X[0], [6, 148, 72, 35, 0, 33.6, 0.627, 50])
    assert ds.y[0] == 1
    np.testing.assert_array_equal(ds.X[-1], [1, 93, 70, 31, 0, 30.4, 0.315, 23])
    assert ds.y[-1] == 0


def test_corrupt_pima_is_refused(monkeypatch):
    from imbalanced_dp.data import _dataset

    monkeypatch.setattr(_dataset, "_file_sha256", lambda data: "0" * 64)
    with pytest.raises(DataError, match="corrupt"):
        _dataset._load_pima()


# ----------------------------------------------------------------------------- breast cancer


def test_breast_cancer_flips_sklearn_labels():
    from sklearn.datasets import load_breast_cancer

    ds = load_dataset("breast_cancer")
    bunch = load_breast_cancer()
    assert ds.X.shape == (569, 30)
    assert ds.class_counts == (357, 212)
    assert ds.class_names == ("benign", "malignant")
    # scikit-learn's target 0 is malignant: it must be our label 1
    assert list(bunch.target_names) == ["malignant", "benign"]
    np.testing.assert_array_equal(ds.y, (bunch.target == 0).astype(int))
    np.testing.assert_array_equal(ds.X, bunch.data)
    # read from scikit-learn's file without importing it: the same names and values
    assert ds.feature_names == tuple(bunch.feature_names)


def test_breast_cancer_falls_back_to_sklearns_loader(monkeypatch):
    """When scikit-learn's file is not where it used to be, its loader gives the same table."""
    import importlib.util

    from imbalanced_dp.data import _dataset

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    ds = _dataset._load_breast_cancer()
    assert ds.X.shape == (569, 30) and ds.class_counts == (357, 212)
    assert ds.fingerprint == load_dataset("breast_cancer").fingerprint


def test_registry():
    assert dataset_names()[:2] == ["pima", "breast_cancer"]
    with pytest.raises(DataError, match="unknown dataset 'nope'; known datasets: pima"):
        load_dataset("nope")


# ----------------------------------------------------------------------------- user tables


def test_load_csv_good_table(good_csv, make_table):
    ds = load_csv(good_csv, "y")
    t = make_table()
    np.testing.assert_array_equal(ds.X, t[["f1", "f2", "f3"]].to_numpy(float))
    np.testing.assert_array_equal(ds.y, t["y"].to_numpy())
    assert ds.feature_names == ("f1", "f2", "f3")
    assert ds.class_names == ("0", "1")
    assert ds.class_counts == (40, 20)
    assert ds.name == "good"


def test_load_csv_text_target_defaults_to_rarer_value(tmp_path, make_table):
    t = make_table()
    t["y"] = np.where(t["y"] == 1, "sick", "healthy")  # 'sick' is the rarer value
    t.to_csv(tmp_path / "t.csv", index=False)
    ds = load_csv(tmp_path / "t.csv", "y")
    assert ds.class_names == ("healthy", "sick")
    np.testing.assert_array_equal(ds.y, (t["y"] == "sick").to_numpy().astype(int))


def test_load_csv_explicit_positive(tmp_path, make_table):
    t = make_table()
    t["y"] = np.where(t["y"] == 1, "sick", "healthy")
    t.to_csv(tmp_path / "t.csv", index=False)
    # The majority class as positive is kept when asked for explicitly, with one warning
    # that it is not the minority.
    with pytest.warns(DataWarning, match="--positive healthy is the majority") as got:
        ds = load_csv(tmp_path / "t.csv", "y", positive="healthy")
    assert len(got) == 1
    assert ds.class_names == ("sick", "healthy")
    assert ds.class_counts == (20, 40)
    np.testing.assert_array_equal(ds.y, (t["y"] == "healthy").to_numpy().astype(int))
    # the positive value is part of what the fingerprint (and so every run_id) depends on
    assert ds.fingerprint != load_csv(tmp_path / "t.csv", "y").fingerprint


def test_load_csv_zero_one_target_makes_the_minority_positive_and_says_so(tmp_path, make_table):
    """Issue 16 item 8: label 1 is the minority class in every output, so a 0/1 target whose
    1 is the majority gets 0 as its positive class, with one warning; --positive 1 keeps 1
    (and warns that it is not the minority); a balanced table keeps 1 silently."""
    t = make_table(20, 40)
    t.to_csv(tmp_path / "t.csv", index=False)
    with pytest.warns(DataWarning) as got:
        ds = load_csv(tmp_path / "t.csv", "y")
    assert [str(w.message) for w in got] == [
        "target 'y' of t.csv: 1 is the majority (66.7% of rows); label 1 is the minority "
        "class in imbalanced-dp, so 0 is the positive class here (give --positive 1 to keep "
        "1, which is then not the minority)"
    ]
    assert ds.class_names == ("1", "0")
    assert ds.class_counts == (40, 20)
    assert ds.minority_share == pytest.approx(1 / 3)
    np.testing.assert_array_equal(ds.y, 1 - t["y"].to_numpy())
    with pytest.warns(DataWarning, match="--positive 1 is the majority"):
        kept = load_csv(tmp_path / "t.csv", "y", positive="1")
    np.testing.assert_array_equal(kept.y, t["y"].to_numpy())
    make_table(30, 30).to_csv(tmp_path / "even.csv", index=False)
    even = load_csv(tmp_path / "even.csv", "y")  # no warning (the suite's warnings are errors)
    assert even.class_names == ("0", "1")


def test_load_csv_numeric_positive_given_as_text(tmp_path, make_table):
    t = make_table()
    t["y"] = np.where(t["y"] == 1, 2.0, 7.0)
    t.to_csv(tmp_path / "t.csv", index=False)
    with pytest.warns(DataWarning, match="is the majority"):  # 7.0 is the majority
        ds = load_csv(tmp_path / "t.csv", "y", positive="7")
    np.testing.assert_array_equal(ds.y, (t["y"] == 7.0).to_numpy().astype(int))


def test_load_csv_strips_spaces_and_bom(tmp_path, make_table):
    t = make_table()
    text = "\ufeff f1 , f2 ,f3, y\n" + "".join(
        f"{a}, {b},{c}, {d}\n" for a, b, c, d in t.itertuples(index=False)
    )
    (tmp_path / "t.csv").write_text(text, encoding="utf-8")
    ds = load_csv(tmp_path / "t.csv", "y")
    assert ds.feature_names == ("f1", "f2", "f3")
    np.testing.assert_allclose(ds.X, t[["f1", "f2", "f3"]].to_numpy(float))


def test_load_csv_refuses_bad_tables(bad_table):
    with pytest.raises(DataError) as err:
        load_csv(bad_table.path, bad_table.target, positive=bad_table.positive)
    msg = str(err.value)
    assert "\n" not in msg
    for fragment in bad_table.fragments:
        assert fragment in msg
    assert isinstance(err.value, ImbalancedDPError)
    assert isinstance(err.value, ValueError)


def test_load_csv_permission_denied(tmp_path, monkeypatch, good_csv):
    # Tests may run as root, where chmod 000 does not stop reading: simulate it.
    def deny(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)
    with pytest.raises(DataError, match=r"cannot read .*good\.csv: permission denied"):
        load_csv(good_csv, "y")


def test_load_csv_lists_at_most_eight_columns(tmp_path, make_table):
    t = make_table()
    for i in range(12):
        t[f"x{i}"] = 0.0
    t.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(
        DataError, match=r"its columns are f1, f2, f3, y, x0, x1, x2, x3 and 8 more"
    ):
        load_csv(tmp_path / "t.csv", "target")


@pytest.mark.parametrize(("test_fraction", "need"), [(0.2, 5), (0.1, 10), (0.5, 2), (0.25, 4)])
def test_min_rows_per_class(test_fraction, need, tmp_path, make_table):
    assert min_rows_per_class(test_fraction) == need
    # exactly `need` rows of the minority class is accepted, one fewer is refused
    make_table(60, need, seed=1).to_csv(tmp_path / "ok.csv", index=False)
    make_table(60, need - 1, seed=1).to_csv(tmp_path / "few.csv", index=False)
    ds = load_csv(tmp_path / "ok.csv", "y", test_fraction=test_fraction)
    for seed in range(5):
        train, test = stratified_split(ds.y, seed=seed, test_fraction=test_fraction)
        assert set(ds.y[train]) == {0, 1}
        assert set(ds.y[test]) == {0, 1}
    with pytest.raises(DataError, match=f"has {need - 1} rows"):
        load_csv(tmp_path / "few.csv", "y", test_fraction=test_fraction)


# ----------------------------------------------------------------------------- splits


def test_stratified_split_pima_seed0():
    ds = load_dataset("pima")
    split = prepare_split(ds, seed=0)
    assert split.train_class_counts == (400, 214)
    assert split.test_class_counts == (100, 54)


@pytest.mark.parametrize("name", ["pima", "breast_cancer"])
def test_stratified_split_properties(name):
    y = load_dataset(name).y
    n0, n1 = np.bincount(y)
    train, test = stratified_split(y, seed=3)
    assert len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))
    assert len(test) == int(np.ceil(0.2 * len(y)))
    # stratified: each class's test share is 20 % to within one row
    assert abs((y[test] == 1).sum() - 0.2 * n1) <= 1
    assert abs((y[test] == 0).sum() - 0.2 * n0) <= 1
    # same seed, same split; another seed, another split
    _, test2 = stratified_split(y, seed=3)
    np.testing.assert_array_equal(test, test2)
    assert not np.array_equal(test, stratified_split(y, seed=4)[1])


def test_stratified_split_bad_fraction():
    with pytest.raises(ParameterError, match="test fraction"):
        stratified_split(np.array([0, 1] * 10), seed=0, test_fraction=1.0)


def test_split_is_independent_of_anything_but_seed():
    """Comparisons across privacy levels are paired: the split of a seed is fixed."""
    ds = load_dataset("breast_cancer")
    a = prepare_split(ds, seed=7)
    b = prepare_split(ds, seed=7)
    np.testing.assert_array_equal(a.test_rows, b.test_rows)
    np.testing.assert_array_equal(a.X_train, b.X_train)


def test_scaler_is_fitted_on_training_rows_only():
    ds = load_dataset("pima")
    split = prepare_split(ds, seed=1)
    raw = ds.X[split.train_rows]
    np.testing.assert_allclose(split.scaler_mean, raw.mean(axis=0))
    np.testing.assert_allclose(split.scaler_scale, raw.std(axis=0))
    np.testing.assert_allclose(split.X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(split.X_train.std(axis=0), 1, atol=1e-12)
    np.testing.assert_allclose(
        split.X_test, (ds.X[split.test_rows] - raw.mean(axis=0)) / raw.std(axis=0)
    )
    np.testing.assert_array_equal(split.y_test, ds.y[split.test_rows])


@pytest.mark.parametrize("fraction", [0.3, 0.2, 0.1, 0.05, 0.02])
def test_make_imbalanced_subsamples_minority(fraction):
    ds = load_dataset("pima")
    train, test = stratified_split(ds.y, seed=0)
    rows = make_imbalanced(train, ds.y, minority_fraction=fraction, seed=0)
    assert set(rows.tolist()) <= set(train.tolist())
    y = ds.y[rows]
    # every majority row is kept, the minority share is the closest achievable
    assert (y == 0).sum() == (ds.y[train] == 0).sum()
    k = (y == 1).sum()
    n0 = (y == 0).sum()
    assert abs(k / (k + n0) - fraction) <= 1 / (k + n0)
    split = prepare_split(ds, seed=0, minority_fraction=fraction)
    assert split.minority_fraction == pytest.approx(k / (k + n0))
    # the test split keeps the natural distribution
    np.testing.assert_array_equal(split.test_rows, test)


def test_make_imbalanced_undersample_majority_and_refusals():
    ds = load_dataset("pima")
    train, _ = stratified_split(ds.y, seed=0)
    rows = make_imbalanced(
        train, ds.y, minority_fraction=0.5, seed=0, method="undersample_majority"
    )
    y = ds.y[rows]
    assert (y == 1).sum() == (ds.y[train] == 1).sum()
    assert y.mean() == pytest.approx(0.5, abs=0.01)
    with pytest.raises(ParameterError, match="above the natural share"):
        make_imbalanced(train, ds.y, minority_fraction=0.5, seed=0)
    with pytest.raises(ParameterError, match="minority fraction"):
        make_imbalanced(train, ds.y, minority_fraction=0.0, seed=0)
    with pytest.raises(ParameterError, match="imbalance_method"):
        make_imbalanced(train, ds.y, minority_fraction=0.1, seed=0, method="smote")
