"""Placeholder, replaced by the full report builder."""

from __future__ import annotations

from pathlib import Path


def build_report(store, out_dir: Path, *, run_ids=None, title: str = "") -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    p = out_dir / "report.html"
    p.write_text("<html><body>placeholder</body></html>")
    return p
