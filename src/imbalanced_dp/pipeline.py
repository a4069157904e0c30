"""What the commands do, as library functions: reproduce the study, run a study, export,
report. The CLI only parses arguments and calls these."""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .exceptions import StoreError
from .privacy import DEFAULT_ACCOUNTANT
from .studies import (
    DEFAULT_STORE,
    PREDICTION_COLUMNS,
    RESULT_COLUMNS,
    ResultsStore,
    StudyInterrupted,
    StudySpec,
    aggregate_metrics,
    default_workers,
    preset,
    primary_scaling,
    require_one_config,
    run_runs,
    store_frame,
    study_tables,
    validate_runs,
    versions,
)

Echo = Callable[[str], None]


def _fmt_csv(df: pd.DataFrame, path: Path, columns) -> Path:
    df.loc[:, list(columns)].to_csv(path, index=False, float_format="%.17g")
    return path


def reproduce(
    *,
    seeds: int = 30,
    epochs: int = 500,
    engine: str = "fast",
    accountant: str = DEFAULT_ACCOUNTANT,
    out_dir: Path = Path("reproduce-results"),
    workers: int | None = None,
    report: bool = True,
    quiet: bool = False,
    echo: Echo = print,
    scaling: str = "standard",
    sensitivity: bool = False,
) -> dict:
    """Run the study's protocol (the ``paper`` preset) with the feature ``scaling``, or
    (``sensitivity``) under each scaling it leaves unstated (the ``sensitivity`` preset);
    print Tables 3 and 4, write the results, the configuration and the report to
    ``out_dir``. Returns the paths written."""
    from .data import check_scaling
    from .reports import table3, table4, to_text

    t0 = time.perf_counter()
    spec = preset("sensitivity" if sensitivity else "paper")
    spec.seeds = list(range(seeds))
    spec.epochs = epochs
    spec.engine = engine
    spec.accountant = accountant
    if not sensitivity:
        spec.scaling = [check_scaling(scaling)]
    runs = spec.expand()
    validate_runs(runs)  # every input problem surfaces before anything is written
    out_dir = Path(out_dir)
    if report:
        from .reports import check_report_dir

        check_report_dir(out_dir / "report", flag="--out")
    out_dir.mkdir(parents=True, exist_ok=True)
    store = ResultsStore(out_dir / "results.sqlite")
    if not quiet:
        scalings = ", ".join(spec.scaling)
        echo(
            f"reproducing the study: {len(runs)} runs (2 datasets × 4 privacy levels × "
            f"{seeds} seeds × scaling {scalings}, {epochs} epochs, engine {engine}) → "
            f"{out_dir}/"
        )
    try:
        outcome = run_runs(
            runs,
            store,
            study=spec.name,
            study_spec=spec.to_dict(),
            workers=workers,
            quiet=quiet,
        )
    except StudyInterrupted:
        how = " --sensitivity" if sensitivity else f" --scaling {spec.scaling[0]}"
        print(
            f"resume with: imbalanced-dp reproduce --seeds {seeds} --epochs {epochs} "
            f"--engine {engine} --accountant {accountant}{how} "
            f"--out {shlex.quote(str(out_dir))}",
            file=sys.stderr,
        )
        raise
    ids = outcome.run_ids
    res = store.results_frame(ids)
    pred = store.predictions_frame(ids)
    paths = {
        "results": _fmt_csv(res, out_dir / "results.csv", RESULT_COLUMNS),
        "predictions": _fmt_csv(pred, out_dir / "predictions.csv", PREDICTION_COLUMNS),
    }
    frame = store_frame(store, ids)
    primary = primary_scaling(frame["scaling"])
    agg = aggregate_metrics(frame[frame["scaling"] == primary])
    from .data import load_dataset

    names = {n: load_dataset(n).class_names for n in ("pima", "breast_cancer")}
    t3 = table3(agg, class_names=names)
    t4 = table4(agg, class_names=names)
    if not report:
        # with a report, its tables/ folder holds these (and more) next to the figures
        _write_tables(out_dir / "tables", t3, t4, seeds)
    wall = time.perf_counter() - t0
    config = {
        "command": "imbalanced-dp reproduce",
        "argv": sys.argv,
        "study": spec.to_dict(),
        "runs": len(runs),
        "runs_trained": outcome.done,
        "runs_failed": outcome.failed,
        "runs_already_stored": outcome.skipped,
        "wall_seconds": round(wall, 3),
        "store": str(out_dir / "results.sqlite"),
        "versions": versions(),
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    paths["config"] = out_dir / "config.json"
    which = f", features scaled with {primary}" if sensitivity else ""
    echo("")
    echo(f"Table 3 — non-private models (mean ± 95 % CI half-width over {seeds} seeds{which})")
    echo(to_text(t3))
    echo("")
    echo(f"Table 4 — DP-SGD at δ = 1e-4 (mean ± 95 % CI half-width over {seeds} seeds{which})")
    echo(to_text(t4))
    echo("")
    if sensitivity:
        from .reports import analyse_choices, verdict_table

        verdicts = verdict_table(analyse_choices(frame))
        echo("The study's claims under each feature scaling (the report says why):")
        echo(verdicts.drop(columns="statement").to_string(index=False))
        echo("")
    if outcome.failed:
        echo(f"{outcome.failed} runs FAILED; first: {outcome.failures[0]}")
    if report:
        paths["report"] = write_report(
            store, out_dir / "report", run_ids=ids, title="Reproduction of the study"
        )
    echo(
        f"{outcome.done} runs trained, {outcome.skipped} already stored, in {wall:.1f} s. "
        f"Results in {out_dir}/: results.csv, predictions.csv, config.json, "
        + ("report/ (report.html, tables/, figures/)" if report else "tables/")
    )
    if report:
        echo(f"report: {paths['report']}")
    store.close()
    return paths


def _write_tables(folder: Path, t3: pd.DataFrame, t4: pd.DataFrame, seeds: int) -> None:
    from .reports import to_latex, to_markdown

    folder.mkdir(parents=True, exist_ok=True)
    caps = {
        "table3": "Non-private models: per-class metrics, mean ± 95 % CI half-width over "
        f"{seeds} seeds.",
        "table4": "DP-SGD (δ = 1e-4): per-class metrics per ε, mean ± 95 % CI half-width over "
        f"{seeds} seeds.",
    }
    for name, t in (("table3", t3), ("table4", t4)):
        cap = caps[name]
        (folder / f"{name}.md").write_text(cap + "\n\n" + to_markdown(t) + "\n", encoding="utf-8")
        (folder / f"{name}.tex").write_text(
            to_latex(t, caption=cap, label=f"tab:{name}") + "\n", encoding="utf-8"
        )
        t.to_csv(folder / f"{name}.csv", index=False, float_format="%.6g")


def run_study(
    spec: StudySpec,
    *,
    store_path: Path | None = None,
    backend: str = "local",
    address: str | None = None,
    workers: int | None = None,
    max_batch: int = 40,
    report_dir: Path | None = None,
    report: bool = True,
    quiet: bool = False,
    echo: Echo = print,
    argv: list[str] | None = None,
    connect_timeout: float | None = None,
) -> bool:
    """Run a study into a store (resuming), then write its report. Returns False if any run
    failed.

    Everything that can be refused is checked before the store is opened: the runs, the
    report folder, and with ``backend="ray"`` the connection to Ray (within
    ``connect_timeout`` seconds, default 20), so a bad input or an unreachable cluster
    writes nothing."""
    runs = spec.expand()
    validate_runs(runs)
    path = Path(store_path) if store_path else DEFAULT_STORE
    out = Path(report_dir) if report_dir else path.parent / f"{path.stem}-report"
    if report:
        from .reports import check_report_dir

        check_report_dir(out, flag="--report-dir")
    ray_started = False
    if backend == "ray":
        from .studies import DEFAULT_CONNECT_TIMEOUT, connect_ray

        timeout = DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else connect_timeout
        ray_started = connect_ray(address, workers=workers or default_workers(), timeout=timeout)
    try:
        return _run_study_into(
            spec, runs, path, out, backend, address, workers, max_batch, report, quiet, echo, argv
        )
    finally:
        if ray_started:
            import ray

            ray.shutdown()


def _run_study_into(
    spec, runs, path, out, backend, address, workers, max_batch, report, quiet, echo, argv
) -> bool:
    store = ResultsStore(path)
    if not quiet:
        echo(f"study {spec.name!r}: {len(runs)} runs → {path}")
    try:
        outcome = run_runs(
            runs,
            store,
            study=spec.name,
            study_spec=spec.to_dict(),
            backend=backend,
            address=address,
            workers=workers,
            quiet=quiet,
            max_batch=max_batch,
        )
    except StudyInterrupted:
        cmd = " ".join(shlex.quote(a) for a in (argv or ["imbalanced-dp", "study", "run", "..."]))
        print(f"resume with: {cmd}", file=sys.stderr)
        raise
    if spec.attacks:
        from .attacks import run_study_attacks

        run_study_attacks(spec, store, outcome.run_ids, quiet=quiet, echo=echo)
    echo(
        f"{outcome.done} runs trained, {outcome.skipped} already stored, {outcome.failed} "
        f"failed, in {outcome.seconds:.1f} s (store: {path})"
    )
    for f in outcome.failures[:5]:
        echo(f"  failed: {f.splitlines()[0]}")
    if report:
        if not quiet:
            echo("writing the report …")
        rp = write_report(store, out, run_ids=outcome.run_ids, title=f"Study {spec.name}")
        echo(f"report: {rp}")
    store.close()
    return outcome.failed == 0


def select_runs(store: ResultsStore, study: str | None = None, *, what: str = "report"):
    """The runs a report or an export covers: those of ``study``, or (``None``) every run
    of the store, provided that no setting holds runs of different configurations (it
    would pool them); otherwise :class:`~imbalanced_dp.exceptions.StoreError` lists the
    studies to choose from with ``--study``."""
    names = store.studies()["name"].tolist()
    if study is not None:
        if study not in names:
            raise StoreError(
                f"no study {study!r} in {store.path}; studies in the store: "
                + (", ".join(names) or "none")
            )
        ids = store.study_run_ids(study)
        require_one_config(store_frame(store, ids), what=what, studies=names)
        return ids
    require_one_config(store_frame(store), what=what, studies=names)
    return None


def open_existing_store(path: Path | None) -> ResultsStore:
    p = Path(path) if path else DEFAULT_STORE
    if not p.exists():
        raise StoreError(
            f"no results store at {p}; run a study first (imbalanced-dp study run ...) or "
            "give --store FILE"
        )
    return ResultsStore(p)


def status_table(store: ResultsStore) -> str:
    studies = store.studies()
    if studies.empty:
        return f"{store.path}: no studies recorded"
    runs = store.query("SELECT run_id, status FROM runs")
    status = dict(zip(runs["run_id"], runs["status"]))
    lines = [f"store {store.path}"]
    for name in studies["name"]:
        sr = store.study_runs(name)
        lines.append(f"\nstudy {name}: {len(sr)} runs")
        width = max(len(g) for g in sr["grp"]) + 2 if len(sr) else 10
        lines.append(f"  {'group':<{width}}{'done':>6}{'pending':>9}{'failed':>8}")
        tot = [0, 0, 0]
        groups = sorted(sr.groupby("grp", sort=False), key=lambda kv: group_order(kv[0]))
        for grp, g in groups:
            st = [status.get(r) for r in g["run_id"]]
            d, f = st.count("done"), st.count("failed")
            p = len(st) - d - f
            tot = [tot[0] + d, tot[1] + p, tot[2] + f]
            lines.append(f"  {grp:<{width}}{d:>6}{p:>9}{f:>8}")
        lines.append(f"  {'total':<{width}}{tot[0]:>6}{tot[1]:>9}{tot[2]:>8}")
    return "\n".join(lines)


def group_order(label: str) -> tuple:
    """Sort key of a status group label ``"<dataset> | minority=<f> | <privacy> | <mitigation>"``:
    by dataset, then minority fraction (natural first, then from the least to the most
    skewed), privacy (none first, then ε from largest to smallest), mitigation (none
    first)."""
    parts = [p.strip() for p in label.split("|")]
    if len(parts) != 4:
        return (1, label)
    ds, frac, priv, mit = parts
    frac = frac.removeprefix("minority=")
    fkey = (0, 0.0) if frac == "natural" else (1, -_number(frac))
    pkey = (0, 0.0) if priv == "none" else (1, -_number(priv.removeprefix("eps=")))
    return (0, ds, fkey, pkey, (mit != "none", mit))


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def export_store(
    store: ResultsStore, out_dir: Path, *, fmt: str = "csv", study: str | None = None
) -> list[Path]:
    """Tidy tables of a store (or of one ``study``): results, predictions, runs and every
    aggregate. A store whose settings hold runs of several configurations needs ``study``
    (see :func:`select_runs`)."""
    ids = select_runs(store, study, what="table of aggregates")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = store.runs_frame(status=None)
    if ids is not None:
        runs = runs[runs["run_id"].isin(set(ids))]
    frames: dict[str, pd.DataFrame] = {
        "results": store.results_frame(ids),  # (with the tuning column if some run tuned)
        "predictions": store.predictions_frame(ids).loc[:, list(PREDICTION_COLUMNS)],
        "runs": runs.reset_index(drop=True),
    }
    tabs = study_tables(store, ids)
    for name in (
        "metrics",
        "fairness",
        "cost_of_privacy",
        "disparity_amplification",
        "mitigation_effects",
    ):
        if name in tabs:
            frames[f"aggregate_{name}"] = tabs[name]
    paths = []
    for name, df in frames.items():
        if fmt == "csv":
            p = out_dir / f"{name}.csv"
            df.to_csv(p, index=False, float_format="%.17g")
        else:
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise StoreError(
                    "parquet export needs pyarrow: pip install 'imbalanced-dp[parquet]' "
                    "(or use --format csv)"
                ) from None
            p = out_dir / f"{name}.parquet"
            df.to_parquet(p, index=False)
        paths.append(p)
    return paths


def write_report(
    store: ResultsStore,
    out_dir: Path,
    *,
    run_ids=None,
    study: str | None = None,
    title: str = "imbalanced-dp report",
    force: bool = False,
    svg: bool = False,
) -> Path:
    """Tables, figures and report.html for a store (or some of its runs, or one ``study``);
    returns the path of report.html. A store whose settings hold runs of several
    configurations needs ``study`` or ``run_ids`` (see :func:`select_runs`). Figures are
    PNG files, and SVG files too with ``svg``.

    ``out_dir`` is replaced whole once the new report is complete (built in a temporary
    sibling folder, marked by its manifest ``imbalanced-dp-report.json``); a folder that
    is not a report of ours is refused unless ``force``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from imbalanced_dp import DatasetRef, ResultsStore, RunSpec, run_runs, write_report
    >>> specs = [RunSpec(DatasetRef(name="pima"), seed=s, epsilon=e, epochs=3,
    ...                  accountant="rdp") for s in (0, 1) for e in (None, 2.0)]
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with ResultsStore(pathlib.Path(tmp) / "r.sqlite") as store:
    ...         _ = run_runs(specs, store, workers=1, quiet=True)
    ...         path = write_report(store, pathlib.Path(tmp) / "report")
    ...         print(path.name, path.stat().st_size > 10_000)
    report.html True
    """
    from .reports import build_report

    if run_ids is None:
        run_ids = select_runs(store, study)
    else:
        require_one_config(store_frame(store, run_ids), what="report")
    return build_report(store, Path(out_dir), run_ids=run_ids, title=title, force=force, svg=svg)
