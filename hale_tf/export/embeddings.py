"""Embedding export for inspection: TSV tables + TensorBoard-projector config, and a Poincaré-disk picture.

Files written into ``log_dir`` (the TensorBoard log directory, so ``tensorboard --logdir=log_dir`` shows
them in the Projector tab; all paths in ``projector_config.pbtxt`` are relative to it):

* ``entities.tsv`` — the stored entity vectors ``[N, d]`` (tangent vectors for hyperbolic models) and
  ``entities_metadata.tsv`` (header ``name id degree main_relation``; the last two need ``triples``).
  A graph with more than ``max_projector_entities`` (10 000) entities is sampled for the projector (a
  browser tab handles that many points; YAGO3-10's 123k would be ~90 MB of TSV): a seeded random
  sample, in id order, the ``id`` column giving each row's entity id, and the projector's tensor named
  ``entities (sample of 10000 of 123182)`` so the sampling is visible where the data is looked at.
* hyperbolic models: ``entities_ball.tsv`` — the points exp0_c(v) in the Poincaré ball, with c the
  curvature of the most frequent relation in ``triples`` (the mean base-relation curvature without them).
* ``relations_<table>.tsv`` for every per-relation parameter table of the model (e.g. ``translation``,
  ``rotation``), rows = the 2R relation ids (base then reciprocal), with ``relations_metadata.tsv``.
* ``projector_config.pbtxt`` listing the tables above.
* hyperbolic models: ``poincare_disk.png`` — see :func:`disk_projection` for the 2-D projection.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from hale_tf.export.saved_model import VocabularyLike, _as_names
from hale_tf.geometry import expmap0

__all__ = ["degree_and_main_relation", "disk_projection", "export_embeddings"]

PROJECTOR_FILENAME = "projector_config.pbtxt"


def degree_and_main_relation(
    triples: np.ndarray, num_entities: int, num_base_relations: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per entity: degree (occurrences as head or tail) and its most frequent relation (−1 if none).

    Counted sparsely over (entity, relation) pairs, so no N×R array is formed.
    """
    triples = np.asarray(triples, np.int64).reshape(-1, 3)
    entity = np.concatenate([triples[:, 0], triples[:, 2]])
    relation = np.concatenate([triples[:, 1], triples[:, 1]])
    degree = np.bincount(entity, minlength=num_entities)[:num_entities]
    main = np.full(num_entities, -1, np.int64)
    if entity.size:
        pairs, counts = np.unique(entity * num_base_relations + relation, return_counts=True)
        owner, rel = pairs // num_base_relations, pairs % num_base_relations
        # Sort by entity, then by count descending (ties: lower relation id): the first row per entity wins.
        order = np.lexsort((rel, -counts, owner))
        first = np.ones(order.size, bool)
        first[1:] = owner[order][1:] != owner[order][:-1]
        main[owner[order][first]] = rel[order][first]
    return degree, main


def disk_projection(ball_points: np.ndarray, curvature: float) -> np.ndarray:
    """Project points of the d-dimensional Poincaré ball (curvature −c) into the unit disk.

    The points are scaled by √c into the unit ball, their directions are projected onto the two leading
    right singular vectors (PCA about the origin: the origin is the ball's centre, so it is not
    re-centred on the mean), and each projected point is rescaled to its original norm. Distances to the
    centre, i.e. the hierarchy depth the picture is read for, are therefore exact; only the angular
    layout is an approximation. d = 2 embeddings are returned unchanged (up to the √c scaling).
    """
    unit = np.asarray(ball_points, np.float64) * np.sqrt(curvature)
    if unit.shape[1] == 2:
        return unit
    _, _, vt = np.linalg.svd(unit, full_matrices=False)
    flat = unit @ vt[:2].T
    norm = np.linalg.norm(unit, axis=1, keepdims=True)
    flat_norm = np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    return flat / flat_norm * norm


def _write_matrix(path: Path, values: np.ndarray) -> None:
    np.savetxt(path, np.asarray(values, np.float64), fmt="%.7g", delimiter="\t")


