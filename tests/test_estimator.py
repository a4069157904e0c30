"""DPMLPClassifier: scikit-learn's estimator checks, and what the estimator promises about
privacy (calibration, δ, batch clipping, class weights, seeds, tuning)."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from imbalanced_dp.engines import FastEngine
from imbalanced_dp.estimator import (
    BALANCED_COUNT_SHARE,
    PREPROCESSING_NOTE,
    DPMLPClassifier,
)
from imbalanced_dp.exceptions import ParameterError, PrivacyError
from imbalanced_dp.privacy import (
    PUBLIC_N_NOTE,
    PrivacyWarning,
    calibrate_noise_multiplier,
    default_delta,
    epsilon_spent,
    sampling_plan,
)

#: Warnings that a local "error" filter must still let through: RDP's tightness remark and
#: the research-mode notice of a fixed random_state (checked in test_privacy_plan.py).
_BENIGN = ("Optimal order is the", r"DPMLPClassifier\(random_state=")


def _errors_except_benign() -> None:
    warnings.simplefilter("error")
    for msg in _BENIGN:
        warnings.filterwarnings("ignore", message=msg)


# Checks of scikit-learn that the classifier is expected to fail, by check name, with the
# reason. None at present: the private default (ε = 1, PRV, 500 epochs) and the non-private
# baseline pass all of them, including the accuracy ones. A failure to add here must say why
# it is inherent to DP-SGD (e.g. sample-weight equivalence, which Poisson sampling breaks),
# not paper over a bug.
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


def _expected_failed_checks(estimator) -> dict[str, str]:
    return EXPECTED_FAILED_CHECKS


@parametrize_with_checks(
    [DPMLPClassifier(), DPMLPClassifier(epsilon=None)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] + 0.5 * rng.normal(size=200) > 0.9).astype(np.int64)
    return X, y


def _fast(**kw) -> DPMLPClassifier:
    """A quick private classifier (RDP calibrates in milliseconds)."""
    params = {"epsilon": 2.0, "epochs": 5, "accountant": "rdp", "random_state": 0}
    params.update(kw)
    return DPMLPClassifier(**params)


class SpyEngine:
    """Records the jobs and the device it is given, then trains them with the fast engine."""

    name = "spy"

    def __init__(self):
        self.jobs = []
        self.device = None

    def train(self, jobs, *, device="cpu", threads=None):
        self.jobs.extend(jobs)
        self.device = device
        return FastEngine().train(jobs, threads=threads)


# ---------------------------------------------------------------------- the mechanism


def test_private_fit_is_the_library_run(data):
    """The estimator is a front door: the engine receives the sampling plan, the calibrated
    σ, the default δ and the seed it reports, and its model is that run."""
    X, y = data
    spy = SpyEngine()
    clf = DPMLPClassifier(epsilon=2.0, epochs=5, accountant="rdp", random_state=7, engine=spy).fit(
        X, y
    )
    n = len(y)
    plan = sampling_plan(n=n, batch_size=64, epochs=5)
    delta = default_delta(n)
    sigma = calibrate_noise_multiplier(
        target_epsilon=2.0,
        delta=delta,
        sample_rate=plan.sample_rate,
        steps=plan.steps,
        accountant="rdp",
    )
    (job,) = spy.jobs
    c = job.config
    assert (c.seed, c.private, c.epochs, c.batch_size, c.lr, c.clip) == (7, True, 5, 64, 0.01, 1.0)
    assert (c.steps, c.sample_rate, c.expected_batch_size) == (
        plan.steps,
        plan.sample_rate,
        plan.expected_batch_size,
    )
    assert c.noise_multiplier == sigma
    assert c.noise_key is not None  # research mode: the key derives from the seed
    assert job.arch.sizes == (4, 20, 10, 10, 2)
    ref = FastEngine().train([job])[0]
    np.testing.assert_array_equal(clf.model_.params, ref.params)
    assert clf.seed_ == 7
    assert clf.delta_ == delta == 1e-4
    assert clf.noise_multiplier_ == sigma
    led = clf.privacy_ledger_
    assert (led.privacy, led.sampling, led.accountant) == ("dp", "poisson", "rdp")
    assert (led.sample_rate, led.steps) == (plan.sample_rate, plan.steps)
    assert led.expected_batch_size == plan.expected_batch_size
    assert led.noise_multiplier == sigma
    assert (led.delta, led.epsilon_target, led.clip) == (delta, 2.0, 1.0)
    assert led.epsilon_spent == clf.epsilon_
    assert PREPROCESSING_NOTE in led.not_covered
    assert PUBLIC_N_NOTE.format(n=n) in led.not_covered
    assert led.noise_source == "research"


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_epsilon_spent_never_exceeds_target(data, accountant):
    X, y = data
    clf = _fast(epsilon=1.0, accountant=accountant).fit(X, y)
    spent = epsilon_spent(
        noise_multiplier=clf.noise_multiplier_,
        sample_rate=clf.privacy_ledger_.sample_rate,
        steps=clf.privacy_ledger_.steps,
        delta=clf.delta_,
        accountant=accountant,
    )
    assert spent == clf.epsilon_
    assert 0.95 <= clf.epsilon_ <= 1.0


def test_non_private_baseline(data):
    X, y = data
    clf = _fast(epsilon=None).fit(X, y)
    assert clf.epsilon_ == math.inf
    assert clf.noise_multiplier_ == 0.0
    assert clf.delta_ is None
    led = clf.privacy_ledger_
    assert (led.privacy, led.sampling, led.epsilon_spent, led.noise_multiplier) == (
        "none",
        "shuffle",
        None,
        None,
    )


@pytest.mark.parametrize("n", [10, 11, 99, 100, 101, 999, 1000, 1001, 25_000])
def test_default_delta_is_below_a_tenth_of_one_over_n(n):
    delta = default_delta(n)
    assert 0 < delta <= min(1e-4, 1 / (10 * n)) < 1 / n
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 2))
    y = np.arange(n) % 2
    with warnings.catch_warnings():
        _errors_except_benign()  # no PrivacyWarning: the default never warns
        clf = _fast(epochs=1, hidden_layer_sizes=(3,)).fit(X, y)
    assert clf.delta_ == delta


def test_delta_rules(data):
    X, y = data
    n = len(y)
    with pytest.raises(PrivacyError, match="not below 1/n"):
        _fast(delta=1.0 / n).fit(X, y)
    with pytest.warns(PrivacyWarning, match="above 1/"):
        clf = _fast(delta=1.0 / (5 * n)).fit(X, y)
    assert clf.delta_ == 1.0 / (5 * n)


@pytest.mark.parametrize("accountant", ["rdp", "prv"])
def test_batch_larger_than_data_is_clipped(data, accountant):
    X, y = data
    # PRV at q = 1 must not leak numpy's log(0) warning (pytest turns warnings into errors).
    clf = _fast(batch_size=10_000, epochs=3, accountant=accountant).fit(X[:50], y[:50])
    led = clf.privacy_ledger_
    assert clf.batch_size_ == 50
    assert (led.sample_rate, led.steps, led.expected_batch_size) == (1.0, 3, 50)
    assert any("clipped to 50" in note for note in led.notes)
    assert clf.epsilon_ <= 2.0


def test_batch_rule_matches_opacus_sample_rate(data):
    X, y = data
    clf = _fast(batch_size=64).fit(X, y)  # 200 rows: ceil(200 / 64) = 4 steps per epoch
    assert clf.privacy_ledger_.sample_rate == 0.25
    assert clf.privacy_ledger_.steps == 4 * 5
    assert clf.privacy_ledger_.expected_batch_size == 50


# ---------------------------------------------------------------------- labels and seeds


def test_any_two_labels_map_to_engine_labels(data):
    X, y = data
    names = np.array(["healthy", "sick"])[y]
    numeric = _fast().fit(X, y)
    text = _fast().fit(X, names)
    np.testing.assert_array_equal(text.classes_, ["healthy", "sick"])
    np.testing.assert_array_equal(text.model_.params, numeric.model_.params)
    assert set(text.predict(X)) <= {"healthy", "sick"}
    # classes_[1] is the engine's label 1: the sorted second label, whatever its type
    flipped = _fast().fit(X, np.where(y == 1, -3, 5))
    np.testing.assert_array_equal(flipped.classes_, [-3, 5])
    np.testing.assert_array_equal(flipped.model_.params, _fast().fit(X, 1 - y).model_.params)


def test_outputs_are_consistent(data):
    X, y = data
    clf = _fast(epochs=20, learning_rate=0.1).fit(X, y)
    d = clf.decision_function(X)
    p = clf.predict_proba(X)
    assert d.shape == (len(y),)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p, clf.model_.predict_proba(X), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[p.argmax(axis=1)])
    np.testing.assert_array_equal(clf.predict(X), clf.model_.predict(X))
    assert clf.score(X, y) == np.mean(clf.predict(X) == y)
    assert [W.shape for W in clf.coefs_] == [(4, 20), (20, 10), (10, 10), (10, 2)]
    assert [b.shape for b in clf.intercepts_] == [(20,), (10,), (10,), (2,)]


def test_random_state(data):
    """A fixed seed is research mode (same seed, same model, and the ledger says so); the
    default draws secret noise: fits differ and no seed is kept."""
    X, y = data
    a = _fast(random_state=3).fit(X, y)
    b = _fast(random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.model_.params, b.model_.params)
    assert a.seed_ == 3 and a.privacy_ledger_.noise_source == "research"
    free1 = _fast(random_state=None).fit(X, y)
    free2 = _fast(random_state=None).fit(X, y)
    assert free1.seed_ is None and free2.seed_ is None
    assert free1.privacy_ledger_.noise_source == "secret"
    assert not np.array_equal(free1.model_.params, free2.model_.params)
    rs = np.random.RandomState(0)
    c = _fast(random_state=rs)
    assert c.fit(X, y).seed_ != c.fit(X, y).seed_


def test_feature_names_and_pickle(data):
    X, y = data
    frame = pd.DataFrame(X, columns=["glucose", "bmi", "age", "pressure"])
    clf = _fast().fit(frame, y)
    np.testing.assert_array_equal(clf.feature_names_in_, frame.columns)
    assert clf.n_features_in_ == 4
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(frame), clf.predict_proba(frame))


# ---------------------------------------------------------------------- class weights


def test_class_weight_dict_is_a_public_prior(data):
    X, y = data
    spy = SpyEngine()
    names = np.array(["neg", "pos"])[y]
    with warnings.catch_warnings():
        _errors_except_benign()
        clf = _fast(engine=spy, class_weight={"pos": 3.0}).fit(X, names)
    np.testing.assert_array_equal(spy.jobs[0].weights, np.where(y == 1, 3.0, 1.0))
    # a public prior: no private query besides the gradients
    assert [c["query"] for c in clf.privacy_ledger_.components] == ["gradients"]
    with pytest.raises(ParameterError, match=r"not classes of y.*\['neg', 'pos'\]"):
        _fast(class_weight={"sick": 2.0}).fit(X, names)


def test_balanced_weights_spend_a_declared_share_of_epsilon(data):
    """Under DP, "balanced" weights come from Laplace-noised class counts that take
    BALANCED_COUNT_SHARE of ε: the total stays within ε, and the ledger shows the query and
    the released noisy counts (never the exact ones)."""
    X, y = data
    spy = SpyEngine()
    with warnings.catch_warnings():
        _errors_except_benign()
        clf = _fast(engine=spy, class_weight="balanced", epsilon=2.0).fit(X, y)
    led = clf.privacy_ledger_
    counts = next(c for c in led.components if c["query"] == "class_counts")
    assert counts["epsilon"] == pytest.approx(BALANCED_COUNT_SHARE * 2.0)
    assert counts["laplace_scale"] == pytest.approx(1.0 / (BALANCED_COUNT_SHARE * 2.0))
    n0, n1 = counts["noisy_counts"]
    assert [n0, n1] != [len(y) - int(y.sum()), int(y.sum())]  # noised
    expected = np.where(y == 1, (n0 + n1) / (2 * n1), (n0 + n1) / (2 * n0))
    np.testing.assert_allclose(spy.jobs[0].weights, expected)
    sgd = epsilon_spent(
        noise_multiplier=clf.noise_multiplier_,
        sample_rate=led.sample_rate,
        steps=led.steps,
        delta=led.delta,
        accountant="rdp",
    )
    assert clf.epsilon_ == pytest.approx(sgd + BALANCED_COUNT_SHARE * 2.0)
    assert 1.95 <= clf.epsilon_ <= 2.0
    # without privacy the exact counts are used
    spy2 = SpyEngine()
    _fast(epsilon=None, class_weight="balanced", engine=spy2).fit(X, y)
    n, n1 = len(y), int(y.sum())
    exact = np.where(y == 1, n / (2 * n1), n / (2 * (n - n1)))
    np.testing.assert_allclose(spy2.jobs[0].weights, exact)


def test_engine_object_and_device_are_passed_through(data):
    X, y = data
    spy = SpyEngine()
    _fast(engine=spy, device="cpu").fit(X, y)
    assert spy.device == "cpu"
    assert len(spy.jobs) == 1


@pytest.mark.gpu
def test_cuda_device_matches_cpu(data):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X, y = data
    cpu = _fast(epochs=3).fit(X, y)
    gpu = _fast(epochs=3, device="cuda").fit(X, y)
    np.testing.assert_allclose(gpu.model_.params, cpu.model_.params, rtol=0, atol=1e-4)
    assert gpu.privacy_ledger_ == cpu.privacy_ledger_


@pytest.mark.filterwarnings("ignore:Secure RNG turned off")
def test_opacus_engine_by_name(data):
    X, y = data
    clf = _fast(engine="opacus", epochs=2).fit(X, y)
    assert clf.predict_proba(X).shape == (len(y), 2)
    assert clf.epsilon_ <= 2.0


# ---------------------------------------------------------------------- refusals


def test_multiclass_is_refused(data):
    X, _ = data
    with pytest.raises(ValueError, match="Only binary classification is supported"):
        _fast().fit(X, np.arange(len(X)) % 3)


def test_one_class_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="needs rows of 2 classes; got 1 class"):
        _fast().fit(X, np.zeros_like(y))


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("epsilon", 0.0),
        ("epsilon", -1),
        ("epsilon", math.inf),
        ("epsilon", "high"),
        ("delta", 0.0),
        ("delta", 1.0),
        ("max_grad_norm", 0),
        ("batch_size", 0),
        ("batch_size", 2.5),
        ("epochs", 0),
        ("learning_rate", -0.1),
        ("accountant", "gdp"),
        ("engine", 3),
        ("class_weight", "inverse"),
        ("class_weight", {0: -1.0}),
        ("hidden_layer_sizes", (10, 0)),
        ("hidden_layer_sizes", "20,10"),
        ("random_state", -1),
        ("device", None),
    ],
)
def test_bad_parameters_are_named(data, param, value):
    X, y = data
    with pytest.raises(ParameterError, match=f"The '{param}' parameter of DPMLPClassifier"):
        _fast(**{param: value}).fit(X, y)


def test_unknown_engine_name(data):
    X, y = data
    with pytest.raises(ParameterError, match="engine must be one of"):
        _fast(engine="turbo").fit(X, y)


def test_epsilon_too_small_to_reach(data):
    X, y = data
    with pytest.raises(PrivacyError, match="budget is too small"):
        _fast(epsilon=1e-9).fit(X, y)


class DivergingEngine(SpyEngine):
    """Returns what an engine returns when SGD blew up: non-finite weights."""

    def train(self, jobs, *, device="cpu", threads=None):
        models = super().train(jobs, device=device, threads=threads)
        for m in models:
            m.params[0] = np.nan
        return models


def test_divergence_is_an_error(data):
    X, y = data
    with pytest.raises(ParameterError, match="training diverged"):
        _fast(epsilon=None, engine=DivergingEngine()).fit(X, y)


def test_unfitted_raises():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        DPMLPClassifier().predict(np.zeros((2, 3)))


# ---------------------------------------------------------------------- meta-estimators


def test_pipeline_and_cross_val_score(data):
    X, y = data
    model = make_pipeline(StandardScaler(), _fast(epochs=10, learning_rate=0.1))
    with warnings.catch_warnings():
        _errors_except_benign()  # evaluation is not tuning: no warning
        scores = cross_val_score(model, X * 50 + 3, y, cv=3, scoring="balanced_accuracy")
    assert scores.shape == (3,)
    assert np.all((scores >= 0) & (scores <= 1))
    fitted = model.fit(X, y)
    assert PREPROCESSING_NOTE in fitted[-1].privacy_ledger_.not_covered


def test_grid_search_warns_that_tuning_spends_privacy(data):
    X, y = data
    search = GridSearchCV(
        make_pipeline(StandardScaler(), _fast()),
        {"dpmlpclassifier__max_grad_norm": [0.5, 1.0]},
        cv=2,
    )
    with pytest.warns(PrivacyWarning, match="being tuned by GridSearchCV") as record:
        search.fit(X, y)
    assert len(record) >= 5  # 2 candidates x 2 folds + the refit
    ledger = search.best_estimator_[-1].privacy_ledger_
    assert any("GridSearchCV" in entry for entry in ledger.not_covered)


def test_grid_search_without_privacy_is_silent(data):
    X, y = data
    search = GridSearchCV(_fast(epsilon=None), {"learning_rate": [0.01, 0.1]}, cv=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        search.fit(X, y)
    assert search.best_estimator_.privacy_ledger_.privacy == "none"


def test_clone_keeps_parameters():
    clf = DPMLPClassifier((8, 4), epsilon=3.0, delta=1e-6, class_weight={1: 2.0})
    assert clone(clf).get_params() == clf.get_params()
