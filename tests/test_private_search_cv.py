"""PrivateSearchCV (issue 14, item 4): the private search of ``imbalanced-dp tune`` as a
scikit-learn meta-estimator, with the same accounting, a model that saves and loads, and bad
input refused before anything trains."""

from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from imbalanced_dp import DPMLPClassifier, PrivateSearchCV, load_dataset
from imbalanced_dp.data import Dataset, bundled_bounds
from imbalanced_dp.estimator import (
    PREPROCESSING_NOTE,
    DPStandardScaler,
    TunedDPClassifier,
    pipeline_privacy,
)
from imbalanced_dp.exceptions import DataError, ParameterError, PrivacyError, TrainingError
from imbalanced_dp.models import ModelFileError, load_model
from imbalanced_dp.privacy import PrivacyWarning
from imbalanced_dp.tuning import SearchSettings, SearchSpace, private_search
from test_cli import cli

ROOT = Path(__file__).resolve().parents[1]

#: A small space so that a search takes about a second: logistic models, few epochs.
SMALL = {"epochs": [5, 10], "layers": [[]], "scaling": ["standard"]}
THEOREM_2 = "Papernot & Steinke (ICLR 2022), Theorem 2"
THEOREM_6 = "Papernot & Steinke (ICLR 2022), Theorem 6"


def _data(name: str):
    ds = load_dataset(name)
    return ds.X, ds.y


@pytest.fixture(autouse=True)
def _no_other_warning():
    """Every warning is an error here, as in a user's strict test suite (in particular a
    search never warns that its own trials are being tuned), except the research-mode
    notice of a fixed random_state: the tests fix seeds on purpose, and
    test_research_mode_is_the_direct_search checks that notice itself."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=r"PrivateSearchCV\(random_state=.*research")
        yield


# ---------------------------------------------------------------------- the accounting


@pytest.mark.parametrize(
    ("dataset", "poisson", "theorem"),
    [("pima", False, THEOREM_2), ("breast_cancer", True, THEOREM_6)],
)
def test_the_whole_search_spends_at_most_epsilon_and_names_its_theorem(dataset, poisson, theorem):
    X, y = _data(dataset)
    # a Poisson number of trials is 0 with probability exp(-mean), and then nothing is
    # released (test_a_poisson_search_that_draws_no_trial_releases_nothing): mean 12 makes
    # that 6e-6 instead of 2 %
    trials = 12 if poisson else 4
    search = PrivateSearchCV(SMALL, epsilon=1.5, trials=trials, poisson=poisson).fit(X, y)
    led = search.privacy_ledger_
    assert 0 < search.epsilon_ <= 1.5
    assert led.epsilon_spent == search.epsilon_ and led.epsilon_target == 1.5
    assert led.delta == search.delta_ == 1e-4
    assert led.selection["theorem"].startswith(theorem)
    assert led.selection["epsilon_total"] == search.epsilon_
    assert led.selection["distribution"] == (
        "poisson" if poisson else "truncated_negative_binomial"
    )
    # one trial alone would have spent less than the whole search
    lo, hi = led.selection["candidate_epsilon_range"]
    assert 0 < lo <= hi < search.epsilon_
    assert led.noise_source == "secret" and search.seed_ is None
    assert PREPROCESSING_NOTE in led.not_covered
    assert any("held-out" in x for x in led.not_covered)
    # the released model is the search's, with the same ledger and settings
    best = search.best_estimator_
    assert isinstance(best, TunedDPClassifier)
    assert best.privacy_ledger_ is led and best.epsilon_ == search.epsilon_
    assert set(search.best_params_) == set(SearchSpace.default().to_dict())
    assert search.best_params_["epochs"] in SMALL["epochs"]
    assert search.best_params_["layers"] == []
    assert search.best_score_ == led.selection["best_score"]
    # the number of trials is secret: nothing the search exposes carries it
    assert not any("n_trials" in k or k == "k" for k in vars(search))
    assert "trials_run" not in led.selection


def test_a_poisson_search_that_draws_no_trial_releases_nothing(monkeypatch):
    """K = 0 (probability exp(-mean) under Theorem 6): an error that says so, no model; the
    search is not drawn again (that would be another distribution, outside the theorem)."""
    from imbalanced_dp.privacy import TrialDistribution

    draws = []

    def none_drawn(self, rng):
        draws.append(self.kind)
        return 0

    monkeypatch.setattr(TrialDistribution, "sample", none_drawn)
    X, y = _data("pima")
    search = PrivateSearchCV(SMALL, epsilon=1.5, trials=4, poisson=True)
    with pytest.raises(TrainingError, match=r"drew no trial .*exp\(-4\)"):
        search.fit(X, y)
    assert draws == ["poisson"]
    assert not hasattr(search, "best_estimator_")


def test_research_mode_is_the_direct_search():
    """With a seed, the estimator is private_search on the same table: the same settings,
    score, ledger and predictions (the accounting is the CLI's, not a copy of it)."""
    X, y = _data("pima")
    # (any other warning, such as "being tuned", is re-raised on exit, hence an error)
    with pytest.warns(PrivacyWarning, match=r"PrivateSearchCV\(random_state=7\).*research"):
        search = PrivateSearchCV(SMALL, epsilon=2.0, trials=5, random_state=7).fit(X, y)
    table = Dataset(
        name="direct",
        X=X,
        y=y,
        feature_names=tuple(f"x{j}" for j in range(X.shape[1])),
        class_names=("0", "1"),
    )
    res = private_search(
        table,
        np.arange(len(y)),
        epsilon=2.0,
        space=SearchSpace.from_dict(SMALL),
        settings=SearchSettings(trials=5.0),  # (floats, as the CLI and the estimator pass)
        seed=7,
        reproducible=True,
        threads=1,
    )
    assert search.best_params_ == res.best.to_dict()
    assert search.best_score_ == res.score
    assert search.threshold_ == res.threshold
    assert search.epsilon_ == res.ledger.epsilon_spent
    assert search.privacy_ledger_.selection == res.ledger.selection
    assert search.privacy_ledger_.noise_source == "research" and search.seed_ == 7
    np.testing.assert_array_equal(search.predict_proba(X), res.predict_proba(X))
    np.testing.assert_array_equal(search.predict(X), res.predict(X))
    # and a second fit with the seed repeats it
    again = clone(search).fit(X, y)
    np.testing.assert_array_equal(again.predict_proba(X), search.predict_proba(X))


def test_labels_are_the_classifiers_and_the_threshold_decides():
    """Any two labels: the second of the sorted ones is label 1 (the positive class), as in
    DPMLPClassifier; predict applies the chosen threshold to P(classes_[1])."""
    X, y = _data("breast_cancer")
    labels = np.where(y == 1, "malignant", "benign")
    space = {**SMALL, "threshold": [0.3]}
    search = PrivateSearchCV(space, epsilon=2.0, trials=3, random_state=1).fit(X, labels)
    assert search.classes_.tolist() == ["benign", "malignant"]
    assert search.threshold_ == 0.3 and search.best_params_["threshold"] == 0.3
    p = search.predict_proba(X)
    assert p.shape == (len(y), 2) and np.allclose(p.sum(axis=1), 1.0)
    expected = np.where(p[:, 1] >= 0.3, "malignant", "benign")
    np.testing.assert_array_equal(search.predict(X), expected)
    assert search.score(X, labels) == pytest.approx(np.mean(expected == labels))
    # a pickle (which runs code when loaded: prefer save) keeps the model
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(search)).predict_proba(X), p)
    # the same search on 0/1 labels is the same model (label 1 = "malignant")
    plain = PrivateSearchCV(space, epsilon=2.0, trials=3, random_state=1).fit(X, y)
    np.testing.assert_array_equal(plain.predict_proba(X), p)


