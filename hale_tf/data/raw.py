"""Reading and writing raw triple files (``head<TAB>relation<TAB>tail`` per line, optionally gzipped).

The reader is strict on purpose: a benchmark file that silently loses or mangles a line changes the
results, so every deviation from the format is an error naming the file and the 1-based line.

This module owns the line grammar and its messages for every reader of triple text: :func:`line_error`
(one line), :func:`triple_text` and :func:`split_fields` (a file, or a line-aligned piece of one such as a
Transform chunk), on which :func:`parse_triples` and :func:`read_triples` are built.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import hashlib
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from hale_tf.atomic import atomic_write_bytes
from hale_tf.data.errors import DataFormatError, DatasetNotAvailableError

Triple = tuple[str, str, str]

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = "\ufeff".encode()
_CHUNK = 1 << 22
_FIELD_NAMES = ("head", "relation", "tail")


def read_bytes(path: str | os.PathLike) -> bytes:
    """Return the (decompressed) bytes of ``path``; gzip is detected from the magic bytes, not the name.

    Raises :class:`DatasetNotAvailableError` if the file does not exist and :class:`DataFormatError` if
    the gzip stream is corrupt or truncated (with the line reached before the damage).
    """
    p = Path(path)
    try:
        fh = open(p, "rb")
    except FileNotFoundError:
        raise DatasetNotAvailableError(f"{p}: file not found") from None
    except IsADirectoryError:
        raise DatasetNotAvailableError(f"{p}: is a directory, expected a triple file") from None
    with fh:
        if fh.read(2) != _GZIP_MAGIC:
            fh.seek(0)
            return fh.read()
        fh.seek(0)
        chunks: list[bytes] = []
        try:
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                while chunk := gz.read(_CHUNK):
                    chunks.append(chunk)
        except (OSError, EOFError, zlib.error) as exc:
            # Report where the readable text stopped so the user can see how much of the file is intact.
            # GzipFile.read raises before returning a partly decoded chunk: decode the prefix again.
            line = _readable_prefix(p).count(b"\n") + 1
            raise DataFormatError(p, line, f"corrupt or truncated gzip data ({exc})") from None
        return b"".join(chunks)


def _readable_prefix(path: Path) -> bytes:
    """The bytes a damaged gzip file decodes to before the damage (stream by stream, small pieces)."""
    out: list[bytes] = []
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with open(path, "rb") as fh:
        while piece := fh.read(1 << 16):
            try:
                while piece:
                    out.append(decoder.decompress(piece))
                    piece = decoder.unused_data
                    if decoder.eof:
                        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
            except zlib.error:
                break
    return b"".join(out)


def triple_text(data: bytes, path: str | os.PathLike = "<bytes>", *, first_line: int = 1) -> str:
    """Decode triple lines (UTF-8) and normalise them: CRLF to LF, no final newline, no byte-order mark.

    ``data`` is a whole file or a piece of one that starts at a line start (``first_line`` is that line's
    1-based number, for messages; a byte-order mark is only removed at line 1, where it can occur).
    Invalid UTF-8 raises :class:`DataFormatError` naming the line and column.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataFormatError(
            path, line, f"invalid UTF-8 at column {column} (byte 0x{data[exc.start]:02x}): {exc.reason}"
        ) from None
    # A byte-order mark is an encoding artefact, not part of the first entity's name.
    if first_line == 1 and text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    # The final newline terminates the last line; it does not start a new (blank) one.
    if text.endswith("\n"):
        text = text[:-1]
    return text[:-1] if text.endswith("\r") else text


def line_error(line: str) -> str | None:
    """Why ``line`` (without its newline) is not ``head<TAB>relation<TAB>tail``, or ``None`` if it is.

    The grammar of a triple line, in one place: exactly three tab-separated fields, none empty or blank
    (fields may contain spaces).
    """
    parts = line.split("\t")
    if len(parts) != 3:
        if not line.strip():
            return "blank line (only a single final newline is allowed at the end of the file)"
        hint = " (fields must be separated by tabs, not spaces)" if len(parts) == 1 and " " in line else ""
        return f"expected 3 tab-separated fields (head, relation, tail), found {len(parts)}{hint}: {line!r:.120}"
    empty = [name for name, value in zip(_FIELD_NAMES, parts, strict=True) if not value or value.isspace()]
    if empty:
        return f"empty field{'s' if len(empty) > 1 else ''} ({', '.join(empty)}) in {line!r:.120}"
    return None


def split_fields(text: str, path: str | os.PathLike = "<bytes>", *, first_line: int = 1) -> list[str]:
    """The fields of normalised triple text (:func:`triple_text`), row-major: heads ``[0::3]``, relations
    ``[1::3]``, tails ``[2::3]``.

    Raises :class:`DataFormatError` ``"<path>:<line>: <reason>"`` for the first line that breaks the
    grammar of :func:`line_error`. The check is bulk work in C and NumPy (several times faster than a
    Python loop per line, which matters for YAGO-sized splits and Transform's chunks); only on failure are
    the lines walked to find the bad one.
    """
    fields = text.replace("\n", "\t").split("\t")
    if not _two_tabs_per_line(text) or "" in fields or any(map(str.isspace, fields)):
        for offset, line in enumerate(text.split("\n")):
            reason = line_error(line)
            if reason:
                raise DataFormatError(path, first_line + offset, reason)
    return fields


