"""One id mapping for both systems: registry dataset → id TSV files that hale-tf and PyKEEN both read.

Entities and relations are the sorted vocabularies of the *training* split; valid/test triples with an
entity or relation unseen in training are dropped (and counted), so both systems rank exactly the same
triples against exactly the same entity set.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import peers_common as common

FORMAT = "hale_tf.bench.peers.data/1"


def _fingerprint(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        st = p.stat()
        digest.update(f"{p.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode())
    return digest.hexdigest()[:16]


def prepare_dataset(name: str, out_dir: Path) -> dict[str, Any]:
    """Resolve ``name`` through the registry and write ``out_dir/{train,valid,test}.tsv`` (ids),
    ``entities.tsv``/``relations.tsv`` (id → label) and ``meta.json``; re-used when up to date.

    Returns the metadata (counts, dropped triples, source files).
    """
    from hale_tf.data import read_triples, resolve_dataset
    from hale_tf.data.ids import number_names

    files = resolve_dataset(name)
    sources = [files.train, files.valid, files.test]
    fingerprint = _fingerprint(sources)
    meta_path = out_dir / "meta.json"
    if meta_path.exists():
        meta = common.read_json(meta_path)
        if meta.get("format") == FORMAT and meta.get("fingerprint") == fingerprint:
            return meta
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = {split: read_triples(path) for split, path in files.splits.items()}
    # Train alone, by the rule the pipeline's Transform uses (its default unseen_policy "drop").
    entities = number_names(x for h, _, t in raw["train"] for x in (h, t))
    relations = number_names(r for _, r, _ in raw["train"])
    e_id = {e: i for i, e in enumerate(entities)}
    r_id = {r: i for i, r in enumerate(relations)}
    counts: dict[str, dict[str, int]] = {}
    for split, triples in raw.items():
        kept = [(e_id[h], r_id[r], e_id[t]) for h, r, t in triples if h in e_id and t in e_id and r in r_id]
        ids = np.asarray(kept, np.int64).reshape(-1, 3)
        common.write_id_triples(out_dir / f"{split}.tsv", ids)
        counts[split] = {"raw": len(triples), "kept": len(ids), "dropped_unseen": len(triples) - len(ids)}
    (out_dir / "entities.tsv").write_text("".join(f"{i}\t{e}\n" for i, e in enumerate(entities)), encoding="utf-8")
    (out_dir / "relations.tsv").write_text("".join(f"{i}\t{r}\n" for i, r in enumerate(relations)), encoding="utf-8")
    meta = {
        "format": FORMAT, "dataset": files.name, "source": files.source,
        "files": {k: str(v) for k, v in files.splits.items()}, "fingerprint": fingerprint,
        "num_entities": len(entities), "num_relations": len(relations), "splits": counts,
        "mapping": "sorted training vocabulary; valid/test triples with unseen entities/relations dropped",
    }
    common.write_json(meta_path, meta)
    return meta


def write_valid_subset(data_dir: Path, size: int, seed: int = 0) -> str:
    """Write ``valid_curve.tsv``: ``size`` validation triples drawn without replacement (all when ``size`` is 0
    or not smaller than the split), the same file for every system; returns the file name."""
    valid = common.read_id_triples(data_dir / "valid.tsv")
    if size <= 0 or size >= len(valid):
        return "valid.tsv"
    rows = np.sort(np.random.default_rng(seed).choice(len(valid), size=size, replace=False))
    name = f"valid_curve_{size}_{seed}.tsv"
    common.write_id_triples(data_dir / name, valid[rows])
    return name
