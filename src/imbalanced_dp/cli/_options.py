"""What the commands share: the program's name, one-line messages, the dataset options and
their parsing into a :class:`~imbalanced_dp.studies.DatasetRef`, small argument checks."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..exceptions import ParameterError
from . import _choices

PROG = "imbalanced-dp"


def _warn_line(message, category, filename, lineno, file=None, line=None):
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def _echo_err(msg: str) -> None:
    click.echo(msg, err=True)


# ---------------------------------------------------------------------- shared options


def dataset_options(f):
    f = click.option(
        "--drop",
        metavar="COL,...",
        help="Columns of --csv to leave out (an identifier, a free-text note...).",
    )(f)
    f = click.option(
        "--features",
        metavar="COL,...",
        help="Use only these columns of --csv as features (default: all but the target).",
    )(f)
    f = click.option(
        "--sep",
        metavar="CHAR",
        help="Field separator of --csv (default ','; '\\t' or tab for tabs). A .csv.gz file "
        "is read directly.",
    )(f)
    f = click.option(
        "--positive",
        metavar="VALUE",
        help="Target value meaning positive (label 1). Default: the minority value (label 1 "
        "is the minority class; a warning says so when that is 0 of a 0/1 target).",
    )(f)
    f = click.option("--target", metavar="COL", help="Target column of --csv.")(f)
    f = click.option(
        "--csv",
        "csv_path",
        type=click.Path(dir_okay=True, path_type=Path),
        metavar="PATH",
        help="A CSV table of your own (with --target).",
    )(f)
    f = click.option(
        "--dataset",
        metavar="NAME",
        help="A bundled dataset: pima or breast_cancer (see `imbalanced-dp datasets`).",
    )(f)
    return f


def _columns(text: str | None, flag: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    cols = tuple(c.strip() for c in text.split(",") if c.strip())
    if not cols:
        raise ParameterError(f"{flag} needs comma-separated column names; got {text!r}")
    return cols


def _dataset_ref(dataset, csv_path, target, positive, sep=None, features=None, drop=None):
    from ..studies import DatasetRef

    if dataset and (sep is not None or features is not None or drop is not None):
        raise ParameterError("--sep, --features and --drop apply to --csv tables only")
    if dataset and csv_path:
        raise ParameterError("give either --dataset or --csv, not both")
    if not dataset and not csv_path:
        raise ParameterError("give a dataset: --dataset NAME or --csv PATH --target COL")
    if csv_path and not target:
        raise ParameterError(
            f"--csv {csv_path} needs --target COL (the column holding the classes)"
        )
    if dataset and (target or positive):
        raise ParameterError("--target and --positive apply to --csv tables only")
    if dataset:
        from ..data import dataset_names

        if dataset not in dataset_names():
            raise ParameterError(
                f"unknown dataset {dataset!r}; known datasets: {', '.join(dataset_names())} "
                "(or give a table with --csv PATH --target COL)"
            )
        return DatasetRef(name=dataset)
    return DatasetRef(
        csv=str(csv_path),
        target=target,
        positive=positive,
        sep=sep,
        features=_columns(features, "--features"),
        drop=_columns(drop, "--drop"),
    )


def _check_out_dir(out_dir: Path) -> None:
    """Refuse an output folder that cannot be created because a file is in its way."""
    for parent in (out_dir, *out_dir.parents):
        if parent.exists():
            if not parent.is_dir():
                raise ParameterError(
                    f"--out {out_dir}: {parent} is a file, not a folder; choose another --out"
                )
            return


def _layers(text):
    if text is None:
        return None
    from ..models import parse_layers

    return parse_layers(text)


def split_options(f):
    """``--minority-fraction``, ``--imbalance-method`` and ``--test-fraction``: how a
    command splits and subsamples the table (``run``, ``tune``)."""
    f = click.option("--test-fraction", type=float, default=0.2, show_default=True)(f)
    f = click.option(
        "--imbalance-method",
        type=_choices.IMBALANCE_METHOD,
        default="subsample_minority",
        show_default=True,
    )(f)
    return click.option(
        "--minority-fraction",
        type=float,
        default=None,
        metavar="F",
        help="Subsample the training split's minority class to this share.",
    )(f)


def scaling_options(f):
    """``--scaling``, ``--bounds`` and ``--scaling-share``."""
    f = click.option(
        "--scaling-share",
        type=float,
        default=None,
        metavar="S",
        help="The share of ε that --scaling dp_standard spends on the scaler (default 0.1).",
    )(f)
    f = click.option(
        "--bounds",
        "bounds_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        metavar="FILE",
        help="Public bounds of the table's columns for --scaling public or dp_standard: a JSON "
        'or TOML file {"column": [lower, upper], ...} (public may give {"mean": , "std": } '
        "instead). The bundled datasets ship their own.",
    )(f)
    f = click.option(
        "--scaling",
        default="standard",
        show_default=True,
        metavar="KIND",
        help="Feature scaling: standard (fitted on the training rows; not covered by ε), none "
        "(raw columns), minmax (not covered by ε), public (public bounds, no private data), "
        "dp_standard (mean and std released under DP with a share of ε: covered). See "
        "docs/protocol.md.",
    )(f)
    return f


def scaling_settings(ref, scaling: str, bounds_path, share) -> dict:
    """The RunSpec fields of the scaling options (public bounds parsed against the table's
    columns; a bad file, column or share is one line and exit 2)."""
    from ..data import check_scaling, parse_bounds, read_bounds_file
    from ..settings import check_setting

    check_scaling(scaling)
    out: dict = {"scaling": scaling}
    if share is not None:
        out["scaling_share"] = check_setting("share", share, label="--scaling-share")
    if bounds_path is not None:
        if scaling not in ("public", "dp_standard"):
            raise ParameterError(
                f"--bounds is for --scaling public or dp_standard; this run scales with {scaling}"
            )
        table = ref.load()
        out["bounds"] = parse_bounds(
            read_bounds_file(bounds_path),
            table.feature_names,
            source=f"public bounds from {Path(bounds_path).name}",
        ).as_tuples()
    return out
