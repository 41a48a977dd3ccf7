"""Fused all-entity row reductions: the log-sum-exp (or softplus sum) of every query's logits over all N
entities, with an analytic gradient, in chunks, so that no ``[B, N]`` tensor is ever materialised.

For queries Q (points ``x [B, d]``, curvature ``c [B, 1]`` for the ball) and entity vectors ``v [N, d]``
with tail biases ``b [N]``, the logit of entity e for query q is::

    ℓ(q, e) = (−ψ(δ(x_q, v_e)) + b_e) / τ

with δ the model's squared distance written as a function of the dot product a = ⟨x_q, v_e⟩ (one matmul),
per-query statistics (‖x‖², c) and per-entity statistics (‖v‖ or ‖v‖²) — see
:func:`hale_tf.geometry.poincare.squared_distance_from_dot` and
:func:`hale_tf.geometry.euclidean.squared_distance_from_dot`. The reductions are

- ``logsumexp``: LSE_q = log Σ_{e ∉ X_q} exp ℓ(q, e), with X_q an optional set of excluded cells (the
  query's known answers, for filtered losses);
- ``softplus``: (Σ_e softplus ℓ(q, e), Σ_e ℓ(q, e)), what multi-label BCE needs.

Why a kernel: autodiff of the closed-form distance over a ``[B, N]`` block makes ≈ 140 element-wise
backward ops, each a fresh ``B × N`` temporary, and the step is memory-bound. Here the forward is one
XLA-compiled loop over entity chunks (one ``[B, d] × [d, C]`` matmul and fused element-wise work per
chunk, an online log-sum-exp); the backward recomputes each chunk and applies the derivatives taken by
hand (two matmuls per chunk: ``∂a`` to the queries and to the entities), so every ``[B, C]`` temporary
stays in cache. Gradients with respect to the per-query and per-entity statistics are returned as row
and column sums; ordinary autodiff outside the kernel chains them to x, c and v.

Shapes are static inside the compiled functions: N is padded to a multiple of the chunk (padded
entities get a −10³⁰ bias, so they add exactly 0), and the excluded cells are padded to a power of two
(so a varying answer count compiles a handful of times, not every step).
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import tensorflow as tf

from hale_tf.geometry import euclidean, poincare

__all__ = ["DEFAULT_CHUNK", "AllEntityInputs", "AllEntityKernel", "all_entity_reduce", "chunk_for_batch"]

DEFAULT_CHUNK = 256  # for an unknown batch size
# A chunk covers ≈ 128k (query, entity) cells: B = 500 → 256 entities, the best of 64…4096 for RotH on the
# 2-core CPU; small batches get longer chunks (fewer loop iterations, B = 100 → 1024).
CELLS_PER_CHUNK = 128 * 1024
MASK_LOGIT = -1e30  # excluded cells and padded entities: exp(MASK_LOGIT − anything finite) == 0
MIN_EXCLUDED_BUCKET = 256
REDUCTIONS = ("logsumexp", "softplus")
MAX_PARTS = 8
MIN_PART_ROWS = 16


class AllEntityKernel(NamedTuple):
    """Static settings of one compiled kernel (hashable: one compilation cache entry each).

    geometry: ``poincare`` or ``euclidean``; activation: ψ with ``__call__`` and ``derivative``;
    inv_tau: 1/τ; reduction: ``logsumexp`` or ``softplus``; chunk: entities per loop iteration.
    """

    geometry: str
    activation: Any
    inv_tau: float
    reduction: str
    chunk: int


class _Form(NamedTuple):
    forward: Callable[..., tf.Tensor]
    backward: Callable[..., tuple[tf.Tensor, Sequence[tf.Tensor], Sequence[tf.Tensor]]]


def _form(geometry: str, dtype: tf.DType) -> _Form:
    """The geometry's distance from dot products and its gradient; ``entity``: per-relation terms (ball)."""
    if geometry == "poincare":
        eps = poincare.ball_eps(dtype)
        return _Form(
            lambda a, rows, cols, entity=None: poincare.squared_distance_from_dot(a, *rows, *cols, eps=eps,
                                                                                  entity=entity),
            lambda d_delta, a, rows, cols, entity=None: poincare.squared_distance_from_dot_grad(
                d_delta, a, *rows, *cols, eps=eps, entity=entity),
        )
    if geometry == "euclidean":
        return _Form(
            lambda a, rows, cols, entity=None: euclidean.squared_distance_from_dot(a, *rows, *cols),
            lambda d_delta, a, rows, cols, entity=None: euclidean.squared_distance_from_dot_grad(
                d_delta, a, *rows, *cols),
        )
    raise ValueError(f"unknown geometry {geometry!r}")


