"""Link prediction from an exported hale-tf SavedModel (TensorFlow only; hale_tf is not imported).

Usage:
  python -m pipelines.predict --model=PATH --head=NAME --relation=NAME [--k=10]
  python -m pipelines.predict --model=PATH --tail=NAME --relation=NAME [--k=10]
  python -m pipelines.predict --model=PATH --queries=FILE.tsv [--k=10]

PATH is an export directory (holding saved_model.pb), a directory of numeric versions (the highest
is used, as TensorFlow Serving does), a pipeline root (its summary.json names the exported model) or a
summary.json. Facts the model was exported with (training) are left out of the answers by default, as
in the SavedModel examples (--noexclude_known keeps them). An unknown name gets a "did you mean".

Output (--format): table (default), tsv (header head, relation, tail, rank, score, predicted; one value
per column; the predicted column says which of head/tail holds the answer) or json (one object per query).

Queries file: UTF-8 (a leading BOM is ignored), one query per line, tab-separated; blank lines and lines
starting with '#' skipped.
  head<TAB>relation              tail query (?, the missing tail)
  head<TAB>relation<TAB>?        the same, explicit
  ?<TAB>relation<TAB>tail        head query
Exit status: 0 success; 1 a query named an unknown entity/relation, or the model could not be loaded;
2 invalid flags or a malformed queries file. Errors are one line on stderr.
"""

from __future__ import annotations

import difflib
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Register the CLI flags (only when run as a program: importing this module defines none, so it
    cannot collide with flags of other pipeline modules imported in the same process)."""
    flags.DEFINE_string("model", None, "SavedModel directory, a directory of numeric versions, a pipeline root "
                        "or its summary.json.")
    flags.DEFINE_string("head", None, "Head entity name: predict tails of (head, relation, ?).")
    flags.DEFINE_string("tail", None, "Tail entity name: predict heads of (?, relation, tail).")
    flags.DEFINE_string("relation", None, "Relation name.")
    flags.DEFINE_string("queries", None, "TSV file of queries (see the module help for the format).")
    flags.DEFINE_integer("k", 10, "Number of ranked answers per query (clamped to the entity count).")
    flags.DEFINE_bool("exclude_known", EXCLUDE_KNOWN, "Leave out facts known at export time (filtered "
                      "predictions); --noexclude_known keeps them.")
    flags.DEFINE_enum("format", "table", ["table", "tsv", "json"], "Output format.")
    flags.DEFINE_integer("batch_size", 1024, "Queries sent to the model per call.")


PLACEHOLDER = "?"
#: The default of ``exclude_known`` everywhere (CLI, :func:`run`, the README's examples): a prediction
#: that repeats a training fact tells the user nothing new.
EXCLUDE_KNOWN = True
TSV_HEADER = ("head", "relation", "tail", "rank", "score", "predicted")


class PredictError(Exception):
    """A user-facing error: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Query:
    """One query: ``direction`` is "tail" for (entity, relation, ?) and "head" for (?, relation, entity)."""

    direction: str
    entity: str
    relation: str
    source: str = ""  # "file:line" for file queries, for error messages

    def label(self) -> str:
        if self.direction == "tail":
            return f"({self.entity}, {self.relation}, ?)"
        return f"(?, {self.relation}, {self.entity})"


@dataclass
class Answer:
    query: Query
    entities: list[str]
    scores: list[float]
    error: str | None = None


def parse_queries(lines: Sequence[str], source: str = "queries") -> list[Query]:
    """Parse the queries-file format documented in the module help (raises PredictError, code 2)."""
    queries = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        where = f"{source}:{number}"
        if len(fields) == 2:
            fields.append(PLACEHOLDER)
        if len(fields) != 3 or any(not f for f in fields):
            raise PredictError(
                f"{where}: expected 'head<TAB>relation', 'head<TAB>relation<TAB>?' or "
                f"'?<TAB>relation<TAB>tail', got {line!r}",
                code=2,
            )
        head, relation, tail = fields
        if relation == PLACEHOLDER or (head == PLACEHOLDER) == (tail == PLACEHOLDER):
            raise PredictError(f"{where}: exactly one of head and tail must be '?', got {line!r}", code=2)
        if tail == PLACEHOLDER:
            queries.append(Query("tail", head, relation, where))
        else:
            queries.append(Query("head", tail, relation, where))
    return queries


def _from_summary(summary_path: Path) -> Path:
    """The exported model a pipeline's ``summary.json`` names."""
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PredictError(f"cannot read {summary_path}: {error}") from None
    saved = summary.get("saved_model") if isinstance(summary, dict) else None
    if not saved:
        raise PredictError(f"{summary_path}: the pipeline exported no model (not blessed; see its metrics); "
                           "rerun the pipeline without --min_mrr or with a longer --time_budget")
    return Path(saved)


