"""Mitigations of DP-SGD's disparate impact whose privacy accounting stays true.

Each mitigation is a registry object that declares, before any private data is touched, the
private queries it adds to a run (:meth:`Mitigation.queries`, given to the run's
:func:`~imbalanced_dp.privacy.plan_run`), how many training rows it holds out, and how it
changes the training call once the plan is made (:meth:`Mitigation.configure`: the engine's
clipping rule, per-example loss weights, a decision threshold). A query a mitigation does
not declare has no noise in the plan, so it cannot be answered.

========================  =================================================================
``none``                  plain DP-SGD
``class_weighted``        per-class loss weights applied before clipping (sensitivity stays
                          C); weights from a public prior (``weights`` or ``prior``), else
                          from class counts released once by the Laplace mechanism with a
                          share ``count_share`` (default 0.05) of ε; basic composition
``dpsgd_f``               DPSGD-F (Xu, Du & Wu 2021): per-class clip bounds from noisy
                          per-class counts of clipped examples at every step
``global_adapt``          DPSGD-Global-Adapt (Esipova et al. 2023): every gradient scaled by
                          C / Z with Z tracking a quantile of the norms from a noisy count
``threshold``             plain DP-SGD with the decision threshold moved to balance the
                          classes, chosen on held-out training rows or given as public
``oversample``            refused: copies break the per-record guarantee (PRIVACY.md rule 7)
========================  =================================================================

For ``dpsgd_f`` and ``global_adapt`` the counts are answered at every step on the gradients'
own Poisson batch: with the gradient sum they are one subsampled Gaussian mechanism, whose
effective noise multiplier the plan calibrates to ε; ``aux_share`` (default 0.1) is the
counts' share of its precision ``1/σ_eff²`` (PRIVACY.md rule 10).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..exceptions import ParameterError
from ..privacy import ONCE_LAPLACE, SHARED_GAUSSIAN, QuerySpec

OVERSAMPLE_REFUSAL = (
    "oversampling is refused under DP: a copied record joins several draws, so its "
    "influence grows with its number of copies and the per-record guarantee no longer holds "
    "(with k copies only group privacy at roughly k-fold epsilon; Opacus's weighted sampler "
    "silently miscomputes epsilon, its issue #813); use --mitigation class_weighted, which "
    "reweights the loss before clipping at no privacy cost"
)
HELDOUT = "heldout"
DEFAULT_HOLDOUT = 0.2


@dataclass
class Configured:
    """How a mitigation changes a planned run: the engine's clipping rule and its settings,
    the plan query whose noise the per-step counts use, per-example loss weights, the
    decision threshold (``None``: argmax; a number; ``"heldout"``), ledger notes and the
    noisy values released per query."""

    clip_rule: str = "standard"
    aux: dict = field(default_factory=dict)
    aux_query: str | None = None
    weights: np.ndarray | None = None
    threshold: float | str | None = None
    notes: list[str] = field(default_factory=list)
    released: dict[str, dict] = field(default_factory=dict)


def _share(params: Mapping, key: str) -> float:
    try:
        v = float(params[key])
    except (TypeError, ValueError):
        raise ParameterError(
            f"mitigation parameter {key} must be a number in (0, 1); got {params[key]!r}"
        ) from None
    if not 0 < v < 1:
        raise ParameterError(f"mitigation parameter {key} must be in (0, 1); got {v}")
    return v


def _positive(params: Mapping, key: str) -> float:
    try:
        v = float(params[key])
    except (TypeError, ValueError):
        v = math.nan
    if not (v > 0 and math.isfinite(v)):
        raise ParameterError(f"mitigation parameter {key} must be a positive number; got {v}")
    return v


class Mitigation:
    """A mitigation (subclass and :func:`register_mitigation` to add one).

    ``defaults`` names every parameter it takes with its default (``None``: optional, no
    default); ``clip_rule`` is the engine rule it needs."""

    name: str = "none"
    summary: str = "plain DP-SGD"
    defaults: ClassVar[dict[str, object]] = {}
    clip_rule: str = "standard"
    #: whether a threshold parameter (``threshold = "heldout"`` or a number) is accepted
    takes_threshold: bool = False

    # ------------------------------------------------------------------ parameters

    def allowed(self) -> set[str]:
        extra = {"threshold", "holdout"} if self.takes_threshold else set()
        return set(self.defaults) | extra

    def validate(self, params: Mapping[str, object], *, private: bool = True) -> dict:
        """Parameters with defaults filled in; unknown names and bad values raise
        :class:`~imbalanced_dp.exceptions.ParameterError`."""
        if self.name != "none" and not private:
            raise ParameterError(
                f"mitigation {self.name!r} applies to DP runs; a non-private run is the "
                "common reference"
            )
        unknown = set(params) - self.allowed()
        if unknown:
            raise ParameterError(
                f"mitigation {self.name!r} takes no parameter {sorted(unknown)[0]!r}; "
                f"it takes: {', '.join(sorted(self.allowed())) or 'none'}"
            )
        out = {k: v for k, v in self.defaults.items() if v is not None}
        out.update(params)
        self.check(out)
        threshold_rule(out, default=None)  # validates a threshold parameter
        if "holdout" in out:
            _share(out, "holdout")
        return out

    def check(self, params: dict) -> None:
        """Range checks of this mitigation's own parameters."""

    # ------------------------------------------------------------------ the plan

    def queries(self, params: Mapping) -> tuple[QuerySpec, ...]:
        """The private queries the run adds to its plan (besides the gradient sum)."""
        return ()

    def holdout(self, params: Mapping) -> float:
        """Share of the training rows held out to choose a decision threshold (0: none)."""
        if threshold_rule(params, default=self._default_threshold()) == HELDOUT:
            return float(params.get("holdout", DEFAULT_HOLDOUT))
        return 0.0

    def _default_threshold(self):
        return None

    def configure(self, params: Mapping, *, plan, y: np.ndarray, clip: float) -> Configured:
        """How the planned run trains (``y``: the training labels the weights apply to)."""
        return Configured(threshold=threshold_rule(params, default=self._default_threshold()))

    def describe(self) -> str:
        return self.summary


