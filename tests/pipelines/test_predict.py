"""The predict CLI: ranked tables from an exported model, query files, clean one-line errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pytest

from hale_tf.export import export_saved_model
from pipelines import predict
from tests.export.helpers import REPO_ROOT, make_model, run_fresh

ENTITIES = ["alice", "bob", "carol", "dave", "eve", "frank", "grace"]
RELATIONS = ["knows", "works with"]
KNOWN = np.array([[0, 0, 1], [0, 0, 2], [3, 1, 0]], np.int32)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = make_model("rotE", len(ENTITIES), len(RELATIONS), 4)
    root = tmp_path_factory.mktemp("serving")
    # A versioned layout as the Pusher writes it: the CLI picks the highest numeric version.
    export_saved_model(model, ENTITIES, RELATIONS, root / "3", known_triples=KNOWN)
    (root / "1").mkdir()  # an older, incomplete version directory must be ignored
    return model, root


def ranking(
    model, entity: int, relation: int, k: int, exclude: set[int] = frozenset()
) -> list[tuple[str, float]]:
    scores = model.score_all(np.array([entity]), np.array([relation])).numpy()[0]
    order = [i for i in np.argsort(-scores, kind="stable") if i not in exclude][:k]
    return [(ENTITIES[i], float(scores[i])) for i in order]


def table_rows(text: str) -> list[tuple[str, float]]:
    """(entity, score) rows of the printed tables (lines starting with a rank number)."""
    rows = []
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0].isdigit():
            rows.append((" ".join(parts[1:-1]), float(parts[-1])))
    return rows


def call(**kwargs) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = predict.run(out=out, err=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


def test_tail_and_head_queries_print_ranked_tables(exported):
    model, root = exported
    code, out, err = call(model=str(root), head="alice", relation="knows", k=3, exclude_known=False)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == "(alice, knows, ?)  top 3 tails"
    assert out.splitlines()[1].split() == ["rank", "entity", "score"]
    got = table_rows(out)
    expected = ranking(model, 0, 0, 3)
    assert [e for e, _ in got] == [e for e, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-4)

    # Head query (?, works with, alice) = tail query (alice, works with⁻¹, ?); k beyond N is clamped.
    code, out, _ = call(model=str(root), tail="alice", relation="works with", k=50, exclude_known=True)
    assert code == 0
    got = table_rows(out)
    expected = ranking(model, 0, 1 + len(RELATIONS), 50, exclude={3})  # dave works with alice: known
    assert [e for e, _ in got] == [e for e, _ in expected]
    assert len(got) == len(ENTITIES) - 1


def test_queries_file_tsv_and_json_formats(exported, tmp_path):
    model, root = exported
    queries = tmp_path / "queries.tsv"
    queries.write_text(
        "# head<TAB>relation or one '?'\nalice\tknows\n\n?\tknows\tbob\ncarol\tworks with\t?\n"
    )
    code, out, err = call(model=str(root), queries_file=str(queries), k=2, fmt="tsv", exclude_known=False)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "head\trelation\ttail\trank\tscore\tpredicted"
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(row) == 6 for row in rows)  # one value per column, names with spaces included
    assert [row[:4] + row[5:] for row in rows] == [
        ["alice", "knows", ranking(model, 0, 0, 2)[0][0], "1", "tail"],
        ["alice", "knows", ranking(model, 0, 0, 2)[1][0], "2", "tail"],
        [ranking(model, 1, 2, 2)[0][0], "knows", "bob", "1", "head"],
        [ranking(model, 1, 2, 2)[1][0], "knows", "bob", "2", "head"],
        ["carol", "works with", ranking(model, 2, 1, 2)[0][0], "1", "tail"],
        ["carol", "works with", ranking(model, 2, 1, 2)[1][0], "2", "tail"],
    ]
    np.testing.assert_allclose([float(row[4]) for row in rows[:2]], [s for _, s in ranking(model, 0, 0, 2)],
                               rtol=1e-5)
    code, out, _ = call(model=str(root), queries_file=str(queries), k=1, fmt="json", exclude_known=True)
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["direction"] for r in records] == ["tail", "head", "tail"]
    # alice knows bob and carol (known): filtered out of alice's answers.
    assert records[0]["answers"][0]["entity"] == ranking(model, 0, 0, 1, exclude={1, 2})[0][0]


@pytest.mark.parametrize(
    ("kwargs", "code", "message"),
    [
        ({"head": "zoe", "relation": "knows"}, 1, "unknown head entity 'zoe'"),
        ({"tail": "alice", "relation": "hates"}, 1, "unknown relation 'hates'"),
        ({"head": "Alice", "relation": "know"}, 1,
         "unknown head entity 'Alice' (did you mean 'alice'?); unknown relation 'know' (did you mean 'knows'?)"),
        ({"head": "alice", "tail": "bob", "relation": "knows"}, 2, "exactly one of --head and --tail"),
        ({"head": "alice"}, 2, "--relation is required"),
        ({"head": "alice", "relation": "knows", "k": 0}, 2, "--k must be >= 1"),
    ],
)
def test_bad_queries_fail_with_one_line(exported, kwargs, code, message):
    _, root = exported
    got, out, err = call(model=str(root), **kwargs)
    assert got == code
    assert out == ""
    assert err.count("\n") == 1 and message in err and err.startswith("predict: error: ")


def test_bad_model_dirs_and_query_files(exported, tmp_path):
    _, root = exported
    code, _, err = call(model=str(tmp_path / "missing"), head="alice", relation="knows")
    assert code == 1 and err == f"predict: error: model directory not found: {tmp_path / 'missing'}\n"
    code, _, err = call(model=str(tmp_path), head="alice", relation="knows")
    assert code == 1 and "not a SavedModel directory" in err
    bad = tmp_path / "bad.tsv"
    bad.write_text("alice\tknows\tbob\n")  # no '?'
    code, _, err = call(model=str(root), queries_file=str(bad))
    assert code == 2 and f"{bad}:1: exactly one of head and tail must be '?'" in err
    bad.write_text("alice\n")
    code, _, err = call(model=str(root), queries_file=str(bad))
    assert code == 2 and "expected 'head<TAB>relation'" in err


def test_cli_process_without_hale_tf(exported, tmp_path):
    """The real program, in a fresh process that cannot import hale_tf: tables, a one-line error, exit 1."""
    model, root = exported
    queries = tmp_path / "q.tsv"
    queries.write_text("bob\tknows\nzoe\tknows\n?\tworks with\tcarol\n")
    script = """
    import runpy
    sys.path.insert(0, sys.argv[1])  # the repository, for the pipelines package only
    sys.meta_path[0].blocked.discard("pipelines")
    sys.argv = ["predict"] + sys.argv[2:]
    runpy.run_module("pipelines.predict", run_name="__main__", alter_sys=True)
    """
    proc = run_fresh(
        script, cwd=tmp_path, args=[str(REPO_ROOT), f"--model={root}", f"--queries={queries}", "--k=2"]
    )
    assert proc.returncode == 1, proc.stderr
    # TensorFlow's CUDA build logs a few lines of its own at import on a machine without a GPU; our
    # message is the one line after them, and there is no traceback.
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == f"predict: error: {queries}:2: unknown head entity 'zoe'"
    assert [e for e, _ in table_rows(proc.stdout)] == [
        *(e for e, _ in ranking(model, 1, 0, 2)),
        *(e for e, _ in ranking(model, 2, 1 + len(RELATIONS), 2)),
    ]


def test_flag_errors_exit_cleanly(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.predict",
            f"--model={tmp_path / 'nope'}",
            "--head=a",
            "--relation=r",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == f"predict: error: model directory not found: {tmp_path / 'nope'}"
    assert "Traceback" not in proc.stdout + proc.stderr


def test_exclude_known_is_the_default(exported):
    """The CLI and run() leave out training facts unless asked not to (as the README's examples do)."""
    model, root = exported
    _, default, _ = call(model=str(root), head="alice", relation="knows", k=len(ENTITIES))
    _, kept, _ = call(model=str(root), head="alice", relation="knows", k=len(ENTITIES), exclude_known=False)
    assert {"bob", "carol"} & {e for e, _ in table_rows(kept)} == {"bob", "carol"}
    assert not {"bob", "carol"} & {e for e, _ in table_rows(default)}  # alice knows bob and carol: known


def test_model_may_be_a_pipeline_root_or_its_summary(exported, tmp_path):
    _, root = exported
    pipeline_root = tmp_path / "pipeline"
    pipeline_root.mkdir()
    (pipeline_root / "summary.json").write_text(json.dumps({"saved_model": str(root / "3")}))
    expected = call(model=str(root), head="alice", relation="knows", k=3)
    assert call(model=str(pipeline_root), head="alice", relation="knows", k=3) == expected
    assert call(model=str(pipeline_root / "summary.json"), head="alice", relation="knows", k=3) == expected
    (pipeline_root / "summary.json").write_text(json.dumps({"saved_model": None}))
    code, out, err = call(model=str(pipeline_root), head="alice", relation="knows")
    assert (code, out) == (1, "") and "exported no model (not blessed" in err and err.count("\n") == 1
