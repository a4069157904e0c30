"""The ``tune`` command: argument parsing only; the work is in :mod:`imbalanced_dp.tune`
and :mod:`imbalanced_dp.tuning`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..exceptions import ParameterError
from ._options import PROG, _dataset_ref, _echo_err, dataset_options, split_options

OBJECTIVES = ("balanced_accuracy", "minority_recall", "f1", "g_mean")

_DIMENSION_FLAGS = (
    ("--lr", "lr", "LIST", "Learning rates, e.g. 0.01,0.1 (default 0.1,0.3,1)."),
    (
        "--batch-size",
        "batch_size",
        "LIST",
        "Expected batch sizes (default 64,128,256; those above the rows are left out).",
    ),
    ("--epochs", "epochs", "LIST", "Epochs (default 20,50,100)."),
    ("--clip", "clip", "LIST", "Clip bounds C (default 0.5,1,2)."),
    (
        "--layers",
        "layers",
        "LIST",
        "Hidden layers, alternatives separated by '/': preset/16/32,16/none (default "
        "preset/none: the dataset's MLP or a logistic model).",
    ),
    (
        "--mitigation",
        "mitigation",
        "LIST",
        "Mitigations among none,class_weighted,dpsgd_f,global_adapt (default all four).",
    ),
    (
        "--threshold",
        "threshold",
        "LIST",
        "Decision rules: argmax (0.5), prior (the training split's minority share, a released "
        "count), or numbers in (0, 1) (default prior).",
    ),
    (
        "--scaling",
        "scaling",
        "LIST",
        "Scalings among standard,dp_standard,public,none,minmax (default standard; "
        "dp_standard spends a share of each trial's epsilon on the scaler).",
    ),
)


def _dimension_options(f):
    for flag, dest, metavar, help_text in reversed(_DIMENSION_FLAGS):
        f = click.option(flag, dest, default=None, metavar=metavar, help=help_text)(f)
    return f


@click.command()
@dataset_options
@click.option(
    "--epsilon",
    type=float,
    default=2.0,
    show_default=True,
    metavar="E",
    help="Total ε of the whole search and the final model.",
)
@click.option(
    "--delta",
    type=float,
    default=None,
    metavar="D",
    help="δ (default 1e-4, or the largest power of ten ≤ 1/(10 n) for tables above 1 000 rows).",
)
@click.option(
    "--objective",
    type=click.Choice(OBJECTIVES),
    default="balanced_accuracy",
    show_default=True,
    help="What the search maximises on held-out training rows (never the test rows).",
)
@click.option(
    "--trials",
    type=float,
    default=10.0,
    show_default=True,
    metavar="K",
    help="Expected number of trials. The actual number is random and secret: that is what "
    "keeps the search's ε a small multiple of one trial's.",
)
@click.option(
    "--eta",
    type=float,
    default=1.0,
    show_default=True,
    metavar="ETA",
    help="Shape of the number of trials (truncated negative binomial, Papernot & Steinke's "
    "Theorem 2): 1 geometric, 0 logarithmic (cheaper per trial, but often one trial only).",
)
@click.option(
    "--poisson",
    is_flag=True,
    help="A Poisson number of trials instead (Theorem 6): close to --trials every time, "
    "costlier per trial.",
)
@click.option(
    "--holdout",
    type=float,
    default=0.35,
    show_default=True,
    metavar="F",
    help="Share of the training rows held out to score the trials (drawn record by record).",
)
@click.option(
    "--retrain",
    is_flag=True,
    help="Retrain the chosen settings on every training row (its ε is part of the total); "
    "by default the best trial is the model.",
)
@click.option(
    "--space",
    "space_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help='A TOML search space (lr = [0.05, 0.2], layers = ["preset", [16], []], ...); the '
    "flags below replace single dimensions.",
)
@_dimension_options
@click.option(
    "--bounds",
    "bounds_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Public bounds of the table's columns (JSON or TOML), for the dp_standard and "
    "public scalings of a --csv table; the bundled datasets ship their own.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    metavar="S",
    help="Seed of the train/test split (the test rows of run --seed S); the search's noise "
    "and draws are secret unless --reproducible.",
)
@click.option(
    "--reproducible",
    is_flag=True,
    help="Research mode: the split of held-out rows, the number of trials, their settings "
    "and all noise derive from the seed, so the search repeats bit for bit; the ledger says "
    "that the guarantee then assumes the seed stays secret.",
)
@split_options
@click.option(
    "--no-compare",
    is_flag=True,
    help="Skip the comparisons (the study's default configuration at the same ε, the same "
    "search without privacy): they are further releases on the same rows.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=True, path_type=Path),
    default=None,
    metavar="DIR",
    help="Write the model (model.skops, for imbalanced-dp predict), summary.md and tune.json "
    "to this new folder.",
)
@click.option(
    "--threads", type=int, default=None, metavar="N", help="Training threads (default: all)."
)
def tune(
    dataset,
    csv_path,
    target,
    positive,
    sep,
    features,
    drop,
    epsilon,
    delta,
    objective,
    trials,
    eta,
    poisson,
    holdout,
    retrain,
    space_path,
    lr,
    batch_size,
    epochs,
    clip,
    layers,
    mitigation,
    threshold,
    scaling,
    bounds_path,
    seed,
    reproducible,
    minority_fraction,
    imbalance_method,
    test_fraction,
    no_compare,
    as_json,
    out_dir,
    threads,
) -> None:
    """Find the best DP model for the minority class, with the search paid for in ε.

    Trains a random number of DP-SGD trials with settings drawn from a search space
    (learning rate, batch size, epochs, clip bound, layers, mitigation, decision threshold,
    scaling), scores each with noise on held-out training rows, and keeps the best; the
    whole search and the final model spend at most --epsilon at δ (Papernot & Steinke's
    private selection; docs/privacy.md, rule 13). Prints the chosen settings, the test
    metrics per class, the comparison with the study's default configuration at the same ε
    and with the same search without privacy, and the ledger.

    \b
    Examples:
      imbalanced-dp tune --dataset breast_cancer --epsilon 2
      imbalanced-dp tune --csv patients.csv --target outcome --epsilon 1 --out tuned/
      imbalanced-dp tune --dataset pima --lr 0.1,0.3 --mitigation none,class_weighted --json
    """
    from ..settings import check_setting
    from ..tune import check_out_dir, tune_json, tune_text, write_outputs
    from ..tune import tune as do_tune
    from ..tuning import SearchSettings, SearchSpace, load_space, parse_dimension

    ref = _dataset_ref(dataset, csv_path, target, positive, sep, features, drop)
    check_setting("epsilon", epsilon, label="--epsilon")
    if delta is not None:
        check_setting("delta", delta, label="--delta")
    check_setting("test_fraction", test_fraction, label="--test-fraction")
    if minority_fraction is not None:
        check_setting("minority_fraction", minority_fraction, label="--minority-fraction")
    if threads is not None and threads < 1:
        raise ParameterError(f"--threads must be at least 1; got {threads}")
    if poisson and eta != 1.0:
        raise ParameterError("give either --poisson or --eta (the truncated negative binomial)")
    settings = SearchSettings(
        objective=objective,
        trials=trials,
        eta=eta,
        poisson=poisson,
        holdout=holdout,
        retrain=retrain,
    )
    values = load_space(space_path) if space_path is not None else {}
    flags = {
        "lr": lr,
        "batch_size": batch_size,
        "epochs": epochs,
        "clip": clip,
        "layers": layers,
        "mitigation": mitigation,
        "threshold": threshold,
        "scaling": scaling,
    }
    for dim, text in flags.items():
        if text is not None:
            values[dim] = parse_dimension(dim, text)
    space = SearchSpace.from_dict(values)
    ds = ref.load(test_fraction)
    bounds = None
    if bounds_path is not None:
        from ..data import parse_bounds, read_bounds_file

        bounds = parse_bounds(
            read_bounds_file(bounds_path),
            ds.feature_names,
            source=f"public bounds from {Path(bounds_path).name}",
        )
    if out_dir is not None:
        check_out_dir(out_dir)
    outcome = do_tune(
        ref,
        epsilon=epsilon,
        delta=delta,
        seed=seed,
        reproducible=reproducible,
        space=space,
        scaling_given="scaling" in values,
        settings=settings,
        test_fraction=test_fraction,
        minority_fraction=minority_fraction,
        imbalance_method=imbalance_method,
        bounds=bounds,
        compare=not no_compare,
        threads=threads,
    )
    if as_json:
        click.echo(json.dumps(tune_json(outcome), indent=2, default=float))
    else:
        click.echo(tune_text(outcome))
    if out_dir is not None:
        write_outputs(outcome, out_dir)
        _echo_err(
            f"{PROG}: tuned model written to {out_dir}/ (apply it with: {PROG} predict --model "
            f"{out_dir}/model.skops --csv TABLE)"
        )
