"""The small exception hierarchy of imbalanced-dp.

Every error caused by what a user gave (a table, a parameter, a study spec) subclasses
:class:`ImbalancedDPError`, itself a :class:`ValueError`. Its message names what was given and
what is expected, on one line; the command line turns it into that line on stderr and exit
code 2, never a traceback.
"""

from __future__ import annotations


class ImbalancedDPError(ValueError):
    """Base class of the errors caused by bad input."""


class DataError(ImbalancedDPError):
    """A dataset or user table cannot be used as given."""


class ParameterError(ImbalancedDPError):
    """A training, privacy or command parameter is out of its range."""


class PrivacyError(ParameterError):
    """A setting would make the reported privacy guarantee untrue (docs/privacy.md)."""


class SpecError(ImbalancedDPError):
    """A study specification is malformed."""


class StoreError(ImbalancedDPError):
    """A results store cannot be used (wrong file, incompatible schema)."""


class StudyInterrupted(Exception):
    """A sweep was stopped by Ctrl-C or SIGTERM after what had finished was stored.

    ``exit_code`` is the shell's convention: 130 for Ctrl-C, 143 for SIGTERM. Not a
    :class:`ImbalancedDPError`: nothing was wrong with the input."""

    def __init__(self, done: int, total: int, *, signum: int = 2) -> None:
        import signal

        name = "terminated" if signum == signal.SIGTERM else "interrupted"
        super().__init__(f"{name} after {done} of {total} runs")
        self.done = done
        self.total = total
        self.signum = signum
        self.exit_code = 128 + int(signum)


class TrainingError(ImbalancedDPError):
    """A run could not give a usable model (its predictions are not finite): the message
    says which setting or column to change."""


class DataWarning(UserWarning):
    """A table can be used, but something about it deserves a look (a column that looks
    like an identifier, a positive class that is not the minority)."""


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined for these labels (a ratio with no cases behind it, e.g. the
    specificity of a class when the truth has no other class) and was set to 0."""


__all__ = [
    "DataError",
    "DataWarning",
    "ImbalancedDPError",
    "ParameterError",
    "PrivacyError",
    "SpecError",
    "StoreError",
    "StudyInterrupted",
    "TrainingError",
    "UndefinedMetricWarning",
]
