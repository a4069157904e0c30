"""Imports on demand (issue 17): which heavy libraries a command loads, read from
``sys.modules`` after the command in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

HEAVY = (
    "torch",
    "opacus",
    "sklearn",
    "imblearn",
    "matplotlib",
    "dp_accounting",
    "prv_accountant",
    "ray",
    "skops",
)

_PROBE = """
import json, sys
from imbalanced_dp.cli._main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
heavy = {heavy!r}
print("@@" + json.dumps({{"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}}))
"""


def loaded_by(*argv: str, tmp_path) -> set[str]:
    """The heavy top-level packages in ``sys.modules`` after ``imbalanced-dp ARGV``, run in
    a fresh interpreter with an empty calibration cache (so a DP run calibrates)."""
    env = dict(os.environ)
    env["IMBALANCED_DP_CACHE_DIR"] = str(tmp_path / "cache")
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY), *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("@@")]
    assert line, proc.stdout + proc.stderr
    got = json.loads(line[-1][2:])
    assert got["code"] in (0, None), proc.stderr
    return set(got["loaded"])


@pytest.mark.parametrize(
    ("argv", "allowed"),
    [
        (("--help",), set()),
        (("run", "--help"), set()),
        (("datasets",), set()),
        (("datasets", "--json"), set()),
        (("run", "--dataset", "breast_cancer", "--non-private", "--epochs", "2"), set()),
        # a DP run with the fast engine calibrates with dp-accounting's PLD, nothing else
        (("run", "--dataset", "pima", "--epsilon", "2", "--epochs", "2"), {"dp_accounting"}),
        (
            ("run", "--dataset", "pima", "--epsilon", "2", "--epochs", "2", "--accountant", "rdp"),
            {"opacus", "torch"},  # Opacus's RDP accountant is Opacus
        ),
    ],
)
def test_a_command_imports_only_what_it_uses(argv, allowed, tmp_path):
    extra = loaded_by(*argv, tmp_path=tmp_path) - allowed
    assert extra == set(), f"imbalanced-dp {' '.join(argv)} imported {sorted(extra)}"


def test_the_opacus_engine_does_import_torch(tmp_path):
    """The probe sees imports at all: the Opacus engine needs PyTorch."""
    got = loaded_by(
        "run", "--dataset", "pima", "--epsilon", "2", "--epochs", "1", "--engine", "opacus",
        tmp_path=tmp_path,
    )  # fmt: skip
    assert {"torch", "opacus"} <= got


def test_a_report_with_its_figures_cached_loads_neither_matplotlib_nor_numba(tmp_path):
    """A report draws its figures in worker processes and, when they are in the cache,
    copies them: no matplotlib in the command's own process either way; and the report's
    code does not pull in the engines (numba) through the attack texts."""
    from imbalanced_dp.studies import ResultsStore
    from test_report_render import small_paper_study

    store_path = tmp_path / "s.sqlite"
    with ResultsStore(store_path) as store:
        small_paper_study(store)
    first = loaded_by("report", "--store", str(store_path), "--out", "a", tmp_path=tmp_path)
    assert "matplotlib" not in first  # (the figures are drawn in worker processes)
    assert list((tmp_path / "cache" / "figures").glob("*.png"))  # drawn and cached
    probe = _PROBE.format(heavy=(*HEAVY, "numba"))
    env = dict(os.environ, IMBALANCED_DP_CACHE_DIR=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-c", probe, "report", "--store", str(store_path), "--out", "b"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    got = json.loads([x for x in proc.stdout.splitlines() if x.startswith("@@")][-1][2:])
    assert got["code"] in (0, None), proc.stderr
    assert set(got["loaded"]) == set(), got["loaded"]
