"""The study hook of private tuning (issue 14, item 5): a study key ``tuning`` whose
``"private"`` runs are private searches on the runs' training splits, stored like any other
run (with a ``tuning`` column), resumable, never pooled with the fixed runs, and drawn
beside them in the report."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from imbalanced_dp.exceptions import DataError, SpecError, StudyInterrupted
from imbalanced_dp.studies import (
    RESULT_COLUMNS,
    ResultsStore,
    aggregate_metrics,
    make_batches,
    run_runs,
    spec_from_dict,
    store_frame,
    validate_runs,
    with_overrides,
)
from test_cli import cli

#: A tiny study: pima, no DP and ε = 2, two seeds, both tunings, a small space.
TINY = {
    "name": "tiny-tuning",
    "datasets": ["pima"],
    "privacy": ["none", 2],
    "seeds": 2,
    "epochs": 5,
    "accountant": "rdp",
    "tuning": ["none", "private"],
    "tuning_trials": 3,
    "tuning_space": {
        "epochs": [5],
        "batch_size": [64, 128],
        "lr": [0.1, 0.3],
        "layers": [[]],
        "mitigation": ["none", "class_weighted"],
    },
}


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """The tiny study, run once in this process."""
    spec = spec_from_dict(TINY)
    path = tmp_path_factory.mktemp("tuning") / "store.sqlite"
    store = ResultsStore(path)
    out = run_runs(
        spec.expand(), store, study=spec.name, study_spec=spec.to_dict(), workers=1, quiet=True
    )
    assert (out.done, out.failed) == (8, 0), out.failures
    yield spec, store, out.run_ids
    store.close()


# ---------------------------------------------------------------- the spec


def test_the_default_is_no_tuning_and_keeps_run_ids_and_the_spec():
    plain = {k: v for k, v in TINY.items() if not k.startswith("tuning")}
    a = spec_from_dict(plain)
    b = spec_from_dict(TINY)
    assert a.tuning == ["none"]
    assert not any(k.startswith("tuning") for k in a.to_dict())  # as before tuning was a key
    fixed = validate_runs(a.expand())
    both = validate_runs(b.expand())
    assert len(both) == 2 * len(fixed)
    # the fixed runs of a tuned study are the study's runs without tuning (same run_ids)
    assert [rid for rid, _ in both[: len(fixed)]] == [rid for rid, _ in fixed]
    tuned = [s for _, s in both[len(fixed) :]]
    assert all(s.tuning == "private" and s.engine == "fast" for s in tuned)
    assert "tuning" not in fixed[0][1].to_dict()
    assert {"epochs", "lr", "mitigation"}.isdisjoint(tuned[0].to_dict())


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("tuning", "public", "tuning"),
        ("tuning", [], "tuning"),
        ("tuning_trials", 0, "tuning_trials"),
        ("tuning_objective", "accuracy", "tuning_objective"),
        ("tuning_holdout", 0.9, "tuning_holdout"),
        ("tuning_space", {"lr": []}, "tuning_space"),
        ("tuning_space", {"depth": [3]}, "tuning_space"),
    ],
)
def test_bad_tuning_keys_are_refused_naming_the_key(key, value, words):
    with pytest.raises(SpecError, match=words):
        spec_from_dict({**TINY, key: value})


def test_a_fraction_too_skewed_for_the_search_is_refused_before_anything_runs(tmp_path):
    spec = spec_from_dict({**TINY, "minority_fractions": [0.02]})
    with pytest.raises(DataError, match="tuning_holdout"):
        validate_runs(spec.expand())


def test_overrides_and_the_command_line_flag(capsys, tmp_path):
    spec = spec_from_dict({k: v for k, v in TINY.items() if not k.startswith("tuning")})
    got = with_overrides(spec, tuning=["private"], tuning_trials=4)
    assert got.tuning == ["private"] and got.tuning_trials == 4
    code, out, _ = cli(capsys, "study", "run", "--help")
    assert code == 0 and "--tuning" in out and "--tuning-trials" in out
    store = tmp_path / "s.sqlite"
    code, out, err = cli(
        capsys, "study", "run", "--dataset", "pima", "--epsilon", "2", "--seeds", "1",
        "--epochs", "5", "--tuning", "private", "--tuning-trials", "2", "--store", str(store),
        "--report-dir", str(tmp_path / "report"), "-q",
    )  # fmt: skip
    assert code == 0, err
    with ResultsStore(store) as s:
        runs = s.runs_frame()
    assert runs["tuning"].tolist() == ["private"]
    assert json.loads(runs["spec_json"].iloc[0])["tuning_trials"] == 2
    # a report of tuned runs only: their curve, no claims about fixed settings
    findings = (tmp_path / "report" / "findings.md").read_text(encoding="utf-8")
    assert "privately tuned runs only" in findings and "inside the run" in findings


def test_a_tuned_run_has_a_batch_of_its_own():
    runs = validate_runs(spec_from_dict(TINY).expand())
    batches = make_batches(runs, workers=1)
    for b in batches:
        kinds = {s.tuning for _, s in b.runs}
        assert len(kinds) == 1
        if kinds == {"private"}:
            assert len(b.runs) == 1


# ---------------------------------------------------------------- the runs


def test_tuned_rows_are_results_like_any_other(tiny_store):
    _, store, ids = tiny_store
    res = store.results_frame(ids)
    i = RESULT_COLUMNS.index("scaling") + 1
    assert tuple(res.columns) == (*RESULT_COLUMNS[:i], "tuning", *RESULT_COLUMNS[i:])
    assert set(res["tuning"]) == {"none", "private"}
    runs = store.runs_frame().set_index("run_id")
    tuned = runs[runs["tuning"] == "private"]
    fixed = runs[runs["tuning"] == "none"]
    assert len(tuned) == len(fixed) == 4
    assert set(tuned.index).isdisjoint(fixed.index)
    dp = tuned[tuned["privacy"] == "dp"]
    assert len(dp) == 2
    assert (dp["epsilon_spent"] <= dp["epsilon_target"]).all()
    assert dp["accountant"].str.contains("private selection").all()
    for _, row in tuned.iterrows():
        best = json.loads(row["tuned_json"])["best"]
        # the chosen settings fill the row's columns
        assert (row["lr"], row["batch_size"], row["epochs"]) == (
            best["lr"],
            best["batch_size"],
            best["epochs"],
        )
        assert row["mitigation"] == best["mitigation"] and row["layers"] == ""
        ledger = json.loads(row["ledger_json"])
        if row["privacy"] == "dp":
            assert ledger["selection"]["theorem"].startswith("Papernot & Steinke")
            assert ledger["epsilon_spent"] == pytest.approx(row["epsilon_spent"])
        else:
            assert row["mitigation"] == "none"  # the search without privacy
    # the same split as the fixed run of the same seed: training counts and test rows
    pred = store.predictions_frame(ids)
    for seed in (0, 1):
        for privacy in ("none", "dp"):
            a = fixed[(fixed["seed"] == seed) & (fixed["privacy"] == privacy)]
            b = tuned[(tuned["seed"] == seed) & (tuned["privacy"] == privacy)]
            cols = ["n_train", "train_count_0", "train_count_1", "test_count_1"]
            assert a[cols].to_numpy().tolist() == b[cols].to_numpy().tolist()
            rows_a = pred[pred["run_id"] == a.index[0]]["row"].tolist()
            rows_b = pred[pred["run_id"] == b.index[0]]["row"].tolist()
            assert rows_a == rows_b


def test_an_interrupted_study_resumes_to_the_same_rows(tiny_store, tmp_path):
    spec, whole, ids = tiny_store
    store = ResultsStore(tmp_path / "interrupted.sqlite")
    seen: list[str] = []

    def stop(results):
        seen.extend(r.run_id for r in results)
        if any(r.spec.tuned for r in results):
            raise KeyboardInterrupt

    with pytest.raises(StudyInterrupted):
        run_runs(spec.expand(), store, study=spec.name, workers=1, quiet=True, on_results=stop)
    assert 0 < len(store.done_ids()) < 8
    again = run_runs(spec.expand(), store, study=spec.name, workers=1, quiet=True)
    assert again.skipped == len(seen) and again.done == 8 - len(seen)
    pd.testing.assert_frame_equal(store.results_frame(ids), whole.results_frame(ids))
    pd.testing.assert_frame_equal(store.predictions_frame(ids), whole.predictions_frame(ids))
    store.close()


def test_aggregates_never_pool_fixed_and_tuned_runs(tiny_store):
    _, store, ids = tiny_store
    frame = store_frame(store, ids)
    assert (frame.groupby("config")["tuning"].nunique() == 1).all()
    tuned = frame[frame["tuning"] == "private"]
    assert set(tuned["mitigation"]) == {"searched"} == set(tuned["scaling"])
    agg = aggregate_metrics(frame)
    ba = agg[(agg["metric"] == "balanced_accuracy") & (agg["privacy"] == "2")]
    assert sorted(ba["mitigation"]) == ["none", "searched"]
    assert (ba["n"] == 2).all()  # two seeds each, never four


def test_a_store_of_before_tuning_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite"
    ResultsStore(path).close()
    con = sqlite3.connect(path)
    con.execute(
        "INSERT INTO runs (run_id, dataset, privacy, engine, mitigation, seed, status, "
        "spec_json) VALUES ('r1', 'pima', 'none', 'fast', 'none', 0, 'done', '{}')"
    )
    con.execute("ALTER TABLE runs DROP COLUMN tuned_json")
    con.execute("ALTER TABLE runs DROP COLUMN tuning")
    con.commit()
    con.close()
    with ResultsStore(path) as store:
        runs = store.runs_frame()
    assert runs["tuning"].tolist() == ["none"] and "tuned_json" in runs


# ---------------------------------------------------------------- the report


def test_the_report_draws_both_curves_and_says_what_tuning_costs(tiny_store, tmp_path):
    from imbalanced_dp.reports import build_report, tuning_curves

    _, store, ids = tiny_store
    curves = tuning_curves(store_frame(store, ids))
    for measure in ("balanced_accuracy", "minority_recall"):
        c = curves[curves["measure"] == measure]
        assert set(zip(c["privacy"], c["tuning"])) == {
            ("none", "none"),
            ("2", "none"),
            ("none", "private"),
            ("2", "private"),
        }
        assert (c["n"] == 2).all()
    path = build_report(store, tmp_path / "report", run_ids=ids)
    out = path.parent
    html = path.read_text(encoding="utf-8")
    assert "Fixed against privately tuned hyperparameters" in html
    assert "inside the run" in html
    written = pd.read_csv(out / "tables" / "tuning_curves.csv", dtype={"privacy": str})
    assert set(written["tuning"]) == {"none", "private"}
    assert (out / "figures" / "privacy_utility_tuning.png").exists()
    assert "privately tuned − fixed" in (out / "findings.md").read_text(encoding="utf-8")
    # the study's claims rest on the fixed runs: their tables hold no tuned run
    table4 = pd.read_csv(out / "tables" / "table4.csv")
    assert "searched" not in set(table4.astype(str).to_numpy().ravel())