def test_without_privacy_the_ledger_claims_nothing():
    X, y = _data("pima")
    search = PrivateSearchCV(SMALL, epsilon=None, trials=3).fit(X, y)
    assert search.epsilon_ == np.inf and search.delta_ is None
    assert search.privacy_ledger_.privacy == "none"
    assert search.privacy_ledger_.selection["private"] is False


def test_its_ledger_adds_up_in_a_pipeline():
    """A DP scaler before the search: pipeline_privacy adds both, and no longer lists the
    preprocessing as outside ε."""
    ds = load_dataset("pima")
    bounds = bundled_bounds("pima", ds.feature_names)
    space = {**SMALL, "scaling": ["none"]}
    model = make_pipeline(
        DPStandardScaler(epsilon=0.2, bounds=bounds), PrivateSearchCV(space, epsilon=1.8, trials=3)
    )
    total = pipeline_privacy(model.fit(ds.X, ds.y))
    assert [s["estimator"] for s in total.steps] == ["DPStandardScaler", "PrivateSearchCV"]
    assert total.epsilon <= 2.0 and total.epsilon == pytest.approx(0.2 + model[-1].epsilon_)
    assert PREPROCESSING_NOTE not in total.not_covered


def test_dp_scaling_with_public_bounds_is_searched():
    ds = load_dataset("pima")
    frame = pd.DataFrame(ds.X, columns=ds.feature_names)
    bounds = bundled_bounds("pima", ds.feature_names)
    search = PrivateSearchCV(
        {**SMALL, "scaling": ["dp_standard"]}, epsilon=2.0, trials=3, bounds=bounds
    ).fit(frame, ds.y)
    assert search.best_params_["scaling"] == "dp_standard"
    assert search.epsilon_ <= 2.0
    assert not any("standardisation" in x for x in search.privacy_ledger_.not_covered)
    # a mapping of the same bounds works too, columns matched by name
    spec = {
        c: [float(lo), float(hi)] for c, lo, hi in zip(bounds.columns, bounds.lower, bounds.upper)
    }
    assert clone(search).set_params(bounds=spec).fit(frame, ds.y).epsilon_ <= 2.0