def threshold_rule(params: Mapping, *, default=None) -> float | str | None:
    """The decision-threshold parameter: ``None`` (argmax), a public number in (0, 1), or
    ``"heldout"`` (chosen on held-out training rows)."""
    t = params.get("threshold", params.get("value", default))
    if t is None or t == HELDOUT:
        return t
    try:
        v = float(t)
    except (TypeError, ValueError):
        raise ParameterError(
            f"threshold must be a number in (0, 1) (public) or 'heldout'; got {t!r}"
        ) from None
    if not 0 < v < 1:
        raise ParameterError(f"threshold must be in (0, 1); got {v}")
    return v


# ---------------------------------------------------------------------- class weighted


def class_weights_from_counts(n0: float, n1: float) -> tuple[float, float]:
    """Balanced weights ``n / (2 n_k)`` (each class carries half the total weight); noisy
    counts below one count as one."""
    return class_weights_from_shares(max(n0, 1.0), max(n1, 1.0))


def class_weights_from_shares(p0: float, p1: float) -> tuple[float, float]:
    """Balanced weights ``1 / (2 p_k)`` for class shares ``p`` (normalised to sum to 1)."""
    tot = p0 + p1
    return tot / (2 * p0), tot / (2 * p1)


def laplace_counts(y: np.ndarray, epsilon: float, rng: np.random.Generator) -> tuple[float, float]:
    """Class counts released by the Laplace mechanism: one record changes one count by one
    (L1 sensitivity 1), so noise of scale 1/ε gives ε-DP. ``rng`` must be the plan's (secret
    unless in research mode)."""
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=2).astype(float)
    noisy = counts + rng.laplace(0.0, 1.0 / epsilon, size=2)
    return float(noisy[0]), float(noisy[1])


