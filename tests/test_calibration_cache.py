"""The persistent calibration cache (issue 17, item 1): a calibration is computed once per
machine, keyed by everything it depends on (the accountant's version and the search's), and
a cache that cannot be used only costs time."""

from __future__ import annotations

import pytest

from imbalanced_dp.privacy import (
    Calibration,
    CalibrationKey,
    FileCache,
    _accounting,
    _cache,
    calibration_version,
    epsilon_spent,
)
from imbalanced_dp.privacy._accounting import calibrate

KEY = CalibrationKey("pld", 2.0, 1e-4, 0.1, 500)


def _no_accountant(monkeypatch):
    """Make any accountant evaluation fail: what is returned must come from a cache."""

    def boom(*a, **k):
        raise AssertionError("the accountant was asked")

    _accounting._calibrate.cache_clear()
    _accounting._epsilon.cache_clear()
    monkeypatch.setattr(_accounting, "_calibrate", boom)
    monkeypatch.setattr(_accounting, "_epsilon", boom)


def test_a_calibration_is_kept_on_disk_and_reused(tmp_path, monkeypatch):
    file = FileCache(tmp_path / "calibrations.sqlite")
    first = calibrate(KEY, cache=file)
    # the accountant agrees with what is stored
    eps = epsilon_spent(
        noise_multiplier=first.noise_multiplier, sample_rate=0.1, steps=500, delta=1e-4,
        accountant="pld",
    )  # fmt: skip
    assert eps == pytest.approx(first.epsilon_spent, rel=1e-12) and eps <= 2.0
    _no_accountant(monkeypatch)
    again = calibrate(KEY, cache=FileCache(tmp_path / "calibrations.sqlite"))  # a new process
    assert again == first


def test_a_new_search_or_accountant_version_never_reuses_an_old_answer(tmp_path, monkeypatch):
    file = FileCache(tmp_path / "calibrations.sqlite")
    file.put(KEY, Calibration(3.0, 1.5))
    assert file.get(KEY) == Calibration(3.0, 1.5)
    assert "search" in calibration_version("pld")
    monkeypatch.setattr(_cache, "SEARCH_VERSION", _cache.SEARCH_VERSION + 1)
    assert file.get(KEY) is None
    monkeypatch.undo()
    _cache.accountant_version.cache_clear()
    monkeypatch.setattr(_cache, "accountant_version", lambda accountant="pld": "dp-accounting 9")
    assert file.get(KEY) is None


def test_an_unusable_cache_only_costs_time(tmp_path):
    bad = tmp_path / "calibrations.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    got = calibrate(KEY, cache=FileCache(bad))
    assert got.epsilon_spent <= 2.0
    # a folder where the file should be
    (tmp_path / "dir.sqlite").mkdir()
    assert calibrate(KEY, cache=FileCache(tmp_path / "dir.sqlite")) == got


def test_the_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("IMBALANCED_DP_CACHE_DIR", "off")
    assert _cache.cache_dir() is None
    monkeypatch.setenv("IMBALANCED_DP_CACHE_DIR", str(tmp_path / "c"))
    assert _cache.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("IMBALANCED_DP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _cache.cache_dir() == tmp_path / "xdg" / "imbalanced-dp"


def test_the_rdp_bracket_keeps_dp_accountings_log_off_the_screen(caplog):
    # At q = 0.1, sigma = 0.74 dp-accounting cannot converge at the orders 1.1-1.6 and logs
    # one absl warning for each (it drops those orders; the bound stays valid). The PLD
    # search uses this bound only as a bracket: a user's first calibration once printed
    # 48 such lines (CI, reproduce with a cold cache).
    import logging

    _accounting._epsilon.cache_clear()
    before = logging.getLogger("absl").level
    with caplog.at_level(logging.DEBUG):
        eps = _accounting._epsilon(0.740026, 0.1, 50, 1e-5, _accounting._DP_RDP)
    assert eps > 0
    assert not [r for r in caplog.records if r.name == "absl" and r.levelno >= logging.WARNING]
    assert logging.getLogger("absl").level == before  # the user's logging is left as it was