def _two_tabs_per_line(text: str) -> bool:
    """Whether every line of ``text`` has exactly two tabs: its separators read tab, tab, newline, ..., tab, tab."""
    raw = np.frombuffer(text.encode("utf-8"), np.uint8)  # tab/newline bytes never occur inside UTF-8 characters
    separators = raw[(raw == 9) | (raw == 10)]
    return (
        len(separators) % 3 == 2
        and bool(np.all(separators[2::3] == 10))
        and bool(np.all(separators[0::3] == 9))
        and bool(np.all(separators[1::3] == 9))
    )


def parse_triples(
    data: bytes, path: str | os.PathLike = "<bytes>", *, allow_empty: bool = False
) -> list[Triple]:
    """Parse UTF-8 triple text; ``path`` is only used in error messages. See :func:`read_triples`."""
    text = triple_text(data, path)
    if not data.removeprefix(_UTF8_BOM):
        if allow_empty:
            return []
        raise DataFormatError(path, 1, "empty file: expected lines 'head<TAB>relation<TAB>tail'")
    with _gc_paused():
        fields = split_fields(text, path)
        # Entities repeat many times; one string object per name keeps YAGO-sized splits small in RAM.
        canonical: dict[str, str] = {}
        fields = list(map(canonical.setdefault, fields, fields))
        return list(zip(fields[0::3], fields[1::3], fields[2::3], strict=True))


@contextlib.contextmanager
def _gc_paused():
    # Building millions of tuples triggers a cyclic-GC pass every few hundred allocations, each scanning
    # the growing list: pausing the collector (nothing here can form a cycle) halves the parse time.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_triples(path: str | os.PathLike, *, allow_empty: bool = False) -> list[Triple]:
    """Read a triple file (``.txt``/``.tsv``, optionally gzipped) into a list of string triples.

    Lines are split on ``"\\t"`` only (fields may contain spaces), a trailing ``"\\r"`` is removed (CRLF
    files), and identifiers stay strings (``"00260881"`` keeps its zeros). Nothing is skipped silently:
    a blank line, a line without exactly three non-empty fields, or invalid UTF-8 raises
    :class:`DataFormatError` with ``"<path>:<line>: "``; only one final newline is allowed. An empty
    file is an error unless ``allow_empty``; a missing file raises :class:`DatasetNotAvailableError`.
    """
    return parse_triples(read_bytes(path), path, allow_empty=allow_empty)


def _validate_and_format(path: str | os.PathLike, triples: Iterable[Triple]) -> str:
    lines: list[str] = []
    append = lines.append
    for number, triple in enumerate(triples, 1):
        try:
            h, r, t = triple
        except (TypeError, ValueError):
            raise DataFormatError(
                path, number, f"expected a (head, relation, tail) triple, got {triple!r:.80}"
            ) from None
        for name, value in zip(_FIELD_NAMES, (h, r, t), strict=True):
            if type(value) is not str:
                raise DataFormatError(path, number, f"{name} must be a str, got {type(value).__name__}")
            if not value or value.isspace() or "\t" in value or "\n" in value or "\r" in value:
                raise DataFormatError(
                    path, number, f"{name} {value!r:.80} is empty or contains a tab/newline"
                )
        append(f"{h}\t{r}\t{t}\n")
    return "".join(lines)


def write_triples(path: str | os.PathLike, triples: Iterable[Triple], *, compresslevel: int = 6) -> None:
    """Write triples as ``head<TAB>relation<TAB>tail`` lines, atomically; gzip if the name ends in ``.gz``.

    Every field must be a non-empty ``str`` without tab or newline (else :class:`DataFormatError` naming
    the triple's 1-based position), so that :func:`read_triples` reads back exactly what was written.
    """
    text = _validate_and_format(path, triples)
    level = compresslevel if os.fspath(path).endswith(".gz") else None
    atomic_write_bytes(path, text.encode("utf-8"), gzip_level=level)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (as stored, i.e. of the ``.gz`` itself for gzipped files)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def git_blob_sha1(path: str | os.PathLike) -> str:
    """The git blob id of a file (``sha1("blob <size>\\0" + bytes)``), to check files named by blob in git."""
    p = Path(path)
    with open(p, "rb") as fh:
        return git_blob_sha1_stream(fh, p.stat().st_size)


def git_blob_sha1_stream(stream: BinaryIO, size: int) -> str:
    """The git blob id of the ``size`` bytes that ``stream`` yields from its current position."""
    digest = hashlib.sha1(f"blob {size}\0".encode())
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()
