"""The command line: ``datasets``, ``run`` and ``reproduce`` end to end, and every bad input
(exit code 2, one line on stderr, no traceback, nothing written)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imbalanced_dp.cli._main import main
from imbalanced_dp.data import load_dataset
from imbalanced_dp.studies import PREDICTION_COLUMNS, RESULT_COLUMNS

PROG = "imbalanced-dp"


#: How the warning of a model that predicts no minority (label 1) test row begins.
NO_MINORITY = f"{PROG}: warning: the model predicts no test row as"


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run the command in this process; return (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def program(*argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real program, ``python -m imbalanced_dp``, in a fresh interpreter."""
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


def assert_bad_input(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"{PROG}: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty current folder, to check that a refused command writes nothing."""
    d = tmp_path / "cwd"
    d.mkdir()
    monkeypatch.chdir(d)
    return d


# ----------------------------------------------------------------------------- datasets


def test_datasets_text(capsys):
    code, out, err = cli(capsys, "datasets")
    assert code == 0
    assert err == ""
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:3]}
    assert rows["pima"][1:4] == ["768", "8", "500"]
    assert rows["breast_cancer"][1:4] == ["569", "30", "357"]
    assert rows["pima"][-1] == "34.9%"
    assert rows["breast_cancer"][-1] == "37.3%"


def test_datasets_json(capsys):
    code, out, _ = cli(capsys, "datasets", "--json")
    assert code == 0
    data = {d["name"]: d for d in json.loads(out)}
    assert set(data) == {"pima", "breast_cancer"}
    for name, (n0, n1, features) in {
        "pima": (500, 268, 8),
        "breast_cancer": (357, 212, 30),
    }.items():
        d = data[name]
        assert (d["count_0"], d["count_1"], d["features"]) == (n0, n1, features)
        assert d["rows"] == n0 + n1
        assert d["minority_share"] == pytest.approx(n1 / (n0 + n1))
    assert data["pima"]["class_1"] == "diabetic"
    assert data["breast_cancer"]["class_1"] == "malignant"


def test_datasets_program(tmp_path):
    proc = program("datasets", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "pima" in proc.stdout
    assert "768" in proc.stdout
    bad = program("datasets", "--bogus", cwd=tmp_path)
    assert_bad_input(bad.returncode, bad.stdout, bad.stderr, "--bogus", "datasets --help")


# ----------------------------------------------------------------------------- run


def _check_run_json(d: dict, *, n_test: int) -> None:
    from imbalanced_dp.cli._render import RUN_FIELDS

    for key in (*RUN_FIELDS, "accuracy", "balanced_accuracy", "classes", "ledger"):
        assert key in d, key
    classes = {c["class"]: c for c in d["classes"]}
    assert list(classes) == ["0", "1", "avg/total"]
    for c in d["classes"]:
        assert set(c) == {"class", "pre", "rec", "spe", "f1", "geo", "iba", "sup"}
    s0, s1 = classes["0"]["sup"], classes["1"]["sup"]
    assert s0 + s1 == classes["avg/total"]["sup"] == n_test
    # the run-level scores follow from the per-class recalls
    r0, r1 = classes["0"]["rec"], classes["1"]["rec"]
    assert d["accuracy"] == pytest.approx((r0 * s0 + r1 * s1) / n_test)
    assert d["balanced_accuracy"] == pytest.approx((r0 + r1) / 2)
    assert classes["1"]["spe"] == pytest.approx(r0)
    assert classes["1"]["geo"] == pytest.approx(math.sqrt(r1 * r0))


def test_run_json_dp(capsys, workdir):
    code, out, err = cli(capsys, "run", "--dataset", "pima", "--epochs", "2", "--json")
    assert code == 0, err
    # two epochs at ε = 2: at most the warning that no test row is predicted diabetic
    assert all(line.startswith(NO_MINORITY) for line in err.splitlines()), err
    d = json.loads(out)
    _check_run_json(d, n_test=154)
    assert d["dataset"] == "pima"
    assert d["privacy"] == "dp"
    assert d["epsilon_target"] == 2.0
    assert 2.0 - 0.01 <= d["epsilon_spent"] <= 2.0
    assert d["delta"] == 1e-4
    assert d["accountant"] == "pld"  # the default accountant
    assert (d["sample_rate"], d["steps"], d["epochs"], d["batch_size"]) == (0.1, 20, 2, 64)
    assert (d["lr"], d["clip"], d["seed"], d["engine"]) == (0.01, 1.0, 0, "fast")
    assert d["minority_fraction"] == pytest.approx(214 / 614)
    assert d["train_class_counts"] == [400, 214]
    assert d["ledger"]["epsilon_spent"] == d["epsilon_spent"]
    assert d["ledger"]["noise_multiplier"] == d["noise_multiplier"] > 0
    assert listing(workdir) == set()


def test_run_json_non_private(capsys, workdir):
    code, out, err = cli(
        capsys, "run", "--dataset", "breast_cancer", "--non-private", "--epochs", "2", "--json"
    )
    assert code == 0, err
    d = json.loads(out)
    _check_run_json(d, n_test=114)
    assert d["privacy"] == "none"
    for key in ("epsilon_target", "epsilon_spent", "delta", "noise_multiplier", "accountant"):
        assert d[key] is None, key
    assert d["steps"] == 2 * math.ceil(455 / 64)
    assert d["lr"] == 0.001  # breast_cancer's preset


def test_run_text(capsys, workdir):
    code, out, err = cli(capsys, "run", "--dataset", "pima", "--epochs", "1", "--epsilon", "8")
    assert code == 0, err
    assert "target ε = 8" in out
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.split()[:7] == [
        "pre", "rec", "spe", "f1", "geo", "iba", "sup"
    ])  # fmt: skip
    assert lines[head + 1].startswith("0 (non-diabetic)")
    assert lines[head + 2].startswith("1 (diabetic)")
    assert lines[head + 3].startswith("avg/total")
    assert lines[head + 3].split()[-1] == "154"


