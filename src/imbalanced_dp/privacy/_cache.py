"""The persistent calibration cache: a small SQLite file in the user's cache folder.

Calibrating σ for a target ε costs between a fraction of a second (PLD) and seconds (PRV);
the answer depends only on public numbers (accountant and its version, ε, δ, q, steps), so
it is computed once per machine and kept in ``$IMBALANCED_DP_CACHE_DIR`` (default
``$XDG_CACHE_HOME/imbalanced-dp``, i.e. ``~/.cache/imbalanced-dp``) as
``calibrations.sqlite``. Entries are keyed by the accountant's library version, so a new
accountant never reuses an old answer. ``IMBALANCED_DP_CACHE_DIR=off`` disables the file
(calibrations are then kept in memory for the process only). A cache that cannot be read
or written (a read-only home, a corrupt file) is skipped silently: it only ever saves time.

The file holds nothing private: every key and value is a public constant of a run.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from ._accounting import Calibration, CalibrationKey, MemoryCache, accountant_version

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calibrations (
    accountant TEXT NOT NULL,
    version TEXT NOT NULL,
    epsilon REAL NOT NULL,
    delta REAL NOT NULL,
    sample_rate REAL NOT NULL,
    steps INTEGER NOT NULL,
    sigma REAL NOT NULL,
    epsilon_spent REAL NOT NULL,
    PRIMARY KEY (accountant, version, epsilon, delta, sample_rate, steps)
);
"""


def cache_dir() -> Path | None:
    """The folder of the calibration cache, or ``None`` when it is switched off."""
    env = os.environ.get("IMBALANCED_DP_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "off", "0", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "imbalanced-dp"


class FileCache:
    """Calibrations in an SQLite file (safe for several processes at once)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._broken = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._broken:
            return None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=5, isolation_level=None)
            con.executescript(_SCHEMA)
            return con
        except (OSError, sqlite3.Error):
            self._broken = True
            return None

    @staticmethod
    def _key(key: CalibrationKey) -> tuple:
        return (
            key.accountant,
            accountant_version(key.accountant),
            key.epsilon,
            key.delta,
            key.sample_rate,
            key.steps,
        )

    def get(self, key: CalibrationKey) -> Calibration | None:
        con = self._connect()
        if con is None:
            return None
        try:
            row = con.execute(
                "SELECT sigma, epsilon_spent FROM calibrations WHERE accountant=? AND "
                "version=? AND epsilon=? AND delta=? AND sample_rate=? AND steps=?",
                self._key(key),
            ).fetchone()
        except sqlite3.Error:
            self._broken = True
            return None
        finally:
            con.close()
        return None if row is None else Calibration(float(row[0]), float(row[1]))

    def put(self, key: CalibrationKey, value: Calibration) -> None:
        con = self._connect()
        if con is None:
            return
        try:
            con.execute(
                "INSERT OR REPLACE INTO calibrations VALUES (?,?,?,?,?,?,?,?)",
                (*self._key(key), value.noise_multiplier, value.epsilon_spent),
            )
        except sqlite3.Error:
            self._broken = True
        finally:
            con.close()


class LayeredCache:
    """This process's memory in front of a file cache."""

    def __init__(self, file: FileCache | None) -> None:
        self.memory = MemoryCache()
        self.file = file

    def get(self, key: CalibrationKey) -> Calibration | None:
        got = self.memory.get(key)
        if got is None and self.file is not None:
            got = self.file.get(key)
            if got is not None:
                self.memory.put(key, got)
        return got

    def put(self, key: CalibrationKey, value: Calibration) -> None:
        self.memory.put(key, value)
        if self.file is not None:
            self.file.put(key, value)


_LOCK = threading.Lock()
_CACHES: dict[str | None, LayeredCache] = {}


def user_cache() -> LayeredCache:
    """The calibration cache of this user (see the module docstring)."""
    folder = cache_dir()
    name = None if folder is None else str(folder)
    with _LOCK:
        if name not in _CACHES:
            file = None if folder is None else FileCache(folder / "calibrations.sqlite")
            _CACHES[name] = LayeredCache(file)
        return _CACHES[name]
