"""Registry of the benchmark datasets: public source, expected counts and known checksums.

Sources and figures come from ``shared/datasets/README.md`` (the offline copies, whose counts were
verified against the published statistics). What is known about integrity is recorded as it is known:

* ``mirror_sha256`` - SHA-256 of the deterministic ``<split>.txt.gz`` files of the offline mirror;
  checked whenever a split is read from a mirror.
* ``archive_git_sha1`` / ``file_git_sha1`` - git blob ids of the upstream files at a pinned commit,
  which is a real checksum of the downloaded bytes (the URLs are pinned to that commit).
* ``archive_sha256`` - SHA-256 of the upstream archive: not known for any entry (``None``); when it is
  unknown, only the split counts, which are always verified after a download, guard the content.
"""

from __future__ import annotations

from hale_tf.data.errors import UnknownDatasetError
from hale_tf.data.types import SPLITS, SYNTHETIC, DatasetInfo, SyntheticParams
from hale_tf.registry import Registry, normalize_name

__all__ = ["DATASETS", "SPLITS", "SYNTHETIC", "DatasetInfo", "available", "canonical_name", "get_info"]

_CONVE_COMMIT = "f3c0eb286025410fa5b4c04696c918264163d0ca"
_CONVE_RAW = f"https://github.com/TimDettmers/ConvE/raw/{_CONVE_COMMIT}"
_CODEX_COMMIT = "3132e426c2a6b643b70bad679905a3a6270be440"
_CODEX_RAW = f"https://raw.githubusercontent.com/tsafavi/codex/{_CODEX_COMMIT}/data/triples"
_TOP_LEVEL_FILES = {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}

_CONVE_CITATION = (
    "Dettmers, Minervini, Stenetorp, Riedel. Convolutional 2D Knowledge Graph Embeddings. AAAI 2018."
)
_CONVE_CODE_LICENSE = "ConvE repository code: MIT."


def _conve(
    name: str,
    archive: str,
    blob: str | None,
    counts: tuple[int, int, int, int, int],
    mirror: dict[str, str],
    *,
    description: str,
    citation: str,
    license: str,
    notes: str = "",
    url: str | None = None,
) -> DatasetInfo:
    ents, rels, n_train, n_valid, n_test = counts
    return DatasetInfo(
        name=name,
        description=description,
        url=url or f"{_CONVE_RAW}/{archive}",
        archive_sha256=None,
        archive_git_sha1=blob,
        files=dict(_TOP_LEVEL_FILES),
        num_entities=ents,
        num_relations=rels,
        num_train=n_train,
        num_valid=n_valid,
        num_test=n_test,
        citation=citation,
        license=license,
        mirror_sha256=mirror,
        homepage="https://github.com/TimDettmers/ConvE",
        notes=notes,
    )


def _mirror(train: str | None, valid: str, test: str, **extra: str) -> dict[str, str]:
    """SHA-256 of the offline mirror's files, keyed by file name (a missing train is left out)."""
    known = {"train.txt.gz": train, "valid.txt.gz": valid, "test.txt.gz": test}
    known.update({f"{key}.txt.gz": value for key, value in extra.items()})
    return {key: value for key, value in known.items() if value}


def _codex(name: str, blobs: tuple[str, str, str], counts, mirror: dict[str, str]) -> DatasetInfo:
    ents, rels, n_train, n_valid, n_test = counts
    return DatasetInfo(
        name=name,
        description=f"CoDEx-{name[-1].upper()}: Wikidata/Wikipedia completion benchmark (Q-ids, P-ids).",
        url=None,
        archive_sha256=None,
        files={s: f"{_CODEX_RAW}/{name}/{s}.txt" for s in SPLITS},
        file_git_sha1=dict(zip(SPLITS, blobs, strict=True)),
        num_entities=ents,
        num_relations=rels,
        num_train=n_train,
        num_valid=n_valid,
        num_test=n_test,
        citation="Safavi, Koutra. CoDEx: A Comprehensive Knowledge Graph Completion Benchmark. EMNLP 2020.",
        license="CoDEx repository: MIT; Wikidata facts: CC0.",
        mirror_sha256=mirror,
        homepage="https://github.com/tsafavi/codex",
    )


#: The named datasets (the generated ``synthetic`` is not an entry: its info depends on parameters).
DATASETS: Registry[DatasetInfo] = Registry(
    "dataset",
    error=UnknownDatasetError,
    hint=", synthetic (or pass --data_dir with train/valid/test files)",
    sort=False,  # listed in the order below, smallest to largest within each source
)


