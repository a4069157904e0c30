"""Per-class metrics against imbalanced-learn and hand-worked formulas; intervals against
scipy."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from imblearn.metrics import classification_report_imbalanced
from sklearn.metrics import accuracy_score, balanced_accuracy_score

from imbalanced_dp.metrics import (
    AVG_LABEL,
    COLUMNS,
    METRICS,
    format_report,
    mean_ci,
    paired_difference,
    per_class_report,
    run_scores,
)


def hand_report(y_true, y_pred) -> pd.DataFrame:
    """The study's table from confusion counts (PROTOCOL.md section 4); 0 where a ratio is
    0/0, as imbalanced-learn's zero_division=0."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)

    def ratio(a, b):
        return a / b if b else 0.0

    rows = {}
    for c in (0, 1):
        tp = np.sum((y_true == c) & (y_pred == c))
        fp = np.sum((y_true != c) & (y_pred == c))
        fn = np.sum((y_true == c) & (y_pred != c))
        tn = np.sum((y_true != c) & (y_pred != c))
        pre, rec, spe = ratio(tp, tp + fp), ratio(tp, tp + fn), ratio(tn, tn + fp)
        f1 = ratio(2 * pre * rec, pre + rec)
        geo = math.sqrt(rec * spe)
        iba = (1 + 0.1 * (rec - spe)) * geo**2
        rows[str(c)] = [pre, rec, spe, f1, geo, iba, int(tp + fn)]
    df = pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))
    sup = df["sup"].to_numpy()
    avg = [float(np.average(df[m], weights=sup)) for m in METRICS]
    df.loc[AVG_LABEL] = [*avg, int(sup.sum())]
    return df


def imblearn_report(y_true, y_pred) -> pd.DataFrame:
    """imbalanced-learn's report, called here directly, with its defaults."""
    d = classification_report_imbalanced(
        y_true, y_pred, labels=[0, 1], output_dict=True, zero_division=0
    )
    rows = {str(c): [d[str(c)][m] for m in COLUMNS] for c in (0, 1)}
    rows[AVG_LABEL] = [d[f"avg_{m}"] for m in METRICS] + [d["total_support"]]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))


def assert_reports_equal(ours: pd.DataFrame, ref: pd.DataFrame, tol: float = 1e-12) -> None:
    assert list(ours.index) == ["0", "1", AVG_LABEL]
    assert list(ours.columns) == list(COLUMNS)
    np.testing.assert_allclose(
        ours[list(METRICS)].to_numpy(float), ref[list(METRICS)].to_numpy(float), atol=tol
    )
    np.testing.assert_array_equal(ours["sup"].to_numpy(), ref["sup"].to_numpy().astype(int))


# both classes present in y_true (as in every stratified test split)
labels = st.lists(st.tuples(st.integers(0, 1), st.integers(0, 1)), min_size=2, max_size=80).filter(
    lambda pairs: {t for t, _ in pairs} == {0, 1}
)


