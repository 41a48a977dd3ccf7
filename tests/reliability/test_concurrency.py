"""Concurrent runs: a lock per pipeline root, race-free publishing, live temporary directories kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import components.base as base
from components.base import (
    Component,
    ComponentSpec,
    Parameter,
    RootLockedError,
    root_lock,
    run_component,
)
from tests.reliability.helpers import ROOT, assert_one_line_error, cli_env, run_cli

HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from components.base import root_lock
    with root_lock(sys.argv[1], wait_s=0):
        print("locked", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def _hold(root: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(root), str(seconds)], cwd=ROOT, env=cli_env(),
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_waits_briefly_then_names_the_holder(tmp_path: Path) -> None:
    holder = _hold(tmp_path, 30)
    try:
        started = time.monotonic()
        with pytest.raises(RootLockedError, match=rf"in use by another run \(pid {holder.pid}\)"):
            with root_lock(tmp_path, wait_s=0.6):
                pass
        assert 0.5 < time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    with root_lock(tmp_path, wait_s=0):  # a killed holder's lock is gone with it
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())


def test_a_run_waits_for_a_holder_that_finishes(tmp_path: Path) -> None:
    holder = _hold(tmp_path, 1.5)
    started = time.monotonic()
    try:
        with root_lock(tmp_path, wait_s=30):
            assert time.monotonic() - started > 1.0  # we got it after the holder let go
            assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
    finally:
        holder.wait()


def test_the_cli_on_a_locked_root_is_one_line(tmp_path: Path, shared_datasets: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    holder = _hold(root, 120)
    try:
        proc = run_cli("--dataset=kinship", f"--pipeline_root={root}", "--time_budget=5s", timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert_one_line_error(proc, f"pid {holder.pid}", str(root))
    assert not (root / "ExampleGen").exists()


# ----------------------------------------------------------------------------------------- publishing
def _writer(output_dir: Path, params: dict) -> None:
    (output_dir / "out.json").write_text(json.dumps({"pid": os.getpid()}))
    time.sleep(params["sleep"])


SPEC = ComponentSpec(name="Writer", artifact_type="Thing", outputs=("out.json",),
                     parameters={"sleep": Parameter(float, 0.0, affects_output=False)})
WRITER = Component(spec=SPEC, executor=lambda inputs, out, params: _writer(out, params))


def test_losing_the_publish_race_keeps_the_winners_artifact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process publishes between our existence check and our rename (the ENOTEMPTY race)."""
    real_rename = os.rename
    raced: list[Path] = []

    def rename(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        src, dst = Path(src), Path(dst)
        if src.name.startswith(".tmp-") and not raced:  # the winner lands first, complete
            raced.append(dst)
            winner = dst.with_name(".winner")
            winner.mkdir()
            (winner / "out.json").write_text(json.dumps({"pid": -1}))
            base.write_json(winner / base.METADATA_FILE, {**json.loads((src / base.METADATA_FILE).read_text())})
            real_rename(winner, dst)
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    artifact = run_component(WRITER, tmp_path, params={})
    assert raced and json.loads(artifact.path("out.json").read_text()) == {"pid": -1}  # the winner's
    assert [p.name for p in (tmp_path / "Writer").iterdir()] == [artifact.uri.name]  # ours discarded


RACE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from tests.reliability.test_concurrency import WRITER
    from components.base import run_component
    root, start, force = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
    time.sleep(max(0.0, start - time.time()))
    artifact = run_component(WRITER, root, params={"sleep": 0.0}, force=force)
    print(json.loads(artifact.path("out.json").read_text())["pid"])
""")


@pytest.mark.parametrize("force", [False, True])
def test_processes_publishing_one_artifact_at_once_all_succeed(tmp_path: Path, force: bool) -> None:
    for attempt in range(4):
        root = tmp_path / str(attempt)
        start = time.time() + 2.0
        procs = [subprocess.Popen([sys.executable, "-c", RACE, str(root), str(start), str(int(force))], cwd=ROOT,
                                  env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(4)]
        outputs = [proc.communicate(timeout=120) for proc in procs]
        for proc, (_, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err[-2000:]
        final = list((root / "Writer").iterdir())
        assert len(final) == 1 and not final[0].name.startswith(".")  # one artifact, no leftovers
        published = json.loads((final[0] / "out.json").read_text())["pid"]
        if not force:  # everyone uses the one published artifact
            assert {int(out) for out, _ in outputs} == {published}


# ----------------------------------------------------------------------------------- temporary dirs
def test_only_temporary_directories_of_dead_local_processes_are_cleaned(tmp_path: Path) -> None:
    component_dir = tmp_path / "Writer"
    component_dir.mkdir()
    host = base._host_tag()
    dead = component_dir / f".tmp-abc-999999999-{host}-0001"
    dead_old_format = component_dir / ".old-abc-999999999-0002"
    mine = component_dir / f".tmp-abc-{os.getpid()}-{host}-0003"  # another thread of this process, running
    alive = component_dir / f".tmp-abc-{os.getppid()}-{host}-0004"
    other_host = component_dir / ".tmp-abc-999999999-ffffffff-0005"
    unreadable = component_dir / ".tmp-abc-notapid"
    for path in (dead, dead_old_format, mine, alive, other_host, unreadable):
        path.mkdir()
    base._clean_stale(component_dir)
    assert sorted(p.name for p in component_dir.iterdir()) == sorted(
        p.name for p in (mine, alive, other_host, unreadable))


def test_a_concurrent_component_in_another_thread_keeps_its_temporary_directory(tmp_path: Path) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(inputs: dict, output_dir: Path, params: dict) -> None:
        (output_dir / "out.json").write_text("{}")
        started.set()
        release.wait(30)

    slow_component = Component(spec=ComponentSpec(name="Writer", artifact_type="Thing", outputs=("out.json",),
                                                  parameters={"n": Parameter(int, 0)}), executor=slow)
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(run_component(slow_component, tmp_path, params={"n": 1})))
    thread.start()
    try:
        assert started.wait(30)
        run_component(WRITER, tmp_path, params={})  # same component directory: cleans stale dirs first
    finally:
        release.set()
        thread.join(30)
    assert len(results) == 1 and (results[0].uri / "out.json").exists()  # type: ignore[attr-defined]
