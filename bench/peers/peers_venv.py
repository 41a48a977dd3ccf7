"""The PyKEEN virtual environment: created on first use from the package index, re-used afterwards.

Steps: ``python -m venv``; ``pip install <torch spec>`` (the CPU build of PyTorch, installed first and on
its own so that pykeen's ``torch`` requirement is already met and cannot pull a CUDA build); ``pip install
-r requirements-pykeen.txt``; an import check. A marker file records what was installed; the environment
is rebuilt when the requested specs change.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements-pykeen.txt"
DEFAULT_VENV = HERE / ".venv"
#: The CPU build of PyTorch. On this project's machines ``torch==2.13.0`` resolves to a local CPU wheel;
#: elsewhere add ``--torch-index-url https://download.pytorch.org/whl/cpu`` (see README.md).
DEFAULT_TORCH_SPEC = "torch==2.13.0"
MARKER = ".peers-ready.json"

CHECK = ("import json, torch, pykeen; print(json.dumps({'torch': torch.__version__, "
         "'cuda': torch.version.cuda, 'pykeen': pykeen.get_version()}))")


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _wanted(torch_spec: str, torch_index_url: str | None) -> dict[str, str | None]:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    return {"torch_spec": torch_spec, "torch_index_url": torch_index_url, "requirements_sha256": digest}


def _run(cmd: list[str]) -> None:
    print("[venv] $ " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def ensure_pykeen_venv(
    venv: Path = DEFAULT_VENV,
    *,
    base_python: str = sys.executable,
    torch_spec: str = DEFAULT_TORCH_SPEC,
    torch_index_url: str | None = None,
    rebuild: bool = False,
) -> dict[str, str | None]:
    """Create (or re-use) the PyKEEN environment at ``venv``; returns the installed versions."""
    marker = venv / MARKER
    wanted = _wanted(torch_spec, torch_index_url)
    if not rebuild and marker.exists():
        try:
            info = json.loads(marker.read_text())
        except ValueError:
            info = {}
        if info.get("wanted") == wanted and venv_python(venv).exists():
            return info["versions"]
    if venv.exists():
        shutil.rmtree(venv)
    # --without-pip + ensurepip would be equivalent; the plain form keeps pip's own configuration.
    _run([base_python, "-m", "venv", str(venv)])
    py = str(venv_python(venv))
    torch_cmd = [py, "-m", "pip", "install", "--disable-pip-version-check", torch_spec]
    if torch_index_url:
        torch_cmd += ["--index-url", torch_index_url]
    _run(torch_cmd)
    _run([py, "-m", "pip", "install", "--disable-pip-version-check", "-r", str(REQUIREMENTS)])
    out = subprocess.run([py, "-c", CHECK], check=True, capture_output=True, text=True).stdout
    versions = json.loads(out.strip().splitlines()[-1])
    if versions.get("cuda"):
        print(f"[venv] warning: torch {versions['torch']} is a CUDA build (CUDA {versions['cuda']}); "
              "the benchmark still runs on the CPU, but the environment is large", flush=True)
    marker.write_text(json.dumps({"wanted": wanted, "versions": versions}, indent=1) + "\n")
    return versions
