"""Training: ``fit(model, loss, train_queries, …)`` with a time budget, validation, early stopping,
exact resume, TensorBoard summaries and NaN detection, under a ``tf.distribute`` strategy.

Typical use::

    from hale_tf import losses, models, training

    queries = training.TrainQueries.from_triples(train_ids, num_relations=R)
    model = models.get("rotH", num_entities=N, num_relations=relation_ids(R), dim=32)
    result = training.fit(model, losses.get("hale"), queries, batch_size=500, time_budget_s=600,
                          validation=training.ValidationData(valid_ids, filter_index),
                          validate_every_s=60, patience=5, checkpoint_dir="run/ckpt", log_dir="run/logs")

Phased training (HaLE first, then negative sampling on the same model; ``hale_tf.training.phases``)::

    result = training.fit_phases(model, "hale", queries, [
        {"until": 0.05, "training": {"optimizer": "adam", "learning_rate": 1e-2}},
        {"until": 1.0, "loss": {"name": "negative_sampling", "num_negatives": 50},
         "training": {"optimizer": "adam", "learning_rate": 5e-3, "lr_decay": "cosine"}},
    ], time_budget_s=600, validation=…)
"""

from hale_tf.training import optimizers
from hale_tf.training.config import LossSpec, TrainingConfig
from hale_tf.training.optimizers import FusedAdam, FusedAdamW, LazyAdam
from hale_tf.training.phases import Phase, fit_phases, parse_phases
from hale_tf.training.queries import BatchSampler, TrainQueries, as_train_queries, epoch_permutation
from hale_tf.training.trainer import (
    NonFiniteError,
    TrainingResult,
    ValidationData,
    default_strategy,
    fit,
    mirrored_strategy,
)

__all__ = [
    "BatchSampler", "FusedAdam", "FusedAdamW", "LazyAdam", "LossSpec", "NonFiniteError", "Phase", "TrainQueries",
    "TrainingConfig", "TrainingResult", "ValidationData", "as_train_queries", "default_strategy",
    "epoch_permutation", "fit", "fit_phases", "mirrored_strategy", "optimizers", "parse_phases",
]
