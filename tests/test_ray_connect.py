"""Ray failures (issue 16, item 6): connect first, within a time limit, with one line that
names the address and the fix, exit code 2, nothing written, no Ray logs on stderr.

The commands run in a fresh interpreter with a timeout: a hang fails the test instead of
the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from imbalanced_dp.studies._ray import _host_port
from test_cli import assert_bad_input, cli

pytest.importorskip("ray")

#: Runs the command line with Ray's search for local clusters switched off, so that `auto`
#: finds none even when another Ray instance runs on this machine.
NO_LOCAL_CLUSTER = """
import sys
import ray._private.services as services
def no_addresses():
    return []
no_addresses.cache_clear = lambda: None  # Ray's shutdown clears this cache
services.find_gcs_addresses = no_addresses
services.find_bootstrap_address = lambda temp_dir: None
from imbalanced_dp.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _study_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "IMBALANCED_DP_DEBUG")}
    return subprocess.run(
        [
            sys.executable, "-c", NO_LOCAL_CLUSTER, "study", "run", "--dataset", "pima",
            "--store", "s.sqlite", "--backend", "ray", *args,
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("address", "fragment"),
    [
        ("127.0.0.1:1", "Connection refused"),
        ("auto", "no running Ray cluster was found on this machine"),
    ],
)
def test_an_address_without_a_cluster_gives_one_line_and_writes_nothing(
    tmp_path, address, fragment
):
    proc = _study_run(tmp_path, "--address", address, "--connect-timeout", "5")
    assert_bad_input(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        f"cannot connect to a Ray cluster at {address}",
        fragment,
        "ray start --head",
        "drop --address",
    )
    assert list(tmp_path.iterdir()) == []  # no store, no report


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--address", "nonsense"], "is not a Ray address"),
        (["--address", "127.0.0.1:1", "--connect-timeout", "0"], "--connect-timeout must be"),
    ],
)
def test_bad_ray_options_are_refused(capsys, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(
        capsys, "study", "run", "--dataset", "pima", "--store", "s.sqlite", "--backend", "ray",
        *args,
    )  # fmt: skip
    assert_bad_input(code, out, err, fragment)
    assert list(tmp_path.iterdir()) == []


def test_address_needs_the_ray_backend(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "study", "run", "--dataset", "pima", "--address", "auto")
    assert_bad_input(code, out, err, "--address applies to --backend ray")
    assert list(tmp_path.iterdir()) == []


def test_connect_timeout_is_documented(capsys):
    code, out, _ = cli(capsys, "study", "run", "--help")
    assert code == 0
    assert "--connect-timeout" in out and "ray start --head" in out


def test_addresses_are_parsed():
    assert _host_port("127.0.0.1:6379") == ("127.0.0.1", 6379)
    assert _host_port("ray://head.example:10001") == ("head.example", 10001)
    assert _host_port("[::1]:6379") == ("::1", 6379)
    assert _host_port("nonsense") is None
