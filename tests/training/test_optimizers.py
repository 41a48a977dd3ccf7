"""Optimisers: FusedAdam(W) equal Keras' Adam(W); LazyAdam is Keras' Adam on touched rows, untouched rows
frozen, and its sparse and dense gradients agree."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from hale_tf.training import FusedAdam, FusedAdamW, LazyAdam, optimizers


def _steps(optimizer: keras.optimizers.Optimizer, start: np.ndarray, grads: list,
           compiled: bool = False) -> tuple[np.ndarray, ...]:
    variable = keras.Variable(start.copy())
    optimizer.build([variable])

    def apply(gradient: Any) -> None:
        optimizer.apply_gradients([(gradient, variable)])

    for g in grads:
        (tf.function(apply) if compiled else apply)(g)
    return np.array(variable), np.array(optimizer._momentums[0]), np.array(optimizer._velocities[0])


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize(("fused", "keras_class", "params"), [
    (FusedAdam, keras.optimizers.Adam, {}),
    (FusedAdam, keras.optimizers.Adam, {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3}),
    (FusedAdamW, keras.optimizers.AdamW, {"weight_decay": 0.05}),
])
def test_fused_adam_equals_keras(fused: type, keras_class: type, params: dict, compiled: bool) -> None:
    rng = np.random.default_rng(2)
    start = rng.normal(size=(40, 8)).astype(np.float32)
    grads = [tf.constant(rng.normal(size=(40, 8)), tf.float32) for _ in range(5)]
    ours = _steps(fused(0.01, **params), start, grads, compiled)
    reference = _steps(keras_class(0.01, **params), start, grads, compiled)
    assert not np.allclose(ours[0], start, atol=1e-3)  # it moved
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # float32 rounding of one fused kernel


def test_fused_adam_takes_keras_path_for_sparse_gradients_and_amsgrad() -> None:
    start = np.arange(12, dtype=np.float32).reshape(4, 3)
    sparse = [tf.IndexedSlices(tf.constant([[1.0, 2.0, 3.0]]), tf.constant([2]), tf.constant([4, 3]))]
    for params in ({}, {"amsgrad": True}):
        ours = _steps(FusedAdam(0.1, **params), start, sparse)
        reference = _steps(keras.optimizers.Adam(0.1, **params), start, sparse)
        for a, b in zip(ours, reference, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6)


def test_fused_adam_checkpoints_are_keras_adam_checkpoints(tmp_path: Any) -> None:
    rng = np.random.default_rng(3)
    start = rng.normal(size=(6, 4)).astype(np.float32)
    grads = [tf.constant(rng.normal(size=(6, 4)), tf.float32) for _ in range(3)]
    variable, optimizer = keras.Variable(start.copy()), keras.optimizers.Adam(0.01)
    optimizer.build([variable])
    for g in grads[:2]:
        optimizer.apply_gradients([(g, variable)])
    path = tf.train.Checkpoint(variable=variable, optimizer=optimizer).write(str(tmp_path / "ckpt"))
    restored, fused = keras.Variable(np.zeros_like(start)), FusedAdam(0.01)
    fused.build([restored])
    tf.train.Checkpoint(variable=restored, optimizer=fused).read(path).assert_consumed()
    optimizer.apply_gradients([(grads[2], variable)])
    fused.apply_gradients([(grads[2], restored)])
    np.testing.assert_allclose(np.array(restored), np.array(variable), rtol=1e-5, atol=1e-6)


def test_all_rows_touched_equals_keras_adam() -> None:
    rng = np.random.default_rng(0)
    start = rng.normal(size=(5, 3)).astype(np.float32)
    grads = [tf.constant(rng.normal(size=(5, 3)), tf.float32) for _ in range(4)]
    lazy = _steps(LazyAdam(0.01), start, grads)
    dense = _steps(keras.optimizers.Adam(0.01), start, grads)
    for a, b in zip(lazy, dense, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # float32 rounding of a reordered formula


def test_sparse_duplicates_are_summed_and_untouched_rows_keep_value_and_moments() -> None:
    rng = np.random.default_rng(1)
    start = rng.normal(size=(6, 2)).astype(np.float32)
    # Step 1 touches rows 0, 2 (row 2 twice); step 2 touches row 4 only.
    shape = tf.constant([6, 2])
    sparse = [
        tf.IndexedSlices(tf.constant([[1.0, 2.0], [0.5, -1.0], [0.25, 0.25]]), tf.constant([2, 0, 2]), shape),
        tf.IndexedSlices(tf.constant([[3.0, -3.0]]), tf.constant([4]), shape),
    ]
    dense = [tf.convert_to_tensor(g) for g in sparse]  # duplicates summed by the conversion
    value_s, m_s, v_s = _steps(LazyAdam(0.1), start, sparse)
    value_d, m_d, v_d = _steps(LazyAdam(0.1), start, dense)
    np.testing.assert_allclose(value_s, value_d, rtol=1e-6)
    np.testing.assert_allclose(m_s, m_d, rtol=1e-6)
    np.testing.assert_allclose(v_s, v_d, rtol=1e-6)
    untouched = [1, 3, 5]
    np.testing.assert_array_equal(value_s[untouched], start[untouched])
    assert not m_s[untouched].any() and not v_s[untouched].any()
    # Row 0 was touched in step 1 only: its moments did not decay in step 2 (plain Adam would decay them).
    np.testing.assert_allclose(m_s[0], 0.1 * np.array([0.5, -1.0]), rtol=1e-6)
    # Summing the duplicates first: row 2's first step is Adam's first step on g = (1.25, 2.25): −lr·sign(g).
    np.testing.assert_allclose(value_s[2], start[2] - 0.1 * np.sign([1.25, 2.25]), rtol=1e-4)


def test_one_dimensional_tables_are_lazy_per_element() -> None:
    start = np.array([1.0, 2.0, 3.0], np.float32)
    value, m, _ = _steps(LazyAdam(0.1), start, [tf.constant([0.0, 1.0, 0.0])])
    np.testing.assert_allclose(value, [1.0, 1.9, 3.0], rtol=1e-5)
    assert m[0] == 0 and m[2] == 0


def test_resolver_and_serialisation() -> None:
    optimizer = optimizers.get("lazy_adam", 0.02, beta_1=0.8)
    assert isinstance(optimizer, LazyAdam) and optimizer.beta_1 == 0.8
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(clone, LazyAdam)
    assert isinstance(optimizers.get("adagrad", 0.1), keras.optimizers.Adagrad)
    assert type(optimizers.get("adam", 0.1)) is FusedAdam and type(optimizers.get("Adam", 0.1)) is FusedAdam
    adamw = optimizers.get("adamw", 0.1, weight_decay=0.05)
    assert type(adamw) is FusedAdamW and adamw.weight_decay == 0.05
    assert type(keras.optimizers.deserialize(keras.optimizers.serialize(adamw))) is FusedAdamW
    with pytest.raises(ValueError, match="unknown optimizer 'nope'"):
        optimizers.get("nope", 0.1)
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(amsgrad=True)
