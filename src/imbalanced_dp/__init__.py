"""imbalanced-dp: how much differential privacy can a diagnostic model on imbalanced patient
data afford, and who pays for it."""

__version__ = "0.1.0"
