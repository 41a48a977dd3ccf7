"""The pipeline root's lock: one run at a time per ``--pipeline_root``."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from components.artifact import ComponentError

__all__ = ["RootLockedError", "root_lock"]

logger = logging.getLogger(__name__)


class RootLockedError(ComponentError):
    """Another live run holds the pipeline root's lock."""


def _lock_holder(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        return "unknown"


@contextlib.contextmanager
def root_lock(root: str | os.PathLike[str], wait_s: float = 5.0) -> Iterator[None]:
    """Hold ``<root>/.lock`` (an exclusive ``flock``, released by the kernel even when the process is killed)
    for the duration of the block; the holder's pid is written into the file.

    Waits up to ``wait_s`` seconds for another run to finish, then raises :class:`RootLockedError` naming the
    process that holds it. Two runs on one root would otherwise share checkpoints and overwrite each other's
    summary.
    """
    import fcntl

    path = Path(root) / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + wait_s
        warned = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _lock_holder(path)
                if time.monotonic() >= deadline:
                    raise RootLockedError(
                        f"pipeline root {root} is in use by another run (pid {holder}); wait for it to finish "
                        f"or use another --pipeline_root") from None
                if not warned:
                    logger.warning("pipeline root %s is in use by pid %s; waiting up to %.0f s", root, holder, wait_s)
                    warned = True
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)
