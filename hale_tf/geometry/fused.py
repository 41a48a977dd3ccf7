"""Run an element-wise-heavy block and its gradient as XLA clusters inside a graph-mode train step.

The training step cannot be XLA-compiled as a whole (the number of answers per batch, hence the candidate
count, changes every step, and a fully compiled step measured 2× *slower* on CPU). Its hot spot is the
B × M ball-distance block: ~20 element-wise ops forward and ~60 backward, each a separate pass over
memory in graph mode. :func:`xla_fused` compiles the forward and a recomputing backward into one XLA
cluster each (measured on the 2-core CPU, B = 500, M = 840, d = 32: 40 ms → 15 ms for forward + backward).

XLA compiles once per input shape, so a dynamic dimension is padded up to a bucket first
(:func:`pad_rows_to_bucket`: at most 8 buckets per octave, ≤ 12.5 % padding).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

__all__ = ["bucket_size", "pad_rows_to_bucket", "xla_fused"]

BUCKETS_PER_OCTAVE_LOG2 = 3  # 2^3 = 8 buckets per power of two
MIN_BUCKET = 64


def xla_fused(fn: Callable[..., tf.Tensor], num_differentiable: int) -> Callable[..., tf.Tensor]:
    """``fn(*args) -> Tensor`` with its forward and its gradient each compiled as one XLA cluster.

    The gradient is taken w.r.t. the first ``num_differentiable`` arguments (the rest, e.g. integer ids,
    get None). The backward recomputes the forward inside its cluster instead of keeping ~20 B × M
    intermediates alive between the passes; recomputation is cheaper than the memory traffic it saves.
    """
    forward = tf.function(fn, jit_compile=True, autograph=False, reduce_retracing=True)

    def backward_impl(upstream: tf.Tensor, *args: tf.Tensor) -> list[tf.Tensor]:
        differentiable = list(args[:num_differentiable])
        with tf.GradientTape() as tape:
            tape.watch(differentiable)
            value = fn(*differentiable, *args[num_differentiable:])
        return tape.gradient(value, differentiable, output_gradients=upstream)

    backward = tf.function(backward_impl, jit_compile=True, autograph=False, reduce_retracing=True)

    # do_not_convert: AutoGraph would rewrite the custom-gradient closure and break it.
    @tf.autograph.experimental.do_not_convert
    @tf.custom_gradient
    def fused(*args: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], list[tf.Tensor | None]]]:
        value = forward(*args)

        def grad(upstream: tf.Tensor) -> list[tf.Tensor | None]:
            grads = backward(upstream, *args)
            return [*grads, *([None] * (len(args) - num_differentiable))]

        return value, grad

    return fused


def bucket_size(size: tf.Tensor) -> tf.Tensor:
    """The smallest bucket ≥ ``size``: a multiple of 2^(⌊log2 size⌋ − 3) (and of 64), int32 scalar."""
    size = tf.maximum(tf.cast(size, tf.int32), 1)
    octave = tf.cast(tf.math.floor(tf.math.log(tf.cast(size, tf.float32)) / tf.math.log(2.0)), tf.int32)
    step = tf.maximum(tf.bitwise.left_shift(1, tf.maximum(octave - BUCKETS_PER_OCTAVE_LOG2, 0)), MIN_BUCKET)
    return (size + step - 1) // step * step


def pad_rows_to_bucket(rows: tf.Tensor) -> tf.Tensor:
    """``rows [M, d]`` zero-padded to ``[bucket_size(M), d]`` when M is unknown at trace time.

    A statically known M compiles once anyway and is returned as is.
    """
    if rows.shape[0] is not None:
        return rows
    size = tf.shape(rows)[0]
    return tf.pad(rows, [[0, bucket_size(size) - size], [0, 0]])
