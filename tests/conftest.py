"""Shared fixtures. Tests never touch ../shared or the network."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# numba compiles once per machine (cached); keep worker pools small on CI's two cores.
os.environ.setdefault("IMBALANCED_DP_THREADS", "2")
# Calibrations are cached in a folder of this test session, never in the user's cache.
if "IMBALANCED_DP_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="imbalanced-dp-cache-")
    os.environ["IMBALANCED_DP_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)  # nothing left behind


@pytest.fixture
def tmp_store(tmp_path):
    from imbalanced_dp.studies import ResultsStore

    store = ResultsStore(tmp_path / "results.sqlite")
    yield store
    store.close()


# ----------------------------------------------------------------------------- user tables


def small_table(n_neg: int = 40, n_pos: int = 20, *, seed: int = 0) -> pd.DataFrame:
    """A clean numeric table: features f1, f2, f3 and a 0/1 target y, rows interleaved."""
    rng = np.random.default_rng(seed)
    n = n_neg + n_pos
    y = np.array([0] * n_neg + [1] * n_pos)
    y = y[rng.permutation(n)]
    return pd.DataFrame(
        {
            "f1": rng.normal(size=n) + y,
            "f2": rng.normal(size=n),
            "f3": rng.integers(0, 5, size=n),
            "y": y,
        }
    )


@pytest.fixture
def make_table():
    """:func:`small_table`, for tests."""
    return small_table


@pytest.fixture
def good_csv(tmp_path) -> Path:
    path = tmp_path / "good.csv"
    small_table().to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class BadTable:
    """A table that ``load_csv`` (and ``imbalanced-dp run --csv``) must refuse."""

    path: Path
    target: str
    positive: str | None
    fragments: tuple[str, ...]  # what the one-line message must say


def _write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _make_bad_table(kind: str, d: Path) -> BadTable:
    t = small_table()
    if kind == "missing file":
        return BadTable(
            d / "nowhere.csv", "y", None, ("cannot read", "nowhere.csv", "no such file")
        )
    if kind == "directory":
        sub = d / "folder.csv"
        sub.mkdir()
        return BadTable(sub, "y", None, ("cannot read", "directory"))
    if kind == "empty file":
        return BadTable(_write(d / "empty.csv", ""), "y", None, ("empty.csv is empty",))
    if kind == "blank file":
        return BadTable(_write(d / "blank.csv", "  \n\n \n"), "y", None, ("is empty",))
    if kind == "header only":
        return BadTable(_write(d / "head.csv", "f1,f2,y\n"), "y", None, ("no data rows",))
    if kind == "not utf-8":
        raw = b"f1,f2,y\n" + "caf\u00e9,1,0\n".encode("latin-1") + b"1,2,1\n"
        return BadTable(_write(d / "latin.csv", raw), "y", None, ("not UTF-8",))
    if kind == "duplicate columns":
        dup = t.rename(columns={"f2": "f1"})
        dup.to_csv(d / "dup.csv", index=False)
        return BadTable(d / "dup.csv", "y", None, ("duplicate column names: f1", "rename"))
    if kind == "unnamed column":
        t.to_csv(d / "indexed.csv", index=True)  # pandas' default: an unnamed row index
        return BadTable(d / "indexed.csv", "y", None, ("column 1", "no name"))
    if kind == "rows longer than header":
        text = "f1,f2,y\n" + "".join(f"{i},{i * 0.5},{i % 7},{i % 3 == 0:d}\n" for i in range(40))
        return BadTable(_write(d / "long.csv", text), "y", None, ("more fields", "3 columns"))
    if kind == "ragged row":
        text = "f1,f2,y\n" + "".join(f"{i},{i * 0.5},{i % 3 == 0:d}\n" for i in range(40))
        text += "1,2,0,9\n"
        return BadTable(_write(d / "ragged.csv", text), "y", None, ("not a well-formed CSV",))
    if kind == "target absent":
        t.to_csv(d / "t.csv", index=False)
        return BadTable(
            d / "t.csv", "Outcome", None, ("'Outcome' is not in", "its columns are f1, f2, f3, y")
        )
    if kind == "three classes":
        t["y"] = np.arange(len(t)) % 3
        t.to_csv(d / "t.csv", index=False)
        return BadTable(d / "t.csv", "y", None, ("3 classes", "'0', '1', '2'", "exactly two"))
    if kind == "one class":
        t["y"] = "healthy"
        t.to_csv(d / "t.csv", index=False)
        return BadTable(d / "t.csv", "y", None, ("has 1 class ('healthy')", "exactly two"))
    if kind == "positive absent":
        t["y"] = np.where(t["y"] == 1, "sick", "healthy")
        t.to_csv(d / "t.csv", index=False)
        return BadTable(
            d / "t.csv", "y", "ill", ("--positive 'ill'", "its values are 'healthy', 'sick'")
        )
    if kind == "target missing values":
        t["y"] = t["y"].astype(float)
        t.loc[[3, 7], "y"] = np.nan
        t.to_csv(d / "t.csv", index=False)
        return BadTable(d / "t.csv", "y", None, ("2 missing values", "nothing is imputed"))
    if kind == "no features":
        t[["y"]].to_csv(d / "t.csv", index=False)
        return BadTable(d / "t.csv", "y", None, ("no feature columns",))
    if kind == "non-numeric features":
        t["colour"] = "red"
        t["city"] = np.where(t["y"] == 1, "Oslo", "Lima")
        t.to_csv(d / "t.csv", index=False)
        return BadTable(d / "t.csv", "y", None, ("non-numeric", "colour, city", "encode"))
    if kind == "nan and inf":
        t["f1"] = t["f1"].astype(float)
        t["f3"] = t["f3"].astype(float)
        t.loc[[1, 2], "f1"] = np.nan
        t.loc[5, "f3"] = np.inf
        t.loc[6, "f3"] = -np.inf
        t.loc[8, "f3"] = np.nan
        t.to_csv(d / "t.csv", index=False)
        return BadTable(
            d / "t.csv",
            "y",
            None,
            ("f1 (2 missing)", "f3 (1 missing, 2 infinite)", "impute"),
        )
    if kind == "values that overflow":
        # finite, but standardising it overflows float64 (issue 16 item 4)
        t["f2"] = t["f2"].astype(float)
        t.loc[3, "f2"] = 1e300
        t.to_csv(d / "t.csv", index=False)
        return BadTable(
            d / "t.csv", "y", None, ("values too large to standardise", "f2 (largest", "1e+300")
        )
    if kind == "semicolon separator":
        t.to_csv(d / "t.csv", index=False, sep=";")
        return BadTable(
            d / "t.csv", "y", None, ("read as a single column", "contains ';'", "--sep ';'")
        )
    if kind == "tab separator":
        t.to_csv(d / "t.tsv", index=False, sep="\t")
        return BadTable(d / "t.tsv", "y", None, ("contains a tab", "--sep '\\t'"))
    if kind == "broken gzip":
        return BadTable(
            _write(d / "t.csv.gz", b"\x1f\x8b\x08\x00garbage"),
            "y",
            None,
            ("not a valid gzip file",),
        )
    if kind == "too few of a class":
        small_table(50, 4).to_csv(d / "t.csv", index=False)
        return BadTable(d / "t.csv", "y", None, ("class '1' has 4 rows", "at least 5"))
    raise AssertionError(kind)


BAD_TABLE_KINDS = (
    "missing file",
    "directory",
    "empty file",
    "blank file",
    "header only",
    "not utf-8",
    "duplicate columns",
    "unnamed column",
    "rows longer than header",
    "ragged row",
    "target absent",
    "three classes",
    "one class",
    "positive absent",
    "target missing values",
    "no features",
    "non-numeric features",
    "nan and inf",
    "values that overflow",
    "semicolon separator",
    "tab separator",
    "broken gzip",
    "too few of a class",
)


@pytest.fixture(params=BAD_TABLE_KINDS)
def bad_table(request, tmp_path) -> BadTable:
    """Every kind of table that must be refused, one per test instance."""
    d = tmp_path / "tables"
    d.mkdir()
    return _make_bad_table(request.param, d)


# tests/reproduce_fingerprint.py is imported by the fixture test and its generator script
sys.path.insert(0, str(Path(__file__).parent))
