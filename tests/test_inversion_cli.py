"""``audit --attacks inversion``, the study key ``attacks = ["inversion"]`` and the report
section (tiny settings)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from imbalanced_dp.cli._main import main

TINY = ["--epochs", "3", "--seeds", "2", "--canaries", "0"]
KEYS = {
    "privacy",
    "epsilon",
    "attribute",
    "class",
    "attack",
    "member_success",
    "nonmember_success",
    "imputation_success",
    "advantage_vs_imputation",
    "advantage_members",
}


def test_audit_inversion_json_has_every_column_class_and_level(capsys):
    args = ["--dataset", "pima", "--attacks", "inversion", "--privacy", "none,2"]
    code = main(["audit", *args, *TINY, "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert err == ""
    obj = json.loads(out)
    assert obj["results"] == []  # no membership inference asked for
    inv = obj["inversion"]
    res = inv["results"]
    cols = {
        "Pregnancies",
        "Glucose",
        "BloodPressure",
        "SkinThickness",
        "Insulin",
        "BMI",
        "DiabetesPedigreeFunction",
        "Age",
    }
    combos = {(r["privacy"], r["attribute"], r["class"], r["attack"]) for r in res}
    assert combos == {
        (p, a, c, k)
        for p in ("none", "2")
        for a in cols
        for c in ("0", "1", "all")
        for k in ("confidence", "learned")
    }
    assert len(res) == len(combos)
    for r in res:
        assert set(r) >= KEYS
        for k in ("member_success", "advantage_vs_imputation", "advantage_members"):
            assert f"{k}_low" in r and f"{k}_high" in r
            assert r[f"{k}_low"] <= r[k] <= r[f"{k}_high"]
        assert 0 <= r["member_success"] <= 1
        assert r["advantage_vs_imputation"] == pytest.approx(
            r["member_success"] - r["imputation_success"]
        )
        if r["privacy"] == "2":
            assert r["epsilon"] == 2.0
            assert r["dp_bound_respected"] is True
    assert {m["privacy"] for m in inv["model_inversion"]} == {"none", "2"}
    assert {g["metric"] for g in inv["class_gaps"]} == {
        "advantage_vs_imputation",
        "advantage_members",
        "advantage_members_adjusted",
    }


def test_audit_inversion_with_membership_inference_text_and_files(capsys, tmp_path):
    out_dir = tmp_path / "o"
    code = main(
        [
            "audit",
            "--dataset",
            "pima",
            "--attacks",
            "loss,inversion",
            "--privacy",
            "none",
            "--shadows",
            "4",
            "--bootstrap",
            "10",
            "--attribute",
            "Glucose",
            "--attribute",
            "BMI",
            "--bins",
            "4",
            "--members",
            "200",
            *TINY,
            "--out",
            str(out_dir),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert "TPR @ 1% FPR" in out  # membership inference still there
    assert "Attribute inference on pima" in out
    assert "Class inversion" in out
    assert "learned − imputation" in out
    assert "attribute inference on 2 column(s)" in err  # progress on stderr
    obj = json.loads((out_dir / "audit.json").read_text())
    assert {r["attack"] for r in obj["results"]} == {"loss"}
    inv = obj["inversion"]
    assert {r["attribute"] for r in inv["results"]} == {"Glucose", "BMI"}
    assert all(r["bins"] == 4 for r in inv["results"])
    assert inv["config"]["members"] == 200
    for stem in ("mia_roc", "inversion_advantage", "model_inversion"):
        assert (out_dir / f"{stem}.png").stat().st_size > 0
        assert (out_dir / f"{stem}.svg").exists()


def _write_csv(path, extra: dict) -> None:
    rng = np.random.default_rng(0)
    n = 90
    y = np.r_[np.zeros(60, int), np.ones(30, int)]
    df = pd.DataFrame({"f1": rng.normal(size=n) + y, "f2": rng.normal(size=n), **extra, "y": y})
    df.to_csv(path, index=False)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--dataset", "pima", "--attribute", "Weight"], ["'Weight' is not a column of pima"]),
        (["--dataset", "pima", "--attribute", "Outcome"], ["'Outcome' is the target column"]),
        ("csv", ["'const' is constant"]),
        ("csv-few", ["'rare' has too few distinct values to quantise"]),
        (["--dataset", "pima", "--attacks", "loss", "--attribute", "BMI"], ["add inversion"]),
        (["--dataset", "pima", "--seeds", "1"], ["--seeds must be at least 2"]),
        (["--dataset", "pima", "--members", "400"], ["at most 256"]),
        # refused before membership inference spends minutes training
        (["--dataset", "pima", "--attacks", "loss,inversion", "--members", "400"], ["at most"]),
        (["--dataset", "pima", "--attacks", "lira,inversion", "--attribute", "X"], ["'X'"]),
    ],
)
def test_audit_inversion_bad_input_is_one_line_exit_2_nothing_written(
    capsys, tmp_path, args, needles
):
    if args in ("csv", "csv-few"):
        path = tmp_path / "t.csv"
        if args == "csv":
            _write_csv(path, {"const": np.full(90, 4.0)})
            args = ["--csv", str(path), "--target", "y", "--attribute", "const"]
        else:
            _write_csv(path, {"rare": np.r_[np.zeros(88), [1.0, 1.0]]})
            args = ["--csv", str(path), "--target", "y", "--attribute", "rare"]
    if "--attacks" not in args:
        args = [*args, "--attacks", "inversion"]
    out_dir = tmp_path / "out"
    code = main(["audit", *args, "--epochs", "2", "--canaries", "0", "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("imbalanced-dp: error:")
    for needle in needles:
        assert needle in err
    assert out == ""
    assert not out_dir.exists()


def test_csv_target_column_is_refused_by_name(capsys, tmp_path):
    path = tmp_path / "t.csv"
    # (f3 not an integer per row: an identifier-like column would add a warning line)
    _write_csv(path, {"f3": np.arange(90.0) * 0.5 + 0.25})
    args = ["--csv", str(path), "--target", "y", "--attacks", "inversion", "--attribute", "y"]
    code = main(["audit", *args, "--canaries", "0"])
    _, err = capsys.readouterr()
    assert code == 2
    assert "'y' is the target column" in err
    assert "f1, f2, f3" in err


def test_study_key_runs_inversion_and_the_report_shows_it(tmp_path):
    from imbalanced_dp.attacks import run_study_attacks
    from imbalanced_dp.reports import threat_sections
    from imbalanced_dp.studies import ResultsStore, spec_from_dict

    rng = np.random.default_rng(1)
    n = 150
    y = (np.arange(n) % 3 == 0).astype(int)
    table = pd.DataFrame(
        {"age": rng.normal(50, 10, n) + 5 * y, "bmi": rng.normal(30, 4, n), "y": y}
    )
    table.to_csv(tmp_path / "tab.csv", index=False)
    spec = spec_from_dict(
        {
            "name": "t",
            "datasets": [{"csv": "tab.csv", "target": "y"}],
            "privacy": ["none", 2],
            "epochs": 3,
            "batch_size": 16,
            "attacks": ["inversion"],
        },
        base=tmp_path,
    )
    assert spec.attacks == ["inversion"]
    name = spec.datasets[0].label
    store = ResultsStore(tmp_path / "r.sqlite")
    msgs: list[str] = []
    keys = run_study_attacks(spec, store, [], echo=msgs.append, inversion_seeds=2)
    assert set(keys) == {f"inversion:{name}:none", f"inversion:{name}:2"}
    assert store.extras("attack").empty  # no membership inference, no audit asked for
    stored = store.extras("inversion")
    by_key = dict(zip(stored["run_id"], stored["payload"]))
    p2 = by_key[f"inversion:{name}:2"]
    assert {r["privacy"] for r in p2["results"]} == {"2"}
    assert {r["attribute"] for r in p2["results"]} == {"age", "bmi"}
    assert {m["class"] for m in p2["model_inversion"]} == {"0", "1"}
    json.dumps(p2, allow_nan=False)
    # same settings again: nothing recomputed
    assert run_study_attacks(spec, store, [], echo=msgs.append, inversion_seeds=2) == []
    assert any("already stored" in m for m in msgs)

    out = tmp_path / "report"
    (sec,) = threat_sections(store, None, out)
    assert "attribute inference" in sec.title
    assert "Attribute inference: can the model give away a hidden column?" in sec.html
    assert "Class inversion: the model" in sec.html
    assert sec.html.count("data:image/png;base64,") == 2
    assert "what the model learned about the class as a whole" in sec.html
    assert all((out / f).exists() for f in sec.files)
    stems = {f.stem.split("_tab")[0] for f in sec.files}
    assert stems == {"inversion_advantage", "model_inversion", "attribute_inference"}
    assert {f.suffix for f in sec.files} == {".png", ".svg", ".csv"}
    csv = next(f for f in sec.files if f.name.startswith("attribute_inference"))
    assert set(pd.read_csv(out / csv).columns) >= KEYS
    assert threat_sections(store, ["no-such-run"], out) == []
    # the whole report builder picks the section up
    from imbalanced_dp.reports import build_report

    page = build_report(store, tmp_path / "full").read_text(encoding="utf-8")
    assert "Threats: attribute inference and class inversion" in page
    assert "Class inversion: the model" in page
    store.close()


def test_study_spec_rejects_unknown_attacks():
    from imbalanced_dp.exceptions import SpecError
    from imbalanced_dp.studies import spec_from_dict

    with pytest.raises(SpecError, match="inversion"):
        spec_from_dict({"name": "t", "datasets": ["pima"], "attacks": ["invert"]})


def test_advantage_and_inversion_figures_structure():
    from imbalanced_dp.reports import advantage_figure, model_inversion_figure

    results = [
        {
            "privacy": p,
            "attribute": a,
            "class": c,
            "attack": k,
            "advantage_vs_imputation": 0.01 * i,
            "advantage_vs_imputation_low": 0.01 * i - 0.02,
            "advantage_vs_imputation_high": 0.01 * i + 0.02,
            "advantage_members_adjusted": 0.0,
            "advantage_members_adjusted_low": -0.01,
            "advantage_members_adjusted_high": 0.01,
        }
        for i, p in enumerate(("none", "8", "2", "1"))
        for a in ("A", "B", "C")
        for c in ("0", "1", "all")
        for k in ("confidence", "learned")
    ]
    fig = advantage_figure(results)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["A", "B", "C"]
    for ax in axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "ε=8", "ε=2", "ε=1"]
        # 2 classes × 2 measures with error bars (the "all" class is not drawn)
        series = [c for c in ax.containers if c.get_label().startswith("class")]
        assert len(series) == 4
        ys = {tuple(np.round(c.lines[0].get_ydata(), 6)) for c in series}
        assert (0.0, 0.01, 0.02, 0.03) in ys
        assert any(ln.get_ydata()[0] == 0.0 for ln in ax.get_lines())  # the zero line
    labels = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert any("1 minority" in x and "imputation" in x for x in labels)

    feats = ["f1", "f2", "f3"]
    records = [
        {
            "privacy": p,
            "class": c,
            "class_name": "n",
            "features": feats,
            "reconstruction_scaled": [0.1, 0.2, 0.3],
            "reconstruction_scaled_sd": [0.1, 0.1, 0.1],
            "class_mean_scaled": [0.0, 0.5, -0.5],
        }
        for p in ("none", "1")
        for c in ("0", "1")
    ]
    fig = model_inversion_figure(records)
    axes = fig.get_axes()
    assert len(axes) == 2
    for ax in axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == feats
        labels = [ln.get_label() for ln in ax.get_lines()]
        assert "class mean" in labels and "non-private" in labels and "ε = 1" in labels