@pytest.mark.filterwarnings("always::imbalanced_dp.exceptions.DataWarning")
def test_run_user_csv(capsys, workdir, make_table):
    t = make_table(60, 30)
    t["y"] = np.where(t["y"] == 1, "sick", "healthy")
    path = workdir.parent / "patients.csv"
    t.to_csv(path, index=False)
    code, out, err = cli(
        capsys, "run", "--csv", path, "--target", "y", "--epochs", "2", "--batch-size", "8",
        "--json",
    )  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    _check_run_json(d, n_test=18)
    assert d["dataset"] == "patients"
    assert d["train_class_counts"] == [48, 24]
    assert d["steps"] == 2 * 9
    # the positive class can be chosen; it changes which rows are label 1
    code, out, err = cli(
        capsys, "run", "--csv", path, "--target", "y", "--positive", "healthy", "--epochs", "2",
        "--batch-size", "8", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["train_class_counts"] == [24, 48]
    assert listing(workdir) == set()


# ----------------------------------------------------------------------------- bad input


def test_run_refuses_bad_tables(capsys, workdir, bad_table):
    argv = ["run", "--csv", bad_table.path, "--target", bad_table.target, "--epochs", "1"]
    if bad_table.positive is not None:
        argv += ["--positive", bad_table.positive]
    code, out, err = cli(capsys, *argv)
    assert_bad_input(code, out, err, *bad_table.fragments)
    assert listing(workdir) == set()


def test_run_refuses_an_unreadable_file(capsys, workdir, good_csv, monkeypatch):
    # chmod 000 does not stop root, who may run the tests: simulate the refusal.
    def deny(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)
    code, out, err = cli(capsys, "run", "--csv", good_csv, "--target", "y", "--epochs", "1")
    assert_bad_input(code, out, err, "cannot read", "permission denied")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file"
)
def test_run_refuses_a_file_without_read_permission(capsys, workdir, good_csv):
    good_csv.chmod(0)
    try:
        code, out, err = cli(capsys, "run", "--csv", good_csv, "--target", "y")
    finally:
        good_csv.chmod(0o644)
    assert_bad_input(code, out, err, "permission denied")


