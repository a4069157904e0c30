"""Empirical audit of ε in one training run (Steinke, Nasr & Jagielski 2023), with Dirac
canaries.

Design
------
* **Canaries.** ``m`` canary records, each included in the training set independently with
  probability ½ (the secret bits S). A canary is a *Dirac* record (Nasr et al. 2023): the
  model gets ``m`` extra input columns, zero in every real record; canary ``i`` is zero in
  the table's features and ``R`` in its own column ``i``, with a random label. Only canary
  ``i`` ever has a gradient on the first-layer weights of column ``i``, so its inclusion is
  not drowned by the other canaries, and the rest of the network is the study's model.
  (Black-box canaries such as mislabelled or far out-of-distribution rows share all
  parameters; on models this small their effect is lost in the training noise even at
  σ = 0, which is why they are not used.)
* **Initialisation.** PyTorch's default initialisation of the study's model, drawn from the
  audit's seed, and zero weights on the canary columns. DP-SGD's guarantee holds for any
  initialisation fixed independently of the data, so an auditor may choose it.
* **Public training size.** The number of included canaries is random, and private. The
  sampling plan (q, steps, expected batch size — the divisor of the noisy sum) is made for
  the public size ``n = rows + m // 2`` (the expected size) and is the same whichever
  canaries are drawn; Poisson sampling at that fixed q is (ε, δ)-DP for any actual size.
* **Score.** Black-box: the canary's logit-scaled confidence minus that of the all-zero
  input with the same label, ``φ(x_i, y_i) − φ(0, y_i)``. An excluded canary's column only
  ever receives noise, so at σ = 0 its score is exactly 0.
* **Guesses.** "In" for the highest scores, "out" for the lowest, for a few fixed numbers
  of guesses with a Bonferroni correction; the bound is :func:`~._bound.audit_scores`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..engines import FastEngine, TrainJob
from ..exceptions import ParameterError
from ..models import Architecture
from ._bound import AuditBound, audit_scores
from ._mia import logit_confidence
from ._train import PrivacySetting, TrainingSettings, model_seed, plan_setting

#: Value of a canary in its own column (in standard deviations of a scaled feature).
DEFAULT_RADIUS = 10.0


@dataclass(frozen=True)
class Canaries:
    """``m`` Dirac canaries for a table with ``d`` features: labels, inclusion bits, the
    column value ``radius``."""

    d: int
    labels: np.ndarray
    included: np.ndarray
    radius: float

    @property
    def m(self) -> int:
        return int(self.labels.size)

    def inputs(self) -> np.ndarray:
        """The canaries' rows in the extended feature space (m, d + m)."""
        Z = np.zeros((self.m, self.d + self.m))
        Z[np.arange(self.m), self.d + np.arange(self.m)] = self.radius
        return Z

    def extend(self, X: np.ndarray) -> np.ndarray:
        """Real rows with ``m`` zero canary columns appended."""
        return np.hstack([np.asarray(X, dtype=np.float64), np.zeros((len(X), self.m))])


def make_canaries(d: int, m: int, *, seed: int, radius: float = DEFAULT_RADIUS) -> Canaries:
    """Draw ``m`` canaries' labels and inclusion bits (each included with probability ½)."""
    if m < 2:
        raise ParameterError(f"--canaries must be at least 2; got {m}")
    if not radius > 0:
        raise ParameterError(f"canary radius must be positive; got {radius}")
    rng = np.random.default_rng([int(seed), 0xCA9A])
    labels = rng.integers(0, 2, size=m)
    included = rng.random(m) < 0.5
    return Canaries(d=int(d), labels=labels, included=included, radius=float(radius))


def dirac_init(arch: Architecture, m: int, *, seed: int) -> np.ndarray:
    """Initial parameters of ``arch`` with ``m`` extra (canary) inputs: PyTorch's default
    U(−1/√fan_in, 1/√fan_in) for every weight and bias of the study's model, drawn from
    ``seed``, and zero weights on the canary columns (``W`` is stored out x in, row-major,
    as the engines store it)."""
    rng = np.random.default_rng([int(seed), 0x1417])
    parts = []
    sizes = arch.sizes
    for layer, (a, b) in enumerate(itertools.pairwise(sizes)):
        bound = 1.0 / np.sqrt(a)
        W = rng.uniform(-bound, bound, size=(b, a))
        if layer == 0:
            W = np.hstack([W, np.zeros((b, m))])
        parts += [W.ravel(), rng.uniform(-bound, bound, size=b)]
    return np.concatenate(parts)


@dataclass
class AuditRun:
    """One audited training run: its privacy setting, the canaries' scores and inclusion
    bits, and the bound."""

    setting: PrivacySetting
    scores: np.ndarray
    included: np.ndarray
    bound: AuditBound

    def to_dict(self) -> dict:
        st = self.setting
        return {
            "privacy": st.label,
            "epsilon": st.epsilon,
            "epsilon_spent": st.epsilon_spent,
            "noise_multiplier": st.noise_multiplier,
            "sample_rate": st.sample_rate,
            "steps": st.steps,
            "n_public": st.n,
            **self.bound.to_dict(),
        }


def audit_runs(
    X: np.ndarray,
    y: np.ndarray,
    *,
    arch: Architecture,
    levels: Sequence[float | str | None],
    canaries: int,
    training: TrainingSettings,
    seed: int = 0,
    radius: float = DEFAULT_RADIUS,
    confidence: float = 0.95,
    threads: int | None = None,
) -> list[AuditRun]:
    """Train one run per privacy level (``None``, ``"sigma0"`` or a target ε) on all of
    ``(X, y)`` plus the included canaries, and bound ε from the canaries' scores.

    Every level uses the same canaries and inclusion bits, and the same run seed.
    """
    N, d = X.shape
    can = make_canaries(d, canaries, seed=seed, radius=radius)
    n_public = N + can.m // 2
    settings = [plan_setting(lv, n=n_public, training=training) for lv in levels]
    ext = Architecture((d + can.m, *arch.sizes[1:]))
    Xt = np.vstack([can.extend(X), can.inputs()[can.included]])
    yt = np.concatenate([np.asarray(y, dtype=np.int64), can.labels[can.included]])
    run_seed = model_seed(seed, 0, 0xA0D1)
    init = dirac_init(arch, can.m, seed=run_seed)
    engine = FastEngine()
    jobs = [TrainJob(Xt, yt, ext, st.config(run_seed, training)) for st in settings]
    models = engine.train(jobs, threads=threads, init_params=np.tile(init, (len(jobs), 1)))
    Xc = can.inputs()
    zero = np.zeros_like(Xc)
    out = []
    for st, mdl in zip(settings, models):
        s = logit_confidence(mdl.logits(Xc), can.labels) - logit_confidence(
            mdl.logits(zero), can.labels
        )
        s = np.nan_to_num(s, nan=0.0, posinf=1e300, neginf=-1e300)
        delta = training.delta
        bound = audit_scores(s, can.included, delta=delta, confidence=confidence)
        out.append(AuditRun(setting=st, scores=s, included=can.included, bound=bound))
    return out
