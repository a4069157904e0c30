"""A user's own table on the command line (issue 16, items 4, 7b, 7c and 8): numbers that
overflow, choosing columns, separators and gzip, and labels that do not mislead."""

from __future__ import annotations

import gzip
import json
import sqlite3

import numpy as np
import pytest

from imbalanced_dp.data import load_csv
from imbalanced_dp.exceptions import DataWarning
from imbalanced_dp.studies import DatasetRef, RunSpec, spec_from_dict
from test_cli import PROG, assert_bad_input, cli, listing


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty current folder, to check that a refused command writes nothing."""
    d = tmp_path / "cwd"
    d.mkdir()
    monkeypatch.chdir(d)
    return d


# ----------------------------------------------------------------------------- item 4


def _overflowing_table(workdir, make_table, value=1e300):
    t = make_table(60, 30)
    t["f2"] = t["f2"].astype(float)
    t.loc[7, "f2"] = value
    path = workdir.parent / "huge.csv"
    t.to_csv(path, index=False)
    return path


def test_run_refuses_a_value_that_overflows_like_an_infinite_one(capsys, workdir, make_table):
    """1e300 is finite, but standardising its column overflows: the same kind of one line
    (exit 2, naming the column) as an infinite value, instead of numpy warnings and a
    majority-only model."""
    path = _overflowing_table(workdir, make_table)
    code, out, err = cli(capsys, "run", "--csv", path, "--target", "y", "--epochs", "1")
    assert_bad_input(code, out, err, "values too large to standardise", "f2", "--drop")
    assert "RuntimeWarning" not in err and "overflow encountered" not in err
    assert listing(workdir) == set()
    # leaving the column out is the fix the line names
    code, out, err = cli(
        capsys, "run", "--csv", path, "--target", "y", "--drop", "f2", "--epochs", "1",
        "--batch-size", "8", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["dataset"] == "huge"


def test_study_run_refuses_an_overflowing_table_before_the_store_exists(
    capsys, workdir, make_table
):
    path = _overflowing_table(workdir, make_table)
    store = workdir / "s.sqlite"
    code, out, err = cli(
        capsys, "study", "run", "--csv", path, "--target", "y", "--store", store, "-q"
    )
    assert_bad_input(code, out, err, "values too large to standardise", "f2")
    assert listing(workdir) == set()


def test_a_run_whose_probabilities_are_not_finite_is_stored_as_failed(capsys, workdir):
    """Training that diverges (lr = 1e300) gives non-finite probabilities: each such run is
    stored as failed with the reason, the store's other runs stay intact, and `run` says
    the same in one line with exit code 2."""
    store = workdir.parent / "d.sqlite"
    good = workdir.parent / "good.toml"
    good.write_text(
        'name = "good"\ndatasets = ["pima"]\nprivacy = ["none"]\nseeds = 1\nepochs = 1\n',
        encoding="utf-8",
    )
    code, out, err = cli(capsys, "study", "run", good, "--store", store, "--no-report", "-q")
    assert code == 0, err
    spec = workdir.parent / "diverge.toml"
    spec.write_text(
        'name = "diverge"\ndatasets = ["pima"]\nprivacy = ["none", 8]\nseeds = 2\n'
        "epochs = 2\nlr = 1e300\n",
        encoding="utf-8",
    )
    code, out, err = cli(capsys, "study", "run", spec, "--store", store, "--no-report", "-q")
    assert code == 1, err  # runs failed; no IntegrityError, no traceback
    assert "IntegrityError" not in out + err and "Traceback" not in err
    assert "4 failed" in out
    with sqlite3.connect(store) as con:
        rows = con.execute("SELECT lr, status, error FROM runs").fetchall()
        n_pred = con.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
        n_null = con.execute(
            "SELECT COUNT(*) FROM predictions WHERE p_positive IS NULL"
        ).fetchone()[0]
    failed = [r for r in rows if r[1] == "failed"]
    assert len(failed) == 4 and all(r[0] == 1e300 for r in failed)
    for _, _, error in failed:
        assert "predicted probabilities are not finite" in error
        assert "training diverged" in error
    assert [r[1] for r in rows if r[0] != 1e300] == ["done"]
    assert n_pred == 154 and n_null == 0
    code, out, err = cli(capsys, "study", "status", "--store", store)
    assert code == 0 and "diverge" in out
    code, out, err = cli(
        capsys, "run", "--dataset", "pima", "--epsilon", "8", "--lr", "1e300", "--epochs", "2"
    )
    assert_bad_input(code, out, err, "not finite", "training diverged", "lower the learning rate")


# ----------------------------------------------------------------------------- item 7b


def _with_identifier(make_table):
    t = make_table(60, 30)
    t.insert(0, "patient_id", np.arange(1000, 1000 + len(t)))
    t["visit"] = np.arange(len(t)) * 3  # unique integers on every row, not named like an id
    return t


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"{PROG}: warning: ")]


@pytest.mark.filterwarnings("always::imbalanced_dp.exceptions.DataWarning")
def test_a_column_that_looks_like_an_identifier_gets_one_warning_line(capsys, workdir, make_table):
    path = workdir.parent / "ids.csv"
    _with_identifier(make_table).to_csv(path, index=False)
    code, out, err = cli(
        capsys, "run", "--csv", path, "--target", "y", "--epochs", "1", "--batch-size", "8",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    ids = [w for w in _warnings(err) if "identifier" in w]
    assert len(ids) == 1
    assert "'patient_id': named like an identifier" in ids[0]
    assert "'visit': a different integer on every row" in ids[0]
    assert "--drop patient_id,visit" in ids[0]
    assert json.loads(out)  # the run itself went on


def test_drop_and_features_choose_the_columns_and_enter_the_run_id(capsys, workdir, make_table):
    path = workdir.parent / "ids.csv"
    t = _with_identifier(make_table)
    t.to_csv(path, index=False)
    common = ["--epochs", "1", "--batch-size", "8", "--json", "--csv", path, "--target", "y"]
    # (the suite turns warnings into errors: an identifier warning would fail these runs)
    code, out, err = cli(capsys, "run", *common, "--drop", "patient_id,visit")
    assert code == 0, err
    dropped = json.loads(out)
    code, out, err = cli(capsys, "run", *common, "--features", "f1,f2,f3")
    assert code == 0, err
    chosen = json.loads(out)
    # the same columns by either flag, but the run_id records how they were chosen
    assert dropped["run_id"] != chosen["run_id"]
    a = DatasetRef(csv=str(path), target="y", drop=("patient_id", "visit")).load()
    b = DatasetRef(csv=str(path), target="y", features=("f1", "f2", "f3")).load()
    assert a.feature_names == b.feature_names == ("f1", "f2", "f3")
    np.testing.assert_array_equal(a.X, t[["f1", "f2", "f3"]].to_numpy(float))
    # a selection changes the fingerprint, so splits are never shared with the whole table
    with pytest.warns(DataWarning):
        whole = DatasetRef(csv=str(path), target="y").load()
    assert whole.fingerprint != a.fingerprint
    assert whole.n_features == 5


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--drop", "nope"], ["--drop: 'nope' not in", "its columns are"]),
        (["--features", "f1,zz"], ["--features: 'zz' not in"]),
        (["--drop", "y"], ["names the target column 'y'"]),
        (["--drop", "f1", "--features", "f2"], ["either --features or --drop"]),
        (["--drop", ","], ["--drop needs comma-separated column names"]),
        (["--sep", ";;"], ["--sep must be one character"]),
    ],
)
def test_bad_column_choices_are_refused(capsys, workdir, good_csv, args, fragments):
    code, out, err = cli(capsys, "run", "--csv", good_csv, "--target", "y", *args)
    assert_bad_input(code, out, err, *fragments)
    assert listing(workdir) == set()


def test_column_options_are_for_csv_tables_only(capsys, workdir):
    for cmd in (["run"], ["study", "run"], ["audit"]):
        code, out, err = cli(capsys, *cmd, "--dataset", "pima", "--drop", "Age")
        assert_bad_input(code, out, err, "apply to --csv tables only")
    assert listing(workdir) == set()


def test_study_run_and_audit_take_the_column_options(capsys, workdir, make_table):
    path = workdir.parent / "ids.csv"
    _with_identifier(make_table).to_csv(path, index=False)
    store = workdir / "s.sqlite"
    spec_file = workdir.parent / "s.toml"
    spec_file.write_text(
        'name = "cols"\ndatasets = [{csv = "ids.csv", target = "y", drop = ["patient_id", '
        '"visit"]}]\nprivacy = ["none"]\nseeds = 1\nepochs = 1\nbatch_size = 8\n',
        encoding="utf-8",
    )
    code, out, err = cli(
        capsys, "study", "run", spec_file, "--store", store, "--no-report", "-q", "--workers", "1"
    )
    assert code == 0, err
    with sqlite3.connect(store) as con:
        spec_json = con.execute("SELECT spec_json FROM runs").fetchone()[0]
    assert json.loads(spec_json)["dataset"]["drop"] == ["patient_id", "visit"]
    code, out, err = cli(
        capsys, "audit", "--csv", path, "--target", "y", "--features", "f1,f2",
        "--privacy", "none", "--shadows", "4", "--canaries", "0", "--attacks", "loss",
        "--epochs", "1", "--batch-size", "8", "--bootstrap", "10", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["dataset"] == "ids"


def test_the_spec_file_checks_its_table_keys():
    with pytest.raises(Exception, match="drop = a list of column names"):
        spec_from_dict({"datasets": [{"csv": "x.csv", "target": "y", "drop": "id"}]})
    spec = spec_from_dict(
        {"datasets": [{"csv": "x.csv", "target": "y", "sep": "\\t", "features": ["a"]}]}
    )
    ref = spec.datasets[0]
    assert (ref.sep, ref.features) == ("\t", ("a",))
    assert DatasetRef.from_dict(ref.to_dict()) == ref
    # the default separator is not recorded: existing run_ids do not change
    assert "sep" not in DatasetRef(csv="x.csv", target="y", sep=",").to_dict()
    r1 = RunSpec(DatasetRef(csv="x.csv", target="y"), seed=0, epsilon=None, delta=1e-4, lr=0.1)
    r2 = RunSpec(ref, seed=0, epsilon=None, delta=1e-4, lr=0.1)
    assert r1.to_dict()["dataset"] != r2.to_dict()["dataset"]


# ----------------------------------------------------------------------------- item 7c


def test_sep_semicolons_tabs_and_gzip(capsys, workdir, make_table):
    t = make_table(60, 30)
    semi = workdir.parent / "semi.csv"
    t.to_csv(semi, index=False, sep=";")
    code, out, err = cli(capsys, "run", "--csv", semi, "--target", "y", "--epochs", "1")
    assert_bad_input(code, out, err, "read as a single column", "--sep ';'")
    common = ["--target", "y", "--epochs", "1", "--batch-size", "8", "--json"]
    code, out, err = cli(capsys, "run", "--csv", semi, "--sep", ";", *common)
    assert code == 0, err
    by_semi = json.loads(out)
    tab = workdir.parent / "tab.tsv"
    t.to_csv(tab, index=False, sep="\t")
    code, out, err = cli(capsys, "run", "--csv", tab, "--sep", "\\t", *common)
    assert code == 0, err
    gz = workdir.parent / "zipped.csv.gz"
    gz.write_bytes(gzip.compress(t.to_csv(index=False).encode()))
    code, out, err = cli(capsys, "run", "--csv", gz, *common)
    assert code == 0, err
    by_gz = json.loads(out)
    assert by_gz["dataset"] == "zipped"
    # the same rows give the same model, whatever the file's form
    assert by_gz["classes"] == by_semi["classes"]
    assert json.loads(out)["train_class_counts"] == [48, 24]
    assert listing(workdir) == set()
    np.testing.assert_array_equal(load_csv(gz, "y").X, load_csv(semi, "y", sep=";").X)


# ----------------------------------------------------------------------------- item 8


@pytest.mark.filterwarnings("always::imbalanced_dp.exceptions.DataWarning")
def test_a_majority_one_target_is_not_called_the_minority(capsys, workdir, make_table):
    """0/1 target with 1 the majority (90 %): 0 becomes label 1 with one warning line, so
    the "minority share" reported is 0.1, not 0.9; --positive 1 keeps 1 and says it is the
    majority."""
    t = make_table(90, 10)
    t["y"] = 1 - t["y"]  # now 1 is the majority
    path = workdir.parent / "mostly_ones.csv"
    t.to_csv(path, index=False)
    common = ["--csv", path, "--target", "y", "--epochs", "1", "--batch-size", "8", "--json"]
    code, out, err = cli(capsys, "run", *common)
    assert code == 0, err
    assert _warnings(err)[0] == (
        f"{PROG}: warning: target 'y' of mostly_ones.csv: 1 is the majority (90.0% of rows); "
        "label 1 is the minority class in imbalanced-dp, so 0 is the positive class here "
        "(give --positive 1 to keep 1, which is then not the minority)"
    )
    d = json.loads(out)
    assert d["minority_fraction"] == pytest.approx(0.1)
    assert d["train_class_counts"] == [72, 8]
    code, out, err = cli(capsys, "run", *common, "--positive", "1")
    assert code == 0, err
    assert "--positive 1 is the majority" in _warnings(err)[0]
    assert json.loads(out)["minority_fraction"] == pytest.approx(0.9)
    code, out, err = cli(capsys, "run", *common[:-1], "--positive", "1")
    assert code == 0, err
    assert "(8 / 72, share of label 1, here the majority, 0.900)" in out.splitlines()[0]
    assert "minority share" not in out.splitlines()[0]


def test_run_warns_when_the_model_never_predicts_the_minority(capsys, workdir):
    # one epoch at ε = 1 on PIMA: the model calls every test row non-diabetic
    code, out, err = cli(
        capsys, "run", "--dataset", "pima", "--epsilon", "1", "--epochs", "1", "--reproducible"
    )
    assert code == 0, err
    assert "  1 (diabetic)" not in out or "0.000" in out
    lines = err.splitlines()
    assert lines == [
        f"{PROG}: warning: the model predicts no test row as 'diabetic' (label 1, the "
        "minority, positive class): every one of the 154 test rows is called "
        "'non-diabetic', so its recall is 0; common at small ε or few epochs — try "
        "--mitigation threshold or class_weighted, or a larger ε"
    ]
    # a model that predicts both classes gets no warning
    code, out, err = cli(
        capsys, "run", "--dataset", "pima", "--non-private", "--epochs", "200", "--json"
    )
    assert code == 0, err
    assert err == ""
    rec = {c["class"]: c["rec"] for c in json.loads(out)["classes"]}
    assert 0 < rec["1"] < 1
