"""The training settings every entry point takes, each checked in one place.

A run spec, a study spec, the command line, the estimator and the attacks all accept
epochs, a batch size, a learning rate, a clip bound, ε, δ, fractions and seeds; they all
call :func:`check_setting`, so a setting means the same and is refused with the same words
everywhere. Callers that speak another dialect (a study spec's key names, scikit-learn's
"The 'x' parameter of ... must be ...") keep their wording and reuse
:attr:`Setting.expected`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .exceptions import ParameterError


@dataclass(frozen=True)
class Setting:
    """A numeric setting: integer or real, with a lower (and optionally an upper) bound."""

    name: str
    label: str
    integer: bool = False
    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = True

    @property
    def expected(self) -> str:
        """What is expected, in scikit-learn's words (``"an int in the range [1, inf)"``)."""
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        kind = "an int" if self.integer else "a float"
        return f"{kind} in the range {left}{lo}, {hi}{right}"

    def problem(self, value: object) -> str | None:
        """Why ``value`` is not acceptable, in plain words, or ``None``."""
        if self.high is not None:
            rule = f"must be in {self.interval}"
        elif self.low == 0 and self.low_open:
            rule = "must be a positive number"
        elif self.integer and self.low == 0:
            rule = "must be a non-negative integer"
        elif self.integer:
            rule = f"must be at least {self.low:g}"
        else:  # pragma: no cover - every setting has one of the rules above
            rule = "must be a number"
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return "must be a whole number" if self.integer else rule
        v = float(value)
        if not math.isfinite(v):
            return "must be a whole number" if self.integer else rule
        if self.integer and not v.is_integer():
            return "must be a whole number"
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return rule
        if self.high is not None and (v >= self.high if self.high_open else v > self.high):
            return rule
        return None

    @property
    def interval(self) -> str:
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"{left}{self.low:g}, {self.high:g}{right}"

    def check(self, value: object, *, label: str | None = None):
        """``value`` as an int or a float; :class:`~imbalanced_dp.exceptions.ParameterError`
        naming the setting, the rule and the value otherwise."""
        why = self.problem(value)
        if why is not None:
            raise ParameterError(f"{label or self.label} {why}; got {value!r}")
        return int(value) if self.integer else float(value)


#: Every setting, by name.
SETTINGS: dict[str, Setting] = {
    s.name: s
    for s in (
        Setting("epochs", "epochs", integer=True, low=1),
        Setting("batch_size", "batch size", integer=True, low=1),
        Setting("lr", "learning rate", low=0, low_open=True),
        Setting("clip", "clip bound C", low=0, low_open=True),
        Setting("epsilon", "epsilon", low=0, low_open=True),
        Setting("delta", "delta", low=0, low_open=True, high=1),
        Setting("test_fraction", "test fraction", low=0, low_open=True, high=1),
        Setting("minority_fraction", "minority fraction", low=0, low_open=True, high=1),
        Setting("seed", "seed", integer=True, low=0),
        Setting("seeds", "the number of seeds", integer=True, low=1),
        Setting("workers", "workers", integer=True, low=1),
        Setting("share", "a share of the budget", low=0, low_open=True, high=1),
    )
}


def check_setting(name: str, value: object, *, label: str | None = None):
    """Check ``value`` against the rule of setting ``name`` (see :data:`SETTINGS`).

    >>> check_setting("epochs", 500)
    500
    >>> check_setting("lr", 0)
    Traceback (most recent call last):
    ...
    imbalanced_dp.exceptions.ParameterError: learning rate must be a positive number; got 0
    """
    return SETTINGS[name].check(value, label=label)