INVALID_PARAMETERS = [
    (["--epsilon", "0"], ["epsilon must be a positive number; got 0.0"]),
    (["--epsilon", "-1"], ["epsilon must be a positive number; got -1.0"]),
    (["--epsilon", "nan"], ["epsilon must be a positive number"]),
    (["--epsilon", "inf"], ["epsilon must be a positive number"]),
    # pima's training split has n = 614 rows: δ must be below 1/614 = 0.00163
    (["--delta", "0.01"], ["delta 0.01 is not below 1/n", "n = 614", "choose delta < 1/n"]),
    (["--delta", str(1 / 614)], ["is not below 1/n"]),
    (["--delta", "0"], ["delta must be in (0, 1)"]),
    (["--delta", "1"], ["delta must be in (0, 1)"]),
    (["--batch-size", "615"], ["batch size must be between 1 and the 614 training rows"]),
    (["--batch-size", "0"], ["batch size must be at least 1; got 0"]),
    (["--batch-size", "-5"], ["batch size must be at least 1"]),
    (["--epochs", "0"], ["epochs must be at least 1; got 0"]),
    (["--epochs", "-3"], ["epochs must be at least 1"]),
    (["--lr", "0"], ["learning rate must be a positive number; got 0.0"]),
    (["--lr", "-0.1"], ["learning rate must be a positive number"]),
    (["--lr", "inf"], ["learning rate must be a positive number"]),
    (["--clip", "0"], ["clip bound C must be a positive number; got 0.0"]),
    (["--clip", "-1"], ["clip bound C must be a positive number"]),
    (["--clip", "nan"], ["clip bound C must be a positive number"]),
    (
        ["--epsilon", "1e-9", "--epochs", "1", "--accountant", "rdp"],
        ["cannot be reached", "budget is too small"],
    ),
    (["--non-private", "--epsilon", "1"], ["either --epsilon or --non-private"]),
    (["--seed", "-1"], ["seed must be a non-negative integer"]),
    (["--test-fraction", "1.5"], ["test fraction must be in (0, 1)"]),
    (["--minority-fraction", "0.9"], ["above the natural share"]),
    (["--epochs", "abc"], ["'abc' is not a valid integer", "imbalanced-dp run --help"]),
    (["--engine", "tpu"], ["'tpu' is not one of"]),
    (["--accountant", "gdp"], ["'gdp' is not one of"]),
]


@pytest.mark.parametrize(("args", "fragments"), INVALID_PARAMETERS)
def test_run_refuses_invalid_parameters(capsys, workdir, args, fragments):
    code, out, err = cli(capsys, "run", "--dataset", "pima", *args)
    assert_bad_input(code, out, err, *fragments)
    assert listing(workdir) == set()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([], ["give a dataset"]),
        (["--dataset", "nope"], ["unknown dataset 'nope'", "pima, breast_cancer"]),
        (["--dataset", "pima", "--csv", "x.csv", "--target", "y"], ["not both"]),
        (["--csv", "x.csv"], ["needs --target COL"]),
        (["--dataset", "pima", "--target", "y"], ["apply to --csv tables only"]),
    ],
)
def test_run_refuses_bad_dataset_options(capsys, workdir, args, fragments):
    code, out, err = cli(capsys, "run", *args)
    assert_bad_input(code, out, err, *fragments)


def test_run_batch_size_above_a_user_tables_training_rows(capsys, workdir, good_csv):
    # good.csv: 60 rows, 48 in training
    code, out, err = cli(capsys, "run", "--csv", good_csv, "--target", "y")
    assert_bad_input(code, out, err, "between 1 and the 48 training rows; got 64")


@pytest.mark.filterwarnings("always::imbalanced_dp.privacy.PrivacyWarning")
def test_run_warns_for_a_large_delta(capsys, workdir):
    # 1/(10 n) = 0.000163 < δ = 0.0005 < 1/n = 0.00163: allowed, with a one-line warning
    code, out, err = cli(
        capsys, "run", "--dataset", "pima", "--delta", "0.0005", "--epochs", "1", "--json"
    )
    assert code == 0, err
    lines = [line for line in err.splitlines() if not line.startswith(NO_MINORITY)]
    assert lines == [
        f"{PROG}: warning: delta 0.0005 is above 1/(10 n) = 0.000163 for n = 614: "
        "a smaller delta is recommended (e.g. 0.0001)"
    ]
    d = json.loads(out)
    assert d["delta"] == 0.0005
    assert d["epsilon_spent"] <= 2.0


def test_run_program_bad_input_and_warning(tmp_path, make_table):
    t = make_table()
    t["f2"] = t["f2"].astype(float)
    t.loc[4, "f2"] = np.nan
    t.to_csv(tmp_path / "gaps.csv", index=False)
    proc = program("run", "--csv", "gaps.csv", "--target", "y", cwd=tmp_path)
    assert_bad_input(proc.returncode, proc.stdout, proc.stderr, "f2 (1 missing)")
    proc = program("run", "--dataset", "pima", "--clip", "0", cwd=tmp_path)
    assert_bad_input(
        proc.returncode, proc.stdout, proc.stderr, "clip bound C must be a positive number"
    )
    proc = program("run", "--dataset", "pima", "--delta", "0.0005", "--epochs", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.startswith(NO_MINORITY)]
    assert lines == [
        f"{PROG}: warning: delta 0.0005 is above 1/(10 n) = 0.000163 for n = 614: "
        "a smaller delta is recommended (e.g. 0.0001)"
    ]
    assert "DP-SGD: target ε = 2" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaps.csv"]


