"""Records of the attacks as strict JSON: NaN and numpy types cleaned, and the fingerprint
of a configuration (what the store keys stored results by)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np


def config_fingerprint(dataset: str, config: dict) -> str:
    payload = json.dumps({"dataset": dataset, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def clean_json(x):
    """NaN and infinities to None, numpy scalars to Python: strict JSON."""
    if isinstance(x, dict):
        return {k: clean_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [clean_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return [clean_json(v) for v in x.tolist()]
    if isinstance(x, np.bool_ | bool):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        x = float(x)
        return x if math.isfinite(x) else None
    return x
