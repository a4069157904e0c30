"""The total privacy cost of a fitted pipeline: :func:`pipeline_privacy`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ._classifier import PREPROCESSING_NOTE

#: Note of every pipeline total: what the walk cannot see.
BEFORE_NOTE = (
    "anything done to the rows before they were given to the pipeline's fit is not seen here"
)


@dataclass(frozen=True)
class PipelinePrivacy:
    """The privacy cost of every step of a fitted pipeline on the rows given to its ``fit``.

    ``epsilon`` and ``delta`` are the totals by basic composition (each step's ε and δ add
    up; valid for any mechanisms run one after the other on the same rows, though a joint
    accountant can be tighter); ``epsilon`` is ``inf`` when a step trains without privacy.
    ``steps`` lists each step with its own ε and δ (``None`` for a step that reads no
    private statistic or is fitted in the clear); ``not_covered`` says, in plain words,
    what the totals do not protect."""

    epsilon: float
    delta: float
    steps: list[dict] = field(default_factory=list)
    not_covered: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    composition: str = "basic composition: the steps' epsilons and deltas add up"

    def to_dict(self) -> dict:
        return {
            "epsilon": self.epsilon,
            "delta": self.delta,
            "steps": list(self.steps),
            "not_covered": list(self.not_covered),
            "notes": list(self.notes),
            "composition": self.composition,
        }


def _children(est) -> list[tuple[str, object]] | None:
    """The fitted sub-estimators of a composite (Pipeline, ColumnTransformer, FeatureUnion),
    or None for a leaf."""
    if hasattr(est, "steps") and isinstance(est.steps, list):
        return [(str(n), s) for n, s in est.steps]
    if hasattr(est, "transformers_"):
        return [(str(n), s) for n, s, _ in est.transformers_]
    if hasattr(est, "transformer_list") and isinstance(est.transformer_list, list):
        return [(str(n), s) for n, s in est.transformer_list]
    return None


def _requires_fit(est) -> bool:
    try:
        from sklearn.utils import get_tags

        return bool(get_tags(est).requires_fit)
    except Exception:  # not a scikit-learn estimator: assume it learned from the rows
        return True


def pipeline_privacy(model) -> PipelinePrivacy:
    """The total ε and δ a fitted pipeline spent on the rows given to its ``fit``.

    Walks the steps (nested pipelines, column transformers and feature unions included):
    a step with a ``privacy_ledger_`` (:class:`DPStandardScaler`,
    :class:`DPMLPClassifier`) contributes its ε and δ; a step that learns from the rows
    without privacy (a ``StandardScaler``, an imputer, a non-private classifier) is listed
    as not covered and makes no claim; a stateless step (``FunctionTransformer``,
    ``"passthrough"``) costs nothing.

    Parameters
    ----------
    model : fitted estimator
        A :class:`~sklearn.pipeline.Pipeline` or any single fitted estimator.

    Returns
    -------
    PipelinePrivacy

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from imbalanced_dp import load_dataset
    >>> from imbalanced_dp.data import bundled_bounds
    >>> from imbalanced_dp.estimator import (DPMLPClassifier, DPStandardScaler,
    ...                                      pipeline_privacy)
    >>> ds = load_dataset("pima")
    >>> bounds = bundled_bounds("pima", ds.feature_names)
    >>> model = make_pipeline(DPStandardScaler(epsilon=0.2, bounds=bounds),
    ...                       DPMLPClassifier(epsilon=1.8, epochs=5, accountant="rdp"))
    >>> total = pipeline_privacy(model.fit(ds.X, ds.y))
    >>> [step["step"] for step in total.steps], total.epsilon <= 2.0
    (['dpstandardscaler', 'dpmlpclassifier'], True)
    >>> any("scal" in entry for entry in total.not_covered)
    False
    """
    steps: list[dict] = []
    not_covered: list[str] = []
    in_clear: list[str] = []  # steps fitted on the rows without privacy, in order
    eps_total, delta_total = 0.0, 0.0

    def walk(name: str, est, prefix: str) -> None:
        nonlocal eps_total, delta_total
        label = f"{prefix}{name}"
        if est is None or (isinstance(est, str) and est in ("passthrough", "drop")):
            return
        kids = _children(est)
        if kids is not None:
            for n, s in kids:
                walk(n, s, f"{label}__")
            return
        ledger = getattr(est, "privacy_ledger_", None)
        kind = type(est).__name__
        if ledger is not None and ledger.privacy != "none":
            eps = float(ledger.epsilon_spent)
            dlt = float(ledger.delta or 0.0)
            eps_total += eps
            delta_total += dlt
            steps.append({"step": label, "estimator": kind, "epsilon": eps, "delta": dlt})
            for entry in ledger.not_covered:
                if entry == PREPROCESSING_NOTE:
                    continue  # replaced by what the walk knows about the earlier steps
                if entry not in not_covered:
                    not_covered.append(entry)
            return
        if ledger is not None or _requires_fit(est):
            eps_total = math.inf
            steps.append({"step": label, "estimator": kind, "epsilon": None, "delta": None})
            in_clear.append(f"{label} ({kind})")
            return
        steps.append({"step": label, "estimator": kind, "epsilon": 0.0, "delta": 0.0})

    top = _children(model)
    if top is None:
        walk(type(model).__name__, model, "")
    else:
        for n, s in top:
            walk(n, s, "")
    for what in in_clear:
        not_covered.append(
            f"step {what} is fitted on the training rows without privacy: not covered by "
            "epsilon (the total is infinite)"
        )
    return PipelinePrivacy(
        epsilon=eps_total,
        delta=delta_total,
        steps=steps,
        not_covered=not_covered,
        notes=[BEFORE_NOTE],
    )
