"""The shared base of every KGE model: scoring against one, some, or all entities.

Score of tail e for query q = (h, r):  s(q, e) = −ψ(δ(Q, e)) + b_h + b_e, with Q the query point a model
builds from (h, r), δ the squared distance of its geometry and ψ the hardness-aware activation
(identity by default; see :mod:`hale_tf.activations`).

Relation ids cover the reciprocal relations too: a model built with ``num_relations = 2R`` answers head
queries (?, r, t) as tail queries (t, r + R, ?).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import keras
import tensorflow as tf

from hale_tf import activations
from hale_tf.geometry import euclidean, expmap0, poincare
from hale_tf.layers import EntityEmbedding, RelationTable
from hale_tf.models.all_entity import AllEntityInputs, AllEntityKernel, all_entity_reduce, chunk_for_batch

__all__ = ["KGEModel", "Query"]

DEFAULT_SCORE_MEMORY_BUDGET = 512 * 2**20  # bytes of B × chunk temporaries in score_all
# The all-entity kernel shares the ball's per-(curvature, entity) terms across the queries of one relation
# id when the batch has at least this many queries per relation id (the table costs G × C, not B × C).
PER_RELATION_MIN_QUERIES = 4


class Query(NamedTuple):
    """A batch of queries in model space: points ``[B, d]``, curvature ``[B, 1]`` (None if flat), and
    the relation ids ``[B]`` (hyperbolic models use them to share per-relation work across queries)."""

    point: tf.Tensor
    curvature: tf.Tensor | None
    relation: tf.Tensor | None = None


class KGEModel(keras.Model):
    """Base class: subclasses set ``geometry`` and implement :meth:`build_relations` and :meth:`query`.

    Args:
        num_entities: |E|.
        num_relations: number of relation ids the model embeds (2|R| with reciprocals).
        dim: embedding dimension d (even: the Givens operators act on pairs).
        init_scale: standard deviation of the N(0, 1)·scale initialisation of entity/relation vectors.
        use_bias: learn head and tail biases b_h, b_t (KGEmb's ``bias="learn"``).
        activation, activation_params: ψ by name (``identity``, ``power``, ``exp``) and its parameters.
        entity_chunk_size: fixed entity chunk for :meth:`score_all`; when None the chunk is sized so
            the B × chunk temporaries stay within ``score_memory_budget`` bytes.
    """

    geometry = "euclidean"
    # How many B × chunk float temporaries score_all holds at once (sizes the entity chunks).
    _score_temporaries = 4

    def __init__(
        self,
        num_entities: int,
        num_relations: int,
        dim: int = 32,
        *,
        init_scale: float = 1e-3,
        use_bias: bool = True,
        activation: str = "identity",
        activation_params: dict[str, float] | None = None,
        entity_chunk_size: int | None = None,
        score_memory_budget: int = DEFAULT_SCORE_MEMORY_BUDGET,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_entities < 1 or num_relations < 1:
            raise ValueError(f"need num_entities >= 1 and num_relations >= 1, got {num_entities}, {num_relations}")
        if dim < 2 or dim % 2:
            raise ValueError(f"dim must be even and >= 2 (Givens operators act on pairs), got {dim}")
        self.num_entities = int(num_entities)
        self.num_relations = int(num_relations)
        self.dim = int(dim)
        self.init_scale = float(init_scale)
        self.use_bias = bool(use_bias)
        self.activation_name = activation
        self.activation_params = dict(activation_params or {})
        self.activation = activations.get(activation, **self.activation_params)
        self.entity_chunk_size = entity_chunk_size
        self.score_memory_budget = int(score_memory_budget)
        self.entities = EntityEmbedding(
            num_entities, dim, init_scale, use_bias, name="entities", dtype=self.dtype_policy
        )
        self.build_relations()
        self.build(None)

    def relation_table(self, name: str, width: int | None = None, initializer: str = "normal") -> RelationTable:
        """A per-relation table ``[num_relations, width or dim]`` in the model's dtype."""
        return RelationTable(
            self.num_relations, width or self.dim, initializer, self.init_scale, name=name, dtype=self.dtype_policy
        )

    # -- to implement -------------------------------------------------------------------------------
    def build_relations(self) -> None:
        """Create the relation layers (called once from ``__init__``)."""
        raise NotImplementedError

    def query(self, h: tf.Tensor, r: tf.Tensor) -> Query:
        """Map head ids ``[B]`` and relation ids ``[B]`` to query points."""
        raise NotImplementedError

    # -- Keras ----------------------------------------------------------------------------------------
    def build(self, input_shape: Any = None) -> None:
        for layer in self._flatten_layers(include_self=False, recursive=False):
            if not layer.built:
                layer.build()
        self.built = True

    def call(self, inputs: Any) -> tf.Tensor:
        """Keras entry point: ``inputs = (h, r)`` → scores against all entities ``[B, N]``."""
        h, r = inputs
        return self.score_all(h, r)

    def get_config(self) -> dict[str, Any]:
        return {
            "num_entities": self.num_entities,
            "num_relations": self.num_relations,
            "dim": self.dim,
            "init_scale": self.init_scale,
            "use_bias": self.use_bias,
            "activation": self.activation_name,
            "activation_params": dict(self.activation_params),
            "entity_chunk_size": self.entity_chunk_size,
            "score_memory_budget": self.score_memory_budget,
            "name": self.name,
        }

    # -- distances (one place per geometry) -------------------------------------------------------------
    def entity_points(self, vectors: tf.Tensor, curvature: tf.Tensor | None) -> tf.Tensor:
        """Entity vectors as points of the model's space (exp0 into the ball for hyperbolic models)."""
        if self.geometry == "poincare":
            return expmap0(vectors, curvature)
        return vectors

    def squared_distance_pairs(self, query: Query, vectors: tf.Tensor) -> tf.Tensor:
        """δ between each query and its own entities: ``[B, d]`` → ``[B]``, ``[B, K, d]`` → ``[B, K]``."""
        point, c = query.point, query.curvature
        if vectors.shape.rank == 3 and self.geometry == "poincare":
            # Negative sampling's candidate block: the closed form passes over [B, K, d] only for the dot
            # products and norms (the Möbius form below is ~20 element-wise passes forward, ~60 backward).
            return poincare.squared_distance_to_candidates(point, vectors, c)
        if vectors.shape.rank == 3:
            point = point[:, tf.newaxis, :]
            c = None if c is None else c[:, tf.newaxis, :]
        if self.geometry == "poincare":
            delta = poincare.squared_distance(point, self.entity_points(vectors, c), c)
        else:
            delta = euclidean.squared_distance(point, vectors)
        return delta[..., 0]

    def squared_distance_to_entities(self, query: Query, vectors: tf.Tensor) -> tf.Tensor:
        """δ from every query to every entity vector of a shared set ``[M, d]`` → ``[B, M]`` (one matmul)."""
        if self.geometry == "poincare":
            return poincare.squared_distance_to_all(query.point, vectors, query.curvature)
        return euclidean.squared_distance_to_all(query.point, vectors)

    # -- scoring -----------------------------------------------------------------------------------------
    def score_from_distance(self, delta: tf.Tensor, head_bias: tf.Tensor, tail_bias: tf.Tensor) -> tf.Tensor:
        """s = −ψ(δ) + b_h + b_t (biases broadcast against δ)."""
        return -self.activation(delta) + head_bias + tail_bias

    def score(self, h: tf.Tensor, r: tf.Tensor, t: tf.Tensor, *, with_head_bias: bool = True) -> tf.Tensor:
        """Scores of the triples (h, r, t), ``[B]``; ``with_head_bias=False`` leaves b_h out (the
        softmax-type losses, where it is a per-query constant, so that it gets no gradient at all)."""
        h, r, t = (tf.cast(x, tf.int32) for x in (h, r, t))
        delta = self.squared_distance_pairs(self.query(h, r), self.entities(t))
        head_bias = self.entities.head_biases(h) if with_head_bias else 0.0
        return self.score_from_distance(delta, head_bias, self.entities.tail_biases(t))

    def score_candidates(self, h: tf.Tensor, r: tf.Tensor, candidates: tf.Tensor) -> tf.Tensor:
        """Scores of per-query candidate tails ``[B, K]`` → ``[B, K]``."""
        h, r, candidates = (tf.cast(x, tf.int32) for x in (h, r, candidates))
        delta = self.squared_distance_pairs(self.query(h, r), self.entities(candidates))
        return self.score_from_distance(
            delta, self.entities.head_biases(h)[:, tf.newaxis], self.entities.tail_biases(candidates)
        )

    def score_entities(self, h: tf.Tensor, r: tf.Tensor, entity_ids: tf.Tensor) -> tf.Tensor:
        """Scores of every query against one shared set of entities ``[M]`` → ``[B, M]`` (a matmul).

        This is the form in-batch and sampled negatives use: no ``[B, M, d]`` tensor is formed.
        """
        return self._score_entities(h, r, entity_ids)

    def _score_entities(self, h: tf.Tensor, r: tf.Tensor, entity_ids: tf.Tensor, **distance_options: Any) -> tf.Tensor:
        h, r, entity_ids = (tf.cast(x, tf.int32) for x in (h, r, entity_ids))
        delta = self.squared_distance_to_entities(self.query(h, r), self.entities(entity_ids), **distance_options)
        return self.score_from_distance(
            delta, self.entities.head_biases(h)[:, tf.newaxis],
            self.entities.tail_biases(entity_ids)[tf.newaxis, :],
        )

    def entity_chunk_for(self, batch_size: int | None) -> int:
        """Entity chunk for ``score_all``: fixed, or sized from the memory budget and the batch size."""
        if self.entity_chunk_size:
            return int(self.entity_chunk_size)
        if batch_size is None:  # unknown at trace time: score in one piece
            return self.num_entities
        itemsize = tf.as_dtype(self.entities.embeddings.dtype).size
        per_entity = max(1, batch_size) * itemsize * self._score_temporaries
        return min(self.num_entities, max(1024, self.score_memory_budget // per_entity))

    def all_entity_inputs(self, h: tf.Tensor, r: tf.Tensor, entity_ids: tf.Tensor | None = None) -> AllEntityInputs:
        """Query points, entity table, the geometry's statistics and biases, for the all-entity kernel.

        ``entity_ids`` ``[M]`` (static M) restricts the table to a shared subset (sampled negatives); the
        gradient then reaches the table through the gather.
        """
        h, r = tf.cast(h, tf.int32), tf.cast(r, tf.int32)
        query = self.query(h, r)
        x = query.point
        if entity_ids is None:
            vectors = tf.convert_to_tensor(self.entities.embeddings)
            tail_bias = self.entities.tail_biases()
        else:
            entity_ids = tf.cast(entity_ids, tf.int32)
            vectors = self.entities(entity_ids)
            tail_bias = self.entities.tail_biases(entity_ids)
        x2 = tf.reduce_sum(x * x, axis=-1, keepdims=True)
        relation_index = relation_curvature = None
        if self.geometry == "poincare":
            row_stats, col_stats = [x2, query.curvature], [poincare.safe_norm(vectors)[:, 0]]
            batch = x.shape[0]
            if (query.relation is not None and batch is not None
                    and PER_RELATION_MIN_QUERIES * self.num_relations <= batch):
                # Few relation ids for many queries: the kernel evaluates the (curvature, entity) terms once
                # per relation id and gathers them (≈ 1.4× faster for WN18RR's 22 ids and 500 queries).
                relation_index, relation_curvature = query.relation, self.curvature.all_curvatures()[:, tf.newaxis]
        else:
            row_stats, col_stats = [x2], [tf.reduce_sum(vectors * vectors, axis=-1)]
        return AllEntityInputs(self.geometry, x, row_stats, vectors, col_stats, tail_bias,
                               self.entities.head_biases(h), relation_index, relation_curvature)

    def reduce_all_entities(
        self,
        h: tf.Tensor,
        r: tf.Tensor,
        *,
        temperature: float = 1.0,
        reduction: str = "logsumexp",
        excluded: tuple[tf.Tensor, tf.Tensor] | None = None,
        with_head_bias: bool = False,
        chunk: int | None = None,
        entity_ids: tf.Tensor | None = None,
        activation: Any = None,
    ) -> tf.Tensor:
        """Fused reduction of every query's logits ℓ(q, e) = (s(q, e) − b_h)/τ over all N entities.

        ``logsumexp``: log Σ_{e ∉ excluded} exp ℓ, ``[B]``; ``softplus``: (Σ_e softplus ℓ, Σ_e ℓ), ``[2, B]``
        (with ``with_head_bias`` the logits keep b_h). Differentiable with a hand-written gradient; no
        ``[B, N]`` tensor is formed (:mod:`hale_tf.models.all_entity`). ``excluded`` = (rows, columns).
        ``chunk``: entities per loop iteration (default: sized to the batch, :func:`chunk_for_batch`).
        ``entity_ids``: reduce over this shared subset ``[M]`` (static M) instead of all entities; the
        excluded columns then index the subset. ``activation``: ψ for these logits instead of the model's.
        """
        chunk = chunk_for_batch(h.shape[0]) if chunk is None else int(chunk)
        if entity_ids is not None and entity_ids.shape[0] is not None:
            # No point in a chunk wider than the (padded) subset.
            chunk = min(chunk, max(8, 1 << (int(entity_ids.shape[0]) - 1).bit_length()))
        psi = self.activation if activation is None else activation
        spec = AllEntityKernel(self.geometry, psi, 1.0 / float(temperature), reduction, chunk)
        return all_entity_reduce(spec, self.all_entity_inputs(h, r, entity_ids), excluded=excluded,
                                 with_head_bias=with_head_bias)

    def score_all(self, h: tf.Tensor, r: tf.Tensor, entity_chunk_size: int | None = None) -> tf.Tensor:
        """Scores of every query against all N entities, ``[B, N]``, chunked over entities.

        Each chunk is one ``[B, d] × [d, chunk]`` matmul plus element-wise work (no ``[B, N, d]``).
        """
        h, r = tf.cast(h, tf.int32), tf.cast(r, tf.int32)
        query = self.query(h, r)
        head_bias = self.entities.head_biases(h)[:, tf.newaxis]
        table = tf.convert_to_tensor(self.entities.embeddings)
        tail_bias = self.entities.tail_biases()[tf.newaxis, :]
        chunk = entity_chunk_size or self.entity_chunk_for(h.shape[0])
        if chunk >= self.num_entities:
            delta = self.squared_distance_to_entities(query, table)
            return self.score_from_distance(delta, head_bias, tail_bias)
        parts = []
        for start in range(0, self.num_entities, chunk):
            stop = min(start + chunk, self.num_entities)
            delta = self.squared_distance_to_entities(query, table[start:stop])
            parts.append(self.score_from_distance(delta, head_bias, tail_bias[:, start:stop]))
        return tf.concat(parts, axis=1)
