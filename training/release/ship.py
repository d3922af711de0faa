"""Shipping a finished run into the model repository, where the service and the Docker image find it.

A run ships as ``<repository>/<name>/<version>/`` (:mod:`lpr.repository`), the
version being the one its metadata records (the recipe's). A version folder
that exists is never overwritten unless asked (``--force``): a shipped model
stays loadable as it was, and a new model is a new version. The run's figures
go to ``reports/`` (:mod:`training.common.outputs`), not into the repository.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from lpr.hashing import sha256_file
from lpr.repository import DEFAULT_MODEL, MODEL_FILE, ModelFiles, place
from training.common.figures import preprocessing_proof
from training.common.outputs import REPORTS, SAMPLES, figures_dir, write_json
from training.data.dataset import dataset_record

#: Figures of the shipped run that the model card links to.
FIGURES = (
    "samples_per_class.png",
    "training_curves.png",
    "confusion_matrix.png",
    "test_predictions.png",
    "test_errors.png",
)


class VersionExistsError(FileExistsError):
    """The repository already holds this version of this model."""


def ship(
    run_dir: str | Path,
    repository: str | Path,
    name: str = DEFAULT_MODEL,
    include_keras: bool = False,
    *,
    force: bool = False,
    reports: str | Path = REPORTS,
) -> list[Path]:
    """Write ``<repository>/<name>/<version>/model.{onnx,json}`` and the run's figures; the paths written.

    ``include_keras`` also copies the Keras checkpoint (``model.keras``): the
    reference ships it so the benchmark can time Keras the way the write-up
    served it. ``force`` replaces the files of an existing version folder.
    """
    run_dir, repository = Path(run_dir), Path(repository)
    meta = json.loads((run_dir / "model.json").read_text())
    version = str(meta["version"])
    existing = ModelFiles(name, version, repository / name / version)
    if existing.folder.exists() and not force:
        raise VersionExistsError(
            f"{existing.folder} exists: version {version} of {name} is shipped already. Give the recipe "
            "a new version (training/fitting/recipes.py), or pass --force to replace it (then re-run "
            "quantize and calibrate)"
        )
    files = place(repository, name, version)
    shutil.copyfile(run_dir / "model.onnx", files.onnx)
    meta["name"] = name
    meta["onnx"]["file"] = MODEL_FILE
    meta["onnx"]["sha256"] = sha256_file(files.onnx)
    meta["dataset"] = dataset_record(meta["dataset"])
    write_json(files.metadata, meta)
    written = [files.onnx, files.metadata]
    if include_keras:
        shutil.copyfile(run_dir / "best.keras", files.keras)
        written.append(files.keras)

    figures = figures_dir(reports, name)
    figures.mkdir(parents=True, exist_ok=True)
    for figure in FIGURES:
        target = figures / figure
        shutil.copyfile(run_dir / figure, target)
        written.append(target)
    samples = sorted(SAMPLES.glob("*.png"))
    if samples:
        written.append(preprocessing_proof(samples, figures / "samples_preprocessed.png"))
    return written
