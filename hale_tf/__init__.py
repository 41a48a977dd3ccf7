"""hale-tf: hardness-aware contrastive training of low-dimensional knowledge-graph embeddings.

The library layer: geometry, Keras layers and models, losses, training, evaluation and export.
It imports TensorFlow, Keras and NumPy only (never Beam, ``components`` or ``pipelines``).
"""

__version__ = "0.1.0"
