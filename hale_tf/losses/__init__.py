"""The loss family: HaLE (query-sampling alignment + uniformity) and baselines, through one registry.

``get(name, **config)`` builds a loss; ``available()`` lists the names:

- ``hale``: :class:`HaLELoss` (negatives ``all`` | ``in_batch`` | ``sampled``);
- ``negative_sampling``: :class:`NegativeSamplingLoss` (KGEmb: 50 uniform negatives, mean logistic loss);
- ``self_adversarial``: the same with RotatE's self-adversarial weights (α = 1 unless given);
- ``one_vs_all`` / ``softmax`` / ``bce``: :class:`OneVsAllLoss` (1-vs-all cross-entropy or BCE).

Every loss is called as ``loss(model, batch, seed=…)`` on a :class:`QueryBatch` and returns a
:class:`LossOutput` (per-example loss and named terms); ``get(loss.get_config())`` rebuilds it.
"""

from hale_tf.losses.base import KGELoss, LossOutput, QueryBatch, available, get, register
from hale_tf.losses.baselines import NegativeSamplingLoss, OneVsAllLoss
from hale_tf.losses.hale import HaLELoss

__all__ = [
    "HaLELoss", "KGELoss", "LossOutput", "NegativeSamplingLoss", "OneVsAllLoss", "QueryBatch", "available",
    "get", "register",
]
