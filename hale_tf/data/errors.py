"""Error classes of the dataset layer.

Every error derives from :class:`HaleDataError`, itself a ``ValueError``, so a command-line entry point
can catch the one base class and print ``str(e)``: each message is a single human-readable line that
names the dataset, file or URL involved and, where it helps, what to do next.
"""

from __future__ import annotations

import os


def _one_line(text: str) -> str:
    # Messages end up on one terminal line (and in logs parsed line by line), so fold any newlines that
    # came in with an underlying exception's text.
    return " ".join(str(text).split("\n")).strip()


class HaleDataError(ValueError):
    """Base class of all dataset errors; ``str(e)`` is a one-line human message."""

    def __init__(self, message: str) -> None:
        super().__init__(_one_line(message))


class DataFormatError(HaleDataError):
    """A file whose content is malformed; the message starts with ``"<path>:<line>: "``.

    ``line`` is 1-based. For problems that belong to the file as a whole (e.g. an empty split) the line
    is the one where content was expected, so the prefix is always present.
    """

    def __init__(self, path: str | os.PathLike, line: int, message: str) -> None:
        self.path = os.fspath(path)
        self.line = int(line)
        self.reason = _one_line(message)
        super().__init__(f"{self.path}:{self.line}: {self.reason}")

    def __reduce__(self):
        # The default pickling of exceptions replays ``cls(*self.args)`` with the formatted message only,
        # which does not match this constructor; Beam workers and multiprocessing pickle exceptions.
        return (type(self), (self.path, self.line, self.reason))


class DatasetNotAvailableError(HaleDataError):
    """The dataset (or one of its splits) cannot be found locally and cannot be downloaded."""


class UnknownDatasetError(HaleDataError):
    """A dataset name that is not in the registry; the message lists the available names."""


class ChecksumError(HaleDataError):
    """A file whose SHA-256 (or git blob id) differs from the recorded one."""


class UnsafeArchiveError(HaleDataError):
    """An archive member that would be written outside the extraction directory (or is not a file)."""


class CountMismatchError(HaleDataError):
    """A dataset whose entity/relation/split counts differ from its registry entry."""


class DatasetCountWarning(UserWarning):
    """Issued when a user-supplied copy of a registered dataset has counts that differ from the registry."""