# ----------------------------------------------------------------------------- reproduce


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--seeds", "0"], ["--seeds must be at least 1; got 0"]),
        (["--epochs", "0"], ["--epochs must be at least 1; got 0"]),
        (["--seeds", "x"], ["'x' is not a valid integer", "imbalanced-dp reproduce --help"]),
        (["--out", "afile"], ["'afile' is a file"]),
        (["--out", "afile/sub"], ["afile is a file, not a folder"]),
        (["--engine", "nope"], ["'nope' is not one of"]),
    ],
)
def test_reproduce_refuses_bad_input(capsys, workdir, args, fragments):
    (workdir / "afile").write_text("x")
    argv = ["reproduce", "--epochs", "1", "--out", "out", *args]
    code, out, err = cli(capsys, *argv)
    assert_bad_input(code, out, err, *fragments)
    assert listing(workdir) == {"afile"}


def test_reproduce_program_bad_input(tmp_path):
    proc = program("reproduce", "--seeds", "0", "--out", "out", cwd=tmp_path)
    assert_bad_input(proc.returncode, proc.stdout, proc.stderr, "--seeds must be at least 1")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """``imbalanced-dp reproduce --seeds 1 --epochs 5 --out DIR``, run once as the real
    program."""
    cwd = tmp_path_factory.mktemp("reproduce")
    proc = program("reproduce", "--seeds", "1", "--epochs", "5", "--out", "out", cwd=cwd)
    return proc, cwd / "out"


@pytest.mark.slow
def test_reproduce_finishes_cleanly(reproduced):
    # Its speed (the issue asks for well under a minute) is measured outside the suite:
    # timed assertions on shared machines only measure the neighbours.
    proc, _ = reproduced
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "warning" not in proc.stderr.lower()
    assert "Table 3" in proc.stdout
    assert "Table 4" in proc.stdout
    assert "8 runs trained" in proc.stdout


@pytest.mark.slow
def test_reproduce_files(reproduced):
    proc, out = reproduced
    assert proc.returncode == 0, proc.stderr
    for name in ("results.csv", "predictions.csv", "config.json", "report/report.html"):
        assert (out / name).is_file(), name
    # Tables 3 and 4 in Markdown, LaTeX and CSV: in tables/, or in report/tables/ beside
    # the report's figures
    tables = [d for d in (out / "tables", out / "report" / "tables") if d.is_dir()]
    assert tables
    for name in ("table3", "table4"):
        for ext in ("md", "tex", "csv"):
            assert (tables[0] / f"{name}.{ext}").is_file(), (name, ext)
    t3 = pd.read_csv(tables[0] / "table3.csv")
    assert len(t3) == 2 * 3  # two datasets × (class 0, class 1, avg/total)
    config = json.loads((out / "config.json").read_text())
    assert config["runs"] == 8
    assert config["runs_failed"] == 0
    assert "opacus" in config["versions"]


@pytest.mark.slow
def test_reproduce_results_columns_and_rows(reproduced):
    _, out = reproduced
    res = pd.read_csv(out / "results.csv", dtype={"class": str})
    pred = pd.read_csv(out / "predictions.csv")
    assert tuple(res.columns) == RESULT_COLUMNS
    assert tuple(pred.columns) == PREDICTION_COLUMNS
    runs = res["run_id"].unique()
    # 2 datasets × (non-private + ε 8, 2, 1) × 1 seed
    assert len(runs) == 8
    assert len(res) == 3 * len(runs)
    assert set(pred["run_id"]) == set(runs)
    n_test = {"pima": 154, "breast_cancer": 114}
    by_run = res.groupby("run_id").first()
    assert len(pred) == sum(n_test[d] for d in by_run["dataset"])
    for run_id, g in res.groupby("run_id"):
        assert list(g["class"]) == ["0", "1", "avg/total"]
        assert len(pred[pred["run_id"] == run_id]) == n_test[g["dataset"].iloc[0]]
    assert sorted(by_run.groupby(["dataset", "privacy"]).size().items()) == [
        (("breast_cancer", "dp"), 3),
        (("breast_cancer", "none"), 1),
        (("pima", "dp"), 3),
        (("pima", "none"), 1),
    ]
    assert set(by_run["epsilon_target"].dropna()) == {8.0, 2.0, 1.0}
    assert set(by_run["epochs"]) == {5}
    assert set(by_run["seed"]) == {0}


