"""Keras layers: embedding tables and relation operators (build / call / get_config)."""

from hale_tf.layers.embeddings import EntityEmbedding, RelationAttention, RelationCurvature, RelationTable

__all__ = ["EntityEmbedding", "RelationAttention", "RelationCurvature", "RelationTable"]
