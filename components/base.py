"""The component framework: specs, artifacts, executors and a caching, crash-safe runner.

A *component* is a :class:`ComponentSpec` (its name, named input artifacts, the payload entries it must
produce, and typed parameters) plus an *executor*, a plain function
``run(inputs: dict[str, Artifact], output_dir: Path, params: dict) -> None`` that writes the payload into
``output_dir``. The runner (:func:`run_component`) adds everything around it:

* a **fingerprint** of (component name, spec version, resolved parameters, input artifact
  fingerprints, optional external fingerprint such as a hash of raw input files);
* a **cache**: ``<pipeline_root>/<Component>/<fingerprint>/`` with a complete ``metadata.json`` is
  reused without running (logged as a cache hit); ``force=True`` reruns;
* **atomic output**: the executor writes into a temporary sibling directory
  (``.tmp-<fingerprint>-<pid>-<host>-<random>``); ``metadata.json`` is written last and the directory is renamed
  into place only when the executor returned and every declared output exists. A crash therefore never
  leaves a directory that a later run trusts, and stale temporary directories of dead processes are
  removed on the next run.

An :class:`Artifact` is a directory with a payload and ``metadata.json`` (type, producer, parameters,
input fingerprints, created time, library versions). Nothing here imports TensorFlow or Beam, so reading
artifacts stays cheap.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "METADATA_FILE",
    "Artifact",
    "Component",
    "ComponentError",
    "ComponentSpec",
    "Executor",
    "Parameter",
    "RootLockedError",
    "compute_fingerprint",
    "library_versions",
    "resolve_params",
    "root_lock",
    "run_component",
    "write_json",
]

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"
# Bump when the layout of metadata.json changes incompatibly; part of every fingerprint.
METADATA_FORMAT = 1
_TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".old-"
_FINGERPRINT_CHARS = 16  # 64 bits of SHA-256: collisions are not a practical concern for a cache key.


class ComponentError(Exception):
    """A component could not run: bad parameters, bad inputs, or a failed executor (one-line message)."""


# --------------------------------------------------------------------------------------------------------
# Specs


_MISSING: Any = object()


@dataclass(frozen=True)
class Parameter:
    """A typed component parameter.

    Attributes:
        type: The Python type (``int``, ``float``, ``str``, ``bool``, ``list``, ``dict``); values must be
            JSON-serialisable because they go into the fingerprint and ``metadata.json``.
        default: The default value; leave unset for a required parameter.
        doc: One line of documentation.
        choices: Allowed values, if the parameter is an enumeration.
        optional: ``None`` is accepted as a value (e.g. "no data_dir").
        affects_output: ``False`` for parameters that change *how* a component runs but never *what* it
            writes (e.g. the Beam runner); they are recorded in the metadata but left out of the
            fingerprint, so switching runners does not invalidate the cache.
    """

    type: type
    default: Any = _MISSING
    doc: str = ""
    choices: tuple[Any, ...] | None = None
    optional: bool = False
    affects_output: bool = True

    @property
    def required(self) -> bool:
        return self.default is _MISSING


@dataclass(frozen=True)
class ComponentSpec:
    """What a component consumes and produces.

    Attributes:
        name: Component name; also the directory under the pipeline root (``<root>/<name>/<fp>/``).
        artifact_type: The type recorded in the output artifact's metadata (e.g. ``"Examples"``).
        inputs: Input artifact names mapped to the artifact type each must have.
        outputs: Payload entries (files or directories, relative to the artifact directory) that the
            executor must create; the runner refuses to publish an artifact missing any of them.
        parameters: Parameter names mapped to their :class:`Parameter` declaration.
        version: Executor version; bump it when the output format changes so old caches are not reused.
        uses_beam: Record the Apache Beam version in the metadata.
        external_fingerprint: Optional ``f(params) -> str`` for inputs that are not artifacts (for
            ExampleGen: a hash of the raw dataset files), so the cache notices changed raw data.
    """

    name: str
    artifact_type: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    outputs: Sequence[str] = ()
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    version: str = "1"
    uses_beam: bool = False
    external_fingerprint: Callable[[dict[str, Any]], str] | None = None


Executor = Callable[[dict[str, "Artifact"], Path, dict[str, Any]], None]


@dataclass(frozen=True)
class Component:
    """A spec and the executor that implements it."""

    spec: ComponentSpec
    executor: Executor

    @property
    def name(self) -> str:
        return self.spec.name


# --------------------------------------------------------------------------------------------------------
# Artifacts


@dataclass(frozen=True)
class Artifact:
    """A published component output: a directory whose ``metadata.json`` is complete.

    Use :meth:`load` to open one; construction alone does not validate.
    """

    uri: Path
    metadata: Mapping[str, Any]

    @classmethod
    def load(cls, uri: str | os.PathLike[str]) -> Artifact:
        """Open the artifact at ``uri``; raise :class:`ComponentError` if it is missing or incomplete."""
        path = Path(uri)
        metadata = _read_complete_metadata(path)
        if metadata is None:
            raise ComponentError(f"{path}: not a complete artifact (missing or invalid {METADATA_FILE})")
        return cls(uri=path, metadata=metadata)

    @property
    def type(self) -> str:
        return str(self.metadata["type"])

    @property
    def fingerprint(self) -> str:
        return str(self.metadata["fingerprint"])

    @property
    def producer(self) -> str:
        return str(self.metadata["producer"])

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.metadata.get("parameters", {}))

    def path(self, *parts: str) -> Path:
        """Path of a payload entry, e.g. ``artifact.path("splits", "train.tsv")``."""
        return self.uri.joinpath(*parts)


def _read_complete_metadata(path: Path) -> dict[str, Any] | None:
    """Metadata of a complete artifact at ``path``, or ``None`` when it is absent, partial or corrupt."""
    try:
        metadata = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(metadata, dict) or metadata.get("complete") is not True:
        return None
    if not all(key in metadata for key in ("type", "producer", "fingerprint", "parameters")):
        return None
    # Declared outputs are checked before publishing; re-checking here catches manual deletions.
    for entry in metadata.get("outputs", []):
        if not (path / entry).exists():
            return None
    return metadata


# --------------------------------------------------------------------------------------------------------
# Parameters and fingerprints


def _check_type(name: str, value: Any, decl: Parameter) -> Any:
    if value is None:
        if decl.optional:
            return None
        raise ComponentError(f"parameter {name!r} must not be None")
    expected = decl.type
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    elif expected is list and isinstance(value, tuple):
        value = list(value)
    if expected is not bool and isinstance(value, bool) and expected in (int, float):
        raise ComponentError(f"parameter {name!r} must be {expected.__name__}, got bool")
    if not isinstance(value, expected):
        raise ComponentError(
            f"parameter {name!r} must be {expected.__name__}, got {type(value).__name__} ({value!r})"
        )
    if decl.choices is not None and value not in decl.choices:
        raise ComponentError(f"parameter {name!r} must be one of {list(decl.choices)}, got {value!r}")
    try:
        json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ComponentError(f"parameter {name!r} is not JSON-serialisable: {exc}") from None
    return value


def resolve_params(spec: ComponentSpec, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check ``params`` against the spec and fill in defaults (raises :class:`ComponentError`)."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(spec.parameters))
    if unknown:
        raise ComponentError(f"{spec.name}: unknown parameter(s) {unknown}; known: {sorted(spec.parameters)}")
    resolved: dict[str, Any] = {}
    for name, decl in spec.parameters.items():
        if name in params:
            resolved[name] = _check_type(name, params[name], decl)
        elif decl.required:
            raise ComponentError(f"{spec.name}: missing required parameter {name!r}")
        else:
            # Defaults may be mutable (lists); copy through JSON so a caller cannot alias them.
            resolved[name] = json.loads(json.dumps(decl.default))
    return resolved


def compute_fingerprint(
    spec: ComponentSpec,
    params: Mapping[str, Any],
    inputs: Mapping[str, Artifact],
    external: str | None = None,
) -> str:
    """Cache key of one component run: a hex digest over everything that determines its output."""
    payload = {
        "component": spec.name,
        "version": spec.version,
        "metadata_format": METADATA_FORMAT,
        "parameters": {k: v for k, v in params.items() if spec.parameters[k].affects_output},
        "inputs": {name: art.fingerprint for name, art in sorted(inputs.items())},
        "external": external,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:_FINGERPRINT_CHARS]


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def library_versions(uses_beam: bool = False) -> dict[str, str | None]:
    """Versions recorded in artifact metadata; read from package metadata so nothing heavy is imported."""
    import hale_tf

    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "hale_tf": getattr(hale_tf, "__version__", None),
        "tensorflow": _dist_version("tensorflow") or _dist_version("tensorflow-cpu"),
        "numpy": _dist_version("numpy"),
    }
    if uses_beam:
        versions["apache_beam"] = _dist_version("apache-beam")
    return versions


# --------------------------------------------------------------------------------------------------------
# The runner


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _host_tag() -> str:
    """A short tag of this machine, so that a run never judges the pids of another host's runs."""
    return hashlib.sha256(platform.node().encode("utf-8")).hexdigest()[:8]


