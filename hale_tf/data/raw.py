"""Reading and writing raw triple files (``head<TAB>relation<TAB>tail`` per line, optionally gzipped).

The reader is strict on purpose: a benchmark file that silently loses or mangles a line changes the
results, so every deviation from the format is an error naming the file and the 1-based line.
"""

from __future__ import annotations

import contextlib
import gc
import gzip
import hashlib
import operator
import os
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path

from hale_tf.data.errors import DataFormatError, DatasetNotAvailableError

Triple = tuple[str, str, str]

_GZIP_MAGIC = b"\x1f\x8b"
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


def parse_triples(
    data: bytes, path: str | os.PathLike = "<bytes>", *, allow_empty: bool = False
) -> list[Triple]:
    """Parse UTF-8 triple text; ``path`` is only used in error messages. See :func:`read_triples`."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataFormatError(
            path, line, f"invalid UTF-8 at column {column} (byte 0x{data[exc.start]:02x}): {exc.reason}"
        ) from None
    # A byte-order mark is an encoding artefact, not part of the first entity's name.
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text:
        if allow_empty:
            return []
        raise DataFormatError(path, 1, "empty file: expected lines 'head<TAB>relation<TAB>tail'")
    # The final newline terminates the last line; it does not start a new (blank) one.
    body = text[:-1] if text.endswith("\n") else text
    with _gc_paused():
        fast = _parse_well_formed(body)
    if fast is not None:
        return fast

    # Slow path, reached only when something is wrong: walk the lines to name the first bad one.
    lines = body.split("\n")
    triples: list[Triple] = []
    append = triples.append
    canonical: dict[str, str] = {}
    intern = canonical.setdefault
    for number, line in enumerate(lines, 1):
        if line.endswith("\r"):
            line = line[:-1]
        parts = line.split("\t")
        if len(parts) != 3:
            raise DataFormatError(path, number, _field_count_message(line, parts))
        h, r, t = parts
        if not h or not r or not t or h.isspace() or r.isspace() or t.isspace():
            empty = [name for name, value in zip(_FIELD_NAMES, parts, strict=True) if not value.strip()]
            raise DataFormatError(path, number, f"empty {' and '.join(empty)} field in {line!r:.120}")
        append((intern(h, h), intern(r, r), intern(t, t)))
    return triples


_count_tabs = operator.methodcaller("count", "\t")


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


def _parse_well_formed(body: str) -> list[Triple] | None:
    """Parse ``body`` with C-level bulk operations, or return ``None`` if any line is malformed.

    About five times faster than a Python loop per line (which matters for YAGO-sized splits); the
    checks are the same as the slow path's, which then finds and reports the first bad line.
    """
    if "\r" in body:
        body = body.replace("\r\n", "\n")
        if body.endswith("\r"):
            body = body[:-1]
    lines = body.split("\n")
    if set(map(_count_tabs, lines)) != {2}:
        return None
    fields = body.replace("\n", "\t").split("\t")
    if "" in fields or any(map(str.isspace, fields)):
        return None
    # Entities repeat many times; one string object per name keeps YAGO-sized splits small in RAM.
    canonical: dict[str, str] = {}
    fields = list(map(canonical.setdefault, fields, fields))
    return list(zip(fields[0::3], fields[1::3], fields[2::3], strict=True))


def _field_count_message(line: str, parts: list[str]) -> str:
    if not line.strip():
        return "blank line (only a single final newline is allowed at the end of the file)"
    hint = " (fields must be separated by tabs, not spaces)" if len(parts) == 1 and " " in line else ""
    return f"expected 3 tab-separated fields (head, relation, tail), found {len(parts)}{hint}: {line!r:.120}"


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


def atomic_write_bytes(path: str | os.PathLike, payload: bytes, *, gzip_level: int | None = None) -> None:
    """Write ``payload`` to ``path`` via a temporary file in the same directory and ``os.replace``.

    A reader (or a crashed writer) never sees a half-written file under the final name. With
    ``gzip_level`` the payload is gzip-compressed deterministically (no file name, mtime 0), like the
    offline mirror, so equal content gives byte-identical files and stable fingerprints.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if gzip_level is None:
                fh.write(payload)
            else:
                with gzip.GzipFile(
                    filename="", mode="wb", fileobj=fh, compresslevel=gzip_level, mtime=0
                ) as gz:
                    gz.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600; data files are meant to be shared read-only
        os.replace(tmp_name, target)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise


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
    digest = hashlib.sha1(f"blob {p.stat().st_size}\0".encode())
    with open(p, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
