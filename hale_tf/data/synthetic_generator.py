"""The synthetic graph generator: planted patterns on integer id arrays (NumPy, no files, no strings).

See :mod:`hale_tf.data.synthetic` for what is planted and why; this module is the engine behind
:func:`hale_tf.data.synthetic.synthetic_graph`. The graph is a pure function of the
:class:`~hale_tf.data.types.SyntheticParams` (one ``numpy.random.default_rng(seed)`` stream drawn in a
fixed order), so any change here that alters the draws must bump ``GENERATOR_VERSION``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hale_tf.data.errors import HaleDataError
from hale_tf.data.types import SyntheticParams

__all__ = ["RelationGroup", "SyntheticGraph", "build_graph"]

# Shape constants of the planted structure (chosen so that degree and relation-frequency distributions
# look like those of FB15k-237/YAGO3-10: heavy-tailed but not dominated by a single hub).
_ENTITY_ZIPF = 0.75
_RELATION_ZIPF = 0.6
_CLUSTER_ZIPF = 0.8
_TREE_GAMMA = 2.0  # parent position = floor(k * u**gamma): larger gamma = flatter trees with bigger hubs
_OVERSAMPLE = 1.15  # draws per wanted triple, to absorb duplicates and self-loops before trimming
_GROUP_CYCLE = (
    ("hierarchy", 2),
    ("symmetric", 1),
    ("inverse", 2),
    ("composition", 3),
    ("typed", 1),
    ("typed", 1),
)
_ROLES = {
    "hierarchy": ("up", "down"),
    "symmetric": ("sym",),
    "inverse": ("fwd", "bwd"),
    "composition": ("ab", "bc", "ac"),
    "typed": ("typed",),
}


@dataclass(frozen=True)
class RelationGroup:
    """Relations generated together with one planted pattern (ids index ``relation_names``)."""

    kind: str  # "hierarchy" | "symmetric" | "inverse" | "composition" | "typed"
    relations: tuple[int, ...]


@dataclass(frozen=True)
class SyntheticGraph:
    """The generated graph as integer id arrays of shape ``(n, 3)`` with columns head, relation, tail."""

    entity_names: list[str]
    relation_names: list[str]
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    groups: tuple[RelationGroup, ...]
    cluster_of: np.ndarray = field(repr=False)  # entity id -> cluster (type) id
    params: dict = field(default_factory=dict, hash=False)

    def split(self, name: str) -> np.ndarray:
        """The id array of ``"train"``, ``"valid"`` or ``"test"``."""
        return {"train": self.train, "valid": self.valid, "test": self.test}[name]

    def triples(self, name: str) -> list[tuple[str, str, str]]:
        """A split as string triples, as :func:`hale_tf.data.read_triples` would return it."""
        ids = self.split(name)
        ents, rels = self.entity_names, self.relation_names
        return [(ents[h], rels[r], ents[t]) for h, r, t in ids.tolist()]


class _Sampler:
    """Popularity-weighted draws of entities, globally or restricted to one cluster, all vectorised."""

    def __init__(self, rng: np.random.Generator, num_entities: int) -> None:
        n = num_entities
        self.rng = rng
        self.n = n
        weights = (np.arange(1, n + 1, dtype=np.float64)) ** -_ENTITY_ZIPF
        self.popularity = np.empty(n)
        self.popularity[rng.permutation(n)] = weights / weights.sum()
        self.cdf = np.cumsum(self.popularity)

        # Clusters ("types"): Zipf sizes, at least 2 members so every tree root has a child.
        k = int(min(n // 2, max(1, round(math.sqrt(n) / 2))))
        shares = np.arange(1, k + 1, dtype=np.float64) ** -_CLUSTER_ZIPF
        sizes = 2 + rng.multinomial(n - 2 * k, shares / shares.sum())
        self.k = k
        self.sizes = sizes
        self.cluster_of = np.empty(n, dtype=np.int64)
        self.cluster_of[rng.permutation(n)] = np.repeat(np.arange(k), sizes)
        self.starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        self.ends = self.starts + sizes
        # Members sorted by cluster, most popular first: hubs become tree roots and the cumulative
        # weights give each cluster a contiguous CDF segment for per-cluster draws.
        self.members = np.lexsort((-self.popularity, self.cluster_of))
        self.member_cdf = np.cumsum(self.popularity[self.members])
        self.seg_lo = self.member_cdf[self.starts] - self.popularity[self.members[self.starts]]
        self.seg_hi = self.member_cdf[self.ends - 1]

    def entities(self, size: int) -> np.ndarray:
        idx = np.searchsorted(self.cdf, self.rng.random(size) * self.cdf[-1], side="right")
        return np.minimum(idx, self.n - 1)

    def in_clusters(self, clusters: np.ndarray) -> np.ndarray:
        lo, hi = self.seg_lo[clusters], self.seg_hi[clusters]
        idx = np.searchsorted(self.member_cdf, lo + self.rng.random(len(clusters)) * (hi - lo), side="right")
        return self.members[np.clip(idx, self.starts[clusters], self.ends[clusters] - 1)]

    def cluster_map(self) -> np.ndarray:
        """A relation's type signature: head cluster -> tail cluster."""
        return self.rng.integers(0, self.k, size=self.k)

    def forest(self, by_popularity: bool) -> tuple[np.ndarray, np.ndarray]:
        """(child, parent) edges of one tree per cluster, by preferential attachment on positions."""
        order = self.members if by_popularity else np.lexsort((self.rng.random(self.n), self.cluster_of))
        cluster = self.cluster_of[order]
        local = np.arange(self.n) - self.starts[cluster]
        child_pos = np.flatnonzero(local > 0)
        u = self.rng.random(len(child_pos))
        parent_local = np.floor(local[child_pos] * u**_TREE_GAMMA).astype(np.int64)
        parent_pos = self.starts[cluster[child_pos]] + parent_local
        return order[child_pos], order[parent_pos]


