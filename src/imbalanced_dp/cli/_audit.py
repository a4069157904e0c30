"""The ``audit`` command: argument parsing only; the work is in :mod:`imbalanced_dp.attacks`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..exceptions import ParameterError
from . import _choices
from ._options import _dataset_ref, _echo_err, _layers, dataset_options


@click.command()
@dataset_options
@click.option(
    "--privacy",
    default="none,8,2,1",
    show_default=True,
    metavar="LEVELS",
    help="Comma-separated privacy levels: none and/or target ε values.",
)
@click.option(
    "--shadows",
    type=int,
    default=64,
    show_default=True,
    metavar="M",
    help="Models per privacy level, each on a random half of the data; each is in turn the "
    "target, the others its shadows.",
)
@click.option(
    "--canaries",
    type=int,
    default=200,
    show_default=True,
    metavar="m",
    help="Canaries of the one-run ε audit (0 skips the audit).",
)
@click.option("--epochs", type=int, default=500, show_default=True, metavar="N")
@click.option("--batch-size", type=int, default=64, show_default=True, metavar="B")
@click.option(
    "--lr",
    type=float,
    default=None,
    metavar="LR",
    help="Learning rate (default: the dataset's preset).",
)
@click.option(
    "--layers",
    default=None,
    metavar="H1,H2,...",
    help="Hidden layer sizes (default: the dataset's preset).",
)
@click.option(
    "--delta",
    type=float,
    default=None,
    metavar="D",
    help="δ (default 1e-4, or smaller for large tables).",
)
@click.option(
    "--accountant",
    type=_choices.ACCOUNTANT,
    default=_choices.default_accountant,
    show_default="pld",
    help="pld (dp-accounting's PLD: tight, fast), prv (Opacus's PRV) or rdp (Opacus's RDP).",
)
@click.option(
    "--attacks",
    default="loss,lira",
    show_default=True,
    metavar="LIST",
    help="loss and/or lira (membership inference, offline and online), and/or inversion "
    "(attribute inference against imputation, and class inversion).",
)
@click.option(
    "--attribute",
    "attributes",
    multiple=True,
    metavar="COL",
    help="Inversion: the column to infer (repeat for several; default every feature column).",
)
@click.option(
    "--seeds",
    type=int,
    default=None,
    metavar="N",
    help="Inversion: target models per privacy level, each with its own split  [default: 10]",
)
@click.option(
    "--bins",
    type=int,
    default=None,
    metavar="K",
    help="Inversion: bins of a quantised column  [default: 5]",
)
@click.option(
    "--members",
    type=int,
    default=None,
    metavar="N",
    help="Inversion: training records of each model (at most a third of the table)  "
    "[default: a third]",
)
@click.option(
    "--bootstrap",
    type=int,
    default=200,
    show_default=True,
    metavar="B",
    help="Bootstrap replicates of the confidence intervals.",
)
@click.option("--seed", type=int, default=0, show_default=True, metavar="S")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write audit.json (with ROC curves) and the ROC figure here.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (no progress output).")
def audit(
    dataset,
    csv_path,
    target,
    positive,
    sep,
    features,
    drop,
    privacy,
    shadows,
    canaries,
    epochs,
    batch_size,
    lr,
    layers,
    delta,
    accountant,
    attacks,
    attributes,
    seeds,
    bins,
    members,
    bootstrap,
    seed,
    out_dir,
    as_json,
) -> None:
    """Membership inference per class, an empirical audit of ε, and attribute inference.

    \b
    Trains --shadows models per privacy level on random halves of the table and attacks
    each with the others as shadows (loss threshold; LiRA offline and online): AUC and TPR
    at 1 % and 0.1 % FPR per class with 95 % CIs. Then audits each setting in one training
    run with --canaries canaries (Steinke, Nasr & Jagielski 2023) and reports the ε lower
    bound next to ε, with a σ = 0 control that shows the audit's power.

    \b
    With --attacks inversion: --seeds target models per privacy level, each trained on a
    third of the table, with shadow models on records it never saw; for each --attribute
    (default every feature column) the confidence attack, a learned attack and an
    imputation baseline guess the hidden value from the other columns and the label; their
    success on members and non-members per class, the advantage over imputation and of
    members over non-members, with 95 % CIs over seeds; and each class inverted to the
    model's typical patient.
    """
    from ..attacks import (
        INVERSION,
        AttackConfig,
        InversionConfig,
        parse_privacy,
        run_attacks,
    )
    from ..reports import format_attack_text

    ref = _dataset_ref(dataset, csv_path, target, positive, sep, features, drop)
    fams = tuple(a.strip() for a in attacks.split(",") if a.strip())
    if not fams and canaries == 0:
        raise ParameterError(
            "nothing to do: give --attacks loss,lira,inversion or --canaries m > 0"
        )
    inversion_options = {
        "--attribute": attributes or None,
        "--seeds": seeds,
        "--bins": bins,
        "--members": members,
    }
    if INVERSION not in fams:
        given = [k for k, v in inversion_options.items() if v is not None]
        if given:
            raise ParameterError(
                f"{given[0]} applies to attribute inference: add inversion to --attacks "
                f"(e.g. --attacks {','.join((*fams, INVERSION))})"
            )
    config = AttackConfig(
        privacy=tuple(parse_privacy(privacy)),
        shadows=shadows,
        canaries=canaries,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        hidden=_layers(layers),
        delta=delta,
        accountant=accountant,
        attacks=fams,
        bootstrap=bootstrap,
        seed=seed,
    )
    inversion = None
    if INVERSION in fams:
        inversion = InversionConfig.from_attack_config(
            config,
            attributes=tuple(attributes) if attributes else None,
            seeds=seeds,
            bins=bins,
            members=members,
        )
    ds = ref.load()
    rep = run_attacks(
        ds,
        config,
        inversion=inversion,
        label=ref.label,
        preset=ref.name or "",
        progress=None if as_json else _echo_err,
    )
    obj = rep.to_json()
    if out_dir is not None:
        from ..reports import roc_figure, save_figure, write_inversion_figures

        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "audit.json").write_text(
            json.dumps(rep.to_json(curves=True), indent=2) + "\n", encoding="utf-8"
        )
        written = []
        if rep.curves:
            fig = roc_figure(rep.curves, title=f"{rep.dataset}: membership inference ROC")
            saved = save_figure(fig, out_dir, "mia_roc")
            written += [p.name for p in saved.paths]
        if rep.inversion is not None:
            written += [p.name for p in write_inversion_figures(obj["inversion"], out_dir)]
    if as_json:
        click.echo(json.dumps(obj, indent=2))
    else:
        click.echo(format_attack_text(obj))
        if out_dir is not None:
            click.echo(f"\nwritten: {', '.join([str(out_dir / 'audit.json'), *written])}")
