"""Report folders that never overwrite each other or keep stale files (issue 16, item 5),
and the small things of item 11: export headers, status order, report numbering, figure
legibility, claim 1 on other data, ``dir(imbalanced_dp)``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imbalanced_dp.reports import _sections
from imbalanced_dp.reports._folder import MANIFEST
from imbalanced_dp.studies import ResultsStore
from test_cli import assert_bad_input, cli
from test_reports import SEEDS, _result, write_store


def small_store(path: Path) -> None:
    """A small synthetic store (one dataset, two privacy levels, a mitigation): quick to
    report on."""
    with ResultsStore(path) as store:
        runs = [_result("breast_cancer", None, eps, s) for eps in (None, 8.0) for s in SEEDS]
        runs += [_result("breast_cancer", None, 8.0, s, mitigation="dpsgd_f") for s in SEEDS]
        store.write_results(runs)


@pytest.fixture
def stores(tmp_path) -> Path:
    """Two stores in one folder."""
    d = tmp_path / "results"
    d.mkdir()
    for name in ("a", "b"):
        small_store(d / f"{name}.sqlite")
    return d


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ----------------------------------------------------------------------------- item 5


def test_stores_in_one_folder_get_their_own_reports(capsys, stores):
    for name in ("a", "b"):
        code, out, err = cli(capsys, "report", "--store", stores / f"{name}.sqlite")
        assert code == 0, err
        assert out == f"report: {stores / f'{name}-report' / 'report.html'}\n"
    names = sorted(p.name for p in stores.iterdir() if not p.name.endswith(("-wal", "-shm")))
    assert names == [
        "a-report", "a.sqlite", "b-report", "b.sqlite"
    ]  # fmt: skip
    for name in ("a", "b"):
        m = json.loads((stores / f"{name}-report" / MANIFEST).read_text())
        assert m["format"] == "imbalanced-dp report"
        assert m["store"] == f"{name}.sqlite"
        assert "report.html" in m["files"]
        on_disk = set(_tree(stores / f"{name}-report")) - {MANIFEST}
        assert set(m["files"]) == on_disk


def test_a_new_report_keeps_nothing_of_the_old_one(capsys, stores):
    store = stores / "a.sqlite"
    assert cli(capsys, "report", "--store", store)[0] == 0
    folder = stores / "a-report"
    (folder / "figures" / "stale_figure.png").write_bytes(b"old")
    (folder / "tables" / "stale.csv").write_text("old\n")
    before = set(_tree(folder))
    assert cli(capsys, "report", "--store", store)[0] == 0
    after = set(_tree(folder))
    assert after == before - {"figures/stale_figure.png", "tables/stale.csv"}
    assert not [p for p in stores.iterdir() if p.name.startswith(".")]  # no scratch left


def test_a_folder_that_is_not_a_report_is_refused_unless_forced(capsys, stores, tmp_path):
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work\n")
    before = _tree(mine)
    code, out, err = cli(capsys, "report", "--store", stores / "a.sqlite", "-o", mine)
    assert_bad_input(
        code, out, err, "my-notes exists and is not an imbalanced-dp report", "--force"
    )
    assert _tree(mine) == before
    code, out, err = cli(capsys, "report", "--store", stores / "a.sqlite", "-o", mine, "--force")
    assert code == 0, err
    assert not (mine / "thesis.tex").exists()
    assert (mine / MANIFEST).exists()
    # a file in the way is refused even with --force
    f = tmp_path / "afile"
    f.write_text("x")
    code, out, err = cli(capsys, "report", "--store", stores / "a.sqlite", "-o", f, "--force")
    assert_bad_input(code, out, err, "is a file")
    # an empty folder and a report written before the manifest existed are ours to replace
    legacy = tmp_path / "legacy"
    (legacy / "figures").mkdir(parents=True)
    (legacy / "report.html").write_text("<html></html>")
    (legacy / "findings.md").write_text("old")
    assert cli(capsys, "report", "--store", stores / "a.sqlite", "-o", legacy)[0] == 0
    assert (legacy / MANIFEST).exists()


def test_an_interrupted_report_leaves_the_previous_one_whole(capsys, stores):
    store_path = stores / "a.sqlite"
    assert cli(capsys, "report", "--store", store_path)[0] == 0
    folder = stores / "a-report"
    before = _tree(folder)

    def interrupt(store, run_ids, out_dir):
        assert (Path(out_dir) / "report.html").exists() is False  # mid-way
        raise KeyboardInterrupt

    _sections.register_section_provider(interrupt)
    try:
        code, _, _ = cli(capsys, "report", "--store", store_path)
    finally:
        _sections.SECTION_PROVIDERS.remove(interrupt)
    assert code == 130
    assert _tree(folder) == before
    assert not [p for p in stores.iterdir() if p.name.startswith(".")]


def test_scratch_folders_of_killed_reports_are_cleaned(capsys, stores):
    # what `kill -9` during a report leaves: a hidden scratch folder of a process now gone
    dead = stores / ".a-report.tmp-999999999-abcd"
    (dead / "figures").mkdir(parents=True)
    (dead / "report.html").write_text("half")
    other = stores / ".b-report.tmp-999999999-abcd"  # another report's: not ours to touch
    other.mkdir()
    assert cli(capsys, "report", "--store", stores / "a.sqlite")[0] == 0
    assert not dead.exists()
    assert other.exists()
    assert not (stores / "a-report" / "report.html").read_text().startswith("half")


def test_study_run_checks_its_report_folder_before_the_store(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    store = tmp_path / "s.sqlite"
    code, out, err = cli(
        capsys, "study", "run", "--dataset", "pima", "--store", store, "--report-dir", busy, "-q"
    )
    assert_bad_input(code, out, err, "--report-dir", "not an imbalanced-dp report")
    assert not store.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


# ----------------------------------------------------------------------------- item 11


def test_export_writes_a_header_for_an_empty_aggregate(capsys, stores):
    code, out, err = cli(capsys, "study", "export", "--store", stores / "b.sqlite")
    assert code == 0, err
    folder = stores / "b-export"  # named after the store, like the report
    assert out.splitlines()[0] == str(folder / "results.csv")
    text = (folder / "aggregate_mitigation_effects.csv").read_text()
    # the store has a mitigation: remove its runs to get an empty aggregate
    with ResultsStore(stores / "b.sqlite") as s:
        s._con.execute("DELETE FROM class_metrics WHERE run_id LIKE '%dpsgd_f%'")
        s._con.execute("DELETE FROM predictions WHERE run_id LIKE '%dpsgd_f%'")
        s._con.execute("DELETE FROM runs WHERE run_id LIKE '%dpsgd_f%'")
    assert len(text.splitlines()) > 1
    shutil.rmtree(folder)
    assert cli(capsys, "study", "export", "--store", stores / "b.sqlite")[0] == 0
    empty = (folder / "aggregate_mitigation_effects.csv").read_text()
    assert empty.splitlines() == [text.splitlines()[0]]  # the same header, no rows
    assert empty.startswith("dataset,fraction,privacy,mitigation,scaling,config,measure,mean,")


def test_status_orders_groups_by_dataset_fraction_privacy_mitigation(capsys, tmp_path):
    store = tmp_path / "s.sqlite"
    labels = [
        "pima | minority=0.1 | eps=2 | none",
        "breast_cancer | minority=natural | eps=8 | none",
        "pima | minority=natural | eps=2 | dpsgd_f",
        "pima | minority=natural | none | none",
        "pima | minority=0.1 | none | none",
        "pima | minority=natural | eps=8 | none",
        "pima | minority=natural | eps=2 | none",
    ]
    with ResultsStore(store) as s:
        s.record_study("mixed", {}, [(f"r{i}", g) for i, g in enumerate(labels)])
    code, out, err = cli(capsys, "study", "status", "--store", store)
    assert code == 0, err
    rows = [line.split("  ")[1].strip() for line in out.splitlines() if " | " in line]
    assert rows == [
        "breast_cancer | minority=natural | eps=8 | none",
        "pima | minority=natural | none | none",
        "pima | minority=natural | eps=8 | none",
        "pima | minority=natural | eps=2 | none",
        "pima | minority=natural | eps=2 | dpsgd_f",
        "pima | minority=0.1 | none | none",
        "pima | minority=0.1 | eps=2 | none",
    ]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    from imbalanced_dp.reports import build_report

    tmp = tmp_path_factory.mktemp("numbered")
    store = write_store(tmp / "r.sqlite")
    path = build_report(store, tmp / "out")
    store.close()
    return path.read_text(encoding="utf-8")


def test_headings_name_the_studys_tables_and_visible_numbers_have_no_gaps(page):
    heads = re.findall(r"<h2>([^<]*)</h2>", page)
    assert "Non-private models (the study&#x27;s Table 3)" in heads
    assert not [h for h in heads if re.search(r"\(Table \d\)", h)]
    # numbers outside collapsed <details> run 1, 2, 3, ...; inside, S1, S2, ...
    outside = re.sub(r"<details>.*?</details>", "", page, flags=re.S)
    for kind in ("Figure", "Table"):
        nums = [int(n) for n in re.findall(rf"<b>{kind} (\d+)\.</b>", outside)]
        assert nums == list(range(1, len(nums) + 1)), (kind, nums)
    inside = "".join(re.findall(r"<details>.*?</details>", page, flags=re.S))
    assert re.findall(r"<b>Table (S?\d+)\.</b>", inside)[:2] == ["S1", "S2"]
    assert "PROTOCOL.md" not in page and "docs/protocol.md" in page


def test_heatmaps_show_the_datasets_in_one_order():
    from imbalanced_dp.reports._figures import heatmap_figure

    rows = [
        {"dataset": ds, "fraction": fr, "privacy": p, "mean": 0.5, "low": 0.4, "high": 0.6}
        for ds in ("pima", "breast_cancer")
        for fr in ("natural", "0.1")
        for p in ("none", "8")
    ]
    forward = pd.DataFrame(rows)
    backward = forward.iloc[::-1]
    order = ["breast_cancer", "pima"]
    titles = []
    for values in (forward, backward):
        fig = heatmap_figure(values, title="t", colorbar_label="c", datasets=order)
        titles.append([ax.get_title() for ax in fig.axes if ax.get_title()])
    assert titles[0] == titles[1]
    assert titles[0][0].startswith("breast_cancer")


def test_recall_gap_series_that_coincide_stay_apart():
    from imbalanced_dp.reports._figures import recall_gap_figure

    rows = [
        {"dataset": "pima", "fraction": fr, "privacy": p, "mitigation": "none",
         "measure": "recall_gap", "mean": 1.0, "low": 1.0, "high": 1.0}
        for fr in ("natural", "0.2", "0.1")
        for p in ("none", "8", "2", "1")
    ]  # fmt: skip
    fig = recall_gap_figure(pd.DataFrame(rows), pd.DataFrame())
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    assert len(lines) == 3
    assert len({ln.get_marker() for ln in lines}) == 3  # a marker per series
    xs = [tuple(np.round(ln.get_xdata(), 6)) for ln in lines]
    assert len(set(xs)) == 3  # shifted apart along ε
    for x in xs:  # by less than a tenth of a decade
        assert np.allclose(np.log10(x), np.log10([1, 2, 8]), atol=0.1)


def test_the_roc_figure_has_a_legend_entry_for_every_line():
    from imbalanced_dp.reports import roc_figure

    grid = [1e-4, 1e-2, 1.0]
    curves = [
        {"privacy": p, "epsilon": e, "delta": 1e-4, "attack": "loss", "class": c,
         "fpr": grid, "tpr": grid, "min_fpr": 1e-4}
        for p, e in (("none", None), ("2", 2.0))
        for c in ("0", "1")
    ]  # fmt: skip
    fig = roc_figure(curves)
    texts = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().texts]
    assert "chance" in texts
    assert "DP bound e^ε·FPR+δ" in texts  # the dashed black line of the DP panel
    assert sum(t.startswith(("class 0, ", "class 1, ")) for t in texts) == 2


def test_claim_1_on_a_users_table_does_not_name_pima():
    from imbalanced_dp.reports._claims import CLAIM_1_ANY_DATA, CLAIMS, claim_1
    from imbalanced_dp.reports._evidence import Evidence

    fair = pd.DataFrame(
        [{"dataset": "mytable", "fraction": "natural", "privacy": "none", "mitigation": "none",
          "measure": "recall_gap", "mean": 0.2, "low": 0.1, "high": 0.3, "n": 5,
          "std": 0.1, "p_value": 0.01}]
    )  # fmt: skip
    fields = Evidence.__dataclass_fields__
    empty = {k: pd.DataFrame() for k in fields if k not in ("fairness", "confidence")}
    ev = Evidence(fairness=fair, **empty)
    ev.skew = pd.DataFrame(columns=["kind", "measure", "privacy"])
    res = claim_1(ev)
    assert res.statement == CLAIM_1_ANY_DATA
    assert "PIMA" not in res.statement and "PIMA" in CLAIMS[1]


def test_dir_of_the_package_shows_the_api_only():
    import imbalanced_dp

    names = dir(imbalanced_dp)
    for private in ("TYPE_CHECKING", "annotations", "importlib", "_LAZY", "_EXPORTS"):
        assert private not in names
    assert set(imbalanced_dp.__all__) <= set(names)
