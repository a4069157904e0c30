"""Shared fixtures. Tests never touch ../shared or the network."""

from __future__ import annotations

import os

import pytest

# numba compiles once per machine (cached); keep worker pools small on CI's two cores.
os.environ.setdefault("IMBALANCED_DP_THREADS", "2")


@pytest.fixture
def tmp_store(tmp_path):
    from imbalanced_dp.studies import ResultsStore

    store = ResultsStore(tmp_path / "results.sqlite")
    yield store
    store.close()
