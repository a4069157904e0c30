"""Attribute inference on a trained model: the building blocks.

The attacker knows a record's label and every column but one, the *hidden attribute*, and
wants its value. Continuous columns are quantised into a few bins of the table's quantiles;
a column with few distinct values keeps each value as its own bin. Three ways to guess:

* **confidence attack** (Fredrikson et al. 2014; Mehnaz et al. 2022): query the model with
  the record's other columns and each candidate value (the median of each bin) and pick the
  candidate under which the model is most confident of the known label
  (:func:`candidate_confidence`, :func:`confidence_guess`);
* **imputation** (Jayaraman & Evans 2022): a multinomial logistic regression on the other
  columns (and smooth transforms of them) and the label, fitted on records the target never
  saw, without any model access (:class:`Imputer`). What an attack gets right beyond
  imputation is what the model gives away;
* **learned attack**: a second regression that corrects the imputation's log-probabilities
  with the model's answers to the same queries, trained on shadow models' answers about
  their own training records (:class:`LearnedAttack`); it can follow the imputation, the
  confidence attack, or weigh one against the other.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..exceptions import DataError
from ._mia import logit_confidence

#: Bins of a quantised column unless told otherwise.
DEFAULT_BINS = 5


@dataclass(frozen=True)
class AttributeBins:
    """How one column is quantised: each record's bin is ``bin_of(values)``.

    ``kind`` is ``"categorical"`` (every distinct value its own bin, rare values merged with
    a neighbour) or ``"quantised"`` (bins between quantiles of the column; errors in the
    column's units are reported for these). ``edges`` are the upper bounds of every bin but
    the last (a value equal to an edge belongs to the bin below); ``representatives`` are
    the bins' medians, the values an attack plugs in and an inference returns.
    """

    column: int
    name: str
    kind: str
    edges: np.ndarray
    representatives: np.ndarray
    counts: np.ndarray

    @property
    def n_bins(self) -> int:
        return int(self.representatives.size)

    def bin_of(self, values: np.ndarray) -> np.ndarray:
        """The bin (0 … n_bins − 1) of each value."""
        return np.searchsorted(self.edges, np.asarray(values, dtype=np.float64), side="left")


def min_bin_count(n_rows: int) -> int:
    """Fewest records a bin may hold: 2 % of the rows, at least 5."""
    return max(5, math.ceil(0.02 * n_rows))


def quantise_column(
    values: np.ndarray, *, name: str, column: int = 0, bins: int = DEFAULT_BINS
) -> AttributeBins:
    """Quantise one column of the pool of records into at most ``bins`` bins.

    A column with at most ``bins`` distinct values keeps each value as a bin
    (``"categorical"``); otherwise the bins lie between its ``1/bins`` quantiles, ties
    keeping equal values together (``"quantised"``). Bins holding fewer than
    :func:`min_bin_count` records are merged with their smaller neighbour.

    Raises
    ------
    DataError
        If the column is constant, or if fewer than two bins are left (too few distinct
        values to quantise).

    Examples
    --------
    >>> b = quantise_column(np.repeat([1.0, 2.0, 3.0], 10), name="x")
    >>> b.kind, b.n_bins, b.representatives.tolist()
    ('categorical', 3, [1.0, 2.0, 3.0])
    """
    v = np.asarray(values, dtype=np.float64)
    distinct = np.unique(v)
    if distinct.size < 2:
        shown = f"{distinct[0]:g}" if distinct.size else "empty"
        raise DataError(
            f"attribute {name!r} is constant (every row is {shown}): there is nothing to "
            "infer; choose another --attribute"
        )
    if distinct.size <= bins:
        kind = "categorical"
        edges = distinct[:-1]
    else:
        kind = "quantised"
        qs = np.quantile(v, np.arange(1, bins) / bins, method="inverted_cdf")
        # a bin's upper bound is inclusive, so a heavily tied value (the zeros that code a
        # missing insulin) is a bin of its own; an edge at the maximum would leave the last
        # bin empty
        edges = np.unique(qs[qs < distinct[-1]])
    edges = _merge_small_bins(v, edges, min_bin_count(v.size))
    if edges.size < 1:
        raise DataError(
            f"attribute {name!r} has too few distinct values to quantise: "
            f"{distinct.size} distinct value(s), and fewer than 2 of them (or ranges of them) "
            f"are held by at least {min_bin_count(v.size)} rows; choose another --attribute"
        )
    ids = np.searchsorted(edges, v, side="left")
    counts = np.bincount(ids, minlength=edges.size + 1)
    reps = np.array([np.median(v[ids == k]) for k in range(edges.size + 1)])
    return AttributeBins(
        column=int(column),
        name=str(name),
        kind=kind,
        edges=edges,
        representatives=reps,
        counts=counts,
    )


def _merge_small_bins(v: np.ndarray, edges: np.ndarray, min_count: int) -> np.ndarray:
    """Remove edges until every bin holds at least ``min_count`` values: the smallest bin
    joins its smaller neighbour, one at a time."""
    edges = np.asarray(edges, dtype=np.float64)
    while edges.size:
        counts = np.bincount(np.searchsorted(edges, v, side="left"), minlength=edges.size + 1)
        k = int(np.argmin(counts))
        if counts[k] >= min_count:
            break
        if k == 0:
            drop = 0
        elif k == edges.size:
            drop = edges.size - 1
        else:  # merge with the smaller neighbour
            drop = k - 1 if counts[k - 1] <= counts[k + 1] else k
        edges = np.delete(edges, drop)
    return edges


def resolve_attributes(
    feature_names: Sequence[str],
    attributes: Sequence[str] | None,
    *,
    dataset: str,
    target: str | None = None,
) -> list[int]:
    """Column indices of ``attributes`` (every feature column when ``None``).

    Raises
    ------
    DataError
        For the target column or a name that is not a feature column.
    """
    names = list(feature_names)
    if attributes is None:
        return list(range(len(names)))
    out: list[int] = []
    for a in attributes:
        if target is not None and a == target:
            raise DataError(
                f"--attribute {a!r} is the target column of {dataset}; the attack infers a "
                f"feature column: one of {', '.join(names)}"
            )
        if a not in names:
            raise DataError(
                f"--attribute {a!r} is not a column of {dataset}; its feature columns are "
                f"{', '.join(names)}"
            )
        j = names.index(a)
        if j in out:
            raise DataError(f"--attribute {a!r} is given twice")
        out.append(j)
    if not out:
        raise DataError("give at least one --attribute, or none for every feature column")
    return out


# ---------------------------------------------------------------------- queries


def candidate_confidence(
    model, X: np.ndarray, y: np.ndarray, column: int, candidates: np.ndarray
) -> np.ndarray:
    """The model's logit-scaled confidence in each record's label with ``column`` set to each
    candidate value: an (n_records, n_candidates) array of log(p_y / (1 − p_y)).

    ``model`` is anything with ``logits(X)``; ``X`` and ``candidates`` are on the scale the
    model was trained on.
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    cand = np.asarray(candidates, dtype=np.float64)
    n, K = X.shape[0], cand.size
    Q = np.repeat(X[None, :, :], K, axis=0)
    Q[:, :, column] = cand[:, None]
    z = model.logits(Q.reshape(K * n, -1))
    phi = logit_confidence(z, np.tile(y, K)).reshape(K, n).T
    return np.clip(np.nan_to_num(phi, nan=0.0), -50.0, 50.0)


def confidence_guess(phi: np.ndarray) -> np.ndarray:
    """The confidence attack's bin: the candidate of highest confidence (first on ties)."""
    return np.argmax(np.asarray(phi), axis=1)


# ---------------------------------------------------------------------- regressions


class InferenceFeatures:
    """What the imputation sees of a record:
    its other columns (as scaled), a smooth transform of each (a quadratic spline of its
    rank, so that the regression can follow non-linear relations and the zeros that stand
    for missing values), the label, and the label times each column. Fitted on the
    attacker's records only."""

    def __init__(self, n_knots: int = 4) -> None:
        self.n_knots = n_knots

    def fit(self, others: np.ndarray) -> InferenceFeatures:
        from sklearn.preprocessing import QuantileTransformer, SplineTransformer

        others = np.asarray(others, dtype=np.float64)
        self.rank_ = QuantileTransformer(n_quantiles=min(100, len(others)), subsample=None)
        u = self.rank_.fit_transform(others)
        self.spline_ = SplineTransformer(n_knots=self.n_knots, degree=2, knots="uniform")
        self.spline_.fit(np.vstack([u, np.zeros((1, u.shape[1])), np.ones((1, u.shape[1]))]))
        return self

    def transform(self, others: np.ndarray, y: np.ndarray) -> np.ndarray:
        others = np.asarray(others, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)[:, None]
        s = self.spline_.transform(np.clip(self.rank_.transform(others), 0.0, 1.0))
        return np.hstack([others, s, y, y * others])


def answer_features(phi: np.ndarray) -> np.ndarray:
    """What the learned attack reads from the model's answers ``phi`` (n, K) about each
    candidate: the answer, the answer relative to the most confident one, and whether it
    is the confidence attack's guess; an (n, K, 3) array."""
    phi = np.asarray(phi, dtype=np.float64)
    rel = phi - phi.max(axis=1, keepdims=True)
    top = np.eye(phi.shape[1])[confidence_guess(phi)]
    return np.stack([phi, rel, top], axis=2)


class LearnedAttack:
    """The learned attack: a conditional logit over the candidate values, on the model's
    answers about each candidate, with the imputation's log-probabilities as a fixed offset,

        p(bin b | record) ∝ p_imputation(b | other columns, label)^α · exp(β_y · a_b + c_b),

    where ``a_b`` are the :func:`answer_features` of candidate b (the answer, the answer
    relative to the best one, whether it is the best), standardised, and β_y is shared by
    the candidates but depends on the record's label. Fitted by L-BFGS on the shadow
    models' answers about their own training records, with an L2 penalty on (β, c, α − 1)
    weighed like scikit-learn's ``C``. A handful of parameters, pulled towards β = 0, c = 0,
    α = 1: where the answers carry nothing the attack falls back to the imputation instead
    of paying for noise, and
    where a model has memorised its records a single weight on "the model's favourite
    candidate" is enough to follow it.
    """

    def __init__(self, n_bins: int, *, C: float = 1.0) -> None:
        self.n_bins = int(n_bins)
        self.C = float(C)

    def _features(self, phi: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(n, K, 2 · 3): each candidate's answer features, for label 0 and label 1 apart."""
        a = answer_features(phi)
        a = (a - self.mean_) / self.scale_
        y = np.asarray(y, dtype=np.float64)[:, None, None]
        return np.concatenate([a * (1.0 - y), a * y], axis=2)

    def fit(
        self, offset: np.ndarray, phi: np.ndarray, bins: np.ndarray, y: np.ndarray
    ) -> LearnedAttack:
        """Fit on the imputation's log-probabilities ``offset`` (n, K), the answers ``phi``
        (n, K), the true bins and the labels ``y``."""
        from scipy.optimize import minimize

        a = answer_features(phi)
        self.mean_ = a.mean(axis=(0, 1))
        self.scale_ = a.std(axis=(0, 1))
        self.scale_[self.scale_ == 0] = 1.0
        F = self._features(phi, y)
        o = np.asarray(offset, dtype=np.float64)
        t = np.asarray(bins, dtype=np.int64)
        n, K, p = F.shape
        onehot = np.eye(K)[t]
        lam = 1.0 / (self.C * n)

        def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            # theta: β (p), c (K), and α − 1 (the imputation's weight, 1 by default)
            alpha = 1.0 + theta[-1]
            z = alpha * o + F @ theta[:p] + theta[p:-1]
            z = z - z.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            G = (np.exp(logp) - onehot) / n
            loss = -float((logp * onehot).sum() / n) + 0.5 * lam * float(theta @ theta)
            grad = np.concatenate(
                [np.einsum("nk,nkp->p", G, F), G.sum(axis=0), [float((G * o).sum())]]
            )
            return loss, grad + lam * theta

        res = minimize(loss_grad, np.zeros(p + K + 1), jac=True, method="L-BFGS-B")
        self.coef_ = res.x[:p]
        self.intercept_ = res.x[p:-1]
        self.offset_weight_ = 1.0 + res.x[-1]
        return self

    def log_proba(self, offset: np.ndarray, phi: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Log-probability of each bin."""
        z = self.offset_weight_ * np.asarray(offset, dtype=np.float64)
        z = z + self._features(phi, y) @ self.coef_ + self.intercept_
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict(self, offset: np.ndarray, phi: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The most probable bin of each record."""
        return np.argmax(self.log_proba(offset, phi, y), axis=1)


#: Inverse regularisation strengths the imputation chooses from (by cross-validation).
IMPUTER_C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


class Imputer:
    """The imputation baseline: :class:`AttackModel` on :class:`InferenceFeatures` of the
    other columns and the label, fitted on the attacker's records.

    Its regularisation is chosen from :data:`IMPUTER_C_GRID` by ``folds``-fold
    cross-validated log-loss on those records (a baseline that overfits its few records
    would flatter every attack); ``C_`` is the choice and ``oof_log_proba_`` the records'
    cross-fitted log-probabilities under it (each record predicted by a fit that did not
    see it), which the learned attack is trained on.
    """

    def __init__(self, n_bins: int, column: int, *, folds: int = 5, seed: int = 0) -> None:
        self.n_bins = int(n_bins)
        self.column = int(column)
        self.folds = folds
        self.seed = seed

    def _F(self, X, y) -> np.ndarray:
        others = np.delete(np.asarray(X, dtype=np.float64), self.column, axis=1)
        return self.features_.transform(others, y)

    def fit(self, X: np.ndarray, y: np.ndarray, bins: np.ndarray) -> Imputer:
        """Fit on scaled records ``X`` with labels ``y`` and the hidden column's true bins."""
        bins = np.asarray(bins, dtype=np.int64)
        self.features_ = InferenceFeatures().fit(np.delete(X, self.column, axis=1))
        F = self._F(X, y)
        n = len(bins)
        k = max(2, min(self.folds, n))
        fold = np.random.default_rng([self.seed, 0xF01D]).permutation(n) % k
        best: tuple = (math.inf, IMPUTER_C_GRID[-1], None)
        for C in IMPUTER_C_GRID:
            oof = np.zeros((n, self.n_bins))
            for f in range(k):
                out = fold == f
                part = AttackModel(self.n_bins, C=C).fit(F[~out], bins[~out])
                oof[out] = part.predict_proba(F[out])
            loss = -float(_log(oof)[np.arange(n), bins].mean())
            if loss < best[0]:
                best = (loss, C, oof)
        _, self.C_, oof = best
        self.model_ = AttackModel(self.n_bins, C=self.C_).fit(F, bins)
        self.oof_log_proba_ = _log(oof)
        return self

    def log_proba(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Log-probability of each bin for records ``X`` (scaled) with labels ``y``."""
        return _log(self.model_.predict_proba(self._F(X, y)))

    def predict(self, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The most probable bin of each record."""
        return np.argmax(self.log_proba(X, y), axis=1)


def _log(p: np.ndarray) -> np.ndarray:
    return np.log(np.clip(p, 1e-6, 1.0))


class AttackModel:
    """A multinomial logistic regression (L2 penalty of strength 1/C, standardised inputs,
    C = 1 by default) from features to
    one of ``n_bins`` bins; bins absent from the training data get probability 0, and a
    single observed bin is predicted always."""

    def __init__(self, n_bins: int, *, C: float = 1.0) -> None:
        self.n_bins = int(n_bins)
        self.C = C

    def fit(self, F: np.ndarray, bins: np.ndarray) -> AttackModel:
        """Fit on features ``F`` and the true bins."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        bins = np.asarray(bins, dtype=np.int64)
        self.classes_ = np.unique(bins)
        if self.classes_.size < 2:
            self.model_ = None
            return self
        self.model_ = make_pipeline(
            StandardScaler(), LogisticRegression(C=self.C, solver="newton-cg", max_iter=200)
        )
        with warnings.catch_warnings():
            # the fit's last digits do not matter; a stop at max_iter is not an error
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model_.fit(np.asarray(F, dtype=np.float64), bins)
        return self

    def predict_proba(self, F: np.ndarray) -> np.ndarray:
        """(n, n_bins) probabilities of each bin."""
        F = np.asarray(F, dtype=np.float64)
        P = np.zeros((F.shape[0], self.n_bins))
        if self.model_ is None:
            P[:, self.classes_[0]] = 1.0
        else:
            P[:, self.classes_] = self.model_.predict_proba(F)
        return P

    def predict(self, F: np.ndarray) -> np.ndarray:
        return np.argmax(self.predict_proba(F), axis=1)
