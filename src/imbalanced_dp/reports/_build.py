"""The report builder: tables (Markdown, LaTeX, CSV), figures (PNG, SVG), the findings and
one self-contained ``report.html``.

The steps stay apart: :func:`~._data.load_report_data` reads the numbers,
:func:`~._evidence.compute_evidence` and :func:`~._claims.evaluate_claims` decide the
claims, the ``*_figure`` functions of :mod:`._figures` draw, and this module writes files
and assembles the page.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..studies import primary_scaling, privacy_order, store_frame
from ._claims import ClaimResult, evaluate_claims
from ._data import ReportData, load_report_data, seeds_text
from ._evidence import Evidence, compute_evidence, reference_fractions
from ._figures import (
    class_distribution_figure,
    confusion_figure,
    fraction_text,
    fraction_utility_figure,
    heatmap_figure,
    nonprivate_metrics_figure,
    privacy_utility_figure,
    recall_gap_figure,
    save_figure,
    scaling_utility_figure,
    svg_figures,
    training_split_figure,
)
from ._folder import report_folder
from ._format import fmt_share
from ._html import Numbering, badge, claim_html, esc, page
from ._prose import finding_sentences
from ._render import FigureRenderer, Plot, fill_figures
from ._sections import SECTION_PROVIDERS, Section
from ._sensitivity import (
    ScalingChoice,
    analyse_choices,
    choice_frame,
    collapse_sentences,
    flip_sentences,
    verdict_table,
)
from ._tables import cells as metric_cells
from ._tables import (
    fairness_cells,
    fairness_table,
    frame_latex,
    frame_markdown,
    metric_table,
    to_latex,
    to_markdown,
)
from ._tuning import (
    MEASURES,
    SERIES,
    comparison_frame,
    cost_sentences,
    difference_sentences,
    has_tuning,
    tuned_runs,
    tuning_choices,
    tuning_cost,
    tuning_curves,
    tuning_differences,
    tuning_utility_figure,
)

DEFAULT_TITLE = "imbalanced-dp report"


def _stem(*parts: str) -> str:
    """A file name stem from setting labels (``privacy_utility_pima_fraction-0.2``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "_".join(p for p in parts if p))


def _fr_stem(fraction: str) -> str:
    return "" if fraction == "natural" else f"fraction-{fraction}"


@dataclass(frozen=True)
class _PendingFigure:
    """A figure registered with the renderer: its paths, and a placeholder for its PNG."""

    png: Path
    svg: Path | None
    data_uri: str

    @property
    def paths(self) -> list[Path]:
        return [self.png] if self.svg is None else [self.png, self.svg]


@dataclass
class _Context:
    """What the section builders share while one report is written."""

    data: ReportData
    out_dir: Path
    primary: str = "standard"  # the feature scaling the main sections show
    numbering: Numbering = field(default_factory=Numbering)
    written: list[Path] = field(default_factory=list)
    renderer: FigureRenderer = field(default_factory=FigureRenderer)
    #: the runs of the tuning comparison (empty without tuned runs)
    tuning_frame: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def fig_dir(self) -> Path:
        return self.out_dir / "figures"

    @property
    def table_dir(self) -> Path:
        return self.out_dir / "tables"

    @property
    def shares(self) -> dict[tuple[str, str], float]:
        s = self.data.shares
        return {(r.dataset, r.fraction): float(r.share) for r in s.itertuples()}

    def seeds(self, **eq) -> str:
        f = self.data.frame
        mask = pd.Series(True, index=f.index)
        for k, v in eq.items():
            mask &= f[k].isin(v) if isinstance(v, (list, tuple, set)) else f[k] == v
        return seeds_text(f[mask])

    def figure(self, fig, stem: str, caption: str) -> str:
        """A numbered figure: a :class:`Plot` is drawn at the end of the report (in
        parallel, or copied from the figure cache); a drawn Figure is saved now."""
        if isinstance(fig, Plot):
            token, png, svg = self.renderer.add(fig, self.fig_dir, stem)
            saved = _PendingFigure(png, svg, token)
        else:
            saved = save_figure(fig, self.fig_dir, stem)
        self.written += saved.paths
        return self.numbering.figure(saved, caption)

    def write(self, name: str, text: str) -> Path:
        path = self.table_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.written.append(path)
        return path

    def write_csv(self, name: str, df: pd.DataFrame) -> Path:
        path = self.table_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=False, float_format="%.6g")
        self.written.append(path)
        return path


# --------------------------------------------------------------------------- tables


def _metric_table_files(ctx: _Context, stem: str, table: pd.DataFrame, caption: str) -> list[str]:
    """Write a Table 3/4 layout as Markdown, LaTeX and CSV; return the file names."""
    ctx.write(f"{stem}.md", f"{caption}\n\n{to_markdown(table)}\n")
    ctx.write(f"{stem}.tex", to_latex(table, caption=caption, label=f"tab:{stem}") + "\n")
    ctx.write_csv(f"{stem}.csv", table)
    return [f"tables/{stem}.{ext}" for ext in ("md", "tex", "csv")]


def _metric_table_html(ctx: _Context, table: pd.DataFrame, caption: str, files) -> str:
    c = metric_cells(table)
    c.insert(len(c.columns), "n", table["n"].astype(int))
    return ctx.numbering.table(c, caption, group=["dataset", "privacy"], files=files)


def _table3(ctx: _Context, fraction: str, mitigation: str = "none") -> str:
    d = ctx.data
    t = metric_table(d.metrics, privacy=["none"], fraction=fraction, class_names=d.class_names)
    if t.empty:
        return ""
    where = "" if fraction == "natural" else f", training split at {fraction_text(fraction)}"
    caption = (
        f"Non-private models{where}, in the layout of the study's Table 3: per-class "
        "metrics, mean ± 95 % CI "
        f"half-width over {ctx.seeds(privacy='none', fraction=fraction, mitigation='none')}."
    )
    stem = _stem("table3", _fr_stem(fraction))
    return _metric_table_html(ctx, t, caption, _metric_table_files(ctx, stem, t, caption))