def _scratch_name(prefix: str, name: str) -> str:
    """``<prefix><name>-<pid>-<host tag>-<random>``: the writer, so others can tell whether it still runs."""
    return f"{prefix}{name}-{os.getpid()}-{_host_tag()}-{secrets.token_hex(4)}"


def _scratch_owner_dead(entry_name: str) -> bool:
    """Whether the process that named a temporary/trash directory (:func:`_scratch_name`) is gone.

    Only a directory of *another* process of *this* host that no longer runs counts: the directories of
    this process belong to a component running now (perhaps in another thread), names that cannot be read
    and directories of other hosts are left alone.
    """
    parts = entry_name.split("-")
    try:
        pid = int(parts[2])
    except (IndexError, ValueError):
        return False
    if len(parts) >= 5 and parts[3] != _host_tag():
        return False
    return pid != os.getpid() and pid > 0 and not _pid_alive(pid)


def _clean_stale(component_dir: Path) -> None:
    """Remove temporary/trash directories left by processes that no longer run (see
    :func:`_scratch_owner_dead`); a live run's directory is never touched."""
    if not component_dir.is_dir():
        return
    for entry in component_dir.iterdir():
        if not entry.name.startswith((_TMP_PREFIX, _TRASH_PREFIX)) or not entry.is_dir():
            continue
        if _scratch_owner_dead(entry.name):
            logger.info("removing stale temporary directory %s", entry)
            shutil.rmtree(entry, ignore_errors=True)


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