# ---------------------------------------------------------------------- files


def test_save_and_load_give_the_same_model(tmp_path):
    ds = load_dataset("breast_cancer")
    frame = pd.DataFrame(ds.X, columns=ds.feature_names)
    labels = np.where(ds.y == 1, "malignant", "benign")
    search = PrivateSearchCV(
        {**SMALL, "threshold": ["argmax", "prior"]}, epsilon=2.0, trials=4, random_state=3
    ).fit(frame, labels)
    path = search.save(tmp_path / "tuned.skops")

    back = PrivateSearchCV.load(path)
    np.testing.assert_allclose(back.predict_proba(frame), search.predict_proba(frame))
    np.testing.assert_array_equal(back.predict(frame), search.predict(frame))
    assert back.classes_.tolist() == ["benign", "malignant"]
    assert back.best_params_ == search.best_params_ and back.best_score_ == search.best_score_
    assert back.threshold_ == search.threshold_
    assert back.epsilon_ == search.epsilon_ and back.delta_ == search.delta_
    assert back.privacy_ledger_.selection == search.privacy_ledger_.selection
    assert back.get_params()["epsilon"] == 2.0 and back.get_params()["random_state"] == 3
    assert list(back.feature_names_in_) == list(ds.feature_names)

    model = TunedDPClassifier.load(path)
    np.testing.assert_allclose(model.predict_proba(frame), search.predict_proba(frame))
    # the file is the one imbalanced-dp predict applies: same probabilities and decisions
    saved = load_model(path)
    p = saved.predict_proba(ds.X)
    np.testing.assert_allclose(p, search.predict_proba(frame), rtol=1e-9, atol=1e-12)
    assert saved.class_names == ("benign", "malignant")
    np.testing.assert_array_equal(
        np.asarray(saved.class_names)[saved.decide(p[:, 1])], search.predict(frame)
    )
    # never mistaken for another kind of model
    with pytest.raises(ModelFileError, match=r"not a privately tuned model.*DPMLPClassifier"):
        TunedDPClassifier.load(_dp_mlp_file(tmp_path))
    with pytest.raises(ModelFileError, match="not a DPMLPClassifier"):
        DPMLPClassifier.load(path)


def _dp_mlp_file(tmp_path: Path) -> Path:
    X, y = _data("pima")
    clf = DPMLPClassifier(epsilon=None, epochs=1).fit(X, y)
    return clf.save(tmp_path / "mlp.skops")


