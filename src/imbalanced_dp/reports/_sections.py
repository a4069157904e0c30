"""Extension point: other packages (attacks, mitigations) add sections to the report.

A provider is called with the store, the run ids the report covers (``None`` for all) and
the report folder, and returns zero or more :class:`Section` objects; the HTML builder
renders them after its own sections, in registration order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Section:
    """A titled, self-contained HTML fragment (images inline as data URIs) of the report."""

    id: str
    title: str
    html: str
    files: list[Path] = field(default_factory=list)  # figures/tables also written to disk


SectionProvider = Callable[..., list[Section]]
SECTION_PROVIDERS: list[SectionProvider] = []


def register_section_provider(fn: SectionProvider) -> SectionProvider:
    """Register ``fn(store, run_ids, out_dir) -> list[Section]`` (usable as a decorator)."""
    if fn not in SECTION_PROVIDERS:
        SECTION_PROVIDERS.append(fn)
    return fn
