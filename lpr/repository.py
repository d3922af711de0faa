"""The model repository: served files laid out as ``<repository>/<name>/<version>/``, as Triton does.

Each version folder holds ``model.onnx`` and its metadata ``model.json``: what
serving reads, nothing else. A new version is a new folder, written once by
:func:`lpr.metadata.write_version`, so older ones stay loadable
(``LPR_MODEL_VERSION``), a rollback is a setting, and a version answers the
same on every day. Reports about a model (its full record, card, figures,
plate evaluations) live apart, in ``reports/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

#: The checkout's repository: ``models/`` beside the packages.
DEFAULT_REPOSITORY = Path(__file__).resolve().parents[1] / "models"

#: The float32 model that training ships; calibration and quantisation start from it.
DEFAULT_MODEL = "lpr-default"
#: What the service loads unless told otherwise: the variant ``lpr-train quantize`` chose for
#: the shipped version (``quantization.served_by_default``). The int8 copy wins only where it
#: reads as well *and* runs faster; on a CPU without int8 dot-product instructions (AVX2 only,
#: as on the machine 1.5.0 was quantised on) it is slower, and the float32 file is served.
#: ``LPR_MODEL_NAME=lpr-default-int8`` serves the int8 copy.
SERVED_MODEL = DEFAULT_MODEL
REFERENCE_MODEL = "lpr-reference"

MODEL_FILE = "model.onnx"
METADATA_FILE = "model.json"


@dataclass(frozen=True)
class ModelFiles:
    """Where one version of one model lives."""

    name: str
    version: str
    folder: Path

    @property
    def onnx(self) -> Path:
        return self.folder / MODEL_FILE

    @property
    def metadata(self) -> Path:
        return self.folder / METADATA_FILE

    @property
    def relative(self) -> str:
        """``<name>/<version>/model.onnx``: how metadata refers to a file, never by absolute path."""
        return f"{self.name}/{self.version}/{MODEL_FILE}"


def _version_key(version: str) -> tuple[int | str, ...]:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"[.\-+]", version))


def versions(repository: Path, name: str) -> list[str]:
    """The versions of ``name`` that hold a model, oldest first (numerically: 1.10.0 after 1.9.0)."""
    folder = Path(repository) / name
    found = [d.name for d in folder.iterdir() if (d / MODEL_FILE).is_file()] if folder.is_dir() else []
    return sorted(found, key=_version_key)


def locate(repository: Path, name: str, version: str | None = None) -> ModelFiles:
    """A model's files: the given version, or the newest. Raises ``FileNotFoundError`` naming what exists."""
    repository = Path(repository)
    available = versions(repository, name)
    if version is None:
        if not available:
            models = sorted(d.name for d in repository.iterdir() if d.is_dir()) if repository.is_dir() else []
            raise FileNotFoundError(f"no model '{name}' in {repository} (it holds {models or 'nothing'})")
        version = available[-1]
    elif version not in available:
        raise FileNotFoundError(f"no version {version} of '{name}' in {repository} (it has {available})")
    return ModelFiles(name, version, repository / name / version)
