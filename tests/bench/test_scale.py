"""bench/scale.py: point parsing, resuming (measured points are skipped) and the bounds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import scale


def test_points_parse_and_bad_entries_fail_in_one_line() -> None:
    assert scale.parse_points("10000:100000, 30000:300000,") == [(10_000, 100_000), (30_000, 300_000)]
    for bad in ("10000", "a:b", "1:5", "10:0"):
        with pytest.raises(SystemExit, match="--points: expected entities:triples"):
            scale.parse_points(bad)
    with pytest.raises(SystemExit, match="'1000:1000' needs at least entities \\+ 37 triples"):
        scale.parse_points("1000:1000")


def test_sweep_skips_measured_points_and_respects_max_points(tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "scale.json"
    measured = {"entities": 10, "triples": 100, "transform_s": 1.0}
    out.write_text(json.dumps({"benchmark": "scale", "points": {"10:100": measured}}))
    started = []
    monkeypatch.setattr(scale.subprocess, "run", lambda *a, **k: started.append(a))  # no child may start
    parser_args = ["--points", "10:100,20:200", "--out", str(out), "--max_points", "0",
                   "--work_dir", str(tmp_path / "work"), "--plot", str(tmp_path / "scale.png")]
    assert scale.main(parser_args) == 0
    assert started == []
    report = json.loads(out.read_text())
    assert report["points"] == {"10:100": measured}  # kept, not remeasured; 20:200 not started
    printed = capsys.readouterr().out
    assert "10:100: already measured, skipped" in printed and "--max_points=0 reached" in printed
    assert (tmp_path / "scale.png").stat().st_size > 0
