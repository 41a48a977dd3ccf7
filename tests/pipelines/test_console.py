"""The CLI's console behaviour: start-up noise filtered, --print_config, --help, a closed pipe, aliases."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipelines import console
from tests.pipelines.test_run import ROOT, run_cli

CUDA_NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796129814.768831   30623 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU "
    "will not be used.",
    "E0000 00:00:1796129816.962113   30623 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    "Failed call to cuInit: UNKNOWN ERROR (303)",
    "I0000 00:00:1796129913.777581   31523 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
]


def test_start_up_noise_is_dropped_and_real_errors_are_kept() -> None:
    real = "E0000 00:00:1796129816.962113   30623 some_kernel.cc:52] could not allocate 4 GiB\n"
    text = "".join(line + "\n" for line in CUDA_NOISE) + real + "Traceback (most recent call last):\n"
    assert console.filter_noise(text) == real + "Traceback (most recent call last):\n"


@pytest.mark.parametrize(("verbosity", "shown"), [(0, False), (1, True)])
def test_native_stderr_is_captured_and_replayed(capfd: pytest.CaptureFixture[str], verbosity: int,
                                                shown: bool) -> None:
    with console.quiet_native_stderr(verbosity):
        os.write(2, (CUDA_NOISE[1] + "\n").encode())  # as C++ code writes: straight to fd 2
        os.write(2, b"a real problem\n")
    err = capfd.readouterr().err
    assert "a real problem\n" in err
    assert ("cudart_stub" in err) is shown


def test_print_config_prints_the_resolved_configuration_and_the_aliases(tmp_path) -> None:
    proc = run_cli("--dataset=kinship", "--print_config", "--set=training.batch_size=7", "--model=roth",
                   f"--pipeline_root={tmp_path / 'root'}", f"--serving_model_dir={tmp_path / 'serving'}",
                   "--beam_pipeline_args=--direct_num_workers=2")
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed["config"]["training"]["batch_size"] == 7
    assert printed["config"]["model"] == "rotH"  # validated: the registry spelling
    assert printed["config"]["training"]["time_budget_s"] == 60  # kinship's own default
    assert printed["options"]["serving_dir"] == str(tmp_path / "serving")  # TFX's --serving_model_dir
    assert printed["options"]["beam_options"] == ["--direct_num_workers=2"]  # TFX's --beam_pipeline_args
    assert not (tmp_path / "root").exists()  # nothing ran
    assert len(proc.stderr.splitlines()) == 0, proc.stderr  # start-up noise filtered


def test_help_shows_effective_defaults_without_doc_markup() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    assert "``" not in proc.stdout and "::" not in proc.stdout
    help_text = " ".join(proc.stdout.split())
    assert "--time_budget: training wall-clock budget, e.g. 90s, 10m, 1h (default 600s; " in help_text
    assert "kinship 60s" in help_text and "--print_config" in help_text


@pytest.mark.parametrize("args", [["--help"], ["--dataset=kinship", "--print_config"]])
def test_a_closed_stdout_gives_no_traceback(args: list[str]) -> None:
    """``python -m pipelines.run --help | head -1``: the reader is gone before the output is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the pipe now fails with EPIPE (BrokenPipeError in Python)
    try:
        proc = subprocess.run([sys.executable, "-m", "pipelines.run", *args], cwd=ROOT, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120,
                              env={**os.environ, "HALE_TF_OFFLINE": "1"})
    finally:
        os.close(write_end)
    assert "Traceback" not in proc.stderr and "Broken pipe" not in proc.stderr, proc.stderr
    assert proc.returncode == 0


def test_tensorboard_run_names_are_readable_and_survive_a_resume(tmp_path) -> None:
    from pipelines.pipeline import TENSORBOARD_DIR, tensorboard_run_dir
    from pipelines.run_config import RunConfig

    config = RunConfig(model="rotH", model_config={"dim": 32})
    run_dir = tmp_path / "Trainer" / "runs" / "2c0aee55bff4708d"  # keyed by the fingerprint
    first = tensorboard_run_dir(tmp_path, run_dir, "kinship", config, fresh=False)
    assert first.parent == tmp_path / TENSORBOARD_DIR and first.name.startswith("kinship-rotH-d32-")
    first.mkdir(parents=True)
    # A rerun of the same training run (a resume) logs to the same TensorBoard run ...
    assert tensorboard_run_dir(tmp_path, run_dir, "kinship", config, fresh=False) == first
    # ... and training anew (--force) starts a new one, never reusing the old directory.
    again = tensorboard_run_dir(tmp_path, run_dir, "kinship", config, fresh=True)
    assert again != first and again.name.startswith("kinship-rotH-d32-")