def _relation_terms(rel_index: tf.Tensor, rel_c: tf.Tensor, v_norm: tf.Tensor) -> dict[str, tf.Tensor]:
    """The ball's (curvature, entity) terms of one chunk, once per relation id (``rel_c [G, 1]``,
    ``v_norm [1, C]``) and gathered to the queries (``rel_index [B]``): ``[B, C]`` each."""
    table = poincare.ball_entity_terms(rel_c, v_norm, poincare.ball_eps(v_norm.dtype))
    return {key: tf.gather(value, rel_index) for key, value in table.items()}


def _chunk_logits(spec: AllEntityKernel, form: _Form, x: tf.Tensor, v_chunk: tf.Tensor, rows: list[tf.Tensor],
                  cols: list[tf.Tensor], bias: tf.Tensor, row_bias: tf.Tensor | None,
                  entity: dict[str, tf.Tensor] | None = None) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Dot products ``a``, distances δ and logits ℓ of one chunk, each ``[B, C]``."""
    a = tf.matmul(x, v_chunk, transpose_b=True)
    delta = form.forward(a, rows, cols, entity)
    shift = bias[tf.newaxis, :] if row_bias is None else bias[tf.newaxis, :] + row_bias[:, tf.newaxis]
    logits = (shift - spec.activation(delta)) * tf.constant(spec.inv_tau, x.dtype)
    return a, delta, logits


def _exclude(logits: tf.Tensor, ex_rows: tf.Tensor, ex_ids: tf.Tensor, start: tf.Tensor) -> tf.Tensor:
    """Set the excluded cells that fall in this chunk to MASK_LOGIT (others: a no-op min with +∞)."""
    width = tf.shape(logits)[1]
    col = ex_ids - start
    inside = (col >= 0) & (col < width)
    cells = tf.stack([ex_rows, tf.clip_by_value(col, 0, width - 1)], axis=1)
    updates = tf.where(inside, tf.cast(MASK_LOGIT, logits.dtype), tf.cast(float("inf"), logits.dtype))
    return tf.tensor_scatter_nd_min(logits, cells, updates)


def _split(values: Sequence[tf.Tensor], sizes: tuple[int, int]) -> tuple[list[tf.Tensor], list[tf.Tensor]]:
    return list(values[: sizes[0]]), list(values[sizes[0]: sizes[0] + sizes[1]])


@functools.cache
def _compiled(spec: AllEntityKernel, sizes: tuple[int, int], masked: bool, num_entities: int,
              has_row_bias: bool, per_relation: bool = False) -> tuple[Any, Any]:
    """The forward and backward XLA functions of one kernel spec (``sizes``: number of row/column stats;
    ``per_relation``: the ball's entity terms once per relation id, see :func:`_relation_terms`)."""
    num_rows, num_cols = sizes

    def real_columns(logits: tf.Tensor, start: tf.Tensor) -> tf.Tensor:
        """ℓ with the padded entities' columns zeroed (Σ ℓ of the softplus reduction counts real ones)."""
        real = (start + tf.range(spec.chunk)) < num_entities
        return tf.where(real[tf.newaxis, :], logits, tf.zeros_like(logits))

    def chunk_inputs(v: tf.Tensor, cols: list[tf.Tensor], bias: tf.Tensor, j: tf.Tensor):
        start = j * spec.chunk
        v_chunk = tf.slice(v, tf.stack([start, 0]), [spec.chunk, -1])
        cols_chunk = [tf.slice(s, [start], [spec.chunk])[tf.newaxis, :] for s in cols]
        return start, v_chunk, cols_chunk, tf.slice(bias, [start], [spec.chunk])

    def entity_terms(rel_index: tf.Tensor, rel_c: tf.Tensor, cols_chunk: list[tf.Tensor]):
        return _relation_terms(rel_index, rel_c, cols_chunk[0]) if per_relation else None

    def forward(x, v, bias, row_bias, ex_rows, ex_ids, rel_index, rel_c, *stats):
        form = _form(spec.geometry, x.dtype)
        shift = row_bias if has_row_bias else None
        rows, cols = _split(stats, sizes)
        num_chunks = v.shape[0] // spec.chunk
        batch = tf.shape(x)[0]

        def body(j, acc0, acc1):
            start, v_chunk, cols_chunk, b = chunk_inputs(v, cols, bias, j)
            _, _, logits = _chunk_logits(spec, form, x, v_chunk, rows, cols_chunk, b, shift,
                                         entity_terms(rel_index, rel_c, cols_chunk))
            if spec.reduction == "softplus":
                return (j + 1, acc0 + tf.reduce_sum(tf.math.softplus(logits), 1),
                        acc1 + tf.reduce_sum(real_columns(logits, start), 1))
            if masked:
                logits = _exclude(logits, ex_rows, ex_ids, start)
            # Online log-sum-exp: running max acc0 and the sum acc1 of exp(ℓ − acc0).
            new_max = tf.maximum(acc0, tf.reduce_max(logits, 1))
            total = acc1 * tf.exp(acc0 - new_max) + tf.reduce_sum(tf.exp(logits - new_max[:, tf.newaxis]), 1)
            return j + 1, new_max, total

        init = tf.fill([batch], tf.cast(MASK_LOGIT if spec.reduction == "logsumexp" else 0.0, x.dtype))
        _, acc0, acc1 = tf.while_loop(
            lambda j, *_: j < num_chunks, body, (tf.constant(0), init, tf.zeros([batch], x.dtype)),
            maximum_iterations=num_chunks,
        )
        if spec.reduction == "softplus":
            return tf.stack([acc0, acc1])
        return tf.stack([acc0 + tf.math.log(acc1)])

    def backward(upstream, value, x, x_t, v, bias, row_bias, ex_rows, ex_ids, rel_index, rel_c, *stats):
        form = _form(spec.geometry, x.dtype)
        shift = row_bias if has_row_bias else None  # row_bias itself shapes the zero gradient below
        rows, cols = _split(stats, sizes)
        num_chunks = v.shape[0] // spec.chunk
        inv_tau = tf.constant(spec.inv_tau, x.dtype)

        def body(j, d_x, d_rows, d_v, d_cols, d_bias):
            start, v_chunk, cols_chunk, b = chunk_inputs(v, cols, bias, j)
            entity = entity_terms(rel_index, rel_c, cols_chunk)
            a, delta, logits = _chunk_logits(spec, form, x, v_chunk, rows, cols_chunk, b, shift, entity)
            if spec.reduction == "softplus":
                d_logits = upstream[0][:, tf.newaxis] * tf.sigmoid(logits) + real_columns(
                    tf.broadcast_to(upstream[1][:, tf.newaxis], tf.shape(logits)), start)
            else:
                if masked:
                    logits = _exclude(logits, ex_rows, ex_ids, start)
                d_logits = tf.exp(logits - value[0][:, tf.newaxis]) * upstream[0][:, tf.newaxis]
            d_delta = -inv_tau * spec.activation.derivative(delta) * d_logits
            d_a, g_rows, g_cols = form.backward(d_delta, a, rows, cols_chunk, entity)
            if has_row_bias:
                g_rows = [*g_rows, inv_tau * tf.reduce_sum(d_logits, 1)]
            d_x += tf.matmul(d_a, v_chunk)
            d_rows = [acc + g for acc, g in zip(d_rows, g_rows, strict=True)]
            # x_t [d, B] comes transposed from outside the compiled function: XLA would fold an inner
            # transpose back into the dot, and a dot contracting over the rows of d_a runs ~3× slower.
            d_v = d_v.write(j, tf.matmul(x_t, d_a))  # [d, C]
            d_cols = [acc.write(j, g) for acc, g in zip(d_cols, g_cols, strict=True)]
            d_bias = d_bias.write(j, inv_tau * tf.reduce_sum(d_logits, 0))
            return j + 1, d_x, d_rows, d_v, d_cols, d_bias

        batch = tf.shape(x)[0]

        def array() -> tf.TensorArray:
            return tf.TensorArray(x.dtype, size=num_chunks, element_shape=None)

        _, d_x, d_rows, d_v, d_cols, d_bias = tf.while_loop(
            lambda j, *_: j < num_chunks, body,
            (tf.constant(0), tf.zeros_like(x), [tf.zeros([batch], x.dtype) for _ in range(num_rows + has_row_bias)],
             array(),
             [array() for _ in range(num_cols)], array()),
            maximum_iterations=num_chunks,
        )
        d_v = tf.reshape(tf.transpose(d_v.stack(), [0, 2, 1]), tf.shape(v))
        d_cols = [tf.reshape(acc.stack(), [-1]) for acc in d_cols]
        d_row_bias = d_rows.pop() if has_row_bias else tf.zeros_like(row_bias)
        d_rows = [g[:, tf.newaxis] for g in d_rows]
        return (d_x, d_v, tf.reshape(d_bias.stack(), [-1]), d_row_bias, *d_rows, *d_cols)

    compile_ = functools.partial(tf.function, jit_compile=True, autograph=False, reduce_retracing=True)
    return compile_(forward), compile_(backward)


def chunk_for_batch(batch: int | None) -> int:
    """Entities per loop iteration for a batch of ``batch`` queries: a power of two in [256, 4096]."""
    if not batch:
        return DEFAULT_CHUNK
    return int(min(4096, max(256, 2 ** round(math.log2(CELLS_PER_CHUNK / batch)))))


def _row_parts(x: tf.Tensor) -> int:
    """Concurrent calls for a batch: one per CPU core on a CPU-only machine (an accelerator runs one)."""
    if tf.config.list_logical_devices("GPU"):
        return 1
    static = x.shape[0]
    return max(1, min(os.cpu_count() or 1, MAX_PARTS, static // MIN_PART_ROWS if static else MAX_PARTS))


def _bucket(size: tf.Tensor) -> tf.Tensor:
    """Next power of two ≥ size (≥ MIN_EXCLUDED_BUCKET): few distinct compiled shapes."""
    size = tf.maximum(tf.cast(size, tf.int32), MIN_EXCLUDED_BUCKET)
    exponent = tf.math.ceil(tf.math.log(tf.cast(size, tf.float32)) / tf.math.log(2.0))
    bucket = tf.bitwise.left_shift(1, tf.cast(exponent, tf.int32))
    return tf.maximum(bucket, size)  # guards float rounding of the log


class AllEntityInputs(NamedTuple):
    """What a model hands the kernel (``KGEModel.all_entity_inputs``).

    geometry: ``poincare`` or ``euclidean``; point: query points ``[B, d]``; row_stats: per-query
    statistics, each ``[B, 1]`` (ball: ‖x‖², c; flat: ‖x‖²); vectors: entity vectors ``[N, d]``; col_stats:
    per-entity statistics, each ``[N]`` (ball: ‖v‖; flat: ‖v‖²); tail_bias: ``[N]``; head_bias: ``[B]``.
    relation_index ``[B]`` and relation_curvature ``[G, 1]`` (ball only, optional): each query's relation
    id and every relation id's curvature (``row_stats``' c is ``relation_curvature[relation_index]``); with
    them the kernel evaluates the (curvature, entity) terms once per relation id instead of per query.
    """

    geometry: str
    point: tf.Tensor
    row_stats: list[tf.Tensor]
    vectors: tf.Tensor
    col_stats: list[tf.Tensor]
    tail_bias: tf.Tensor
    head_bias: tf.Tensor
    relation_index: tf.Tensor | None = None
    relation_curvature: tf.Tensor | None = None


def all_entity_reduce(
    spec: AllEntityKernel,
    inputs: AllEntityInputs,
    *,
    excluded: tuple[tf.Tensor, tf.Tensor] | None = None,
    with_head_bias: bool = False,
    parts: int | None = None,
) -> tf.Tensor:
    """Reduce every query's logits over all entities (see the module docstring); differentiable.

    Args:
        spec: the kernel settings (its ``geometry`` must be ``inputs.geometry``).
        inputs: the model's query points, entity table, statistics and biases.
        excluded: (rows ``[K]``, entity ids ``[K]``) cells left out of the log-sum-exp.
        with_head_bias: add b_h to the logits (BCE needs it; the softmax-type losses leave it out, since
            it is a per-query constant there).
        parts: how many concurrent compiled calls the queries are split into (default: one per CPU core
            when no GPU is visible, else 1).

    Returns:
        ``logsumexp``: ``[B]``; ``softplus``: ``[2, B]`` (Σ softplus ℓ, Σ ℓ).
    """
    if spec.reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {spec.reduction!r}")
    if spec.geometry != inputs.geometry:
        raise ValueError(f"kernel geometry {spec.geometry!r} does not match the model's {inputs.geometry!r}")
    x, v, bias, row_stats, col_stats = inputs.point, inputs.vectors, inputs.tail_bias, inputs.row_stats, \
        inputs.col_stats
    num_entities = v.shape[0]
    if num_entities is None:
        raise ValueError("all_entity_reduce needs a statically known entity count")
    padded = -(-num_entities // spec.chunk) * spec.chunk
    pad = padded - num_entities
    if pad:
        v = tf.pad(v, [[0, pad], [0, 0]])
        bias = tf.pad(bias, [[0, pad]], constant_values=MASK_LOGIT)
        col_stats = [tf.pad(s, [[0, pad]], constant_values=1.0) for s in col_stats]
    masked = excluded is not None and spec.reduction == "logsumexp"
    if masked:
        ex_rows, ex_ids = (tf.cast(t, tf.int32) for t in excluded)
        size = tf.shape(ex_ids)[0]
        extra = _bucket(size) - size
        ex_rows = tf.pad(ex_rows, [[0, extra]])
        ex_ids = tf.pad(ex_ids, [[0, extra]], constant_values=-1)  # never inside a chunk
    else:
        ex_rows = ex_ids = tf.zeros([1], tf.int32)
    per_relation = inputs.relation_index is not None and inputs.relation_curvature is not None
    forward, backward = _compiled(spec, (len(row_stats), len(col_stats)), masked, num_entities, with_head_bias,
                                  per_relation)
    head_bias = inputs.head_bias if with_head_bias else tf.zeros([1], x.dtype)
    if per_relation:
        rel_index = tf.cast(inputs.relation_index, tf.int32)
        rel_c = tf.cast(inputs.relation_curvature, x.dtype)
    else:
        rel_index, rel_c = tf.zeros([1], tf.int32), tf.zeros([1, 1], x.dtype)

    # do_not_convert: AutoGraph would rewrite the custom-gradient closure and break it.
    @tf.autograph.experimental.do_not_convert
    @tf.custom_gradient
    def reduce(ex_rows, ex_ids, rel_index, rel_c, *tensors):
        # stop_gradient: no tape may record inside the compiled loops (their TensorList accumulators
        # cannot cross the XLA boundary, and the gradient is ours anyway). rel_c gets no gradient of its
        # own: it is the per-row curvature c of row_stats, whose gradient carries the whole dependence.
        x, v, bias, row_bias, *stats = (tf.stop_gradient(t) for t in tensors)
        rel_c = tf.stop_gradient(rel_c)
        value = forward(x, v, bias, row_bias, ex_rows, ex_ids, rel_index, rel_c, *stats)

        def grad(upstream):
            grads = backward(tf.stop_gradient(upstream), value, x, tf.transpose(x), v, bias, row_bias, ex_rows,
                             ex_ids, rel_index, rel_c, *stats)
            return [None, None, None, None, *grads]

        return value, grad

    parts = _row_parts(x) if parts is None else max(1, int(parts))
    if parts == 1:
        out = reduce(ex_rows, ex_ids, rel_index, rel_c, x, v, bias, head_bias, *row_stats, *col_stats)
    else:
        # One compiled call runs on one core (XLA:CPU does not split its while loop across threads), so
        # the queries are split into `parts` independent calls that TensorFlow's executor runs concurrently.
        batch = tf.shape(x)[0]
        step = batch // parts
        bounds = [i * step for i in range(parts)] + [batch]
        outs = []
        for i in range(parts):
            lo, hi = bounds[i], bounds[i + 1]
            inside = (ex_rows >= lo) & (ex_rows < hi)
            part_rows = tf.where(inside, ex_rows - lo, 0)
            part_ids = tf.where(inside, ex_ids, -1)
            part_head_bias = head_bias[lo:hi] if with_head_bias else head_bias
            part_rel_index = rel_index[lo:hi] if per_relation else rel_index
            outs.append(reduce(part_rows, part_ids, part_rel_index, rel_c, x[lo:hi], v, bias, part_head_bias,
                               *[s[lo:hi] for s in row_stats], *col_stats))
        out = tf.concat(outs, axis=-1)
    return out[0] if spec.reduction == "logsumexp" else out
