"""The privacy ledger: what a run's epsilon covers, and what it does not."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

NOISE_NOTE = (
    "Gaussian noise comes from a floating-point sampler, as in Opacus without secure_mode; "
    "it is not hardened against floating-point attacks on the noise"
)
PUBLIC_N_NOTE = (
    "the sample rate and the expected batch size derive from the number of training rows, "
    "treated as public (as Opacus does)"
)
HYPERPARAMETER_NOTE = (
    "hyperparameters (architecture, learning rate, epochs, batch size, clip bound) are fixed "
    "by the protocol in advance; any tuning of them on this data would spend privacy beyond "
    "epsilon"
)
SPLIT_NOTE = (
    "epsilon protects the training rows only; test rows are used in the clear for evaluation"
)


@dataclass
class PrivacyLedger:
    """Everything needed to check a run's privacy claim.

    ``privacy`` is ``"none"`` for a non-private run, whose epsilon fields are ``None``.
    ``not_covered`` lists, in plain words, what was fitted on private data outside the
    mechanism and is therefore not protected by epsilon (PRIVACY.md rule 8). ``components``
    lists every additional DP mechanism that spent part of the budget (mitigations).
    """

    privacy: str
    sampling: str
    steps: int
    clip: float | None = None
    accountant: str | None = None
    accountant_version: str | None = None
    noise_multiplier: float | None = None
    sample_rate: float | None = None
    expected_batch_size: int | None = None
    delta: float | None = None
    epsilon_target: float | None = None
    epsilon_spent: float | None = None
    not_covered: list[str] = field(default_factory=list)
    components: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PrivacyLedger:
        return cls(**d)
