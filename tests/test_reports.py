"""The report: tables equal the aggregates they show, figures have the right structure,
report.html is one self-contained file, and it renders in a headless browser.

A small store is written from synthetic predictions (no training), so the whole file runs
in seconds.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imbalanced_dp.metrics import METRICS, per_class_report, run_scores
from imbalanced_dp.privacy import PrivacyLedger
from imbalanced_dp.reports import (
    SECTION_PROVIDERS,
    VERDICTS,
    Section,
    build_report,
    class_distribution_figure,
    confusion_figure,
    fraction_utility_figure,
    heatmap_figure,
    load_report_data,
    nonprivate_metrics_figure,
    privacy_utility_figure,
    recall_gap_figure,
    register_section_provider,
    save_figure,
    training_split_figure,
)
from imbalanced_dp.reports._figures import METRIC_TITLES
from imbalanced_dp.reports._tables import fairness_table, metric_table
from imbalanced_dp.studies import ResultsStore, RunResult
from imbalanced_dp.studies._runspec import DatasetRef, RunSpec

SEEDS = (0, 1, 2)
#: minority recall per (dataset, fraction, privacy): DP hurts the minority, more skew more.
MINORITY_RECALL = {
    ("pima", None): {None: 0.60, 8.0: 0.50, 1.0: 0.30},
    ("pima", 0.2): {None: 0.35, 8.0: 0.15, 1.0: 0.05},
    ("breast_cancer", None): {None: 0.85, 8.0: 0.75, 1.0: 0.55},
}
TEST_COUNTS = {"pima": (100, 54), "breast_cancer": (72, 42)}
TRAIN_COUNTS = {("pima", None): (400, 214), ("pima", 0.2): (400, 100)}


def _result(dataset, fraction, eps, seed, *, mitigation="none") -> RunResult:
    spec = RunSpec(
        dataset=DatasetRef(name=dataset),
        seed=seed,
        epsilon=eps,
        epochs=5,
        minority_fraction=fraction,
        mitigation=mitigation,
    )
    n0, n1 = TEST_COUNTS[dataset]
    # seed- and setting-specific jitter, so that paired differences are never constant
    key = [len(dataset), round(100 * (fraction or 1)), round(eps or 0), len(mitigation), seed]
    rng = np.random.default_rng(key)
    r1 = MINORITY_RECALL[(dataset, fraction)][eps] + rng.uniform(-0.06, 0.06)
    if mitigation != "none":
        r1 += 0.1
    r0 = 0.9 + rng.uniform(-0.05, 0.05)
    if dataset == "pima" and fraction == 0.2 and eps == 1.0 and seed == 0:
        r0, r1 = 1.0, 0.0  # this model never predicts the minority class
    k0, k1 = round(r0 * n0), round(min(max(r1, 0.0), 1.0) * n1)
    y_true = np.r_[np.zeros(n0, int), np.ones(n1, int)]
    y_pred = np.r_[
        np.zeros(k0, int), np.ones(n0 - k0, int), np.ones(k1, int), np.zeros(n1 - k1, int)
    ]
    rep = per_class_report(y_true, y_pred)
    metrics = [{"class": c, **rep.loc[c].to_dict()} for c in rep.index]
    tr0, tr1 = TRAIN_COUNTS.get((dataset, fraction), (285, 170))
    ledger = PrivacyLedger(
        privacy="dp" if eps else "none",
        sampling="poisson" if eps else "shuffle",
        steps=50,
        clip=1.0 if eps else None,
        accountant="prv" if eps else None,
        accountant_version="test 0" if eps else None,
        noise_multiplier=(8.0 / eps) if eps else None,
        sample_rate=0.1 if eps else None,
        expected_batch_size=61 if eps else None,
        delta=1e-4 if eps else None,
        epsilon_target=eps,
        epsilon_spent=eps * 0.999 if eps else None,
        not_covered=["the scaler is fitted outside DP-SGD"] if eps else ["no DP"],
        notes=["synthetic run for the report tests"],
    )
    return RunResult(
        run_id=f"{dataset}-{fraction}-{eps}-{mitigation}-{seed}",
        spec=spec,
        status="done",
        ledger=ledger,
        metrics=metrics,
        scores=run_scores(y_true, y_pred),
        predictions={
            "row": np.arange(n0 + n1),
            "y_true": y_true,
            "y_pred": y_pred,
            "p_positive": y_pred * 0.8 + 0.1,
        },
        data={
            "minority_fraction": tr1 / (tr0 + tr1),
            "n_train": tr0 + tr1,
            "train_count_0": tr0,
            "train_count_1": tr1,
            "test_count_0": n0,
            "test_count_1": n1,
        },
        versions={"imbalanced_dp": "test"},
    )


def write_store(path: Path) -> ResultsStore:
    store = ResultsStore(path)
    results = [
        _result(ds, fr, eps, seed)
        for (ds, fr), by_eps in MINORITY_RECALL.items()
        for eps in by_eps
        for seed in SEEDS
    ]
    results += [_result("pima", None, 1.0, s, mitigation="class_weighted") for s in SEEDS]
    store.write_results(results)
    return store


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A store and its report, built once for the module."""
    tmp = tmp_path_factory.mktemp("report")
    store = write_store(tmp / "results.sqlite")
    path = build_report(store, tmp / "out", title="Synthetic <study>")
    yield store, path
    store.close()