def resolve_model_dir(path: str) -> Path:
    """The SavedModel directory for ``path``: itself, its highest numeric version subdirectory, or the
    model a pipeline root's ``summary.json`` (or that file itself) names."""
    model_dir = Path(path).expanduser()
    if model_dir.is_file() and model_dir.suffix == ".json":
        model_dir = _from_summary(model_dir)
    elif model_dir.is_dir() and (model_dir / "summary.json").is_file() and not (model_dir / "saved_model.pb").exists():
        model_dir = _from_summary(model_dir / "summary.json")
    if not model_dir.is_dir():
        raise PredictError(f"model directory not found: {model_dir if model_dir != Path(path) else path}")
    if (model_dir / "saved_model.pb").is_file():
        return model_dir
    versions = [p for p in model_dir.iterdir() if p.name.isdigit() and (p / "saved_model.pb").is_file()]
    if not versions:
        raise PredictError(f"not a SavedModel directory (no saved_model.pb, no numeric versions): {path}")
    return max(versions, key=lambda p: int(p.name))


def did_you_mean(name: str, known: Sequence[str]) -> str:
    """``" (did you mean 'person10', 'person100'?)"`` for the closest known names, "" when none is close
    (case is ignored when matching, so 'Person10' finds 'person10')."""
    lowered: dict[str, str] = {}
    for candidate in known:
        lowered.setdefault(candidate.lower(), candidate)
    close = [name.lower()] if name.lower() in lowered else difflib.get_close_matches(
        name.lower(), list(lowered), n=3, cutoff=0.6)  # a case slip has one answer
    return f" (did you mean {', '.join(repr(lowered[c]) for c in close)}?)" if close else ""


class Predictor:
    """A loaded export: runs batched queries through its ``topk_tails`` / ``topk_heads`` signatures."""

    def __init__(self, model_dir: Path) -> None:
        from pipelines.console import quiet_native_stderr, set_quiet_environment

        set_quiet_environment()
        with quiet_native_stderr(0):  # TensorFlow's and CUDA's C++ start-up lines
            import tensorflow as tf
        from absl import logging

        logging.set_verbosity(logging.ERROR)  # loading logs absl warnings that are noise for a CLI
        self._tf = tf
        self.model_dir = model_dir
        try:
            self._loaded = tf.saved_model.load(str(model_dir))
        except Exception as error:  # TF raises many types here; the user needs one line, not a trace
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise PredictError(f"cannot load SavedModel {model_dir}: {first}") from None
        missing = [s for s in ("topk_tails", "topk_heads") if s not in self._loaded.signatures]
        if missing:
            raise PredictError(f"{model_dir} is not a hale-tf export (no signature {', '.join(missing)})")
        self._entities: list[str] | None = None
        self._relations: list[str] | None = None

    def metadata(self) -> dict[str, Any]:
        path = self.model_dir / "assets" / "hale_tf_export.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def _unknown(self, query: Query) -> str:
        """Why a query was not found (names are only decoded from the model when one is missing)."""
        if self._entities is None:
            self._entities = [n.decode("utf-8") for n in self._loaded.entity_names.numpy()]
            self._relations = [n.decode("utf-8") for n in self._loaded.relation_names.numpy()]
        role = "head" if query.direction == "tail" else "tail"
        problems = []
        if query.entity not in set(self._entities):
            problems.append(f"unknown {role} entity {query.entity!r}{did_you_mean(query.entity, self._entities)}")
        if query.relation not in set(self._relations):
            problems.append(f"unknown relation {query.relation!r}{did_you_mean(query.relation, self._relations)}")
        return "; ".join(problems) or "not found"

    def predict(
        self, queries: Sequence[Query], k: int, exclude_known: bool, batch_size: int = 1024
    ) -> list[Answer]:
        """Answers in query order; queries naming unknown entities/relations get ``error`` set."""
        tf = self._tf
        answers: dict[int, Answer] = {}
        for direction, signature, arg in (("tail", "topk_tails", "head"), ("head", "topk_heads", "tail")):
            index = [i for i, q in enumerate(queries) if q.direction == direction]
            for start in range(0, len(index), batch_size):
                part = index[start : start + batch_size]
                out = self._loaded.signatures[signature](
                    **{arg: tf.constant([queries[i].entity for i in part])},
                    relation=tf.constant([queries[i].relation for i in part]),
                    k=tf.constant(k, tf.int32),
                    exclude_known=tf.constant(exclude_known),
                )
                names, scores, found = out["entities"].numpy(), out["scores"].numpy(), out["found"].numpy()
                for row, i in enumerate(part):
                    if not found[row]:
                        answers[i] = Answer(queries[i], [], [], self._unknown(queries[i]))
                        continue
                    keep = [j for j, name in enumerate(names[row]) if name]  # "" marks no candidate left
                    answers[i] = Answer(
                        queries[i],
                        [names[row][j].decode("utf-8") for j in keep],
                        [float(scores[row][j]) for j in keep],
                    )
        return [answers[i] for i in range(len(queries))]


