"""The KGE model family, created through one registry: ``get(name, **config)``, ``available()``."""

from hale_tf.models import euclidean, hyperbolic  # noqa: F401  (importing registers the models)
from hale_tf.models.base import KGEModel, Query
from hale_tf.models.euclidean import AttE, MuRE, RefE, RotE, TransE
from hale_tf.models.hyperbolic import AttH, HyperbolicModel, RefH, RotH
from hale_tf.models.io import load_model, model_spec, save_model
from hale_tf.models.registry import available, get, get_class, register

__all__ = [
    "AttE", "AttH", "HyperbolicModel", "KGEModel", "MuRE", "Query", "RefE", "RefH", "RotE", "RotH",
    "TransE", "available", "get", "get_class", "load_model", "model_spec", "register", "save_model",
]
