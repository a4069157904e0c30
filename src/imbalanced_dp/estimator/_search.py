"""``PrivateSearchCV``: the private hyperparameter search of ``imbalanced-dp tune`` as a
scikit-learn meta-estimator, and ``TunedDPClassifier``, the model it releases.

The estimator only validates its parameters and the data, turns ``(X, y)`` into a table
with labels 0 and 1 and calls :func:`imbalanced_dp.tuning.private_search`, the function the
command line calls: the search, its accounting (:func:`imbalanced_dp.privacy.plan_selection`)
and its ledger are the same objects, nothing is re-implemented here.
"""

from __future__ import annotations

import math
import numbers
import os
import secrets
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ..data import NEED_BOUNDS, Dataset, FittedScaler, PublicBounds, parse_bounds
from ..exceptions import DataError, ParameterError, SpecError
from ..privacy import PrivacyLedger, PrivacyWarning
from ..settings import SETTINGS
from ..tuning import (
    DEFAULT_HOLDOUT,
    DEFAULT_SPACE,
    DEFAULT_TRIALS,
    OBJECTIVES,
    SearchSettings,
    SearchSpace,
    load_space,
    private_search,
)
from ._classifier import (
    PREDICT_NOTE,
    PREPROCESSING_NOTE,
    RESEARCH_WARNING,
    TUNING_NOTE,
    _enclosing_tuner,
    saved_identity,
)