CLASS_COUNTS = "class_counts"


class ClassWeighted(Mitigation):
    name = "class_weighted"
    summary = (
        "per-class loss weights before clipping, from a public prior or Laplace-noised class counts"
    )
    defaults: ClassVar[dict[str, object]] = {"weights": None, "prior": None, "count_share": 0.05}
    takes_threshold = True

    def public(self, params: Mapping) -> bool:
        return "weights" in params or "prior" in params

    def check(self, params: dict) -> None:
        _share(params, "count_share")
        if "weights" in params and "prior" in params:
            raise ParameterError("class_weighted takes weights or prior, not both")
        if "weights" in params:
            w = self._numbers(params["weights"], "weights")
            if len(w) != 2 or min(w) <= 0:
                raise ParameterError(f"weights must be two positive numbers; got {w}")
        if "prior" in params:
            p = self._numbers(params["prior"], "prior")
            if len(p) != 2 or min(p) <= 0:
                raise ParameterError(f"prior must be two positive class shares; got {p}")

    @staticmethod
    def _numbers(v, key: str) -> list[float]:
        try:
            return [float(x) for x in v]
        except (TypeError, ValueError):
            raise ParameterError(f"{key} must be two positive numbers; got {v!r}") from None

    def queries(self, params: Mapping) -> tuple[QuerySpec, ...]:
        if self.public(params):
            return ()
        return (
            QuerySpec(
                name=CLASS_COUNTS,
                description="class counts of the training rows (Laplace mechanism)",
                mechanism=ONCE_LAPLACE,
                sensitivity="L1 norm 1 (one record changes one count by one)",
                share=float(params["count_share"]),
            ),
        )

    def configure(self, params: Mapping, *, plan, y: np.ndarray, clip: float) -> Configured:
        out = Configured(threshold=threshold_rule(params))
        if self.public(params):
            if "weights" in params:
                w = self._numbers(params["weights"], "weights")
                source = f"public per-class weights {w} given by the user"
            else:
                prior = self._numbers(params["prior"], "prior")
                w = list(class_weights_from_shares(prior[0], prior[1]))
                source = f"a public class prior {prior} given by the user"
            out.notes.append(
                f"class weights {[round(v, 4) for v in w]} from {source}: not fitted on the "
                "private data, no privacy spent"
            )
        else:
            q = plan.query(CLASS_COUNTS)
            n0, n1 = laplace_counts(y, q.epsilon, plan.rng(CLASS_COUNTS))
            w = list(class_weights_from_counts(n0, n1))
            out.released[CLASS_COUNTS] = {"noisy_counts": [n0, n1]}
            out.notes.append(
                "class weights from the Laplace-noised class counts (the released noisy "
                "counts are in the ledger's components)"
            )
        out.weights = np.where(np.asarray(y) == 1, w[1], w[0]).astype(np.float64)
        out.notes.append(
            f"per-class loss weights {[round(v, 4) for v in w]} applied before clipping: "
            "sensitivity stays C"
        )
        return out


# ---------------------------------------------------------------------- per-step counts


class _PerStepCounts(Mitigation):
    """A clipping rule that answers noisy counts on every step's batch."""

    query_name = ""
    query_description = ""
    query_sensitivity = "L2 norm 1 (one record changes one count by one)"
    takes_threshold = True

    def check(self, params: dict) -> None:
        _share(params, "aux_share")

    def queries(self, params: Mapping) -> tuple[QuerySpec, ...]:
        return (
            QuerySpec(
                name=self.query_name,
                description=self.query_description,
                mechanism=SHARED_GAUSSIAN,
                sensitivity=self.query_sensitivity,
                share=float(params["aux_share"]),
            ),
        )

    def aux(self, params: Mapping, clip: float) -> dict:
        return {}

    def configure(self, params: Mapping, *, plan, y: np.ndarray, clip: float) -> Configured:
        sigma = plan.query(self.query_name).noise_multiplier
        return Configured(
            clip_rule=self.clip_rule,
            aux=self.aux(params, clip),
            aux_query=self.query_name,
            threshold=threshold_rule(params),
            notes=[
                f"{self.query_description} at every step (noise multiplier {sigma:.4g}), "
                "answered on the gradients' Poisson batch: accounted with the gradients as "
                "one mechanism"
            ],
        )


