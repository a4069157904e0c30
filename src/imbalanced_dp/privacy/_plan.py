"""The privacy plan of a run: every private query, its noise, and the epsilon they spend.

Every path that trains on private rows (a study's run, ``imbalanced-dp run``, the estimator,
the attacks) builds its run from one :class:`TrainingPlan`, made by :func:`plan_run` from
public inputs only: the number of training rows ``n`` (public, PRIVACY.md rule 12), the
training settings, the target (ε, δ), the accountant and the private queries that the run's
mitigation declares. Nothing else touches private data (rule 10).

Composition
-----------
* Queries answered on the **same Poisson batch** as the gradients (the per-step counts of
  DPSGD-F and DPSGD-Global-Adapt) form, with the gradient sum, **one** subsampled Gaussian
  mechanism: with each query's sensitivity as its unit, the vector of all answers has L2
  sensitivity ``sqrt(Σ 1/σ_i²)`` against unit noise, i.e. the noise multiplier
  ``σ_eff = (Σ σ_i⁻²)^(−1/2)``. The plan calibrates ``σ_eff`` to the Gaussian part of the
  budget with the accountant, then gives each query a share ``s_i`` of the precision
  ``1/σ_eff²``: ``σ_i = σ_eff / sqrt(s_i)`` (the gradients get the rest).
* Queries answered **once on all training rows** (Laplace class counts, a DP scaler) take a
  share of ε each, pure ε-DP, composed with the Gaussian part by basic composition:
  ``ε_total = Σ ε_once + ε_Gaussian(σ_eff)`` at δ, which is conservative.

Noise
-----
By default the plan is **secret**: it holds no key, and the engine draws a 64-bit key from
the operating system's entropy when training starts and forgets it (PRIVACY.md rule 9). In
**research mode** (``reproducible=True``) the key derives from the seed and the run's whole
setting, so every distinct run of one seed has independent noise and a run is reproducible
bit for bit; the ledger then says that the guarantee assumes the seed stays secret.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ..exceptions import ParameterError
from ._accounting import (
    DEFAULT_ACCOUNTANT,
    calibrate,
    check_accountant,
    check_delta,
    check_epsilon,
    default_delta,
    sampling_plan,
)
from ._cache import CalibrationCache, CalibrationKey, accountant_version
from ._ledger import (
    ADJACENCY,
    ADJACENCY_NOTE,
    NOISE_NOTE,
    PUBLIC_N_NOTE,
    RESEARCH_NOISE,
    RESEARCH_NOTE,
    SECRET_NOISE,
    SECRET_NOTE,
    PrivacyLedger,
)

#: Mechanisms a query may use.
SHARED_GAUSSIAN = "gaussian_shared_batch"
ONCE_LAPLACE = "laplace_once"
MECHANISMS = (SHARED_GAUSSIAN, ONCE_LAPLACE)

GRADIENTS = "gradients"


@dataclass(frozen=True)
class QuerySpec:
    """A private query a run declares to its plan (a mitigation's noisy counts, say).

    ``mechanism`` is :data:`SHARED_GAUSSIAN` (answered at every step on the gradients'
    Poisson batch, Gaussian noise; ``share`` is its share of the precision ``1/σ_eff²``) or
    :data:`ONCE_LAPLACE` (answered once on all training rows, Laplace noise; ``share`` is its
    share of ε). ``sensitivity`` says in words what one record can change (the unit of the
    noise).
    """

    name: str
    description: str
    mechanism: str
    sensitivity: str
    share: float
    l1_sensitivity: float = 1.0  # Laplace queries: the noise scale is this over their ε

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise ParameterError(
                f"query {self.name!r}: mechanism must be one of {', '.join(MECHANISMS)}; "
                f"got {self.mechanism!r}"
            )
        if not (0 < self.share < 1 and math.isfinite(self.share)):
            raise ParameterError(
                f"query {self.name!r}: its share of the budget must be in (0, 1); got {self.share}"
            )
        if self.name == GRADIENTS:
            raise ParameterError(f"query name {GRADIENTS!r} is the gradient sum's own")


@dataclass(frozen=True)
class PrivateQuery:
    """A query of a plan with its noise: ``noise_multiplier`` for a Gaussian query (noise
    std = ``noise_multiplier`` × sensitivity), ``laplace_scale`` and ``epsilon`` for a
    Laplace one."""

    name: str
    description: str
    mechanism: str
    sensitivity: str
    sampling: str
    share: float
    noise_multiplier: float | None = None
    laplace_scale: float | None = None
    epsilon: float | None = None

    def to_dict(self) -> dict:
        return {
            "query": self.name,
            "mechanism": self.description,
            "kind": self.mechanism,
            "sampling": self.sampling,
            "sensitivity": self.sensitivity,
            "share": self.share,
            "noise_multiplier": self.noise_multiplier,
            "laplace_scale": self.laplace_scale,
            "epsilon": self.epsilon,
        }


@dataclass(frozen=True)
class TrainingPlan:
    """The frozen privacy plan of one run (see the module docstring).

    A non-private plan has ``private=False``, shuffled minibatches and no queries. A private
    plan's ``noise_multiplier`` is the gradients' σ and ``effective_noise_multiplier`` the
    σ_eff of the whole per-step mechanism; ``epsilon_spent`` is the total by the
    composition above; ``noise_key`` is set in research mode only.
    """

    private: bool
    n: int
    batch_size: int
    epochs: int
    steps: int
    steps_per_epoch: int
    sample_rate: float | None
    expected_batch_size: int | None
    delta: float | None
    accountant: str | None
    epsilon_target: float | None
    epsilon_spent: float | None
    epsilon_gaussian: float | None
    noise_multiplier: float
    effective_noise_multiplier: float | None
    queries: tuple[PrivateQuery, ...]
    calibration: CalibrationKey | None
    reproducible: bool
    seed: int | None
    noise_key: int | None

    def query(self, name: str) -> PrivateQuery:
        for q in self.queries:
            if q.name == name:
                return q
        raise ParameterError(
            f"the plan has no private query {name!r}; it has: "
            + ", ".join(q.name for q in self.queries)
        )

    def rng(self, purpose: str) -> np.random.Generator:
        """The random generator of a one-shot query (``purpose`` names it): from the research
        key in research mode, from fresh OS entropy (never kept) otherwise."""
        if self.noise_key is None:
            return np.random.default_rng(secrets.randbits(128))
        tag = int.from_bytes(hashlib.sha256(purpose.encode()).digest()[:8], "little")
        return np.random.default_rng([self.noise_key & 0xFFFFFFFF, self.noise_key >> 32, tag])

    def ledger(
        self,
        *,
        clip: float | None = None,
        not_covered: Sequence[str] = (),
        notes: Sequence[str] = (),
    ) -> PrivacyLedger:
        """A fresh ledger of this plan (callers add what their outputs release)."""
        if not self.private:
            return PrivacyLedger(
                privacy="none",
                sampling="shuffle",
                steps=self.steps,
                not_covered=[
                    "no differential privacy: the model is trained in the clear",
                    *not_covered,
                ],
                notes=list(notes),
            )
        parts = [q for q in self.queries if q.mechanism == SHARED_GAUSSIAN]
        once = [q for q in self.queries if q.mechanism == ONCE_LAPLACE]
        by = (
            f"epsilon {self.epsilon_gaussian:.6g} by the {self.accountant} accountant"
            if self.epsilon_gaussian is not None
            else f"accounted by {self.accountant}"
        )
        if len(parts) > 1:
            comp = (
                f"{' + '.join(q.name for q in parts)} answered on the same Poisson batch: one "
                f"subsampled Gaussian mechanism with effective noise multiplier "
                f"{self.effective_noise_multiplier:.6g} = (Σ σ_i⁻²)^(−1/2), {by}"
            )
        else:
            comp = (
                f"one subsampled Gaussian mechanism (noise multiplier "
                f"{self.noise_multiplier:.6g}), {by}"
            )
        if once and self.epsilon_gaussian is not None:
            comp += "; plus " + " + ".join(
                f"{q.name} (Laplace, epsilon {q.epsilon:.6g})" for q in once
            )
            comp += f" by basic composition: total {self.epsilon_spent:.6g}"
        elif once:
            comp += ", with " + " + ".join(
                f"{q.name} (Laplace, epsilon {q.epsilon:.6g})" for q in once
            )
        noise = RESEARCH_NOTE.format(seed=self.seed) if self.reproducible else SECRET_NOTE
        return PrivacyLedger(
            privacy="dp",
            sampling="poisson",
            steps=self.steps,
            clip=clip,
            accountant=self.accountant,
            accountant_version=accountant_version(self.accountant),
            noise_multiplier=self.noise_multiplier,
            sample_rate=self.sample_rate,
            expected_batch_size=self.expected_batch_size,
            delta=self.delta,
            epsilon_target=self.epsilon_target,
            epsilon_spent=self.epsilon_spent,
            not_covered=[PUBLIC_N_NOTE.format(n=self.n), *not_covered],
            components=[q.to_dict() for q in self.queries],
            notes=[ADJACENCY_NOTE.format(n=self.n), noise, NOISE_NOTE, *notes],
            adjacency=ADJACENCY,
            noise_source=RESEARCH_NOISE if self.reproducible else SECRET_NOISE,
            effective_noise_multiplier=self.effective_noise_multiplier,
            composition=comp,
        )


def research_key(seed: int, setting: Mapping | None = None) -> int:
    """The 64-bit noise key of a research-mode run: a hash of its seed and its whole setting
    (so different settings of one seed get independent streams)."""
    payload = json.dumps(
        {"seed": int(seed), "setting": dict(setting or {})}, sort_keys=True, default=str
    )
    digest = hashlib.sha256(b"imbalanced-dp noise key\0" + payload.encode()).digest()
    return int.from_bytes(digest[:8], "little")


def gaussian_budget(epsilon: float, queries: Sequence[QuerySpec]) -> float:
    """The part of ``epsilon`` left to the per-step Gaussian mechanism once the one-shot
    (Laplace) queries have taken their shares."""
    once = sum(q.share for q in queries if q.mechanism == ONCE_LAPLACE)
    if once >= 1:
        raise ParameterError(
            f"the one-shot queries take {once:g} of the budget; their shares must sum below 1"
        )
    return float(epsilon) * (1.0 - once)


def calibration_key(
    *,
    n: int,
    batch_size: int,
    epochs: int,
    epsilon: float,
    delta: float,
    accountant: str = DEFAULT_ACCOUNTANT,
    queries: Sequence[QuerySpec] = (),
) -> CalibrationKey:
    """The calibration a private plan with these public inputs needs (cheap: computes
    nothing)."""
    sp = sampling_plan(n=n, batch_size=batch_size, epochs=epochs)
    return CalibrationKey(
        accountant, gaussian_budget(epsilon, queries), delta, sp.sample_rate, sp.steps
    )


def plan_run(
    *,
    n: int,
    batch_size: int,
    epochs: int,
    epsilon: float | None,
    delta: float | None = None,
    accountant: str = DEFAULT_ACCOUNTANT,
    queries: Sequence[QuerySpec] = (),
    reproducible: bool = False,
    seed: int | None = None,
    setting: Mapping | None = None,
    n_rows: int | None = None,
    calibrations: CalibrationCache | None = None,
) -> TrainingPlan:
    """The privacy plan of a run (see the module docstring).

    Parameters
    ----------
    n : int
        Number of training rows, a public number: the sample rate and the expected batch
        size derive from it and from nothing else about the data.
    batch_size, epochs : int
        Expected batch size (``q = 1 / ceil(n / batch_size)``, as Opacus) and epochs.
    epsilon : float or None
        Target ε of the whole run (every query); ``None`` plans a non-private run.
    delta : float, optional
        δ of the guarantee; default :func:`~imbalanced_dp.privacy.default_delta` of
        ``n_rows`` (or ``n``). δ ≥ 1/n is refused, δ > 1/(10 n) warns.
    accountant : {"pld", "prv", "rdp"}
    queries : sequence of QuerySpec
        The run's private queries besides the gradient sum.
    reproducible : bool
        Research mode: noise from ``seed`` and ``setting`` instead of a secret key.
    seed : int
        The run's seed (required in research mode).
    setting : mapping, optional
        Everything else that identifies the run (research mode derives its key from it).
    n_rows : int, optional
        Rows of the whole table (a public upper bound of ``n``) for the default δ.
    calibrations : CalibrationCache, optional
        Where calibrations are looked up and kept.

    Examples
    --------
    >>> plan = plan_run(n=614, batch_size=64, epochs=500, epsilon=2.0, accountant="rdp")
    >>> plan.sample_rate, plan.steps, plan.expected_batch_size, plan.delta
    (0.1, 5000, 61, 0.0001)
    >>> plan.epsilon_spent <= 2.0, plan.noise_key is None
    (True, True)
    """
    if reproducible and seed is None:
        raise ParameterError("research mode (reproducible noise) needs a seed")
    sp = sampling_plan(n=n, batch_size=batch_size, epochs=epochs)
    seed_i = None if seed is None else int(seed)
    if epsilon is None:
        if queries:
            raise ParameterError("private queries need a private run (an epsilon)")
        return TrainingPlan(
            private=False,
            n=n,
            batch_size=batch_size,
            epochs=epochs,
            steps=sp.steps,
            steps_per_epoch=sp.steps_per_epoch,
            sample_rate=None,
            expected_batch_size=None,
            delta=None,
            accountant=None,
            epsilon_target=None,
            epsilon_spent=None,
            epsilon_gaussian=None,
            noise_multiplier=0.0,
            effective_noise_multiplier=None,
            queries=(),
            calibration=None,
            reproducible=bool(reproducible),
            seed=seed_i,
            noise_key=None,
        )
    check_epsilon(epsilon)
    check_accountant(accountant)
    names = [q.name for q in queries]
    if len(set(names)) != len(names):
        raise ParameterError(f"private queries must have distinct names; got {names}")
    if delta is None:
        delta = default_delta(n_rows if n_rows is not None else n)
    check_delta(float(delta), n)
    shared = [q for q in queries if q.mechanism == SHARED_GAUSSIAN]
    once = [q for q in queries if q.mechanism == ONCE_LAPLACE]
    aux_share = sum(q.share for q in shared)
    if aux_share >= 1:
        raise ParameterError(
            f"the per-step queries take {aux_share:g} of the noise budget; their shares must "
            "sum below 1 so that the gradients keep some"
        )
    key = calibration_key(
        n=n,
        batch_size=batch_size,
        epochs=epochs,
        epsilon=float(epsilon),
        delta=float(delta),
        accountant=accountant,
        queries=queries,
    )
    cal = calibrate(key, cache=calibrations)
    once_eps = {q.name: q.share * float(epsilon) for q in once}
    total = cal.epsilon_spent
    for eps_q in once_eps.values():  # (in the queries' order, as always)
        total += eps_q
    return _private_plan(
        sp,
        s_eff=cal.noise_multiplier,
        epsilon_gaussian=cal.epsilon_spent,
        epsilon_target=float(epsilon),
        epsilon_spent=total,
        once_epsilons=once_eps,
        delta=float(delta),
        accountant=accountant,
        queries=queries,
        calibration=key,
        reproducible=reproducible,
        seed=seed_i,
        setting=setting,
    )


def plan_with_noise(
    *,
    n: int,
    batch_size: int,
    epochs: int,
    noise_multiplier: float,
    laplace_epsilons: Mapping[str, float] | None = None,
    delta: float,
    epsilon_target: float,
    epsilon_spent: float,
    accountant: str,
    queries: Sequence[QuerySpec] = (),
    reproducible: bool = False,
    seed: int | None = None,
    setting: Mapping | None = None,
) -> TrainingPlan:
    """A private plan whose noise was calibrated elsewhere: a candidate of a private search
    (:func:`~imbalanced_dp.privacy.plan_selection` gives every candidate setting its
    ``noise_multiplier``, the σ_eff of everything answered on a step's batch, and the ε of
    each one-shot query, by name in ``laplace_epsilons``). The shared per-step queries get
    their shares of the precision as in :func:`plan_run`; ``epsilon_target`` and
    ``epsilon_spent`` are what the caller's accounting says this plan spends (for the
    ledger), ``accountant`` names that accounting.

    Examples
    --------
    >>> plan = plan_with_noise(n=614, batch_size=64, epochs=10, noise_multiplier=5.0,
    ...                        delta=1e-4, epsilon_target=0.5, epsilon_spent=0.42,
    ...                        accountant="rdp")
    >>> plan.noise_multiplier, plan.steps, plan.calibration is None
    (5.0, 100, True)
    """
    if reproducible and seed is None:
        raise ParameterError("research mode (reproducible noise) needs a seed")
    sp = sampling_plan(n=n, batch_size=batch_size, epochs=epochs)
    sigma = float(noise_multiplier)
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ParameterError(f"noise multiplier must be positive; got {noise_multiplier}")
    names = [q.name for q in queries]
    if len(set(names)) != len(names):
        raise ParameterError(f"private queries must have distinct names; got {names}")
    check_delta(float(delta), n)
    lap = dict(laplace_epsilons or {})
    once = [q.name for q in queries if q.mechanism == ONCE_LAPLACE]
    if sorted(once) != sorted(lap):
        raise ParameterError(
            f"every one-shot query needs its epsilon: queries {sorted(once)}, epsilons for "
            f"{sorted(lap)}"
        )
    if sum(q.share for q in queries if q.mechanism == SHARED_GAUSSIAN) >= 1:
        raise ParameterError("the per-step queries' shares must sum below 1")
    return _private_plan(
        sp,
        s_eff=sigma,
        epsilon_gaussian=None,
        epsilon_target=float(epsilon_target),
        epsilon_spent=float(epsilon_spent),
        once_epsilons={k: float(v) for k, v in lap.items()},
        delta=float(delta),
        accountant=accountant,
        queries=queries,
        calibration=None,
        reproducible=reproducible,
        seed=None if seed is None else int(seed),
        setting=setting,
    )


def _private_plan(
    sp,
    *,
    s_eff: float,
    epsilon_gaussian: float | None,
    epsilon_target: float,
    epsilon_spent: float,
    once_epsilons: Mapping[str, float],
    delta: float,
    accountant: str,
    queries: Sequence[QuerySpec],
    calibration: CalibrationKey | None,
    reproducible: bool,
    seed: int | None,
    setting: Mapping | None,
) -> TrainingPlan:
    """A private plan of sampling ``sp`` with per-step noise multiplier ``s_eff`` shared by
    the gradients and the per-step queries, and the one-shot queries' epsilons."""
    shared = [q for q in queries if q.mechanism == SHARED_GAUSSIAN]
    once = [q for q in queries if q.mechanism == ONCE_LAPLACE]
    aux_share = sum(q.share for q in shared)
    sampling = f"Poisson, rate {sp.sample_rate:.6g}, {sp.steps} steps"
    planned = [
        PrivateQuery(
            name=GRADIENTS,
            description="sum of per-example gradients clipped to norm C",
            mechanism=SHARED_GAUSSIAN,
            sensitivity="L2 norm C (the clip bound)",
            sampling=sampling,
            share=1.0 - aux_share,
            noise_multiplier=s_eff / math.sqrt(1.0 - aux_share),
        )
    ]
    for q in shared:
        planned.append(
            PrivateQuery(
                name=q.name,
                description=q.description,
                mechanism=q.mechanism,
                sensitivity=q.sensitivity,
                sampling=sampling + " (the gradients' batch)",
                share=q.share,
                noise_multiplier=s_eff / math.sqrt(q.share),
            )
        )
    for q in once:
        eps_q = float(once_epsilons[q.name])
        planned.append(
            PrivateQuery(
                name=q.name,
                description=q.description,
                mechanism=q.mechanism,
                sensitivity=q.sensitivity,
                sampling="once, on all training rows",
                share=q.share,
                laplace_scale=q.l1_sensitivity / eps_q,
                epsilon=eps_q,
            )
        )
    plan = TrainingPlan(
        private=True,
        n=sp.n,
        batch_size=sp.batch_size,
        epochs=sp.epochs,
        steps=sp.steps,
        steps_per_epoch=sp.steps_per_epoch,
        sample_rate=sp.sample_rate,
        expected_batch_size=sp.expected_batch_size,
        delta=float(delta),
        accountant=accountant,
        epsilon_target=float(epsilon_target),
        epsilon_spent=float(epsilon_spent),
        epsilon_gaussian=None if epsilon_gaussian is None else float(epsilon_gaussian),
        noise_multiplier=planned[0].noise_multiplier or 0.0,
        effective_noise_multiplier=s_eff,
        queries=tuple(planned),
        calibration=calibration,
        reproducible=bool(reproducible),
        seed=seed,
        noise_key=None,
    )
    if reproducible:
        desc = {
            "n": sp.n,
            "batch_size": sp.batch_size,
            "epochs": sp.epochs,
            "epsilon": float(epsilon_target),
            "delta": float(delta),
            "accountant": accountant,
            "queries": [(q.name, q.share) for q in queries],
            "setting": dict(setting or {}),
        }
        if calibration is None:
            desc["noise_multiplier"] = s_eff  # (plan_run's keys stay as they were)
        plan = replace(plan, noise_key=research_key(seed or 0, desc))
    return plan
