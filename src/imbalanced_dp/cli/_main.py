"""The ``imbalanced-dp`` command: argument parsing only; every command calls the library.

Exit codes: 0 success; 2 bad input (one line on stderr naming the problem and the fix);
1 an unexpected failure; 130 interrupted (what finished is stored).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import click

from ..exceptions import ImbalancedDPError, ParameterError
from . import _choices
from ._audit import audit
from ._options import (
    PROG,
    _check_out_dir,
    _dataset_ref,
    _echo_err,
    _layers,
    _warn_line,
    dataset_options,
    scaling_options,
    scaling_settings,
    split_options,
)
from ._tune import tune

# ---------------------------------------------------------------------- the group


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="imbalanced-dp", prog_name=PROG)
def cli() -> None:
    """How much differential privacy can a diagnostic model on imbalanced data afford, and
    who pays for it.

    Trains the study's MLPs without privacy and with DP-SGD at calibrated (ε, δ), and reports
    per-class precision, recall, specificity, F1, geometric mean and IBA with confidence
    intervals over seeds.

    \b
    Start with:
      imbalanced-dp datasets
      imbalanced-dp run --dataset pima --epsilon 2
      imbalanced-dp tune --dataset pima --epsilon 2
      imbalanced-dp reproduce
    """


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def datasets(as_json: bool) -> None:
    """List the bundled datasets: rows, features, class counts and minority share."""
    from ..data import dataset_names, load_dataset

    rows = [load_dataset(n).summary() for n in dataset_names()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    head = f"{'name':<15}{'rows':>6}{'features':>10}  {'class 0':<22}{'class 1':<22}{'minority':>9}"
    click.echo(head)
    for r in rows:
        c0 = f"{r['count_0']} {r['class_0']}"
        c1 = f"{r['count_1']} {r['class_1']}"
        click.echo(
            f"{r['name']:<15}{r['rows']:>6}{r['features']:>10}  {c0:<22}{c1:<22}"
            f"{r['minority_share']:>8.1%}"
        )
    click.echo("\nAny CSV table works too: --csv PATH --target COL [--positive VALUE].")


@cli.command()
@dataset_options
@click.option("--epsilon", type=float, metavar="E", help="Target ε of DP-SGD (default 2).")
@click.option("--non-private", is_flag=True, help="Plain minibatch SGD, no privacy.")
@click.option(
    "--delta",
    type=float,
    default=None,
    metavar="D",
    help="δ (default 1e-4, or the largest power of ten ≤ 1/(10 n) for tables above 1 000 rows).",
)
@click.option("--epochs", type=int, default=500, show_default=True, metavar="N")
@click.option("--batch-size", type=int, default=64, show_default=True, metavar="B")
@click.option(
    "--lr",
    type=float,
    default=None,
    metavar="LR",
    help="Learning rate (default: the dataset's preset: pima 0.01, breast_cancer 0.001, "
    "else 0.01).",
)
@click.option(
    "--clip",
    type=float,
    default=1.0,
    show_default=True,
    metavar="C",
    help="Per-example clip bound.",
)
@click.option(
    "--layers",
    default=None,
    metavar="H1,H2,...",
    help="Hidden layer sizes (default: the dataset's preset, else 20,10,10).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    metavar="S",
    help="Seed of the split and the initialisation; the noise is secret unless --reproducible.",
)
@click.option(
    "--reproducible",
    is_flag=True,
    help="Research mode: draw sampling and noise from the seed too, so the run can be "
    "repeated bit for bit. The guarantee then assumes the seed stays secret (the ledger "
    "says so); without it the noise comes from a secret key that is never stored.",
)
@click.option("--engine", type=_choices.ENGINE, default="fast", show_default=True)
@click.option(
    "--accountant",
    type=_choices.ACCOUNTANT,
    default=_choices.default_accountant,
    show_default="pld",
    help="pld (dp-accounting's PLD: tight, fast), prv (Opacus's PRV) or rdp (Opacus's RDP).",
)
@split_options
@click.option(
    "--mitigation",
    default="none",
    show_default=True,
    metavar="NAME",
    help="DP runs only: none; class_weighted (class-weighted loss, noisy class counts); "
    "dpsgd_f or global_adapt (per-class clipping); threshold (a decision threshold balanced "
    "on held-out training rows, outside ε). See docs/protocol.md.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--save",
    "save_path",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    help="Also save the model (with its scaling, feature names and privacy ledger) to FILE, "
    "a .skops file that imbalanced-dp predict applies to new rows.",
)
@scaling_options
def run(
    dataset,
    csv_path,
    target,
    positive,
    sep,
    features,
    drop,
    epsilon,
    non_private,
    delta,
    epochs,
    batch_size,
    lr,
    clip,
    layers,
    seed,
    reproducible,
    engine,
    accountant,
    minority_fraction,
    imbalance_method,
    test_fraction,
    mitigation,
    as_json,
    save_path,
    scaling,
    bounds_path,
    scaling_share,
) -> None:
    """Train one model and print its per-class table (or one JSON object).

    The noise of a DP run comes from a secret key drawn when training starts and never
    stored, so nothing the run prints lets anyone replay it; --reproducible draws it from
    the seed instead (research mode).
    """
    from ..cli._render import run_json, run_text
    from ..studies import RunSpec, run_single

    ref = _dataset_ref(dataset, csv_path, target, positive, sep, features, drop)
    if non_private and epsilon is not None:
        raise ParameterError("give either --epsilon or --non-private, not both")
    if non_private and mitigation != "none":
        raise ParameterError("mitigations apply to DP runs; drop --non-private or --mitigation")
    eps = None if non_private else (2.0 if epsilon is None else epsilon)
    ds = ref.load(test_fraction)
    spec = RunSpec(
        dataset=ref,
        seed=seed,
        epsilon=eps,
        delta=delta,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        clip=clip,
        layers=_layers(layers),
        accountant=accountant,
        engine=engine,
        test_fraction=test_fraction,
        minority_fraction=minority_fraction,
        imbalance_method=imbalance_method,
        mitigation=mitigation,
        reproducible=reproducible,
        **scaling_settings(ref, scaling, bounds_path, scaling_share),
    )
    if save_path is not None:
        _check_save_path(save_path)
    res = run_single(spec, threads=1, keep_model=save_path is not None)
    if as_json:
        click.echo(json.dumps(run_json(res), indent=2, default=float))
    else:
        click.echo(run_text(res, ds))
    _warn_one_class(res, ds)
    if save_path is not None:
        res.model.save(save_path)
        _echo_err(
            f"{PROG}: model saved to {save_path} (apply it with: {PROG} predict --model "
            f"{save_path} --csv TABLE)"
        )


def _check_save_path(path: Path) -> None:
    if path.is_dir():
        raise ParameterError(f"--save {path} is a folder; give a file name such as model.skops")
    if not path.parent.is_dir():
        raise ParameterError(f"--save {path}: folder {path.parent} does not exist")


def _warn_one_class(res, ds) -> None:
    """One line when the model predicts a single class for every test row."""
    import numpy as np

    y_pred = np.asarray(res.predictions["y_pred"])
    for label in (1, 0):
        if not (y_pred == label).any():
            name = ds.class_names[label]
            role = "the minority, positive class" if label == 1 else "the majority class"
            other = ds.class_names[1 - label]
            _echo_err(
                f"{PROG}: warning: the model predicts no test row as {name!r} (label {label}, "
                f"{role}): every one of the {len(y_pred)} test rows is called {other!r}, so "
                f"its recall is 0"
                + (
                    "; common at small ε or few epochs — try --mitigation threshold or "
                    "class_weighted, or a larger ε"
                    if label == 1
                    else ""
                )
            )


@cli.command()
@click.option(
    "--seeds",
    type=int,
    default=30,
    show_default=True,
    metavar="N",
    help="Seeds per setting (0 … N−1). 30 by default: outcomes can be bimodal (a minority "
    "recall of 0 or 0.7 by seed), and 30 seeds halve the interval widths of 10.",
)
@click.option("--epochs", type=int, default=500, show_default=True, metavar="N")
@click.option("--engine", type=_choices.ENGINE, default="fast", show_default=True)
@click.option(
    "--accountant",
    type=_choices.ACCOUNTANT,
    default=_choices.default_accountant,
    show_default="pld",
    help="pld (dp-accounting's PLD: tight, fast), prv (Opacus's PRV) or rdp (Opacus's RDP).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reproduce-results"),
    show_default=True,
    help="Output folder (holds the results store: rerunning resumes).",
)
@click.option(
    "--workers", type=int, default=None, metavar="N", help="Worker processes (default: all cores)."
)
@click.option("--no-report", is_flag=True, help="Skip report.html and the figures.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option(
    "--scaling",
    default="standard",
    show_default=True,
    metavar="KIND",
    help="Feature scaling (the study does not say): standard (fitted on the training rows, "
    "not covered by ε), none, minmax, public or dp_standard (see run --help).",
)
@click.option(
    "--sensitivity",
    is_flag=True,
    help="Run the protocol under each scaling the study leaves open (none, standard, minmax, "
    "dp_standard) and report which of its claims change with it.",
)
def reproduce(
    seeds, epochs, engine, accountant, out_dir, workers, no_report, quiet, scaling, sensitivity
) -> None:
    """Reproduce the study: both datasets, non-private and ε ∈ {8, 2, 1} at δ = 1e-4.

    Prints Table 3 (non-private) and Table 4 (DP) as mean ± 95 % CI half-width over seeds,
    and writes results.csv, predictions.csv, config.json, the tables and report.html to the
    output folder.
    """
    from ..pipeline import reproduce as do_reproduce
    from ..settings import check_setting

    check_setting("seeds", seeds, label="--seeds")
    check_setting("epochs", epochs, label="--epochs")
    _check_out_dir(out_dir)
    if sensitivity and scaling != "standard":
        raise ParameterError("give --sensitivity (every scaling) or --scaling KIND, not both")
    do_reproduce(
        seeds=seeds,
        epochs=epochs,
        engine=engine,
        accountant=accountant,
        out_dir=out_dir,
        workers=workers,
        report=not no_report,
        quiet=quiet,
        echo=click.echo,
        scaling=scaling,
        sensitivity=sensitivity,
    )


@cli.command()
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="A model saved by imbalanced-dp run --save (or DPMLPClassifier.save).",
)
@click.option(
    "--csv",
    "csv_path",
    required=True,
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Rows to predict: a table with the model's feature columns (others are ignored).",
)
@click.option("--sep", metavar="CHAR", help="Field separator of --csv (default ',').")
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the predictions here (default: print them).",
)
def predict(model_path, csv_path, sep, out_path) -> None:
    """Apply a saved model to a table: one row per input row with row, p_positive (the
    probability of label 1, the positive class), y_pred (0 or 1) and predicted_class.

    The model's scaling, feature names and decision threshold come from the file; its
    privacy ledger is inside it too (docs/privacy.md). Loading never runs code from the
    file: anything but an imbalanced-dp model of this format version is refused.
    """
    import numpy as np
    import pandas as pd

    from ..data import load_features
    from ..models import load_model

    if out_path is not None and not out_path.parent.is_dir():
        raise ParameterError(f"--out {out_path}: folder {out_path.parent} does not exist")
    model = load_model(model_path)
    X = load_features(csv_path, model.feature_names, sep=sep)
    proba = model.predict_proba(X)
    bad = ~np.isfinite(proba).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ParameterError(
            f"the model's probabilities are not finite for {len(rows)} rows of {csv_path} "
            f"(first: row {int(rows[0])}): their values overflow after scaling; check those "
            "rows' units against the table the model was trained on"
        )
    y_pred = model.decide(proba[:, 1])
    out = pd.DataFrame(
        {
            "row": np.arange(len(X)),
            "p_positive": proba[:, 1],
            "y_pred": y_pred,
            "predicted_class": [model.class_names[int(v)] for v in y_pred],
        }
    )
    if out_path is None:
        click.echo(out.to_csv(index=False, float_format="%.17g"), nl=False)
        return
    tmp = out_path.with_name(f".{out_path.name}.tmp-{os.getpid()}")
    try:
        out.to_csv(tmp, index=False, float_format="%.17g")
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"predictions: {out_path} ({len(out)} rows)")


# ---------------------------------------------------------------------- studies


@cli.group()
def study() -> None:
    """Sweeps of ε × class imbalance × seeds, stored in a resumable SQLite store."""


@study.command("run")
@click.argument("spec_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--preset",
    type=_choices.PRESET,
    default=None,
    help="A named study instead of a spec file.",
)
@dataset_options
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Results store (default: imbalanced-dp-results/results.sqlite).",
)
@click.option("--backend", type=_choices.BACKEND, default="local", show_default=True)
@click.option(
    "--address",
    default=None,
    metavar="ADDR",
    help="Ray cluster address: HOST:PORT as printed by `ray start --head`, or auto "
    "(default: start a local Ray instance).",
)
@click.option(
    "--connect-timeout",
    type=float,
    default=20.0,
    show_default=True,
    metavar="SECONDS",
    help="With --backend ray: how long to wait for the cluster before giving up; the "
    "connection is made before anything is written to the store.",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    metavar="N",
    help="Worker processes / Ray CPUs (default: all cores).",
)
@click.option(
    "--max-batch",
    type=int,
    default=40,
    show_default=True,
    metavar="K",
    help="Most runs per engine batch (smaller batches lose less work to a crash).",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the report (default: <store name>-report/ next to the store). A "
    "folder that is not an imbalanced-dp report is refused.",
)
@click.option("--no-report", is_flag=True, help="Skip the report.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--name", default=None, metavar="NAME", help="The study's name in the store.")
@click.option(
    "--epsilon",
    "privacy",
    default=None,
    metavar="LIST",
    help='Privacy levels, e.g. "none,8,2,1" (replaces the spec\'s privacy).',
)
@click.option(
    "--seeds", default=None, metavar="N|LIST", help="A number of seeds, or a list like 0,3,7."
)
@click.option("--epochs", type=int, default=None, metavar="N", help="Epochs of every run.")
@click.option(
    "--delta", type=float, default=None, metavar="D", help="δ of every DP run (default auto)."
)
@click.option(
    "--minority-fractions",
    default=None,
    metavar="LIST",
    help='Minority shares of the training split, e.g. "natural,0.2,0.1".',
)
@click.option(
    "--scaling",
    "scalings",
    default=None,
    metavar="LIST",
    help='Feature scalings, e.g. "standard,dp_standard" (see run --help).',
)
@click.option(
    "--tuning",
    "tunings",
    default=None,
    metavar="LIST",
    help='How the hyperparameters are set: "none" (the fixed settings), "private" (a private '
    "search on each run's training split, its ε inside the run's; see imbalanced-dp tune), "
    'or "none,private" to compare both.',
)
@click.option(
    "--tuning-trials",
    type=float,
    default=None,
    metavar="T",
    help="The private search's expected number of trials (default 20).",
)
def study_run(
    spec_file,
    preset,
    dataset,
    csv_path,
    target,
    positive,
    sep,
    features,
    drop,
    store,
    backend,
    address,
    connect_timeout,
    workers,
    max_batch,
    report_dir,
    no_report,
    quiet,
    name,
    privacy,
    seeds,
    epochs,
    delta,
    minority_fractions,
    scalings,
    tunings,
    tuning_trials,
) -> None:
    """Run a study: SPEC.toml, --preset NAME, or a default grid on --csv/--dataset.

    \b
    The default grid on one table: natural imbalance, privacy none, 8, 4, 2, 1 at δ = 1e-4
    (smaller for tables above 1 000 rows), 10 seeds, 500 epochs, the dataset's preset
    model, research mode (noise reproducible from the seeds; see docs/privacy.md). Reruns
    skip stored runs; Ctrl-C stores what finished and tells how to resume.

    \b
    A SPEC.toml may set: name, datasets, minority_fractions, privacy, delta,
    reproducible, seeds, epochs, batch_size, lr, clip, layers, accountant, engine,
    test_fraction, imbalance_method, mitigations, mitigation_params, scaling,
    scaling_share, bounds, tuning, tuning_trials, tuning_objective, tuning_holdout,
    tuning_space, attacks. `imbalanced-dp study keys` prints each with its meaning and
    default. --name, --epsilon, --seeds, --epochs, --delta, --minority-fractions,
    --scaling, --tuning and --tuning-trials replace those keys of any study.
    """
    from ..pipeline import run_study
    from ..studies import StudySpec, load_spec, parse_list, with_overrides
    from ..studies import preset as get_preset

    if max_batch < 1:
        raise ParameterError(f"--max-batch must be at least 1; got {max_batch}")
    if address is not None and backend != "ray":
        raise ParameterError("--address applies to --backend ray; add --backend ray")
    given = sum(x is not None and x is not False for x in (spec_file, preset)) + bool(
        dataset or csv_path
    )
    if given != 1:
        raise ParameterError("give exactly one of SPEC.toml, --preset NAME or --dataset/--csv")
    if spec_file is not None:
        spec = load_spec(spec_file)
    elif preset is not None:
        spec = get_preset(preset)
    else:
        ref = _dataset_ref(dataset, csv_path, target, positive, sep, features, drop)
        spec = StudySpec(name=f"default-{ref.label}", datasets=[ref])
    seeds_value = None
    if seeds is not None:
        items = parse_list(seeds, "seeds")
        seeds_value = items[0] if len(items) == 1 and isinstance(items[0], int) else items
    spec = with_overrides(
        spec,
        name=name,
        privacy=None if privacy is None else parse_list(privacy, "privacy"),
        seeds=seeds_value,
        epochs=epochs,
        delta=delta,
        minority_fractions=None
        if minority_fractions is None
        else parse_list(minority_fractions, "minority_fractions"),
        scaling=None if scalings is None else parse_list(scalings, "scaling"),
        tuning=None if tunings is None else parse_list(tunings, "tuning"),
        tuning_trials=tuning_trials,
    )
    ok = run_study(
        spec,
        store_path=store,
        backend=backend,
        address=address,
        connect_timeout=connect_timeout,
        workers=workers,
        max_batch=max_batch,
        report_dir=report_dir,
        report=not no_report,
        quiet=quiet,
        echo=click.echo,
        argv=sys.argv,
    )
    if not ok:
        sys.exit(1)


STORE_HELP = (
    "The results store (SQLite file) to read; default: imbalanced-dp-results/results.sqlite, "
    "where study run writes without --store."
)


@study.command("keys")
def study_keys() -> None:
    """List every key of a study spec (TOML) with its meaning and default."""
    from ..studies import keys_text

    click.echo(keys_text())
    click.echo("\nAn example: examples/study.toml in the source; reference: docs/protocol.md.")


@study.command("status")
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help=STORE_HELP,
)
def study_status(store) -> None:
    """Done, pending and failed runs per group of each study in the store."""
    from ..pipeline import open_existing_store, status_table

    s = open_existing_store(store)
    click.echo(status_table(s))


_STUDY_OPTION = click.option(
    "--study",
    "study_name",
    default=None,
    metavar="NAME",
    help="Only this study's runs (needed when the store holds studies whose settings "
    "differ; the error lists them).",
)


@study.command("export")
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help=STORE_HELP,
)
@_STUDY_OPTION
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    default="csv",
    show_default=True,
    help="parquet needs pyarrow: pip install 'imbalanced-dp[parquet]'.",
)
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder (default: <store name>-export/ next to the store).",
)
def study_export(store, study_name, fmt, out_dir) -> None:
    """Write tidy tables: results, predictions, runs and the aggregates over seeds."""
    from ..pipeline import export_store, open_existing_store

    s = open_existing_store(store)
    out = out_dir or (s.path.parent / f"{s.path.stem}-export")
    paths = export_store(s, out, fmt=fmt, study=study_name)
    for p in paths:
        click.echo(str(p))


@cli.command()
@click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help=STORE_HELP,
)
@_STUDY_OPTION
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder (default: <store name>-report/ next to the store, e.g. "
    "results-report/ for results.sqlite).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace --out even if it is a folder that is not an imbalanced-dp report.",
)
@click.option(
    "--svg",
    is_flag=True,
    help="Also write every figure as SVG (vector graphics, e.g. for a paper); drawing them "
    "takes as long as the PNGs.",
)
def report(store, study_name, out_dir, force, svg) -> None:
    """Tables, figures and a self-contained report.html from a results store.

    The report is written into a fresh temporary folder and replaces the report folder
    whole when it is complete (nothing of an earlier report is kept); its manifest
    imbalanced-dp-report.json marks the folder as a report. A folder that is not a report
    is never replaced without --force. Figures are PNG files (inlined in the page), and SVG
    files too with --svg; figures already drawn for an earlier report come from the cache.
    """
    from ..pipeline import open_existing_store, write_report
    from ..reports import check_report_dir, default_report_dir

    if out_dir is not None:
        check_report_dir(out_dir, force=force)
    s = open_existing_store(store)
    out = out_dir or default_report_dir(s.path)
    check_report_dir(out, force=force)
    path = write_report(s, out, study=study_name, force=force, svg=svg)
    click.echo(f"report: {path}")


# ---------------------------------------------------------------------- entry point


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns (and exits with) the exit code."""
    from ..exceptions import StudyInterrupted

    debug = bool(os.environ.get("IMBALANCED_DP_DEBUG"))
    warnings.showwarning = _warn_line
    try:
        rv = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
        code = rv if isinstance(rv, int) else 0
    except click.exceptions.Abort:
        _echo_err(f"{PROG}: interrupted")
        code = 130
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # a bare group prints its help
        code = exc.exit_code
    except click.UsageError as exc:
        # One line, like every other bad input (docs/architecture.md), instead of click's usage
        # block.
        where = exc.ctx.command_path if exc.ctx is not None else PROG
        msg = " ".join(exc.format_message().split())
        _echo_err(f"{PROG}: error: {msg} (see '{where} --help')")
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except ImbalancedDPError as exc:
        msg = " ".join(str(exc).split())
        _echo_err(f"{PROG}: error: {msg}")
        code = 2
    except StudyInterrupted as exc:
        _echo_err(f"{PROG}: {exc}; what finished is stored — run the same command again to resume")
        code = exc.exit_code
    except KeyboardInterrupt:
        _echo_err(f"{PROG}: interrupted")
        code = 130
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:
        if debug:
            raise
        _echo_err(
            f"{PROG}: unexpected error: {type(exc).__name__}: {exc} "
            "(set IMBALANCED_DP_DEBUG=1 for the traceback)"
        )
        code = 1
    sys.stdout.flush()
    return code


cli.add_command(audit)
cli.add_command(tune)