def _plan_groups(num_relations: int) -> list[tuple[str, int]]:
    """Split the relation ids into pattern groups, repeating :data:`_GROUP_CYCLE` while ids remain."""
    # The first group is always a hierarchy: its child->parent edges touch every entity, which is
    # what guarantees that all entities occur in train.
    groups = [("hierarchy", min(2, num_relations))]
    left = num_relations - groups[0][1]
    i = 1
    while left > 0:
        kind, width = _GROUP_CYCLE[i % len(_GROUP_CYCLE)]
        i += 1
        if width > left:
            kind, width = "typed", 1
        groups.append((kind, width))
        left -= width
    return groups


def _first_index(values: np.ndarray, size: int) -> np.ndarray:
    """For each id in ``range(size)`` that occurs in ``values``, the index of its first occurrence."""
    first = np.full(size, len(values), dtype=np.int64)
    np.minimum.at(first, values, np.arange(len(values), dtype=np.int64))
    return first[first < len(values)]


def _first_occurrences(keys: np.ndarray) -> np.ndarray:
    """Sorted indices of the first occurrence of each distinct non-negative key.

    Same result as ``np.sort(np.unique(keys, return_index=True)[1])``, but the position is packed into
    the low bits so that one plain ``np.sort`` (SIMD, several times faster than the stable argsort that
    ``return_index`` needs) both groups equal keys and orders each group by position.
    """
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    bits = max(1, int(n - 1).bit_length())
    if int(keys.max()) >= 1 << (62 - bits):
        _, first = np.unique(keys, return_index=True)
        return np.sort(first)
    packed = np.sort((keys << bits) | np.arange(n, dtype=np.int64))
    grouped = packed >> bits
    new = np.ones(n, dtype=bool)
    new[1:] = grouped[1:] != grouped[:-1]
    return np.sort(packed[new] & ((1 << bits) - 1))


def _triples(h: np.ndarray, r: int, t: np.ndarray) -> np.ndarray:
    return np.stack([h, np.full(len(h), r, dtype=np.int64), t], axis=1)