#: ``run["estimator"]`` of a model file written by :meth:`TunedDPClassifier.save`.
SAVED_BY = "PrivateSearchCV"
_MAX_SEED = 2**32 - 1
#: The settings of a candidate, as ``best_params_`` names them.
_CANDIDATE_KEYS = (
    "lr",
    "batch_size",
    "epochs",
    "clip",
    "layers",
    "mitigation",
    "threshold",
    "scaling",
)


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _binary_labels(est, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``classes_`` (sorted) and ``y`` as 0/1, ``classes_[1]`` being label 1 (the positive
    class): the rule of :class:`DPMLPClassifier`."""
    check_classification_targets(y)
    y_type = type_of_target(y, input_name="y")
    name = type(est).__name__
    if y_type != "binary":
        raise DataError(
            f"Only binary classification is supported. The type of the target is {y_type}. "
            f"{name} searches two-class models (label 1, the second of the sorted labels, is "
            "the positive class)."
        )
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(f"{name} needs rows of 2 classes; got 1 class ({classes[0]!r}) in y")
    return classes, np.searchsorted(classes, y).astype(np.int64)


class TunedDPClassifier(ClassifierMixin, BaseEstimator):
    """The model a private search released: an MLP trained by DP-SGD inside the search, with
    the feature scaling and the decision threshold the search chose.

    It is built by :meth:`PrivateSearchCV.fit` (its ``best_estimator_``) or read back by
    :meth:`load`; it has no settings of its own and is never fitted alone (its privacy
    comes from the search that trained it). Its ``privacy_ledger_`` is the search's: the ε
    it states covers the whole search and this model.

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two class labels, sorted; ``classes_[1]`` is label 1, the positive class.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when the search was fitted on a table with string column names.
    best_params_ : dict
        The chosen settings: ``lr``, ``batch_size``, ``epochs``, ``clip``, ``layers``,
        ``mitigation``, ``threshold`` (the rule), ``scaling``.
    best_score_ : float
        The search's objective of this model on its held-out rows (noisy under privacy).
    threshold_ : float or None
        The decision threshold on P(``classes_[1]``); ``None`` predicts the more probable
        class.
    scaler_ : FittedScaler
        ``(clip(x, lower, upper) − center) / scale``, applied before the network.
    model_ : TrainedModel
        The network (flat parameters; only the statistics a private run may release).
    coefs_, intercepts_ : list of ndarray
        Weight matrix (``(in, out)``) and bias vector of each layer.
    privacy_ledger_ : PrivacyLedger
        The search's ledger (theorem, trial distribution, per-candidate RDP, conversion).
    epsilon_ : float
        ε spent by the whole search and this model (``inf`` without privacy).
    delta_ : float or None
    seed_ : int or None
        The search's seed in research mode; ``None`` with secret noise.
    """

    def fit(self, X, y):
        """Refused: a tuned model comes from a search (fit a :class:`PrivateSearchCV`)."""
        raise ParameterError(
            f"a {type(self).__name__} is released by a private search and has no training of "
            "its own: fit a PrivateSearchCV (its best_estimator_), or read one with "
            f"{type(self).__name__}.load"
        )

    @classmethod
    def _build(
        cls,
        *,
        model,
        scaler: FittedScaler,
        threshold: float | None,
        classes: np.ndarray,
        n_features: int,
        feature_names: np.ndarray | None,
        best_params: dict,
        best_score: float,
        ledger: PrivacyLedger,
        seed: int | None,
    ) -> TunedDPClassifier:
        clf = cls()
        clf.classes_ = np.asarray(classes)
        clf.n_features_in_ = int(n_features)
        if feature_names is not None:
            clf.feature_names_in_ = np.asarray(feature_names, dtype=object)
        clf.best_params_ = dict(best_params)
        clf.best_score_ = float(best_score)
        clf.threshold_ = None if threshold is None else float(threshold)
        clf.scaler_ = scaler
        clf.model_ = model
        layers = model.layers()
        clf.coefs_ = [W.T.copy() for W, _ in layers]
        clf.intercepts_ = [b.copy() for _, b in layers]
        clf.privacy_ledger_ = ledger
        private = ledger.privacy != "none"
        clf.epsilon_ = float(ledger.epsilon_spent) if private else math.inf
        clf.delta_ = ledger.delta if private else None
        clf.seed_ = seed
        return clf

    # ------------------------------------------------------------------ predict

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of raw rows (scaled as in the search), columns in the order of
        ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, 2)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        with np.errstate(all="ignore"):
            return self.model_.predict_proba(self.scaler_.transform(X))

    def predict(self, X) -> np.ndarray:
        """``classes_[1]`` where P(``classes_[1]``) reaches ``threshold_`` (exceeds 0.5
        without one), ``classes_[0]`` elsewhere.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        p = self.predict_proba(X)[:, 1]
        positive = p > 0.5 if self.threshold_ is None else p >= self.threshold_
        return self.classes_[positive.astype(np.int64)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    # ------------------------------------------------------------------ files

    def save(self, path, *, search_params: dict | None = None) -> Path:
        """Write the model to ``path``, a safe versioned ``.skops`` file (the format of
        ``imbalanced-dp tune --out``: :mod:`imbalanced_dp.models`) with its scaling,
        threshold, class labels and the search's privacy ledger inside.

        Loading it never runs code; ``imbalanced-dp predict --model FILE --csv TABLE``
        applies it to a table whose columns carry ``feature_names_in_`` (or ``x0``,
        ``x1``, ...). ``search_params`` (used by :meth:`PrivateSearchCV.save`) are stored
        with it.

        Returns
        -------
        Path
            ``path``.
        """
        from ..models import SAVED_SCALER_NOTE, SavedModel
        from ..studies import versions

        classes, feature_names, has_names = saved_identity(self)
        ledger = self.privacy_ledger_.to_dict()
        if (
            self.scaler_.kind in ("standard", "minmax")
            and SAVED_SCALER_NOTE not in (ledger["not_covered"])
        ):
            ledger["not_covered"] = [*ledger["not_covered"], SAVED_SCALER_NOTE]
        model = SavedModel(
            layers=tuple(self.model_.arch.sizes),
            params=self.model_.params,
            feature_names=feature_names,
            scaler_mean=self.scaler_.center,
            scaler_scale=self.scaler_.scale,
            scaler_lower=self.scaler_.lower,
            scaler_upper=self.scaler_.upper,
            class_names=(str(classes[0]), str(classes[1])),
            kind="run",
            threshold=self.threshold_,
            ledger=ledger,
            run={
                "tuned": True,
                "estimator": SAVED_BY,
                **self.best_params_,
                "best_score": self.best_score_,
                "scaling_kind": self.scaler_.kind,
                "seed": self.seed_,
                "has_feature_names": has_names,
                "model_stats": self.model_.stats,
                "search_params": search_params,
            },
            classes=classes,
            versions=versions(),
        )
        return model.save(path)

    @classmethod
    def load(cls, path) -> TunedDPClassifier:
        """Read a model written by :meth:`save` (or :meth:`PrivateSearchCV.save`, or
        ``imbalanced-dp tune --out``: its labels are then 0 and 1); refuses any other file
        with a message naming what it holds."""
        from ..models import load_model

        return cls._from_saved(load_model(path), path)

    @classmethod
    def _from_saved(cls, m, path) -> TunedDPClassifier:
        from ..engines import TrainedModel
        from ..models import Architecture, ModelFileError

        if m.kind != "run" or not m.run.get("tuned"):
            what = (
                "a DPMLPClassifier (DPMLPClassifier.load)"
                if m.kind == "estimator"
                else (
                    "the model of a fixed-settings run (imbalanced-dp predict, or "
                    "imbalanced_dp.models.load_model)"
                )
            )
            raise ModelFileError(f"{path} is not a privately tuned model: it holds {what}")
        run = m.run
        ours = run.get("estimator") == SAVED_BY
        classes = np.asarray(m.classes) if m.classes is not None else np.array([0, 1])
        model = TrainedModel(
            Architecture(m.layers), m.params, stats=dict(run.get("model_stats") or {})
        )
        scaler = FittedScaler(
            str(run.get("scaling_kind") or run.get("scaling")),
            m.scaler_mean,
            m.scaler_scale,
            m.scaler_lower,
            m.scaler_upper,
        )
        # a tune --out file always has the table's column names
        named = run.get("has_feature_names") if ours else True
        return cls._build(
            model=model,
            scaler=scaler,
            threshold=m.threshold,
            classes=classes,
            n_features=m.layers[0],
            feature_names=np.asarray(m.feature_names, dtype=object) if named else None,
            best_params={k: run[k] for k in _CANDIDATE_KEYS if k in run},
            best_score=float(
                run["best_score"]
                if "best_score" in run
                else (m.ledger.get("selection") or {}).get("best_score", math.nan)
            ),
            ledger=PrivacyLedger.from_dict(m.ledger),
            seed=run.get("seed") if _research(m.ledger) else None,
        )


def _research(ledger: dict) -> bool:
    return ledger.get("noise_source") == "research"


class PrivateSearchCV(ClassifierMixin, BaseEstimator):
    """Private hyperparameter search for DP-SGD: the best of a random number of DP trials,
    the whole search paid for in ε.

    ``fit`` runs the search of ``imbalanced-dp tune`` on ``(X, y)``
    (:func:`imbalanced_dp.tuning.private_search`): the rows are divided record by record
    into rows the trials train on and held-out rows that score them; a random number ``K``
    of trials (truncated negative binomial of shape ``eta``, or Poisson) draw their
    settings from ``space``, train with DP-SGD and are scored with Gaussian noise on the
    held-out rows; only the best is released. Papernot & Steinke's private selection
    bounds the whole search (and, with ``retrain``, the final training) by ``epsilon`` at
    ``delta``; ``K``, the other trials' settings and their scores are never released.

    Unlike ``GridSearchCV`` it does not cross-validate: every fold would be another release
    of the same rows. "CV" says where it fits in scikit-learn, not how it scores.

    Parameters
    ----------
    space : dict, SearchSpace, str, path or None, default=None
        The values each trial draws from, uniformly and independently: a mapping of
        dimensions (``lr``, ``batch_size``, ``epochs``, ``clip``, ``layers``,
        ``mitigation``, ``threshold``, ``scaling``) to lists, the others taken from the
        default space (:data:`imbalanced_dp.tuning.DEFAULT_SPACE`); a
        :class:`~imbalanced_dp.tuning.SearchSpace`; or the path of a TOML file of the same
        keys. ``None`` is the default space. Without ``bounds``, scalings that need public
        bounds (``dp_standard``, ``public``) are left out unless ``scaling`` is given.
        ``"preset"`` layers are (20, 10, 10).
    epsilon : float or None
        Total ε of the search and the final model. ``None`` runs the same search without
        privacy (``round(trials)`` trials trained in the clear, scored exactly), a
        comparison that protects nothing.
    delta : float or None, default=None
        δ of the guarantee (``None``: 1e-4, or the largest power of ten not above
        1/(10 n) when that is smaller).
    objective : str, default="balanced_accuracy"
        What the search maximises on the held-out rows: ``"balanced_accuracy"``,
        ``"minority_recall"``, ``"f1"`` or ``"g_mean"`` (label 1 = ``classes_[1]`` is the
        positive class).
    trials : float, default=10
        The expected number of trials (the number itself is random and secret).
    eta : float, default=1.0
        Shape of the truncated negative binomial number of trials (Theorem 2): 1 is the
        geometric distribution, 0 the logarithmic; must stay 1 with ``poisson``.
    poisson : bool, default=False
        A Poisson number of trials instead (Theorem 6).
    holdout : float, default=0.35
        Expected share of the rows held out to score the trials, in [0.05, 0.5].
    retrain : bool, default=False
        Retrain the chosen settings on every row (its cost is inside ``epsilon``); by
        default the best trial is the model.
    bounds : PublicBounds, mapping or None, default=None
        Public bounds of the columns (``{column: [lower, upper]}``, or
        :func:`~imbalanced_dp.data.bundled_bounds`), needed by the ``dp_standard`` and
        ``public`` scalings. Never computed from the data.
    random_state : int, RandomState instance or None, default=None
        ``None``: the held-out rows, the number of trials, their settings and all noise come
        from secret randomness (fresh OS entropy, never kept). Anything else is research
        mode: they derive from the seed, the search repeats bit for bit, a
        :class:`~imbalanced_dp.privacy.PrivacyWarning` says so and the ledger states that
        the guarantee assumes the seed stays secret.
    n_jobs : int or None, default=None
        Threads that train the trials (``None`` one, ``-1`` all cores, as in joblib).

    Attributes
    ----------
    best_estimator_ : TunedDPClassifier
        The released model (its scaling and threshold included).
    best_params_ : dict
        Its settings (``threshold`` is the rule; ``threshold_`` its value).
    best_score_ : float
        Its objective on the held-out rows, with the search's noise (exact without privacy).
    threshold_ : float or None
        Decision threshold on P(``classes_[1]``); ``None`` for the more probable class.
    privacy_ledger_ : PrivacyLedger
        The search's ledger: ``epsilon_spent`` ≤ ``epsilon``; ``selection`` names the
        theorem, the trial distribution, the per-candidate RDP curve and the conversion.
    epsilon_ : float
        ε spent (``inf`` without privacy).
    delta_ : float or None
    space_ : SearchSpace
        The space searched (before batch sizes above the training rows are left out).
    classes_, n_features_in_, feature_names_in_, seed_
        As for :class:`DPMLPClassifier`.

    See Also
    --------
    imbalanced_dp.tuning.private_search : the search itself.
    DPMLPClassifier : one DP-SGD fit with settings fixed in advance.

    Notes
    -----
    The estimator does not take a ``DPMLPClassifier`` to tune: a trial is not a
    ``DPMLPClassifier`` fit (its noise comes from the search's calibration, and it may use a
    mitigation, a scaling or a threshold rule the classifier does not have), so a template
    would have parameters the search ignores. The space says everything a trial may vary.

    ε protects the rows given to ``fit``; rows given to ``predict`` or ``score`` are used in
    the clear. Tuning a ``PrivateSearchCV`` itself (``GridSearchCV`` over ``epsilon``, say)
    spends privacy beyond ``epsilon``: it warns, as :class:`DPMLPClassifier` does.

    References
    ----------
    Papernot & Steinke, "Hyperparameter Tuning with Renyi Differential Privacy", ICLR 2022.
    Liu & Talwar, "Private Selection from Private Candidates", STOC 2019.

    Examples
    --------
    >>> from imbalanced_dp import PrivateSearchCV, load_dataset
    >>> ds = load_dataset("pima")
    >>> search = PrivateSearchCV({"epochs": [5, 10], "layers": [[]]}, epsilon=2.0, trials=4)
    >>> search = search.fit(ds.X, ds.y)
    >>> search.epsilon_ <= 2.0, sorted(search.best_params_)[:3]
    (True, ['batch_size', 'clip', 'epochs'])
    >>> search.privacy_ledger_.selection["theorem"][:36]
    'Papernot & Steinke (ICLR 2022), Theo'
    >>> search.predict(ds.X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        space: Mapping | SearchSpace | str | os.PathLike | None = None,
        *,
        epsilon: float | None,
        delta: float | None = None,
        objective: str = "balanced_accuracy",
        trials: float = DEFAULT_TRIALS,
        eta: float = 1.0,
        poisson: bool = False,
        holdout: float = DEFAULT_HOLDOUT,
        retrain: bool = False,
        bounds: PublicBounds | Mapping | None = None,
        random_state: int | np.random.RandomState | None = None,
        n_jobs: int | None = None,
    ) -> None:
        self.space = space
        self.epsilon = epsilon
        self.delta = delta
        self.objective = objective
        self.trials = trials
        self.eta = eta
        self.poisson = poisson
        self.holdout = holdout
        self.retrain = retrain
        self.bounds = bounds
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ validation

    def _invalid(self, name: str, expected: str) -> ParameterError:
        return ParameterError(
            f"The {name!r} parameter of {type(self).__name__} must be {expected}. "
            f"Got {getattr(self, name)!r} instead."
        )

    def _settings(self) -> SearchSettings:
        for param, setting in (("epsilon", "epsilon"), ("delta", "delta")):
            value = getattr(self, param)
            if value is not None and SETTINGS[setting].problem(value) is not None:
                none = " or None (no privacy)" if param == "epsilon" else " or None"
                raise self._invalid(param, SETTINGS[setting].expected + none)
        if not (isinstance(self.objective, str) and self.objective in OBJECTIVES):
            raise self._invalid("objective", f"one of {sorted(OBJECTIVES)}")
        for param in ("trials", "eta", "holdout"):
            value = getattr(self, param)
            if not (_is_number(value) and math.isfinite(float(value))):
                raise self._invalid(param, "a finite float")
        for param in ("poisson", "retrain"):
            if not isinstance(getattr(self, param), bool | np.bool_):
                raise self._invalid(param, "a bool")
        if self.poisson and float(self.eta) != 1.0:
            raise ParameterError(
                f"{type(self).__name__}: give either poisson=True or eta (the shape of the "
                f"truncated negative binomial), not both; got eta={self.eta!r} with poisson=True"
            )
        try:
            return SearchSettings(
                objective=self.objective,
                trials=float(self.trials),
                eta=float(self.eta),
                poisson=bool(self.poisson),
                holdout=float(self.holdout),
                retrain=bool(self.retrain),
            )
        except ParameterError as exc:
            raise ParameterError(f"{type(self).__name__}: {exc}") from None

    def _space(self) -> tuple[SearchSpace, bool]:
        """The space, and whether it names its scalings (else those needing bounds may be
        dropped)."""
        s = self.space
        try:
            if s is None:
                return SearchSpace.default(), False
            if isinstance(s, SearchSpace):
                return s, s.scaling != tuple(DEFAULT_SPACE["scaling"])
            if isinstance(s, str | os.PathLike):
                values = load_space(s)
                return SearchSpace.from_dict(values), "scaling" in values
            if isinstance(s, Mapping):
                return SearchSpace.from_dict(dict(s)), "scaling" in s
        except SpecError as exc:
            raise ParameterError(
                f"The 'space' parameter of {type(self).__name__} is not a valid search space: {exc}"
            ) from None
        raise self._invalid(
            "space", "a mapping of dimensions to lists, a SearchSpace, a TOML file or None"
        )

    def _bounds(self, names: list[str]) -> PublicBounds | None:
        b = self.bounds
        if b is None:
            return None
        if isinstance(b, PublicBounds):
            if len(b.columns) == len(names) and not hasattr(self, "feature_names_in_"):
                names = list(b.columns)  # plain arrays: the bounds' own column order
            elif set(b.columns) != set(names):
                raise DataError(
                    f"the public bounds are for columns {', '.join(b.columns[:4])}"
                    f"{' ...' if len(b.columns) > 4 else ''}; X has {len(names)} columns "
                    f"({', '.join(names[:4])}{' ...' if len(names) > 4 else ''})"
                )
            pos = {c: i for i, c in enumerate(b.columns)}
            idx = [pos[c] for c in names]

            def pick(a):
                return None if a is None else np.asarray(a)[idx]

            return PublicBounds(
                tuple(names), pick(b.lower), pick(b.upper), pick(b.mean), pick(b.std), b.source
            )
        if isinstance(b, Mapping):
            return parse_bounds(dict(b), names, source="given to PrivateSearchCV")
        raise self._invalid("bounds", "a PublicBounds, a mapping {column: [lower, upper]} or None")

    def _seed(self) -> int | None:
        rs = self.random_state
        if rs is None:
            return None
        if _is_int(rs):
            if not 0 <= rs <= _MAX_SEED:
                raise self._invalid(
                    "random_state", f"an int in [0, {_MAX_SEED}], a RandomState or None"
                )
            return int(rs)
        if isinstance(rs, np.random.Generator):
            return int(rs.integers(np.iinfo(np.int32).max))
        try:
            return int(check_random_state(rs).randint(np.iinfo(np.int32).max))
        except ValueError:
            raise self._invalid("random_state", "an int, a RandomState or None") from None

    def _threads(self) -> int:
        n = self.n_jobs
        if n is not None and not (_is_int(n) and n != 0):
            raise self._invalid("n_jobs", "a non-zero int or None")
        from joblib import effective_n_jobs

        return max(1, int(effective_n_jobs(n)))

    # ------------------------------------------------------------------ fit

    def fit(self, X, y) -> PrivateSearchCV:
        """Search privately on ``X`` and ``y`` and keep the best trial (see the class
        docstring); everything is checked before anything trains.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric features (the search scales them as the space says).
        y : array-like of shape (n_samples,)
            Two class labels; the second of the sorted labels is the positive class.

        Returns
        -------
        self : PrivateSearchCV

        Raises
        ------
        ValueError
            :class:`~imbalanced_dp.exceptions.ParameterError` for a bad parameter or space,
            :class:`~imbalanced_dp.exceptions.DataError` for data the search cannot use
            (not binary, too few rows of a class to score the trials),
            :class:`~imbalanced_dp.exceptions.PrivacyError` for δ ≥ 1/n or a budget too
            small for the search.
        """
        settings = self._settings()
        space, scaling_given = self._space()
        threads = self._threads()
        seed = self._seed()
        X, y = validate_data(self, X, y, dtype=np.float64)
        classes, y01 = _binary_labels(self, y)
        names_in = getattr(self, "feature_names_in_", None)
        names = (
            [str(c) for c in names_in]
            if names_in is not None
            else [f"x{j}" for j in range(X.shape[1])]
        )
        bounds = self._bounds(names)
        if bounds is None and not scaling_given:
            kept = [s for s in space.scaling if s not in NEED_BOUNDS] or ["standard"]
            space = space.with_values(scaling=kept)
        private = self.epsilon is not None
        research = seed is not None
        if research and private:
            rs = self.random_state
            warnings.warn(
                RESEARCH_WARNING.format(
                    name=type(self).__name__, rs=rs if _is_int(rs) else type(rs).__name__
                ),
                PrivacyWarning,
                stacklevel=2,
            )
        tuner = _enclosing_tuner() if private else None
        if tuner is not None:
            warnings.warn(
                f"{type(self).__name__} is being tuned by {tuner} on the data it is fitted "
                "on: each search's epsilon covers that search only, and selecting among them "
                "spends privacy beyond epsilon that is not accounted for (docs/privacy.md, "
                "rules 8 and 13); fix the search's own parameters in advance",
                PrivacyWarning,
                stacklevel=2,
            )
        table = Dataset(
            name=type(self).__name__,
            X=X,
            y=y01,
            feature_names=tuple(names),
            class_names=(str(classes[0]), str(classes[1])),
        )
        try:
            res = private_search(
                table,
                np.arange(table.n_rows),
                epsilon=None if not private else float(self.epsilon),
                space=space,
                settings=settings,
                delta=None if self.delta is None else float(self.delta),
                # (secret noise ignores the seed; a search without privacy draws from it)
                seed=seed if seed is not None else secrets.randbits(31),
                reproducible=research,
                bounds=bounds,
                threads=threads,
            )
        except SpecError as exc:
            raise ParameterError(
                f"The 'space' parameter of {type(self).__name__} does not fit this data: {exc}"
            ) from None
        ledger = res.ledger
        if private:
            not_covered = [PREPROCESSING_NOTE, *ledger.not_covered]
            if tuner is not None:
                not_covered.append(TUNING_NOTE.format(search=tuner))
            ledger = replace(ledger, not_covered=not_covered, notes=[*ledger.notes, PREDICT_NOTE])
        from ..engines import TrainedModel, public_stats

        model = TrainedModel(
            res.model.arch,
            res.model.params,
            stats=public_stats(res.model.stats, private=private),
            seconds=res.model.seconds,
        )
        best = self.best_estimator_ = TunedDPClassifier._build(
            model=model,
            scaler=res.scaler,
            threshold=res.threshold,
            classes=classes,
            n_features=X.shape[1],
            feature_names=names_in,
            best_params=res.best.to_dict(),
            best_score=res.score,
            ledger=ledger,
            seed=seed,
        )
        self._fitted_from(best)
        self.space_ = space
        return self

    def _fitted_from(self, best: TunedDPClassifier) -> None:
        self.classes_ = best.classes_
        self.best_params_ = best.best_params_
        self.best_score_ = best.best_score_
        self.threshold_ = best.threshold_
        self.privacy_ledger_ = best.privacy_ledger_
        self.epsilon_ = best.epsilon_
        self.delta_ = best.delta_
        self.seed_ = best.seed_

    # ------------------------------------------------------------------ predict

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of the released model (``best_estimator_.predict_proba``)."""
        check_is_fitted(self)
        return self.best_estimator_.predict_proba(X)

    def predict(self, X) -> np.ndarray:
        """Labels from ``classes_`` by the released model's threshold
        (``best_estimator_.predict``)."""
        check_is_fitted(self)
        return self.best_estimator_.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    # ------------------------------------------------------------------ files

    def _params_for_file(self) -> dict:
        rs = self.random_state
        return {
            "space": self.space_.to_dict(),
            "epsilon": self.epsilon,
            "delta": self.delta,
            "objective": self.objective,
            "trials": float(self.trials),
            "eta": float(self.eta),
            "poisson": bool(self.poisson),
            "holdout": float(self.holdout),
            "retrain": bool(self.retrain),
            "bounds": None if self.bounds is None else self._file_bounds(),
            "random_state": int(rs) if _is_int(rs) else None,
            "n_jobs": self.n_jobs,
        }

    def _file_bounds(self) -> dict:
        names = getattr(self, "feature_names_in_", None)
        cols = (
            [str(c) for c in names]
            if names is not None
            else [f"x{j}" for j in range(self.n_features_in_)]
        )
        return {"public_bounds": self._bounds(cols).as_tuples()}

    def save(self, path) -> Path:
        """Write the fitted search to ``path``: the released model
        (:meth:`TunedDPClassifier.save`, readable by ``imbalanced-dp predict``) with the
        search's parameters, so that :meth:`load` gives this search back.

        Returns
        -------
        Path
            ``path``.
        """
        check_is_fitted(self)
        return self.best_estimator_.save(path, search_params=self._params_for_file())

    @classmethod
    def load(cls, path) -> PrivateSearchCV:
        """Read a search written by :meth:`save` (or the model of ``imbalanced-dp tune
        --out``), fitted: it predicts as the search that wrote it did. Its ``space`` is the
        space that was searched, as a dict. Fitting it again runs a new search, which spends
        its own ε (for a ``tune --out`` file, with this estimator's ``"preset"`` layers and
        without the table's public bounds unless ``bounds`` is set)."""
        from ..models import load_model

        m = load_model(path)
        best = TunedDPClassifier._from_saved(m, path)
        run = m.run
        params = run.get("search_params")
        if params is None:  # a tune --out file: its settings
            s = run.get("search") or {}
            params = {
                "epsilon": run.get("epsilon"),
                "objective": s.get("objective", "balanced_accuracy"),
                "trials": s.get("trials", DEFAULT_TRIALS),
                "eta": 1.0 if s.get("eta") is None else s["eta"],
                "poisson": bool(s.get("poisson", False)),
                "holdout": s.get("holdout", DEFAULT_HOLDOUT),
                "retrain": bool(s.get("retrain", False)),
            }
            space = (best.privacy_ledger_.selection or {}).get("space")
            if space is not None:
                params["space"] = space
        params = dict(params)
        b = params.get("bounds")
        if isinstance(b, dict) and "public_bounds" in b:
            params["bounds"] = PublicBounds.from_tuples(b["public_bounds"])
        search = cls(**params)
        search.best_estimator_ = best
        search.n_features_in_ = best.n_features_in_
        if hasattr(best, "feature_names_in_"):
            search.feature_names_in_ = best.feature_names_in_
        search._fitted_from(best)
        search.space_ = SearchSpace.from_dict(params["space"]) if "space" in params else None
        return search
