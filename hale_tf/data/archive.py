"""Safe extraction of downloaded dataset archives (tar with any compression, zip).

Members are written by this module, never by ``extractall``, so every check applies to every byte written:
absolute paths, ``..`` components, links leading outside the target, device/FIFO members, zip symlinks and
decompression bombs are refused with :class:`~hale_tf.data.errors.UnsafeArchiveError`.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath

from hale_tf.data.errors import UnsafeArchiveError

__all__ = ["MAX_EXTRACT_BYTES", "extract_archive"]

#: Upper bound on the bytes an archive may expand to (guards against decompression bombs).
MAX_EXTRACT_BYTES = 8 << 30


def _member_path(name: str, archive: Path) -> PurePosixPath:
    """A member name as a safe relative path; absolute paths, drives and ``..`` are rejected."""
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or PureWindowsPath(name).drive or ".." in posix.parts:
        raise UnsafeArchiveError(
            f"{archive}: refusing member {name!r}: it points outside the extraction directory"
        )
    parts = [p for p in posix.parts if p not in ("", ".")]
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except (ValueError, RuntimeError, OSError):
        # RuntimeError/OSError: a symlink loop planted by earlier members (Python < 3.13 / >= 3.13).
        return False
    return True


def _copy_stream(src, dest: Path, budget: list[int], archive: Path, member: str) -> None:
    if dest.is_symlink():
        dest.unlink()  # never write through a link planted by an earlier member
    with open(dest, "wb") as out:
        while chunk := src.read(1 << 20):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise UnsafeArchiveError(
                    f"{archive}: expands beyond {MAX_EXTRACT_BYTES:,} bytes at {member!r}"
                )
            out.write(chunk)


def _refuse(archive: Path, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{archive}: refusing member {member!r}: {why}")


def _destination(archive: Path, root: Path, name: str, is_dir: bool) -> Path | None:
    """Where a member goes, or ``None`` for the archive's own root folder (``./``)."""
    rel = _member_path(name, archive)
    if rel == PurePosixPath("."):
        if is_dir:
            return None
        raise _refuse(archive, name, "a file without a name")
    dest = root / rel
    # Resolving the parent catches a folder that is (through an earlier symlink member) outside root.
    if not _inside(dest.parent, root):
        raise _refuse(archive, name, "its folder leads outside the extraction directory")
    dest.parent.mkdir(parents=True, exist_ok=True)
    return dest


def _extract_tar(src: Path, root: Path, budget: list[int]) -> None:
    with tarfile.open(src, "r:*") as tar:
        for member in tar:
            dest = _destination(src, root, member.name, member.isdir())
            if dest is None:
                continue
            if member.isdir():
                dest.mkdir(exist_ok=True)
            elif member.isfile():
                fh = tar.extractfile(member)
                assert fh is not None  # regular members always have a file object
                with fh:
                    _copy_stream(fh, dest, budget, src, member.name)
            elif member.issym():
                link = member.linkname
                if os.path.isabs(link) or not _inside(dest.parent / link, root):
                    raise _refuse(
                        src, member.name, f"symlink to {link!r} leads outside the extraction directory"
                    )
                if dest.is_symlink() or dest.exists():
                    dest.unlink()
                os.symlink(link, dest)
            elif member.islnk():
                # A hard link names another member: copy that already-checked file instead of linking.
                origin = root / _member_path(member.linkname, src)
                if not _inside(origin, root) or not origin.is_file():
                    raise _refuse(
                        src, member.name, f"hard link to {member.linkname!r}, not an extracted file"
                    )
                with open(origin, "rb") as fh:
                    _copy_stream(fh, dest, budget, src, member.name)
            else:
                raise _refuse(src, member.name, "only files, folders and links are allowed")


def _extract_zip(src: Path, root: Path, budget: list[int]) -> None:
    with zipfile.ZipFile(src) as zf:
        for info in zf.infolist():
            if stat.S_ISLNK(info.external_attr >> 16):
                raise _refuse(src, info.filename, "symlinks are not allowed in zip archives")
            dest = _destination(src, root, info.filename, info.is_dir())
            if dest is None:
                continue
            if info.is_dir():
                dest.mkdir(exist_ok=True)
                continue
            with zf.open(info) as fh:
                _copy_stream(fh, dest, budget, src, info.filename)


def extract_archive(archive: str | os.PathLike, target: str | os.PathLike) -> None:
    """Extract a tar (any compression) or zip archive into ``target``, refusing anything unsafe.

    Rejected with :class:`UnsafeArchiveError`: absolute member paths, ``..`` components, links whose
    target lies outside ``target``, device/FIFO members, zip symlinks, and archives that expand beyond
    :data:`MAX_EXTRACT_BYTES`. Files are written by this function (not ``extractall``), so the checks
    apply to every byte written. On error, ``target`` may hold a partial tree: extract into a
    temporary directory and delete it on failure (as :func:`download_dataset` does).
    """
    src, root = Path(archive), Path(target)
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    budget = [MAX_EXTRACT_BYTES]
    if tarfile.is_tarfile(src):
        _extract_tar(src, root, budget)
    elif zipfile.is_zipfile(src):
        _extract_zip(src, root, budget)
    else:
        raise UnsafeArchiveError(f"{src}: not a tar or zip archive")