class _Builder:
    def __init__(self, p: SyntheticParams) -> None:
        self.p = p
        self.rng = np.random.default_rng(p.seed)
        self.n, self.r = p.num_entities, p.num_relations
        self.sampler = _Sampler(self.rng, self.n)
        self.groups: list[RelationGroup] = []
        self.maps: dict[int, np.ndarray] = {}  # relation id -> cluster map (typed-like relations)

    def _draws(self, budget: int) -> int:
        return int(math.ceil(budget * _OVERSAMPLE)) + 1

    # --- pattern generators: each returns candidate triples for its relations --------------------
    def hierarchy(self, rels: tuple[int, ...], budgets: list[int], first: bool) -> list[np.ndarray]:
        child, parent = self.sampler.forest(by_popularity=first)
        m = len(child)
        out = []
        perm = self.rng.permutation(m)
        # The first hierarchy keeps all its up edges (coverage); the others take a budget-sized subset.
        n_up = m if first else min(m, self._draws(budgets[0]))
        out.append(_triples(child[perm[:n_up]], rels[0], parent[perm[:n_up]]))
        if len(rels) > 1:
            n_down = min(m, self._draws(budgets[1]))
            pick = perm[:n_down]  # same prefix as "up": most down edges have their up edge as evidence
            out.append(_triples(parent[pick], rels[1], child[pick]))
        return out

    def symmetric(self, rels: tuple[int, ...], budgets: list[int]) -> list[np.ndarray]:
        (rel,), s = rels, self.sampler
        a = s.entities(self._draws(budgets[0]) // 2 + 1)
        b = s.in_clusters(s.cluster_of[a])
        return [_triples(np.concatenate([a, b]), rel, np.concatenate([b, a]))]

    def inverse(self, rels: tuple[int, ...], budgets: list[int]) -> list[np.ndarray]:
        s = self.sampler
        cmap = self.maps.setdefault(rels[0], s.cluster_map())
        n1, n2 = self._draws(budgets[0]), self._draws(budgets[1])
        a = s.entities(max(n1, n2))
        b = s.in_clusters(cmap[s.cluster_of[a]])
        return [_triples(a[:n1], rels[0], b[:n1]), _triples(b[:n2], rels[1], a[:n2])]

    def composition(self, rels: tuple[int, ...], budgets: list[int]) -> list[np.ndarray]:
        s, n = self.sampler, self.n
        # Functional ("many-to-one", e.g. born_in, located_in) maps; r3 = r2 o r1.
        f1 = s.in_clusters(self.maps.setdefault(rels[0], s.cluster_map())[s.cluster_of])
        f2 = s.in_clusters(self.maps.setdefault(rels[1], s.cluster_map())[s.cluster_of])
        n1, n2, n3 = (min(n, self._draws(b)) for b in budgets)
        heads = self.rng.permutation(n)
        a1 = heads[:n1]
        # r2's heads: first the entities reached through r1, so the two-hop path behind r3 exists.
        hit = np.zeros(n, dtype=bool)
        hit[f1[a1]] = True
        reached = np.flatnonzero(hit)
        rest = heads[~hit[heads]]
        b2 = np.concatenate([self.rng.permutation(reached), rest])[:n2]
        a3 = heads[:n3]
        return [
            _triples(a1, rels[0], f1[a1]),
            _triples(b2, rels[1], f2[b2]),
            _triples(a3, rels[2], f2[f1[a3]]),
        ]

    def typed(self, rels: tuple[int, ...], budgets: list[int]) -> list[np.ndarray]:
        (rel,), s = rels, self.sampler
        cmap = self.maps.setdefault(rel, s.cluster_map())
        a = s.entities(self._draws(budgets[0]))
        return [_triples(a, rel, s.in_clusters(cmap[s.cluster_of[a]]))]

    def elastic(self, group: RelationGroup, budget: int) -> list[np.ndarray]:
        """Extra triples for groups whose capacity is large (used to top the pool up)."""
        per = [budget] * len(group.relations)
        if group.kind == "symmetric":
            return self.symmetric(group.relations, per)
        if group.kind == "inverse":
            return self.inverse(group.relations, per)
        # typed draws for everything else; used alone only when no high-capacity group exists (R <= 2)
        return [part for rel in group.relations for part in self.typed((rel,), [budget])]

    # --- assembly ---------------------------------------------------------------------------------
    def build(self) -> SyntheticGraph:
        n, r, rng = self.n, self.r, self.rng
        total = self.p.num_triples
        plan = _plan_groups(r)
        ids = iter(range(r))
        self.groups = [RelationGroup(kind, tuple(next(ids) for _ in range(width))) for kind, width in plan]

        mandatory = n - self.sampler.k  # up edges of the first hierarchy
        weights = np.arange(1, r + 1, dtype=np.float64) ** -_RELATION_ZIPF
        weights = weights[rng.permutation(r)]
        weights[0] = 0.0  # relation 0 (first hierarchy, up) has its fixed size
        share = max(total - mandatory, 0) * weights / max(weights.sum(), 1e-12)
        budget = np.maximum(np.floor(share).astype(np.int64), 2)

        parts: list[np.ndarray] = []
        for gi, group in enumerate(self.groups):
            b = [int(budget[x]) for x in group.relations]
            if len(b) > 1 and gi > 0:
                # Relations of one pattern get equal sizes, so most triples of each have their partner
                # (inverse, reverse path) in the graph: that is what makes the pattern learnable.
                b = [sum(b) // len(b)] * len(b)
            if group.kind == "hierarchy":
                parts += self.hierarchy(group.relations, b, first=gi == 0)
            else:
                parts += getattr(self, group.kind)(group.relations, b)
        pool = self._dedupe(np.concatenate(parts))
        pool = self._top_up(pool, total)
        pool = self._trim(pool, total, protected=mandatory)
        return self._split(pool)

    def _key(self, triples: np.ndarray) -> np.ndarray:
        return (triples[:, 0] * self.r + triples[:, 1]) * self.n + triples[:, 2]

    def _dedupe(self, triples: np.ndarray) -> np.ndarray:
        """Drop self-loops and repeats, keeping first occurrences in their original order."""
        triples = triples[triples[:, 0] != triples[:, 2]]
        return triples[_first_occurrences(self._key(triples))]

    def _top_up(self, pool: np.ndarray, total: int) -> np.ndarray:
        elastic = [g for g in self.groups if g.kind in ("symmetric", "inverse", "typed")] or self.groups
        for attempt in range(60):
            deficit = total - len(pool)
            if deficit <= 0:
                return pool
            if attempt >= 40:
                # Very dense requests: structured draws keep hitting existing triples, so finish with
                # uniform ones (still typed by relation id, but without cluster structure).
                m = self._draws(deficit)
                extra = np.stack(
                    [
                        self.rng.integers(0, self.n, m),
                        self.rng.integers(0, self.r, m),
                        self.rng.integers(0, self.n, m),
                    ],
                    axis=1,
                )
                pool = self._dedupe(np.concatenate([pool, extra]))
                continue
            per_group = deficit // len(elastic) + 1
            extra = np.concatenate([part for g in elastic for part in self.elastic(g, per_group)])
            pool = self._dedupe(np.concatenate([pool, extra]))
        if len(pool) < total:
            raise HaleDataError(
                f"synthetic generator could only place {len(pool)} of {total} distinct triples"
            )
        return pool

    def _trim(self, pool: np.ndarray, total: int, protected: int) -> np.ndarray:
        """Randomly drop surplus triples, never the coverage edges nor the last triple of a relation."""
        surplus = len(pool) - total
        if surplus <= 0:
            return pool
        keep = np.ones(len(pool), dtype=bool)
        # One triple per relation is protected so every relation survives into train.
        first_of_rel = _first_index(pool[:, 1], self.r)
        droppable = np.ones(len(pool), dtype=bool)
        droppable[:protected] = False  # the first hierarchy's up edges come first in the pool
        droppable[first_of_rel] = False
        candidates = np.flatnonzero(droppable)
        keep[self.rng.choice(candidates, size=surplus, replace=False)] = False
        return pool[keep]

    def _split(self, pool: np.ndarray) -> SyntheticGraph:
        p, rng = self.p, self.rng
        m = len(pool)
        perm = rng.permutation(m)
        shuffled = pool[perm]
        # Anchors: for every entity and relation, its first triple in a random order goes to train, so
        # valid/test never contain an id that train lacks.
        endpoints = np.stack([shuffled[:, 0], shuffled[:, 2]], axis=1).ravel()
        first_ent = _first_index(endpoints, self.n)
        first_rel = _first_index(shuffled[:, 1], self.r)
        anchor = np.zeros(m, dtype=bool)
        anchor[first_ent // 2] = True
        anchor[first_rel] = True
        n_eval = p.num_valid + p.num_test
        free = np.flatnonzero(~anchor)
        if len(free) < n_eval:  # cannot happen when num_train >= num_entities + num_relations
            raise HaleDataError(
                f"synthetic generator: only {len(free)} triples can go to valid/test, need {n_eval}"
            )
        chosen = rng.choice(free, size=n_eval, replace=False)
        in_eval = np.zeros(m, dtype=bool)
        in_eval[chosen] = True
        train = shuffled[~in_eval]
        valid = shuffled[chosen[: p.num_valid]]
        test = shuffled[chosen[p.num_valid :]]

        width_e = len(str(self.n - 1))
        width_r = len(str(self.r - 1))
        entity_names = [f"e{i:0{width_e}d}" for i in range(self.n)]
        relation_names = [""] * self.r
        for gi, group in enumerate(self.groups):
            for rel, role in zip(group.relations, _ROLES[group.kind], strict=False):
                relation_names[rel] = f"r{rel:0{width_r}d}_{group.kind}{gi}_{role}"
        return SyntheticGraph(
            entity_names=entity_names,
            relation_names=relation_names,
            train=train,
            valid=valid,
            test=test,
            groups=tuple(self.groups),
            cluster_of=self.sampler.cluster_of.copy(),
            params=p.as_dict(),
        )


def build_graph(params: SyntheticParams) -> SyntheticGraph:
    """Generate the graph of ``params`` in memory; the same parameters give identical arrays and names."""
    return _Builder(params).build()