def _validate_inputs(
    spec: ComponentSpec, inputs: Mapping[str, Artifact | str | os.PathLike[str]] | None
) -> dict[str, Artifact]:
    inputs = dict(inputs or {})
    missing = sorted(set(spec.inputs) - set(inputs))
    extra = sorted(set(inputs) - set(spec.inputs))
    if missing or extra:
        raise ComponentError(
            f"{spec.name}: inputs must be {sorted(spec.inputs)}; missing {missing}, unexpected {extra}"
        )
    checked: dict[str, Artifact] = {}
    for name, artifact in inputs.items():
        if not isinstance(artifact, Artifact):
            artifact = Artifact.load(artifact)  # a path is accepted too
        fresh = Artifact.load(artifact.uri)  # re-read: the directory must still be complete
        if fresh.type != spec.inputs[name]:
            raise ComponentError(
                f"{spec.name}: input {name!r} must be a {spec.inputs[name]} artifact, "
                f"got {fresh.type} ({fresh.uri})"
            )
        checked[name] = fresh
    return checked


def run_component(
    component: Component,
    pipeline_root: str | os.PathLike[str],
    inputs: Mapping[str, Artifact | str | os.PathLike[str]] | None = None,
    params: Mapping[str, Any] | None = None,
    *,
    force: bool = False,
) -> Artifact:
    """Run ``component`` (or reuse its cached output) and return the published artifact.

    Args:
        component: The component to run.
        pipeline_root: Root directory; the artifact lands in ``<root>/<name>/<fingerprint>/``.
        inputs: Input artifacts (or their directories) by name, as declared in the spec.
        params: Parameters; unspecified ones take their defaults.
        force: Rerun even when a complete cached artifact exists (it is then replaced atomically).

    Raises:
        ComponentError: invalid parameters or inputs, or an executor that did not produce its outputs.
        Exceptions raised by the executor (e.g. ``hale_tf.data`` errors) propagate unchanged; in every
        failure case the temporary directory is removed and no artifact is published.
    """
    spec = component.spec
    resolved = resolve_params(spec, params)
    checked_inputs = _validate_inputs(spec, inputs)
    external = spec.external_fingerprint(resolved) if spec.external_fingerprint else None
    fingerprint = compute_fingerprint(spec, resolved, checked_inputs, external)

    component_dir = Path(pipeline_root) / spec.name
    final_dir = component_dir / fingerprint
    component_dir.mkdir(parents=True, exist_ok=True)
    _clean_stale(component_dir)

    if final_dir.exists():
        if not force and _read_complete_metadata(final_dir) is not None:
            logger.info("%s: cache hit %s (%s)", spec.name, fingerprint, final_dir)
            return Artifact.load(final_dir)
        if not force:
            # Only complete directories are ever renamed into place, so this is manual damage.
            logger.warning("%s: %s exists but is incomplete; rerunning", spec.name, final_dir)

    tmp_dir = component_dir / _scratch_name(_TMP_PREFIX, fingerprint)
    tmp_dir.mkdir()
    logger.info("%s: running (fingerprint %s)", spec.name, fingerprint)
    started = time.time()
    try:
        component.executor(checked_inputs, tmp_dir, dict(resolved))
        missing = [entry for entry in spec.outputs if not (tmp_dir / entry).exists()]
        if missing:
            raise ComponentError(f"{spec.name}: executor did not produce declared output(s) {missing}")
        metadata = {
            "complete": True,
            "metadata_format": METADATA_FORMAT,
            "type": spec.artifact_type,
            "producer": spec.name,
            "producer_version": spec.version,
            "fingerprint": fingerprint,
            "parameters": resolved,
            "inputs": {
                name: {"fingerprint": art.fingerprint, "type": art.type, "uri": str(art.uri)}
                for name, art in sorted(checked_inputs.items())
            },
            "external_fingerprint": external,
            "outputs": list(spec.outputs),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "duration_s": round(time.time() - started, 3),
            "versions": library_versions(spec.uses_beam),
        }
        write_json(tmp_dir / METADATA_FILE, metadata)
        _publish(tmp_dir, final_dir, replace=force)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    logger.info("%s: wrote %s in %.1f s", spec.name, final_dir, time.time() - started)
    return _load_published(final_dir)


