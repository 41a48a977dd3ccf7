"""Float64 NumPy references of the geometry and of every model's query (METHOD.md §3).

Written independently of hale_tf's TensorFlow code so the tests compare two implementations.
"""

from __future__ import annotations

import numpy as np

MIN_NORM = 1e-15


def norm(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), MIN_NORM)


def artanh(x: np.ndarray) -> np.ndarray:
    return np.arctanh(np.clip(x, -1 + 1e-5, 1 - 1e-5))


def project(x: np.ndarray, c: np.ndarray, eps: float) -> np.ndarray:
    n = norm(x)
    max_norm = (1 - eps) / np.sqrt(c)
    return np.where(n > max_norm, x / n * max_norm, x)


def expmap0(u: np.ndarray, c: np.ndarray, eps: float) -> np.ndarray:
    sc = np.sqrt(c)
    n = norm(u)
    return project(np.tanh(np.clip(sc * n, -15, 15)) * u / (sc * n), c, eps)


def logmap0(y: np.ndarray, c: np.ndarray) -> np.ndarray:
    sc = np.sqrt(c)
    n = norm(y)
    return y / n / sc * artanh(sc * n)


def mobius_add(x: np.ndarray, y: np.ndarray, c: np.ndarray) -> np.ndarray:
    x2 = (x * x).sum(-1, keepdims=True)
    y2 = (y * y).sum(-1, keepdims=True)
    xy = (x * y).sum(-1, keepdims=True)
    num = (1 + 2 * c * xy + c * y2) * x + (1 - c * x2) * y
    return num / np.maximum(1 + 2 * c * xy + c**2 * x2 * y2, MIN_NORM)


def hyp_distance(x: np.ndarray, y: np.ndarray, c: np.ndarray) -> np.ndarray:
    sc = np.sqrt(c)
    return 2 / sc * artanh(sc * norm(mobius_add(-x, y, c)))


def _pairs(theta: np.ndarray, x: np.ndarray):
    t = theta.reshape(*theta.shape[:-1], -1, 2)
    t = t / np.maximum(np.linalg.norm(t, axis=-1, keepdims=True), MIN_NORM)
    p = x.reshape(*x.shape[:-1], -1, 2)
    return t[..., 0], t[..., 1], p[..., 0], p[..., 1]


def rotate(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    a, b, x0, x1 = _pairs(theta, x)
    return np.stack([a * x0 - b * x1, b * x0 + a * x1], -1).reshape(x.shape)


def reflect(theta: np.ndarray, x: np.ndarray) -> np.ndarray:
    a, b, x0, x1 = _pairs(theta, x)
    return np.stack([a * x0 + b * x1, b * x0 - a * x1], -1).reshape(x.shape)


def softplus(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(x))


def weights_of(model) -> dict[str, np.ndarray]:
    """Model variables by their path below the model, as float64 arrays."""
    prefix = model.name + "/"
    return {v.path.removeprefix(prefix): np.asarray(v.numpy(), np.float64) for v in model.weights}


def _attention(w: dict[str, np.ndarray], head: np.ndarray, r: np.ndarray, dim: int) -> np.ndarray:
    q_rot = rotate(w["attention/rotation/table"][r], head)
    q_ref = reflect(w["attention/reflection/table"][r], head)
    cands = np.stack([q_ref, q_rot], 1)
    logits = (w["attention/context/table"][r][:, None, :] * cands).sum(-1, keepdims=True) / np.sqrt(dim)
    att = np.exp(logits - logits.max(1, keepdims=True))
    att /= att.sum(1, keepdims=True)
    return (att * cands).sum(1)


def reference_scores(model, h: np.ndarray, r: np.ndarray, eps: float = 4e-3) -> np.ndarray:
    """Float64 scores of queries (h, r) against all entities, ``[B, N]``, from the model's weights."""
    w = weights_of(model)
    name = type(model).__name__
    ent = w["entities/embeddings"]
    head = ent[h]
    d = model.dim
    if name in ("RotH", "RefH", "AttH"):
        c = softplus(w["curvature/raw"][r])
        if name == "RotH":
            r1, r2 = np.split(w["translation/table"][r], 2, axis=-1)
            lhs = project(mobius_add(expmap0(head, c, eps), expmap0(r1, c, eps), c), c, eps)
            q = project(mobius_add(rotate(w["rotation/table"][r], lhs), expmap0(r2, c, eps), c), c, eps)
        elif name == "RefH":
            lhs = expmap0(reflect(w["reflection/table"][r], head), c, eps)
            q = project(mobius_add(lhs, expmap0(w["translation/table"][r], c, eps), c), c, eps)
        else:
            lhs = expmap0(_attention(w, head, r, d), c, eps)
            q = project(mobius_add(lhs, expmap0(w["translation/table"][r], c, eps), c), c, eps)
        tails = expmap0(ent[None, :, :], c[:, None, :], eps)  # [B, N, d]: fine for a small reference
        delta = hyp_distance(q[:, None, :], tails, c[:, None, :])[..., 0] ** 2
    else:
        trans = w["translation/table"][r]
        if name == "TransE":
            q = head + trans
        elif name == "RotE":
            q = rotate(w["rotation/table"][r], head) + trans
        elif name == "RefE":
            q = reflect(w["reflection/table"][r], head) + trans
        elif name == "MuRE":
            q = w["scaling/table"][r] * head + trans
        elif name == "AttE":
            q = _attention(w, head, r, d) + trans
        else:
            raise ValueError(f"no reference for {name}")
        delta = ((q[:, None, :] - ent[None, :, :]) ** 2).sum(-1)
    scores = -delta
    if model.use_bias:
        scores = scores + w["entities/head_bias"][h][:, None] + w["entities/tail_bias"][None, :]
    return scores