@pytest.fixture(scope="module")
def data(built):
    return load_report_data(built[0])


# --------------------------------------------------------------------------- files


def test_report_writes_every_artefact(built):
    _, path = built
    out = path.parent
    assert path.name == "report.html"
    for stem in ("table3", "table4", "fairness"):
        for ext in ("md", "tex", "csv"):
            assert (out / "tables" / f"{stem}.{ext}").is_file()
    for name in ("ledger.md", "ledger.csv", "table3_fraction-0.2.csv", "table4_class_weighted.csv"):
        assert (out / "tables" / name).is_file(), name
    pngs = sorted(p.stem for p in (out / "figures").glob("*.png"))
    assert not list((out / "figures").glob("*.svg"))  # SVGs on request (svg=True)
    for stem in (
        "class_distribution",
        "training_split",
        "nonprivate_metrics",
        "privacy_utility_pima",
        "privacy_utility_breast_cancer",
        "recall_gap",
        "heatmap_minority_recall",
        "heatmap_amplification",
        "confusion_pima",
        "privacy_utility_pima_fractions",  # the fractions of pima on one figure
    ):
        assert stem in pngs, stem
    # one figure per dataset across fractions, none per fraction
    assert not [s for s in pngs if "fraction-" in s]
    assert (out / "findings.md").is_file()
    claims = pd.read_csv(out / "claims.csv")
    assert set(claims["verdict"]) <= set(VERDICTS)
    assert set(claims["status"]) <= {"confirms", "refutes", "undecided"}


def test_svg_on_request_writes_one_per_png_and_names_it(built, tmp_path):
    store, path = built
    out = build_report(store, tmp_path / "with-svg", title="Synthetic <study>", svg=True)
    figs = out.parent / "figures"
    pngs = sorted(p.stem for p in figs.glob("*.png"))
    assert pngs == sorted(p.stem for p in figs.glob("*.svg"))
    assert pngs == sorted(p.stem for p in (path.parent / "figures").glob("*.png"))
    for stem in pngs:
        assert "<svg" in (figs / f"{stem}.svg").read_text(encoding="utf-8")[:500]
    html, plain = out.read_text(encoding="utf-8"), path.read_text(encoding="utf-8")
    assert f"figures/{pngs[0]}.png, {pngs[0]}.svg" in html
    assert f"figures/{pngs[0]}.png, " not in plain
    # the same page otherwise
    assert re.sub(r", [\w.-]+\.svg", "", html) == plain


def test_table3_and_4_equal_the_aggregates(built, data):
    out = built[1].parent / "tables"
    agg = data.metrics
    for name, privacy in (("table3", ["none"]), ("table4", ["8", "1"])):
        t = pd.read_csv(out / f"{name}.csv", dtype={"privacy": str})
        assert set(t["privacy"]) == set(privacy)
        for r in t.itertuples():
            cls = r._3.split(" ")[0]  # "1 (diabetic)" -> "1"
            for m in METRICS:
                a = agg[
                    (agg["dataset"] == r.dataset)
                    & (agg["fraction"] == "natural")
                    & (agg["privacy"] == r.privacy)
                    & (agg["mitigation"] == "none")
                    & (agg["class"] == cls)
                    & (agg["metric"] == m)
                ].iloc[0]
                assert getattr(r, m) == pytest.approx(a["mean"], rel=1e-5)
                assert getattr(r, f"{m}_hw") == pytest.approx(a["half_width"], rel=1e-5)
            assert r.n == len(SEEDS)


