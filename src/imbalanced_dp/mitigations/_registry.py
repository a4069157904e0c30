"""Mitigations of DP-SGD's disparate impact whose privacy accounting stays true.

Each mitigation turns a prepared plain DP-SGD run into its mitigated form: the engine
configuration, per-example loss weights, and a privacy ledger that lists every mechanism
that touched the private data and how the total ε was composed.

========================  =================================================================
``none``                  plain DP-SGD
``class_weighted``        per-class loss weights applied before clipping (sensitivity stays
                          C); weights from a public prior (``weights`` or ``prior``), else
                          from class counts released by the Laplace mechanism with a share
                          ``count_share`` of ε; basic composition: ε_counts + ε_SGD ≤ ε
``dpsgd_f``               DPSGD-F (Xu, Du & Wu 2021): per-class clip bounds from noisy
                          per-class counts of clipped examples at every step
``global_adapt``          DPSGD-Global-Adapt (Esipova et al. 2023): every gradient scaled by
                          C / Z with Z tracking a quantile of the norms from a noisy count
``threshold``             plain DP-SGD with the decision threshold moved to balance the
                          classes, chosen on held-out training rows or given as public
``oversample``            refused: copies break the per-record guarantee (PRIVACY.md rule 7)
========================  =================================================================

For ``dpsgd_f`` and ``global_adapt`` the auxiliary counts run at every step on the same
Poisson batch; the accountant composes both mechanisms. ``aux_share`` (default 0.1) is the
share of ε the gradients give up: the gradient noise is calibrated alone to
``(1 - aux_share) ε``, then the counts get the least noise that keeps the composition at
most ε.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..exceptions import ParameterError
from ..privacy import calibrate_noise_multiplier, epsilon_spent

OVERSAMPLE_REFUSAL = (
    "oversampling is refused under DP: a copied record joins several draws, so its "
    "influence grows with its number of copies and the per-record guarantee no longer holds "
    "(with k copies only group privacy at roughly k-fold epsilon; Opacus's weighted sampler "
    "silently miscomputes epsilon, its issue #813); use --mitigation class_weighted, which "
    "reweights the loss before clipping at no privacy cost"
)

_PARAMS: dict[str, set[str]] = {
    "none": set(),
    "class_weighted": {"weights", "prior", "count_share", "threshold", "holdout"},
    "dpsgd_f": {"aux_share", "threshold", "holdout"},
    "global_adapt": {"aux_share", "z0", "lr_z", "quantile", "threshold", "holdout"},
    "threshold": {"value", "holdout"},
    "oversample": set(),
}


def _none(prepared, sigmas):
    return prepared


def mitigation_names() -> list[str]:
    return list(MITIGATIONS)


def _params(spec) -> dict:
    params = dict(spec.mitigation_params)
    unknown = set(params) - _PARAMS.get(spec.mitigation, set())
    if unknown:
        raise ParameterError(
            f"mitigation {spec.mitigation!r} takes no parameter {sorted(unknown)[0]!r}; "
            f"it takes: {', '.join(sorted(_PARAMS[spec.mitigation])) or 'none'}"
        )
    return params


def _share(params: dict, key: str, default: float) -> float:
    v = float(params.get(key, default))
    if not 0 < v < 1:
        raise ParameterError(f"mitigation parameter {key} must be in (0, 1); got {v}")
    return v


def _sigma(sigmas: dict, key: tuple) -> float:
    if key in sigmas:
        return sigmas[key]
    acc, eps, delta, q, steps, *rest = key
    extra = rest[0] if rest else ()
    return calibrate_noise_multiplier(
        target_epsilon=eps, delta=delta, sample_rate=q, steps=steps, accountant=acc, extra=extra
    )


def _threshold(prepared, params) -> None:
    t = params.get("threshold", params.get("value"))
    if prepared.spec.mitigation == "threshold" and t is None:
        t = "heldout"
    if t is None:
        return
    if t == "heldout":
        prepared.threshold = "heldout"
        return
    try:
        v = float(t)
    except (TypeError, ValueError):
        raise ParameterError(
            f"threshold must be a number in (0, 1) (public) or 'heldout'; got {t!r}"
        ) from None
    if not 0 < v < 1:
        raise ParameterError(f"threshold must be in (0, 1); got {v}")
    prepared.threshold = v


# ---------------------------------------------------------------------- class weighted


def class_weights_from_counts(n0: float, n1: float) -> tuple[float, float]:
    """Balanced weights ``n / (2 n_k)`` (each class carries half the total weight); noisy
    counts below one count as one."""
    return class_weights_from_shares(max(n0, 1.0), max(n1, 1.0))


def class_weights_from_shares(p0: float, p1: float) -> tuple[float, float]:
    """Balanced weights ``1 / (2 p_k)`` for class shares ``p`` (normalised to sum to 1)."""
    tot = p0 + p1
    return tot / (2 * p0), tot / (2 * p1)


def laplace_counts(y: np.ndarray, epsilon: float, seed: int) -> tuple[float, float]:
    """Class counts released by the Laplace mechanism: one record changes one count by one
    (L1 sensitivity 1), so noise of scale 1/ε gives ε-DP. Deterministic per seed."""
    rng = np.random.default_rng([int(seed), 0xC1A55])
    counts = np.bincount(y, minlength=2).astype(float)
    noisy = counts + rng.laplace(0.0, 1.0 / epsilon, size=2)
    return float(noisy[0]), float(noisy[1])


def _class_weighted(prepared, sigmas):
    spec = prepared.spec
    params = _params(spec)
    led = prepared.ledger
    y = prepared.split.y_train
    if "weights" in params or "prior" in params:
        if "weights" in params:
            w = [float(v) for v in params["weights"]]
            source = f"public per-class weights {w} given by the user"
        else:
            prior = [float(v) for v in params["prior"]]
            if len(prior) != 2 or min(prior) <= 0:
                raise ParameterError(f"prior must be two positive class shares; got {prior}")
            w = list(class_weights_from_shares(prior[0], prior[1]))
            source = f"a public class prior {prior} given by the user"
        if len(w) != 2 or min(w) <= 0:
            raise ParameterError(f"weights must be two positive numbers; got {w}")
        led.notes.append(
            f"class weights {[round(v, 4) for v in w]} from {source}: not fitted "
            "on the private data, no privacy spent"
        )
    else:
        share = _share(params, "count_share", 0.05)
        eps_c = share * spec.epsilon
        eps_sgd = spec.epsilon - eps_c
        n0, n1 = laplace_counts(y, eps_c, spec.seed)
        w = list(class_weights_from_counts(n0, n1))
        key = (spec.accountant, float(eps_sgd), float(spec.delta), led.sample_rate, led.steps)
        sigma = _sigma(sigmas, key)
        spent_sgd = epsilon_spent(
            noise_multiplier=sigma,
            sample_rate=led.sample_rate,
            steps=led.steps,
            delta=spec.delta,
            accountant=spec.accountant,
        )
        prepared.config = replace(prepared.config, noise_multiplier=sigma)
        led.noise_multiplier = sigma
        led.epsilon_spent = eps_c + spent_sgd
        led.components = [
            {
                "mechanism": "Laplace class counts (L1 sensitivity 1)",
                "epsilon": eps_c,
                "delta": 0.0,
                "scale": 1.0 / eps_c,
                "noisy_counts": [n0, n1],
                "share": share,
            },
            {
                "mechanism": "DP-SGD",
                "epsilon": spent_sgd,
                "delta": spec.delta,
                "noise_multiplier": sigma,
                "share": 1 - share,
            },
        ]
        led.notes.append(
            "class weights from Laplace-noised class counts; total epsilon by basic "
            "composition (epsilon_counts + epsilon_SGD), which is conservative"
        )
    weights = np.where(y == 1, w[1], w[0]).astype(np.float64)
    prepared.weights = weights
    led.notes.append(
        f"per-class loss weights {[round(v, 4) for v in w]} applied before "
        "clipping: sensitivity stays C"
    )
    _threshold(prepared, params)
    return prepared


# ---------------------------------------------------------------------- per-step counts


def aux_calibration(spec, q: float, steps: int, params: dict, sigmas: dict):
    """(σ_gradient, σ_counts) for a mitigation with a per-step count query."""
    share = _share(params, "aux_share", 0.1)
    key_g = (spec.accountant, float(spec.epsilon * (1 - share)), float(spec.delta), q, steps)
    sg = _sigma(sigmas, key_g)
    key_a = (spec.accountant, float(spec.epsilon), float(spec.delta), q, steps, ((sg, q, steps),))
    sa = _sigma(sigmas, key_a)
    return sg, sa, share, key_g, key_a


def _with_counts(prepared, sigmas, rule: str, aux: dict, description: str):
    spec = prepared.spec
    params = _params(spec)
    led = prepared.ledger
    q, steps = led.sample_rate, led.steps
    sg, sa, share, _, _ = aux_calibration(spec, q, steps, params, sigmas)
    total = epsilon_spent(
        noise_multiplier=sg,
        sample_rate=q,
        steps=steps,
        delta=spec.delta,
        accountant=spec.accountant,
        extra=((sa, q, steps),),
    )
    alone = {
        name: epsilon_spent(
            noise_multiplier=s,
            sample_rate=q,
            steps=steps,
            delta=spec.delta,
            accountant=spec.accountant,
        )
        for name, s in (("gradients", sg), ("counts", sa))
    }
    aux = dict(aux, aux_sigma=sa)
    prepared.config = replace(prepared.config, noise_multiplier=sg, clip_rule=rule, aux=aux)
    led.noise_multiplier = sg
    led.epsilon_spent = total
    led.components = [
        {
            "mechanism": "DP-SGD gradients",
            "noise_multiplier": sg,
            "epsilon_alone": alone["gradients"],
            "share": 1 - share,
        },
        {
            "mechanism": description,
            "noise_multiplier": sa,
            "epsilon_alone": alone["counts"],
            "share": share,
        },
    ]
    led.notes.append(
        f"{description} at every step (noise multiplier {sa:.3g}, sensitivity 1), composed "
        f"with the gradients by the {spec.accountant} accountant: total epsilon {total:.4f}"
    )
    _threshold(prepared, params)
    return prepared


def _dpsgd_f(prepared, sigmas):
    spec = prepared.spec
    return _with_counts(
        prepared,
        sigmas,
        "dpsgd_f",
        {"base_clip": spec.clip},
        "noisy per-class counts of examples clipped at C0 (DPSGD-F)",
    )


def _global_adapt(prepared, sigmas):
    spec = prepared.spec
    params = _params(spec)
    aux = {
        "z0": float(params.get("z0", spec.clip)),
        "lr_z": float(params.get("lr_z", 0.005)),
        "quantile": float(params.get("quantile", 0.9)),
    }
    if aux["z0"] <= 0 or aux["lr_z"] <= 0 or not 0 < aux["quantile"] < 1:
        raise ParameterError(f"global_adapt needs z0 > 0, lr_z > 0 and 0 < quantile < 1; got {aux}")
    return _with_counts(
        prepared,
        sigmas,
        "global_adapt",
        aux,
        "noisy count of examples whose norm is within Z (DPSGD-Global-Adapt)",
    )


def _threshold_only(prepared, sigmas):
    _threshold(prepared, _params(prepared.spec))
    return prepared


def _oversample(prepared, sigmas):
    raise ParameterError(OVERSAMPLE_REFUSAL)


MITIGATIONS: dict[str, Callable] = {
    "none": _none,
    "class_weighted": _class_weighted,
    "dpsgd_f": _dpsgd_f,
    "global_adapt": _global_adapt,
    "threshold": _threshold_only,
    "oversample": _oversample,
}


def check_mitigation(spec) -> None:
    """Raise :class:`ParameterError` for an unknown or refused mitigation, one asked of a
    non-private run, or an unknown parameter."""
    name = spec.mitigation
    if name not in MITIGATIONS:
        raise ParameterError(f"mitigation must be one of {', '.join(MITIGATIONS)}; got {name!r}")
    if name == "oversample":
        raise ParameterError(OVERSAMPLE_REFUSAL)
    if name != "none" and not spec.private:
        raise ParameterError(
            f"mitigation {name!r} applies to DP runs; a non-private run is the common reference"
        )
    _params(spec)


def apply_mitigation(prepared, sigmas):
    """Turn a prepared plain run into its mitigated form (see the module docstring)."""
    check_mitigation(prepared.spec)
    return MITIGATIONS[prepared.spec.mitigation](prepared, sigmas)


def calibration_keys_for(spec, plan, sigmas: dict | None = None) -> list[tuple]:
    """Noise calibrations a mitigated run needs, so the driver computes each once. Keys with
    an extra mechanism depend on an earlier σ: they are returned once that σ is known."""
    if not spec.private or spec.mitigation in ("none", "threshold", "oversample"):
        return []
    params = dict(spec.mitigation_params)
    q, steps = plan.sample_rate, plan.steps
    if spec.mitigation == "class_weighted":
        if "weights" in params or "prior" in params:
            return []
        share = float(params.get("count_share", 0.05))
        return [(spec.accountant, float(spec.epsilon * (1 - share)), float(spec.delta), q, steps)]
    share = float(params.get("aux_share", 0.1))
    key_g = (spec.accountant, float(spec.epsilon * (1 - share)), float(spec.delta), q, steps)
    if sigmas is None or key_g not in sigmas:
        return [key_g]
    sg = sigmas[key_g]
    return [
        key_g,
        (spec.accountant, float(spec.epsilon), float(spec.delta), q, steps, ((sg, q, steps),)),
    ]
