"""SavedModel export for serving: vocabularies inside, string-in/string-out signatures.

The export is a plain :class:`tf.Module` (not a Keras model) that tracks the model's underlying
``tf.Variable``\\ s, the vocabulary lookup tables and the known-fact index. Its four signatures are traced
from the model's own scoring code, so the SavedModel holds only TensorFlow ops and variables and loads
with ``tf.saved_model.load`` in a process that has TensorFlow alone (no ``hale_tf``, no Keras classes).

Signatures (all batched over the leading dimension ``B``; ``serving_default`` is ``topk_tails``):

* ``topk_tails(head: string[B], relation: string[B], k: int32[], exclude_known: bool[])``
* ``topk_heads(tail: string[B], relation: string[B], k: int32[], exclude_known: bool[])``
   → ``entities: string[B, k']``, ``scores: float[B, k']``, ``ids: int64[B, k']``, ``found: bool[B]``
   with ``k' = clamp(k, 0, N)``, best first. Rows whose head/tail or relation is not in the vocabulary
   have ``found = False``, scores NaN, names ``""`` and ids −1. With ``exclude_known`` the training facts
   are removed (filtered setting); slots left without a candidate have score −inf, name ``""``, id −1.
* ``score(head, relation, tail: string[B])`` → ``score: float[B]`` (NaN where not found), ``found``.
* ``embed(entity: string[B])`` → ``embedding: float[B, d]`` (the stored vectors: tangent vectors for
  hyperbolic models; NaN rows where not found), ``found``.

Head prediction uses the reciprocal relation: (?, r, t) is answered as the tail query (t, r + R, ?), so the
model must embed ``2R`` relation ids. Known facts are stored sparsely as sorted int64 keys
``(h·2R + r)·N + t`` for both directions and looked up with two binary searches per query.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

import hale_tf
from hale_tf.atomic import replace_directory
from hale_tf.reciprocal import inverse, relation_ids

__all__ = [
    "EXPORT_FORMAT_VERSION",
    "METADATA_FILENAME",
    "SIGNATURE_NAMES",
    "export_saved_model",
    "known_triple_keys",
    "read_vocabulary",
]

EXPORT_FORMAT_VERSION = 1
METADATA_FILENAME = "hale_tf_export.json"
SIGNATURE_NAMES = ("topk_tails", "topk_heads", "score", "embed")
ENTITY_VOCAB_FILENAME = "entities.tsv"
RELATION_VOCAB_FILENAME = "relations.tsv"
# Queries scored per step inside the top-k signatures: bounds the [chunk, N] score temporaries
# (10 of them for hyperbolic models: ~0.6 GB at N = 123k) whatever batch a client sends.
DEFAULT_QUERY_CHUNK_SIZE = 128

VocabularyLike = Sequence[str] | str | os.PathLike


def read_vocabulary(path: str | os.PathLike) -> list[str]:
    """Read a vocabulary file as written by the Transform component: line i is the name of id i."""
    with open(path, encoding="utf-8", newline="\n") as handle:
        text = handle.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":  # the final newline ends the last line; it does not start a new one
        lines.pop()
    return lines


def _as_names(names: VocabularyLike, what: str) -> list[str]:
    names = read_vocabulary(names) if isinstance(names, str | os.PathLike) else [str(n) for n in names]
    seen: set[str] = set()
    for i, name in enumerate(names):
        # "" is the not-found marker of the outputs, and a newline would break the vocabulary asset file.
        if not name or "\n" in name or "\r" in name:
            raise ValueError(f"{what} name {i} is empty or contains a line break: {name!r}")
        if name in seen:
            raise ValueError(f"duplicate {what} name {name!r} (id {i}); vocabulary names must be unique")
        seen.add(name)
    return names


def known_triple_keys(triples: np.ndarray, num_entities: int, num_base_relations: int) -> np.ndarray:
    """Sorted unique int64 keys ``(h·2R + r)·N + t`` of the facts in both directions.

    Args:
        triples: int array ``[M, 3]`` of (head, base relation, tail) ids, relations in ``[0, R)``.
        num_entities: N.
        num_base_relations: R (the reciprocal of r is r + R).

    Returns:
        int64 array of at most ``2M`` keys, sorted ascending: the index ``exclude_known`` searches.
    """
    n, r2 = int(num_entities), relation_ids(num_base_relations)
    if r2 * n * n >= 2**63:
        raise ValueError(f"keys (h·2R + r)·N + t overflow int64 for N={n}, 2R={r2}")
    triples = np.asarray(triples)
    if triples.size == 0:
        return np.zeros([0], np.int64)
    if triples.ndim != 2 or triples.shape[1] != 3 or not np.issubdtype(triples.dtype, np.integer):
        raise ValueError(
            f"known_triples must be an integer array [M, 3], got {triples.dtype} {triples.shape}"
        )
    h, r, t = (triples[:, i].astype(np.int64) for i in range(3))
    if h.min() < 0 or t.min() < 0 or max(h.max(), t.max()) >= n:
        raise ValueError(f"known_triples has entity ids outside [0, {n})")
    if r.min() < 0 or r.max() >= num_base_relations:
        raise ValueError(f"known_triples has relation ids outside [0, {num_base_relations}) (base relations only)")
    forward = (h * r2 + r) * n + t
    backward = (t * r2 + inverse(r, num_base_relations)) * n + h
    return np.unique(np.concatenate([forward, backward]))


class _ServingModule(tf.Module):
    """What the SavedModel holds: variables, lookup tables, vocab assets and the signature functions.

    Public attributes after ``tf.saved_model.load``: ``entity_names`` / ``relation_names`` (string
    variables, id → name), ``known_keys`` (int64 variable), ``metadata_file`` (an Asset).
    """

    def __init__(
        self,
        model: Any,
        entity_names: list[str],
        relation_names: list[str],
        keys: np.ndarray,
        asset_dir: Path,
        query_chunk_size: int,
        jit_compile: bool,
    ) -> None:
        super().__init__(name="hale_tf_serving")
        self._model = _Untracked(model)  # the Keras object must not enter the SavedModel's object graph
        self._num_entities = len(entity_names)
        self._num_base_relations = len(relation_names)
        self._query_chunk = int(query_chunk_size)
        self._dtype = tf.as_dtype(model.entities.embeddings.dtype)
        # The tf.Variables behind the Keras variables: tracking them here is what puts the weights in the
        # SavedModel; the traced functions read them directly (no Keras class is needed to restore them).
        self.model_variables = [w.value for w in model.weights]
        self.entity_vocab = tf.saved_model.Asset(str(asset_dir / ENTITY_VOCAB_FILENAME))
        self.relation_vocab = tf.saved_model.Asset(str(asset_dir / RELATION_VOCAB_FILENAME))
        self.metadata_file = tf.saved_model.Asset(str(asset_dir / METADATA_FILENAME))
        self.entity_table = _vocab_table(self.entity_vocab)
        self.relation_table = _vocab_table(self.relation_vocab)
        self.entity_names = tf.Variable(entity_names, dtype=tf.string, trainable=False, name="entity_names")
        self.relation_names = tf.Variable(
            relation_names, dtype=tf.string, trainable=False, name="relation_names"
        )
        self.known_keys = tf.Variable(keys.astype(np.int64), trainable=False, name="known_keys")
        score_all = self._score_all
        if jit_compile:
            score_all = self._bucketed(
                tf.function(score_all, jit_compile=True, autograph=False, reduce_retracing=True)
            )
        self._score_fn = _Untracked(score_all)
        # One traced function for score → mask → top_k, shared by both top-k signatures and both batch
        # paths: tracing the model's Keras code is the slow part of an export, so it happens once here.
        self._topk_fn = _Untracked(
            tf.function(
                self._topk_chunk,
                autograph=False,
                input_signature=[
                    tf.TensorSpec([None], tf.int32),
                    tf.TensorSpec([None], tf.int32),
                    tf.TensorSpec([], tf.int32),
                    tf.TensorSpec([], tf.bool),
                ],
            )
        )

    # -- helpers (traced into the signatures) --------------------------------------------------------
    def _entity_ids(self, names: tf.Tensor) -> tf.Tensor:
        return tf.cast(self.entity_table.lookup(names), tf.int32)

    def _relation_ids(self, names: tf.Tensor) -> tf.Tensor:
        return tf.cast(self.relation_table.lookup(names), tf.int32)

    def _score_all(self, h: tf.Tensor, r: tf.Tensor) -> tf.Tensor:
        return self._model.obj.score_all(h, r, entity_chunk_size=self._num_entities)

    def _bucketed(self, compiled: Any) -> Any:
        """Call ``compiled`` on batches padded to a power of two (≤ the query chunk).

        XLA compiles once per input shape; bucketing bounds that to log2(chunk) + 1 compilations instead
        of one per distinct batch size a client sends.
        """
        sizes = sorted({min(2**i, self._query_chunk) for i in range(self._query_chunk.bit_length() + 1)})
        buckets = tf.constant(sizes, tf.int32)

        def call(h: tf.Tensor, r: tf.Tensor) -> tf.Tensor:
            batch = tf.shape(h)[0]
            size = tf.gather(buckets, tf.searchsorted(buckets, batch[tf.newaxis], side="left"))[0]
            padding = [[0, size - batch]]
            return compiled(tf.pad(h, padding), tf.pad(r, padding))[:batch]

        return call

    def _mask_known(self, scores: tf.Tensor, h: tf.Tensor, r: tf.Tensor) -> tf.Tensor:
        """Set the scores of known tails of each query (h, r) to −inf."""
        n = tf.constant(self._num_entities, tf.int64)
        base = (tf.cast(h, tf.int64) * relation_ids(self._num_base_relations) + tf.cast(r, tf.int64)) * n
        keys = tf.convert_to_tensor(self.known_keys)
        # All keys of query (h, r) lie in [base, base + N): two binary searches give the range.
        lo = tf.searchsorted(keys, base, side="left", out_type=tf.int64)
        hi = tf.searchsorted(keys, base + n, side="left", out_type=tf.int64)
        positions = tf.ragged.range(lo, hi)
        rows = positions.value_rowids()
        tails = tf.gather(keys, positions.flat_values) - tf.gather(base, rows)
        updates = tf.fill(tf.shape(rows), tf.constant(-np.inf, scores.dtype))
        return tf.tensor_scatter_nd_update(scores, tf.stack([rows, tails], axis=1), updates)

    def _topk_chunk(self, h: tf.Tensor, r: tf.Tensor, k: tf.Tensor, exclude: tf.Tensor) -> Any:
        scores = self._score_fn.obj(h, r)
        scores = tf.cond(exclude, lambda: self._mask_known(scores, h, r), lambda: scores)
        return tf.math.top_k(scores, k=k, sorted=True)

    def _topk_ids(self, h: tf.Tensor, r: tf.Tensor, k: tf.Tensor, exclude: tf.Tensor) -> tuple[Any, Any]:
        """top_k over all entities, in query chunks so memory stays bounded for large batches."""
        batch = tf.shape(h)[0]
        chunk = self._query_chunk

        def whole() -> tuple[tf.Tensor, tf.Tensor]:
            values, indices = self._topk_fn.obj(h, r, k, exclude)
            return values, indices

        def chunked() -> tuple[tf.Tensor, tf.Tensor]:
            steps = (batch + chunk - 1) // chunk
            values = tf.TensorArray(self._dtype, size=steps, infer_shape=False, element_shape=[None, None])
            indices = tf.TensorArray(tf.int32, size=steps, infer_shape=False, element_shape=[None, None])

            def body(i: tf.Tensor, values: Any, indices: Any) -> tuple[Any, Any, Any]:
                start = i * chunk
                stop = tf.minimum(start + chunk, batch)
                v, ix = self._topk_fn.obj(h[start:stop], r[start:stop], k, exclude)
                return i + 1, values.write(i, v), indices.write(i, ix)

            # parallel_iterations=1: overlapping iterations would multiply the [chunk, N] temporaries.
            _, values, indices = tf.while_loop(
                lambda i, *_: i < steps, body, (tf.constant(0), values, indices), parallel_iterations=1
            )
            return values.concat(), indices.concat()

        return tf.cond(batch <= chunk, whole, chunked)

    def _topk(self, h: tf.Tensor, r: tf.Tensor, found: tf.Tensor, k: tf.Tensor, exclude: tf.Tensor) -> dict:
        k = tf.clip_by_value(k, 0, self._num_entities)  # k > N is clamped to N (and k < 0 to 0)
        # Unknown rows are scored as id 0 (any valid id) and masked below: no gather of id −1 is attempted.
        values, indices = self._topk_ids(tf.where(found, h, 0), tf.where(found, r, 0), k, exclude)
        found_2d = found[:, tf.newaxis]
        has_candidate = found_2d & (values > tf.constant(-np.inf, values.dtype))
        names = tf.where(has_candidate, tf.gather(self.entity_names, indices), tf.constant(""))
        scores = tf.where(found_2d, values, tf.constant(np.nan, values.dtype))
        ids = tf.where(has_candidate, tf.cast(indices, tf.int64), tf.constant(-1, tf.int64))
        return {"entities": names, "scores": scores, "ids": ids, "found": found}

    # -- signatures ---------------------------------------------------------------------------------
    @tf.function(
        autograph=False,
        input_signature=[
            tf.TensorSpec([None], tf.string, name="head"),
            tf.TensorSpec([None], tf.string, name="relation"),
            tf.TensorSpec([], tf.int32, name="k"),
            tf.TensorSpec([], tf.bool, name="exclude_known"),
        ],
    )
    def topk_tails(
        self, head: tf.Tensor, relation: tf.Tensor, k: tf.Tensor, exclude_known: tf.Tensor
    ) -> dict:
        """Top-k tails of (head, relation, ?) per row."""
        head, relation = _same_length(head=head, relation=relation)
        h, r = self._entity_ids(head), self._relation_ids(relation)
        return self._topk(h, r, (h >= 0) & (r >= 0), k, exclude_known)

    @tf.function(
        autograph=False,
        input_signature=[
            tf.TensorSpec([None], tf.string, name="tail"),
            tf.TensorSpec([None], tf.string, name="relation"),
            tf.TensorSpec([], tf.int32, name="k"),
            tf.TensorSpec([], tf.bool, name="exclude_known"),
        ],
    )
    def topk_heads(
        self, tail: tf.Tensor, relation: tf.Tensor, k: tf.Tensor, exclude_known: tf.Tensor
    ) -> dict:
        """Top-k heads of (?, relation, tail) per row, as tail queries (tail, relation⁻¹, ?)."""
        tail, relation = _same_length(tail=tail, relation=relation)
        t, r = self._entity_ids(tail), self._relation_ids(relation)
        found = (t >= 0) & (r >= 0)
        return self._topk(t, inverse(r, self._num_base_relations), found, k, exclude_known)

    @tf.function(
        autograph=False,
        input_signature=[
            tf.TensorSpec([None], tf.string, name="head"),
            tf.TensorSpec([None], tf.string, name="relation"),
            tf.TensorSpec([None], tf.string, name="tail"),
        ],
    )
    def score(self, head: tf.Tensor, relation: tf.Tensor, tail: tf.Tensor) -> dict:
        """Score of each triple (head, relation, tail)."""
        head, relation, tail = _same_length(head=head, relation=relation, tail=tail)
        h, r, t = self._entity_ids(head), self._relation_ids(relation), self._entity_ids(tail)
        found = (h >= 0) & (r >= 0) & (t >= 0)
        values = self._model.obj.score(tf.where(found, h, 0), tf.where(found, r, 0), tf.where(found, t, 0))
        return {"score": tf.where(found, values, tf.constant(np.nan, values.dtype)), "found": found}

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name="entity")])
    def embed(self, entity: tf.Tensor) -> dict:
        """The stored embedding vector of each entity (tangent vectors for hyperbolic models)."""
        e = self._entity_ids(entity)
        found = e >= 0
        vectors = self._model.obj.entities(tf.where(found, e, 0))
        nan = tf.constant(np.nan, vectors.dtype)
        return {"embedding": tf.where(found[:, tf.newaxis], vectors, nan), "found": found}


def _same_length(**inputs: tf.Tensor) -> list[tf.Tensor]:
    """The inputs, after checking they have one row each per query (no silent broadcasting of length 1)."""
    names = list(inputs)
    first = tf.shape(inputs[names[0]])[0]
    checks = [
        tf.debugging.assert_equal(
            tf.shape(inputs[name])[0], first,
            message=f"inputs {names[0]!r} and {name!r} must have the same length (one row per query)",
        )
        for name in names[1:]
    ]
    with tf.control_dependencies(checks):
        return [tf.identity(inputs[name]) for name in names]


class _Untracked:
    """A holder that hides an object from tf.Module/Trackable attribute tracking."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj


def _vocab_table(asset: tf.saved_model.Asset) -> tf.lookup.StaticHashTable:
    """name → id (line number) from a vocabulary asset; −1 for names not in it."""
    initializer = tf.lookup.TextFileInitializer(
        asset,
        key_dtype=tf.string,
        key_index=tf.lookup.TextFileIndex.WHOLE_LINE,
        value_dtype=tf.int64,
        value_index=tf.lookup.TextFileIndex.LINE_NUMBER,
    )
    return tf.lookup.StaticHashTable(initializer, default_value=-1)


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.writelines(f"{line}\n" for line in lines)


def _model_name(model: Any) -> str:
    return getattr(model, "registry_name", type(model).__name__)


def export_saved_model(
    model: Any,
    entity_names: VocabularyLike,
    relation_names: VocabularyLike,
    export_dir: str | os.PathLike,
    *,
    known_triples: np.ndarray | None = None,
    overwrite: bool = False,
    query_chunk_size: int = DEFAULT_QUERY_CHUNK_SIZE,
    jit_compile: bool = False,
    extra_metadata: dict[str, Any] | None = None,
) -> Path:
    """Export ``model`` as a serving SavedModel with its vocabularies and string signatures.

    Args:
        model: a ``hale_tf.models`` KGE model built with ``num_relations = 2R`` (reciprocals).
        entity_names: the N entity names in id order, or the path of ``vocab/entities.tsv``.
        relation_names: the R base relation names in id order, or the path of ``vocab/relations.tsv``.
        export_dir: the directory to create (e.g. ``serving/<dataset>/<version>``). It is written to a
            temporary sibling and renamed into place, so it never exists half-written.
        known_triples: int ``[M, 3]`` (head, base relation, tail) facts that ``exclude_known`` removes
            (usually the training split); stored as sorted int64 keys, never as a dense N×N mask.
        overwrite: replace an existing ``export_dir`` (otherwise it is an error).
        query_chunk_size: queries scored per step in the top-k signatures (bounds memory per request).
        jit_compile: XLA-compile the dense scoring (lookups and top-k stay outside XLA).
        extra_metadata: JSON-serialisable entries added under ``"extra"`` in ``hale_tf_export.json``.

    Returns:
        The export directory. It holds ``saved_model.pb``, ``variables/`` and ``assets/``
        (``entities.tsv``, ``relations.tsv``, ``hale_tf_export.json``).
    """
    entities = _as_names(entity_names, "entity")
    relations = _as_names(relation_names, "relation")
    num_entities, num_relations = int(model.num_entities), int(model.num_relations)
    if len(entities) != num_entities:
        raise ValueError(f"{len(entities)} entity names for a model with num_entities={num_entities}")
    if num_relations != 2 * len(relations):
        raise ValueError(
            f"{len(relations)} relation names need a model with num_relations={2 * len(relations)} "
            f"(base + reciprocal relations for head prediction), got {num_relations}"
        )
    if query_chunk_size < 1:
        raise ValueError(f"query_chunk_size must be >= 1, got {query_chunk_size}")
    keys = known_triple_keys(
        np.zeros([0, 3], np.int64) if known_triples is None else known_triples, num_entities, len(relations)
    )

    export_dir = Path(export_dir)
    if export_dir.exists() and not overwrite:
        raise FileExistsError(f"{export_dir} exists; pass overwrite=True to replace it")
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    # The temporary directory is a sibling, so the final rename stays on one filesystem (atomic); its
    # dot-name is not a numeric version, so TF Serving never picks it up while it is being written.
    work = Path(tempfile.mkdtemp(prefix=f".{export_dir.name}.tmp-", dir=export_dir.parent))
    try:
        staging = work / "staging"
        staging.mkdir()
        _write_lines(staging / ENTITY_VOCAB_FILENAME, entities)
        _write_lines(staging / RELATION_VOCAB_FILENAME, relations)
        metadata = {
            "format_version": EXPORT_FORMAT_VERSION,
            "model": _model_name(model),
            "model_class": type(model).__name__,
            "geometry": getattr(model, "geometry", "euclidean"),
            "config": model.get_config(),
            "dtype": tf.as_dtype(model.entities.embeddings.dtype).name,
            "num_entities": num_entities,
            "num_relations": len(relations),
            "num_model_relations": num_relations,
            "dim": int(model.dim),
            "num_known_keys": len(keys),
            "known_key_formula": "(h * 2R + r) * N + t, both directions",
            "query_chunk_size": int(query_chunk_size),
            "jit_compile": bool(jit_compile),
            "signatures": list(SIGNATURE_NAMES),
            "serving_default": "topk_tails",
            "hale_tf_version": hale_tf.__version__,
            "tensorflow_version": tf.__version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "extra": dict(extra_metadata or {}),
        }
        (staging / METADATA_FILENAME).write_text(json.dumps(metadata, indent=2, default=str) + "\n")

        module = _ServingModule(model, entities, relations, keys, staging, query_chunk_size, jit_compile)
        signatures = {name: getattr(module, name) for name in SIGNATURE_NAMES}
        signatures["serving_default"] = module.topk_tails
        target = work / "saved_model"
        tf.saved_model.save(module, str(target), signatures=signatures)

        # Overwrite: the old export is moved aside first, then the new one swapped in (one rename each).
        replace_directory(target, export_dir, work / "previous")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return export_dir