def test_html_shows_the_table_cells(built, data):
    page = html.unescape(built[1].read_text(encoding="utf-8"))
    t = metric_table(data.metrics, privacy=["none"], class_names=data.class_names)
    for r in t.itertuples():
        for m in METRICS:
            cell = f"{getattr(r, m):.3f} ± {getattr(r, f'{m}_hw'):.3f}"
            assert f">{cell}<" in page


def test_markdown_and_latex_tables(built):
    out = built[1].parent / "tables"
    md = (out / "table3.md").read_text(encoding="utf-8")
    assert "over 3 seeds" in md.splitlines()[0]
    assert "| pima | none | 1 (diabetic) |" in md
    tex = (out / "table3.tex").read_text(encoding="utf-8")
    assert "\\toprule" in tex
    assert "\\bottomrule" in tex
    assert re.search(r"\$0\.\d{3} \\pm 0\.\d{3}\$", tex)
    assert "breast\\_cancer" in tex


def test_fairness_table_equals_the_aggregates(data):
    t = fairness_table(data.fairness, data.amplification)
    f = data.fairness.set_index(["dataset", "fraction", "privacy", "mitigation", "measure"])
    a = data.amplification.set_index(["dataset", "fraction", "privacy", "mitigation", "measure"])
    for r in t.itertuples():
        key = (r.dataset, r.fraction, r.privacy, r.mitigation)
        assert r.recall_gap == pytest.approx(f.loc[(*key, "recall_gap"), "mean"])
        assert r.minority_recall_hw == pytest.approx(f.loc[(*key, "minority_recall"), "half_width"])
        if r.privacy == "none":
            assert np.isnan(r.amplification)
        else:
            assert r.amplification == pytest.approx(a.loc[(*key, "recall_gap"), "mean"])


def test_ledger_lists_each_setting(data):
    led = data.ledger
    dp = led[(led["privacy"] == "1") & (led["dataset"] == "pima") & (led["fraction"] == "natural")]
    row = dp[dp["mitigation"] == "none"].iloc[0]
    assert row["noise_multiplier"] == pytest.approx(8.0)
    assert row["epsilon_spent"] == pytest.approx(0.999)
    assert row["accountant"] == "prv (test 0)"
    assert row["not_covered"] == ["the scaler is fitted outside DP-SGD"]


def test_class_distribution_of_registered_datasets(data):
    d = data.distribution.set_index(["dataset", "class"])["count"]
    assert d[("pima", "0")] == 500
    assert d[("pima", "1")] == 268
    assert d[("breast_cancer", "1")] == 212


def test_user_table_distribution_comes_from_the_runs(tmp_path):
    from imbalanced_dp.reports._data import _datasets

    runs = pd.DataFrame(
        {
            "dataset": ["mytable"],
            "spec_json": ['{"dataset": {"csv": "x/mytable.csv", "target": "y"}}'],
            "minority_fraction_target": [None],
            "train_count_0": [80],
            "train_count_1": [20],
            "test_count_0": [20],
            "test_count_1": [5],
        }
    )
    names, dist = _datasets(runs)
    assert names == {}
    assert dist.set_index("class")["count"].to_dict() == {"0": 100, "1": 25}


# --------------------------------------------------------------------------- the page


def test_html_is_self_contained(built):
    page = built[1].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script" not in page.lower()
    # every resource is inline; links point inside the page or to the report's own files
    for attr, url in re.findall(r'\b(src|href)="([^"]*)"', page):
        if attr == "src":
            assert url.startswith("data:image/png;base64,"), url
        else:
            assert url.startswith(("#", "data:")), url
    assert "http://" not in page
    assert "https://" not in page
    assert "url(" not in page  # no CSS fetches
    n_fig = len(list((built[1].parent / "figures").glob("*.png")))
    assert page.count('<img src="data:image/png;base64,') == n_fig
    # figures in collapsed <details> are supplementary (S1, S2, ...): the main numbers run
    # without gaps
    assert len(re.findall(r"<b>Figure S?\d+\.</b>", page)) == n_fig


def test_html_title_is_escaped_and_sections_present(built):
    page = built[1].read_text(encoding="utf-8")
    assert "<title>Synthetic &lt;study&gt;</title>" in page
    for sid in ("findings", "data", "nonprivate", "dp", "fairness", "imbalance", "confusion"):
        assert f'<section id="{sid}">' in page
    assert '<section id="ledger">' in page
    assert '<section id="mitigations">' in page
    for n in (1, 2, 3, 4):
        assert f'id="claim-{n}"' in page


