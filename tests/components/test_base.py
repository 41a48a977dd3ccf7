"""The component framework: parameters, fingerprints, caching, atomic publication, stale cleanup."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

import components.base as base
from components.base import (
    METADATA_FILE,
    Artifact,
    Component,
    ComponentError,
    ComponentSpec,
    Parameter,
    compute_fingerprint,
    fingerprint_of,
    resolve_params,
    run_component,
)
from hale_tf.atomic import publish_directory

CALLS: list[dict] = []


def _write_payload(inputs, output_dir: Path, params) -> None:
    CALLS.append(dict(params))
    if params["fail"]:
        (output_dir / "payload.txt").write_text("half")
        raise RuntimeError("executor crashed")
    text = f"{params['value']}"
    if "upstream" in inputs:
        text += "+" + inputs["upstream"].path("payload.txt").read_text()
    (output_dir / "payload.txt").write_text(text)


def _make(name: str = "Writer", *, inputs=None, external=None, outputs=("payload.txt",)) -> Component:
    spec = ComponentSpec(
        name=name,
        artifact_type="Payload",
        inputs=inputs or {},
        outputs=outputs,
        parameters={
            "value": Parameter(int, 1, "payload value"),
            "fail": Parameter(bool, False, "crash after writing half"),
            "tag": Parameter(str, "x", choices=("x", "y")),
            "verbose": Parameter(bool, False, "does not change the output", affects_output=False),
        },
        external_fingerprint=external,
    )
    return Component(spec, _write_payload)


@pytest.fixture(autouse=True)
def _reset_calls():
    CALLS.clear()


def _published(root: Path, name: str = "Writer") -> list[str]:
    return sorted(p.name for p in (root / name).iterdir())


def test_cache_hit_and_changed_parameter(tmp_path: Path) -> None:
    comp = _make()
    first = run_component(comp, tmp_path, params={"value": 3})
    second = run_component(comp, tmp_path, params={"value": 3})
    assert len(CALLS) == 1, "second run must be a cache hit"
    assert first.uri == second.uri and first.fingerprint == second.fingerprint
    assert first.path("payload.txt").read_text() == "3"

    third = run_component(comp, tmp_path, params={"value": 4})
    assert len(CALLS) == 2 and third.uri != first.uri
    assert third.path("payload.txt").read_text() == "4"
    # A parameter that does not affect the output is recorded but keeps the cache.
    fourth = run_component(comp, tmp_path, params={"value": 4, "verbose": True})
    assert len(CALLS) == 2 and fourth.uri == third.uri


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_force_reruns_and_replaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool) -> None:
    if not exchange:  # kernels and file systems without renameat2(RENAME_EXCHANGE)
        monkeypatch.setattr(base, "exchange_directories", lambda new, published: False)
    comp = _make()
    first = run_component(comp, tmp_path)
    (first.uri / "payload.txt").write_text("tampered")
    again = run_component(comp, tmp_path, force=True)
    assert len(CALLS) == 2 and again.uri == first.uri
    assert again.path("payload.txt").read_text() == "1"
    assert _published(tmp_path) == [first.fingerprint]  # no trash or temp directories left


def test_metadata_contents(tmp_path: Path) -> None:
    art = run_component(_make(), tmp_path, params={"value": 7})
    meta = json.loads((art.uri / METADATA_FILE).read_text())
    assert meta["complete"] is True
    assert meta["type"] == "Payload" and meta["producer"] == "Writer"
    assert meta["parameters"] == {"value": 7, "fail": False, "tag": "x", "verbose": False}
    assert meta["fingerprint"] == art.fingerprint == art.uri.name
    assert meta["outputs"] == ["payload.txt"] and meta["inputs"] == {}
    assert {"python", "tensorflow", "hale_tf"} <= set(meta["versions"])
    assert meta["created"].endswith("+00:00")


def test_input_fingerprints_propagate(tmp_path: Path) -> None:
    upstream = _make("Up")
    downstream = _make("Down", inputs={"upstream": "Payload"})
    a = run_component(upstream, tmp_path, params={"value": 1})
    d1 = run_component(downstream, tmp_path, {"upstream": a})
    b = run_component(upstream, tmp_path, params={"value": 2})
    d2 = run_component(downstream, tmp_path, {"upstream": b})
    assert d1.uri != d2.uri
    assert d2.path("payload.txt").read_text() == "1+2"
    assert (
        json.loads((d2.uri / METADATA_FILE).read_text())["inputs"]["upstream"]["fingerprint"] == b.fingerprint
    )
    # Inputs can be given as paths, and must have the declared type.
    assert run_component(downstream, tmp_path, {"upstream": str(b.uri)}).uri == d2.uri
    wrong = _make("Other", inputs={"upstream": "Model"})
    with pytest.raises(ComponentError, match="must be a Model artifact"):
        run_component(wrong, tmp_path, {"upstream": b})
    with pytest.raises(ComponentError, match="missing"):
        run_component(downstream, tmp_path, {})


def test_external_fingerprint(tmp_path: Path) -> None:
    state = {"v": "one"}
    comp = _make(external=lambda params: state["v"])
    first = run_component(comp, tmp_path)
    assert run_component(comp, tmp_path).uri == first.uri
    state["v"] = "two"
    assert run_component(comp, tmp_path).uri != first.uri
    assert len(CALLS) == 2


def test_crash_leaves_nothing_trusted(tmp_path: Path) -> None:
    comp = _make()
    with pytest.raises(RuntimeError, match="executor crashed"):
        run_component(comp, tmp_path, params={"fail": True})
    assert _published(tmp_path) == []  # temp directory removed, nothing renamed into place
    art = run_component(comp, tmp_path)
    assert art.path("payload.txt").read_text() == "1"


def test_missing_declared_output_is_not_published(tmp_path: Path) -> None:
    comp = _make(outputs=("payload.txt", "never_written.json"))
    with pytest.raises(ComponentError, match="never_written.json"):
        run_component(comp, tmp_path)
    assert _published(tmp_path) == []


def test_stale_temp_dirs_are_cleaned(tmp_path: Path) -> None:
    comp = _make()
    fp = compute_fingerprint(comp.spec, resolve_params(comp.spec, {}), {})
    component_dir = tmp_path / "Writer"
    dead = component_dir / f".tmp-{fp}-999999999-abcd"  # pid that cannot exist
    alive = component_dir / f".tmp-{fp}-{os.getppid()}-abcd"  # a live process: maybe a concurrent run
    for d in (dead, alive):
        d.mkdir(parents=True)
        (d / "payload.txt").write_text("half")
    art = run_component(comp, tmp_path)
    assert not dead.exists() and alive.exists()
    assert art.fingerprint == fp


def test_incomplete_final_directory_is_rerun(tmp_path: Path) -> None:
    comp = _make()
    art = run_component(comp, tmp_path)
    meta_path = art.uri / METADATA_FILE
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "complete": False}))
    with pytest.raises(ComponentError, match="not a complete artifact"):
        Artifact.load(art.uri)
    again = run_component(comp, tmp_path)
    assert len(CALLS) == 2 and Artifact.load(again.uri).fingerprint == art.fingerprint
    # A payload entry deleted by hand also invalidates the cache.
    (again.uri / "payload.txt").unlink()
    run_component(comp, tmp_path)
    assert len(CALLS) == 3


@pytest.mark.parametrize(
    "params, message",
    [
        ({"nope": 1}, "unknown parameter"),
        ({"value": "3"}, "must be int"),
        ({"value": True}, "must be int, got bool"),
        ({"tag": "z"}, "must be one of"),
        ({"value": None}, "must not be None"),
    ],
)
def test_parameter_validation(tmp_path: Path, params: dict, message: str) -> None:
    with pytest.raises(ComponentError, match=message):
        run_component(_make(), tmp_path, params=params)
    assert not (tmp_path / "Writer").exists() or _published(tmp_path) == []


def test_required_parameter_and_json_defaults() -> None:
    spec = ComponentSpec(
        name="S",
        artifact_type="T",
        parameters={"need": Parameter(str), "opts": Parameter(list, []), "ratio": Parameter(float, 0.5)},
    )
    with pytest.raises(ComponentError, match="missing required parameter 'need'"):
        resolve_params(spec, {})
    resolved = resolve_params(spec, {"need": "x", "ratio": 2})
    assert resolved == {"need": "x", "opts": [], "ratio": 2.0}
    resolved["opts"].append("mutated")
    assert spec.parameters["opts"].default == []  # defaults are copied, never aliased


# -------------------------------------------------------------------------------- structured parameters


@dataclass(frozen=True)
class _Schedule:
    """A structured parameter: an object with to_dict/from_dict."""

    steps: int = 1

    def to_dict(self) -> dict:
        return {"steps": self.steps}

    @classmethod
    def from_dict(cls, values: dict) -> _Schedule:
        if set(values) - {"steps"}:
            raise TypeError(f"unknown keys {sorted(set(values) - {'steps'})}")
        return cls(**values)


def test_structured_parameters_reach_the_executor_as_objects_and_the_metadata_as_dicts(tmp_path: Path) -> None:
    seen = []
    spec = ComponentSpec(name="Typed", artifact_type="Payload", outputs=("payload.txt",), parameters={
        "schedule": Parameter(_Schedule, _Schedule()), "plan": Parameter(tuple, (), items=_Schedule),
        "where": Parameter(str, doc="not part of the output", affects_output=False)})

    def execute(inputs, output_dir: Path, params) -> None:
        seen.append(params)
        (output_dir / "payload.txt").write_text(str(params["schedule"].steps))

    component = Component(spec, execute)
    params = {"schedule": {"steps": 3}, "plan": [{"steps": 1}, _Schedule(2)], "where": "x"}
    artifact = run_component(component, tmp_path, None, params)
    assert seen[0]["schedule"] == _Schedule(3) and seen[0]["plan"] == (_Schedule(1), _Schedule(2))
    assert artifact.parameters["schedule"] == {"steps": 3}
    assert artifact.parameters["plan"] == [{"steps": 1}, {"steps": 2}]
    # A mapping and the object give one fingerprint, known before the run (without the non-output "where").
    assert artifact.fingerprint == fingerprint_of(component, None, {"schedule": _Schedule(3),
                                                                   "plan": (_Schedule(1), _Schedule(2))})
    assert resolve_params(spec, {"where": "x"})["schedule"] == _Schedule()
    with pytest.raises(ComponentError, match=r"parameter 'schedule': unknown keys \['step'\]"):
        resolve_params(spec, {"schedule": {"step": 3}, "where": "x"})
    with pytest.raises(ComponentError, match=r"parameter 'plan\[0\]' must be a _Schedule or a mapping"):
        resolve_params(spec, {"plan": [5], "where": "x"})


def test_publish_directory_is_one_rename_that_never_replaces_a_published_one(tmp_path: Path) -> None:
    filled, final = tmp_path / ".tmp-a", tmp_path / "a"
    filled.mkdir()
    (filled / "x").write_text("1")
    assert publish_directory(filled, final) and (final / "x").read_text() == "1" and not filled.exists()
    other = tmp_path / ".tmp-b"
    other.mkdir()
    (other / "x").write_text("2")
    assert not publish_directory(other, final)  # already published: kept, and ours left for the caller
    assert (final / "x").read_text() == "1" and other.exists()
