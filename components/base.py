"""The component framework: specs, executors and a caching, crash-safe runner.

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
  into place (:func:`hale_tf.atomic.publish_directory`) only when the executor returned and every declared
  output exists. A crash therefore never leaves a directory that a later run trusts, and stale temporary
  directories of dead processes are removed on the next run.

Parameters are typed (:class:`Parameter`): plain JSON values, or *structured* values, objects of a class with
``to_dict()`` and ``from_dict(mapping)`` (e.g. ``hale_tf.training.TrainingConfig``), which the executor
receives as objects and the fingerprint and ``metadata.json`` hold as their ``to_dict()``.

An :class:`~components.artifact.Artifact` (:mod:`components.artifact`) is a directory with a payload and
``metadata.json`` (type, producer, parameters, input fingerprints, created time, library versions); the
pipeline root's lock is :mod:`components.locking`. Nothing here imports TensorFlow or Beam.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import platform
import secrets
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.artifact import (
    METADATA_FILE,
    Artifact,
    ComponentError,
    library_versions,
    read_complete_metadata,
    write_json,
)
from components.locking import RootLockedError, root_lock
from hale_tf.atomic import exchange_directories, publish_directory

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
    "fingerprint_of",
    "library_versions",
    "params_to_json",
    "resolve_params",
    "root_lock",
    "run_component",
    "write_json",
]

logger = logging.getLogger(__name__)

# Bump when the layout of metadata.json changes incompatibly; part of every fingerprint.
METADATA_FORMAT = 1
_TMP_PREFIX = ".tmp-"
_TRASH_PREFIX = ".old-"
_FINGERPRINT_CHARS = 16  # 64 bits of SHA-256: collisions are not a practical concern for a cache key.


# --------------------------------------------------------------------------------------------------------
# Specs


_MISSING: Any = object()


@dataclass(frozen=True)
class Parameter:
    """A typed component parameter.

    Attributes:
        type: The Python type (``int``, ``float``, ``str``, ``bool``, ``list``, ``dict``), whose values must be
            JSON-serialisable because they go into the fingerprint and ``metadata.json``; or a structured
            class (``to_dict()``/``from_dict()``), whose objects (or mappings, read with ``from_dict``) are
            accepted; or ``tuple`` with ``items`` a structured class (a sequence of such objects).
        default: The default value; leave unset for a required parameter.
        doc: One line of documentation.
        choices: Allowed values, if the parameter is an enumeration.
        optional: ``None`` is accepted as a value (e.g. "no data_dir").
        affects_output: ``False`` for parameters that change *how* a component runs but never *what* it
            writes (e.g. the Beam runner); they are recorded in the metadata but left out of the
            fingerprint, so switching runners does not invalidate the cache.
        items: For a ``tuple`` parameter, the structured class of its items.
    """

    type: type
    default: Any = _MISSING
    doc: str = ""
    choices: tuple[Any, ...] | None = None
    optional: bool = False
    affects_output: bool = True
    items: type | None = None

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


Executor = Callable[[dict[str, Artifact], Path, dict[str, Any]], None]


@dataclass(frozen=True)
class Component:
    """A spec and the executor that implements it."""

    spec: ComponentSpec
    executor: Executor

    @property
    def name(self) -> str:
        return self.spec.name


# --------------------------------------------------------------------------------------------------------
# Parameters and fingerprints


def _structured(kind: Any) -> bool:
    """Whether ``kind`` is a structured parameter class (``to_dict()`` and ``from_dict(mapping)``)."""
    return isinstance(kind, type) and callable(getattr(kind, "from_dict", None)) and callable(
        getattr(kind, "to_dict", None))


def _to_object(name: str, value: Any, kind: type) -> Any:
    """``value`` as an object of the structured class ``kind`` (a mapping is read with ``from_dict``)."""
    if isinstance(value, kind):
        return value
    if not isinstance(value, Mapping):
        raise ComponentError(f"parameter {name!r} must be a {kind.__name__} or a mapping, got "
                             f"{type(value).__name__} ({value!r})")
    try:
        return kind.from_dict(dict(value))  # type: ignore[attr-defined]
    except (TypeError, ValueError) as err:
        raise ComponentError(f"parameter {name!r}: {err}") from None


def _to_json(value: Any) -> Any:
    """A parameter value as JSON data (structured objects as their ``to_dict()``, tuples as lists)."""
    if _structured(type(value)):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def params_to_json(params: Mapping[str, Any]) -> dict[str, Any]:
    """Resolved parameters as JSON data, as ``metadata.json`` and the fingerprint hold them."""
    return {name: _to_json(value) for name, value in params.items()}


def _check_type(name: str, value: Any, decl: Parameter) -> Any:
    if value is None:
        if decl.optional:
            return None
        raise ComponentError(f"parameter {name!r} must not be None")
    expected = decl.type
    if _structured(expected):
        value = _to_object(name, value, expected)
    elif decl.items is not None:
        if not isinstance(value, (list, tuple)):
            raise ComponentError(f"parameter {name!r} must be a list of {decl.items.__name__}, got "
                                 f"{type(value).__name__} ({value!r})")
        value = tuple(_to_object(f"{name}[{i}]", item, decl.items) for i, item in enumerate(value))
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
        json.dumps(_to_json(value), sort_keys=True)
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
        elif _structured(decl.type) or decl.items is not None:
            resolved[name] = decl.default  # immutable objects (frozen dataclasses, tuples): nothing to alias
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
        "parameters": {k: v for k, v in params_to_json(params).items() if spec.parameters[k].affects_output},
        "inputs": {name: art.fingerprint for name, art in sorted(inputs.items())},
        "external": external,
    }
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:_FINGERPRINT_CHARS]


def fingerprint_of(component: Component, inputs: Mapping[str, Artifact | str | os.PathLike[str]] | None,
                   params: Mapping[str, Any] | None) -> str:
    """The fingerprint :func:`run_component` gives this run (parameters checked, inputs re-read), before it
    runs: the key of anything kept outside the artifact for it (the Trainer's checkpoint directory). Only
    the parameters that affect the output are needed (and read)."""
    decls = {name: decl for name, decl in component.spec.parameters.items() if decl.affects_output}
    spec = dataclasses.replace(component.spec, parameters=decls)
    resolved = resolve_params(spec, {name: value for name, value in (params or {}).items() if name in decls})
    external = spec.external_fingerprint(resolved) if spec.external_fingerprint else None
    return compute_fingerprint(spec, resolved, _validate_inputs(spec, inputs), external)


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
        if not force and read_complete_metadata(final_dir) is not None:
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
            "parameters": params_to_json(resolved),
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


def _publish(tmp_dir: Path, final_dir: Path, *, replace: bool) -> None:
    """Rename the finished ``tmp_dir`` to ``final_dir`` (a single atomic rename on one filesystem).

    Race-free between processes: when another run of the same fingerprint publishes first (before or
    during our rename), its complete artifact is kept and ours discarded (the outputs are equivalent).
    ``replace`` (``force``) swaps our copy for the existing artifact in one step where the kernel can
    (:func:`~hale_tf.atomic.exchange_directories`: readers always find a complete artifact); elsewhere it
    moves the existing one aside first (rename() cannot replace a non-empty directory): a crash between
    the two renames leaves no final directory, i.e. a cache miss, never a half artifact.
    """
    aside: list[Path] = []
    try:
        for _ in range(10):
            if not replace and read_complete_metadata(final_dir) is not None:
                shutil.rmtree(tmp_dir, ignore_errors=True)  # a concurrent run won the race
                return
            if final_dir.exists():  # replaced (force) or incomplete (manual damage)
                if exchange_directories(tmp_dir, final_dir):
                    shutil.rmtree(tmp_dir, ignore_errors=True)  # tmp_dir now holds the replaced copy
                    return
                trash = final_dir.with_name(_scratch_name(_TRASH_PREFIX, final_dir.name))  # move it aside
                with contextlib.suppress(FileNotFoundError):  # another run moved it first
                    os.rename(final_dir, trash)
                    aside.append(trash)
            if publish_directory(tmp_dir, final_dir):
                break
            replace = False  # another run published between our two renames: keep its artifact
        else:
            raise ComponentError(f"{final_dir}: could not publish (other runs keep replacing it)")
    finally:
        for trash in aside:
            shutil.rmtree(trash, ignore_errors=True)