def _load_published(final_dir: Path, attempts: int = 100) -> Artifact:
    """The artifact just published at ``final_dir``. A concurrent ``force`` run may be swapping its own
    copy in (two renames, a moment without the directory): retry briefly before giving up."""
    for attempt in range(attempts):
        try:
            return Artifact.load(final_dir)
        except ComponentError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.02)
    raise AssertionError("unreachable")


def _strict(obj: Any) -> Any:
    """``obj`` with NaN/±Inf floats as ``None``, so the JSON is strict (``NaN`` is not JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted, strict JSON (NaN/Inf as null) and fsync it (metadata must
    survive a power cut)."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(_strict(obj), f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        if err.filename is not None:
            raise
        raise OSError(err.errno, err.strerror or str(err), str(path)) from err  # a failed write: name the file


def _publish(tmp_dir: Path, final_dir: Path, *, replace: bool) -> None:
    """Rename the finished ``tmp_dir`` to ``final_dir`` (a single atomic rename on one filesystem).

    Race-free between processes: when another run of the same fingerprint publishes first (before or
    during our rename), its complete artifact is kept and ours discarded (the outputs are equivalent).
    ``replace`` (``force``) moves an existing artifact aside first: rename() cannot replace a non-empty
    directory, and a crash between the two renames leaves no final directory, i.e. a cache miss, never a
    half artifact.
    """
    aside: list[Path] = []
    try:
        for _ in range(10):
            if not replace and _read_complete_metadata(final_dir) is not None:
                shutil.rmtree(tmp_dir, ignore_errors=True)  # a concurrent run won the race
                return
            if final_dir.exists():  # replaced (force) or incomplete (manual damage): move it aside
                trash = final_dir.with_name(_scratch_name(_TRASH_PREFIX, final_dir.name))
                with contextlib.suppress(FileNotFoundError):  # another run moved it first
                    os.rename(final_dir, trash)
                    aside.append(trash)
            try:
                os.rename(tmp_dir, final_dir)
                break
            except OSError as err:
                if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                replace = False  # another run published between our two renames: keep its artifact
        else:
            raise ComponentError(f"{final_dir}: could not publish (other runs keep replacing it)")
    finally:
        for trash in aside:
            shutil.rmtree(trash, ignore_errors=True)
    with contextlib.suppress(OSError):  # make the rename durable where the platform allows it
        fd = os.open(final_dir.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
