"""The persistent calibration cache: a small SQLite file in the user's cache folder.

Calibrating σ for a target ε costs between a fraction of a second (PLD) and seconds (PRV);
the answer depends only on public numbers (accountant and its version, ε, δ, q, steps), so
it is computed once per machine and kept in ``$IMBALANCED_DP_CACHE_DIR`` (default
``$XDG_CACHE_HOME/imbalanced-dp``, i.e. ``~/.cache/imbalanced-dp``) as
``calibrations.sqlite``. Entries are keyed by the accountant's library version and the
search's (:data:`SEARCH_VERSION`), so a new accountant or search never reuses an old
answer. ``IMBALANCED_DP_CACHE_DIR=off`` disables the file
(calibrations are then kept in memory for the process only). A cache that cannot be read
or written (a read-only home, a corrupt file) is skipped silently: it only ever saves time.

The file holds nothing private: every key and value is a public constant of a run.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

#: The accountant of a calibration when none is named (see ``_accounting.ACCOUNTANTS``).
_DEFAULT = "pld"


@lru_cache(maxsize=8)
def accountant_version(accountant: str = _DEFAULT) -> str:
    """The library and version computing ``accountant``'s epsilon (``"dp-accounting
    0.6.0"``, ``"opacus 1.6.0"``), from the installed metadata (nothing is imported)."""
    from importlib.metadata import version

    lib = "dp-accounting" if accountant == "pld" else "opacus"
    return f"{lib} {version(lib)}"


#: Version of the noise search (``_accounting._calibrate``). Any σ it returns spends at most
#: the target, but two versions may return different σ within the tolerance; cached answers
#: are keyed by it so that a run calibrates the same everywhere, cache or not.
SEARCH_VERSION = 2


def calibration_version(accountant: str = _DEFAULT) -> str:
    """What a cached calibration was made by: the accountant's library and version and the
    version of the search (``"dp-accounting 0.6.0; search 2"``)."""
    return f"{accountant_version(accountant)}; search {SEARCH_VERSION}"


@dataclass(frozen=True)
class CalibrationKey:
    """What a noise calibration depends on: a Poisson-subsampled Gaussian mechanism run for
    ``steps`` steps at ``sample_rate`` must spend at most ``epsilon`` at ``delta`` by
    ``accountant``. Every field is public (fixed before any private data is touched)."""

    accountant: str
    epsilon: float
    delta: float
    sample_rate: float
    steps: int

    def __post_init__(self) -> None:
        # normalise types so that equal settings give equal (hashable) keys
        object.__setattr__(self, "epsilon", float(self.epsilon))
        object.__setattr__(self, "delta", float(self.delta))
        object.__setattr__(self, "sample_rate", float(self.sample_rate))
        object.__setattr__(self, "steps", int(self.steps))


@dataclass(frozen=True)
class Calibration:
    """The calibrated noise multiplier of a key and the epsilon it spends."""

    noise_multiplier: float
    epsilon_spent: float


class CalibrationCache(Protocol):
    """Where calibrations are kept between runs (a dict-like memory cache, the results
    store, a file in the user's cache folder)."""

    def get(self, key: CalibrationKey) -> Calibration | None: ...

    def put(self, key: CalibrationKey, value: Calibration) -> None: ...


class MemoryCache:
    """A calibration cache in a plain dict (what batches carry to their workers)."""

    def __init__(self, items: dict | None = None) -> None:
        self.items: dict[CalibrationKey, Calibration] = dict(items or {})

    def get(self, key: CalibrationKey) -> Calibration | None:
        return self.items.get(key)

    def put(self, key: CalibrationKey, value: Calibration) -> None:
        self.items[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self.items

    def __len__(self) -> int:
        return len(self.items)


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
            calibration_version(key.accountant),
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
