"""What ``imbalanced-dp tune`` does, as a library function: a private hyperparameter search
on one table (:func:`imbalanced_dp.tuning.private_search`), the tuned model's test metrics,
and the comparisons on the same split (the study's default configuration at the same total
ε, and the same search without privacy), with a JSON form, a saved model and a summary.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data import Dataset, PublicBounds, bundled_bounds, prepare_split
from .exceptions import ParameterError
from .metrics import COLUMNS
from .models import hidden_for
from .studies import DatasetRef, RunResult, RunSpec, run_single, versions
from .tuning import SearchResult, SearchSettings, SearchSpace, private_search

#: not_covered entry of a tuned model printed with its comparisons.
COMPARISONS_NOTE = (
    "the comparisons reported with this model are further releases on the same training "
    "rows, outside this epsilon: the study's default configuration is a separate DP run at "
    "epsilon {eps:g} (publishing both spends {total:g} by basic composition), and the search "
    "without privacy is trained in the clear; leave them out (--no-compare) to publish the "
    "tuned model alone"
)


@dataclass
class TuneOutcome:
    """A finished ``tune``: the table, the split, the search, the test metrics of the tuned
    model and the comparisons (``None`` when left out)."""

    dataset: Dataset
    ref: DatasetRef
    seed: int
    epsilon: float
    train_rows: np.ndarray
    test_rows: np.ndarray
    result: SearchResult
    test: dict
    default: RunResult | None = None
    nonprivate: SearchResult | None = None
    nonprivate_test: dict | None = None
    reproducible: bool = False
    seconds: float = float("nan")
    extra: dict = field(default_factory=dict)


def tune(
    ref: DatasetRef,
    *,
    epsilon: float,
    delta: float | None = None,
    seed: int = 0,
    reproducible: bool = False,
    space: SearchSpace | None = None,
    scaling_given: bool = False,
    settings: SearchSettings | None = None,
    test_fraction: float = 0.2,
    minority_fraction: float | None = None,
    imbalance_method: str = "subsample_minority",
    bounds: PublicBounds | None = None,
    compare: bool = True,
    threads: int | None = None,
) -> TuneOutcome:
    """Tune privately on ``ref``'s training split of ``seed`` (the test split of ``run
    --seed``), evaluate on its test rows, and compare (see the module docstring).

    ``space`` defaults to :data:`~imbalanced_dp.tuning.DEFAULT_SPACE`; its scalings that
    need public bounds are dropped for a table without ``bounds`` unless ``scaling_given``
    (then refused). The default configuration's run uses the default accountant and the
    same noise mode.
    """
    t0 = time.perf_counter()
    ds = ref.load(test_fraction)
    split = prepare_split(
        ds,
        seed=seed,
        test_fraction=test_fraction,
        minority_fraction=minority_fraction,
        imbalance_method=imbalance_method,
        scaling="none",
    )
    if bounds is None and ref.name is not None:
        bounds = bundled_bounds(ds.name, ds.feature_names)
    space = SearchSpace.default() if space is None else space
    if bounds is None and not scaling_given:
        from .data import NEED_BOUNDS

        kept = [s for s in space.scaling if s not in NEED_BOUNDS] or ["standard"]
        space = space.with_values(scaling=kept)
    settings = SearchSettings() if settings is None else settings
    default_spec = None
    if compare:
        default_spec = RunSpec(
            dataset=ref,
            seed=seed,
            epsilon=float(epsilon),
            delta=delta,
            test_fraction=test_fraction,
            minority_fraction=minority_fraction,
            imbalance_method=imbalance_method,
            reproducible=reproducible,
        )
    preset = hidden_for(ds.name if ref.name is not None else "")
    res = private_search(
        ds,
        split.train_rows,
        epsilon=float(epsilon),
        space=space,
        settings=settings,
        delta=delta,
        seed=seed,
        reproducible=reproducible,
        bounds=bounds,
        preset=preset,
        threads=threads,
    )
    test = res.evaluate(ds.X[split.test_rows], ds.y[split.test_rows])
    out = TuneOutcome(
        dataset=ds,
        ref=ref,
        seed=seed,
        epsilon=float(epsilon),
        train_rows=split.train_rows,
        test_rows=split.test_rows,
        result=res,
        test=test,
        reproducible=reproducible,
    )
    if compare:
        out.default = run_single(default_spec, threads=1)
        out.nonprivate = private_search(
            ds,
            split.train_rows,
            epsilon=None,
            space=space,
            settings=settings,
            seed=seed,
            bounds=bounds,
            preset=preset,
            threads=threads,
        )
        out.nonprivate_test = out.nonprivate.evaluate(ds.X[split.test_rows], ds.y[split.test_rows])
        res.ledger.not_covered.append(
            COMPARISONS_NOTE.format(eps=float(epsilon), total=2 * float(epsilon))
        )
    out.seconds = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------------- renderings


def _config(c) -> dict:
    return c.to_dict()


def tune_json(out: TuneOutcome) -> dict:
    """The JSON of ``tune --json``: ``best``, ``epsilon_total``, ``delta``, ``test``,
    ``baseline_default``, ``non_private_tuned``, ``ledger`` and what a reader needs to check
    them."""
    res = out.result
    led = res.ledger
    test = out.test
    counts_train = np.bincount(out.dataset.y[out.train_rows], minlength=2)
    counts_test = np.bincount(out.dataset.y[out.test_rows], minlength=2)
    d = {
        "dataset": out.ref.label,
        "seed": out.seed,
        "best": {**_config(res.best), "decision_threshold": res.threshold},
        "epsilon_target": out.epsilon,
        "epsilon_total": led.epsilon_spent,
        "delta": led.delta,
        "objective": res.objective,
        "heldout_score": res.score,
        "trials_expected": res.settings.trials,
        "trial_distribution": res.selection.distribution.describe(),
        "epsilon_per_trial": [
            min(n.epsilon for n in res.selection.noise),
            max(n.epsilon for n in res.selection.noise),
        ],
        "test": {
            "accuracy": test["scores"]["accuracy"],
            "balanced_accuracy": test["scores"]["balanced_accuracy"],
            "per_class": [{k: m[k] for k in ("class", *COLUMNS)} for m in test["metrics"]],
        },
        "baseline_default": None,
        "non_private_tuned": None,
        "train_class_counts": [int(c) for c in counts_train],
        "test_class_counts": [int(c) for c in counts_test],
        "rows": {"training": res.n_train, "search": res.n_search, "held_out": res.n_heldout},
        "reproducible": out.reproducible,
        "seconds": out.seconds,
        "ledger": led.to_dict(),
    }
    if out.default is not None:
        s = out.default.spec.resolve()
        d["baseline_default"] = {
            "balanced_accuracy": out.default.scores["balanced_accuracy"],
            "accuracy": out.default.scores["accuracy"],
            "epsilon_spent": out.default.ledger.epsilon_spent,
            "config": {
                "lr": s.lr,
                "batch_size": s.batch_size,
                "epochs": s.epochs,
                "clip": s.clip,
                "layers": list(s.layers or ()),
                "mitigation": s.mitigation,
                "scaling": s.scaling,
                "accountant": s.accountant,
            },
        }
    if out.nonprivate is not None:
        d["non_private_tuned"] = {
            "balanced_accuracy": out.nonprivate_test["scores"]["balanced_accuracy"],
            "accuracy": out.nonprivate_test["scores"]["accuracy"],
            "best": _config(out.nonprivate.best),
        }
    return d


def _describe(c, threshold) -> str:
    layers = ",".join(map(str, c.layers)) if c.layers else "none (logistic)"
    rule = c.threshold if isinstance(c.threshold, str) else f"{c.threshold:g}"
    t = "" if threshold is None else f" ({threshold:.3f})"
    return (
        f"lr {c.lr:g}, batch {c.batch_size}, epochs {c.epochs}, clip {c.clip:g}, layers "
        f"{layers}, mitigation {c.mitigation}, threshold {rule}{t}, scaling {c.scaling}"
    )


def tune_text(out: TuneOutcome) -> str:
    """The report ``tune`` prints: the chosen settings, the test table, the comparisons and
    what ε covers."""
    import pandas as pd

    from .metrics import format_report

    res, ds = out.result, out.dataset
    led = res.ledger
    sel = res.selection
    n0, n1 = (int(c) for c in np.bincount(ds.y[out.train_rows], minlength=2))
    per = [n.epsilon for n in sel.noise]
    lines = [
        f"{ds.title or ds.name}: {res.n_train} training rows ({n0} / {n1}), "
        f"{len(out.test_rows)} test rows",
        f"private search: total ε = {out.epsilon:g} at δ = {led.delta:g} (spent "
        f"{led.epsilon_spent:.4f}, search and final model); trials: "
        f"{sel.distribution.describe()}; one trial alone spends ε {min(per):.3g}–{max(per):.3g}",
        f"objective {res.objective} on {res.n_heldout} held-out training rows (noisy score of "
        f"the best: {res.score:.3f}); trials train on {res.n_search} rows"
        + (", the winner retrained on all of them" if res.settings.retrain else ""),
        f"chosen: {_describe(res.best, res.threshold)}",
        "",
        format_report(
            pd.DataFrame(out.test["metrics"]).set_index("class"), class_names=ds.class_names
        ),
        "",
        f"accuracy {out.test['scores']['accuracy']:.3f}   balanced accuracy "
        f"{out.test['scores']['balanced_accuracy']:.3f}",
    ]
    if out.default is not None:
        lines += [
            "",
            "on the same test rows:",
            f"  the study's default configuration at ε = {out.epsilon:g} (imbalanced-dp run "
            f"--seed {out.seed}): balanced accuracy "
            f"{out.default.scores['balanced_accuracy']:.3f}",
            f"  the same search without privacy: balanced accuracy "
            f"{out.nonprivate_test['scores']['balanced_accuracy']:.3f} "
            f"({_describe(out.nonprivate.best, out.nonprivate.threshold)})",
        ]
    lines += ["", "not covered by ε:"]
    lines += [f"  - {x}" for x in led.not_covered]
    lines.append(f"({out.seconds:.1f} s)")
    return "\n".join(lines)


def summary_markdown(out: TuneOutcome) -> str:
    """The short summary ``tune --out`` writes next to the model."""
    res = out.result
    led = res.ledger
    j = tune_json(out)
    lines = [
        f"# Privately tuned model: {out.ref.label}",
        "",
        f"- total ε = {out.epsilon:g} at δ = {led.delta:g} (spent {led.epsilon_spent:.4f}) for "
        "the whole search and the final model",
        f"- {led.selection['theorem']}",
        f"- trials: {res.selection.distribution.describe()}; one trial alone spends ε "
        f"{j['epsilon_per_trial'][0]:.3g}–{j['epsilon_per_trial'][1]:.3g}",
        f"- objective: {res.objective} on {res.n_heldout} held-out training rows (best noisy "
        f"score {res.score:.3f})",
        f"- noise: {led.noise_source}",
        "",
        "## Chosen settings",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    for k, v in j["best"].items():
        lines.append(f"| {k} | {v} |")
    lines += [
        "",
        f"## Test rows ({len(out.test_rows)}, used in the clear)",
        "",
        "| class | " + " | ".join(COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for m in out.test["metrics"]:
        cells = [f"{m[c]}" if c == "sup" else f"{m[c]:.3f}" for c in COLUMNS]
        lines.append(f"| {m['class']} | " + " | ".join(cells) + " |")
    lines += ["", f"Balanced accuracy {j['test']['balanced_accuracy']:.3f}."]
    if j["baseline_default"] is not None:
        lines += [
            "",
            "## Comparisons on the same test rows",
            "",
            f"- the study's default configuration at ε = {out.epsilon:g}: balanced accuracy "
            f"{j['baseline_default']['balanced_accuracy']:.3f}",
            "- the same search without privacy: balanced accuracy "
            f"{j['non_private_tuned']['balanced_accuracy']:.3f}",
        ]
    lines += ["", "## Not covered by ε", ""] + [f"- {x}" for x in led.not_covered]
    lines += ["", "The full privacy ledger is in `tune.json` and inside `model.skops`.", ""]
    return "\n".join(lines)


def saved_tuned_model(out: TuneOutcome):
    """The tuned model as a :class:`~imbalanced_dp.models.SavedModel` (``imbalanced-dp
    predict`` applies it)."""
    from .models import SAVED_SCALER_NOTE, SavedModel

    res, ds = out.result, out.dataset
    ledger = res.ledger.to_dict()
    if res.best.scaling in ("standard", "minmax"):
        ledger["not_covered"] = [*ledger["not_covered"], SAVED_SCALER_NOTE]
    return SavedModel(
        layers=tuple(res.model.arch.sizes),
        params=res.model.params,
        feature_names=tuple(ds.feature_names),
        scaler_mean=res.scaler.center,
        scaler_scale=res.scaler.scale,
        scaler_lower=res.scaler.lower,
        scaler_upper=res.scaler.upper,
        class_names=tuple(ds.class_names),
        kind="run",
        threshold=res.threshold,
        target=ds.extra.get("target"),
        ledger=ledger,
        run={
            "tuned": True,
            "dataset": ds.name,
            "seed": out.seed,
            "epsilon": out.epsilon,
            **res.best.to_dict(),
            "search": res.settings.to_dict(),
        },
        versions=versions(),
    )


def check_out_dir(path: Path) -> None:
    """Refuse, before anything runs, an output folder that exists with something in it, or
    a file in its way."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        what = "a file" if not path.is_dir() else "a folder that is not empty"
        raise ParameterError(f"--out {path} is {what}; give a new or empty folder")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ParameterError(f"--out {path}: {parent} is a file, not a folder")
            break


def write_outputs(out: TuneOutcome, path: Path) -> list[Path]:
    """Write ``model.skops``, ``summary.md`` and ``tune.json`` into ``path``: built in a
    temporary sibling folder and moved into place whole, so that an interrupted command
    leaves no half-written folder a rerun would trust."""
    path = Path(path)
    check_out_dir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        saved_tuned_model(out).save(tmp / "model.skops")
        (tmp / "summary.md").write_text(summary_markdown(out), encoding="utf-8")
        (tmp / "tune.json").write_text(
            json.dumps(tune_json(out), indent=2, default=float) + "\n", encoding="utf-8"
        )
        if path.exists():
            path.rmdir()  # empty (checked above)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [path / "model.skops", path / "summary.md", path / "tune.json"]
