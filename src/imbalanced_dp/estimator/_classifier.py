"""``DPMLPClassifier``: a multilayer perceptron trained by DP-SGD, as a scikit-learn estimator.

The estimator is a thin front door over the library: it validates its parameters and the
data, fixes the public constants of the mechanism (sample rate, steps, expected batch size),
calibrates the noise multiplier with a maintained accountant, hands one
:class:`~imbalanced_dp.engines.TrainJob` to an engine and keeps the trained model with its
privacy ledger. Nothing about the mechanism is re-implemented here.
"""

from __future__ import annotations

import math
import numbers
import secrets
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ..engines import Engine, RunConfig, TrainJob, get_engine, public_stats
from ..exceptions import ParameterError
from ..models import DEFAULT_HIDDEN, DEFAULT_LR, architecture
from ..privacy import (
    ACCOUNTANTS,
    DEFAULT_ACCOUNTANT,
    ONCE_LAPLACE,
    PrivacyWarning,
    QuerySpec,
    default_delta,
    plan_run,
)
from ..settings import SETTINGS

#: Ledger entry of every private fit: the estimator cannot see what the caller fitted on the
#: same rows before handing them over (docs/privacy.md, rule 8).
PREPROCESSING_NOTE = (
    "preprocessing fitted on the training rows before they reach the classifier (e.g. a "
    "StandardScaler or an imputer in a Pipeline) is outside DP-SGD: it is not covered by "
    "epsilon"
)
#: Ledger entry of every private fit: the settings are the caller's choice.
ESTIMATOR_HYPERPARAMETER_NOTE = (
    "hyperparameters (architecture, learning rate, epochs, batch size, clip bound, class "
    "weights) are taken as given; choosing them by looking at this data (e.g. a grid search) "
    "spends privacy beyond epsilon"
)
#: Share of ε that ``class_weight="balanced"`` spends on Laplace-noised class counts.
BALANCED_COUNT_SHARE = 0.05
BALANCED_QUERY = "class_counts"
#: Warning of a private fit with a ``random_state`` (research mode).
RESEARCH_WARNING = (
    "{name}(random_state={rs!r}) trains in research mode: sampling and noise derive from the "
    "seed, so anyone who knows it can replay the training with and without a record; the "
    "ledger says so. Leave random_state=None for secret noise"
)
#: Ledger entry of a private fit inside a hyperparameter search or threshold tuning.
TUNING_NOTE = (
    "fitted inside {search}, which compares fits on the same private data: the selection is "
    "not covered by epsilon (each fit's epsilon covers that fit only)"
)
#: Ledger entry of a private fit: what the rows given to predict/score are.
PREDICT_NOTE = (
    "epsilon protects the rows given to fit; rows given to predict, decision_function or "
    "score are used in the clear"
)

# Meta-estimators that select among fits on the same data (by class name, so that
# BaseSearchCV subclasses of other libraries are recognised too).
_TUNERS = ("BaseSearchCV", "TunedThresholdClassifierCV")
_MAX_SEED = 2**32 - 1


def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _enclosing_tuner() -> str | None:
    """The class name of a hyperparameter search (or threshold tuner) that called us, if any.

    Searches fit their candidates in this process unless ``n_jobs`` sends them to workers;
    the refit of the best candidate always runs here, so a search with ``refit=True`` is
    always noticed."""
    frame = sys._getframe(2)
    while frame is not None:
        owner = frame.f_locals.get("self")
        if owner is not None and any(c.__name__ in _TUNERS for c in type(owner).__mro__):
            return type(owner).__name__
        frame = frame.f_back
    return None


