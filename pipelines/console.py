"""What the command-line programs print: quiet library start-up, one short log format, a closed pipe.

Verbosity (``--verbosity``/``-v``, absl's own flag, read here with our meaning):

- ``-1``: warnings and errors only (plus the progress and the final summary on stdout);
- ``0`` (default): our own INFO lines (one per component step, one per validation) and nothing from the
  libraries below WARNING; TensorFlow's and CUDA's C++ start-up lines are dropped;
- ``1``: the libraries' INFO lines too (Apache Beam, TensorFlow, absl) and every C++ start-up line;
- ``2``: DEBUG everywhere.

TensorFlow's C++ start-up lines (``cudart_stub.cc … Could not find cuda drivers``, ``failed call to
cuInit``, "All log messages before absl::InitializeLog() …") come from absl's C++ logger, which ignores
``TF_CPP_MIN_LOG_LEVEL`` before it is initialised; they are written straight to file descriptor 2. So
:func:`quiet_native_stderr` points fd 2 at a temporary file while TensorFlow and Beam import and the
devices are listed, then replays what was written there except the known start-up lines (a real error
in that window is still shown).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

__all__ = ["NOISE", "configure_logging", "filter_noise", "quiet_native_stderr", "set_quiet_environment",
           "silence_broken_pipe"]

# C++ start-up lines written to fd 2 by TensorFlow/XLA/CUDA stubs at import and device initialisation.
NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IW]\d{4} [\d:.]+\s+\d+ \S+\.(cc|h):\d+\] .*"
    r"|E\d{4} [\d:.]+\s+\d+ cuda_\w+\.cc:\d+\] failed call to cuInit.*"
    r"|To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.)$"
)
# Python-side library lines that say nothing about this run (Beam's optional GCP extras, type-hint notes).
_LIBRARY_NOISE = re.compile(
    r"apitools not found|bigquery|Converting string literal type hint to Any|Creating state cache with size"
)
# Loggers of the libraries; ours (components, pipelines, hale_tf, bench) are left at the chosen level.
_LIBRARIES = ("apache_beam", "tensorflow", "absl", "h5py", "matplotlib", "urllib3", "root")
_OURS = ("components", "pipelines", "hale_tf", "bench")


def set_quiet_environment() -> None:
    """Environment read by TensorFlow's C++ side at import: set before it is imported (never overriding
    what the user exported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def filter_noise(text: str) -> str:
    """``text`` without the known C++ start-up lines."""
    kept = [line for line in text.splitlines(keepends=True) if not NOISE.match(line.rstrip("\r\n"))]
    return "".join(kept)


@contextlib.contextmanager
def quiet_native_stderr(verbosity: int) -> Iterator[None]:
    """Within the block, fd 2 writes go to a temporary file; afterwards they are replayed on stderr,
    without the start-up noise unless ``verbosity >= 1``. Anything else (a real error) is kept, also when
    the block raises."""
    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (a closed stderr): nothing to protect
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            shown = text if verbosity >= 1 else filter_noise(text)
            if shown:
                sys.stderr.write(shown)
                sys.stderr.flush()


class _ShortFormatter(logging.Formatter):
    """``12:57:37 ExampleGen: running …``; the level only when it is WARNING or worse."""

    def __init__(self, verbose: bool) -> None:
        super().__init__(datefmt="%H:%M:%S")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.WARNING:
            text = f"{record.levelname.lower()}: {text}"
        if self.verbose:  # library lines need their origin
            text = f"{record.name}: {text}"
        line = f"{self.formatTime(record, self.datefmt)} {text}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _LibraryNoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _LIBRARY_NOISE.search(record.getMessage())


class _ConsoleHandler(logging.StreamHandler):
    """A stderr handler that first clears a live progress bar on the terminal, so a log line never lands
    on the bar's line (the bar redraws itself on its next update)."""

    def emit(self, record: logging.LogRecord) -> None:
        from hale_tf.training.progress import clear_live_line

        clear_live_line()
        super().emit(record)


def configure_logging(verbosity: int) -> None:
    """Root logging for a CLI run at ``verbosity`` (see the module docstring)."""
    ours = logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity >= 2 else logging.INFO
    libraries = logging.DEBUG if verbosity >= 2 else logging.INFO if verbosity >= 1 else logging.WARNING
    handler = _ConsoleHandler(sys.stderr)
    handler.setFormatter(_ShortFormatter(verbose=verbosity >= 1))
    if verbosity < 1:
        handler.addFilter(_LibraryNoiseFilter())
    logging.basicConfig(level=libraries, handlers=[handler], force=True)
    for name in _OURS:
        logging.getLogger(name).setLevel(ours)
    for name in _LIBRARIES:
        logging.getLogger(name).setLevel(libraries)
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.DEBUG if verbosity >= 2 else absl_logging.INFO if verbosity >= 1
                               else absl_logging.WARNING)
    if verbosity < 1:
        # Beam warns through `warnings` too (deprecated options, missing extras); they are not ours to fix.
        warnings.filterwarnings("ignore", module=r"apache_beam(\.|$)")
        warnings.filterwarnings("ignore", message=r".*Converting string literal type hint.*")


def silence_broken_pipe() -> None:
    """After stdout's reader has gone (``… --help | head -1``): no traceback at exit, exit status 0.

    Python flushes stdout at exit and reports the failure as an exception with a traceback; pointing the
    stdout fd at /dev/null makes that last flush succeed silently."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
