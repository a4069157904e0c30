"""Command line of imbalanced-dp (argument parsing only)."""

import sys

from ._main import cli


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``imbalanced-dp`` command."""
    from ._main import main as _main

    sys.exit(_main(argv))


__all__ = ["cli", "main"]
