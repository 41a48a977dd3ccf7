"""Package metadata for hale-tf; runtime requirements come from requirements.txt only."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name: str) -> list[str]:
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


DASK = ["apache-beam[dask]==2.77.0", "dask>=2024.4.2,<2027", "distributed>=2024.4.2,<2027"]

setup(
    name="hale-tf",
    version="0.1.0",
    description="Hardness-aware contrastive training of low-dimensional knowledge-graph embeddings "
    "(HaLE) in TensorFlow/Keras, with a Beam preprocessing and SavedModel export pipeline.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["hale_tf*", "components*", "pipelines*"]),
    package_data={"pipelines": ["configs/*.json"]},
    install_requires=read_requirements("requirements.txt"),
    extras_require={
        # The default `tensorflow` wheel runs on CPU-only machines; this extra adds the CUDA libraries.
        "gpu": ["tensorflow[and-cuda]==2.21.0"],
        # Beam's DaskRunner (--runner=DaskRunner) on a dask.distributed cluster; tested with dask and
        # distributed 2026.8.0 (Beam 2.77 asks for >= 2024.4.2).
        "dask": DASK,
        # The tests run the Transform on a local dask cluster, so CI's `pip install -e ".[test]"` needs it.
        "test": ["pytest>=8", "hypothesis>=6.100", "ruff>=0.6", *DASK],
    },
    entry_points={"console_scripts": ["hale-tf-run=pipelines.run:entrypoint"]},
)
