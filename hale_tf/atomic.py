"""Atomic file writes: a temporary file in the target's folder, flushed and fsynced, then renamed.

A crash therefore leaves either the old file or the complete new one, never a half-written file that a
later run would trust. The file gets the permissions of any new file (``0666`` less the umask), not
``mkstemp``'s private ``0600``. Every writer of results, indexes, configs and data files in the project
goes through here; a whole directory (a component's artifact, a served model) is filled under a hidden
name and published with :func:`publish_directory`, one rename that never replaces an existing one;
:func:`exchange_directories` swaps a new copy for a published one in one step where the kernel allows it;
:func:`replace_directory` replaces a stale copy (downloads, generated datasets) via a trash path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import gzip
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_json", "atomic_write_text", "current_umask",
           "exchange_directories", "fsync_directory", "publish_directory", "replace_directory", "strict_json"]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing (``"w"`` text UTF-8, ``"wb"`` binary); on a clean
    exit it is fsynced and renamed onto ``path``, on an exception it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; a written file follows the umask
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename is None:  # a failed write or flush: name the file
            raise OSError(err.errno, err.strerror or str(err), str(target)) from err
        raise


def current_umask() -> int:
    """The process umask, read without changing it where the platform allows (``/proc/self/status``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but only briefly wrong)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_open(path, "w") as handle:
        handle.write(text)
    return Path(path)


def strict_json(obj: Any) -> Any:
    """``obj`` with NaN/±Inf floats as ``None`` (and tuples as lists), so the JSON is strict (``NaN`` is not JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` atomically as indented, key-sorted, strict JSON (NaN/Inf as null; values JSON cannot
    hold, such as paths, as their ``str``); returns the path."""
    text = json.dumps(strict_json(obj), indent=2, sort_keys=True, allow_nan=False, default=str)
    return atomic_write_text(path, text + "\n")


def fsync_directory(directory: str | os.PathLike) -> None:
    """Make a rename inside ``directory`` durable where the platform allows it (best effort)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def publish_directory(filled: str | os.PathLike, final: str | os.PathLike) -> bool:
    """Rename the finished directory ``filled`` (a sibling of ``final`` on the same filesystem) to ``final`` in
    one atomic step: readers see no directory or the complete one, never a half-filled one.

    Returns False, leaving ``filled`` in place, when ``final`` already exists and is not empty (another
    writer published first; the caller decides whether to keep it or to choose another name).
    """
    try:
        os.rename(filled, final)
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        return False
    fsync_directory(Path(final).parent)
    return True


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2  # linux/fs.h


@functools.cache
def _renameat2() -> Any:
    """libc's ``renameat2`` (glibc >= 2.28), or None where the C library lacks it."""
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def exchange_directories(new: str | os.PathLike, published: str | os.PathLike) -> bool:
    """Swap two existing sibling directories in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Replacing a published directory otherwise takes two renames (old aside, new in) with a moment in
    which ``published`` does not exist; a concurrent reader then sees no file. After an exchange ``new``
    holds the old copy, for the caller to delete. Returns False, changing nothing, where the kernel, the
    file system or the C library cannot exchange (the caller falls back to two renames) or where either
    directory is gone (another writer moved it).
    """
    function = _renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(published), _RENAME_EXCHANGE) == 0:
        fsync_directory(Path(published).parent)
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOENT, errno.EXDEV, errno.EPERM, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), os.fspath(published))


def atomic_write_bytes(path: str | os.PathLike, payload: bytes, *, gzip_level: int | None = None) -> Path:
    """Write ``payload`` to ``path`` atomically; returns the path.

    With ``gzip_level`` the payload is gzip-compressed deterministically (no file name, mtime 0), like the
    offline dataset mirror, so equal content gives byte-identical files and stable fingerprints.
    """
    with atomic_open(path, "wb") as handle:
        if gzip_level is None:
            handle.write(payload)
        else:
            with gzip.GzipFile(filename="", mode="wb", fileobj=handle, compresslevel=gzip_level, mtime=0) as gz:
                gz.write(payload)
    return Path(path)


def replace_directory(directory: str | os.PathLike, final: str | os.PathLike, trash: str | os.PathLike) -> Path:
    """Move the completed ``directory`` to ``final`` in one rename; returns ``final``.

    Whatever is at ``final`` (an incomplete or stale copy) is first renamed to ``trash``, a path in a scratch
    folder on the same filesystem that the caller deletes afterwards, so readers see the old or the new
    directory, never a mix. All three paths must be on one filesystem.
    """
    final = Path(final)
    if final.exists() or final.is_symlink():
        os.replace(final, trash)
    os.replace(directory, final)
    return final
