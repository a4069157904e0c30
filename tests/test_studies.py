"""Studies: spec validation, controlled imbalance, the store under SIGKILL, resumption, the
Ray backend against the local one, and the aggregates against scipy."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from imbalanced_dp.data import load_dataset, make_imbalanced, prepare_split, stratified_split
from imbalanced_dp.exceptions import ParameterError, SpecError
from imbalanced_dp.studies import (
    DatasetRef,
    ResultsStore,
    RunSpec,
    load_spec,
    preset,
    run_runs,
    spec_from_dict,
)
from imbalanced_dp.studies._aggregate import (
    aggregate_metrics,
    cost_of_privacy,
    disparity_amplification,
    label_settings,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# ---------------------------------------------------------------- specs


def test_example_spec_loads_and_expands():
    spec = load_spec(EXAMPLES / "study.toml")
    runs = spec.expand()
    assert len(runs) == 1 * 3 * 4 * 5
    assert {r.minority_fraction for r in runs} == {None, 0.2, 0.1}
    assert {r.epsilon for r in runs} == {None, 8.0, 2.0, 1.0}


def test_presets():
    assert len(preset("paper").expand()) == 2 * 4 * 10
    assert len(preset("imbalance").expand()) == 2 * 4 * 4 * 10


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"datasets": ["pima"], "epsilons": [1]}, ["unknown", "'epsilons'", "privacy"]),
        ({"datasets": ["nope"]}, ["'datasets'", "nope", "pima"]),
        ({"datasets": []}, ["'datasets'", "non-empty"]),
        ({}, ["'datasets'", "required"]),
        ({"datasets": ["pima"], "privacy": ["none", -1]}, ["'privacy'", "positive", "-1"]),
        ({"datasets": ["pima"], "privacy": "none"}, ["'privacy'", "list"]),
        ({"datasets": ["pima"], "minority_fractions": [1.5]}, ["'minority_fractions'", "(0, 1)"]),
        ({"datasets": ["pima"], "seeds": 0}, ["'seeds'", "count"]),
        ({"datasets": ["pima"], "seeds": [1, 1]}, ["'seeds'", "distinct"]),
        ({"datasets": ["pima"], "delta": 2}, ["'delta'", "below 1"]),
        ({"datasets": ["pima"], "epochs": 2.5}, ["'epochs'", "integer"]),
        ({"datasets": ["pima"], "layers": [20, 0]}, ["'layers'", "positive integers"]),
        ({"datasets": ["pima"], "accountant": "gdp"}, ["'accountant'", "'prv'", "'rdp'"]),
        ({"datasets": ["pima"], "engine": "jax"}, ["'engine'", "'fast'"]),
        ({"datasets": ["pima"], "imbalance_method": "smote"}, ["'imbalance_method'", "smote"]),
        ({"datasets": [{"csv": "x.csv"}]}, ["'datasets'", "target"]),
        ({"datasets": ["pima"], "attacks": ["mia"]}, ["'attacks'", "'loss'"]),
    ],
)
def test_spec_validation_names_key_and_expectation(spec, words):
    with pytest.raises(SpecError) as info:
        spec_from_dict(spec)
    msg = str(info.value)
    for w in words:
        assert w in msg, (w, msg)


def test_spec_file_errors(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("datasets = [pima\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)
    rel = tmp_path / "rel.toml"
    rel.write_text('datasets = [{csv = "data.csv", target = "y"}]\n')
    spec = load_spec(rel)
    assert Path(spec.datasets[0].csv) == tmp_path / "data.csv"  # relative to the spec file


# ---------------------------------------------------------------- controlled imbalance


@pytest.mark.parametrize("fraction", [0.3, 0.2, 0.1, 0.05, 0.02])
def test_subsampling_gives_exact_class_counts(fraction):
    ds = load_dataset("pima")
    train, test = stratified_split(ds.y, seed=3)
    rows = make_imbalanced(train, ds.y, minority_fraction=fraction, seed=3)
    n0 = int((ds.y[train] == 0).sum())
    n1_nat = int((ds.y[train] == 1).sum())
    expected = max(1, min(n1_nat, round(fraction * n0 / (1 - fraction))))
    assert int((ds.y[rows] == 0).sum()) == n0  # majority untouched
    assert int((ds.y[rows] == 1).sum()) == expected
    assert set(rows) <= set(train)  # only training rows, without replacement
    assert len(set(rows)) == len(rows)
    split = prepare_split(ds, seed=3, minority_fraction=fraction)
    assert split.train_class_counts == (n0, expected)
    assert split.test_class_counts == tuple(np.bincount(ds.y[test]))  # natural test set
    assert split.minority_fraction == pytest.approx(expected / (n0 + expected))


def test_subsampling_refuses_to_raise_the_share_unless_asked():
    ds = load_dataset("pima")
    train, _ = stratified_split(ds.y, seed=0)
    with pytest.raises(ParameterError, match="undersample_majority"):
        make_imbalanced(train, ds.y, minority_fraction=0.5, seed=0)
    rows = make_imbalanced(
        train, ds.y, minority_fraction=0.5, seed=0, method="undersample_majority"
    )
    n1 = int((ds.y[train] == 1).sum())
    assert int((ds.y[rows] == 1).sum()) == n1
    assert int((ds.y[rows] == 0).sum()) == n1


def test_subsample_is_fixed_by_seed_and_shared_by_privacy_levels():
    ds = load_dataset("breast_cancer")
    a = prepare_split(ds, seed=5, minority_fraction=0.1)
    b = prepare_split(ds, seed=5, minority_fraction=0.1)
    c = prepare_split(ds, seed=6, minority_fraction=0.1)
    assert np.array_equal(a.train_rows, b.train_rows)
    assert not np.array_equal(a.train_rows, c.train_rows)


# ---------------------------------------------------------------- run ids and the store


def test_run_id_is_stable_and_sensitive():
    ref = DatasetRef(name="pima")
    fp = load_dataset("pima").fingerprint
    a = RunSpec(ref, seed=1, epsilon=2.0)
    assert a.run_id(fp) == RunSpec(ref, seed=1, epsilon=2.0, lr=0.01).run_id(fp)  # preset lr
    for other in (
        RunSpec(ref, seed=2, epsilon=2.0),
        RunSpec(ref, seed=1, epsilon=1.0),
        RunSpec(ref, seed=1, epsilon=2.0, clip=0.5),
        RunSpec(ref, seed=1, epsilon=2.0, minority_fraction=0.1),
        RunSpec(ref, seed=1, epsilon=2.0, engine="opacus"),
        RunSpec(ref, seed=1, epsilon=2.0, reproducible=True),
    ):
        assert other.run_id(fp) != a.run_id(fp)
    assert a.run_id(fp) != a.run_id("other data")
    # a non-private run does not depend on delta or the accountant
    b1 = RunSpec(ref, seed=1, epsilon=None, delta=1e-4)
    b2 = RunSpec(ref, seed=1, epsilon=None, delta=1e-5, accountant="rdp")
    assert b1.run_id(fp) == b2.run_id(fp)


def _tiny(seeds=2, privacy=(None, 2.0), epochs=3, engine="fast"):
    return [
        RunSpec(
            DatasetRef(name="pima"),
            seed=s,
            epsilon=e,
            epochs=epochs,
            engine=engine,
            reproducible=True,
        )
        for s in range(seeds)
        for e in privacy
    ]


def test_rerun_skips_stored_runs(tmp_path):
    store = ResultsStore(tmp_path / "s.sqlite")
    first = run_runs(_tiny(), store, workers=1, quiet=True)
    assert (first.done, first.skipped) == (4, 0)
    again = run_runs(_tiny(seeds=3), store, workers=1, quiet=True)
    assert (again.done, again.skipped) == (2, 4)
    assert len(store.done_ids()) == 6


class _FailingEngine:
    """An engine that fails when it trains (as a worker's out-of-memory would)."""

    name = "failing"
    batched = True
    relative_cost = 1.0
    clip_rules = ("standard",)
    devices = ("cpu",)

    def train(self, jobs, *, device="cpu", threads=None):
        raise RuntimeError("the accelerator caught fire")


def test_a_failing_batch_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from imbalanced_dp.engines import _base

    monkeypatch.setitem(_base._ENGINES, "failing", _FailingEngine)
    store = ResultsStore(tmp_path / "s.sqlite")
    specs = [
        *_tiny(seeds=1),
        RunSpec(DatasetRef(name="pima"), seed=0, epsilon=2.0, epochs=3, engine="failing"),
    ]
    out = run_runs(specs, store, workers=1, quiet=True)
    assert out.done == 2 and out.failed == 1
    assert "caught fire" in out.failures[0]
    failed = store.runs_frame(status="failed")
    assert len(failed) == 1 and "RuntimeError" in failed["error"].iloc[0]
    assert "Traceback" in failed["error"].iloc[0]  # an unexpected failure keeps its trace
    again = run_runs(specs, store, workers=1, quiet=True)  # failed runs are retried
    assert (again.skipped, again.failed) == (2, 1)


def test_a_mitigation_the_engine_cannot_run_is_refused_before_anything_runs(tmp_path):
    store = ResultsStore(tmp_path / "s.sqlite")
    spec = RunSpec(
        DatasetRef(name="pima"),
        seed=0,
        epsilon=2.0,
        epochs=3,
        engine="opacus",
        mitigation="dpsgd_f",
    )
    with pytest.raises(ParameterError, match="opacus engine implements standard"):
        run_runs([*_tiny(seeds=1), spec], store, workers=1, quiet=True)
    assert store.status_counts() == {}


def _consistent(path: Path) -> tuple[int, int]:
    con = sqlite3.connect(path)
    done = con.execute("SELECT COUNT(*) FROM runs WHERE status='done'").fetchone()[0]
    n_runs = con.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    orphans = con.execute(
        "SELECT COUNT(*) FROM class_metrics WHERE run_id NOT IN (SELECT run_id FROM runs)"
    ).fetchone()[0]
    orphans += con.execute(
        "SELECT COUNT(*) FROM predictions WHERE run_id NOT IN (SELECT run_id FROM runs)"
    ).fetchone()[0]
    assert orphans == 0
    per = con.execute(
        "SELECT r.run_id, (SELECT COUNT(*) FROM class_metrics m WHERE m.run_id=r.run_id), "
        "(SELECT COUNT(*) FROM predictions p WHERE p.run_id=r.run_id) FROM runs r "
        "WHERE status='done'"
    ).fetchall()
    for _, m, p in per:
        assert (m, p) == (3, 154)  # whole runs only: 2 classes + avg/total, 154 test rows
    dup = con.execute("SELECT COUNT(*) - COUNT(DISTINCT run_id) FROM runs").fetchone()[0]
    assert dup == 0
    con.close()
    return done, n_runs


#: Drivers started by the signal tests; whatever a failing test leaves running is killed.
_LAUNCHED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_driver_left_behind():
    yield
    while _LAUNCHED:
        p = _LAUNCHED.pop()
        if p.poll() is not None:
            continue
        try:
            os.killpg(p.pid, signal.SIGKILL)  # the driver leads its own session
        except (ProcessLookupError, PermissionError):
            p.kill()
        p.wait(timeout=60)


def _study_run_argv(spec, store, *, max_batch: int) -> list[str]:
    """``imbalanced-dp study run SPEC`` on 2 workers, ``max_batch`` runs per batch, no report."""
    return [
        sys.executable, "-m", "imbalanced_dp", "study", "run", str(spec), "--store", str(store),
        "--workers", "2", "--max-batch", str(max_batch), "--no-report",
    ]  # fmt: skip


def _as_in_a_terminal(argv: list[str]) -> list[str]:
    """``argv`` started the way a shell starts a foreground command: Ctrl-C (SIGINT) at its
    default action. A process started in the background of a script (``pytest … &``,
    ``nohup``) ignores SIGINT, every child inherits that, and Python then never raises
    KeyboardInterrupt: the Ctrl-C tests would wait on a driver that cannot hear them. The
    default action survives the exec, and the pid stays the driver's."""
    boot = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    return [sys.executable, "-c", boot, *argv]


def _children(pid: int) -> set[int]:
    """Every descendant process of ``pid`` (from /proc)."""
    out: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in out:
                    out.add(k)
                    todo.append(k)
    return out


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _paused_sweep(tmp_path: Path, *, after: int, new_session: bool = True):
    """A study run (2 workers) that pauses, with its workers alive, once ``after`` runs are
    stored: the driver writes a file and waits for a signal (a test hook; no clock race)."""
    spec = tmp_path / "s.toml"
    spec.write_text(
        'datasets = ["pima"]\nprivacy = ["none", 8, 2, 1]\nseeds = 12\nepochs = 30\n'
        'accountant = "rdp"\n'
    )
    store = tmp_path / "store.sqlite"
    marker = tmp_path / "paused"
    cmd = _study_run_argv(spec, store, max_batch=2)
    env = dict(
        os.environ,
        IMBALANCED_DP_TEST_PAUSE_AFTER=str(after),
        IMBALANCED_DP_TEST_PAUSE_FILE=str(marker),
    )
    proc = subprocess.Popen(
        _as_in_a_terminal(cmd),
        env=env,
        start_new_session=new_session,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _LAUNCHED.append(proc)
    deadline = time.monotonic() + 600  # a generous bound: only a hang reaches it
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sweep never paused"
        time.sleep(0.05)
    return proc, cmd, store


def _all_gone(pids: set[int], within: float = 10.0) -> set[int]:
    end = time.monotonic() + within
    alive = {p for p in pids if _alive(p)}
    while alive and time.monotonic() < end:
        time.sleep(0.1)
        alive = {p for p in alive if _alive(p)}
    return alive


@pytest.mark.slow
def test_sigkill_of_the_driver_leaves_no_worker_then_resume(tmp_path):
    proc, cmd, store = _paused_sweep(tmp_path, after=4)
    workers = _children(proc.pid)
    assert len(workers) >= 2  # two pool workers (and multiprocessing's resource tracker)
    os.kill(proc.pid, signal.SIGKILL)  # the driver only, as a user or the OOM killer does
    proc.communicate()
    assert _all_gone(workers) == set(), "workers outlived their driver"
    done_killed, _ = _consistent(store)
    assert 4 <= done_killed < 48
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert f"{48 - done_killed} runs trained, {done_killed} already stored" in res.stdout
    done_final, n_runs = _consistent(store)
    assert done_final == n_runs == 48


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "code", "word"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_sigterm_and_ctrl_c_store_what_finished_and_stop_the_workers(tmp_path, sig, code, word):
    proc, _, store = _paused_sweep(tmp_path, after=2)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    if sig == signal.SIGINT:
        os.killpg(proc.pid, sig)  # Ctrl-C reaches the whole process group
    else:
        proc.send_signal(sig)  # `kill PID`, `timeout`, a job scheduler
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "resume with:" in err and "study run" in err and word in err
    assert "Traceback" not in err
    assert _all_gone(workers) == set()
    done, _ = _consistent(store)
    assert done >= 2


@pytest.mark.slow
def test_ctrl_c_during_start_up_prints_no_worker_traceback(tmp_path):
    """A Ctrl-C while the workers are still importing reaches them too (the process group);
    they start with it blocked and then ignore it, so no traceback reaches the terminal."""
    spec = tmp_path / "s.toml"
    spec.write_text('datasets = ["pima"]\nprivacy = ["none"]\nseeds = 8\nepochs = 400\n')
    store = tmp_path / "store.sqlite"
    proc = subprocess.Popen(
        _as_in_a_terminal(_study_run_argv(spec, store, max_batch=1)),
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _LAUNCHED.append(proc)
    deadline = time.monotonic() + 600
    while len(_children(proc.pid)) < 2:  # the workers exist: they are starting up
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    workers = _children(proc.pid)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (130, 0), err  # 0 only if it had already finished
    assert "Traceback" not in err, err
    assert _all_gone(workers) == set()


@pytest.mark.slow
def test_ray_backend_gives_the_same_rows_as_local(tmp_path):
    pytest.importorskip("ray")
    specs = _tiny(seeds=2, privacy=(None, 2.0), epochs=5)
    a = ResultsStore(tmp_path / "local.sqlite")
    b = ResultsStore(tmp_path / "ray.sqlite")
    run_runs(specs, a, workers=2, quiet=True)
    run_runs(specs, b, backend="ray", workers=2, quiet=True)
    ra = a.results_frame().sort_values(["run_id", "class"]).reset_index(drop=True)
    rb = b.results_frame().sort_values(["run_id", "class"]).reset_index(drop=True)
    assert len(ra) == 12
    pd.testing.assert_frame_equal(ra, rb)
    pa = a.predictions_frame().sort_values(["run_id", "row"]).reset_index(drop=True)
    pb = b.predictions_frame().sort_values(["run_id", "row"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(pa, pb)


def test_local_pool_and_in_process_agree(tmp_path):
    specs = _tiny(seeds=2, epochs=4)
    a = ResultsStore(tmp_path / "one.sqlite")
    b = ResultsStore(tmp_path / "two.sqlite")
    run_runs(specs, a, workers=1, quiet=True)
    run_runs(specs, b, workers=2, quiet=True)
    ra = a.results_frame().sort_values(["run_id", "class"]).reset_index(drop=True)
    rb = b.results_frame().sort_values(["run_id", "class"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(ra, rb)


# ---------------------------------------------------------------- aggregates


def _frame(records):
    df = pd.DataFrame(records)
    return label_settings(df)


def _records(rng, n_seeds=8):
    rows = []
    for seed in range(n_seeds):
        for eps in (None, 1.0):
            for cls, base in (("0", 0.9), ("1", 0.6)):
                drop = 0.0 if eps is None else (0.05 if cls == "0" else 0.3)
                rec = base - drop + rng.normal(0, 0.03)
                rows.append(
                    dict(
                        run_id=f"r{seed}{eps}",
                        dataset="d",
                        minority_fraction_target=None,
                        epsilon_target=eps,
                        mitigation="none",
                        seed=seed,
                        **{"class": cls},
                        pre=rng.uniform(),
                        rec=rec,
                        spe=rng.uniform(),
                        f1=rng.uniform(),
                        geo=rng.uniform(),
                        iba=rng.uniform(),
                        sup=10,
                        accuracy=rng.uniform(),
                        balanced_accuracy=rng.uniform(),
                    )
                )
    return rows


def test_mean_ci_matches_scipy_t_interval():
    rng = np.random.default_rng(0)
    df = _frame(_records(rng))
    agg = aggregate_metrics(df)
    for (pr, cls), g in df.groupby(["privacy", "class"]):
        x = g["rec"].to_numpy()
        lo, hi = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        row = agg[(agg.privacy == pr) & (agg["class"] == cls) & (agg.metric == "rec")].iloc[0]
        assert row["n"] == len(x)
        assert row["low"] == pytest.approx(lo, abs=1e-12)
        assert row["high"] == pytest.approx(hi, abs=1e-12)
        assert row["std"] == pytest.approx(np.std(x, ddof=1))


def test_cost_of_privacy_and_disparity_amplification_are_paired():
    rng = np.random.default_rng(1)
    df = _frame(_records(rng))
    cost = cost_of_privacy(df)
    for cls, true_drop in (("0", 0.05), ("1", 0.3)):
        r = cost[(cost["class"] == cls) & (cost.metric == "rec")].iloc[0]
        a = df[(df.privacy == "none") & (df["class"] == cls)].sort_values("seed")["rec"]
        b = df[(df.privacy == "1") & (df["class"] == cls)].sort_values("seed")["rec"]
        ref = stats.ttest_rel(a.to_numpy(), b.to_numpy())
        assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert r["mean"] == pytest.approx((a.to_numpy() - b.to_numpy()).mean())
        assert r["low"] < true_drop < r["high"]
    amp = disparity_amplification(df)
    r = amp[amp.measure == "recall_gap"].iloc[0]
    assert r["low"] < 0.25 < r["high"]  # the gap widened by 0.3 - 0.05
    assert r["p_value"] < 1e-3
    # paired by seed: shuffling the seeds of one side changes the answer
    df2 = df.copy()
    m = df2.privacy == "1"
    df2.loc[m, "seed"] = (df2.loc[m, "seed"] + 3) % 8
    amp2 = disparity_amplification(df2)
    assert not math.isclose(amp2.iloc[0]["half_width"], r["half_width"])


# ---------------------------------------------------------------- never pool settings


def test_a_store_of_two_configurations_never_pools_them(tmp_path, capsys):
    """Issue: a spec edited and rerun under the same name, and a second study with other
    epochs, were pooled (n = 9 per "setting"). Now the edit is refused, the second study is
    stored apart, and every aggregate's n is the number of seeds of one configuration."""
    from imbalanced_dp.cli._main import main

    store = tmp_path / "store.sqlite"

    def spec(name, epochs, seeds):
        p = tmp_path / f"{name}-{epochs}-{seeds}.toml"
        p.write_text(
            f'name = "{name}"\ndatasets = ["pima"]\nprivacy = ["none", 2]\nseeds = {seeds}\n'
            f'epochs = {epochs}\naccountant = "rdp"\n'
        )
        return str(p)

    run = ["study", "run", "--store", str(store), "--workers", "1", "--no-report", "-q"]
    assert main([*run[:2], spec("a", 2, 3), *run[2:]]) == 0
    capsys.readouterr()
    # the same name with other epochs: refused, one line, nothing stored
    assert main([*run[:2], spec("a", 4, 3), *run[2:]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "epochs" in err[0] and "another name" in err[0]
    # more seeds under the same name: an extension, fine
    assert main([*run[:2], spec("a", 2, 4), *run[2:]]) == 0
    # another study with other epochs
    assert main([*run[:2], spec("b", 4, 2), *run[2:]]) == 0
    capsys.readouterr()
    # report and export without --study would pool them: refused, naming both studies
    for cmd in (["report"], ["study", "export"]):
        out_dir = tmp_path / f"out-{cmd[-1]}"
        code = main([*cmd, "--store", str(store), "-o", str(out_dir)])
        err = capsys.readouterr().err
        assert code == 2 and "--study" in err and "a, b" in err, err
        assert not out_dir.exists()
    for name, seeds in (("a", 4), ("b", 2)):
        out_dir = tmp_path / f"export-{name}"
        code = main(["study", "export", "--store", str(store), "--study", name, "-o", str(out_dir)])
        assert code == 0, capsys.readouterr().err
        agg = pd.read_csv(out_dir / "aggregate_metrics.csv")
        assert set(agg["n"]) == {seeds}
        assert (
            agg.groupby(["dataset", "fraction", "privacy", "mitigation"])["config"].nunique().max()
            == 1
        )
        fair = pd.read_csv(out_dir / "aggregate_fairness.csv")
        assert set(fair["n"]) == {seeds}
        cost = pd.read_csv(out_dir / "aggregate_cost_of_privacy.csv")
        assert set(cost["n"]) == {seeds}  # paired by seed within one configuration
        res = pd.read_csv(out_dir / "results.csv")
        assert res["run_id"].nunique() == 2 * seeds
        assert set(res["epochs"]) == ({2} if name == "a" else {4})
        code = main(
            ["report", "--store", str(store), "--study", name, "-o", str(tmp_path / f"rep-{name}")]
        )
        assert code == 0, capsys.readouterr().err
        html = (tmp_path / f"rep-{name}" / "report.html").read_text()
        assert f"{seeds} seeds" in html
    # the library's aggregates group by the full settings even on the whole store
    from imbalanced_dp.studies import aggregate_metrics, store_frame

    with ResultsStore(store) as s:
        agg = aggregate_metrics(store_frame(s))
    assert set(agg["n"]) == {2, 4} and agg["config"].nunique() == 4  # a and b, each none + dp
