"""The verdicts on the study's claims, decided on hand-made interval tables, and the
statistics and sentences beneath them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from imbalanced_dp.metrics import METRICS, clopper_pearson, paired_difference, welch_difference
from imbalanced_dp.reports import Evidence, compute_evidence, evaluate_claims, finding_sentences
from imbalanced_dp.reports._claims import (
    CONTRADICTED,
    SUPPORTED,
    UNDECIDED,
    claim_1,
    claim_2,
    claim_3,
    claim_4,
    combine,
    judge_cells,
    part_verdict,
)
from imbalanced_dp.reports._format import fmt_ci

UTILITY = (*METRICS, "balanced_accuracy")


def iv(mean: float, hw: float = 0.05, *, n: int = 10, p: float | None = None) -> dict:
    """A hand-made interval; the p-value follows from the t interval unless given."""
    if p is None:
        se = hw / stats.t.ppf(0.975, n - 1)
        p = 1.0 if mean == 0 else float(2 * stats.t.sf(abs(mean) / se, n - 1))
    return {
        "mean": mean,
        "half_width": hw,
        "low": mean - hw,
        "high": mean + hw,
        "n": n,
        "p_value": p,
    }


def setting(ds: str, pr: str = "none", fr: str = "natural", mit: str = "none") -> dict:
    return {"dataset": ds, "fraction": fr, "privacy": pr, "mitigation": mit}


# --------------------------------------------------------------------------- the rule


def test_judge_cells_confirm_refute_and_bonferroni():
    cells = pd.DataFrame(
        [
            {"part": "x", "label": "up", "role": "required"} | iv(0.2),
            {"part": "x", "label": "down", "role": "required"} | iv(-0.2, p=1e-6),
            # below zero at 95 % but not after dividing 0.05 by 3 comparisons
            {"part": "x", "label": "weakly down", "role": "check"} | iv(-0.1, 0.09, p=0.03),
        ]
    )
    judged = judge_cells(cells, k=3)
    assert judged["status"].tolist() == ["confirms", "refutes", "undecided"]
    assert part_verdict(judged) == CONTRADICTED
    assert part_verdict(judged.iloc[[0, 2]]) == SUPPORTED  # the check only refutes
    assert part_verdict(judged.iloc[[2]]) == UNDECIDED  # no required cell


def test_a_nan_interval_never_decides():
    cells = pd.DataFrame(
        [{"part": "x", "label": "one seed", "role": "required"} | iv(0.3) | {"low": math.nan}]
    )
    cells["p_value"] = math.nan
    assert judge_cells(cells, 1)["status"].tolist() == ["undecided"]


def test_combine():
    assert combine([SUPPORTED, SUPPORTED]) == SUPPORTED
    assert combine([SUPPORTED, UNDECIDED]) == UNDECIDED
    assert combine([SUPPORTED, CONTRADICTED, UNDECIDED]) == CONTRADICTED
    assert combine([]) == UNDECIDED


# --------------------------------------------------------------------------- claim 1


def _gap(ds: str, mean: float, std: float, n: int = 10) -> dict:
    hw = stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)
    return setting(ds) | {
        "measure": "recall_gap",
        "mean": mean,
        "std": std,
        "n": n,
        "half_width": hw,
        "low": mean - hw,
        "high": mean + hw,
    }


def _skew_row(more, less, pr, measure, interval, kind="datasets", pair="pair") -> dict:
    (dm, fm, sm), (dl, fl, sl) = more, less
    return {
        "kind": kind,
        "pair": pair,
        "dataset_more": dm,
        "fraction_more": fm,
        "share_more": sm,
        "dataset_less": dl,
        "fraction_less": fl,
        "share_less": sl,
        "privacy": pr,
        "measure": measure,
    } | interval


PIMA = ("pima", "natural", 0.349)
BC = ("breast_cancer", "natural", 0.373)


def test_claim_1_supported():
    ev = Evidence(
        fairness=pd.DataFrame([_gap("pima", 0.30, 0.05), _gap("breast_cancer", 0.10, 0.05)]),
        skew=pd.DataFrame([_skew_row(PIMA, BC, "none", "recall_gap", iv(0.2))]),
    )
    c = claim_1(ev)
    assert c.verdict == SUPPORTED
    assert [p.verdict for p in c.parts] == [SUPPORTED, SUPPORTED]
    assert len(c.cells) == 3


def test_claim_1_contradicted_when_the_minority_is_served_better():
    ev = Evidence(
        fairness=pd.DataFrame([_gap("pima", -0.30, 0.05), _gap("breast_cancer", 0.10, 0.05)]),
        skew=pd.DataFrame([_skew_row(PIMA, BC, "none", "recall_gap", iv(0.2))]),
    )
    c = claim_1(ev)
    assert c.verdict == CONTRADICTED
    assert c.parts[0].verdict == CONTRADICTED


def test_claim_1_cannot_decide_with_one_dataset():
    ev = Evidence(fairness=pd.DataFrame([_gap("pima", 0.30, 0.05)]))
    c = claim_1(ev)
    assert [p.verdict for p in c.parts] == [SUPPORTED, UNDECIDED]
    assert c.verdict == UNDECIDED
    assert "two datasets" in c.parts[1].sentence


def test_claim_1_skew_comparison_is_decided_on_its_interval_not_its_mean():
    # the more skewed dataset has the larger mean gap, but the CI includes 0
    ev = Evidence(
        fairness=pd.DataFrame([_gap("pima", 0.30, 0.05), _gap("breast_cancer", 0.25, 0.05)]),
        skew=pd.DataFrame([_skew_row(PIMA, BC, "none", "recall_gap", iv(0.05, 0.2))]),
    )
    assert claim_1(ev).verdict == UNDECIDED


# --------------------------------------------------------------------------- claim 2


def _cost(values: dict[str, dict], eps=("8", "1"), datasets=("pima",)) -> pd.DataFrame:
    rows = []
    for ds in datasets:
        for pr in eps:
            for m in UTILITY:
                rows.append(
                    setting(ds, pr)
                    | {"class": "avg/total", "metric": m}
                    | values.get(f"{pr}/{m}", iv(0.1))
                )
    return pd.DataFrame(rows)


def _trend(interval: dict, datasets=("pima",), hi="8", lo="1") -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "dataset": ds,
                "fraction": "natural",
                "mitigation": "none",
                "metric": m,
                "eps_high": hi,
                "eps_low": lo,
                "pair": "extremes",
            }
            | interval
            for ds in datasets
            for m in UTILITY
        ]
    )


def test_claim_2_supported():
    ev = Evidence(cost=_cost({}), epsilon_trend=_trend(iv(0.08)))
    c = claim_2(ev)
    assert c.verdict == SUPPORTED
    assert len(c.cells) == 2 * len(UTILITY) + len(UTILITY)


def test_claim_2_contradicted_when_dp_raises_a_metric():
    ev = Evidence(cost=_cost({"8/spe": iv(-0.2, 0.02, p=1e-8)}), epsilon_trend=_trend(iv(0.08)))
    c = claim_2(ev)
    assert c.verdict == CONTRADICTED
    assert c.parts[0].verdict == CONTRADICTED
    assert "refute" in c.parts[0].sentence


def test_claim_2_cannot_decide_with_one_epsilon():
    ev = Evidence(cost=_cost({}, eps=("1",)))
    c = claim_2(ev)
    assert [p.verdict for p in c.parts] == [SUPPORTED, UNDECIDED]
    assert c.verdict == UNDECIDED


def test_claim_2_ignores_per_class_rows():
    # a majority class whose recall rises under DP is not a utility metric of claim 2
    cost = _cost({})
    extra = setting("pima", "1") | {"class": "0", "metric": "rec"} | iv(-0.3, 0.01, p=1e-9)
    ev = Evidence(
        cost=pd.concat([cost, pd.DataFrame([extra])], ignore_index=True),
        epsilon_trend=_trend(iv(0.08)),
    )
    assert claim_2(ev).verdict == SUPPORTED


# --------------------------------------------------------------------------- claim 3


def _per_eps(interval_by_eps: dict, **fixed) -> pd.DataFrame:
    return pd.DataFrame(
        [setting("pima", pr) | fixed | interval for pr, interval in interval_by_eps.items()]
    )


def _collapse(collapsed: int, runs: int = 10, pr: str = "1") -> pd.DataFrame:
    lo, hi = clopper_pearson(collapsed, runs)
    return pd.DataFrame(
        [
            setting("pima", pr)
            | {"runs": runs, "collapsed": collapsed, "rate": collapsed / runs, "low": lo}
            | {"high": hi}
        ]
    )


def test_claim_3_supported_and_collapse_reported():
    ev = Evidence(
        class_cost_gap=_per_eps({"8": iv(0.1), "1": iv(0.3)}, metric="f1"),
        amplification=_per_eps({"8": iv(0.1), "1": iv(0.4)}, measure="recall_gap"),
        collapse=_collapse(3),
    )
    c = claim_3(ev)
    assert c.verdict == SUPPORTED
    third = c.parts[2]
    assert not third.votes
    assert third.verdict == SUPPORTED
    assert "3 of 10 runs" in third.sentence


def test_claim_3_without_observed_collapse_still_decides_on_its_voting_parts():
    ev = Evidence(
        class_cost_gap=_per_eps({"8": iv(0.1), "1": iv(0.3)}, metric="f1"),
        amplification=_per_eps({"8": iv(0.1), "1": iv(0.4)}, measure="recall_gap"),
        collapse=_collapse(0),
    )
    c = claim_3(ev)
    assert c.verdict == SUPPORTED
    assert c.parts[2].verdict == UNDECIDED
    assert "0 of 10" in c.parts[2].sentence


def test_claim_3_contradicted_when_dp_narrows_the_gap():
    ev = Evidence(
        class_cost_gap=_per_eps({"8": iv(0.1), "1": iv(0.3)}, metric="f1"),
        amplification=_per_eps({"8": iv(-0.2, 0.03, p=1e-6), "1": iv(0.4)}, measure="recall_gap"),
    )
    c = claim_3(ev)
    assert c.verdict == CONTRADICTED
    assert c.parts[1].verdict == CONTRADICTED


def test_claim_3_cannot_decide_when_one_interval_spans_zero():
    ev = Evidence(
        class_cost_gap=_per_eps({"8": iv(0.02, 0.05), "1": iv(0.3)}, metric="f1"),
        amplification=_per_eps({"8": iv(0.1), "1": iv(0.4)}, measure="recall_gap"),
    )
    assert claim_3(ev).verdict == UNDECIDED


def test_claim_3_cannot_decide_without_dp_runs():
    c = claim_3(Evidence())
    assert c.verdict == UNDECIDED
    assert all(p.cells.empty for p in c.parts)


# --------------------------------------------------------------------------- claim 4

NAT = ("pima", "natural", 0.35)
F20 = ("pima", "0.2", 0.20)
F05 = ("pima", "0.05", 0.05)


def _fraction_skew(extremes: dict, adjacent: dict | None = None, eps=("8", "1")):
    rows = []
    for pr in eps:
        for measure in ("ba_cost", "amplification"):
            rows.append(
                _skew_row(F05, NAT, pr, measure, extremes, kind="fractions", pair="extremes")
            )
            for more, less in ((F20, NAT), (F05, F20)):
                rows.append(
                    _skew_row(
                        more,
                        less,
                        pr,
                        measure,
                        adjacent or iv(0.05, 0.2),
                        kind="fractions",
                        pair="adjacent",
                    )
                )
    return pd.DataFrame(rows)


def test_claim_4_supported_on_fractions():
    c = claim_4(Evidence(skew=_fraction_skew(iv(0.2))))
    assert c.verdict == SUPPORTED
    assert set(c.cells["role"]) == {"required", "check"}


def test_claim_4_contradicted_by_a_reversed_step():
    c = claim_4(Evidence(skew=_fraction_skew(iv(0.2), adjacent=iv(-0.3, 0.02, p=1e-9))))
    assert c.verdict == CONTRADICTED


def test_claim_4_cannot_decide_without_fractions_or_datasets_of_different_skew():
    c = claim_4(Evidence())
    assert c.verdict == UNDECIDED
    assert "several minority fractions" in c.parts[0].sentence


def test_claim_4_cannot_decide_when_the_extremes_span_zero():
    assert claim_4(Evidence(skew=_fraction_skew(iv(0.1, 0.3)))).verdict == UNDECIDED


def test_claim_4_prefers_the_controlled_comparison_and_flags_confounding():
    datasets = pd.DataFrame(
        [
            _skew_row(PIMA, BC, pr, m, iv(-0.3, 0.05, p=1e-7))
            for pr in ("8", "1")
            for m in ("ba_cost", "amplification")
        ]
    )
    # the datasets alone contradict the claim, with a warning about confounding ...
    only = claim_4(Evidence(skew=datasets))
    assert only.verdict == CONTRADICTED
    assert any("confounded" in s for s in only.sentences)
    # ... but a sweep over fractions, when present, is what decides
    both = claim_4(Evidence(skew=pd.concat([datasets, _fraction_skew(iv(0.2))])))
    assert both.verdict == SUPPORTED


def test_evaluate_claims_on_empty_evidence():
    res = evaluate_claims(Evidence())
    assert [c.number for c in res] == [1, 2, 3, 4]
    assert all(c.verdict == UNDECIDED for c in res)


# --------------------------------------------------------------------------- statistics


def test_welch_difference_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 0.1, 10), rng.normal(0.4, 0.2, 8)
    r = welch_difference(a, b)
    t = stats.ttest_ind(a, b, equal_var=False)
    assert r["mean"] == pytest.approx(a.mean() - b.mean())
    assert r["p_value"] == pytest.approx(t.pvalue)
    ci = t.confidence_interval(0.95)
    assert (r["low"], r["high"]) == pytest.approx((ci.low, ci.high))


def test_clopper_pearson_bounds():
    assert clopper_pearson(0, 10)[0] == 0.0
    assert clopper_pearson(10, 10)[1] == 1.0
    lo, hi = clopper_pearson(3, 10)
    assert 0 < lo < 0.3 < hi < 1
    assert clopper_pearson(0, 10)[1] == pytest.approx(1 - 0.025 ** (1 / 10))
    # scipy's exact binomial interval is the reference
    for k, n in ((3, 10), (1, 30), (29, 30), (17, 40)):
        ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
        assert clopper_pearson(k, n) == pytest.approx((ci.low, ci.high), rel=1e-10)


def test_one_sample_p_matches_scipy():
    from imbalanced_dp.metrics import one_sample_p

    x = np.random.default_rng(3).normal(0.1, 0.3, 12)
    ref = stats.ttest_1samp(x, 0.0).pvalue
    assert one_sample_p(float(x.mean()), float(x.std(ddof=1)), len(x)) == pytest.approx(
        ref, rel=1e-10
    )


def test_fmt_ci_keeps_the_sign_of_a_small_bound():
    assert fmt_ci(0.61, 0.57, 0.65) == "0.61 [0.57, 0.65]"
    assert fmt_ci(0.01, -0.001, 0.03) == "0.010 [-0.001, 0.030]"
    assert fmt_ci(-0.0001, -0.0001, 0.0) == "-0.0001 [-0.0001, 0.0000]"
    assert fmt_ci(-0.001, -0.002, 0.0, digits=2) == "-0.001 [-0.002, 0.000]"
    assert fmt_ci(0.3, math.nan, math.nan) == "0.30 (no CI: one seed)"


# --------------------------------------------------------------------------- evidence


def _frame() -> pd.DataFrame:
    """A per-run frame (store_frame layout): pima at two fractions, none / 8 / 1, 4 seeds."""
    rng = np.random.default_rng(1)
    rows = []
    base = {"natural": 0.6, "0.2": 0.3}
    drop = {"none": 0.0, "8": 0.1, "1": 0.3}
    share = {"natural": 0.35, "0.2": 0.2}
    for fr in ("natural", "0.2"):
        for pr in ("none", "8", "1"):
            for seed in range(4):
                r1 = max(0.0, base[fr] - drop[pr] + rng.normal(0, 0.03))
                r0 = min(0.99, 0.85 + drop[pr] / 2 + rng.normal(0, 0.02))
                if fr == "0.2" and pr == "1" and seed == 0:
                    r0, r1 = 1.0, 0.0  # a model that never predicts the minority
                run = f"{fr}-{pr}-{seed}"
                ba = (r0 + r1) / 2
                common = setting("pima", pr, fr) | {
                    "run_id": run,
                    "seed": seed,
                    "minority_fraction": share[fr],
                    "accuracy": ba,
                    "balanced_accuracy": ba,
                    "engine": "fast",
                }
                for cls, rec, spe in (("0", r0, r1), ("1", r1, r0), ("avg/total", ba, ba)):
                    rows.append(
                        common
                        | {"class": cls, "rec": rec, "spe": spe, "pre": rec, "f1": rec}
                        | {"geo": math.sqrt(r0 * r1), "iba": r0 * r1, "sup": 10}
                    )
    return pd.DataFrame(rows)


def test_evidence_pairs_by_seed_like_a_hand_computed_reference():
    df = _frame()
    ev = compute_evidence(df)
    avg = df[(df["class"] == "avg/total") & (df["fraction"] == "natural")].set_index("seed")
    hi = avg[avg["privacy"] == "8"].sort_index()
    lo = avg[avg["privacy"] == "1"].sort_index()
    ref = paired_difference(hi["rec"], lo["rec"]).interval
    row = ev.epsilon_trend[
        (ev.epsilon_trend["fraction"] == "natural") & (ev.epsilon_trend["metric"] == "rec")
    ].iloc[0]
    assert row["pair"] == "extremes"
    assert (row["eps_high"], row["eps_low"]) == ("8", "1")
    assert row["mean"] == pytest.approx(ref.mean)
    assert row["half_width"] == pytest.approx(ref.half_width)


def test_evidence_skew_harm_matches_masks():
    df = _frame()
    ev = compute_evidence(df)
    row = ev.skew[
        (ev.skew["kind"] == "fractions")
        & (ev.skew["measure"] == "ba_cost")
        & (ev.skew["privacy"] == "1")
    ].iloc[0]
    assert (row["fraction_more"], row["fraction_less"]) == ("0.2", "natural")
    avg = df[df["class"] == "avg/total"]

    def harm(fr):
        none = avg[(avg["fraction"] == fr) & (avg["privacy"] == "none")].set_index("seed")
        dp = avg[(avg["fraction"] == fr) & (avg["privacy"] == "1")].set_index("seed")
        return (none["balanced_accuracy"] - dp["balanced_accuracy"]).sort_index()

    ref = paired_difference(harm("0.2"), harm("natural")).interval
    assert row["mean"] == pytest.approx(ref.mean)
    assert row["low"] == pytest.approx(ref.low)


def test_evidence_counts_models_that_never_predict_the_minority():
    ev = compute_evidence(_frame())
    col = ev.collapse.set_index(["fraction", "privacy"])
    assert col.loc[("0.2", "1"), "collapsed"] == 1
    assert col.loc[("natural", "1"), "collapsed"] == 0


def test_sentences_state_numbers_with_their_intervals():
    ev = compute_evidence(_frame())
    text = finding_sentences(ev, class_names={"pima": ("non-diabetic", "diabetic")})
    fall = [s for s in text if "at ε = 1" in s and "falls from" in s]
    assert fall, text
    assert "the recall of the minority class (diabetic) falls from" in fall[0]
    # every number in the sentence comes with a bracketed interval
    assert fall[0].count("[") >= 3
    assert any("shrinking the minority share" in s for s in text)
    assert any("no DP model stops predicting" in s for s in text)  # none at natural balance


def test_constant_count_differences_do_not_warn():
    """The same count difference on every seed, divided by the test support, gives paired
    differences equal up to rounding: decided as confirmed, without SciPy's warning."""
    rows = []
    for pr, shift in (("none", 0), ("1", 3)):
        for seed, k in enumerate((30, 32, 35, 41, 20)):
            r1, r0 = (k - shift) / 54, 0.9
            common = setting("pima", pr) | {
                "run_id": f"{pr}-{seed}",
                "seed": seed,
                "minority_fraction": 0.35,
                "accuracy": 0.8,
                "balanced_accuracy": (r0 + r1) / 2,
                "engine": "fast",
            }
            for cls, rec, spe in (("0", r0, r1), ("1", r1, r0), ("avg/total", 0.8, 0.7)):
                rows.append(
                    common
                    | {"class": cls, "rec": rec, "spe": spe, "pre": rec, "f1": rec}
                    | {"geo": 0.7, "iba": 0.5, "sup": 54}
                )
    ev = compute_evidence(pd.DataFrame(rows))
    amp = ev.amplification[ev.amplification["measure"] == "recall_gap"].iloc[0]
    assert amp["mean"] == pytest.approx(3 / 54)
    assert amp["low"] > 0
    assert claim_3(ev).parts[1].verdict == SUPPORTED
