"""The quality gate: NaN or empty evaluations never bless, blessing JSON is strict, --serving_dir on a cache hit."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from components.base import write_json
from components.evaluator import judge
from tests.reliability.helpers import assert_one_line_error, run_cli

GOOD = {"mrr": 0.5, "mr": 3.0, "hits@1": 0.4, "hits@3": 0.6, "hits@10": 0.9}


def _strict_json(path: Path) -> Any:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_judge_blesses_only_finite_non_empty_evaluations_that_pass() -> None:
    assert judge(GOOD, 100, {"mrr": 0.3})["blessed"] is True
    assert judge(GOOD, 100, {})["blessed"] is True
    assert judge(GOOD, 100, {"mrr": 0.6})["failed"] == ["mrr"]
    nan = {**GOOD, "mrr": math.nan}
    verdict = judge(nan, 100, {"mrr": 0.1})  # NaN < 0.1 is False: a plain comparison would bless this
    assert verdict["blessed"] is False and verdict["failed"] == ["mrr"]
    assert judge(nan, 100, {})["blessed"] is False  # a NaN metric never blesses, thresholds or not
    assert judge(GOOD, 0, {"mrr": 0.1})["blessed"] is False  # an empty evaluation never blesses
    assert judge(GOOD, 100, {"mrr": math.nan})["blessed"] is False  # nor does a NaN threshold


def test_component_json_is_strict(tmp_path: Path) -> None:
    write_json(tmp_path / "blessing.json", judge({**GOOD, "mrr": math.nan}, 0, {"mrr": 0.1}))
    blessing = _strict_json(tmp_path / "blessing.json")
    assert blessing["values"]["mrr"] is None and blessing["blessed"] is False and blessing["num_queries"] == 0


def _write_data(directory: Path, unseen_test: bool) -> Path:
    rng = random.Random(0)
    train: set[tuple[str, str, str]] = set()
    while len(train) < 150:
        h, r = rng.randrange(30), rng.randrange(3)
        train.add((f"e{h}", f"r{r}", f"e{(h * (r + 2) + rng.randrange(2)) % 30}"))
    ordered = sorted(train)
    test = [("x1", "r0", "x2"), ("x3", "r1", "e1")] if unseen_test else ordered[20:40]
    directory.mkdir(parents=True)
    for name, triples in (("train", ordered), ("valid", ordered[:20]), ("test", test)):
        (directory / f"{name}.txt").write_text("".join("\t".join(t) + "\n" for t in triples), encoding="utf-8")
    return directory


TINY = ["--dataset=tiny", "--batch_size=16", "--max_epochs=2", "--time_budget=20s", "--strategy=default",
        "--num_shards=1"]


def test_an_empty_evaluation_does_not_bless(tmp_path: Path) -> None:
    data = _write_data(tmp_path / "data", unseen_test=True)  # every test triple is unseen: dropped
    root = tmp_path / "root"
    proc = run_cli(*TINY, f"--data_dir={data}", f"--pipeline_root={root}", "--min_mrr=0.1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = _strict_json(root / "summary.json")
    assert summary["blessed"] is False and summary["saved_model"] is None
    blessing = _strict_json(Path(summary["artifacts"]["Evaluator"]) / "blessing.json")
    assert blessing["num_queries"] == 0 and blessing["values"]["mrr"] is None
    _strict_json(Path(summary["artifacts"]["Evaluator"]) / "metrics.json")


def test_serving_dir_is_honoured_on_a_fully_cached_pipeline(tmp_path: Path) -> None:
    data = _write_data(tmp_path / "data", unseen_test=False)
    root, serving = tmp_path / "root", tmp_path / "serving"
    first = run_cli(*TINY, f"--data_dir={data}", f"--pipeline_root={root}")
    assert first.returncode == 0, first.stderr[-3000:]
    assert _strict_json(root / "summary.json")["blessed"] is True
    cached = run_cli(*TINY, f"--data_dir={data}", f"--pipeline_root={root}", f"--serving_dir={serving}")
    assert cached.returncode == 0, cached.stderr[-3000:]
    assert cached.stderr.count("cache hit") == 5  # every component, the Pusher included
    versions = [p for p in serving.iterdir() if p.name.isdigit()]
    assert len(versions) == 1 and (versions[0] / "saved_model.pb").is_file()
    assert _strict_json(root / "summary.json")["serving_copy"] == str(versions[0])


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_serving_dir_that_is_a_file_is_one_line(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    serving = blocker if where == "file" else blocker / "models"
    proc = run_cli("--dataset=kinship", f"--pipeline_root={tmp_path / 'root'}", f"--serving_dir={serving}",
                   timeout=120)
    assert_one_line_error(proc, "--serving_dir", str(blocker))
    assert not (tmp_path / "root").exists()
