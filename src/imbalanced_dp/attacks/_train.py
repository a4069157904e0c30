"""Training the models that attacks and audits look at, with the fast engine.

Every privacy level is planned like a study run (docs/privacy.md): by
:func:`~imbalanced_dp.privacy.plan_run` for the public training size, Poisson sampling with
its public constants, σ calibrated by a maintained accountant so that the whole run spends
the target ε. The attacked models are research-mode runs: their seeds are part of the
experiment, and each model's noise key derives from its seed and its privacy level, so the
levels of one model seed have independent noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..engines import FastEngine, RunConfig, TrainJob
from ..exceptions import ParameterError
from ..models import Architecture
from ..privacy import (
    DEFAULT_ACCOUNTANT,
    check_accountant,
    check_delta,
    check_training_params,
    plan_run,
    research_key,
    sampling_plan,
)

#: Label of the σ = 0 control: DP-SGD's clipping and Poisson sampling without noise.
CONTROL = "sigma0"


def privacy_label(epsilon: float | None) -> str:
    """``"none"`` or the target ε as text (``"8"``, ``"0.5"``), as in the study's tables."""
    return "none" if epsilon is None else f"{float(epsilon):g}"


def parse_privacy(text: str | Sequence) -> list[float | None]:
    """Parse ``"none,8,2,1"`` (or a list) into ``[None, 8.0, 2.0, 1.0]``.

    Examples
    --------
    >>> parse_privacy("none, 8,2")
    [None, 8.0, 2.0]
    """
    items = [p.strip() for p in text.split(",")] if isinstance(text, str) else list(text)
    out: list[float | None] = []
    for p in items:
        if p is None or (isinstance(p, str) and p.lower() == "none"):
            value = None
        else:
            try:
                value = float(p)
            except (TypeError, ValueError):
                raise ParameterError(
                    f"privacy levels must be 'none' or positive epsilons like none,8,2,1; got {p!r}"
                ) from None
            if not (value > 0 and math.isfinite(value)):
                raise ParameterError(f"epsilon must be a positive number; got {p!r}")
        if value in out:
            raise ParameterError(f"privacy level {privacy_label(value)} is given twice")
        out.append(value)
    if not out or (isinstance(text, str) and not text.strip()):
        raise ParameterError("give at least one privacy level, e.g. none,8,2,1")
    return out


@dataclass(frozen=True)
class TrainingSettings:
    """The study's training settings that the attacked models share."""

    epochs: int = 500
    batch_size: int = 64
    lr: float = 0.01
    clip: float = 1.0
    delta: float = 1e-4
    accountant: str = DEFAULT_ACCOUNTANT

    def check(self, n: int) -> None:
        check_training_params(
            n=n, batch_size=self.batch_size, epochs=self.epochs, lr=self.lr, clip=self.clip
        )
        check_accountant(self.accountant)
        check_delta(self.delta, n)


@dataclass(frozen=True)
class PrivacySetting:
    """How one privacy level is trained, fixed before any private data is touched.

    ``label`` is ``"none"``, ``"sigma0"`` (the control) or the target ε as text; ``n`` is
    the public training size the sampling plan was made for.
    """

    label: str
    epsilon: float | None
    private: bool
    noise_multiplier: float | None
    epsilon_spent: float | None
    sample_rate: float | None
    steps: int
    expected_batch_size: int | None
    delta: float | None
    accountant: str | None
    n: int

    def to_dict(self) -> dict:
        return asdict(self)

    def noise_key(self, seed: int) -> int:
        """The research-mode noise key of the model with ``seed`` at this level."""
        return research_key(seed, {"attack_level": self.label, "n": self.n, "steps": self.steps})

    def config(self, seed: int, training: TrainingSettings) -> RunConfig:
        if not self.private:
            return RunConfig(
                seed=int(seed),
                private=False,
                epochs=training.epochs,
                batch_size=training.batch_size,
                lr=training.lr,
                steps=self.steps,
            )
        return RunConfig(
            seed=int(seed),
            private=True,
            epochs=training.epochs,
            batch_size=training.batch_size,
            lr=training.lr,
            steps=self.steps,
            clip=training.clip,
            noise_multiplier=float(self.noise_multiplier or 0.0),
            sample_rate=float(self.sample_rate or 0.0),
            expected_batch_size=int(self.expected_batch_size or 1),
            noise_key=self.noise_key(seed),
        )