@settings(max_examples=150, deadline=None)
@given(labels)
def test_report_matches_imblearn_and_hand_formulas_on_random_cases(pairs):
    y_true = np.array([t for t, _ in pairs])
    y_pred = np.array([p for _, p in pairs])
    ours = per_class_report(y_true, y_pred)
    assert_reports_equal(ours, imblearn_report(y_true, y_pred))
    assert_reports_equal(ours, hand_report(y_true, y_pred))
    scores = run_scores(y_true, y_pred)
    assert scores["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-15)
    assert scores["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(y_true, y_pred), abs=1e-15
    )
    assert scores["balanced_accuracy"] == pytest.approx(ours.loc[["0", "1"], "rec"].mean())


def test_hand_worked_table():
    # 4 negatives, 3 positives; confusion for class 1: TP 1, FN 2, FP 1, TN 3
    y_true = np.array([0, 0, 0, 1, 1, 0, 1])
    y_pred = np.array([0, 1, 0, 1, 0, 0, 0])
    r = per_class_report(y_true, y_pred)
    assert r.loc["1", "pre"] == pytest.approx(1 / 2)
    assert r.loc["1", "rec"] == pytest.approx(1 / 3)
    assert r.loc["1", "spe"] == pytest.approx(3 / 4)
    assert r.loc["1", "f1"] == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert r.loc["1", "geo"] == pytest.approx(math.sqrt(1 / 3 * 3 / 4))
    assert r.loc["1", "iba"] == pytest.approx((1 + 0.1 * (1 / 3 - 3 / 4)) * (1 / 3 * 3 / 4))
    assert r.loc["0", "pre"] == pytest.approx(3 / 5)
    assert r.loc["0", "rec"] == pytest.approx(3 / 4)
    assert r.loc["0", "spe"] == pytest.approx(1 / 3)
    assert r.loc["0", "sup"] == 4
    assert r.loc["1", "sup"] == 3
    assert r.loc[AVG_LABEL, "sup"] == 7
    assert r.loc[AVG_LABEL, "rec"] == pytest.approx((4 * 3 / 4 + 3 * 1 / 3) / 7)
    # geo is the same for both classes (sqrt(sens * spec) is symmetric in binary tasks)
    assert r.loc["0", "geo"] == pytest.approx(r.loc["1", "geo"])


@pytest.mark.parametrize("never", [0, 1])
def test_class_never_predicted(never):
    """A model that stops predicting a class (the study's minority class at ε = 1): that
    class gets precision, recall, F1, geo and IBA 0 and specificity 1; no warning."""
    y_true = np.array([0, 0, 0, 0, 1, 1, 0, 1, 0, 0])
    y_pred = np.full_like(y_true, 1 - never)  # a single-class prediction
    r = per_class_report(y_true, y_pred)
    assert_reports_equal(r, imblearn_report(y_true, y_pred))
    assert_reports_equal(r, hand_report(y_true, y_pred))
    c, other = str(never), str(1 - never)
    assert r.loc[c, ["pre", "rec", "f1", "geo", "iba"]].tolist() == [0, 0, 0, 0, 0]
    assert r.loc[c, "spe"] == 1
    assert r.loc[other, "rec"] == 1
    assert r.loc[other, "spe"] == 0
    assert r.loc[other, "pre"] == pytest.approx((y_true == 1 - never).mean())
    scores = run_scores(y_true, y_pred)
    assert scores["balanced_accuracy"] == pytest.approx(0.5)


def test_perfect_prediction():
    y = np.array([0, 1, 1, 0, 0, 1])
    r = per_class_report(y, y)
    np.testing.assert_array_equal(r[list(METRICS)].to_numpy(), 1.0)
    assert run_scores(y, y) == {"accuracy": 1.0, "balanced_accuracy": 1.0}


def test_all_wrong_prediction():
    y = np.array([0, 1, 1, 0, 0, 1])
    r = per_class_report(y, 1 - y)
    assert_reports_equal(r, hand_report(y, 1 - y))
    np.testing.assert_array_equal(r[list(METRICS)].to_numpy(), 0.0)


def test_single_class_truth_matches_imblearn_and_warns():
    """Outside any stratified split, a truth with one class only: the values are
    imbalanced-learn's, and, like it, we warn that recall and specificity are undefined."""
    from sklearn.exceptions import UndefinedMetricWarning as SklearnUndefined

    from imbalanced_dp.exceptions import UndefinedMetricWarning

    y_true = np.zeros(6, dtype=int)
    y_pred = np.array([0, 1, 0, 0, 1, 0])
    with pytest.warns(UndefinedMetricWarning):
        ours = per_class_report(y_true, y_pred)
    with pytest.warns(SklearnUndefined):
        ref = imblearn_report(y_true, y_pred)
    assert_reports_equal(ours, ref)
    assert ours.loc["1", "sup"] == 0
    assert ours.loc["0", "rec"] == pytest.approx(4 / 6)


def test_format_report():
    y_true = np.array([0, 0, 0, 1, 1, 0, 1])
    y_pred = np.array([0, 1, 0, 1, 0, 0, 0])
    text = format_report(per_class_report(y_true, y_pred), class_names=("healthy", "sick"))
    lines = text.splitlines()
    assert lines[0].split() == list(COLUMNS)
    assert lines[1].startswith("0 (healthy)")
    assert lines[2].startswith("1 (sick)")
    assert lines[3].startswith(AVG_LABEL)
    assert lines[2].split()[-7:] == ["0.500", "0.333", "0.750", "0.400", "0.500", "0.240", "3"]


# ----------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("confidence", [0.95, 0.9, 0.99])
def test_mean_ci_matches_scipy_t_interval(confidence):
    from scipy import stats

    x = np.array([0.61, 0.72, 0.55, 0.80, 0.66, 0.70])
    iv = mean_ci(x, confidence=confidence)
    lo, hi = stats.t.interval(confidence, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert iv.mean == pytest.approx(x.mean())
    assert iv.low == pytest.approx(lo)
    assert iv.high == pytest.approx(hi)
    assert iv.n == 6
    assert iv.std == pytest.approx(x.std(ddof=1))


def test_mean_ci_hand_value_and_edge_cases():
    iv = mean_ci([0.6, 0.7, 0.8])
    # t(0.975, 2) = 4.302652729911275; sd = 0.1; half-width = t * 0.1 / sqrt(3)
    assert iv.half_width == pytest.approx(4.302652729911275 * 0.1 / math.sqrt(3))
    one = mean_ci([0.5])
    assert one.mean == 0.5
    assert math.isnan(one.half_width)
    assert not one.excludes(0.0)  # nothing is known of the spread
    none = mean_ci([])
    assert none.n == 0
    assert math.isnan(none.mean)
    with_nan = mean_ci([0.6, np.nan, 0.7, 0.8])
    assert with_nan.n == 3
    assert with_nan.half_width == pytest.approx(iv.half_width)
    assert iv.excludes(0.0)
    assert not iv.excludes(0.7)


def test_paired_difference_matches_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    a = rng.normal(0.7, 0.05, size=10)
    b = a - 0.03 + rng.normal(0, 0.02, size=10)
    test = paired_difference(a, b)
    assert test.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert test.interval.mean == pytest.approx(np.mean(a - b))
    lo, hi = stats.t.interval(0.95, 9, loc=np.mean(a - b), scale=stats.sem(a - b))
    assert test.interval.low == pytest.approx(lo)
    assert test.interval.high == pytest.approx(hi)


def test_paired_difference_edge_cases():
    # pairs with a NaN on either side are dropped
    t = paired_difference([0.5, np.nan, 0.7, 0.9], [0.4, 0.3, np.nan, 0.5])
    assert t.interval.n == 2
    assert t.interval.mean == pytest.approx((0.1 + 0.4) / 2)
    # identical metrics: no difference, p = 1
    same = paired_difference([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert same.p_value == 1.0
    assert same.interval.mean == 0.0
    # fewer than two pairs: no test
    assert math.isnan(paired_difference([0.5], [0.4]).p_value)
    # a constant non-zero shift: the documented p = 0
    assert paired_difference([0.5, 0.6, 0.7], [0.4, 0.5, 0.6]).p_value == 0.0


# ---------------------------------------------------------------------- fairness per run


def test_fairness_per_run_matches_a_hand_masked_computation():
    """Each measure, recomputed by masking the rows of each run and class by hand."""
    from imbalanced_dp.metrics import FAIRNESS, fairness_per_run, per_class_report

    rng = np.random.default_rng(7)
    rows = []
    for r in range(6):
        y = rng.integers(0, 2, 80)
        pred = np.where(rng.uniform(size=80) < 0.7, y, 1 - y)
        rep = per_class_report(y, pred)
        ba = 0.5 * (np.mean(pred[y == 0] == 0) + np.mean(pred[y == 1] == 1))
        for cls in ("0", "1", "avg/total"):
            rows.append(
                {"run_id": f"r{r}", "seed": r, "class": cls, "balanced_accuracy": ba}
                | rep.loc[cls].to_dict()
            )
        # a run missing its minority row is left out, not half-used
    rows.append(
        {
            "run_id": "lonely",
            "seed": 9,
            "class": "0",
            "rec": 1.0,
            "iba": 1.0,
            "balanced_accuracy": 0.5,
        }
    )
    frame = pd.DataFrame(rows)
    out = fairness_per_run(frame, keys=["seed"]).set_index("run_id")
    assert set(out.columns) == {"seed", *FAIRNESS}
    assert "lonely" not in out.index and len(out) == 6
    for rid, g in frame[frame["run_id"] != "lonely"].groupby("run_id"):
        r0 = g[g["class"] == "0"].iloc[0]
        r1 = g[g["class"] == "1"].iloc[0]
        assert out.loc[rid, "recall_gap"] == pytest.approx(r0["rec"] - r1["rec"], abs=1e-15)
        assert out.loc[rid, "worst_recall"] == min(r0["rec"], r1["rec"])
        assert out.loc[rid, "iba_gap"] == pytest.approx(r0["iba"] - r1["iba"], abs=1e-15)
        assert out.loc[rid, "minority_recall"] == r1["rec"]
        assert out.loc[rid, "balanced_accuracy"] == r0["balanced_accuracy"]
