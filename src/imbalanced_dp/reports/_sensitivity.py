"""What the study did not say: its protocol under each choice it leaves unstated.

A store that holds runs of several feature scalings (the ``sensitivity`` preset,
``reproduce --sensitivity``) is read once per scaling: the runs of that scaling, with the
non-private reference runs of its reference scaling (``dp_standard`` is compared with the
non-private ``standard`` runs: a non-private run has no budget for a DP scaler). Each
choice gets its Tables 3 and 4 and its verdict on each of the study's four claims, decided
by the same rules as the main findings; a sentence names which choices flip which verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..data import SCALINGS
from ..studies import aggregate_metrics, reference_scaling
from ._claims import CLAIMS, ClaimResult, evaluate_claims
from ._evidence import compute_evidence

#: How each scaling reads in a sentence.
SCALING_WORDS = {
    "none": "raw features (none)",
    "standard": "standardised on the training rows (standard)",
    "minmax": "min-max scaled on the training rows (minmax)",
    "public": "scaled by public bounds (public)",
    "dp_standard": "standardised with DP statistics (dp_standard)",
}


@dataclass
class ScalingChoice:
    """One scaling's runs, their aggregates and the verdicts on the claims."""

    scaling: str
    frame: pd.DataFrame
    metrics: pd.DataFrame
    claims: list[ClaimResult]


def scalings_of(frame: pd.DataFrame) -> list[str]:
    """The scalings of a per-run frame, in the order of :data:`SCALINGS`."""
    present = set(frame["scaling"]) if "scaling" in frame else {"standard"}
    return [s for s in SCALINGS if s in present]


def choice_frame(frame: pd.DataFrame, scaling: str) -> pd.DataFrame:
    """The runs a scaling's verdicts rest on: its own, plus the non-private runs of its
    reference scaling when it has none."""
    own = frame[frame["scaling"] == scaling]
    ref = reference_scaling(scaling)
    if ref != scaling:
        base = frame[(frame["scaling"] == ref) & (frame["privacy"] == "none")]
        own = pd.concat([own, base], ignore_index=True)
    return own


def analyse_choices(frame: pd.DataFrame) -> list[ScalingChoice]:
    """Aggregates and verdicts for every scaling in ``frame``."""
    out = []
    for s in scalings_of(frame):
        f = choice_frame(frame, s)
        metrics = aggregate_metrics(f)
        claims = evaluate_claims(compute_evidence(f, metrics=metrics))
        out.append(ScalingChoice(s, f, metrics, claims))
    return out


def verdict_table(choices: list[ScalingChoice]) -> pd.DataFrame:
    """``claim, statement, <scaling>...``: the verdict of each claim under each choice."""
    rows = []
    for number, statement in CLAIMS.items():
        row = {"claim": number, "statement": statement}
        for c in choices:
            found = [r.verdict for r in c.claims if r.number == number]
            row[c.scaling] = found[0] if found else "cannot decide"
        rows.append(row)
    return pd.DataFrame(rows)


def flip_sentences(table: pd.DataFrame) -> list[str]:
    """One sentence per claim: the same verdict under every choice, or which choices give
    which verdict."""
    scalings = [c for c in table.columns if c not in ("claim", "statement")]
    out = []
    for _, r in table.iterrows():
        by_verdict: dict[str, list[str]] = {}
        for s in scalings:
            by_verdict.setdefault(r[s], []).append(s)
        if len(by_verdict) == 1:
            (v,) = by_verdict
            out.append(f"Claim {r['claim']}: {v} under every scaling ({', '.join(scalings)}).")
        else:
            parts = "; ".join(f"{v} with {', '.join(ss)}" for v, ss in by_verdict.items())
            out.append(
                f"Claim {r['claim']} depends on the scaling the study does not state: {parts}."
            )
    return out


def collapse_sentences(choices: list[ScalingChoice]) -> list[str]:
    """Per scaling, how many of its own runs predict no example of the minority class
    (label 1) at all, without DP and with; a warning when that happens to most non-private
    runs (a verdict then describes a model that did not learn the class, not privacy)."""
    out = []
    for c in choices:
        f = c.frame[(c.frame["scaling"] == c.scaling) & (c.frame["class"] == "1")]
        if f.empty:
            continue
        parts, failed_baseline = [], []
        for ds, g in f.groupby("dataset", sort=False):
            bits = []
            for label, rows in (
                ("without DP", g[g["privacy"] == "none"]),
                ("with DP", g[g["privacy"] != "none"]),
            ):
                if rows.empty:
                    continue
                zero = int((rows["rec"] == 0).sum())
                bits.append(f"{zero} of {len(rows)} {label}")
                if label == "without DP" and 2 * zero > len(rows):
                    failed_baseline.append(str(ds))
            parts.append(f"{ds}: {', '.join(bits)}")
        text = f"With {c.scaling}, runs that predict no minority example: {'; '.join(parts)}."
        if failed_baseline:
            text += (
                f" Most non-private runs on {', '.join(failed_baseline)} already miss the "
                "minority class: at the study's learning rate and epochs this scaling does "
                "not learn it, so its verdicts say little about the cost of privacy."
            )
        out.append(text)
    return out