def test_every_figure_and_table_caption_says_how_many_seeds(built):
    page = html.unescape(built[1].read_text(encoding="utf-8"))
    captions = re.findall(r"<figcaption>(.*?)</figcaption>", page, flags=re.S)
    captions += re.findall(r"<caption>(.*?)</caption>", page, flags=re.S)
    assert captions
    for c in captions:
        assert re.search(r"\d+ seeds|over seeds|no seeds involved|each dataset's whole table", c), c


def test_findings_sentences_carry_intervals(built):
    page = html.unescape(built[1].read_text(encoding="utf-8"))
    items = re.findall(r'<ul class="findings">(.*?)</ul>', page, flags=re.S)[0]
    sentences = re.findall(r"<li>(.*?)</li>", items, flags=re.S)
    assert sentences
    for s in sentences:
        if re.search(r"\d\.\d\d", s) and " of " not in s.split(":")[0]:
            assert "[" in s, s
    assert any("falls from" in s for s in sentences)


def test_store_collapse_is_reported(built):
    page = html.unescape(built[1].read_text(encoding="utf-8"))
    assert "models that predict no example of the minority class (diabetic)" not in page
    findings = (built[1].parent / "findings.md").read_text(encoding="utf-8")
    assert "## Claim 4" in findings


def test_section_providers_are_rendered_after_the_builtin_ones(built, tmp_path):
    store = built[0]
    calls = []

    def good(store, run_ids, out_dir):
        calls.append((run_ids, out_dir))
        return [Section("attacks", "Membership inference", "<p>provider text</p>")]

    def broken(store, run_ids, out_dir):
        raise RuntimeError("no attack results")

    register_section_provider(good)
    register_section_provider(broken)
    register_section_provider(good)  # registering twice keeps one
    try:
        ids = sorted(store.done_ids())[:6]
        path = build_report(store, tmp_path / "r", run_ids=ids)
    finally:
        SECTION_PROVIDERS.remove(good)
        SECTION_PROVIDERS.remove(broken)
    page = path.read_text(encoding="utf-8")
    assert len(calls) == 1
    assert calls[0][0] == ids
    assert page.index("provider text") > page.index('<section id="ledger">')
    assert "no attack results" in page
    assert 'href="#attacks"' in page


def test_report_of_an_empty_store(tmp_path):
    with ResultsStore(tmp_path / "empty.sqlite") as store:
        path = build_report(store, tmp_path / "out")
    page = path.read_text(encoding="utf-8")
    assert "no finished runs" in page
    assert "<img" not in page


def test_run_ids_restrict_the_report(built, tmp_path):
    store = built[0]
    ids = [i for i in store.done_ids() if i.startswith("breast_cancer")]
    path = build_report(store, tmp_path / "bc", run_ids=ids)
    t = pd.read_csv(path.parent / "tables" / "table3.csv")
    assert set(t["dataset"]) == {"breast_cancer"}
    assert not (path.parent / "figures" / "heatmap_minority_recall.png").exists()


# --------------------------------------------------------------------------- figures


def _lines(ax):
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def test_privacy_utility_figure_structure(data):
    fig = privacy_utility_figure(data.metrics, dataset="pima", class_names=data.class_names)
    axes = fig.axes
    assert len(axes) == len(METRICS)
    for i, (ax, m) in enumerate(zip(axes, METRICS)):
        assert ax.get_xscale() == "log"
        assert ax.get_title() == METRIC_TITLES[m]
        # labels on the outer panels only: the x label where no panel is below, the y
        # label in the first column (3 columns)
        assert ("ε" in ax.get_xlabel()) == (i + 3 >= len(METRICS))
        assert ax.get_ylabel() == ("score" if i % 3 == 0 else "")
        assert list(ax.get_yticks()) == [0.0, 0.25, 0.5, 0.75, 1.0]
        labels = [ln.get_label() for ln in _lines(ax)]
        assert len(labels) == 4  # two classes, each with its non-private reference line
        assert sum("non-private" in lab for lab in labels) == 2
        refs = [ln for ln in _lines(ax) if "non-private" in ln.get_label()]
        assert all(ln.get_linestyle() == "--" for ln in refs)
        assert all(np.ptp(ln.get_ydata()) == 0 for ln in refs)  # horizontal
        assert len(ax.collections) == 2  # one CI band per class
        assert sorted(ax.get_xticks()) == [1.0, 8.0]
    curve = next(ln for ln in _lines(axes[1]) if ln.get_label() == "1 minority (diabetic)")
    rec = data.metrics[
        (data.metrics["dataset"] == "pima")
        & (data.metrics["fraction"] == "natural")
        & (data.metrics["mitigation"] == "none")
        & (data.metrics["class"] == "1")
        & (data.metrics["metric"] == "rec")
        & (data.metrics["privacy"] != "none")
    ]
    expected = rec.assign(e=rec["privacy"].astype(float)).sort_values("e")["mean"].to_numpy()
    np.testing.assert_allclose(curve.get_ydata(), expected)