class DPMLPClassifier(ClassifierMixin, BaseEstimator):
    """Multilayer perceptron for binary classification trained with DP-SGD.

    Each step samples every training row independently with probability ``q`` (Poisson
    sampling), clips each row's whole gradient to norm ``max_grad_norm``, sums, adds Gaussian
    noise of standard deviation ``noise_multiplier_ * max_grad_norm`` and divides by the
    expected batch size (Abadi et al. 2016). The noise multiplier is calibrated so that the
    whole run spends at most ``epsilon`` at ``delta`` by the chosen accountant; the ε actually
    spent is ``epsilon_``. Everything needed to check the claim is in ``privacy_ledger_``.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(20, 10, 10)
        Widths of the hidden layers (ReLU between them); ``()`` gives a logistic model.
    epsilon : float or None, default=1.0
        Target ε of the whole run. ``None`` trains without privacy (shuffled minibatches,
        no clipping, no noise): the non-private baseline.
    delta : float or None, default=None
        δ of the guarantee; must be below ``1 / n`` (``n`` training rows), and a value above
        ``1 / (10 n)`` warns. ``None`` takes the largest power of ten not above
        ``1 / (10 n)`` (:func:`~imbalanced_dp.privacy.default_delta`): 1e-4 for
        101 ≤ n ≤ 1000, 1e-5 up to 10 000, and so on.
    max_grad_norm : float, default=1.0
        Clip bound ``C`` of each row's gradient (private training only).
    batch_size : int, default=64
        Expected batch size. The sample rate is ``q = 1 / ceil(n / batch_size)`` with
        ``ceil(n / batch_size)`` steps per epoch, as in Opacus; a batch size above ``n`` is
        clipped to ``n`` (``q = 1``, one full-batch step per epoch) and the ledger says so.
    epochs : int, default=500
        Passes over the data; the number of steps is fixed in advance from it.
    learning_rate : float, default=0.01
        Step size of (noisy) SGD.
    accountant : {"pld", "prv", "rdp"}, default="pld"
        The accountant that calibrates and reports ε: dp-accounting's PLD (tight and
        fast), Opacus's PRV (tight) or Opacus's RDP (looser).
    engine : str or engine object, default="fast"
        Training engine by name (:func:`~imbalanced_dp.engines.get_engine`: ``"fast"`` or
        ``"opacus"``), or any object with the engine's ``train`` method.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes' losses, keyed by class label (missing classes weigh 1).
        Weights multiply each row's loss before clipping, so the sensitivity stays ``C``. A
        dict is a public prior and costs no privacy. ``"balanced"`` (``n / (2 n_c)``) needs
        the class counts: under privacy they are released by the Laplace mechanism with 5 %
        of ``epsilon`` (the rest goes to DP-SGD; the total stays within ``epsilon``, and the
        noisy counts are in the ledger); without privacy the exact counts are used.
    random_state : int, RandomState instance or None, default=None
        ``None`` (the default): sampling and noise come from a secret key drawn from the
        operating system's entropy when ``fit`` starts, never stored or pickled, so repeated
        fits differ and nothing the model exposes lets anyone replay its training. Anything
        else is **research mode**: the seed (an int, or one drawn from the RandomState)
        also draws the noise, the same seed gives the same model on the same machine, a
        :class:`~imbalanced_dp.privacy.PrivacyWarning` says so (once per call site), the
        ledger states that the guarantee assumes the seed stays secret, and ``seed_`` keeps
        it.
    device : str, default="cpu"
        Where the engine trains (``"cpu"`` or ``"cuda"``).

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
        The two class labels, sorted; ``classes_[1]`` is the engine's label 1 (the positive
        class, label ``"1"`` of :func:`~imbalanced_dp.metrics.per_class_report` on 0/1
        targets). Name string labels so that the positive one sorts second, or encode them
        as 0/1.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Column names, when ``X`` has string column names.
    noise_multiplier_ : float
        Calibrated σ (0.0 without privacy).
    epsilon_ : float
        ε spent by the run according to ``accountant`` (≤ ``epsilon``); ``inf`` without
        privacy.
    delta_ : float or None
        δ of the guarantee (``None`` without privacy).
    privacy_ledger_ : PrivacyLedger
        σ, q, steps, δ, target and spent ε, the accountant and its version, and in plain
        words what ε does not cover.
    seed_ : int or None
        The run's seed in research mode; ``None`` with secret noise (nothing to replay).
    batch_size_ : int
        Batch size used (``batch_size`` clipped to the number of rows).
    coefs_ : list of ndarray
        Weight matrix of each layer, shape ``(in, out)`` as in ``MLPClassifier``.
    intercepts_ : list of ndarray
        Bias vector of each layer.
    model_ : TrainedModel
        The engine's result (flat parameters and training statistics).

    See Also
    --------
    imbalanced_dp.metrics.per_class_report : the study's per-class metrics.
    sklearn.neural_network.MLPClassifier : the non-private multilayer perceptron.

    Notes
    -----
    Binary targets only: a target with more classes is refused (the per-class machinery of
    the engines, per-class clip bounds and statistics, is built for two classes).

    The features are used as given: put a ``StandardScaler`` before the classifier in a
    ``Pipeline``. A scaler fitted on the training rows is outside ε, which the ledger
    states; documented feature ranges (public information) avoid that.

    ε covers one fit. Selecting among several fits on the same data (``GridSearchCV``,
    ``TunedThresholdClassifierCV``) spends privacy beyond it: the classifier warns when it
    notices that it is being tuned and adds the fact to its ledger. ``cross_val_score``
    reports scores computed in the clear on held-out private rows.

    References
    ----------
    Abadi et al., "Deep Learning with Differential Privacy", CCS 2016.
    Gopi, Lee & Wutschitz, "Numerical Composition of Differential Privacy", NeurIPS 2021.
    Papernot & Steinke, "Hyperparameter Tuning with Renyi Differential Privacy", ICLR 2022.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from imbalanced_dp import DPMLPClassifier, load_dataset, prepare_split
    >>> split = prepare_split(load_dataset("pima"), seed=0)
    >>> clf = DPMLPClassifier(epsilon=2.0, epochs=20, accountant="rdp", random_state=0)
    >>> clf = clf.fit(split.X_train, split.y_train)
    >>> clf.classes_
    array([0, 1])
    >>> clf.delta_, clf.epsilon_ <= 2.0
    (0.0001, True)
    >>> clf.predict_proba(split.X_test).shape
    (154, 2)

    Any two labels work (sorted, as in scikit-learn: ``classes_[1]`` is the positive class),
    and a scaler goes in a pipeline:

    >>> ds = load_dataset("pima")
    >>> y = ["yes" if v == 1 else "no" for v in ds.y]
    >>> model = make_pipeline(StandardScaler(), DPMLPClassifier(epsilon=None, epochs=5,
    ...                                                         random_state=0))
    >>> model.fit(ds.X, y).classes_
    array(['no', 'yes'], dtype='<U3')
    """

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = DEFAULT_HIDDEN,
        *,
        epsilon: float | None = 1.0,
        delta: float | None = None,
        max_grad_norm: float = 1.0,
        batch_size: int = 64,
        epochs: int = 500,
        learning_rate: float = DEFAULT_LR,
        accountant: str = DEFAULT_ACCOUNTANT,
        engine: str | Engine = "fast",
        class_weight: dict | str | None = None,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.epsilon = epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.batch_size = batch_size
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.accountant = accountant
        self.engine = engine
        self.class_weight = class_weight
        self.random_state = random_state
        self.device = device

    # ------------------------------------------------------------------ validation

    def _invalid(self, name: str, expected: str) -> ParameterError:
        value = getattr(self, name)
        return ParameterError(
            f"The {name!r} parameter of {type(self).__name__} must be {expected}. "
            f"Got {value!r} instead."
        )

    def _hidden(self) -> tuple[int, ...]:
        h = self.hidden_layer_sizes
        sizes = [h] if _is_int(h) else h
        try:
            ok = all(_is_int(s) and s >= 1 for s in sizes)
        except TypeError:
            ok = False
        if not ok or isinstance(h, str):
            raise self._invalid("hidden_layer_sizes", "a positive int or a tuple of them")
        return tuple(int(s) for s in sizes)

    def _check_params(self) -> None:
        # the rules of imbalanced_dp.settings, in scikit-learn's words
        for param, setting, optional in (
            ("epsilon", "epsilon", True),
            ("delta", "delta", True),
            ("max_grad_norm", "clip", False),
            ("batch_size", "batch_size", False),
            ("epochs", "epochs", False),
            ("learning_rate", "lr", False),
        ):
            value = getattr(self, param)
            if optional and value is None:
                continue
            rule = SETTINGS[setting]
            if rule.problem(value) is not None:
                none = " or None (no privacy)" if param == "epsilon" else " or None"
                raise self._invalid(param, rule.expected + (none if optional else ""))
        if not (isinstance(self.accountant, str) and self.accountant in ACCOUNTANTS):
            raise self._invalid("accountant", f"one of {sorted(ACCOUNTANTS)}")
        if not (isinstance(self.engine, str) or callable(getattr(self.engine, "train", None))):
            raise self._invalid("engine", "an engine name ('fast', 'opacus') or an engine")
        cw = self.class_weight
        if not (cw is None or self._balanced() or isinstance(cw, dict)):
            raise self._invalid("class_weight", "a dict, 'balanced' or None")
        weights = cw.values() if isinstance(cw, dict) else ()
        if not all(_is_number(v) and 0 <= v < math.inf for v in weights):
            raise self._invalid("class_weight", "a dict of finite non-negative weights")
        if not isinstance(self.device, str):
            raise self._invalid("device", "a str such as 'cpu' or 'cuda'")

    def _balanced(self) -> bool:
        return isinstance(self.class_weight, str) and self.class_weight == "balanced"

    def _seed(self) -> int | None:
        """The run's seed in research mode, ``None`` for secret noise."""
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

    def _row_weights(
        self, classes: np.ndarray, y01: np.ndarray, plan
    ) -> tuple[np.ndarray | None, dict]:
        """Per-row loss weights, and the noisy values released for them (by query)."""
        cw = self.class_weight
        if cw is None:
            return None, {}
        released: dict = {}
        if self._balanced():
            if plan.private:
                from ..mitigations import class_weights_from_counts, laplace_counts

                q = plan.query(BALANCED_QUERY)
                n0, n1 = laplace_counts(y01, q.epsilon, plan.rng(BALANCED_QUERY))
                released[BALANCED_QUERY] = {"noisy_counts": [n0, n1]}
                per_class = np.array(class_weights_from_counts(n0, n1))
            else:
                per_class = len(y01) / (2.0 * np.bincount(y01, minlength=2))
        else:
            known = set(classes.tolist())
            unknown = [k for k in cw if k not in known]
            if unknown:
                raise ParameterError(
                    f"class_weight has labels {unknown!r} that are not classes of y; the "
                    f"classes are {classes.tolist()!r}"
                )
            per_class = np.array([float(cw.get(c, 1.0)) for c in classes.tolist()])
        return per_class[y01].astype(np.float64), released

    # ------------------------------------------------------------------ fit

    def fit(self, X, y) -> DPMLPClassifier:
        """Train on ``X`` and ``y`` with DP-SGD (or without privacy if ``epsilon`` is None).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Numeric features, used as given (scale them in a Pipeline).
        y : array-like of shape (n_samples,)
            Two class labels of any type.

        Returns
        -------
        self : DPMLPClassifier
            The fitted classifier.

        Raises
        ------
        ValueError
            Bad parameters or data; a target that is not binary; δ ≥ 1/n
            (:class:`~imbalanced_dp.exceptions.PrivacyError`); an ε too small to reach.
        """
        self._check_params()
        hidden = self._hidden()
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y")
        if y_type != "binary":
            raise ValueError(
                "Only binary classification is supported. The type of the target is "
                f"{y_type}. {type(self).__name__} trains two-class models; for more classes "
                "train one model per class against the rest (OneVsRestClassifier), knowing that "
                "each model spends its own epsilon on the same rows, so the budgets add up."
            )
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs rows of 2 classes; got 1 class ({classes[0]!r}) in y"
            )
        y01 = np.searchsorted(classes, y).astype(np.int64)
        n = int(X.shape[0])
        private = self.epsilon is not None
        batch = min(int(self.batch_size), n)
        seed = self._seed()
        research = seed is not None
        if research and private:
            warnings.warn(
                RESEARCH_WARNING.format(
                    name=type(self).__name__,
                    rs=self.random_state
                    if _is_int(self.random_state)
                    else type(self.random_state).__name__,
                ),
                PrivacyWarning,
                stacklevel=2,
            )
        tuner = _enclosing_tuner() if private else None
        if private and tuner is not None:
            warnings.warn(
                f"{type(self).__name__} is being tuned by {tuner} on the data it is fitted "
                "on: each fit's epsilon covers that fit only, and selecting among them "
                "spends privacy beyond epsilon that is not accounted for (docs/privacy.md, rule "
                "8); tune on public data, or fix the settings in advance",
                PrivacyWarning,
                stacklevel=2,
            )
        queries = ()
        if private and self._balanced():
            queries = (
                QuerySpec(
                    name=BALANCED_QUERY,
                    description='class counts for class_weight="balanced" (Laplace mechanism)',
                    mechanism=ONCE_LAPLACE,
                    sensitivity="L1 norm 1 (one record changes one count by one)",
                    share=BALANCED_COUNT_SHARE,
                ),
            )
        notes: list[str] = []
        if batch < self.batch_size:
            notes.append(
                f"batch_size {self.batch_size} is above the {n} training rows: clipped to {n} "
                f"(one full-batch step per epoch)"
            )
        if private and self.delta is None:
            notes.append(
                f"delta {default_delta(n):g} by default: 1e-4, or the largest power of ten "
                f"not above 1/(10 n) when that is smaller (n = {n} rows)"
            )
        plan = plan_run(
            n=n,
            batch_size=batch,
            epochs=int(self.epochs),
            epsilon=None if not private else float(self.epsilon),
            delta=None if self.delta is None else float(self.delta),
            accountant=self.accountant,
            queries=queries,
            reproducible=research,
            seed=seed,
            setting={
                "estimator": type(self).__name__,
                "hidden": list(hidden),
                "lr": float(self.learning_rate),
                "clip": float(self.max_grad_norm),
                "class_weight": repr(self.class_weight),
                "n_features": int(X.shape[1]),
            },
        )
        weights, released = self._row_weights(classes, y01, plan)
        # secret noise: the initialisation's seed is drawn here too and not kept
        init_seed = seed if research else secrets.randbits(32)
        config = RunConfig.from_plan(
            plan, seed=init_seed, lr=float(self.learning_rate), clip=float(self.max_grad_norm)
        )
        if private:
            not_covered = [PREPROCESSING_NOTE, ESTIMATOR_HYPERPARAMETER_NOTE]
            if tuner is not None:
                not_covered.append(TUNING_NOTE.format(search=tuner))
            ledger = plan.ledger(
                clip=float(self.max_grad_norm),
                not_covered=not_covered,
                notes=[PREDICT_NOTE, *notes],
            )
            for comp in ledger.components:
                comp.update(released.get(comp["query"], {}))
        else:
            ledger = plan.ledger(notes=notes)

        engine = get_engine(self.engine) if isinstance(self.engine, str) else self.engine
        job = TrainJob(X, y01, architecture(X.shape[1], hidden), config, weights)
        model = engine.train([job], device=self.device, threads=1)[0]
        # only what the run may release (docs/privacy.md, rule 11)
        model.stats = public_stats(model.stats, private=private)
        if not np.all(np.isfinite(model.params)):
            raise ParameterError(
                f"training diverged: the weights are not finite after {plan.steps} steps at "
                f"learning_rate={self.learning_rate}; lower the learning rate or the class "
                "weights, or scale the features (StandardScaler in a Pipeline)"
            )

        self.classes_ = classes
        self.model_ = model
        layers = model.layers()
        self.coefs_ = [W.T.copy() for W, _ in layers]
        self.intercepts_ = [b.copy() for _, b in layers]
        self.noise_multiplier_ = float(plan.noise_multiplier)
        self.epsilon_ = float(plan.epsilon_spent) if private else math.inf
        self.delta_ = plan.delta
        self.privacy_ledger_ = ledger
        self.seed_ = seed
        self.batch_size_ = batch
        return self

    # ------------------------------------------------------------------ predict

    def decision_function(self, X) -> np.ndarray:
        """Logit of ``classes_[1]`` minus logit of ``classes_[0]``, one per row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Positive where ``classes_[1]`` is predicted.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        z = self.model_.logits(X)
        return z[:, 1] - z[:, 0]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, 2)
            The softmax of the two logits.
        """
        from scipy.special import expit

        d = self.decision_function(X)
        return np.column_stack([expit(-d), expit(d)])

    def predict(self, X) -> np.ndarray:
        """The class of each row: ``classes_[1]`` where ``decision_function`` is positive.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(np.int64)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    # ------------------------------------------------------------------ files

    def save(self, path) -> Path:
        """Write the fitted classifier to ``path``, a safe versioned ``.skops`` file (see
        :mod:`imbalanced_dp.models._saved`) with its privacy ledger inside.

        Unlike a pickle, the file holds plain values only: loading it never runs code.
        ``imbalanced-dp predict --model FILE --csv TABLE`` applies it to a table whose
        columns carry ``feature_names_in_`` (fit on a DataFrame), or ``x0``, ``x1``, ...

        Returns
        -------
        Path
            ``path``.
        """
        from ..models import SavedModel
        from ..studies import versions

        classes, feature_names, has_names = saved_identity(self)
        n = self.n_features_in_
        rs = self.random_state
        engine = self.engine if isinstance(self.engine, str) else getattr(self.engine, "name", "")
        cw = self.class_weight
        params = {
            "hidden_layer_sizes": list(self._hidden()),
            "epsilon": self.epsilon,
            "delta": self.delta,
            "max_grad_norm": self.max_grad_norm,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "accountant": self.accountant,
            "engine": engine,
            "class_weight": (
                [[_plain(k), float(v)] for k, v in cw.items()] if isinstance(cw, dict) else cw
            ),
            "random_state": rs if _is_int(rs) else None,
            "device": self.device,
        }
        fitted = {
            "noise_multiplier_": self.noise_multiplier_,
            "epsilon_": self.epsilon_,
            "delta_": self.delta_,
            "seed_": self.seed_,
            "batch_size_": self.batch_size_,
            "has_feature_names": has_names,
            "stats": self.model_.stats,
        }
        model = SavedModel(
            layers=tuple(self.model_.arch.sizes),
            params=self.model_.params,
            feature_names=feature_names,
            scaler_mean=np.zeros(n),
            scaler_scale=np.ones(n),
            class_names=(str(classes[0]), str(classes[1])),
            kind="estimator",
            ledger=self.privacy_ledger_.to_dict(),
            estimator={"params": params, "fitted": fitted},
            classes=classes,
            versions=versions(),
        )
        return model.save(path)

    @classmethod
    def load(cls, path) -> DPMLPClassifier:
        """Read a classifier written by :meth:`save`; refuses any other file with a message
        naming what it is (another format version, a run's model, not a model at all)."""
        from ..engines import TrainedModel
        from ..models import Architecture, ModelFileError, load_model
        from ..privacy import PrivacyLedger

        m = load_model(path)
        if m.kind != "estimator" or m.classes is None:
            raise ModelFileError(
                f"{path} holds the model of an imbalanced-dp run, not a {cls.__name__}; apply "
                "it with imbalanced-dp predict, or imbalanced_dp.models.load_model"
            )
        params = dict(m.estimator["params"])
        cw = params.get("class_weight")
        if isinstance(cw, list):
            params["class_weight"] = {k: v for k, v in cw}
        params["hidden_layer_sizes"] = tuple(params["hidden_layer_sizes"])
        clf = cls(**params)
        fitted = m.estimator["fitted"]
        clf.classes_ = np.asarray(m.classes)
        clf.n_features_in_ = m.layers[0]
        if fitted.get("has_feature_names"):
            clf.feature_names_in_ = np.asarray(m.feature_names, dtype=object)
        clf.model_ = TrainedModel(Architecture(m.layers), m.params, stats=fitted.get("stats", {}))
        layers = clf.model_.layers()
        clf.coefs_ = [W.T.copy() for W, _ in layers]
        clf.intercepts_ = [b.copy() for _, b in layers]
        clf.noise_multiplier_ = float(fitted["noise_multiplier_"])
        clf.epsilon_ = float(fitted["epsilon_"])
        clf.delta_ = fitted["delta_"]
        clf.privacy_ledger_ = PrivacyLedger.from_dict(m.ledger)
        clf.seed_ = fitted["seed_"]
        clf.batch_size_ = fitted["batch_size_"]
        return clf


def saved_identity(est) -> tuple[np.ndarray, tuple[str, ...], bool]:
    """What a saved file records of a fitted estimator's labels and columns: its class
    labels (numbers, or text stored as str), its feature names (``x0``, ``x1``, ... when it
    was fitted without names) and whether it had names. Refuses labels a file cannot hold."""
    check_is_fitted(est)
    classes = np.asarray(est.classes_)
    if classes.dtype == object:
        if not all(isinstance(c, str) for c in classes):
            raise ParameterError(
                f"{type(est).__name__}.save stores numeric or text class labels; got "
                f"{classes.tolist()!r}"
            )
        classes = classes.astype(str)
    names = getattr(est, "feature_names_in_", None)
    if names is None:
        return classes, tuple(f"x{j}" for j in range(est.n_features_in_)), False
    return classes, tuple(str(c) for c in names), True


def _plain(x):
    return x.item() if isinstance(x, np.generic) else x
