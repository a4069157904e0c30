"""Model inversion of a class (Fredrikson, Jha & Ristenpart 2015): gradient ascent on the
input, from a neutral start, towards the input the model finds most typical of a class.

The models are small ReLU MLPs, so the input gradient is written out here in numpy and many
models are inverted at once. The objective is the log-probability of the class plus a
standard normal log-prior on the scaled features,

    J(x) = log p_c(x) − ½ ‖x − x₀‖²,

so its maximiser is the mode of p(x | c) ∝ p_c(x) · N(x; x₀, I) under the model and a
Gaussian population (the columns are standardised, and x₀ = 0 is the average patient). The
ascent is projected gradient ascent with diminishing steps, keeping the best iterate.
Without the prior a ReLU network's logits grow without bound along some ray and the ascent
would leave the data behind; each step is also projected back into the box of values the
columns take.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..exceptions import ParameterError


def stack_layers(models: Sequence) -> list[tuple[np.ndarray, np.ndarray]]:
    """The layers of models of one architecture, stacked: per layer ``W`` (M, out, in) and
    ``b`` (M, out)."""
    if not models:
        raise ParameterError("no models to invert")
    per = [m.layers() for m in models]
    return [
        (
            np.stack([p[i][0] for p in per]).astype(np.float64),
            np.stack([p[i][1] for p in per]).astype(np.float64),
        )
        for i in range(len(per[0]))
    ]


def class_log_prob_and_grad(
    layers: Sequence[tuple[np.ndarray, np.ndarray]], X: np.ndarray, cls: np.ndarray | int
) -> tuple[np.ndarray, np.ndarray]:
    """log p_cls(x) and its gradient with respect to x, for every model and input.

    Parameters
    ----------
    layers : list of (W, b)
        Stacked layers (:func:`stack_layers`): ``W`` (M, out, in), ``b`` (M, out); ReLU
        between layers, none after the last.
    X : (M, n, d) array
        Inputs, ``n`` per model.
    cls : int or (n,) int array
        The class of each input.

    Returns
    -------
    logp : (M, n) array
    grad : (M, n, d) array
    """
    h = np.asarray(X, dtype=np.float64)
    pre: list[np.ndarray] = []
    for i, (W, b) in enumerate(layers):
        a = np.matmul(h, np.swapaxes(W, 1, 2)) + b[:, None, :]
        pre.append(a)
        h = np.maximum(a, 0.0) if i < len(layers) - 1 else a
    z = h
    m = z.max(axis=2, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=2, keepdims=True)
    p = e / s
    n = z.shape[1]
    c = np.broadcast_to(np.asarray(cls, dtype=np.int64), (n,))
    rows = np.arange(n)
    logp = z[:, rows, c] - (m[..., 0] + np.log(s[..., 0]))
    g = -p
    g[:, rows, c] += 1.0
    for i in range(len(layers) - 1, -1, -1):
        W = layers[i][0]
        g = np.matmul(g, W)
        if i > 0:
            g = g * (pre[i - 1] > 0)
    return logp, g


def invert_classes(
    models: Sequence,
    classes: Sequence[int] = (0, 1),
    *,
    low: np.ndarray,
    high: np.ndarray,
    start: np.ndarray | None = None,
    prior: float = 1.0,
    steps: int = 500,
    step_size: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Invert each class of each model by projected gradient ascent on J (module docstring).

    Parameters
    ----------
    models : sequence of TrainedModel
        Models of one architecture (anything with ``layers()``).
    classes : sequence of int
        The classes to reconstruct.
    low, high : (d,) arrays
        The box the reconstruction stays in (the columns' observed range, scaled).
    start : (d,) array, optional
        The neutral start and centre of the prior (default 0, the average scaled record).
    prior : float
        Precision λ of the Gaussian prior; 0 drops it (then only the box bounds the ascent).
    steps, step_size : int, float
        Number of ascent steps, and the first step's length; step t has length
        ``step_size / (1 + 4 t / steps)``, diminishing because a ReLU network's objective has
        kinks that a fixed step would keep jumping across. The best iterate is returned.

    Returns
    -------
    X : (M, n_classes, d) array
        The reconstructions.
    prob : (M, n_classes) array
        Each model's probability of the class at its reconstruction.

    Examples
    --------
    >>> import numpy as np
    >>> from imbalanced_dp.engines import TrainedModel
    >>> from imbalanced_dp.models import architecture
    >>> arch = architecture(1, ())                          # logits = W x + b
    >>> m = TrainedModel(arch, np.array([-1.0, 1.0, 0.0, 0.0]))
    >>> X, p = invert_classes([m], (1,), low=np.array([-5.0]), high=np.array([5.0]))
    >>> bool(X[0, 0, 0] > 0.5), bool(p[0, 0] > 0.5)
    (True, True)
    """
    layers = stack_layers(models)
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    d = layers[0][0].shape[2]
    if low.shape != (d,) or high.shape != (d,) or np.any(low > high):
        raise ParameterError(f"low and high must be ({d},) bounds with low <= high")
    if steps < 0 or not step_size > 0 or prior < 0:
        raise ParameterError("steps >= 0, step_size > 0 and prior >= 0 are required")
    x0 = np.zeros(d) if start is None else np.asarray(start, dtype=np.float64)
    cls = np.asarray(classes, dtype=np.int64)
    M = layers[0][0].shape[0]
    X = np.broadcast_to(np.clip(x0, low, high), (M, cls.size, d)).copy()
    best, best_j, best_lp = X.copy(), np.full((M, cls.size), -np.inf), np.zeros((M, cls.size))
    for t in range(steps + 1):
        logp, g = class_log_prob_and_grad(layers, X, cls)
        J = logp - 0.5 * prior * ((X - x0) ** 2).sum(axis=2)
        better = best_j < J
        best[better], best_j[better], best_lp[better] = X[better], J[better], logp[better]
        if t < steps:
            eta = step_size / (1.0 + 4.0 * t / max(steps, 1))
            X = np.clip(X + eta * (g - prior * (X - x0)), low, high)
    return best, np.exp(best_lp)


def nearest_distance(points: np.ndarray, records: np.ndarray) -> np.ndarray:
    """Euclidean distance from each point (…, d) to its nearest row of ``records`` (n, d)."""
    P = np.asarray(points, dtype=np.float64)
    R = np.asarray(records, dtype=np.float64)
    if R.shape[0] == 0:
        return np.full(P.shape[:-1], np.nan)
    diff = P[..., None, :] - R
    return np.sqrt((diff * diff).sum(axis=-1)).min(axis=-1)
