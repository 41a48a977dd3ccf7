"""Vocabularies: the sorted entity and relation names of train (or of every split), written as TSV.

A vocabulary travels as one newline-joined string: Beam pickles it and sizes it for its side-input cache
in O(1) objects, whereas a list of 123k strings costs seconds per stage in both.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import apache_beam as beam

from components.transform.read import _Block, _fields
from hale_tf.atomic import atomic_write_text
from hale_tf.data.ids import number_names


def _split_names(text: str) -> list[str]:
    return text.split("\n") if text else []


class _VocabFn(beam.CombineFn):
    """Blocks -> ``(entities, relations)``, each the sorted names joined by newlines (deterministic ids)."""

    def __init__(self, train_only: bool) -> None:
        self._train_only = train_only

    def create_accumulator(self) -> tuple[set[str], set[str]]:
        return set(), set()

    def add_input(self, acc: tuple[set[str], set[str]], block: _Block) -> tuple[set[str], set[str]]:
        if self._train_only and block.split != "train":
            return acc
        fields = _fields(block.text)
        acc[0].update(fields[0::3])
        acc[0].update(fields[2::3])
        acc[1].update(fields[1::3])
        return acc

    def merge_accumulators(self, accs: Iterable[tuple[set[str], set[str]]]) -> tuple[set[str], set[str]]:
        entities: set[str] = set()
        relations: set[str] = set()
        for ent, rel in accs:
            entities |= ent
            relations |= rel
        return entities, relations

    def extract_output(self, acc: tuple[set[str], set[str]]) -> tuple[str, str]:
        # Train alone: hale_tf.data.ids.number_names, the rule load_id_splits numbers train names by too.
        # unseen_policy="keep" sorts the names of every split together, as it always has (its artifacts'
        # ids stay what they were).
        order = number_names if self._train_only else sorted
        return "\n".join(order(acc[0])), "\n".join(order(acc[1]))


def _vocab_sizes(vocab: tuple[str, str]) -> tuple[int, int]:
    return len(_split_names(vocab[0])), len(_split_names(vocab[1]))



def _write_vocabs(vocab: tuple[str, str], out_dir: str) -> tuple[str, str]:
    """Write the vocabularies and pass them on (the statistics step reads them from here, so that every
    output is upstream of that last step: runners that execute only what the last step needs, such as
    Beam 2.77's DaskRunner, still write them)."""
    directory = Path(out_dir) / "vocab"
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in zip(("entities.tsv", "relations.tsv"), vocab, strict=True):
        atomic_write_text(directory / name, text + "\n" if text else "")
    return vocab



def _read_vocab(path: Path) -> list[str]:
    """The names of a written vocabulary file, id order."""
    return _split_names(path.read_text(encoding="utf-8").rstrip("\n"))
