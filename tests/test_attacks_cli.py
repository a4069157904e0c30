"""The ``audit`` command (tiny settings)."""

from __future__ import annotations

import json

import pytest

from imbalanced_dp.cli._main import main

TINY = ["--shadows", "4", "--epochs", "2", "--canaries", "20", "--bootstrap", "20"]


def test_audit_json_has_the_documented_records(capsys):
    code = main(["audit", "--dataset", "pima", "--privacy", "none,2", *TINY, "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert err == ""  # quiet with --json
    obj = json.loads(out)
    keys = {"privacy", "epsilon", "class", "attack", "auc", "tpr_at_fpr_1pct", "tpr_at_fpr_0_1pct"}
    assert obj["results"]
    for r in obj["results"]:
        assert keys <= set(r)
        assert r["tpr_at_fpr_1pct_low"] <= r["tpr_at_fpr_1pct_high"]
    assert {(r["privacy"], r["epsilon"]) for r in obj["results"]} == {("none", None), ("2", 2.0)}
    assert {r["class"] for r in obj["results"]} == {"0", "1", "all"}
    audit = {a["privacy"]: a for a in obj["audit"]}
    assert set(audit) == {"none", "sigma0", "2"}
    for a in audit.values():
        assert {"privacy", "epsilon", "epsilon_lower_bound", "canaries"} <= set(a)
        assert a["canaries"] == 20
    assert audit["2"]["epsilon_lower_bound"] <= 2.0


def test_audit_text_output_and_progress(capsys, tmp_path):
    code = main(
        [
            "audit",
            "--dataset",
            "pima",
            "--privacy",
            "1",
            *TINY,
            "--attacks",
            "loss",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert "TPR @ 1% FPR" in out
    assert "ε_LB" in out
    assert "σ=0 control" in out
    assert "training" in err  # progress on stderr
    assert (tmp_path / "o" / "audit.json").exists()
    assert (tmp_path / "o" / "mia_roc.png").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--dataset", "pima", "--privacy", "foo"], "privacy"),
        (["--dataset", "pima", "--shadows", "2"], "shadows"),
        (["--dataset", "pima", "--canaries", "1"], "canaries"),
        (["--dataset", "pima", "--attacks", "gradient"], "attacks"),
        (["--dataset", "pima", "--csv", "x.csv"], "not both"),
        (["--dataset", "nope"], "unknown dataset"),
        (["--csv", "missing.csv", "--target", "y"], "missing.csv"),
    ],
)
def test_audit_bad_input_is_one_line_and_exit_code_2(capsys, args, needle):
    code = main(["audit", *args])
    _, err = capsys.readouterr()
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