@pytest.mark.slow
def test_reproduce_privacy_columns(reproduced):
    _, out = reproduced
    runs = pd.read_csv(out / "results.csv", dtype={"class": str}).groupby("run_id").first()
    n_train = {"pima": 614, "breast_cancer": 455}
    for _, r in runs.iterrows():
        per_epoch = math.ceil(n_train[r["dataset"]] / 64)
        assert r["steps"] == 5 * per_epoch
        if r["privacy"] == "none":
            for col in ("epsilon_target", "epsilon_spent", "noise_multiplier"):
                assert pd.isna(r[col]), col
            continue
        assert r["sample_rate"] == pytest.approx(1 / per_epoch)
        assert r["delta"] == 1e-4
        assert r["accountant"] == "pld"
        assert r["clip"] == 1.0
        assert r["epsilon_target"] - 0.01 <= r["epsilon_spent"] <= r["epsilon_target"]
        # the stored ε is what the accountant gives for the stored mechanism
        from imbalanced_dp.privacy import epsilon_spent

        again = epsilon_spent(
            noise_multiplier=r["noise_multiplier"],
            sample_rate=r["sample_rate"],
            steps=int(r["steps"]),
            delta=r["delta"],
            accountant="pld",
        )
        assert again == pytest.approx(r["epsilon_spent"], rel=1e-9)


@pytest.mark.slow
def test_reproduce_metrics_recomputed_from_predictions(reproduced):
    """Every metric row of results.csv follows from predictions.csv by imbalanced-learn."""
    from imblearn.metrics import classification_report_imbalanced

    _, out = reproduced
    res = pd.read_csv(out / "results.csv", dtype={"class": str})
    pred = pd.read_csv(out / "predictions.csv")
    metrics = ["pre", "rec", "spe", "f1", "geo", "iba"]
    checked = 0
    for run_id, p in pred.groupby("run_id"):
        rep = classification_report_imbalanced(
            p["y_true"], p["y_pred"], labels=[0, 1], output_dict=True, zero_division=0
        )
        rows = res[res["run_id"] == run_id].set_index("class")
        for c in ("0", "1"):
            for m in metrics:
                assert rows.loc[c, m] == pytest.approx(rep[c][m], abs=1e-9), (run_id, c, m)
            assert rows.loc[c, "sup"] == rep[c]["sup"]
        for m in metrics:
            assert rows.loc["avg/total", m] == pytest.approx(rep[f"avg_{m}"], abs=1e-9)
        assert rows.loc["avg/total", "sup"] == rep["total_support"] == len(p)
        acc = float(np.mean(p["y_true"] == p["y_pred"]))
        bal = np.mean([np.mean(p["y_pred"][p["y_true"] == c] == c) for c in (0, 1)])
        assert rows["accuracy"].to_numpy() == pytest.approx(acc, abs=1e-9)
        assert rows["balanced_accuracy"].to_numpy() == pytest.approx(bal, abs=1e-9)
        checked += 1
    assert checked == 8


@pytest.mark.slow
def test_reproduce_predictions_are_the_test_rows(reproduced):
    """``row`` indexes the dataset; ``y_true`` is its label; ``y_pred`` is the argmax of the
    probabilities; the split of a seed is the same at every privacy level (paired)."""
    _, out = reproduced
    res = pd.read_csv(out / "results.csv", dtype={"class": str})
    pred = pd.read_csv(out / "predictions.csv")
    dataset_of = res.groupby("run_id")["dataset"].first()
    assert pred["p_positive"].between(0, 1).all()
    decided = pred[(pred["p_positive"] - 0.5).abs() > 1e-12]
    np.testing.assert_array_equal(decided["y_pred"], (decided["p_positive"] > 0.5).astype(int))
    for name in ("pima", "breast_cancer"):
        y = load_dataset(name).y
        sets = []
        for run_id in dataset_of[dataset_of == name].index:
            p = pred[pred["run_id"] == run_id]
            np.testing.assert_array_equal(p["y_true"].to_numpy(), y[p["row"].to_numpy()])
            assert p["row"].is_unique
            sets.append(tuple(sorted(p["row"])))
        assert len(set(sets)) == 1
