"""Drawing a report's figures (issue 17, item 3): deferred, drawn in worker processes,
cached by what they show; the same report whether drawn or copied from the cache."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imbalanced_dp.reports import build_report
from imbalanced_dp.reports._figures import class_distribution_figure
from imbalanced_dp.reports._render import FigureRenderer, Plot


def _dist(count0=500):
    return pd.DataFrame(
        {
            "dataset": ["pima", "pima"],
            "class": ["0", "1"],
            "name": ["non-diabetic", "diabetic"],
            "count": [count0, 268],
        }
    )


def small_paper_study(store) -> None:
    """Train the paper preset cut down to PIMA, no DP and ε = 2, two seeds, 2 epochs."""
    from imbalanced_dp.studies import preset, run_runs

    spec = preset("paper")
    spec.datasets = spec.datasets[:1]
    spec.privacy = [None, 2.0]
    spec.seeds = [0, 1]
    spec.epochs = 2
    run_runs(spec.expand(), store, study="paper", workers=1, quiet=True)


def test_a_plots_key_depends_on_its_data_only():
    a = Plot(class_distribution_figure, (_dist(),))
    assert a.key() == Plot(class_distribution_figure, (_dist(),)).key()
    assert a.key() != Plot(class_distribution_figure, (_dist(499),)).key()
    # and is the same in another interpreter (nothing process-specific enters it)
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_report_render import _dist\n"
        "from imbalanced_dp.reports._figures import class_distribution_figure\n"
        "from imbalanced_dp.reports._render import Plot\n"
        "print(Plot(class_distribution_figure, (_dist(),)).key())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == a.key()


def test_workers_draw_what_one_process_draws(tmp_path):
    plots = [Plot(class_distribution_figure, (_dist(400 + i),)) for i in range(3)]
    got = {}
    for workers in (1, 2):
        r = FigureRenderer(workers=workers, cache=False)
        tokens = [r.add(p, tmp_path / f"w{workers}", f"f{i}")[0] for i, p in enumerate(plots)]
        pngs = r.render()
        got[workers] = [pngs[t] for t in tokens]
        assert r.drawn == 3 and r.reused == 0
    assert got[1] == got[2]
    for i in range(3):
        assert (tmp_path / "w1" / f"f{i}.svg").read_bytes() == (
            tmp_path / "w2" / f"f{i}.svg"
        ).read_bytes()


def test_a_second_report_copies_its_figures_from_the_cache(tmp_store, tmp_path, monkeypatch):
    monkeypatch.setenv("IMBALANCED_DP_CACHE_DIR", str(tmp_path / "cache"))
    small_paper_study(tmp_store)
    seen = []
    real = FigureRenderer.render

    def spy(self):
        out = real(self)
        seen.append((self.drawn, self.reused))
        return out

    monkeypatch.setattr(FigureRenderer, "render", spy)
    build_report(tmp_store, tmp_path / "a")
    build_report(tmp_store, tmp_path / "b")
    (drawn, reused), (drawn2, reused2) = seen
    assert drawn > 0 and reused == 0
    assert drawn2 == 0 and reused2 == drawn
    figs = sorted(p.name for p in (tmp_path / "a" / "figures").iterdir())
    assert figs == sorted(p.name for p in (tmp_path / "b" / "figures").iterdir())
    for name in figs:
        assert (tmp_path / "a" / "figures" / name).read_bytes() == (
            tmp_path / "b" / "figures" / name
        ).read_bytes()
    html_a = (tmp_path / "a" / "report.html").read_text()
    assert "@@imbalanced-dp-figure" not in html_a
    assert html_a == (tmp_path / "b" / "report.html").read_text()
    assert np.sum([name.endswith(".png") for name in figs]) == drawn


def _marked_figure(marker: str, count0: int):
    """A figure that leaves a mark when it is drawn (in a worker process)."""
    Path(marker).write_text("drawn")
    return class_distribution_figure(_dist(count0))


def test_figures_are_drawn_while_the_report_is_still_being_built(tmp_path):
    """A figure starts in a worker as soon as it is added, not when render() is called."""
    import time

    marker = tmp_path / "mark"
    with FigureRenderer(workers=2, cache=False) as r:
        token, png, _ = r.add(Plot(_marked_figure, (str(marker), 450)), tmp_path, "f")
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists()  # drawn before anyone asked for the page's figures
        pngs = r.render()
    assert pngs[token] == png.read_bytes()
    assert r.drawn == 1


def test_a_failing_report_leaves_no_figure_worker(tmp_store, tmp_path, monkeypatch):
    import multiprocessing as mp

    from imbalanced_dp.reports import _build

    monkeypatch.setenv("IMBALANCED_DP_CACHE_DIR", str(tmp_path / "cache"))
    small_paper_study(tmp_store)
    started = []
    real = FigureRenderer.add

    def add(self, *a, **k):
        out = real(self, *a, **k)
        if self._pool is not None:
            started.extend(self._pool._processes.values())
        return out

    def broken(ctx):
        raise RuntimeError("a section failed")

    monkeypatch.setattr(FigureRenderer, "add", add)
    monkeypatch.setattr(_build, "_ledger_section", broken)  # after the figures are added
    with pytest.raises(RuntimeError, match="a section failed"):
        build_report(tmp_store, tmp_path / "out")
    assert started, "no figure was drawn in a worker"
    assert not any(p.is_alive() for p in started)
    assert not mp.active_children()
    assert not (tmp_path / "out").exists()  # nothing half-written is left