def format_answers(answers: Sequence[Answer], fmt: str, out: TextIO) -> None:
    """Print the successful answers as aligned tables, TSV rows or JSON lines."""
    first = True
    for answer in answers:
        if answer.error:
            continue
        query = answer.query
        if fmt == "json":
            record = {
                "direction": query.direction,
                "entity": query.entity,
                "relation": query.relation,
                "answers": [
                    {"rank": i + 1, "entity": e, "score": s}
                    for i, (e, s) in enumerate(zip(answer.entities, answer.scores, strict=True))
                ],
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            continue
        if fmt == "tsv":
            if first:
                out.write("\t".join(TSV_HEADER) + "\n")
            for i, (entity, score) in enumerate(zip(answer.entities, answer.scores, strict=True), start=1):
                head, tail = (query.entity, entity) if query.direction == "tail" else (entity, query.entity)
                cells = [head, query.relation, tail, str(i), f"{score:.6g}", query.direction]
                out.write("\t".join(_tsv_cell(c) for c in cells) + "\n")
            first = False
            continue
        if not first:
            out.write("\n")
        first = False
        role = "tails" if query.direction == "tail" else "heads"
        out.write(f"{query.label()}  top {len(answer.entities)} {role}\n")
        width = max([len("entity")] + [len(e) for e in answer.entities])
        rank_width = max(4, len(str(len(answer.entities))))
        out.write(f"{'rank':>{rank_width}}  {'entity':<{width}}  {'score':>10}\n")
        for i, (entity, score) in enumerate(zip(answer.entities, answer.scores, strict=True), start=1):
            shown = f"{score:10.4f}" if math.isfinite(score) else f"{score:>10}"
            out.write(f"{i:>{rank_width}}  {entity:<{width}}  {shown}\n")


def _tsv_cell(value: str) -> str:
    """A name as one TSV cell: a tab or newline inside it would shift the columns."""
    return value.replace("\t", " ").replace("\n", " ").replace("\r", " ")


def run(
    model: str | None,
    *,
    head: str | None = None,
    tail: str | None = None,
    relation: str | None = None,
    queries_file: str | None = None,
    k: int = 10,
    exclude_known: bool = EXCLUDE_KNOWN,
    fmt: str = "table",
    batch_size: int = 1024,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """The CLI without flag parsing: returns the exit status, prints errors as single lines."""
    try:
        queries = _queries_from_args(head, tail, relation, queries_file)
        if not model:
            raise PredictError("--model is required", code=2)
        if k < 1:
            raise PredictError(f"--k must be >= 1, got {k}", code=2)
        if k > K_MAX:  # the signatures take k as int32: a larger k would wrap to a negative one
            raise PredictError(f"--k must be <= {K_MAX} (an int32), got {k}", code=2)
        if batch_size < 1:
            raise PredictError(f"--batch_size must be >= 1, got {batch_size}", code=2)
        predictor = Predictor(resolve_model_dir(model))
        answers = predictor.predict(queries, k, exclude_known, batch_size)
    except PredictError as error:
        err.write(f"predict: error: {error}\n")
        return error.code
    format_answers(answers, fmt, out)
    failures = [a for a in answers if a.error]
    for answer in failures:
        where = f"{answer.query.source}: " if answer.query.source else ""
        err.write(f"predict: error: {where}{answer.error}\n")
    return 1 if failures else 0


#: The largest ``--k``: the serving signatures take k as an int32 (it is clamped to the entity count there).
K_MAX = 2**31 - 1


def _queries_from_args(
    head: str | None, tail: str | None, relation: str | None, queries_file: str | None
) -> list[Query]:
    if queries_file:
        if head or tail or relation:
            raise PredictError("give either --queries or --head/--tail with --relation, not both", code=2)
        try:
            with open(queries_file, encoding="utf-8-sig") as handle:  # a BOM is not part of the first name
                lines = handle.readlines()
        except (OSError, UnicodeDecodeError) as error:
            raise PredictError(f"cannot read queries file {queries_file}: {error}", code=2) from None
        queries = parse_queries(lines, source=queries_file)
        if not queries:
            raise PredictError(f"no queries in {queries_file}", code=2)
        return queries
    if bool(head) == bool(tail):
        raise PredictError("give exactly one of --head and --tail (or --queries=FILE)", code=2)
    if not relation:
        raise PredictError("--relation is required with --head/--tail", code=2)
    return [Query("tail", head, relation) if head else Query("head", tail, relation)]


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        sys.stderr.write(f"predict: error: unexpected arguments: {' '.join(argv[1:])}\n")
        raise SystemExit(2)
    raise SystemExit(
        run(
            FLAGS.model,
            head=FLAGS.head,
            tail=FLAGS.tail,
            relation=FLAGS.relation,
            queries_file=FLAGS.queries,
            k=FLAGS.k,
            exclude_known=FLAGS.exclude_known,
            fmt=FLAGS.format,
            batch_size=FLAGS.batch_size,
        )
    )


def entrypoint() -> None:
    define_flags()
    try:
        app.run(main)
    except BrokenPipeError:  # the reader of stdout went away (| head): no traceback
        from pipelines.console import silence_broken_pipe

        silence_broken_pipe()
        sys.exit(0)


if __name__ == "__main__":
    entrypoint()
