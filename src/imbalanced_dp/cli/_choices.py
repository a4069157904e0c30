"""Command-line choices taken from the library's registries, resolved only when a command
needs them (parsing or its --help), so that starting the command line imports nothing
heavy."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import click


class RegistryChoice(click.Choice):
    """A :class:`click.Choice` whose choices come from ``names()`` on first use."""

    def __init__(self, names: Callable[[], Sequence[str]], *, case_sensitive: bool = True):
        self._names = names
        self._resolved: tuple[str, ...] | None = None
        super().__init__((), case_sensitive=case_sensitive)

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        if self._resolved is None:
            self._resolved = tuple(self._names())
        return self._resolved

    @choices.setter
    def choices(self, value) -> None:  # click's __init__ assigns the empty tuple
        pass


def accountants() -> list[str]:
    from ..privacy import ACCOUNTANTS

    return list(ACCOUNTANTS)


def default_accountant() -> str:
    from ..privacy import DEFAULT_ACCOUNTANT

    return DEFAULT_ACCOUNTANT


def engines() -> list[str]:
    from ..engines import engine_names

    return engine_names()


def mitigations() -> list[str]:
    from ..mitigations import mitigation_names

    return mitigation_names()


def presets() -> list[str]:
    from ..studies import PRESETS

    return list(PRESETS)


def backends() -> list[str]:
    from ..studies import backend_names

    return backend_names()


def imbalance_methods() -> list[str]:
    from ..data import IMBALANCE_METHODS

    return list(IMBALANCE_METHODS)


ACCOUNTANT = RegistryChoice(accountants)
ENGINE = RegistryChoice(engines)
MITIGATION = RegistryChoice(mitigations)
PRESET = RegistryChoice(presets)
BACKEND = RegistryChoice(backends)
IMBALANCE_METHOD = RegistryChoice(imbalance_methods)
