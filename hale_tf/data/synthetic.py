"""Deterministic synthetic knowledge graphs with learnable structure, at any size.

The generator exists so that scale (up to and beyond YAGO3-10) and learning can be tested offline. A
graph of pure noise would only test the plumbing; this one plants the patterns KG-embedding models are
designed to capture, so a working model must beat chance by a wide margin:

* **types**: entities fall into clusters of Zipf-distributed sizes; relations connect clusters through a
  fixed per-relation cluster map, so the answer's type is predictable from the query;
* **hierarchies**: a forest per ``hierarchy`` group (one tree per cluster, built by preferential
  attachment, so a few hubs have many children), with a child->parent relation and its inverse;
* **symmetric** relations (both directions of most pairs), **inverse** pairs (``r2(b, a)`` iff
  ``r1(a, b)``) and **composition** triples (``r3 = r1 then r2`` on functional relations);
* **power-law degrees**: entities carry Zipf popularity weights used for every head/tail draw, and the
  number of triples per relation is Zipf-distributed too.

Everything is vectorised NumPy on integer arrays (:mod:`hale_tf.data.synthetic_generator`); strings are
made only when writing (here). The graph is a pure function of the parameters, one
:class:`~hale_tf.data.types.SyntheticParams` (their defaults, checks and cache name live there only), and
the layout written by :func:`generate_synthetic` matches the mirror (``{train,valid,test}.txt.gz``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from hale_tf.atomic import atomic_write_bytes
from hale_tf.data.synthetic_generator import RelationGroup, SyntheticGraph, build_graph
from hale_tf.data.types import GENERATOR_VERSION, PRESETS, SYNTHETIC, DatasetFiles, DatasetInfo, SyntheticParams

__all__ = [
    "GENERATOR_VERSION",
    "PRESETS",
    "RelationGroup",
    "SyntheticGraph",
    "SyntheticParams",
    "generate_synthetic",
    "synthetic_graph",
    "synthetic_info",
    "write_graph",
]

ParamsLike = SyntheticParams | Mapping[str, Any] | None


def _params(params: ParamsLike, overrides: Mapping[str, Any]) -> SyntheticParams:
    """``params`` (a :class:`SyntheticParams` or a ``synthetic_params`` mapping) with keyword overrides."""
    if not overrides:
        return SyntheticParams.from_dict(params)
    base = params.as_dict() if isinstance(params, SyntheticParams) else dict(params or {})
    return SyntheticParams.from_dict({**base, **overrides})


def synthetic_info(params: ParamsLike = None, **overrides: Any) -> DatasetInfo:
    """A :class:`~hale_tf.data.types.DatasetInfo` with the exact counts of a synthetic parameter set."""
    return _params(params, overrides).info()


def synthetic_graph(params: ParamsLike = None, /, **overrides: Any) -> SyntheticGraph:
    """Generate the graph in memory (no files); same parameters give identical arrays and names.

    ``params`` and the keyword arguments are :class:`SyntheticParams` fields (defaults there) or a
    ``"preset"`` name, e.g. ``synthetic_graph(num_entities=500, seed=3)``.
    """
    return build_graph(_params(params, overrides))


def _encode_split(graph: SyntheticGraph, ids: np.ndarray) -> bytes:
    """The split as UTF-8 lines, assembled in one byte buffer (no Python work per line).

    Entity names all have the same width (zero-padded), so each name is a fixed-size row copied with
    one fancy-indexing assignment; relation names are copied per distinct length.
    """
    n = len(ids)
    if n == 0:
        return b""
    width = len(graph.entity_names[0])
    ents = np.frombuffer("".join(graph.entity_names).encode("ascii"), dtype=np.uint8).reshape(-1, width)
    rel_bytes = [name.encode("ascii") for name in graph.relation_names]
    rel_len = np.array([len(b) for b in rel_bytes], dtype=np.int64)
    rel_mat = np.zeros((len(rel_bytes), int(rel_len.max())), dtype=np.uint8)
    for i, b in enumerate(rel_bytes):
        rel_mat[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
    h, r, t = ids[:, 0], ids[:, 1], ids[:, 2]
    line_len = 2 * width + rel_len[r] + 3
    ends = np.cumsum(line_len)
    starts = ends - line_len
    out = np.empty(int(ends[-1]), dtype=np.uint8)
    cols = np.arange(width)
    out[starts[:, None] + cols] = ents[h]
    out[starts + width] = ord("\t")
    rel_start = starts + width + 1
    for length in np.unique(rel_len):
        sel = rel_len[r] == length
        out[rel_start[sel][:, None] + np.arange(length)] = rel_mat[r[sel], :length]
    tail_start = rel_start + rel_len[r] + 1
    out[tail_start - 1] = ord("\t")
    out[tail_start[:, None] + cols] = ents[t]
    out[ends - 1] = ord("\n")
    return out.tobytes()


def write_graph(graph: SyntheticGraph, out_dir: str | os.PathLike, *, compresslevel: int = 1) -> None:
    """Write ``{train,valid,test}.txt.gz`` and ``synthetic.json`` (parameters and planted groups).

    gzip level 1 by default: the files are a re-creatable cache, and level 6 took three times as long
    (the bulk of the YAGO-sized run) for files only about a fifth smaller.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for split in ("valid", "test", "train"):  # train last: its presence marks a finished directory
        atomic_write_bytes(
            out / f"{split}.txt.gz", _encode_split(graph, graph.split(split)), gzip_level=compresslevel
        )
    meta = {
        "generator_version": GENERATOR_VERSION,
        "params": graph.params,
        "num_clusters": int(graph.cluster_of.max()) + 1,
        "groups": [
            {"kind": g.kind, "relations": [graph.relation_names[x] for x in g.relations]}
            for g in graph.groups
        ],
    }
    atomic_write_bytes(out / "synthetic.json", (json.dumps(meta, indent=2) + "\n").encode("utf-8"))


def generate_synthetic(out_dir: str | os.PathLike, params: ParamsLike = None, /, **overrides: Any) -> DatasetFiles:
    """Generate a synthetic graph into ``out_dir`` and return its :class:`~hale_tf.data.DatasetFiles`.

    Parameters as for :func:`synthetic_graph`. Deterministic for the same parameters (byte-identical
    files). Guarantees: exactly the requested number of entities (all occurring in train), relations and
    triples per split; no duplicate or self-loop triple; valid, test and train pairwise disjoint; every
    valid/test entity and relation occurs in train. Requires ``num_train >= num_entities + num_relations``.
    The YAGO3-10-sized graph (``synthetic_params={"preset": "yago3-10"}``) takes a few seconds, mostly
    compression.
    """
    out = Path(out_dir)
    write_graph(synthetic_graph(params, **overrides), out)
    return DatasetFiles.in_directory(SYNTHETIC, out, "synthetic")
