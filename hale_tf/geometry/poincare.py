"""Poincaré-ball operations with curvature ``-c`` given as a tensor (one value per query).

Every formula of METHOD.md §3 for the ball lives here, in exactly one place. Shapes: points and tangent
vectors are ``[..., d]``; curvature ``c`` broadcasts against ``[..., 1]`` (e.g. ``[B, 1]`` per query).

Clamps (from the KGEmb reference code): norms ≥ 1e-15, tanh argument within ±15, artanh argument within
±(1 − 1e-5), and points are projected to norm ≤ (1 − ε)/√c with ε = 4e-3 (float32) or 1e-5 (float64).
"""

from __future__ import annotations

import tensorflow as tf

MIN_NORM = 1e-15
MAX_TANH_ARG = 15.0
ARTANH_LIMIT = 1.0 - 1e-5
BALL_EPS = {tf.float32: 4e-3, tf.float64: 1e-5, tf.bfloat16: 4e-3, tf.float16: 4e-3}

__all__ = [
    "artanh",
    "ball_eps",
    "ball_norm_of_expmap0",
    "distance",
    "expmap0",
    "logmap0",
    "mobius_add",
    "project",
    "safe_norm",
    "squared_distance",
    "squared_distance_to_all",
    "squared_distance_to_candidates",
    "tanh",
]


def safe_norm(x: tf.Tensor, axis: int = -1, keepdims: bool = True) -> tf.Tensor:
    """‖x‖ clamped below at 1e-15, with a finite (zero) gradient at x = 0.

    ``tf.norm`` has a NaN gradient at the origin; clamping the *squared* norm before the square root
    keeps both the value and the gradient finite.
    """
    sq = tf.reduce_sum(tf.square(x), axis=axis, keepdims=keepdims)
    return tf.sqrt(tf.maximum(sq, tf.cast(MIN_NORM**2, x.dtype)))


def tanh(x: tf.Tensor) -> tf.Tensor:
    """tanh with its argument clamped to ±15 (tanh is 1 to float precision beyond that)."""
    return tf.tanh(tf.clip_by_value(x, -MAX_TANH_ARG, MAX_TANH_ARG))


def artanh(x: tf.Tensor) -> tf.Tensor:
    """artanh(x) = ½(log(1 + x) − log(1 − x)) with x clamped to ±(1 − 1e-5) so it stays finite."""
    x = tf.clip_by_value(x, -ARTANH_LIMIT, ARTANH_LIMIT)
    return 0.5 * (tf.math.log1p(x) - tf.math.log1p(-x))


def ball_eps(dtype: tf.DType) -> float:
    """Margin ε kept from the ball boundary for ``dtype`` (points live within norm (1 − ε)/√c)."""
    return BALL_EPS.get(tf.as_dtype(dtype), 4e-3)


