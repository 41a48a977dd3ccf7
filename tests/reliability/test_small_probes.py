"""The smaller probes of the reliability issue: a damaged gzip names the line it reached, an archive with a
symlink loop is refused in one line, and the serving signatures refuse inputs of different lengths."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from hale_tf.data import DataFormatError
from hale_tf.data.raw import read_bytes
from hale_tf.data.resolve import UnsafeArchiveError, extract_archive

LINES = "".join(f"e{i}\tr\te{i + 1}\n" for i in range(20_000)).encode()


def test_truncated_gzip_names_the_line_it_reached(tmp_path: Path) -> None:
    blob = gzip.compress(LINES)
    path = tmp_path / "train.txt.gz"
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataFormatError) as info:
        read_bytes(path)
    # About half of the 20,000 lines decode before the cut (not "line 1").
    assert 5_000 < info.value.line < 15_000, str(info.value)
    assert str(info.value).startswith(f"{path}:{info.value.line}: corrupt or truncated gzip data")


def test_archive_with_a_symlink_loop_is_refused_in_one_line(tmp_path: Path) -> None:
    archive = tmp_path / "loop.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, target in (("data/a", "b"), ("data/b", "a")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        payload = b"h\tr\tt\n"
        info = tarfile.TarInfo("data/a/train.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(UnsafeArchiveError) as info:
        extract_archive(archive, tmp_path / "out")
    assert str(info.value).startswith(f"{archive}: refusing member") and "\n" not in str(info.value)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hale_tf import export, models

    model = models.get("transE", num_entities=4, num_relations=2, dim=4)
    out = tmp_path_factory.mktemp("export") / "saved_model"
    export.export_saved_model(model, ["a", "b", "c", "d"], ["r"], out, known_triples=np.array([[0, 0, 1]]))
    return out


@pytest.mark.parametrize("lengths", [(1, 3), (2, 3)])
def test_signatures_refuse_inputs_of_different_lengths(exported: Path, lengths: tuple[int, int]) -> None:
    loaded = tf.saved_model.load(os.fspath(exported))
    heads, relations = tf.constant(["a"] * lengths[0]), tf.constant(["r"] * lengths[1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="must have the same length"):
        loaded.signatures["topk_tails"](head=heads, relation=relations, k=tf.constant(2),
                                        exclude_known=tf.constant(True))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must have the same length"):
        loaded.signatures["score"](head=heads, relation=relations, tail=tf.constant(["b"] * lengths[1]))
    ok = loaded.signatures["topk_tails"](head=tf.constant(["a"] * lengths[1]), relation=relations,
                                         k=tf.constant(2), exclude_known=tf.constant(True))
    assert ok["found"].numpy().tolist() == [True] * lengths[1]
