"""Reading: split files -> line-aligned byte ranges (chunks) -> validated text blocks.

A chunk is a byte range of a few MiB ending at a line break, so Beam distributes the reading over workers
and every line number stays known; a block is a chunk's validated lines (one ``str``, cheap to pickle).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from typing import NamedTuple

from components.transform.errors import _fail
from hale_tf.data.errors import DataFormatError
from hale_tf.data.raw import split_fields, triple_text


class _Chunk(NamedTuple):
    split: str
    path: str
    index: int  # position of the chunk in its file
    start: int  # byte range [start, end), ending at a line break
    end: int
    first_line: int  # 1-based line number of the chunk's first line


class _Block(NamedTuple):
    split: str
    path: str
    index: int
    first_line: int
    num_lines: int
    text: str  # validated lines joined by "\n": one str pickles and sizes far faster than 3 lists of names


def _plan_chunks(item: tuple[str, str], chunk_bytes: int) -> Iterator[_Chunk]:
    """Cut a split file into line-aligned byte ranges and number their first lines."""
    split, path = item
    size = os.path.getsize(path)
    if size == 0:
        _fail(path, 1, f"empty {split} split: expected lines 'head<TAB>relation<TAB>tail'")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        start, line, index = 0, 1, 0
        while start < size:
            end = min(start + chunk_bytes, size)
            if end < size:
                newline = mm.find(b"\n", end - 1)
                end = size if newline < 0 else newline + 1
            yield _Chunk(split, path, index, start, end, line)
            line += mm[start:end].count(b"\n")
            start, index = end, index + 1


def _read_chunk(chunk: _Chunk) -> Iterator[_Block]:
    """Read and validate one byte range (hale_tf.data.raw's line grammar); any malformed line fails with file:line."""
    with open(chunk.path, "rb") as f:
        f.seek(chunk.start)
        data = f.read(chunk.end - chunk.start)
    try:
        text = triple_text(data, chunk.path, first_line=chunk.first_line)
        split_fields(text, chunk.path, first_line=chunk.first_line)
    except DataFormatError as exc:
        _fail(exc.path, exc.line, exc.reason)
    yield _Block(chunk.split, chunk.path, chunk.index, chunk.first_line, text.count("\n") + 1, text)


def _fields(text: str) -> list[str]:
    """Fields of a validated block, row-major: heads ``[0::3]``, relations ``[1::3]``, tails ``[2::3]``."""
    return text.replace("\n", "\t").split("\t")
