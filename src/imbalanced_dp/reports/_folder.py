"""Report folders: written whole into a fresh temporary folder, then swapped in.

A report is built in a hidden sibling ``.NAME.tmp-PID-XXXX`` of its folder and renamed to
``NAME`` only when complete, with a small manifest (:data:`MANIFEST`) that marks it as
ours. So a killed report never leaves a half-written folder that looks complete, a new
report never keeps the previous one's stale figures, and a folder that is not a report of
ours is never replaced unless the caller says ``force``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..exceptions import ParameterError

#: The manifest file at the top of every report folder.
MANIFEST = "imbalanced-dp-report.json"
MANIFEST_FORMAT = "imbalanced-dp report"
MANIFEST_VERSION = 1
#: What reports written before the manifest existed hold at their top level.
_LEGACY_ENTRIES = {"report.html", "findings.md", "claims.csv", "tables", "figures"}
_SCRATCH = re.compile(r"^\.(?P<name>.+)\.(tmp|old)-(?P<pid>\d+)-[A-Za-z0-9_]+$")


class ReportFolderError(ParameterError):
    """A report cannot be written where asked (a file, or a folder that is not a report)."""


def default_report_dir(store_path: Path) -> Path:
    """The report folder of a store: ``<store stem>-report`` next to it, so that stores in
    one folder never share (and overwrite) a report."""
    p = Path(store_path)
    return p.parent / f"{p.stem}-report"


def is_report_folder(folder: Path) -> bool:
    """Whether ``folder`` holds a report of ours: its manifest, or (reports written before
    the manifest existed) a ``report.html`` with nothing but a report's entries beside it."""
    folder = Path(folder)
    try:
        m = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        if isinstance(m, dict) and m.get("format") == MANIFEST_FORMAT:
            return True
    except (OSError, ValueError):
        pass
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return False
    return "report.html" in names and names <= _LEGACY_ENTRIES


def check_report_dir(folder: Path, *, force: bool = False, flag: str = "-o/--out") -> None:
    """Refuse a report folder that is a file, or an existing non-empty folder that is not a
    report of ours (unless ``force``), before anything is computed or written."""
    folder = Path(folder)
    for parent in folder.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ReportFolderError(
                    f"{flag} {folder}: {parent} is a file, not a folder; choose another folder"
                )
            break
    if not folder.exists():
        return
    if not folder.is_dir():
        raise ReportFolderError(
            f"{flag} {folder} is a file, not a folder; choose another report folder"
        )
    if force or is_report_folder(folder) or not any(folder.iterdir()):
        return
    raise ReportFolderError(
        f"{flag} {folder} exists and is not an imbalanced-dp report (it has no {MANIFEST}); "
        "a report replaces its folder whole: choose another folder, or pass --force to "
        "replace it"
    )


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def _clean_scratch(folder: Path) -> None:
    """Remove the scratch folders that killed reports of ``folder`` left behind."""
    try:
        entries = list(folder.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        m = _SCRATCH.match(entry.name)
        if m and m.group("name") == folder.name and not _alive(int(m.group("pid"))):
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def report_folder(folder: Path, *, force: bool = False, store: str = "") -> Iterator[Path]:
    """Yield a fresh scratch folder to build a report in; on success, write its manifest
    and swap it in for ``folder``. On any exception (or Ctrl-C) the scratch folder is
    removed and ``folder`` is left as it was."""
    folder = Path(folder)
    check_report_dir(folder, force=force)
    folder.parent.mkdir(parents=True, exist_ok=True)
    _clean_scratch(folder)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-{os.getpid()}-", dir=folder.parent))
    try:
        yield tmp
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        manifest = {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "store": store,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "files": files,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o777 & ~_umask())
        _swap(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap(new: Path, folder: Path) -> None:
    """Put ``new`` in place of ``folder``: the old one is renamed aside first, so at no
    moment does ``folder`` hold a mix of two reports."""
    if not folder.exists():
        os.replace(new, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-{os.getpid()}-", dir=folder.parent))
    os.rmdir(old)
    os.replace(folder, old)
    try:
        os.replace(new, folder)
    except BaseException:
        os.replace(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)