def _write_table(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    # Metadata cells must not contain tabs or newlines (the projector splits on them).
    def clean(value: Any) -> str:
        return str(value).replace("\t", " ").replace("\n", " ")

    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write("\t".join(header) + "\n")
        handle.writelines("\t".join(clean(v) for v in row) + "\n" for row in rows)


def _relation_tables(model: Any) -> dict[str, np.ndarray]:
    """The model's per-relation parameter tables ``[2R, width ≥ 2]``, named from their variable paths."""
    entity_ids = {id(w) for w in model.entities.weights}
    tables: dict[str, np.ndarray] = {}
    for weight in model.weights:
        shape = tuple(weight.shape)
        if id(weight) in entity_ids or len(shape) != 2 or shape[0] != model.num_relations or shape[1] < 2:
            continue
        parts = [p for p in weight.path.split("/")[1:] if p != "table"]  # drop the model name, "table"
        tables["_".join(parts) or "relations"] = np.asarray(weight.numpy())
    return tables


def _write_projector_config(log_dir: Path, embeddings: list[dict[str, Any]]) -> Path:
    path = log_dir / PROJECTOR_FILENAME
    try:
        from tensorboard.plugins import projector
    except ImportError:  # TensorBoard absent: the text format is small enough to write directly
        blocks = []
        for e in embeddings:
            shape = "".join(f"  tensor_shape: {s}\n" for s in e["shape"])
            blocks.append(
                f'embeddings {{\n  tensor_name: "{e["name"]}"\n{shape}'
                f'  tensor_path: "{e["tensor"]}"\n  metadata_path: "{e["metadata"]}"\n}}\n'
            )
        path.write_text("".join(blocks), encoding="utf-8")
        return path
    config = projector.ProjectorConfig()
    for e in embeddings:
        info = config.embeddings.add()
        info.tensor_name = e["name"]
        info.tensor_path = e["tensor"]
        info.metadata_path = e["metadata"]
        info.tensor_shape.extend(e["shape"])
    projector.visualize_embeddings(str(log_dir), config)
    return path


def _plot_disk(
    path: Path,
    points: np.ndarray,
    names: Sequence[str],
    title: str,
    *,
    degree: np.ndarray | None = None,
    category: np.ndarray | None = None,
    category_names: Sequence[str] = (),
    max_points: int = 20_000,
    label_top: int = 8,
    seed: int = 0,
) -> None:
    """Scatter ``points`` (unit disk) coloured by ``degree`` (log scale) or by ``category`` (legend).

    The view is zoomed to the data (a trained model of a large graph often sits well inside the disk,
    where a full-disk view shows a blob at the centre), and at most ``label_top`` of the highest-degree
    entities are labelled, skipping any whose label would sit on top of one already placed."""
    # The object-oriented Agg API: no pyplot, so no global backend state is touched.
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    n = len(points)
    chosen = np.arange(n)
    if n > max_points:
        chosen = np.random.default_rng(seed).choice(n, max_points, replace=False)
    fig = Figure(figsize=(7.5, 7), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.add_patch(Circle((0, 0), 1.0, fill=False, linewidth=0.8, color="0.4"))
    style = {"s": 4, "alpha": 0.7, "linewidths": 0}
    if degree is not None:
        chosen = chosen[np.argsort(degree[chosen], kind="stable")]  # high degrees drawn last (on top)
        xy = points[chosen]
        art = ax.scatter(xy[:, 0], xy[:, 1], c=np.log1p(degree[chosen]), cmap="viridis", **style)
        fig.colorbar(art, ax=ax, shrink=0.8, label="log(1 + degree)")
        for i in _readable_labels(points, np.argsort(-degree, kind="stable")[: 10 * label_top], label_top,
                                  _extent(points[chosen])):
            ax.annotate(names[i], points[i], fontsize=7, alpha=0.9, xytext=(3, 3), textcoords="offset points")
    elif category is not None:
        # The 19 most common categories get their own colour; the rest share grey ("other").
        values, counts = np.unique(category[chosen], return_counts=True)
        common = [v for v in values[np.argsort(-counts, kind="stable")] if v >= 0][:19]
        palette = colormaps["tab20"].colors
        groups = [(f"{category_names[v]}", category[chosen] == v, palette[k]) for k, v in enumerate(common)]
        rest = ~np.isin(category[chosen], common)
        groups.append(("other / none", rest, (0.6, 0.6, 0.6)))
        for label, mask, colour in groups:
            if mask.any():
                xy = points[chosen[mask]]
                ax.scatter(xy[:, 0], xy[:, 1], color=colour, label=label, **style)
        ax.legend(fontsize=7, markerscale=3, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    else:
        xy = points[chosen]
        ax.scatter(xy[:, 0], xy[:, 1], **style)
    extent = _extent(points[chosen])
    if extent < 1.0:  # the boundary is out of view: say how much of the disk is shown
        ax.text(0.0, 0.0, f"view: |x|, |y| ≤ {extent:.3g} (the disk's radius is 1)", transform=ax.transAxes,
                fontsize=7, color="0.35")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.savefig(path, bbox_inches="tight")


def _extent(points: np.ndarray) -> float:
    """Half-width of a view that shows the points (the 99.5th percentile radius, plus a margin), at most
    the whole disk: a few far outliers do not zoom the picture out again."""
    if not len(points):
        return 1.05
    radius = float(np.quantile(np.linalg.norm(points, axis=1), 0.995))
    return min(1.05, max(radius * 1.1, 1e-3))


def _readable_labels(points: np.ndarray, candidates: np.ndarray, limit: int, extent: float) -> list[int]:
    """Up to ``limit`` of ``candidates`` (in priority order) whose points are at least 8 % of the view
    apart from each other, so their labels do not overprint."""
    chosen: list[int] = []
    for i in candidates:
        if len(chosen) >= limit:
            break
        if all(np.linalg.norm(points[i] - points[j]) > 0.08 * 2 * extent for j in chosen):
            chosen.append(int(i))
    return chosen


def export_embeddings(
    model: Any,
    entity_names: VocabularyLike,
    relation_names: VocabularyLike,
    log_dir: str | os.PathLike,
    *,
    triples: np.ndarray | None = None,
    color_by: str = "degree",
    plot: bool = True,
    max_plot_points: int = 20_000,
    label_top: int = 8,
    max_projector_entities: int = 10_000,
    seed: int = 0,
) -> dict[str, Path]:
    """Write entity and relation embeddings for the TensorBoard projector (and a disk picture).

    Args:
        model: a ``hale_tf.models`` model with ``num_relations = 2R``.
        entity_names, relation_names: the vocabularies (lists in id order, or paths of the vocab TSVs).
        log_dir: the TensorBoard log directory to write into (created if missing).
        triples: optional int ``[M, 3]`` (head, base relation, tail) facts, e.g. the training split:
            they give each entity's degree and main relation (metadata, colours) and pick the curvature
            of the most frequent relation for the ball coordinates and the picture.
        color_by: ``"degree"`` or ``"relation"`` (each entity's most frequent relation); ignored, and the
            points drawn in one colour, without ``triples``.
        plot: write ``poincare_disk.png`` for hyperbolic models.
        max_plot_points: random subsample drawn in the picture (all points are in the TSVs).
        label_top: annotate at most this many highest-degree entities in the picture (fewer when their
            labels would overlap).
        max_projector_entities: at most this many entity rows in the projector files (a seeded random
            sample beyond it, named so in the projector config); the picture uses every entity.
        seed: seed of the subsamples.

    Returns:
        The written files by role (``entities``, ``entities_metadata``, ``entities_ball``,
        ``relations_<table>``, ``relations_metadata``, ``projector_config``, ``poincare_disk``).
    """
    if color_by not in ("degree", "relation"):
        raise ValueError(f"color_by must be 'degree' or 'relation', got {color_by!r}")
    entities = _as_names(entity_names, "entity")
    relations = _as_names(relation_names, "relation")
    num_entities, num_base = int(model.num_entities), len(relations)
    if len(entities) != num_entities:
        raise ValueError(f"{len(entities)} entity names for a model with num_entities={num_entities}")
    if int(model.num_relations) != 2 * num_base:
        raise ValueError(
            f"{num_base} relation names need num_relations={2 * num_base}, got {model.num_relations}"
        )
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    projector_entries: list[dict[str, Any]] = []

    degree = main = None
    if triples is not None:
        degree, main = degree_and_main_relation(triples, num_entities, num_base)

    # -- entities ------------------------------------------------------------------------------------
    vectors = np.asarray(model.entities.embeddings.numpy())
    # The projector's rows: every entity, or a seeded random sample of them (in id order).
    shown = np.arange(num_entities)
    sampled = ""
    if num_entities > max_projector_entities:
        shown = np.sort(np.random.default_rng(seed).choice(num_entities, max_projector_entities, replace=False))
        sampled = f" (sample of {max_projector_entities} of {num_entities})"
    written["entities"] = log_dir / "entities.tsv"
    _write_matrix(written["entities"], vectors[shown])
    header = ["name", "id"] + (["degree", "main_relation"] if degree is not None else [])
    rows = [
        [entities[i], i]
        + ([int(degree[i]), relations[main[i]] if main[i] >= 0 else ""] if degree is not None else [])
        for i in shown
    ]
    written["entities_metadata"] = log_dir / "entities_metadata.tsv"
    _write_table(written["entities_metadata"], header, rows)
    projector_entries.append(
        {
            "name": "entities" + sampled,
            "tensor": "entities.tsv",
            "metadata": "entities_metadata.tsv",
            "shape": (len(shown), vectors.shape[1]),
        }
    )

    hyperbolic = getattr(model, "geometry", "euclidean") == "poincare"
    if hyperbolic:
        curvatures = np.asarray(model.curvature.all_curvatures().numpy(), np.float64)
        if triples is not None and len(triples):
            reference = int(np.bincount(np.asarray(triples)[:, 1], minlength=num_base).argmax())
            c = float(curvatures[reference])
            c_note = f"c = {c:.3g} of the most frequent relation '{relations[reference]}'"
        else:
            c = float(curvatures[:num_base].mean())
            c_note = f"c = {c:.3g} (mean base-relation curvature)"
        # In the model's dtype, so the ball-boundary clamp is the one the model scores with.
        ball = expmap0(tf.constant(vectors), tf.constant(c, vectors.dtype)).numpy()
        written["entities_ball"] = log_dir / "entities_ball.tsv"
        _write_matrix(written["entities_ball"], ball[shown])
        projector_entries.append(
            {
                "name": "entities_poincare_ball" + sampled,
                "tensor": "entities_ball.tsv",
                "metadata": "entities_metadata.tsv",
                "shape": (len(shown), ball.shape[1]),
            }
        )

    # -- relations -----------------------------------------------------------------------------------
    relation_header = ["name", "id", "direction"] + (["curvature"] if hyperbolic else [])
    relation_counts = None
    if triples is not None:
        relation_counts = np.bincount(np.asarray(triples)[:, 1], minlength=num_base)
        relation_header.append("count")
    relation_rows = []
    for rid in range(2 * num_base):
        base = rid % num_base
        row: list[Any] = [
            relations[base] if rid < num_base else f"{relations[base]} (inverse)",
            rid,
            "forward" if rid < num_base else "inverse",
        ]
        if hyperbolic:
            row.append(f"{curvatures[rid]:.6g}")
        if relation_counts is not None:
            row.append(int(relation_counts[base]))
        relation_rows.append(row)
    written["relations_metadata"] = log_dir / "relations_metadata.tsv"
    _write_table(written["relations_metadata"], relation_header, relation_rows)
    for table_name, table in _relation_tables(model).items():
        filename = f"relations_{table_name}.tsv"
        written[f"relations_{table_name}"] = log_dir / filename
        _write_matrix(log_dir / filename, table)
        projector_entries.append(
            {
                "name": f"relations_{table_name}",
                "tensor": filename,
                "metadata": "relations_metadata.tsv",
                "shape": table.shape,
            }
        )

    written["projector_config"] = _write_projector_config(log_dir, projector_entries)

    # -- picture -------------------------------------------------------------------------------------
    if hyperbolic and plot:
        disk = disk_projection(ball, c)
        written["poincare_disk"] = log_dir / "poincare_disk.png"
        title = (
            f"{getattr(model, 'registry_name', type(model).__name__)} entities in the Poincaré disk\n"
            f"exp0 with {c_note}; PCA directions, exact norms; zoomed to the data"
        )
        _plot_disk(
            written["poincare_disk"],
            disk,
            entities,
            title,
            degree=degree if color_by == "degree" else None,
            category=main if color_by == "relation" else None,
            category_names=relations,
            max_points=max_plot_points,
            label_top=label_top,
            seed=seed,
        )
    return written
