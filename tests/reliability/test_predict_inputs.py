"""predict: a k beyond int32 is an error (it used to wrap to a negative k); a BOM is not part of a name."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from hale_tf.export import export_saved_model
from pipelines import predict
from tests.export.helpers import make_model

ENTITIES = ["alice", "bob", "carol"]
RELATIONS = ["knows"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("serving") / "1"
    export_saved_model(make_model("rotE", len(ENTITIES), len(RELATIONS), 4), ENTITIES, RELATIONS, directory)
    return directory


def _call(**kwargs: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = predict.run(out=out, err=err, **kwargs)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("k", [2**31, 2**63])
def test_k_beyond_int32_is_an_error(exported: Path, k: int) -> None:
    code, out, err = _call(model=str(exported), head="alice", relation="knows", k=k)
    assert (code, out) == (2, "")
    assert err == f"predict: error: --k must be <= {2**31 - 1} (an int32), got {k}\n"
    code, out, err = _call(model=str(exported), head="alice", relation="knows", k=2**31 - 1)  # the largest: clamped
    assert (code, err) == (0, "") and len(out.splitlines()) == 2 + len(ENTITIES)


def test_a_bom_in_the_queries_file_is_not_part_of_the_first_name(exported: Path, tmp_path: Path) -> None:
    queries = tmp_path / "queries.tsv"
    queries.write_bytes("alice\tknows\n?\tknows\tbob\n".encode("utf-8-sig"))  # as Windows editors save
    code, out, err = _call(model=str(exported), queries_file=str(queries), k=1, fmt="tsv")
    assert (code, err) == (0, "")
    rows = [line.split("\t") for line in out.splitlines()[1:]]
    # No BOM glued to the first name: both queries are found and keep their names.
    assert [(row[0], row[5]) for row in rows[:1]] + [(row[2], row[5]) for row in rows[1:]] == [
        ("alice", "tail"), ("bob", "head")]