def test_the_model_of_tune_out_loads_as_a_search(capsys, tmp_path):
    out = tmp_path / "tuned"
    code, stdout, err = cli(
        capsys,
        "tune",
        "--dataset",
        "pima",
        "--epsilon",
        "2",
        "--epochs",
        "5",
        "--layers",
        "none",
        "--trials",
        "3",
        "--no-compare",
        "--reproducible",
        "--json",
        "--out",
        out,
    )
    assert code == 0, err
    j = json.loads(stdout)
    search = PrivateSearchCV.load(out / "model.skops")
    best = {k: v for k, v in j["best"].items() if k != "decision_threshold"}
    assert search.best_params_ == best
    assert search.threshold_ == j["best"]["decision_threshold"]
    assert search.epsilon_ == j["epsilon_total"] and search.get_params()["epsilon"] == 2.0
    ds = load_dataset("pima")
    frame = pd.DataFrame(ds.X, columns=ds.feature_names)  # the file names its columns
    assert list(search.feature_names_in_) == list(ds.feature_names)
    saved = load_model(out / "model.skops")
    p = saved.predict_proba(ds.X)
    np.testing.assert_allclose(search.predict_proba(frame), p, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(search.predict(frame), saved.decide(p[:, 1]))


# ---------------------------------------------------------------------- scikit-learn


def test_clone_and_get_params():
    search = PrivateSearchCV(SMALL, epsilon=1.0, trials=5, objective="g_mean", n_jobs=2)
    twin = clone(search)
    assert twin.get_params() == search.get_params()
    assert twin.get_params()["space"] == SMALL and twin.get_params()["objective"] == "g_mean"
    assert twin.set_params(epsilon=3.0).epsilon == 3.0 and search.epsilon == 1.0
    with pytest.raises(NotFittedError):
        twin.predict(np.zeros((1, 8)))
    with pytest.raises(ParameterError, match="released by a private search"):
        TunedDPClassifier().fit(np.zeros((4, 2)), [0, 1, 0, 1])


def test_tuning_the_search_itself_warns_and_is_recorded():
    """GridSearchCV over PrivateSearchCV selects among private searches on the same rows:
    that selection is outside ε, as for DPMLPClassifier."""
    X, y = _data("pima")
    grid = GridSearchCV(
        PrivateSearchCV(SMALL, epsilon=2.0, trials=2),
        {"objective": ["balanced_accuracy", "g_mean"]},
        cv=2,
        error_score="raise",
    )
    with pytest.warns(PrivacyWarning, match="being tuned by GridSearchCV"):
        grid.fit(X, y)
    led = grid.best_estimator_.privacy_ledger_
    assert any("GridSearchCV" in x for x in led.not_covered)


# ---------------------------------------------------------------------- bad input


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a trial starts training."""
    import imbalanced_dp.tuning._search as search_module

    def refuse(*args, **kwargs):
        raise AssertionError("a trial was trained")

    monkeypatch.setattr(search_module, "_train", refuse)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"epsilon": -1.0}, ParameterError, "'epsilon' parameter of PrivateSearchCV"),
        ({"epsilon": "2"}, ParameterError, "'epsilon' parameter"),
        ({"delta": 1.5}, ParameterError, "'delta' parameter"),
        ({"objective": "auc"}, ParameterError, "'objective' parameter"),
        ({"trials": 0.5}, ParameterError, "expected number of trials"),
        ({"trials": None}, ParameterError, "'trials' parameter"),
        ({"eta": -2.0}, ParameterError, "eta"),
        ({"poisson": True, "eta": 0.5}, ParameterError, "either poisson=True or eta"),
        ({"poisson": "yes"}, ParameterError, "'poisson' parameter"),
        ({"holdout": 0.9}, ParameterError, "held-out share"),
        ({"space": {"lr": []}}, ParameterError, "'space' parameter.*lr.*empty"),
        ({"space": {"learning_rate": [0.1]}}, ParameterError, "unknown search space key"),
        ({"space": {"mitigation": ["oversample"]}}, ParameterError, "'space' parameter"),
        ({"space": 42}, ParameterError, "'space' parameter"),
        ({"space": "/no/such/space.toml"}, ParameterError, "no such file"),
        ({"space": {**SMALL, "batch_size": [5000]}}, ParameterError, "every batch size"),
        ({"space": {**SMALL, "scaling": ["dp_standard"]}}, ParameterError, "public bounds"),
        ({"bounds": 3}, ParameterError, "'bounds' parameter"),
        ({"bounds": {"nope": [0, 1]}}, DataError, "column 'nope'"),
        ({"n_jobs": 0}, ParameterError, "'n_jobs' parameter"),
        ({"random_state": -1}, ParameterError, "'random_state' parameter"),
        ({"epsilon": 0.01}, PrivacyError, "cannot pay for a private search"),
        ({"delta": 0.01}, PrivacyError, "delta"),
    ],
)
def test_bad_input_is_refused_before_anything_trains(no_training, params, error, match):
    X, y = _data("pima")
    kwargs = {"space": SMALL, "epsilon": 2.0, "trials": 3, **params}
    with pytest.raises(error, match=match):
        PrivateSearchCV(**kwargs).fit(X, y)


@pytest.mark.parametrize(
    ("y_of", "match"),
    [
        (lambda y: np.arange(len(y)) % 3, "Only binary"),
        (lambda y: np.zeros(len(y), dtype=int), "2 classes"),
        # 12 positives: about 2 of them held out, too few to score a trial
        (lambda y: (np.arange(len(y)) < 12).astype(int), "not defined for this table"),
    ],
)
def test_data_the_search_cannot_use_is_refused(no_training, y_of, match):
    X, y = _data("pima")
    with pytest.raises(DataError, match=match):
        PrivateSearchCV(SMALL, epsilon=2.0, trials=3).fit(X, y_of(y))


# ---------------------------------------------------------------------- the README


def _section_code(text: str, title: str) -> str:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == title)
    body = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        body.append(line)
    return "".join(re.findall(r"^```python\n(.*?)^```", "\n".join(body) + "\n", re.S | re.M))


def test_the_readme_tune_section_runs_as_written(tmp_path):
    """The README's Python example of private tuning runs with every warning an error."""
    code = _section_code((ROOT / "README.md").read_text(encoding="utf-8"), "## Tune privately")
    assert "PrivateSearchCV" in code
    script = tmp_path / "tune_example.py"
    script.write_text(code, encoding="utf-8")
    strict = textwrap.dedent(
        """\
        import runpy, sys, warnings
        warnings.simplefilter("error")
        runpy.run_path(sys.argv[1], run_name="__main__")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", strict, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "ε spent by the whole search" in done.stdout
    assert list(tmp_path.iterdir()) == [script]  # writes nothing
