"""Filesystem errors are one line naming the path; written files and artifacts follow the umask."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.base import Component, ComponentSpec, run_component, write_json
from hale_tf.atomic import atomic_write_text, current_umask
from tests.reliability.helpers import assert_one_line_error, run_cli


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_a_pipeline_root_that_is_a_file_is_one_line(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    root = blocker if where == "file" else blocker / "deeper" / "root"
    proc = run_cli("--dataset=kinship", f"--pipeline_root={root}", timeout=120)
    assert_one_line_error(proc, "--pipeline_root", str(blocker), code=2)


def test_an_os_error_while_running_names_the_path(tmp_path: Path, shared_datasets: Path) -> None:
    root = tmp_path / "root"
    (root / ".lock").mkdir(parents=True)  # the lock file cannot be opened: a real OSError inside the run
    proc = run_cli("--dataset=kinship", f"--pipeline_root={root}", timeout=120)
    assert_one_line_error(proc, str(root / ".lock"), "Is a directory", code=1)


@pytest.fixture
def run_main() -> Iterator[None]:
    from absl import flags

    import pipelines.run  # noqa: F401  (defines the flags)

    yield
    flags.FLAGS.unparse_flags()


@pytest.mark.parametrize(("code", "reason", "hint"), [
    (errno.ENOSPC, "No space left on device", "free some space"),
    (errno.EROFS, "Read-only file system", "use a writable --pipeline_root"),
    (errno.EACCES, "Permission denied", "check the permissions"),
])
def test_cli_turns_os_errors_into_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str], run_main: None,
                                           code: int, reason: str, hint: str) -> None:
    from absl import flags

    import pipelines.pipeline
    from pipelines import run

    target = tmp_path / "root" / "Trainer" / "x.json"

    def failing(config: dict, options: object) -> dict:
        raise OSError(code, reason, str(target))

    monkeypatch.setattr(pipelines.pipeline, "run_pipeline", failing)
    flags.FLAGS(["run", "--dataset=kinship", f"--pipeline_root={tmp_path / 'root'}"])
    with pytest.raises(SystemExit) as info:
        run.main(["run"])
    assert info.value.code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert lines == [f"error: {target}: {reason}; " + lines[0].split("; ", 1)[1]]
    assert hint in lines[0]


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_files_and_artifacts_follow_the_umask(tmp_path: Path, umask: None) -> None:
    assert current_umask() == 0o027
    atomic_write_text(tmp_path / "a.txt", "x")
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o640  # not mkstemp's 0600

    def execute(inputs: dict, output_dir: Path, params: dict) -> None:
        atomic_write_text(output_dir / "out.txt", "x")
        write_json(output_dir / "meta.json", {"a": 1})

    spec = ComponentSpec(name="Writer", artifact_type="Thing", outputs=("out.txt",))
    artifact = run_component(Component(spec=spec, executor=execute), tmp_path / "root")
    assert stat.S_IMODE(artifact.uri.stat().st_mode) == 0o750
    for name in ("out.txt", "meta.json", "metadata.json"):
        assert stat.S_IMODE(artifact.path(name).stat().st_mode) == 0o640, name


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (a real full disk, then a real read-only one); skipped where mounting is not allowed."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_and_read_only_disks_are_one_line(small_disk: Path, shared_datasets: Path) -> None:
    import subprocess

    root = small_disk / "root"
    args = ["--dataset=kinship", f"--pipeline_root={root}", "--time_budget=3s", "--strategy=default",
            "--num_shards=2"]
    full = run_cli(*args)  # kinship's artifacts and checkpoints need more than 1 MiB
    line = assert_one_line_error(full, str(root), code=1)
    assert "No space left on device" in line
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True).returncode == 0
    read_only = run_cli(*args)
    assert_one_line_error(read_only, str(root), "Read-only file system", code=1)
