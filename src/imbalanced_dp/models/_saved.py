"""Saved models: one trained MLP with everything needed to apply it, in a safe, versioned
file.

The file is a `skops <https://skops.readthedocs.io>`_ archive (``.skops``) holding one
dictionary of plain values: text, numbers and numeric arrays, nothing executable. Loading
checks, before anything is built, that the archive holds only such types (skops refuses
anything else) and that it says ``format = "imbalanced-dp model"`` with a
``format_version`` this imbalanced-dp reads. Its keys:

``format``, ``format_version``
    ``"imbalanced-dp model"`` and :data:`FORMAT_VERSION`.
``meta_json``
    JSON text: ``kind`` (``"run"`` from ``imbalanced-dp run --save``, ``"estimator"``
    from :meth:`DPMLPClassifier.save`), ``layers`` (widths from inputs to the two logits),
    ``feature_names``, ``class_names`` (label 0, label 1), ``target``, ``threshold`` (the
    decision threshold on P(label 1), or null for the larger probability), ``ledger`` (the
    run's privacy ledger), ``run`` (its settings and ``run_id``), ``estimator`` (the
    estimator's parameters and fitted attributes) and ``versions`` (the libraries that
    wrote it).
``params``
    The flat float64 parameters: per layer the weights (``out × in``) then the biases.
``scaler_mean``, ``scaler_scale``, ``scaler_lower``, ``scaler_upper``
    The scaling of each feature: ``(clip(x, lower, upper) − mean) / scale`` (``lower`` and
    ``upper`` are ±inf where nothing is clipped: every scaling but ``public`` and
    ``dp_standard``); zeros and ones for an estimator, which uses its features as given.
``classes``
    The estimator's ``classes_`` (estimator files only).

The noise key of a run is never in the file (docs/privacy.md rule 9): nothing in it lets
anyone replay the training.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from ..exceptions import DataError
from ._mlp import Architecture

FORMAT = "imbalanced-dp model"
#: Bumped whenever the file's layout changes; a file of another version is refused.
FORMAT_VERSION = 1
KINDS = ("run", "estimator")

#: not_covered entry of a saved private model.
SAVED_SCALER_NOTE = (
    "the saved model file holds the feature scaling fitted on the training split in the "
    "clear (per-feature mean and standard deviation, or minimum and maximum): epsilon does "
    "not protect them"
)


class ModelFileError(DataError):
    """A file that is not an imbalanced-dp model this version can read."""


@dataclass
class SavedModel:
    """A trained model ready to be saved or applied to new rows.

    Attributes
    ----------
    layers : tuple of int
        Widths from the inputs to the two output logits.
    params : ndarray
        Flat float64 parameters (per layer ``W`` then ``b``, ``W`` stored ``out × in``).
    feature_names : tuple of str
        The columns the model reads, in order.
    scaler_mean, scaler_scale : ndarray
        Standardisation applied to the features before the model.
    class_names : tuple of (str, str)
        How the table names label 0 and label 1 (the positive class).
    kind : {"run", "estimator"}
    threshold : float or None
        Decision threshold on P(label 1); ``None`` predicts the more probable class.
    target : str or None
        The target column of the table the model was trained on.
    ledger : dict
        The run's privacy ledger (:class:`~imbalanced_dp.privacy.PrivacyLedger` fields).
    run : dict
        The run's settings and ``run_id`` (``kind="run"``).
    estimator : dict
        The estimator's parameters and fitted attributes (``kind="estimator"``).
    classes : ndarray or None
        The estimator's ``classes_``.
    versions : dict
        Library versions that wrote the file.
    """

    layers: tuple[int, ...]
    params: np.ndarray
    feature_names: tuple[str, ...]
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    class_names: tuple[str, str]
    scaler_lower: np.ndarray | None = None
    scaler_upper: np.ndarray | None = None
    kind: str = "run"
    threshold: float | None = None
    target: str | None = None
    ledger: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    estimator: dict = field(default_factory=dict)
    classes: np.ndarray | None = None
    versions: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.layers = tuple(int(s) for s in self.layers)
        self.params = np.ascontiguousarray(self.params, dtype=np.float64)
        self.scaler_mean = np.ascontiguousarray(self.scaler_mean, dtype=np.float64)
        self.scaler_scale = np.ascontiguousarray(self.scaler_scale, dtype=np.float64)
        d = self.scaler_mean.shape[0]
        self.scaler_lower = np.ascontiguousarray(
            np.full(d, -np.inf) if self.scaler_lower is None else self.scaler_lower,
            dtype=np.float64,
        )
        self.scaler_upper = np.ascontiguousarray(
            np.full(d, np.inf) if self.scaler_upper is None else self.scaler_upper,
            dtype=np.float64,
        )
        self.feature_names = tuple(str(c) for c in self.feature_names)
        self.class_names = (str(self.class_names[0]), str(self.class_names[1]))
        arch = Architecture(self.layers)
        n_in = self.layers[0]
        if self.kind not in KINDS:
            raise ModelFileError(f"model kind must be one of {', '.join(KINDS)}; got {self.kind!r}")
        if (
            self.params.shape != (arch.n_params,)
            or self.scaler_mean.shape != (n_in,)
            or self.scaler_scale.shape != (n_in,)
            or len(self.feature_names) != n_in
        ):
            raise ModelFileError(
                f"inconsistent model: layers {arch} need {arch.n_params} parameters and "
                f"{n_in} features; got {self.params.size} parameters, "
                f"{len(self.feature_names)} feature names and a scaler of "
                f"{self.scaler_mean.size}"
            )

    # ------------------------------------------------------------------ applying

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """P(label 0) and P(label 1) of raw (unscaled) rows, columns in ``feature_names``
        order."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.layers[0]:
            raise DataError(
                f"the model reads {self.layers[0]} features; got an array of shape {X.shape}"
            )
        with np.errstate(all="ignore"):
            h = np.clip(X, self.scaler_lower, self.scaler_upper) - self.scaler_mean
            h = h / self.scaler_scale
            # the layers as the engines store them: per layer W (out × in), then b
            off, n_layers = 0, len(self.layers) - 1
            for i, (a, b) in enumerate(pairwise(self.layers)):
                W = self.params[off : off + a * b].reshape(b, a)
                bias = self.params[off + a * b : off + a * b + b]
                off += a * b + b
                h = h @ W.T + bias
                if i < n_layers - 1:
                    h = np.maximum(h, 0.0)
            z = h - h.max(axis=1, keepdims=True)
            e = np.exp(z)
            return e / e.sum(axis=1, keepdims=True)

    def decide(self, p_positive: np.ndarray) -> np.ndarray:
        """Label 1 where ``p_positive`` reaches the threshold (or exceeds 0.5 without one)."""
        p = np.asarray(p_positive, dtype=np.float64)
        if self.threshold is None:
            return (p > 0.5).astype(np.int64)
        return (p >= self.threshold).astype(np.int64)

    # ------------------------------------------------------------------ files

    def _meta(self) -> dict:
        return {
            "kind": self.kind,
            "layers": list(self.layers),
            "feature_names": list(self.feature_names),
            "class_names": list(self.class_names),
            "target": self.target,
            "threshold": self.threshold,
            "ledger": self.ledger,
            "run": self.run,
            "estimator": self.estimator,
            "versions": self.versions,
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model to ``path`` (a ``.skops`` archive; see the module docstring)."""
        import skops.io as sio

        p = Path(path)
        if p.is_dir():
            raise ModelFileError(f"cannot save the model to {p}: it is a folder; give a file name")
        if not p.parent.exists():
            raise ModelFileError(f"cannot save the model to {p}: folder {p.parent} does not exist")
        payload: dict = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "meta_json": json.dumps(self._meta(), default=_json_default, sort_keys=True),
            "params": self.params,
            "scaler_mean": self.scaler_mean,
            "scaler_scale": self.scaler_scale,
            "scaler_lower": self.scaler_lower,
            "scaler_upper": self.scaler_upper,
        }
        if self.classes is not None:
            payload["classes"] = np.asarray(self.classes)
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        try:
            sio.dump(payload, tmp)
            os.replace(tmp, p)
        finally:
            tmp.unlink(missing_ok=True)
        return p


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def load_model(path: str | os.PathLike[str]) -> SavedModel:
    """Read a model written by ``imbalanced-dp run --save`` or :meth:`DPMLPClassifier.save`.

    Raises
    ------
    ModelFileError
        The file is missing, is not a skops archive, holds anything but plain values, is not
        an imbalanced-dp model, or has a format version this imbalanced-dp does not read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from imbalanced_dp import DPMLPClassifier, load_dataset, prepare_split
    >>> from imbalanced_dp.models import load_model
    >>> split = prepare_split(load_dataset("pima"), seed=0)
    >>> clf = DPMLPClassifier(epsilon=2.0, epochs=3, accountant="rdp", random_state=0)
    >>> clf = clf.fit(split.X_train, split.y_train)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.skops"
    >>> _ = clf.save(path)
    >>> load_model(path).kind, DPMLPClassifier.load(path).epsilon_ == clf.epsilon_
    ('estimator', True)
    """
    import skops.io as sio

    p = Path(path)
    if not p.is_file():
        what = "it is a folder" if p.is_dir() else "no such file"
        raise ModelFileError(f"cannot read model {p}: {what}")
    not_ours = f"{p} is not an imbalanced-dp model file"
    try:
        untrusted = sio.get_untrusted_types(file=p)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ModelFileError(
            f"{not_ours} (not a skops archive: {exc}); save one with imbalanced-dp run --save"
        ) from None
    if untrusted:
        shown = ", ".join(untrusted[:4]) + (" ..." if len(untrusted) > 4 else "")
        raise ModelFileError(
            f"{not_ours}: it holds types that a model file never holds ({shown}); refusing to "
            "load it"
        )
    try:
        obj = sio.load(p, trusted=[])
    except Exception as exc:  # a damaged archive: never let it through half-read
        raise ModelFileError(f"{not_ours} (cannot read it: {type(exc).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ModelFileError(f"{not_ours} (no 'format = {FORMAT}' inside)")
    version = obj.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelFileError(
            f"{p} is an imbalanced-dp model of format version {version}; this imbalanced-dp "
            f"reads version {FORMAT_VERSION}: use the imbalanced-dp version that wrote it, or "
            "save the model again"
        )
    try:
        meta = json.loads(obj["meta_json"])
        return SavedModel(
            layers=tuple(meta["layers"]),
            params=obj["params"],
            feature_names=tuple(meta["feature_names"]),
            scaler_mean=obj["scaler_mean"],
            scaler_scale=obj["scaler_scale"],
            scaler_lower=obj.get("scaler_lower"),
            scaler_upper=obj.get("scaler_upper"),
            class_names=tuple(meta["class_names"]),
            kind=meta["kind"],
            threshold=meta.get("threshold"),
            target=meta.get("target"),
            ledger=meta.get("ledger") or {},
            run=meta.get("run") or {},
            estimator=meta.get("estimator") or {},
            classes=obj.get("classes"),
            versions=meta.get("versions") or {},
        )
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{p} is a damaged imbalanced-dp model file ({exc!r})") from None