def test_recall_gap_figure_structure(data):
    f = data.fairness[data.fairness["fraction"] == "natural"]
    a = data.amplification[data.amplification["fraction"] == "natural"]
    fig = recall_gap_figure(f, a)
    gap, amp = fig.axes
    for ax in (gap, amp):
        assert ax.get_xscale() == "log"
        assert "ε" in ax.get_xlabel()
    assert "recall gap" in gap.get_ylabel()
    assert len(_lines(gap)) == 4  # two datasets, each with its non-private level
    assert {ln.get_label() for ln in _lines(amp)} == {"pima", "breast_cancer", "no amplification"}


def test_heatmap_figure_structure(data):
    v = data.fairness[
        (data.fairness["measure"] == "minority_recall")
        & (data.fairness["mitigation"] == "none")
        & (data.fairness["dataset"] == "pima")
    ]
    fig = heatmap_figure(v, title="Minority recall", colorbar_label="minority recall")
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 1
    grid = images[0].get_array()
    assert grid.shape == (2, 3)  # fractions natural, 0.2 × privacy none, 8, 1
    ax = images[0].axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "ε=8", "ε=1"]
    assert "natural" in ax.get_yticklabels()[0].get_text()
    assert len(ax.texts) == 6
    want = v[(v["fraction"] == "0.2") & (v["privacy"] == "1")]["mean"].iloc[0]
    assert grid[1, 2] == pytest.approx(want)
    assert len(fig.axes) == 2  # the heatmap and its colour bar


def test_confusion_figure_rows_are_shares(data):
    fig = confusion_figure(data.confusion, dataset="pima", class_names=data.class_names)
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 3  # none, 8, 1
    for im in images:
        np.testing.assert_allclose(im.get_array().sum(axis=1), 1.0)
        assert im.axes.get_xlabel() == "predicted"
    assert images[0].axes.get_title().startswith("no DP (3 seeds)")


def test_confusion_grid_shows_each_fractions_shares(data):
    """Several fractions: one image on one axes, each 2×2 block the shares of the true
    classes at one (fraction, level), computed here from the counts by hand."""
    conf = data.confusion[data.confusion["dataset"] == "pima"]
    fractions = ["natural", "0.2"]
    fig = confusion_figure(conf, dataset="pima", fractions=fractions, class_names=None)
    grid = next(ax for ax in fig.axes if ax.get_images())
    assert len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"]) == 1
    image = np.ma.getdata(grid.get_images()[0].get_array())
    mask = np.ma.getmaskarray(grid.get_images()[0].get_array())
    privs = ["none", "8", "1"]
    k = 20
    step = round((2 + 0.45) * k)
    for r_i, fr in enumerate(fractions):
        for c_i, pr in enumerate(privs):
            g = conf[(conf["fraction"] == fr) & (conf["privacy"] == pr)]
            g = g[(g["mitigation"] == "none")]
            counts = np.zeros((2, 2))
            for yt, yp, n in zip(g["y_true"], g["y_pred"], g["count"]):
                counts[int(yt), int(yp)] += n
            want = counts / counts.sum(axis=1, keepdims=True)
            block = image[r_i * step : r_i * step + 2 * k, c_i * step : c_i * step + 2 * k]
            assert not mask[r_i * step : r_i * step + 2 * k, c_i * step : c_i * step + 2 * k].any()
            np.testing.assert_allclose(block[::k, ::k], want)
    assert mask.any()  # the gaps between blocks are blank
    texts = [t.get_text() for t in grid.texts]
    assert any(t.startswith("natural") for t in texts)
    assert any(t.startswith("minority 20 %") for t in texts)
    assert {"no DP", "ε = 8", "ε = 1"} <= set(texts)


