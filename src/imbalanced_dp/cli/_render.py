"""Text and JSON renderings of one run for ``imbalanced-dp run``."""

from __future__ import annotations

import pandas as pd

from ..metrics import COLUMNS, format_report

RUN_FIELDS = (
    "run_id",
    "dataset",
    "minority_fraction",
    "privacy",
    "epsilon_target",
    "epsilon_spent",
    "delta",
    "noise_multiplier",
    "sample_rate",
    "steps",
    "accountant",
    "engine",
    "mitigation",
    "scaling",
    "seed",
    "epochs",
    "batch_size",
    "lr",
    "clip",
)


def run_fields(res) -> dict:
    s = res.spec.resolve()
    led = res.ledger
    dp = s.private
    return {
        "run_id": res.run_id,
        "dataset": s.dataset.label,
        "minority_fraction": res.data.get("minority_fraction"),
        "privacy": s.privacy,
        "epsilon_target": s.epsilon if dp else None,
        "epsilon_spent": led.epsilon_spent if dp else None,
        "delta": s.delta if dp else None,
        "noise_multiplier": led.noise_multiplier if dp else None,
        "sample_rate": led.sample_rate if dp else None,
        "steps": led.steps,
        "accountant": s.accountant if dp else None,
        "engine": s.engine,
        "mitigation": s.mitigation,
        "scaling": s.scaling,
        "seed": s.seed,
        "epochs": s.epochs,
        "batch_size": s.batch_size,
        "lr": s.lr,
        "clip": s.clip if dp else None,
    }


def run_json(res) -> dict:
    out = run_fields(res)
    out["accuracy"] = res.scores["accuracy"]
    out["balanced_accuracy"] = res.scores["balanced_accuracy"]
    out["classes"] = [{k: m[k] for k in ("class", *COLUMNS)} for m in res.metrics]
    out["train_class_counts"] = [res.data["train_count_0"], res.data["train_count_1"]]
    out["test_class_counts"] = [res.data["test_count_0"], res.data["test_count_1"]]
    out["ledger"] = res.ledger.to_dict()
    out["reproducible"] = bool(res.spec.reproducible)
    out["seconds"] = res.seconds
    return out


def run_text(res, dataset) -> str:
    f = run_fields(res)
    share = res.data["minority_fraction"]
    # label 1 is the minority unless the user named a majority value with --positive
    what = "minority share" if share <= 0.5 else "share of label 1, here the majority,"
    lines = [
        f"{dataset.title or dataset.name}: {res.data['n_train']} training rows "
        f"({res.data['train_count_0']} / {res.data['train_count_1']}, {what} {share:.3f}), "
        f"{res.data['test_count_0'] + res.data['test_count_1']} test rows",
    ]
    if f["privacy"] == "dp":
        lines.append(
            f"DP-SGD: target ε = {f['epsilon_target']:g}, spent ε = {f['epsilon_spent']:.4f} at "
            f"δ = {f['delta']:g} ({f['accountant']}); σ = {f['noise_multiplier']:.4f}, "
            f"q = {f['sample_rate']:.4f}, {f['steps']} steps, C = {f['clip']:g}"
        )
    else:
        lines.append(f"non-private SGD: {f['steps']} steps")
    lines.append(
        f"engine {f['engine']}, seed {f['seed']}, {f['epochs']} epochs, batch {f['batch_size']}, "
        f"lr {f['lr']:g}, mitigation {f['mitigation']}"
    )
    lines.append("")
    rep = pd.DataFrame(res.metrics).set_index("class")
    lines.append(format_report(rep, class_names=dataset.class_names))
    lines.append("")
    lines.append(
        f"accuracy {res.scores['accuracy']:.3f}   balanced accuracy "
        f"{res.scores['balanced_accuracy']:.3f}"
    )
    lines.append("")
    lines.append("not covered by ε:" if f["privacy"] == "dp" else "privacy:")
    for note in res.ledger.not_covered:
        lines.append(f"  - {note}")
    lines.append(f"run_id {res.run_id}  ({res.seconds:.2f} s)")
    return "\n".join(lines)
