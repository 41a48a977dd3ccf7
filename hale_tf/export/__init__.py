"""Export for serving and inspection.

* :func:`export_saved_model` — a SavedModel with the vocabularies inside and string signatures
  ``topk_tails``, ``topk_heads``, ``score``, ``embed`` (loads with TensorFlow alone).
* :func:`export_embeddings` — entity/relation embeddings as TSV with TensorBoard-projector metadata, and a
  Poincaré-disk picture for hyperbolic models.
"""

from hale_tf.export.embeddings import export_embeddings
from hale_tf.export.saved_model import (
    EXPORT_FORMAT_VERSION,
    METADATA_FILENAME,
    SIGNATURE_NAMES,
    export_saved_model,
    known_triple_keys,
    read_vocabulary,
)

__all__ = [
    "EXPORT_FORMAT_VERSION",
    "METADATA_FILENAME",
    "SIGNATURE_NAMES",
    "export_embeddings",
    "export_saved_model",
    "known_triple_keys",
    "read_vocabulary",
]