def plan_setting(
    level: float | str | None, *, n: int, training: TrainingSettings
) -> PrivacySetting:
    """Plan ``level`` (``None``: non-private, ``"sigma0"``: the control, or a target ε) for a
    public training size ``n``."""
    training.check(n)
    if level is None:
        per_epoch = math.ceil(n / training.batch_size)
        return PrivacySetting(
            label="none",
            epsilon=None,
            private=False,
            noise_multiplier=None,
            epsilon_spent=None,
            sample_rate=None,
            steps=per_epoch * training.epochs,
            expected_batch_size=None,
            delta=None,
            accountant=None,
            n=n,
        )
    plan = sampling_plan(n=n, batch_size=training.batch_size, epochs=training.epochs)
    if level == CONTROL:
        sigma, eps, spent, label = 0.0, None, None, CONTROL
    else:
        eps = float(level)
        planned = plan_run(
            n=n,
            batch_size=training.batch_size,
            epochs=training.epochs,
            epsilon=eps,
            delta=training.delta,
            accountant=training.accountant,
        )
        sigma, spent = planned.noise_multiplier, planned.epsilon_spent
        label = privacy_label(eps)
    return PrivacySetting(
        label=label,
        epsilon=eps,
        private=True,
        noise_multiplier=float(sigma),
        epsilon_spent=spent,
        sample_rate=plan.sample_rate,
        steps=plan.steps,
        expected_batch_size=plan.expected_batch_size,
        delta=training.delta,
        accountant=training.accountant,
        n=n,
    )


def model_seed(seed: int, index: int, purpose: int) -> int:
    """A distinct 32-bit seed for model ``index`` of an experiment seeded by ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(purpose), int(index)]).generate_state(1)[0])


def random_halves(n_records: int, n_models: int, *, seed: int) -> np.ndarray:
    """Membership matrix (models × records): each model keeps ``n_records // 2`` records
    drawn uniformly without replacement, independently of the other models, so every
    record is a member of about half of the models."""
    rng = np.random.default_rng([int(seed), 0x4A1F])
    half = n_records // 2
    keep = np.zeros((n_models, n_records), dtype=bool)
    for m in range(n_models):
        keep[m, rng.permutation(n_records)[:half]] = True
    return keep


@dataclass
class MembershipModels:
    """What the attacks need from the models of one privacy level: each model's loss and
    logit-scaled confidence on every record of the pool, and the membership matrix."""

    setting: PrivacySetting
    members: np.ndarray
    losses: np.ndarray
    phi: np.ndarray


def train_membership_models(
    X: np.ndarray,
    y: np.ndarray,
    *,
    arch: Architecture,
    levels: Sequence[float | None],
    n_models: int,
    training: TrainingSettings,
    seed: int = 0,
    threads: int | None = None,
) -> list[MembershipModels]:
    """Train ``n_models`` models per privacy level on random halves of ``(X, y)``.

    Every level uses the same halves and the same model seeds, so levels are paired; all
    models of all levels are trained in one batch of the fast engine.
    """
    from ._mia import logit_confidence

    if n_models < 4:
        raise ParameterError(f"--shadows must be at least 4; got {n_models}")
    N = len(y)
    members = random_halves(N, n_models, seed=seed)
    half = int(members[0].sum())
    settings = [plan_setting(lv, n=half, training=training) for lv in levels]
    subsets = [np.flatnonzero(members[m]) for m in range(n_models)]
    Xs = [np.ascontiguousarray(X[idx]) for idx in subsets]
    ys = [np.ascontiguousarray(y[idx]) for idx in subsets]
    jobs = [
        TrainJob(Xs[m], ys[m], arch, st.config(model_seed(seed, m, 0x3141), training))
        for st in settings
        for m in range(n_models)
    ]
    models = FastEngine().train(jobs, threads=threads)
    out = []
    for k, st in enumerate(settings):
        batch = models[k * n_models : (k + 1) * n_models]
        logits = [mdl.logits(X) for mdl in batch]
        losses = np.array([mdl.per_example_loss(X, y) for mdl in batch])
        phi = np.array([logit_confidence(z, y) for z in logits])
        out.append(MembershipModels(setting=st, members=members, losses=losses, phi=phi))
    return out