def project(x: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """Rescale points whose norm exceeds (1 − ε)/√c back onto that radius; others are unchanged."""
    norm = safe_norm(x)
    max_norm = (1.0 - ball_eps(x.dtype)) / tf.sqrt(c)
    return tf.where(norm > max_norm, x / norm * max_norm, x)


def expmap0(u: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """Exponential map at the origin: exp0(u) = tanh(√c‖u‖) u / (√c‖u‖), projected into the ball."""
    sqrt_c = tf.sqrt(c)
    u_norm = safe_norm(u)
    return project(tanh(sqrt_c * u_norm) * u / (sqrt_c * u_norm), c)


def logmap0(y: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """Logarithmic map at the origin: log0(y) = artanh(√c‖y‖) y / (√c‖y‖)."""
    sqrt_c = tf.sqrt(c)
    y_norm = safe_norm(y)
    return y / y_norm / sqrt_c * artanh(sqrt_c * y_norm)


def mobius_add(x: tf.Tensor, y: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """Möbius addition x ⊕_c y.

    x ⊕_c y = [(1 + 2c⟨x,y⟩ + c‖y‖²) x + (1 − c‖x‖²) y] / (1 + 2c⟨x,y⟩ + c²‖x‖²‖y‖²)
    """
    x2 = tf.reduce_sum(x * x, axis=-1, keepdims=True)
    y2 = tf.reduce_sum(y * y, axis=-1, keepdims=True)
    xy = tf.reduce_sum(x * y, axis=-1, keepdims=True)
    num = (1.0 + 2.0 * c * xy + c * y2) * x + (1.0 - c * x2) * y
    denom = 1.0 + 2.0 * c * xy + c * c * x2 * y2
    return num / tf.maximum(denom, tf.cast(MIN_NORM, x.dtype))


def distance(x: tf.Tensor, y: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """Geodesic distance d_c(x, y) = (2/√c) artanh(√c ‖(−x) ⊕_c y‖), shape ``[..., 1]``."""
    sqrt_c = tf.sqrt(c)
    return 2.0 / sqrt_c * artanh(sqrt_c * safe_norm(mobius_add(-x, y, c)))


def squared_distance(x: tf.Tensor, y: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """d_c(x, y)², the quantity the models score with; shape ``[..., 1]``."""
    return tf.square(distance(x, y, c))


def ball_norm_of_expmap0(v: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """‖project(exp0_c(v))‖ for every curvature row and entity: ``v [N, d]``, ``c [K, 1]`` → ``[K, N]``.

    γ = min(tanh(√c‖v‖), 1 − ε)/√c: the same clamp as :func:`project`.
    """
    sqrt_c = tf.sqrt(c)
    v_norm = tf.transpose(safe_norm(v))  # [1, N]
    return tf.minimum(tanh(sqrt_c * v_norm), 1.0 - ball_eps(v.dtype)) / sqrt_c


def squared_distance_to_all(
    x: tf.Tensor, v: tf.Tensor, c: tf.Tensor, ball_norm: tf.Tensor | None = None
) -> tf.Tensor:
    """Squared distance from each query point to every entity, from one matmul plus norms.

    Args:
        x: query points in the ball, ``[B, d]``.
        v: entity *tangent* vectors, ``[N, d]``; entity e sits at exp0_c(v_e) for the query's curvature.
        c: curvature per query, ``[B, 1]``.
        ball_norm: optional precomputed ``[B, N]`` γ (:func:`ball_norm_of_expmap0` of the query's
            curvature), e.g. gathered from a per-relation table.

    Returns:
        ``[B, N]`` tensor of d_c(x_b, exp0_c(v_e))². No ``[B, N, d]`` tensor is formed: with
        γ = min(tanh(√c‖v‖), 1 − ε)/√c the ball norm of the entity (the same clamp as ``project``),
        ⟨x, y⟩ = γ⟨x, v/‖v‖⟩, c1 = 1 − 2c⟨x,y⟩ + cγ², c2 = 1 − c‖x‖²:
        ‖(−x) ⊕ y‖ = sqrt(c1²‖x‖² + c2²γ² − 2 c1 c2 ⟨x,y⟩) / (1 − 2c⟨x,y⟩ + c²γ²‖x‖²).
    """
    v_norm = tf.transpose(safe_norm(v))  # [1, N]
    x_dot_dir = tf.matmul(x, v / tf.transpose(v_norm), transpose_b=True)  # [B, N] = ⟨x, v/‖v‖⟩
    # Ball norm of exp0(v) under the query's curvature, clamped like project().
    gamma = ball_norm_of_expmap0(v, c) if ball_norm is None else ball_norm  # [B, N]
    return _squared_distance_from_direction_dot(x, x_dot_dir, gamma, c)


def squared_distance_to_candidates(x: tf.Tensor, v: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
    """Squared distance from each query point to its own candidate entities (negative sampling).

    Args:
        x: query points in the ball, ``[B, d]``.
        v: each query's candidate entity *tangent* vectors, ``[B, K, d]``.
        c: curvature per query, ``[B, 1]``.

    Returns:
        ``[B, K]``: d_c(x_b, exp0_c(v_bk))², the same closed form as :func:`squared_distance_to_all`
        (equal to ``squared_distance(x, project(expmap0(v)))`` up to rounding). Only the dot products and
        the candidates' norms pass over the ``[B, K, d]`` block; the ~20 element-wise operations of the
        Möbius form (and their ~60 backward) run on ``[B, K]`` scalars instead.
    """
    v_norm = safe_norm(v, keepdims=False)  # [B, K]
    x_dot_dir = tf.linalg.matvec(v, x) / v_norm  # [B, K] = ⟨x, v/‖v‖⟩
    sqrt_c = tf.sqrt(c)
    gamma = tf.minimum(tanh(sqrt_c * v_norm), 1.0 - ball_eps(v.dtype)) / sqrt_c  # as ball_norm_of_expmap0
    return _squared_distance_from_direction_dot(x, x_dot_dir, gamma, c)


def _squared_distance_from_direction_dot(
    x: tf.Tensor, x_dot_dir: tf.Tensor, gamma: tf.Tensor, c: tf.Tensor
) -> tf.Tensor:
    """The Möbius-form δ of :func:`squared_distance_to_all` from ⟨x, v/‖v‖⟩ and γ (both ``[B, M]``)."""
    sqrt_c = tf.sqrt(c)  # [B, 1]
    xy = gamma * x_dot_dir
    x2 = tf.reduce_sum(x * x, axis=-1, keepdims=True)  # [B, 1]
    c1 = 1.0 - 2.0 * c * xy + c * gamma * gamma
    c2 = 1.0 - c * x2
    num_sq = c1 * c1 * x2 + c2 * c2 * gamma * gamma - 2.0 * c1 * c2 * xy
    num = tf.sqrt(tf.maximum(num_sq, tf.cast(MIN_NORM**2, x.dtype)))
    denom = 1.0 - 2.0 * c * xy + c * c * gamma * gamma * x2
    z = tf.clip_by_value(sqrt_c * num / tf.maximum(denom, tf.cast(MIN_NORM, x.dtype)), -ARTANH_LIMIT, ARTANH_LIMIT)
    # artanh(z) = ½ log((1 + z)/(1 − z)): one log instead of two log1p on the B × N hot path (measured
    # ~15% faster under XLA); its absolute error near z = 0 is below float precision of the scores.
    dist = tf.math.log((1.0 + z) / (1.0 - z)) / sqrt_c
    return tf.square(dist)


def squared_distance_to_all_by_relation(
    x: tf.Tensor, v: tf.Tensor, c: tf.Tensor, relation_curvatures: tf.Tensor, relation: tf.Tensor
) -> tf.Tensor:
    """:func:`squared_distance_to_all` with γ computed once per relation and gathered per query.

    γ (the ball norm of exp0_c(v_e)) depends on the query only through its relation's curvature, so for
    batches with more queries than relations one ``[R, N]`` table replaces ``B × N`` tanh evaluations.

    Args:
        x, v, c: as in :func:`squared_distance_to_all` (``c`` = ``relation_curvatures[relation]``).
        relation_curvatures: curvature of every relation id, ``[R, 1]``.
        relation: relation id per query, ``[B]`` int.
    """
    gamma_all = ball_norm_of_expmap0(v, relation_curvatures)  # [R, N]
    return squared_distance_to_all(x, v, c, ball_norm=tf.gather(gamma_all, relation))



def squared_distance_from_dot(
    a: tf.Tensor, x2: tf.Tensor, c: tf.Tensor, v_norm: tf.Tensor, *, eps: float | None = None,
    entity: dict[str, tf.Tensor] | None = None,
) -> tf.Tensor:
    """δ = d_c(x, exp0_c(v))² from the dot product a = ⟨x, v⟩ and norms (the all-entity training kernel).

    Arcosh form, more accurate near the boundary and at large distances than the Möbius form of
    :func:`squared_distance_to_all` (whose artanh clamp caps the distance)::

        γ = min(tanh(√c‖v‖), 1 − ε)/√c           (ball norm of exp0_c(v), clamped like project)
        D = ‖x − y‖² = ‖x‖² + γ² − 2(γ/‖v‖)a       (y = exp0_c(v) = (γ/‖v‖) v)
        t = 2c D / ((1 − c‖x‖²)(1 − cγ²))
        δ = arcosh(1 + t)² / c,  arcosh(1 + t) = log1p(t + sqrt(t(t + 2)))

    Shapes broadcast: ``a [B, C]``, ``x2``/``c`` ``[B, 1]``, ``v_norm [1, C]`` (clamped ≥ 1e-15).
    ``entity``: :func:`ball_entity_terms` of (c, v_norm), precomputed (e.g. per relation and gathered).
    """
    return _ball_terms(a, x2, c, v_norm, ball_eps(a.dtype) if eps is None else eps, entity)["delta"]


def ball_entity_terms(c: tf.Tensor, v_norm: tf.Tensor, eps: float) -> dict[str, tf.Tensor]:
    """The terms of :func:`squared_distance_from_dot` that depend only on (curvature, entity).

    th = tanh(√c‖v‖), γ = min(th, 1 − ε)/√c and 1/(1 − cγ²), broadcast over ``c`` and ``v_norm``. The
    all-entity kernel computes them once per relation id (``c [G, 1]``, ``v_norm [1, C]``) and gathers
    rows by the queries' relations instead of evaluating a tanh and two divisions per (query, entity).
    """
    one = tf.cast(1.0, v_norm.dtype)
    sqrt_c = tf.sqrt(c)
    n = tf.maximum(v_norm, tf.cast(MIN_NORM, v_norm.dtype))
    th = tf.tanh(tf.minimum(sqrt_c * n, MAX_TANH_ARG))
    gamma = tf.minimum(th, one - eps) / sqrt_c
    return {"th": th, "gamma": gamma, "inv_b": 1.0 / (one - c * (gamma * gamma))}


def _ball_terms(a: tf.Tensor, x2: tf.Tensor, c: tf.Tensor, v_norm: tf.Tensor, eps: float,
                entity: dict[str, tf.Tensor] | None = None) -> dict[str, tf.Tensor]:
    """The forward of :func:`squared_distance_from_dot` with the intermediates its gradient reuses
    (``entity``: :func:`ball_entity_terms` already gathered to the shape of ``a``)."""
    one = tf.cast(1.0, a.dtype)
    n = tf.maximum(v_norm, tf.cast(MIN_NORM, a.dtype))
    inv_n = 1.0 / n  # [1, C]
    terms = ball_entity_terms(c, v_norm, eps) if entity is None else entity
    th, gamma, inv_b = terms["th"], terms["gamma"], terms["inv_b"]
    clamped = th > one - eps
    rho = gamma * inv_n
    g2 = gamma * gamma
    d_raw = x2 + g2 - 2.0 * rho * a
    a_factor = tf.maximum(one - c * x2, tf.cast(MIN_NORM, a.dtype))  # [B, 1]
    k_row = 2.0 * c / a_factor  # [B, 1]
    t = k_row * inv_b * tf.maximum(d_raw, 0.0)
    q = tf.sqrt(tf.maximum(t * (t + 2.0), tf.cast(MIN_NORM**2, a.dtype)))
    # log(1 + t + q) rather than log1p(t + q): 3× cheaper on the B × N hot path; where they differ
    # (t + q ≲ 1e-4) the absolute error of δ = arcosh²/c is below 1e-10.
    arcosh = tf.math.log(1.0 + (t + q))
    return {"delta": arcosh * arcosh / c, "arcosh": arcosh, "q": q, "t": t, "k_row": k_row, "inv_b": inv_b,
            "d_pos": d_raw > 0, "a_factor": a_factor, "gamma": gamma, "rho": rho, "g2": g2, "th": th,
            "clamped": clamped, "n": n, "inv_n": inv_n}


def squared_distance_from_dot_grad(
    d_delta: tf.Tensor, a: tf.Tensor, x2: tf.Tensor, c: tf.Tensor, v_norm: tf.Tensor, *, eps: float | None = None,
    entity: dict[str, tf.Tensor] | None = None,
) -> tuple[tf.Tensor, list[tf.Tensor], list[tf.Tensor]]:
    """Gradient of :func:`squared_distance_from_dot` for upstream ``d_delta [B, C]``.

    Returns (∂a ``[B, C]``, [∂‖x‖², ∂c] each ``[B]`` (summed over entities), [∂‖v‖] ``[C]`` (summed over
    queries)). Taken by hand, term by term (checked against autodiff in float64 by the tests); with
    k = 2c/A, A = 1 − c‖x‖², β = 1/(1 − cγ²), t = kβD and L = arcosh(1 + t):
    dt = dδ·2L/(c·sqrt(t(t+2))) (→ 2dδ/c as t → 0), u = kβ·dt, ∂a = −2(γ/‖v‖)u,
    ∂‖x‖² = Σ u + (c/A) Σ t·dt, ∂γ = u(2γ − 2a/‖v‖) + 2cγβ·t·dt,
    ∂c = −Σ δ·dδ/c + (1/c + ‖x‖²/A) Σ t·dt + Σ γ²β·t·dt + Σ ∂γ·(‖v‖γ' − γ)/(2c),
    ∂‖v‖ = Σ u·2(γ/‖v‖)a/‖v‖ + ∂γ·γ', γ' = 1 − tanh²(√c‖v‖) (0 where γ is clamped).
    """
    f = _ball_terms(a, x2, c, v_norm, ball_eps(a.dtype) if eps is None else eps, entity)
    one = tf.cast(1.0, a.dtype)
    # arcosh(1 + t)/sqrt(t(t + 2)) → 1 − t/3 as t → 0, where the ratio of two tiny numbers is inexact.
    ratio = tf.where(f["t"] < 1e-3, 1.0 - f["t"] / 3.0, f["arcosh"] / f["q"])
    dt = d_delta * (2.0 * ratio) / c
    tdt = f["t"] * dt
    u = tf.where(f["d_pos"], f["k_row"] * f["inv_b"] * dt, tf.zeros_like(dt))
    slope = tf.where(f["clamped"], tf.zeros_like(f["th"]), one - f["th"] * f["th"])
    d_gamma = u * (2.0 * f["gamma"] - 2.0 * a * f["inv_n"]) + 2.0 * c * f["gamma"] * f["inv_b"] * tdt
    # Row factors are [B, 1]; each gradient is one element-wise term and one reduction (fewer passes).
    inv_c = 1.0 / c
    d_x2 = tf.reduce_sum(u + (c / f["a_factor"]) * tdt, axis=1)
    d_c = tf.reduce_sum(
        ((inv_c + x2 / f["a_factor"]) + f["g2"] * f["inv_b"]) * tdt - inv_c * f["delta"] * d_delta
        + (0.5 * inv_c) * d_gamma * (f["n"] * slope - f["gamma"]),
        axis=1,
    )
    d_n = tf.reduce_sum(2.0 * u * f["rho"] * a * f["inv_n"] + d_gamma * slope, axis=0)
    return -2.0 * f["rho"] * u, [d_x2, d_c], [d_n]