def test_fraction_utility_figure_structure(data):
    m = data.metrics[data.metrics["dataset"] == "pima"]
    fig = fraction_utility_figure(m, dataset="pima", class_names=data.class_names)
    assert len(fig.axes) == len(METRICS)
    for i, (ax, metric) in enumerate(zip(fig.axes, METRICS)):
        assert ax.get_title() == METRIC_TITLES[metric]
        lines = _lines(ax)
        solid = [ln for ln in lines if ln.get_linestyle() == "-"]
        dashed = [ln for ln in lines if ln.get_linestyle() == "--"]
        assert [ln.get_label() for ln in solid] == ["natural", "minority 20 %"]
        assert len(dashed) == 2 and all(np.ptp(ln.get_ydata()) == 0 for ln in dashed)
        # the minority class's mean per ε at 20 %, from the aggregates by hand
        rows = m[
            (m["fraction"] == "0.2")
            & (m["class"] == "1")
            & (m["metric"] == metric)
            & (m["mitigation"] == "none")
            & (m["privacy"] != "none")
        ]
        want = rows.assign(e=rows["privacy"].astype(float)).sort_values("e")["mean"]
        np.testing.assert_allclose(solid[1].get_ydata(), want.to_numpy())
        base = m[
            (m["fraction"] == "0.2")
            & (m["class"] == "1")
            & (m["metric"] == metric)
            & (m["privacy"] == "none")
            & (m["mitigation"] == "none")
        ]
        assert dashed[1].get_ydata()[0] == pytest.approx(float(base["mean"].iloc[0]))
        assert ("ε" in ax.get_xlabel()) == (i + 3 >= len(METRICS))


def test_distribution_and_metric_bar_figures(data):
    fig = class_distribution_figure(data.distribution)
    assert len(fig.axes) == 2
    heights = sorted(p.get_height() for ax in fig.axes for p in ax.patches)
    assert heights == sorted(data.distribution["count"].tolist())
    fig = nonprivate_metrics_figure(data.metrics, class_names=data.class_names)
    assert len(fig.axes) == 2
    pima = next(ax for ax in fig.axes if ax.get_title() == "pima")
    assert len(pima.patches) == 2 * len(METRICS)
    fig = training_split_figure(data.shares)
    assert len(fig.axes) == 2


def test_save_figure_writes_png_and_svg(data, tmp_path):
    fig = class_distribution_figure(data.distribution)
    saved = save_figure(fig, tmp_path, "dist")
    assert saved.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in saved.svg.read_text(encoding="utf-8")
    assert saved.data_uri.startswith("data:image/png;base64,iVBOR")


# --------------------------------------------------------------------------- browser


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(built, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium binary on PATH (make test installs Debian's chromium)")
    from matplotlib.image import imread

    path = built[1].resolve()
    shot = tmp_path / "shot.png"
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--hide-scrollbars",
        "--window-size=1280,2400",
        f"--screenshot={shot}",
        path.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    img = imread(shot)
    assert img.shape[0] == 2400
    assert img.shape[1] == 1280
    gray = img[..., :3].mean(axis=2)
    assert gray.std() > 0.05  # not blank
    assert (gray < 0.5).mean() > 0.01  # text and figures drawn

    # The DOM as Chromium rendered it (not its log, whose format changes between versions):
    # the expected sections, every figure embedded, and nothing loaded from elsewhere.
    dom = subprocess.run(
        [*cmd[:-2], "--dump-dom", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0
    page = dom.stdout
    assert "Findings: the study's claims" in page
    assert page.count("data:image/png;base64,") == len(
        list((path.parent / "figures").glob("*.png"))
    )
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page)
    external = [r for r in refs if not (r.startswith(("data:", "#")) or r == "")]
    assert external == [], external[:5]
    assert "<script" not in page.lower()
    assert "@import" not in page and "url(http" not in page


def test_report_of_sparse_settings(tmp_path):
    """One seed per setting (no CI), a dataset without DP runs and one without a
    non-private run: the report still builds, warning-free, and says what it cannot say."""
    store = ResultsStore(tmp_path / "sparse.sqlite")
    store.write_results([_result("pima", None, None, 0), _result("breast_cancer", None, 1.0, 0)])
    path = build_report(store, tmp_path / "out")
    store.close()
    page = html.unescape(path.read_text(encoding="utf-8"))
    assert "(no CI: one seed)" in page
    assert page.count("cannot decide</span></h3>") == 4
    assert (path.parent / "figures" / "privacy_utility_breast_cancer.png").is_file()
    assert not (path.parent / "figures" / "privacy_utility_pima.png").exists()
