"""The results store: one SQLite file (WAL), written by the driver only.

Each finished batch is written in one transaction, so a store killed at any moment holds
whole runs only; a rerun skips the runs already ``done`` (by ``run_id``) and retries failed
ones.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..exceptions import StoreError
from ..metrics import METRICS
from ..privacy import Calibration, CalibrationKey
from ._execute import RunResult

SCHEMA_VERSION = 1
DEFAULT_STORE = Path("imbalanced-dp-results") / "results.sqlite"

#: The tidy result columns of ARCHITECTURE.md (results.csv and the class_metrics view).
RESULT_COLUMNS: tuple[str, ...] = (
    "run_id",
    "dataset",
    "minority_fraction",
    "privacy",
    "epsilon_target",
    "epsilon_spent",
    "delta",
    "noise_multiplier",
    "sample_rate",
    "steps",
    "accountant",
    "engine",
    "mitigation",
    "scaling",
    "seed",
    "epochs",
    "batch_size",
    "lr",
    "clip",
    "class",
    "pre",
    "rec",
    "spe",
    "f1",
    "geo",
    "iba",
    "sup",
    "accuracy",
    "balanced_accuracy",
)
PREDICTION_COLUMNS: tuple[str, ...] = ("run_id", "row", "y_true", "y_pred", "p_positive")
#: The column results.csv adds after ``scaling`` when some of its runs are tuned
#: (``none``: fixed hyperparameters; ``private``: a private search, whose choices fill the
#: row's epochs, batch_size, lr, clip, mitigation and scaling). Left out otherwise, so that
#: the results of a study without tuning are what they were before tuning was a setting.
TUNING_COLUMN = "tuning"


def result_columns(tuned: bool) -> tuple[str, ...]:
    """The columns of results.csv: :data:`RESULT_COLUMNS`, with :data:`TUNING_COLUMN` after
    ``scaling`` when some runs are ``tuned``."""
    if not tuned:
        return RESULT_COLUMNS
    i = RESULT_COLUMNS.index("scaling") + 1
    return (*RESULT_COLUMNS[:i], TUNING_COLUMN, *RESULT_COLUMNS[i:])


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    minority_fraction REAL,
    minority_fraction_target REAL,
    imbalance_method TEXT,
    privacy TEXT NOT NULL,
    epsilon_target REAL,
    epsilon_spent REAL,
    delta REAL,
    noise_multiplier REAL,
    sample_rate REAL,
    steps INTEGER,
    accountant TEXT,
    engine TEXT NOT NULL,
    mitigation TEXT NOT NULL,
    seed INTEGER NOT NULL,
    epochs INTEGER,
    batch_size INTEGER,
    lr REAL,
    clip REAL,
    layers TEXT,
    test_fraction REAL,
    n_train INTEGER,
    train_count_0 INTEGER,
    train_count_1 INTEGER,
    test_count_0 INTEGER,
    test_count_1 INTEGER,
    accuracy REAL,
    balanced_accuracy REAL,
    status TEXT NOT NULL,
    error TEXT,
    seconds REAL,
    spec_json TEXT NOT NULL,
    ledger_json TEXT,
    stats_json TEXT,
    versions_json TEXT,
    batch_id TEXT,
    finished_at REAL,
    scaling TEXT,
    tuning TEXT,
    tuned_json TEXT
);
CREATE TABLE IF NOT EXISTS class_metrics (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    class TEXT NOT NULL,
    pre REAL, rec REAL, spe REAL, f1 REAL, geo REAL, iba REAL, sup INTEGER,
    PRIMARY KEY (run_id, class)
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    row INTEGER NOT NULL,
    y_true INTEGER NOT NULL,
    y_pred INTEGER NOT NULL,
    p_positive REAL NOT NULL,
    PRIMARY KEY (run_id, row)
);
CREATE TABLE IF NOT EXISTS calibrations (
    accountant TEXT NOT NULL,
    epsilon REAL NOT NULL,
    delta REAL NOT NULL,
    sample_rate REAL NOT NULL,
    steps INTEGER NOT NULL,
    extra TEXT NOT NULL,
    sigma REAL NOT NULL,
    epsilon_spent REAL NOT NULL,
    accountant_version TEXT NOT NULL,
    PRIMARY KEY (accountant, epsilon, delta, sample_rate, steps, extra, accountant_version)
);
CREATE TABLE IF NOT EXISTS studies (
    name TEXT PRIMARY KEY,
    spec_json TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS study_runs (
    study TEXT NOT NULL,
    run_id TEXT NOT NULL,
    grp TEXT NOT NULL,
    PRIMARY KEY (study, run_id)
);
CREATE TABLE IF NOT EXISTS extras (
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (run_id, kind)
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
"""


