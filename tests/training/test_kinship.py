"""End to end on a real dataset: a short HaLE run on Kinship reaches a clearly non-trivial filtered MRR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from hale_tf import data, losses, models, training
from hale_tf.evaluation import FilterIndex
from hale_tf.reciprocal import relation_ids


def test_kinship_short_training_reaches_nontrivial_mrr(shared_datasets: Path) -> None:
    splits = data.load_id_splits("kinship")
    ids, n, r = splits.triples, splits.num_entities, splits.num_relations
    index = FilterIndex.from_triples(ids, num_relations=r, num_entities=n)
    tf.keras.utils.set_random_seed(0)
    model = models.get("rotH", num_entities=n, num_relations=relation_ids(r), dim=32)
    random_mrr = np.mean(1.0 / np.arange(1, n + 1))  # ≈ 0.05 for 104 entities
    # 200 steps (not a time budget) so the floor does not depend on how loaded the machine is.
    result = training.fit(
        model, losses.HaLELoss("all", temperature=1.0), ids["train"], batch_size=256, learning_rate=0.01,
        max_steps=200,
        validation=training.ValidationData(ids["valid"], index, options={"jit_compile": False}),
        validate_every_steps=100, verbose=0,
    )
    # Measured: valid MRR 0.66-0.67 after 200 steps; the floor leaves room.
    assert result.best_mrr > 0.5 > 5 * random_mrr, result.validations
    assert [v["step"] for v in result.validations] == [100, 200] and result.steps == 200
