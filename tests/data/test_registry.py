"""The dataset registry: names, published counts, sources and recorded checksums."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hale_tf.data import DatasetInfo, UnknownDatasetError, available, get_info

EXPECTED = {  # entities, relations, train, valid, test (shared/datasets/README.md, METHOD.md section 6)
    "yago3-10": (123_182, 37, 1_079_040, 5_000, 5_000),
    "wn18rr": (40_943, 11, 86_835, 3_034, 3_134),
    "fb15k-237": (14_541, 237, 272_115, 17_535, 20_466),
    "codex-s": (2_034, 42, 32_888, 1_827, 1_828),
    "codex-m": (17_050, 51, 185_584, 10_310, 10_311),
    "kinship": (104, 25, 8_544, 1_068, 1_074),
    "umls": (135, 46, 5_216, 652, 661),
    "nations": (14, 55, 1_592, 199, 201),
}


def test_available_lists_all_benchmarks_and_synthetic() -> None:
    assert available() == [*EXPECTED, "synthetic"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_match_published_statistics(name: str) -> None:
    info = get_info(name)
    assert info.name == name
    got = (info.num_entities, info.num_relations, info.num_train, info.num_valid, info.num_test)
    assert got == EXPECTED[name]
    assert info.num_triples == {"train": got[2], "valid": got[3], "test": got[4]}
    assert info.description and info.citation and info.license


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sources_are_the_public_ones(name: str) -> None:
    info = get_info(name)
    if name.startswith("codex"):
        assert info.url is None
        for split in ("train", "valid", "test"):
            assert info.files[split].startswith("https://raw.githubusercontent.com/tsafavi/codex/")
            assert info.files[split].endswith(f"/data/triples/{name}/{split}.txt")
            assert len(info.file_git_sha1[split]) == 40
    else:
        assert info.url.startswith("https://github.com/TimDettmers/ConvE/raw/")
        assert info.url.endswith(".tar.gz")
        assert info.files == {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}
    assert info.archive_sha256 is None  # unknown upstream: counts are verified instead


def test_yago_url_is_the_one_in_the_datasets_readme() -> None:
    assert get_info("yago3-10").url == "https://github.com/TimDettmers/ConvE/raw/master/YAGO3-10.tar.gz"


def test_mirror_checksums_agree_with_the_checksums_file(shared_datasets: Path) -> None:
    listed = {}
    for line in (shared_datasets / "CHECKSUMS.sha256").read_text().splitlines():
        digest, rel = line.split()
        listed[rel] = digest
    recorded = {f"{name}/{file}": d for name in EXPECTED for file, d in get_info(name).mirror_sha256.items()}
    assert recorded == listed


@pytest.mark.parametrize("spelling", ["WN18RR", " wn18rr ", "Wn18Rr"])
def test_names_are_case_insensitive(spelling: str) -> None:
    assert get_info(spelling).name == "wn18rr"
    assert get_info("FB15k_237").name == "fb15k-237"


def test_unknown_name_lists_available_and_suggests() -> None:
    with pytest.raises(UnknownDatasetError) as info:
        get_info("wn18")
    message = str(info.value)
    assert "did you mean 'wn18rr'" in message
    for name in available():
        assert name in message
    assert isinstance(info.value, ValueError)


def test_synthetic_info_has_default_sizes() -> None:
    info = get_info("synthetic")
    assert (info.num_entities, info.num_relations, info.num_train) == (2000, 12, 20000)
    assert info.url is None


def test_info_is_frozen_and_hashable() -> None:
    info = get_info("kinship")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.num_train = 1  # type: ignore[misc]
    assert hash(info) == hash(get_info("kinship"))
    assert isinstance(dataclasses.replace(info, url=None), DatasetInfo)
