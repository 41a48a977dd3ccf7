"""bench/time_to_accuracy.py: a run stopped by a signal is reported as such and ends the benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bench import time_to_accuracy as tta


def _row(model: str, method: str, stop_reason: str) -> dict:
    return {"model": model, "method": method, "stop_reason": stop_reason, "train_seconds": 12.0,
            "validations": [{"seconds": 6.0, "mrr": 0.1, "step": 3}]}


def _fake_splits() -> SimpleNamespace:
    triples = np.zeros((4, 3), dtype=np.int64)
    return SimpleNamespace(triples={"train": triples, "valid": triples, "test": triples},
                           num_entities=3, num_relations=1)


def test_report_stem_says_when_the_runs_were_cut_short() -> None:
    done = [_row("rotH", "hale", "time_budget")]
    assert tta.report_stem("t-", "wn18rr", 600.0, tta.is_complete(done, 1)) == "t-wn18rr-600s"
    assert tta.report_stem("t-", "wn18rr", 600.0, tta.is_complete(done, 2)) == "t-wn18rr-600s-interrupted"
    assert tta.report_stem("", "fb15k-237", 60.0, tta.is_complete([_row("rotH", "hale", "interrupted")], 1)) == \
        "fb15k-237-60s-interrupted"


def test_an_interrupted_run_stops_the_benchmark_and_names_the_report(tmp_path: Path, monkeypatch, capsys) -> None:
    started: list[tuple[str, str]] = []

    def fake_run_one(args, ids, n, r, index, model_name, method, methods):  # noqa: ANN001
        started.append((model_name, method))
        return _row(model_name, method, "interrupted" if method == "ns" else "time_budget")

    monkeypatch.setattr(tta, "run_one", fake_run_one)
    monkeypatch.setattr(tta.data, "load_id_splits", lambda name: _fake_splits())
    monkeypatch.setattr(tta, "plot", lambda rows, path, title: Path(path).write_bytes(b"png"))
    assert tta.main(["--models", "rotH", "--methods", "hale,ns,softmax", "--budget", "60s",
                     "--out", str(tmp_path), "--tag", "x-"]) == 0
    assert started == [("rotH", "hale"), ("rotH", "ns")]  # softmax never started
    assert not (tmp_path / "x-wn18rr-60s.json").exists()
    report = json.loads((tmp_path / "x-wn18rr-60s-interrupted.json").read_text())
    assert report["complete"] is False
    assert [run["method"] for run in report["runs"]] == ["hale", "ns"]
    printed = capsys.readouterr().out
    assert "interrupted during rotH ns: its row covers 12 of 60 training seconds; not run: rotH softmax" in printed


def test_a_finished_benchmark_keeps_its_plain_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(tta, "run_one", lambda *a: _row(a[5], a[6], "time_budget"))
    monkeypatch.setattr(tta.data, "load_id_splits", lambda name: _fake_splits())
    monkeypatch.setattr(tta, "plot", lambda rows, path, title: Path(path).write_bytes(b"png"))
    assert tta.main(["--models", "rotH", "--methods", "hale,ns", "--budget", "60s", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "wn18rr-60s.json").read_text())
    assert report["complete"] is True and len(report["runs"]) == 2


def test_the_plot_replaces_an_old_one_whole(tmp_path: Path) -> None:
    path = tmp_path / "run.png"
    path.write_bytes(b"old plot")
    rows = [_row("rotH", "hale", "time_budget")]
    tta.plot(rows, path, "title")
    assert path.read_bytes().startswith(b"\x89PNG")
    assert [p.name for p in tmp_path.iterdir()] == ["run.png"]  # no temporary file left behind