def _table4(ctx: _Context, fraction: str, mitigation: str = "none") -> str:
    d = ctx.data
    m = d.metrics
    eps = [p for p in d.privacies if p != "none"]
    t = metric_table(
        m, privacy=eps, fraction=fraction, mitigation=mitigation, class_names=d.class_names
    )
    if t.empty:
        return ""
    where = "" if fraction == "natural" else f", training split at {fraction_text(fraction)}"
    how = "DP-SGD" if mitigation == "none" else f"DP-SGD with mitigation {mitigation}"
    deltas = sorted({x for x in d.ledger["delta"] if isinstance(x, float) and not math.isnan(x)})
    delta = f" (δ = {', '.join(f'{x:g}' for x in deltas)})" if deltas else ""
    caption = (
        f"{how}{delta}{where}, in the layout of the study's Table 4: per-class metrics "
        "per ε, mean ± 95 % CI "
        f"half-width over "
        f"{ctx.seeds(privacy=eps, fraction=fraction, mitigation=mitigation)}."
    )
    stem = _stem("table4", _fr_stem(fraction), "" if mitigation == "none" else mitigation)
    return _metric_table_html(ctx, t, caption, _metric_table_files(ctx, stem, t, caption))


# --------------------------------------------------------------------------- sections


def _findings_section(ctx: _Context, claims: list[ClaimResult], sentences: list[str]) -> Section:
    rows = "".join(
        f'<tr><td><a href="#claim-{c.number}">Claim {c.number}</a></td>'
        f"<td>{esc(c.statement)}</td><td>{badge(c.verdict)}</td></tr>"
        for c in claims
    )
    summary = (
        '<div class="table-wrap"><table><thead><tr><th>claim</th><th>statement '
        "(docs/protocol.md, section 5)</th><th>verdict</th></tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )
    intro = (
        "<p>Each claim is decided on intervals, never on raw means: a comparison confirms a "
        "claim when its 95 % confidence interval over seeds lies entirely on the claimed "
        "side of zero, and refutes it when it lies on the other side at the "
        "Bonferroni-adjusted level (p below 0.05 divided by the number of comparisons of "
        "the claim). A claim is <b>supported</b> when every required comparison confirms and "
        "none refutes, <b>contradicted</b> when any refutes, and otherwise the report "
        "<b>cannot decide</b>. Comparisons between settings of the same seed are paired by "
        "seed; comparisons between datasets use Welch intervals.</p>"
    )
    cards = "".join(claim_html(c, ctx.numbering) for c in claims)
    items = "".join(f"<li>{esc(s)}</li>" for s in sentences)
    body = (
        f"{intro}{summary}{cards}<h3>What the numbers say</h3>"
        '<p class="muted">Means with 95 % confidence intervals over seeds in brackets; '
        "differences are paired by seed.</p>"
        f'<ul class="findings">{items}</ul>'
    )
    return Section("findings", "Findings: the study's claims", body)


def _data_section(ctx: _Context) -> Section:
    d = ctx.data
    parts = []
    if not d.distribution.empty:
        caption = (
            "Class distribution of each dataset's whole table (training and test rows), "
            "the study's Figures 1 and 2. Label 1 is the minority, positive class. "
            "(Counts of the data, not of runs: no seeds involved.)"
        )
        parts.append(
            ctx.figure(
                Plot(class_distribution_figure, (d.distribution,)), "class_distribution", caption
            )
        )
        show = d.distribution.assign(
            share=lambda x: [
                fmt_share(c / x.loc[x["dataset"] == ds, "count"].sum())
                for ds, c in zip(x["dataset"], x["count"])
            ]
        )
        parts.append(
            ctx.numbering.table(
                show, "Rows per class of each dataset's whole table.", group=["dataset"]
            )
        )
    if len(d.fractions) > 1:
        g = d.shares[d.shares["dataset"].isin(_swept(d))]
        caption = (
            "Class counts of the training split per target minority fraction (mean over the "
            f"runs of each fraction, {ctx.seeds()} per setting); the minority class is "
            "subsampled, the test split keeps the natural balance."
        )
        parts.append(ctx.figure(Plot(training_split_figure, (g,)), "training_split", caption))
    if not parts:
        parts.append("<p>No class distribution is known for these datasets.</p>")
    return Section("data", "Data and class balance", "".join(parts))


def _swept(d: ReportData) -> list[str]:
    """Datasets run at more than one minority fraction."""
    g = d.frame.groupby("dataset", sort=False)["fraction"].nunique()
    return [ds for ds, n in g.items() if n > 1]


def _nonprivate_section(ctx: _Context, ref: dict[str, str]) -> Section:
    d = ctx.data
    fr = d.fractions[0]
    parts = [_table3(ctx, fr)]
    if (d.metrics["privacy"] == "none").any():
        caption = (
            "Per-class metrics of the non-private models (plain SGD) at each dataset's "
            "natural balance, the study's Figures 3 and 4: mean over "
            f"{ctx.seeds(privacy='none', mitigation='none', fraction=fr)} with 95 % CI error "
            "bars. pre: precision, rec: recall, spe: specificity, geo: √(rec·spe), iba: index "
            "of balanced accuracy (α = 0.1)."
        )
        parts.append(
            ctx.figure(
                Plot(
                    nonprivate_metrics_figure,
                    (d.metrics[d.metrics["privacy"] == "none"],),
                    {"fractions": ref, "class_names": d.class_names},
                ),
                "nonprivate_metrics",
                caption,
            )
        )
    body = "".join(parts) or "<p>The store has no non-private runs.</p>"
    return Section("nonprivate", "Non-private models (the study's Table 3)", body)


def _privacy_utility(ctx: _Context, ds: str, fr: str, mitigation: str = "none") -> str:
    d = ctx.data
    has_dp = not d.metrics[
        (d.metrics["dataset"] == ds)
        & (d.metrics["fraction"] == fr)
        & (d.metrics["privacy"] != "none")
        & (d.metrics["mitigation"] == mitigation)
    ].empty
    if not has_dp:
        return ""
    fig = Plot(
        privacy_utility_figure,
        (d.metrics[(d.metrics["dataset"] == ds) & (d.metrics["fraction"] == fr)],),
        {"dataset": ds, "fraction": fr, "mitigation": mitigation, "class_names": d.class_names},
    )
    where = "" if fr == "natural" else f", training split at {fraction_text(fr)}"
    how = "DP-SGD" if mitigation == "none" else f"DP-SGD with {mitigation}"
    caption = (
        f"Privacy–utility curves on {ds}{where}: each per-class metric of {how} against ε "
        "(log scale), mean with 95 % CI band over "
        f"{ctx.seeds(dataset=ds, fraction=fr, mitigation=mitigation)} per ε; dashed lines: "
        "the non-private level of each class."
    )
    stem = _stem("privacy_utility", ds, _fr_stem(fr), "" if mitigation == "none" else mitigation)
    return ctx.figure(fig, stem, caption)


def _dp_section(ctx: _Context, ref: dict[str, str]) -> Section:
    d = ctx.data
    parts = [_table4(ctx, d.fractions[0])]
    for ds, fr in ref.items():
        parts.append(_privacy_utility(ctx, ds, fr))
    if not ctx.tuning_frame.empty:
        parts.append(
            "<p>The store also holds privately tuned runs: their curves, beside these fixed "
            'settings\' ones, are in <a href="#tuning">Fixed against privately tuned '
            "hyperparameters</a>; the sections here show the fixed settings only.</p>"
        )
    body = "".join(parts) or "<p>The store has no DP runs.</p>"
    return Section("dp", "DP-SGD per ε (the study's Table 4) and privacy–utility curves", body)


@dataclass
class _Tuning:
    """What the report shows of a study with tuned runs (:mod:`._tuning`)."""

    curves: pd.DataFrame
    differences: pd.DataFrame
    choices: pd.DataFrame
    cost: pd.DataFrame
    class_names: dict

    @property
    def both(self) -> bool:
        return set(self.curves["tuning"]) >= set(SERIES)

    def sentences(self) -> list[str]:
        return [*cost_sentences(self.cost), *difference_sentences(self.differences)]


def _tuning_data(store, frame: pd.DataFrame, primary: str, class_names: dict) -> _Tuning:
    compare = comparison_frame(frame, primary)
    runs = store.runs_frame()
    tuned = tuned_runs(runs[runs["run_id"].isin(set(compare["run_id"]))])
    return _Tuning(
        curves=tuning_curves(compare),
        differences=tuning_differences(compare),
        choices=tuning_choices(tuned),
        cost=tuning_cost(tuned),
        class_names=class_names,
    )


def _tuning_section(ctx: _Context, t: _Tuning) -> Section:
    """Fixed against privately tuned hyperparameters: the privacy–utility curves of both,
    their paired differences, what tuning costs in ε and what the searches chose."""
    parts = [
        "<p>A privately tuned run replaces the study's fixed hyperparameters by a private "
        "search on the same training split (learning rate, batch size, epochs, clip bound, "
        "layers, mitigation, decision threshold and scaling; imbalanced-dp tune), its final "
        "model evaluated on the same test rows. The fixed series is plain DP-SGD with the "
        f"study's settings (scaling {esc(ctx.primary)}); a non-private tuned run is the same "
        "search without privacy.</p>",
        '<ul class="findings">' + "".join(f"<li>{esc(x)}</li>" for x in t.sentences()) + "</ul>",
    ]
    c = t.curves
    if not c.empty:
        which = "both series" if t.both else "the tuned series (the store has no fixed runs)"
        caption = (
            "Privacy–utility curves, fixed against privately tuned hyperparameters: balanced "
            "accuracy and minority recall against ε (log scale) per dataset and minority "
            f"fraction, {which}, mean with 95 % CI band over "
            f"{seeds_text(ctx.tuning_frame)} per setting; dashed: each series' non-private "
            "level. The tuned runs' ε covers their search."
        )
        parts.append(
            ctx.figure(
                Plot(
                    tuning_utility_figure,
                    (c.drop(columns="config"),),
                    {"class_names": t.class_names},
                ),
                "privacy_utility_tuning",
                caption,
            )
        )
        ctx.write_csv("tuning_curves.csv", c)
        show = c.assign(
            privacy=["none" if p == "none" else f"ε = {p}" for p in c["privacy"]],
            tuning=[SERIES.get(x, x) for x in c["tuning"]],
            measure=[MEASURES.get(m, m) for m in c["measure"]],
            value=[
                _ci_text(a, b, h).replace("+", "")
                for a, b, h in zip(c["mean"], c["low"], c["high"])
            ],
        )[["dataset", "fraction", "measure", "tuning", "privacy", "value", "n"]]
        parts.append(
            ctx.numbering.table(
                show,
                "The curves' numbers: mean [95 % CI] over seeds per series.",
                group=["dataset", "fraction", "measure", "tuning"],
                files=["tables/tuning_curves.csv"],
            )
        )
    d = t.differences
    if not d.empty:
        ctx.write_csv("tuning_differences.csv", d)
        show = pd.DataFrame(
            {
                "dataset": d["dataset"],
                "fraction": d["fraction"],
                "measure": [MEASURES.get(m, m) for m in d["measure"]],
                "privacy": ["none" if p == "none" else f"ε = {p}" for p in d["privacy"]],
                "tuned − fixed [95 % CI]": [
                    _ci_text(a, b, h) for a, b, h in zip(d["mean"], d["low"], d["high"])
                ],
                "n": d["n"],
                "p": [_fmt(p, ".2g") for p in d["p_value"]],
            }
        )
        parts.append(
            ctx.numbering.table(
                show,
                "Privately tuned − fixed, paired by seed (the same test rows): above 0 the "
                "search's final model does better than the study's fixed settings at the same "
                "total ε.",
                group=["dataset", "fraction", "measure"],
                files=["tables/tuning_differences.csv"],
            )
        )
    if not t.cost.empty:
        k = t.cost
        ctx.write_csv("tuning_cost.csv", k)
        show = pd.DataFrame(
            {
                "dataset": k["dataset"],
                "fraction": k["fraction"],
                "ε (the run's, search included)": [f"{x:g}" for x in k["epsilon_target"]],
                "ε spent (largest)": [_fmt(x, ".4f") for x in k["epsilon_spent_max"]],
                "trials": k["trials"],
                "ε of one trial alone": [
                    "—" if not math.isfinite(a) else f"{a:.3g}–{b:.3g}"
                    for a, b in zip(k["epsilon_one_trial_low"], k["epsilon_one_trial_high"])
                ],
                "runs": k["runs"],
            }
        )
        parts.append(
            ctx.numbering.table(
                show,
                "What tuning costs: the whole search and the final model spend the run's ε "
                "together; what one trial of the search could spend alone (a fixed run spends "
                "all of its ε on its one model).",
                group=["dataset", "fraction"],
                files=["tables/tuning_cost.csv"],
            )
        )
    if not t.choices.empty:
        ctx.write_csv("tuning_choices.csv", t.choices)
        show = t.choices.assign(
            privacy=["none" if p == "none" else f"ε = {p}" for p in t.choices["privacy"]]
        )
        parts.append(
            ctx.numbering.table(
                show,
                "What the searches chose, per setting: each value with the number of seeds "
                "whose search chose it (a non-private search tries no mitigation and no DP "
                "scaler).",
                group=["dataset", "fraction"],
                files=["tables/tuning_choices.csv"],
            )
        )
    return Section("tuning", "Fixed against privately tuned hyperparameters", "".join(parts))


def _fairness_section(ctx: _Context, ref: dict[str, str]) -> Section:
    d = ctx.data
    parts = []
    t = fairness_table(d.fairness, d.amplification)
    if not t.empty:
        c = fairness_cells(t)
        caption = (
            f"Fairness per setting, mean ± 95 % CI half-width over {ctx.seeds()} (n): recall gap "
            "(majority recall − minority recall), worst-class recall, minority recall, "
            "balanced accuracy and disparity amplification (recall gap with DP − without, "
            "paired by seed; positive: DP widened the gap)."
        )
        ctx.write_csv("fairness.csv", t)
        ctx.write("fairness.md", f"{caption}\n\n{frame_markdown(c)}\n")
        ctx.write("fairness.tex", frame_latex(c, caption=caption, label="tab:fairness") + "\n")
        files = [f"tables/fairness.{e}" for e in ("md", "tex", "csv")]
        parts.append(
            ctx.numbering.table(
                c, caption, group=["dataset", "fraction", "mitigation"], files=files
            )
        )
    keep = [(ds, fr) for ds, fr in ref.items()]
    f = d.fairness[[(a, b) in keep for a, b in zip(d.fairness["dataset"], d.fairness["fraction"])]]
    a = d.amplification
    if not a.empty:
        a = a[[(x, y) in keep for x, y in zip(a["dataset"], a["fraction"])]]
    if not f.empty and (f["privacy"] != "none").any():
        caption = (
            "Recall gap (left) and disparity amplification (right) against ε (log scale) at "
            "each dataset's natural balance, plain DP-SGD: mean with 95 % CI band over "
            f"{ctx.seeds(mitigation='none')}; dashed: the non-private gap. Amplification "
            "is paired by seed; above 0 the classes drift apart under DP."
        )
        parts.append(
            ctx.figure(
                Plot(recall_gap_figure, (f, a), {"shares": ctx.shares}), "recall_gap", caption
            )
        )
    for ds in _swept(d):
        f = d.fairness[d.fairness["dataset"] == ds]
        a = d.amplification[d.amplification["dataset"] == ds] if len(d.amplification) else a
        if (f["privacy"] != "none").any():
            caption = (
                f"Recall gap and disparity amplification against ε on {ds}, one line per "
                "minority fraction of the training split: mean with 95 % CI band over "
                f"{ctx.seeds(dataset=ds, mitigation='none')}; dashed: the non-private gap."
            )
            parts.append(
                ctx.figure(
                    Plot(recall_gap_figure, (f, a), {"shares": ctx.shares}),
                    _stem("recall_gap", ds, "fractions"),
                    caption,
                )
            )
    return Section(
        "fairness",
        "Fairness: recall gap and disparity amplification",
        "".join(parts) or "<p>No fairness measures (both classes are needed).</p>",
    )


def _imbalance_section(ctx: _Context) -> Section | None:
    d = ctx.data
    swept = _swept(d)
    if not swept:
        return None
    parts = [
        "<p>The minority class of the training split was subsampled to each target "
        "fraction; the test split keeps the natural balance, so every fraction is evaluated "
        "on the same test rows of a seed.</p>"
    ]
    order = [ds for ds in d.datasets if ds in swept]  # both heatmaps in one order
    mr = d.fairness[
        (d.fairness["measure"] == "minority_recall")
        & (d.fairness["mitigation"] == "none")
        & d.fairness["dataset"].isin(swept)
    ]
    if not mr.empty:
        caption = (
            "Minority recall over privacy level × minority share of the training split, plain "
            "DP-SGD: each cell the mean and [95 % CI] over "
            f"{ctx.seeds(dataset=swept, mitigation='none')}."
        )
        fig = Plot(
            heatmap_figure,
            (mr,),
            {
                "title": "Minority-class recall",
                "colorbar_label": "minority recall",
                "shares": ctx.shares,
                "datasets": order,
            },
        )
        parts.append(ctx.figure(fig, "heatmap_minority_recall", caption))
    am = d.amplification
    if not am.empty:
        am = am[
            (am["measure"] == "recall_gap")
            & (am["mitigation"] == "none")
            & am["dataset"].isin(swept)
        ]
    if not am.empty:
        caption = (
            "Disparity amplification (recall gap with DP − without, paired by seed) over ε × "
            "minority share of the training split, plain DP-SGD: each cell the mean and "
            f"[95 % CI] over {ctx.seeds(dataset=swept, mitigation='none')}; red: DP widens "
            "the gap."
        )
        fig = Plot(
            heatmap_figure,
            (am,),
            {
                "title": "Disparity amplification of the recall gap",
                "colorbar_label": "gap with DP − gap without",
                "diverging": True,
                "shares": ctx.shares,
                "datasets": order,
            },
        )
        parts.append(ctx.figure(fig, "heatmap_amplification", caption))
    for ds in order:
        m = d.metrics[(d.metrics["dataset"] == ds) & (d.metrics["class"] == "1")]
        if m[(m["privacy"] != "none") & (m["mitigation"] == "none")].empty:
            continue
        caption = (
            f"Privacy–utility curves of the minority class on {ds} at every minority share of "
            "the training split: each per-class metric of DP-SGD against ε (log scale), mean "
            f"with 95 % CI band over {ctx.seeds(dataset=ds, mitigation='none')} per ε; "
            "dashed lines: the non-private level at each share. The majority class's "
            "numbers are in the tables below and in tables/."
        )
        fig = Plot(
            fraction_utility_figure,
            (m,),
            {"dataset": ds, "shares": ctx.shares, "class_names": d.class_names},
        )
        parts.append(ctx.figure(fig, _stem("privacy_utility", ds, "fractions"), caption))
    more = []
    for fr in d.fractions[1:]:
        with ctx.numbering.supplement():  # collapsed: numbered S1, S2, ...
            inner = "".join([_table3(ctx, fr), _table4(ctx, fr)])
        if inner:
            more.append(
                f"<details><summary>Tables at {esc(fraction_text(fr))}</summary>{inner}</details>"
            )
    parts += more
    return Section("imbalance", "Privacy × imbalance", "".join(parts))


def _confusion_section(ctx: _Context) -> Section | None:
    d = ctx.data
    if d.confusion.empty:
        return None
    parts = []
    for ds in d.datasets:
        c = d.confusion[d.confusion["dataset"] == ds]
        fractions = [fr for fr in d.fractions if (c["fraction"] == fr).any()]
        if not fractions:
            continue
        several = len(fractions) > 1
        where = (
            ", one row per minority share of the training split" if several
            else ("" if fractions[0] == "natural" else
                  f", training split at {fraction_text(fractions[0])}")
        )  # fmt: skip
        caption = (
            f"Confusion matrices on {ds} per privacy level (plain SGD / DP-SGD){where}, test "
            f"predictions summed over {ctx.seeds(dataset=ds)} per level (the seeds of each "
            "row or panel are on the figure): colour and first number, the share of each true "
            "class predicted as each class; in brackets, the mean count per seed."
        )
        kw = {"dataset": ds, "class_names": d.class_names}
        if several:
            kw |= {"fractions": fractions, "shares": ctx.shares}
        else:
            kw["fraction"] = fractions[0]
        parts.append(ctx.figure(Plot(confusion_figure, (c,), kw), _stem("confusion", ds), caption))
    return Section("confusion", "Confusion matrices", "".join(parts))


def _fmt(x, spec: str) -> str:
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return format(x, spec)


def _ledger_section(ctx: _Context) -> Section:
    led = ctx.data.ledger
    if led.empty:
        return Section("ledger", "Privacy ledger", "<p>No runs.</p>")
    show = pd.DataFrame(
        {
            "dataset": led["dataset"],
            "fraction": led["fraction"],
            "privacy": ["none" if p == "none" else f"ε = {p}" for p in led["privacy"]],
            "mitigation": led["mitigation"],
            "runs": led["runs"],
            "accountant": led["accountant"],
            "sampling": led["sampling"],
            "σ": [_fmt(x, ".4g") for x in led["noise_multiplier"]],
            "q": [_fmt(x, ".4g") for x in led["sample_rate"]],
            "E[batch]": [_fmt(x, ".0f") for x in led["expected_batch_size"]],
            "steps": [_fmt(x, ".0f") for x in led["steps"]],
            "C": [_fmt(x, "g") for x in led["clip"]],
            "δ": [_fmt(x, "g") for x in led["delta"]],
            "ε target": [_fmt(x, "g") for x in led["epsilon_target"]],
            "ε spent": [_fmt(x, ".4f") for x in led["epsilon_spent"]],
            "extra mechanisms": [c or "—" for c in led["components"]],
        }
    )
    for col, default in (("fraction", "natural"), ("mitigation", "none")):
        if (show[col] == default).all():
            show = show.drop(columns=col)
    if (show["extra mechanisms"] == "—").all():
        show = show.drop(columns="extra mechanisms")
    csv = led.copy()
    for col in ("not_covered", "notes"):
        csv[col] = ["; ".join(v) for v in csv[col]]
    ctx.write_csv("ledger.csv", csv)
    caption = (
        "Privacy ledger per setting: accountant (and version), sampling, noise multiplier σ, "
        "sample rate q, expected batch size, steps, clip bound C, δ, target ε and the "
        "largest ε spent by any of the setting's runs (a range where seeds differ); runs: "
        f"the seeds of each setting ({ctx.seeds()})."
    )
    ctx.write("ledger.md", f"{caption}\n\n{frame_markdown(show)}\n")
    parts = [
        ctx.numbering.table(
            show,
            caption,
            group=[c for c in ("dataset", "fraction", "mitigation") if c in show.columns],
            files=["tables/ledger.md", "tables/ledger.csv"],
        )
    ]
    dp = led[led["privacy"] != "none"]
    for col, title in (("not_covered", "What ε does not cover"), ("notes", "Notes")):
        where: dict[str, list[str]] = {}
        for r in dp.itertuples():
            label = f"{r.dataset} {r.fraction} ε = {r.privacy} {r.mitigation}"
            for item in getattr(r, col):
                where.setdefault(item, []).append(label)
        if not where:
            continue
        items = []
        for item, settings in where.items():
            scope = "all DP settings" if len(settings) == len(dp) else "; ".join(settings)
            items.append(f'<li>{esc(item)} <span class="muted">({esc(scope)})</span></li>')
        parts.append(f"<h3>{esc(title)}</h3><ul>{''.join(items)}</ul>")
    return Section("ledger", "Privacy ledger", "".join(parts))


#: Direction in which each mitigation measure is better.
_BETTER = {
    "minority_recall": +1,
    "balanced_accuracy": +1,
    "worst_recall": +1,
    "recall_gap": -1,
    "cost_of_privacy_balanced_accuracy": -1,
}


def mitigation_verdict(row) -> str:
    """``helps`` or ``hurts`` only when the CI of the paired difference excludes zero."""
    lo, hi = float(row["low"]), float(row["high"])
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "undecided (too few seeds)"
    better = _BETTER.get(row["measure"], +1)
    if lo > 0:
        return "helps" if better > 0 else "hurts"
    if hi < 0:
        return "hurts" if better > 0 else "helps"
    return "no evidence of a change"


def _mitigation_section(ctx: _Context) -> Section | None:
    d = ctx.data
    mits = [m for m in d.mitigations if m != "none"]
    if not mits:
        return None
    parts = []
    for mit in mits:
        for fr in d.fractions:
            parts.append(_table4(ctx, fr, mitigation=mit))
    m = d.mitigation
    if not m.empty:
        from ._figures import mitigation_effects_figure

        for measure, label in (
            ("minority_recall", "minority recall"),
            ("balanced_accuracy", "balanced accuracy"),
        ):
            if (m["measure"] == measure).any():
                parts.append(
                    ctx.figure(
                        Plot(mitigation_effects_figure, (m, measure)),
                        f"mitigation_{measure}",
                        f"Change in {label} of each mitigation against plain DP-SGD at the "
                        f"same ε, paired by seed: mean and 95 % CI over "
                        f"{ctx.seeds(mitigation=mits)}; above zero is higher.",
                    )
                )
        show = pd.DataFrame(
            {
                "dataset": m["dataset"],
                "fraction": m["fraction"],
                "mitigation": m["mitigation"],
                "privacy": [f"ε = {p}" for p in m["privacy"]],
                "measure": m["measure"],
                "mitigated − plain [95 % CI]": [
                    _ci_text(a, b, c) for a, b, c in zip(m["mean"], m["low"], m["high"])
                ],
                "n": m["n"],
                "p": [_fmt(p, ".2g") for p in m["p_value"]],
                "verdict": [mitigation_verdict(r) for _, r in m.iterrows()],
            }
        )
        ctx.write_csv("mitigation_effects.csv", m)
        parts.append(
            ctx.numbering.table(
                show,
                "Effect of each mitigation against plain DP-SGD at the same ε, paired by seed "
                f"over {ctx.seeds(mitigation=mits)} (mitigated − plain; for the cost of privacy "
                "in balanced accuracy, negative means the mitigation pays less).",
                group=["dataset", "fraction", "mitigation", "privacy"],
                files=["tables/mitigation_effects.csv"],
            )
        )
    return Section("mitigations", "Mitigations", "".join(parts))


def _ci_text(mean, low, high) -> str:
    from ._format import fmt_ci

    return fmt_ci(float(mean), float(low), float(high), digits=3, signed=True)


def _provider_sections(store, run_ids, out_dir: Path) -> list[Section]:
    """The threats section, then every user-registered provider's sections in registration
    order. A provider that fails becomes a visible notice instead of breaking the whole
    report."""
    from ._threats import threat_sections

    out: list[Section] = []
    for i, fn in enumerate([threat_sections, *SECTION_PROVIDERS]):
        name = getattr(fn, "__qualname__", repr(fn))
        try:
            got = fn(store, run_ids, out_dir) or []
            out.extend(got)
        except Exception as exc:  # a broken extension must not hide the study's results
            msg = f"{type(exc).__name__}: {exc}"
            print(f"imbalanced-dp report: section provider {name} failed: {msg}", file=sys.stderr)
            out.append(
                Section(
                    f"provider-{i}-failed",
                    f"{name} (failed)",
                    f'<p class="notice">This section could not be built: {esc(msg)}</p>',
                )
            )
    return out


#: reproduce's default number of seeds and why (the report's method line).
SEEDS_RULE = (
    "The number of seeds is fixed before the runs (reproduce: 30 by default, chosen from "
    "the widths it gives: outcomes at lr 0.001 can be bimodal, a minority recall of 0 or "
    "of 0.7 depending on the seed, and at that spread (standard deviation about 0.3) 10 "
    "seeds leave a 95 % half-width of about 0.23 and 30 about 0.12)."
)


def seeds_method(d: ReportData) -> str:
    """The method line on seeds: how many, the rule, and the widest interval they gave for
    the minority class's recall."""
    m = d.metrics
    if m.empty or "metric" not in m:
        return ""
    rec = m[(m["metric"] == "rec") & (m["class"] == "1") & (m["n"] > 1)]
    if rec.empty:
        return ""
    widest = rec.loc[rec["half_width"].idxmax()]
    where = [str(widest["dataset"])]
    if rec["fraction"].nunique() > 1:
        where.append(f"minority fraction {widest['fraction']}")
    where.append("no DP" if widest["privacy"] == "none" else f"ε = {widest['privacy']}")
    for key in ("mitigation", "scaling"):
        if key in rec and rec[key].nunique() > 1:
            where.append(f"{key} {widest[key]}")
    where.append(f"{int(widest['n'])} seeds")
    return (
        f"{SEEDS_RULE} The widest 95 % interval of the minority class's recall in this "
        f"report: ± {widest['half_width']:.2f} ({', '.join(where)})."
    )


def _header(ctx: _Context, store) -> str:
    d = ctx.data
    if d.empty:
        return (
            f'<p class="meta">Store <code>{esc(Path(store.path).name)}</code></p>'
            '<p class="notice">The store holds no finished runs for this report: there is '
            "nothing to tabulate yet. Run a study first (imbalanced-dp study run …).</p>"
        )
    n_runs = d.frame["run_id"].nunique()
    eps = [p for p in d.privacies if p != "none"]
    deltas = sorted({x for x in d.ledger["delta"] if isinstance(x, float) and not math.isnan(x)})
    bits = [
        f"store <code>{esc(Path(store.path).name)}</code>: {n_runs} finished runs",
        "datasets: " + ", ".join(esc(x) for x in d.datasets),
        "privacy: "
        + ", ".join(["none"] * ("none" in d.privacies) + [f"ε = {e}" for e in eps])
        + (f" (δ = {', '.join(f'{x:g}' for x in deltas)})" if deltas else ""),
        "minority fractions: " + ", ".join(esc(f) for f in d.fractions),
        "mitigations: " + ", ".join(esc(m) for m in d.mitigations),
        *(["tuning: fixed and privately tuned runs"] if not ctx.tuning_frame.empty else []),
        f"{esc(ctx.seeds())} per setting",
        "engines: " + ", ".join(esc(e) for e in dict.fromkeys(d.frame["engine"])),
    ]
    versions = "; ".join(f"{esc(k)} {esc(', '.join(v))}" for k, v in d.versions.items())
    return (
        f'<p class="meta">{" · ".join(bits)}</p>'
        + (f'<p class="meta">Versions: {versions}</p>' if versions else "")
        + (f'<p class="meta">{esc(method)}</p>' if (method := seeds_method(d)) else "")
        + '<p class="muted">Means over seeds with 95 % Student-t confidence intervals: '
        "tables show mean ± half-width, text shows mean [low, high]. Label 1 is the "
        "minority, positive class.</p>"
    )


def _findings_markdown(
    title: str,
    claims: list[ClaimResult],
    sentences: list[str],
    verdicts: pd.DataFrame | None = None,
    primary: str = "standard",
    collapsed: tuple[str, ...] = (),
) -> str:
    lines = [f"# {title}: findings", ""]
    if verdicts is not None:
        lines += [f"(The claims below are decided on the runs scaled with {primary}.)", ""]
    for c in claims:
        lines += [f"## Claim {c.number}: {c.verdict}", "", f"> {c.statement}", ""]
        lines += [f"- {s}" for s in c.sentences]
        lines += ["", f"Decision rule: {c.rule}", ""]
    lines += ["## What the numbers say", ""] + [f"- {s}" for s in sentences]
    if verdicts is not None:
        scalings = [c for c in verdicts.columns if c not in ("claim", "statement")]
        lines += ["", "## What the study did not say: the feature scaling", ""]
        lines += ["| claim | " + " | ".join(scalings) + " |"]
        lines += ["|---|" + "---|" * len(scalings)]
        for _, r in verdicts.iterrows():
            lines += [f"| {r['claim']} | " + " | ".join(r[s] for s in scalings) + " |"]
        lines += [""] + [f"- {s}" for s in [*flip_sentences(verdicts), *collapsed]]
    return "\n".join(lines) + "\n"


def _sensitivity_section(ctx: _Context, choices: list[ScalingChoice]) -> Section:
    """What the study did not say: Tables 3/4, the privacy–utility curve and the verdicts
    under each feature scaling."""
    d = ctx.data
    table = verdict_table(choices)
    scalings = [c.scaling for c in choices]
    head = "".join(f"<th>{esc(s)}</th>" for s in scalings)
    rows = "".join(
        f"<tr><td>Claim {r['claim']}</td><td>{esc(r['statement'])}</td>"
        + "".join(f"<td>{badge(r[s])}</td>" for s in scalings)
        + "</tr>"
        for _, r in table.iterrows()
    )
    verdicts = (
        '<div class="table-wrap"><table><thead><tr><th>claim</th><th>statement</th>'
        f"{head}</tr></thead><tbody>{rows}</tbody></table></div>"
    )
    ctx.write_csv("verdicts_by_scaling.csv", table)
    sentences = "".join(
        f"<li>{esc(s)}</li>" for s in [*flip_sentences(table), *collapse_sentences(choices)]
    )
    datasets = list(dict.fromkeys(c for ch in choices for c in ch.frame["dataset"]))
    fig = ctx.figure(
        Plot(
            scaling_utility_figure,
            ({c.scaling: c.metrics for c in choices},),
            {"datasets": datasets, "class_names": d.class_names},
        ),
        "privacy_utility_by_scaling",
        "Minority recall and balanced accuracy against ε under each feature scaling (mean "
        "and 95 % CI band over seeds); dashed: the non-private level of the same colour "
        "(dp_standard's is the standard one).",
    )
    tables = []
    for c in choices:
        for kind, privacy in (("table3", ["none"]), ("table4", None)):
            eps = privacy or [p for p in privacy_order(c.metrics["privacy"]) if p != "none"]
            t = metric_table(c.metrics, privacy=eps, fraction="natural", class_names=d.class_names)
            if t.empty:
                continue
            what = "Non-private" if kind == "table3" else "DP-SGD"
            seeds = seeds_text(c.frame[c.frame["privacy"].isin(eps)])
            caption = (
                f"{what} models with scaling {c.scaling}, in the layout of the study's "
                f"{'Table 3' if kind == 'table3' else 'Table 4'}: mean ± 95 % CI half-width "
                f"over {seeds}."
            )
            stem = _stem(kind, f"scaling-{c.scaling}")
            files = _metric_table_files(ctx, stem, t, caption)
            tables.append(_metric_table_html(ctx, t, caption, files))
    intro = (
        "<p>The study does not say how it preprocessed its features, and with DP-SGD's fixed "
        "clip bound the choice is not a detail: raw columns (glucose in the hundreds) and "
        "standardised ones give different models. Here the study's protocol ran under each "
        "scaling: <b>none</b> (the raw columns, as the study's text reads), <b>standard</b> "
        "(fitted on the training rows: not covered by ε), <b>minmax</b> (the same) and "
        "<b>dp_standard</b> (means and standard deviations released under DP with a share "
        "of ε: covered). Each is judged by the same rules as the findings above; the main "
        f"sections of this report show {esc(ctx.primary)}.</p>"
    )
    body = (
        f'{intro}{verdicts}<ul class="findings">{sentences}</ul>{fig}'
        "<details><summary>Tables 3 and 4 under each scaling</summary>"
        f"{''.join(tables)}</details>"
    )
    return Section("unstated", "What the study did not say", body)


def build_report(
    store,
    out_dir: Path,
    *,
    run_ids=None,
    title: str = DEFAULT_TITLE,
    force: bool = False,
    svg: bool = False,
) -> Path:
    """Write the tables, figures, findings and a self-contained ``report.html``.

    Parameters
    ----------
    store : ResultsStore
        The results store to report on.
    out_dir : Path
        The report's folder: ``report.html``, ``findings.md``, ``claims.csv``, ``tables/``
        (Markdown, LaTeX and CSV), ``figures/`` (PNG; SVG with ``svg``) and the manifest
        ``imbalanced-dp-report.json``. The report is built in a temporary sibling folder and
        replaces ``out_dir`` whole when complete: nothing of an earlier report survives, and
        an interrupted report leaves ``out_dir`` as it was.
    run_ids : iterable of str, optional
        Report on these runs only (default: every finished run of the store).
    title : str
        The report's title.
    force : bool, default False
        Replace ``out_dir`` even when it is a folder that is not a report of ours (without
        it such a folder is refused with :class:`~._folder.ReportFolderError`).
    svg : bool, default False
        Also write every figure as SVG (vector graphics for a paper). Off by default: the
        SVGs take as long to draw as the PNGs the page shows.

    Returns
    -------
    Path
        The path of ``report.html``.

    Notes
    -----
    The page embeds every figure as a base64 PNG and its CSS inline; it needs no network
    and no script. The sections registered with
    :func:`~imbalanced_dp.reports.register_section_provider` are appended after the
    built-in ones.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from imbalanced_dp.studies import ResultsStore
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> with ResultsStore(tmp / "r.sqlite") as store:
    ...     build_report(store, tmp / "report").name
    'report.html'
    """
    out_dir = Path(out_dir)
    with (
        report_folder(out_dir, force=force, store=str(Path(store.path).name)) as scratch,
        svg_figures(svg),
        FigureRenderer(svg=svg) as renderer,
    ):
        if renderer.cache_is_empty():
            renderer.start()  # every figure to draw: the workers load matplotlib meanwhile
        _build_into(store, scratch, run_ids=run_ids, title=title, renderer=renderer)
    return out_dir / "report.html"


def _build_into(store, out_dir: Path, *, run_ids, title: str, renderer: FigureRenderer) -> None:
    ids = None if run_ids is None else list(run_ids)
    everything = store_frame(store, ids)
    tuned_frame = pd.DataFrame()
    if has_tuning(everything):
        # tuned runs: a section compares them with the fixed ones; the main sections (the
        # study's claims) show the fixed runs, when there are any
        tuned_frame = everything
        fixed = everything[everything["tuning"] == "none"]
        if not fixed.empty:
            everything = fixed
            ids = list(dict.fromkeys(fixed["run_id"]))
    choices: list[ScalingChoice] = []
    primary = "standard"
    if not everything.empty and everything["scaling"].nunique() > 1:
        # several feature scalings: the main sections show one, a section compares them
        primary = primary_scaling(everything["scaling"])
        choices = analyse_choices(everything)
        ids = list(dict.fromkeys(choice_frame(everything, primary)["run_id"]))
    data = load_report_data(store, ids)
    ctx = _Context(data, out_dir, primary=primary, renderer=renderer)
    _write_sections(ctx, store, ids, tuned_frame, choices, title)


def _write_sections(
    ctx: _Context, store, ids, tuned_frame: pd.DataFrame, choices: list, title: str
) -> None:
    """The sections, claims, findings and page of :func:`_build_into`."""
    data, out_dir, primary = ctx.data, ctx.out_dir, ctx.primary
    tuning: _Tuning | None = None
    if not tuned_frame.empty:
        tuning = _tuning_data(store, tuned_frame, primary, data.class_names)
        ctx.tuning_frame = comparison_frame(tuned_frame, primary)
    sections: list[Section] = []
    claims: list[ClaimResult] = []
    sentences: list[str] = []
    if tuning is not None and (data.frame["tuning"] != "none").all():
        # tuned runs only: the study's claims concern fixed settings; show the tuned curves
        sections += [_tuning_section(ctx, tuning), _data_section(ctx), _ledger_section(ctx)]
        pd.DataFrame().to_csv(out_dir / "claims.csv", index=False)
        (out_dir / "findings.md").write_text(
            f"# {title}: findings\n\nThe store holds privately tuned runs only: the study's "
            "claims (about its fixed settings) are not decided.\n\n"
            "## Privately tuned hyperparameters\n\n"
            + "".join(f"- {x}\n" for x in tuning.sentences()),
            encoding="utf-8",
        )
    elif not data.empty:
        ref = reference_fractions(data.metrics)
        # The sections with figures are built first, so that the workers draw them while
        # the evidence is weighed; the page keeps its order (and the numbers follow the
        # page: Numbering.resolve).
        later = [_data_section(ctx), _nonprivate_section(ctx, ref), _dp_section(ctx, ref)]
        if tuning is not None:
            later.append(_tuning_section(ctx, tuning))
        later.append(_fairness_section(ctx, ref))
        later += [x for x in (_imbalance_section(ctx), _confusion_section(ctx)) if x is not None]
        later.append(_ledger_section(ctx))
        mit = _mitigation_section(ctx)
        if mit is not None:
            later.append(mit)
        ev: Evidence = compute_evidence(
            data.frame,
            metrics=data.metrics,
            fairness=data.fairness,
            cost=data.cost,
            amplification=data.amplification,
            mitigation=data.mitigation,
        )
        claims = evaluate_claims(ev)
        sentences = finding_sentences(ev, class_names=data.class_names)
        sections.append(_findings_section(ctx, claims, sentences))
        if choices:
            sections.append(_sensitivity_section(ctx, choices))
        sections += later
        cells = [
            c.cells.assign(verdict=c.verdict, scaling=primary) for c in claims if not c.cells.empty
        ]
        for ch in choices:
            if ch.scaling != primary:
                cells += [
                    c.cells.assign(verdict=c.verdict, scaling=ch.scaling)
                    for c in ch.claims
                    if not c.cells.empty
                ]
        path = out_dir / "claims.csv"
        claims_csv = pd.concat(cells, ignore_index=True) if cells else pd.DataFrame()
        claims_csv.to_csv(path, index=False, float_format="%.6g")
        path = out_dir / "findings.md"
        table = verdict_table(choices) if choices else None
        text = _findings_markdown(
            title, claims, sentences, table, primary, tuple(collapse_sentences(choices))
        )
        if tuning is not None:
            text += "\n## Fixed against privately tuned hyperparameters\n\n"
            text += "".join(f"- {x}\n" for x in tuning.sentences())
        path.write_text(text, encoding="utf-8")
    sections += _provider_sections(store, ids, out_dir)
    html = ctx.numbering.resolve(page(title, _header(ctx, store), sections))
    html = fill_figures(html, ctx.renderer.render())
    report = out_dir / "report.html"
    report.write_text(html, encoding="utf-8")


__all__ = ["DEFAULT_TITLE", "build_report"]
