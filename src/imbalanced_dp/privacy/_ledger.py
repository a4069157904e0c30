"""The privacy ledger: what a run's epsilon covers, and what it does not."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

NOISE_NOTE = (
    "Gaussian noise comes from a floating-point sampler, as in Opacus without secure_mode; "
    "it is not hardened against floating-point attacks on the noise"
)
HYPERPARAMETER_NOTE = (
    "hyperparameters (architecture, learning rate, epochs, batch size, clip bound) are fixed "
    "by the protocol in advance; any tuning of them on this data would spend privacy beyond "
    "epsilon"
)
SPLIT_NOTE = (
    "epsilon protects the training rows only; test rows are used in the clear for evaluation"
)
#: Adjacency of every private run (PRIVACY.md rule 12), with the public n filled in.
ADJACENCY = "add or remove one record; n public"
ADJACENCY_NOTE = (
    "adjacency: datasets that differ by adding or removing one training record. The number "
    "of training rows, n = {n}, is treated as public: the sample rate and the expected batch "
    "size (the divisor of the noisy sum) are computed from it before training, so the "
    "mechanism is the same with or without any one record"
)
#: not_covered entry of every private run: n is released as a public number.
PUBLIC_N_NOTE = (
    "the number of training rows (n = {n}) is released in the clear and treated as public; "
    "epsilon does not protect it"
)
SECRET_NOISE = "secret"
RESEARCH_NOISE = "research"
SECRET_NOTE = (
    "noise: sampling and Gaussian noise come from a 64-bit key drawn from the operating "
    "system's entropy when training starts; the key is never stored, printed or pickled, so "
    "the training cannot be replayed from anything the run releases"
)
RESEARCH_NOTE = (
    "research mode: sampling and noise derive from the seed ({seed}) and this run's whole "
    "setting, so the run is reproducible bit for bit on the same machine and library "
    "versions; the guarantee assumes the seed stays secret (anyone who knows it can replay "
    "training with and without a record). Runs of one seed with different settings (another "
    "epsilon, mitigation or imbalance) use independent noise streams, so releasing them "
    "together composes as independent mechanisms"
)


@dataclass
class PrivacyLedger:
    """Everything needed to check a run's privacy claim.

    ``privacy`` is ``"none"`` for a non-private run, whose epsilon fields are ``None``.
    ``not_covered`` lists, in plain words, what was fitted on or read from private data
    outside the mechanism and is therefore not protected by epsilon (PRIVACY.md rules 8 and
    11). ``components`` lists every private query of the run: its mechanism, sampling,
    sensitivity, noise and share of the budget (PRIVACY.md rule 10); ``composition`` says how
    they were composed into ``epsilon_spent``. ``adjacency`` states the neighbouring relation
    of the guarantee and ``noise_source`` whether the noise is secret or reproducible
    (research mode). ``selection`` is set for a privately tuned model only: the private
    search's theorem, its parameters, the candidates' RDP curve and the conversion
    (:meth:`~imbalanced_dp.privacy.SelectionPlan.to_dict`); it is left out of
    :meth:`to_dict` otherwise.
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
    adjacency: str | None = None
    noise_source: str | None = None
    effective_noise_multiplier: float | None = None
    composition: str | None = None
    selection: dict | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        if d["selection"] is None:
            del d["selection"]  # (the ledgers of fixed runs stay as they were)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PrivacyLedger:
        """Read a ledger written by this or an earlier version (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