def _add(info: DatasetInfo) -> None:
    DATASETS.register(info.name, info)


_add(
    _conve(
        "yago3-10",
        "YAGO3-10.tar.gz",
        None,
        (123_182, 37, 1_079_040, 5_000, 5_000),
        _mirror(
            None,  # the mirror has no train split (see notes)
            "aabcdc9f186d75dd263a448bdd1e56fc0a0d8c3e7b2d18a004e450d2a0d1e420",
            "a7e9895f6ae3eec456bd0234389fc1b189d798dd8ffbfa454e4bfc9ba462f976",
            entities="84e74360eb6b44fb3e461a9912b06e949af09261ba0675900fc9bf94c82c11be",
            relations="b381d115ee3b96638de3bbbf8bb220b54db66926407f74350d9380f675694297",
        ),
        # The datasets README names this exact URL (branch, not commit): its blob id is not recorded.
        url="https://github.com/TimDettmers/ConvE/raw/master/YAGO3-10.tar.gz",
        description="YAGO3-10: YAGO3 subset of entities with at least 10 relations (people, places, ...).",
        citation="Mahdisoltani, Biega, Suchanek. YAGO3. CIDR 2015; split: " + _CONVE_CITATION,
        license="YAGO3: CC BY 3.0 (MPI Informatics). " + _CONVE_CODE_LICENSE,
        notes="The offline mirror holds only valid/test (+ entities/relations dictionaries); train "
        "(1,079,040 triples) comes from the ConvE tarball.",
    )
)
_add(
    _conve(
        "wn18rr",
        "WN18RR.tar.gz",
        "37f00f2a3e179a9a4862523169bffc7d7d70f7d0",
        (40_943, 11, 86_835, 3_034, 3_134),
        _mirror(
            "be00cacfeffa49a33672df41e965dfccc60917da36cb05e777eec45130515848",
            "d5c9c681ce9ac11cf41c31c5f94d9347c21bd2489ead507b15a00e6ab3069482",
            "44e826dc083adad5baea9dc96bb29f2bb7a55471078f2f26802a7f87de84a722",
        ),
        description="WN18RR: WordNet 3.0 subset without inverse-relation leakage (8-digit synset ids).",
        citation="Bordes et al. NIPS 2013 (WN18); " + _CONVE_CITATION,
        license="WordNet License (BSD-style, Princeton). " + _CONVE_CODE_LICENSE,
    )
)
_add(
    _conve(
        "fb15k-237",
        "FB15k-237.tar.gz",
        "d87987f1028474a0aacd7739d88ef2c2a3a9a7b9",
        (14_541, 237, 272_115, 17_535, 20_466),
        _mirror(
            "17ff1a85987c8462229876b5c6bb1bc322022cb31d695141c25f756d2dbdaeb5",
            "b6a991011555983f9748a0a6c2218156b65cc6056f77b9815e030ae786e965ff",
            "6e555ab86daeea1f5c776a7b933648d435a33991a31e8625eb538337831d67fe",
        ),
        description="FB15k-237: Freebase subset without inverse relations (Toutanova & Chen 2015).",
        citation="Toutanova, Chen. Observed versus latent features for KB and text inference. CVSC 2015.",
        license="Freebase: CC BY 2.5; FB15K-237 release: Microsoft Research terms. " + _CONVE_CODE_LICENSE,
        notes="Upstream files use CRLF line endings; the reader strips the CR.",
    )
)
_add(
    _codex(
        "codex-s",
        (
            "56aa40d8fb0229a150372cb40096e2f1b5601cef",
            "d5acbd01f35758bda56d1713cc6ed18c358ce746",
            "e3ac6c3c5e56010b1d6d1bc8c3aad742ac453639",
        ),
        (2_034, 42, 32_888, 1_827, 1_828),
        _mirror(
            "299a8bb9803962956da064f269422afd6819e27d05e0b7c741db9ebc6e4a64e2",
            "ae474f6d70e0e85f3ba427e1bd8740d6669c23227d91942aeee3e44b76a37c39",
            "74ec2780cd9d2dcc5e29e6ebf64503393efd5959c75ab0a8bdfc99fe81d827b1",
        ),
    )
)
_add(
    _codex(
        "codex-m",
        (
            "3aed27810ca6fbdee5597e1142603b277fad3fd2",
            "b5648a7daadf276f2da3552c0a91265e26091753",
            "cf9416e164aef8aa55eb3f645a9d9d5d32093ad5",
        ),
        (17_050, 51, 185_584, 10_310, 10_311),
        _mirror(
            "47ea9b7dbefe407cc5fd2ce5110254b2514cfd0d0d20f28acdf819863bae4d6f",
            "e318542fb6d6c90728def129cd8c2ed9ca9ea4f0de8c2599cf5a33475ae68418",
            "479f681c6b970be1f5b032fab0ee5110e02b29f466807febb8f5a107b8471e09",
        ),
    )
)
_KOK_DOMINGOS = "Kok, Domingos. Statistical predicate invention. ICML 2007; split: " + _CONVE_CITATION
_SMALL_NOTE = "Many inverse-relation test leaks (ConvE README): use for fast tests, not as a benchmark."
_add(
    _conve(
        "kinship",
        "kinship.tar.gz",
        "b39b7c999e8d426747b2acd3c6a1f9249e60b228",
        (104, 25, 8_544, 1_068, 1_074),
        _mirror(
            "f538cf10286dadca5a198fb394dcd0004d3a81ba1f5da82723cff67f54c24242",
            "2e5eaf511abf322bff97f0c344d8dbee2fc815e32925997d41af36d60d2c0a21",
            "5a104f15a8f50f9f1fffd3e28f55bf97ced24587ab487fd264e246ace2a81fbb",
        ),
        description="Kinship: Alyawarra kinship terms (Denham 1973), Kok & Domingos version.",
        citation=_KOK_DOMINGOS,
        license="No data license stated. " + _CONVE_CODE_LICENSE,
        notes=_SMALL_NOTE,
    )
)
_add(
    _conve(
        "umls",
        "umls.tar.gz",
        "b852b2c316e213c77dc7e35ab6d9f1faa236488d",
        (135, 46, 5_216, 652, 661),
        _mirror(
            "11e8e7be6f08605a7f911b1cc66c25ebbbf0f937cfa8cbeec9354bf1d7698490",
            "da5e2bc1635217cf81ab207257817c71c87fd00fc7c4356f8107cbd134e9a2de",
            "88cbca1e111c520e6a36581446886b86c60e34f3a035e47edf127f56adaa378c",
        ),
        description="UMLS: Unified Medical Language System semantic network (McCray 2003).",
        citation=_KOK_DOMINGOS,
        license="No data license stated. " + _CONVE_CODE_LICENSE,
        notes=_SMALL_NOTE,
    )
)
_add(
    _conve(
        "nations",
        "nations.tar.gz",
        "2400fd01b10a3c633f16bd6999dcc508beb058e4",
        (14, 55, 1_592, 199, 201),
        _mirror(
            "6a51117859ecdbe2de51b88b56eaeb0b4521434f67351cb92a1a1cae95fe7df6",
            "447bcb18db85ee105fedfc15d13ddddb358f0eeb3ee3c32dd0c899ca9134c00c",
            "f2d091e601185f94759b2a4d8f0fbd6d4305ac129cacde505df658fd7eefe6d5",
        ),
        description="Nations: Rummel's Dimensionality of Nations relations between 14 countries.",
        citation=_KOK_DOMINGOS,
        license="No data license stated. " + _CONVE_CODE_LICENSE,
        notes=_SMALL_NOTE,
    )
)


def canonical_name(name: str) -> str:
    """The registry spelling of a user-typed name (``"WN18RR"``, ``"fb15k_237"`` → ``"fb15k-237"``).

    Names that are not registered (a ``--data_dir`` dataset) are lower-cased with ``_`` read as ``-``.
    """
    if normalize_name(name) == SYNTHETIC:
        return SYNTHETIC
    if name in DATASETS:
        return DATASETS.canonical(name)
    return str(name).strip().lower().replace("_", "-")


def available() -> list[str]:
    """Names accepted by :func:`get_info` and ``resolve_dataset``, the generated ``synthetic`` last."""
    return [*DATASETS.available(), SYNTHETIC]


def get_info(name: str) -> DatasetInfo:
    """The registry entry for ``name`` (case, ``-`` and ``_`` insensitive).

    ``"synthetic"`` returns the entry for the default generator parameters (see
    :meth:`hale_tf.data.types.SyntheticParams.info` for other sizes). Unknown names raise
    :class:`UnknownDatasetError` listing the available ones.
    """
    if normalize_name(name) == SYNTHETIC:
        return SyntheticParams().info()
    return DATASETS.entry(name)