def _num(v):
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _in_order(df: pd.DataFrame, run_ids: Sequence[str] | None) -> pd.DataFrame:
    """The rows of ``run_ids`` in that order (each run's rows keep theirs), or all rows in
    the order they were stored. The order of a study's outputs is then the order of its
    runs, never the order in which batches happened to finish."""
    if run_ids is None:
        return df.reset_index(drop=True)
    rank = {rid: i for i, rid in enumerate(dict.fromkeys(run_ids))}
    df = df[df["run_id"].isin(rank)]
    order = np.argsort(df["run_id"].map(rank).to_numpy(), kind="stable")
    return df.iloc[order].reset_index(drop=True)


class ResultsStore:
    """A results store at ``path`` (created with its folder if missing).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from imbalanced_dp import ResultsStore
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with ResultsStore(pathlib.Path(tmp) / "r.sqlite") as store:
    ...         print(store.done_ids(), store.status_counts())
    set() {}
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a results store file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = sqlite3.connect(self.path, isolation_level=None, timeout=60)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")
            self._con.execute("PRAGMA foreign_keys=ON")
            self._con.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path} is not an imbalanced-dp results store ({exc})") from None
        row = self._con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._con.execute(
                "INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(row[0]) != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {row[0]}; this imbalanced-dp reads "
                f"version {SCHEMA_VERSION}"
            )
        self._migrate()

    def _migrate(self) -> None:
        """Bring a store written by an earlier version up to date, in place: columns added
        since (a run without a recorded scaling used the default, ``standard``; one without
        a recorded tuning had fixed hyperparameters, ``none``)."""
        cols = {r[1] for r in self._con.execute("PRAGMA table_info(runs)")}
        if "scaling" not in cols:
            self._con.execute("ALTER TABLE runs ADD COLUMN scaling TEXT")
            self._con.execute("UPDATE runs SET scaling = 'standard' WHERE scaling IS NULL")
        if "tuning" not in cols:
            self._con.execute("ALTER TABLE runs ADD COLUMN tuning TEXT")
            self._con.execute("UPDATE runs SET tuning = 'none' WHERE tuning IS NULL")
        if "tuned_json" not in cols:
            self._con.execute("ALTER TABLE runs ADD COLUMN tuned_json TEXT")

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def record_study(self, name: str, spec: dict, runs: Iterable[tuple[str, str]]) -> None:
        """Remember a study's spec and which runs (with their group label) belong to it."""
        with self._transaction():
            self._con.execute(
                "INSERT OR REPLACE INTO studies VALUES (?, ?, ?)",
                (name, json.dumps(spec, sort_keys=True, default=str), time.time()),
            )
            self._con.executemany(
                "INSERT OR REPLACE INTO study_runs VALUES (?, ?, ?)",
                [(name, rid, grp) for rid, grp in runs],
            )

    def write_results(self, results: Sequence[RunResult], *, batch_id: str = "") -> None:
        """Write a finished batch in one transaction."""
        now = time.time()
        with self._transaction():
            for r in results:
                self._delete_run(r.run_id)
                row = self._run_row(r, batch_id, now)
                cols = ", ".join(row)
                marks = ", ".join(f":{c}" for c in row)
                self._con.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", row)
                if r.status != "done":
                    continue
                self._con.executemany(
                    'INSERT INTO class_metrics (run_id, "class", pre, rec, spe, f1, geo, iba, '
                    "sup) VALUES (?,?,?,?,?,?,?,?,?)",
                    [
                        (r.run_id, m["class"], *[_num(m[c]) for c in METRICS], int(m["sup"]))
                        for m in r.metrics
                    ],
                )
                p = r.predictions or {}
                self._con.executemany(
                    "INSERT INTO predictions (run_id, row, y_true, y_pred, p_positive) "
                    "VALUES (?,?,?,?,?)",
                    zip(
                        [r.run_id] * len(p.get("row", [])),
                        np.asarray(p.get("row", []), dtype=np.int64).tolist(),
                        np.asarray(p.get("y_true", []), dtype=np.int64).tolist(),
                        np.asarray(p.get("y_pred", []), dtype=np.int64).tolist(),
                        np.asarray(p.get("p_positive", []), dtype=np.float64).tolist(),
                    ),
                )

    def write_extra(self, run_id: str, kind: str, payload: dict) -> None:
        with self._transaction():
            self._con.execute(
                "INSERT OR REPLACE INTO extras VALUES (?, ?, ?)",
                (run_id, kind, json.dumps(payload, default=float)),
            )

    def _delete_run(self, run_id: str) -> None:
        for table in ("class_metrics", "predictions", "runs"):
            self._con.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))

    @staticmethod
    def _run_row(r: RunResult, batch_id: str, now: float) -> dict:
        """The ``runs`` row of a result, by column name (a tuned run's training settings are
        those its search chose)."""
        s = r.spec.resolve()
        led = r.ledger
        dp = s.private
        d = r.data
        row = ResultsStore._fixed_row(r, s, led, dp, d)
        row |= {
            "status": r.status,
            "error": r.error,
            "seconds": _num(r.seconds),
            "spec_json": json.dumps(r.spec.to_dict(), sort_keys=True, default=str),
            "ledger_json": json.dumps(led.to_dict(), default=float) if led else None,
            "stats_json": json.dumps(r.stats, default=float),
            "versions_json": json.dumps(r.versions, sort_keys=True),
            "batch_id": batch_id,
            "finished_at": now,
            "tuning": s.tuning,
            "tuned_json": json.dumps(r.tuned, default=float) if s.tuned else None,
        }
        if s.tuned:
            best = r.tuned.get("best") or {}
            row |= {
                "accountant": (led.accountant if led else None) if dp else None,
                "engine": "fast",
                "mitigation": best.get("mitigation", "searched"),
                "scaling": best.get("scaling", "searched"),
                "epochs": best.get("epochs"),
                "batch_size": best.get("batch_size"),
                "lr": best.get("lr"),
                "clip": best.get("clip") if dp else None,
                "layers": ",".join(str(x) for x in best.get("layers", ())) if best else None,
            }
        return row

    @staticmethod
    def _fixed_row(r: RunResult, s, led, dp: bool, d: dict) -> dict:
        return {
            "run_id": r.run_id,
            "dataset": s.dataset.label,
            "minority_fraction": _num(d.get("minority_fraction")),
            "minority_fraction_target": s.minority_fraction,
            "imbalance_method": s.imbalance_method,
            "privacy": s.privacy,
            "epsilon_target": s.epsilon if dp else None,
            "epsilon_spent": _num(led.epsilon_spent) if (led and dp) else None,
            "delta": s.delta if dp else None,
            "noise_multiplier": _num(led.noise_multiplier) if (led and dp) else None,
            "sample_rate": _num(led.sample_rate) if (led and dp) else None,
            "steps": led.steps if led else None,
            "accountant": s.accountant if dp else None,
            "engine": s.engine,
            "mitigation": s.mitigation,
            "seed": s.seed,
            "epochs": s.epochs,
            "batch_size": s.batch_size,
            "lr": s.lr,
            "clip": s.clip if dp else None,
            "layers": ",".join(str(x) for x in (s.layers or ())),
            "test_fraction": s.test_fraction,
            "n_train": d.get("n_train"),
            "train_count_0": d.get("train_count_0"),
            "train_count_1": d.get("train_count_1"),
            "test_count_0": d.get("test_count_0"),
            "test_count_1": d.get("test_count_1"),
            "accuracy": _num(r.scores.get("accuracy")),
            "balanced_accuracy": _num(r.scores.get("balanced_accuracy")),
            "scaling": s.scaling,
        }

    def _transaction(self):
        con = self._con

        class _Tx:
            def __enter__(self_inner):
                con.execute("BEGIN IMMEDIATE")

            def __exit__(self_inner, exc_type, exc, tb):
                if exc_type is None:
                    con.execute("COMMIT")
                else:
                    con.execute("ROLLBACK")
                return False

        return _Tx()

    # ------------------------------------------------------------------ calibrations

    @staticmethod
    def _cal_key(key: CalibrationKey) -> tuple:
        return (key.accountant, key.epsilon, key.delta, key.sample_rate, key.steps, "")

    def get_calibration(self, key: CalibrationKey, version: str) -> Calibration | None:
        """A stored noise calibration made by accountant ``version`` (see
        :class:`~imbalanced_dp.privacy.CalibrationKey`)."""
        row = self._con.execute(
            "SELECT sigma, epsilon_spent FROM calibrations WHERE accountant=? AND epsilon=? "
            "AND delta=? AND sample_rate=? AND steps=? AND extra=? AND accountant_version=?",
            (*self._cal_key(key), version),
        ).fetchone()
        if row is None:
            return None
        return Calibration(noise_multiplier=float(row[0]), epsilon_spent=float(row[1]))

    def put_calibration(self, key: CalibrationKey, value: Calibration, version: str) -> None:
        with self._transaction():
            self._con.execute(
                "INSERT OR REPLACE INTO calibrations VALUES (?,?,?,?,?,?,?,?,?)",
                (*self._cal_key(key), value.noise_multiplier, value.epsilon_spent, version),
            )

    # ------------------------------------------------------------------ reading

    def done_ids(self) -> set[str]:
        return {r[0] for r in self._con.execute("SELECT run_id FROM runs WHERE status='done'")}

    def status_counts(self) -> dict[str, int]:
        return dict(self._con.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"))

    def query(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        return pd.read_sql_query(sql, self._con, params=params)

    def runs_frame(self, *, status: str | None = "done") -> pd.DataFrame:
        sql = "SELECT * FROM runs"
        if status is not None:
            sql += " WHERE status = ?"
            return self.query(sql + " ORDER BY rowid", (status,))
        return self.query(sql + " ORDER BY rowid")

    def results_frame(self, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """One row per done run × class with exactly :data:`RESULT_COLUMNS`, and the
        ``tuning`` column after ``scaling`` when some of these runs are tuned
        (:func:`result_columns`)."""
        want = result_columns(True)
        cols = ", ".join(
            f"m.{c}" if c in ("class", *METRICS, "sup") else f"r.{c}" for c in want
        ).replace("m.class", 'm."class"')
        cols = cols.replace("r.tuning", "COALESCE(r.tuning, 'none') AS tuning")
        df = self.query(
            f"SELECT {cols} FROM runs r JOIN class_metrics m ON m.run_id = r.run_id "
            "WHERE r.status = 'done' ORDER BY r.rowid, "
            'CASE m."class" WHEN \'avg/total\' THEN 1 ELSE 0 END, m."class"'
        )
        df = _in_order(df, run_ids)
        return df.loc[:, list(result_columns(bool((df[TUNING_COLUMN] != "none").any())))]

    def predictions_frame(self, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
        df = self.query(
            "SELECT p.run_id, p.row, p.y_true, p.y_pred, p.p_positive FROM predictions p "
            "JOIN runs r ON r.run_id = p.run_id WHERE r.status = 'done' "
            "ORDER BY r.rowid, p.row"
        )
        return _in_order(df, run_ids)

    def study_runs(self, study: str | None = None) -> pd.DataFrame:
        if study is None:
            return self.query("SELECT * FROM study_runs")
        return self.query("SELECT * FROM study_runs WHERE study = ?", (study,))

    def studies(self) -> pd.DataFrame:
        return self.query("SELECT * FROM studies ORDER BY updated_at")

    def study_spec(self, name: str) -> dict | None:
        """The spec a study was last run with (``None`` if the store does not know it)."""
        row = self._con.execute("SELECT spec_json FROM studies WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def study_run_ids(self, name: str) -> list[str]:
        """A study's runs, in the order of its grid."""
        rows = self._con.execute(
            "SELECT run_id FROM study_runs WHERE study = ? ORDER BY rowid", (name,)
        ).fetchall()
        return [r[0] for r in rows]

    def extras(self, kind: str) -> pd.DataFrame:
        df = self.query("SELECT run_id, payload FROM extras WHERE kind = ?", (kind,))
        df["payload"] = df["payload"].map(json.loads)
        return df
