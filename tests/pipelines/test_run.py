"""The whole pipeline through its CLI: kinship end to end, caching, blessing, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HALE_TF_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "pipelines.run", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


# Stops after 8 epochs (~130 steps), well inside the budget: the same work on a fast or a loaded machine.
FAST = ["--time_budget=180s", "--max_epochs=8", "--validate_every=60s", "--num_shards=2", "--strategy=default",
        "--set=training.checkpoint_every_s=2"]


@pytest.fixture(scope="module")
def kinship_run(tmp_path_factory, shared_datasets):
    root = tmp_path_factory.mktemp("pipeline")
    proc = run_cli("--dataset=kinship", f"--pipeline_root={root}", *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root, proc


def test_pipeline_end_to_end_on_kinship(kinship_run):
    root, proc = kinship_run
    summary = json.loads((root / "summary.json").read_text())
    saved_model = Path(summary["saved_model"])
    assert (saved_model / "saved_model.pb").exists()
    metrics = summary["metrics"]
    assert metrics["protocol"]["setting"] == "filtered"
    for side in ("both", "head", "tail"):
        assert 0.0 < metrics["metrics"][side]["pessimistic"]["mrr"] <= 1.0
    assert summary["metrics"]["headline"]["mrr"] > 0.2  # clearly better than random (≈ 0.05 on kinship)
    assert (root / "run_config.json").exists()
    # The training run's directory (checkpoints, TensorBoard run name) is keyed by the Trainer's fingerprint.
    trainer_fingerprint = Path(summary["artifacts"]["Trainer"]).name
    assert [p.name for p in (root / "Trainer" / "runs").iterdir()] == [trainer_fingerprint]
    assert "saved_model:" in proc.stdout and "tensorboard --logdir" in proc.stdout
    # TensorBoard event files under the pipeline root, live during training, in a readably named run.
    runs = [p.name for p in (root / "tensorboard").iterdir()]
    assert len(runs) == 1 and runs[0].startswith("kinship-rotH-d32-"), runs
    assert list(root.glob("tensorboard/*/events.out.tfevents.*"))
    assert summary["tensorboard_run"] == str(root / "tensorboard" / runs[0])
    assert Path(summary["poincare_disk"]).is_file() and Path(summary["projector_config"]).is_file()


def test_console_is_quiet_and_redirected_output_has_no_redraws(kinship_run):
    """The issue's bar: few stderr lines, no library start-up noise, plain redirected stdout."""
    _, proc = kinship_run
    assert len(proc.stderr.splitlines()) <= 25, proc.stderr
    for noise in ("cudart_stub", "cuInit", "absl::InitializeLog", "Converting string literal", "apitools",
                  "bigquery", "Traceback"):
        assert noise not in proc.stderr, noise
    assert not {"\r", "\b", "\x1b"} & set(proc.stdout)
    assert len(proc.stdout.encode()) < 20_000
    # One validation line per validation, compact metrics, the global step; the summary names the weights.
    validations = [line for line in proc.stdout.splitlines() if line.startswith("step ")]
    assert validations and all(" valid mrr=" in line and " h@10=" in line for line in validations)
    assert any(line.startswith("training stopped (") for line in proc.stdout.splitlines())
    assert "weights:      the best validation weights, step " in proc.stdout


def test_second_run_is_cached_and_a_changed_parameter_reruns(kinship_run):
    root, _ = kinship_run
    first = json.loads((root / "summary.json").read_text())
    written = {p: p.stat().st_mtime_ns for uri in first["artifacts"].values() for p in Path(uri).rglob("*")}
    proc = run_cli("--dataset=kinship", f"--pipeline_root={root}", *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    second = json.loads((root / "summary.json").read_text())
    assert second["artifacts"] == first["artifacts"]
    assert "cache hit" in proc.stderr
    assert "cached:       everything (nothing was rerun" in proc.stdout
    # Every component was a cache hit and no artifact file was rewritten (not a wall-clock proxy for it).
    assert sorted(second["cached"]) == sorted(second["component_seconds"]), second["cached"]
    assert {p: p.stat().st_mtime_ns for p in written} == written

    proc = run_cli("--dataset=kinship", f"--pipeline_root={root}", *FAST, "--min_mrr=0.999")
    assert proc.returncode == 0, proc.stderr[-3000:]
    third = json.loads((root / "summary.json").read_text())
    for name in ("ExampleGen", "Transform", "Trainer"):
        assert third["artifacts"][name] == first["artifacts"][name]
    assert third["artifacts"]["Evaluator"] != first["artifacts"]["Evaluator"]
    assert third["saved_model"] is None and third["blessed"] is False  # not blessed: nothing exported


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--dataset=no-such-dataset"], "no-such-dataset"),
        (["--dataset=kinship", "--time_budget=soon"], "--time_budget"),
        (["--dataset=kinship", "--model=rotX"], "--model"),
        (["--dataset=kinship", "--set=training.nonsense"], "--set"),
        (["--dataset=kinship", "--dim=abc"], "dim"),
        (["--dataset=kinship", '--set=phases=[{"until": 0.5}]'], "phases: phase 'until' values must increase"),
        (["--dataset=kinship", '--set=phases=[{"until": 1, "loss": "nce"}]'], "phases[0].loss: unknown loss"),
        (["--dataset=kinship", "--set=phases.until=1"], "phases: expected a list"),
    ],
)
def test_bad_flags_give_one_clear_line(tmp_path, shared_datasets, args, expected):
    proc = run_cli(*args, f"--pipeline_root={tmp_path}")
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert expected in proc.stderr


def test_phased_training_through_the_pipeline(kinship_run):
    # Same data as the module's run: ExampleGen and Transform come from the cache; only training reruns.
    root, _ = kinship_run
    phases = '[{"until": 0.5}, {"until": 1, "loss": {"name": "negative_sampling", "num_negatives": 8}}]'
    proc = run_cli("--dataset=kinship", f"--pipeline_root={root}", *FAST, f"--set=phases={phases}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((root / "summary.json").read_text())
    run_config = json.loads((Path(summary["artifacts"]["Trainer"]) / "run_config.json").read_text())
    assert [p["loss"]["name"] for p in run_config["phases"]] == ["hale", "negative_sampling"]
    assert all(p["steps"] > 0 for p in run_config["phases"])
    assert summary["training"]["stop_reason"] == "max_epochs"
    assert summary["metrics"]["headline"]["mrr"] > 0.1
    # A published Trainer's checkpoints can never be resumed (a rerun hits the cache): they are removed.
    assert list(root.glob("Trainer/runs/*")) and not list(root.glob("Trainer/runs/*/checkpoints"))


def test_malformed_data_names_file_and_line_and_leaves_no_artifact(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.txt").write_text("a\tr\tb\nb\tr\n", encoding="utf-8")
    (data / "valid.txt").write_text("a\tr\tb\n", encoding="utf-8")
    (data / "test.txt").write_text("b\tr\ta\n", encoding="utf-8")
    root = tmp_path / "root"
    proc = run_cli("--dataset=mine", f"--data_dir={data}", f"--pipeline_root={root}", *FAST)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "train.txt:2" in proc.stderr
    assert not [p for p in (root / "ExampleGen").glob("*") if (p / "metadata.json").exists()]
