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
    help="loss and/or lira (offline and online).",
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
    bootstrap,
    seed,
    out_dir,
    as_json,
) -> None:
    """Membership inference per class and an empirical audit of ε.

    \b
    Trains --shadows models per privacy level on random halves of the table and attacks
    each with the others as shadows (loss threshold; LiRA offline and online): AUC and TPR
    at 1 % and 0.1 % FPR per class with 95 % CIs. Then audits each setting in one training
    run with --canaries canaries (Steinke, Nasr & Jagielski 2023) and reports the ε lower
    bound next to ε, with a σ = 0 control that shows the audit's power.
    """
    from ..attacks import AttackConfig, format_text, parse_privacy, run_attacks

    ref = _dataset_ref(dataset, csv_path, target, positive, sep, features, drop)
    fams = tuple(a.strip() for a in attacks.split(",") if a.strip())
    if not fams and canaries == 0:
        raise ParameterError("nothing to do: give --attacks loss,lira or --canaries m > 0")
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
    ds = ref.load()
    rep = run_attacks(
        ds,
        config,
        label=ref.label,
        preset=ref.name or "",
        progress=None if as_json else _echo_err,
    )
    obj = rep.to_json()
    if out_dir is not None:
        from ..attacks._report import figure_png, roc_figure

        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "audit.json").write_text(
            json.dumps(rep.to_json(curves=True), indent=2) + "\n", encoding="utf-8"
        )
        if rep.curves:
            fig = roc_figure(rep.curves, title=f"{rep.dataset}: membership inference ROC")
            (out_dir / "mia_roc.png").write_bytes(figure_png(fig))
            fig.savefig(out_dir / "mia_roc.svg", format="svg")
    if as_json:
        click.echo(json.dumps(obj, indent=2))
    else:
        click.echo(format_text(obj))
        if out_dir is not None:
            click.echo(
                f"\nwritten: {out_dir / 'audit.json'}"
                + (", mia_roc.png, mia_roc.svg" if rep.curves else "")
            )