class DPSGDF(_PerStepCounts):
    name = "dpsgd_f"
    summary = "DPSGD-F: per-class clip bounds from noisy per-class counts of clipped examples"
    defaults: ClassVar[dict[str, object]] = {"aux_share": 0.1}
    clip_rule = "dpsgd_f"
    query_name = "clip_counts"
    query_description = "noisy per-class counts of examples clipped at C0 (DPSGD-F)"
    query_sensitivity = "L2 norm 1 (one record changes one of the four counts by one)"

    def aux(self, params: Mapping, clip: float) -> dict:
        return {"base_clip": float(clip)}


class GlobalAdapt(_PerStepCounts):
    name = "global_adapt"
    summary = "DPSGD-Global-Adapt: gradients scaled by C / Z, Z tracking a quantile of norms"
    defaults: ClassVar[dict[str, object]] = {
        "aux_share": 0.1,
        "z0": None,
        "lr_z": 0.005,
        "quantile": 0.9,
    }
    clip_rule = "global_adapt"
    query_name = "adapt_count"
    query_description = "noisy count of examples whose gradient norm is within Z (Global-Adapt)"

    def check(self, params: dict) -> None:
        super().check(params)
        if "z0" in params:
            _positive(params, "z0")
        _positive(params, "lr_z")
        _share(params, "quantile")

    def aux(self, params: Mapping, clip: float) -> dict:
        return {
            "z0": float(params.get("z0", clip)),
            "lr_z": float(params["lr_z"]),
            "quantile": float(params["quantile"]),
        }


class Threshold(Mitigation):
    name = "threshold"
    summary = "plain DP-SGD, decision threshold balanced on held-out rows or given as public"
    defaults: ClassVar[dict[str, object]] = {"value": None, "holdout": DEFAULT_HOLDOUT}

    def _default_threshold(self):
        return HELDOUT

    def holdout(self, params: Mapping) -> float:
        if threshold_rule(params, default=HELDOUT) == HELDOUT:
            return float(params.get("holdout", DEFAULT_HOLDOUT))
        return 0.0


class Oversample(Mitigation):
    name = "oversample"
    summary = "refused: copies break the per-record guarantee"

    def validate(self, params: Mapping[str, object], *, private: bool = True) -> dict:
        raise ParameterError(OVERSAMPLE_REFUSAL)


MITIGATIONS: dict[str, Mitigation] = {}


def register_mitigation(mitigation: Mitigation) -> None:
    """Make a mitigation available by its name to every command and study."""
    MITIGATIONS[mitigation.name] = mitigation


for _m in (Mitigation(), ClassWeighted(), DPSGDF(), GlobalAdapt(), Threshold(), Oversample()):
    register_mitigation(_m)


def mitigation_names(*, usable: bool = False) -> list[str]:
    """Registered mitigations (``usable``: without the refused ones)."""
    return [n for n, m in MITIGATIONS.items() if not (usable and isinstance(m, Oversample))]


def get_mitigation(name: str) -> Mitigation:
    if name not in MITIGATIONS:
        raise ParameterError(f"mitigation must be one of {', '.join(MITIGATIONS)}; got {name!r}")
    return MITIGATIONS[name]


def check_mitigation(name: str, params: Mapping | None = None, *, private: bool = True) -> dict:
    """Validated parameters of mitigation ``name`` for a (non-)private run; raises
    :class:`~imbalanced_dp.exceptions.ParameterError` for an unknown or refused mitigation,
    one asked of a non-private run, or a bad parameter."""
    return get_mitigation(name).validate(dict(params or {}), private=private)
