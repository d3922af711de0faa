"""Shipping a finished run into the model repository, where the service and the Docker image find it.

A run ships as ``<repository>/<name>/<version>/`` (:mod:`lpr.repository`), the
version being the one its metadata records (the recipe's), and its int8 copy
(``lpr-train quantize --run``) as ``<name>-int8`` of the same version. A
shipped version never changes: everything it serves (the calibration bars, the
int8 file and the gate's verdict) is decided on the run before shipping, the
folders are written by :func:`lpr.metadata.write_version`, and a version that
exists is refused. The served ``model.json`` holds what serving reads; the
run's full record goes to ``reports/records/`` (:mod:`training.common.records`)
and its figures to ``reports/``, never into the repository.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from lpr.hashing import sha256_file
from lpr.metadata import ServedMetadata, VersionExistsError, write_version
from lpr.repository import DEFAULT_MODEL, METADATA_FILE, MODEL_FILE
from training.common.figures import preprocessing_proof
from training.common.outputs import REPORTS, SAMPLES, figures_dir, read_json
from training.common.records import record_path, write_record
from training.data.dataset import dataset_record
from training.release.quantize import int8_folder

__all__ = ["FIGURES", "NotCalibratedError", "VersionExistsError", "ship"]

#: Figures of the shipped run that the model card links to.
FIGURES = (
    "samples_per_class.png",
    "training_curves.png",
    "confusion_matrix.png",
    "test_predictions.png",
    "test_errors.png",
)


class NotCalibratedError(RuntimeError):
    """The run has no calibration: shipped, it would flag nothing and its plates would have no bar."""


def ship(
    run_dir: str | Path,
    repository: str | Path,
    name: str = DEFAULT_MODEL,
    include_keras: bool = False,
    *,
    uncalibrated: bool = False,
    reports: str | Path = REPORTS,
) -> list[Path]:
    """Write the run's version folder(s), their records and the run's figures; the paths written.

    ``include_keras`` also keeps the Keras checkpoint in the record
    (``reports/records/<name>/<version>.keras``): the reference ships it so the
    benchmark can time Keras the way the write-up served it. ``uncalibrated``
    ships a run that ``lpr-train calibrate`` has not seen (the published
    reference, as published); otherwise such a run is refused.
    """
    run_dir, repository = Path(run_dir), Path(repository)
    variants = [(name, run_dir)]
    if (int8_folder(run_dir) / MODEL_FILE).is_file():
        variants.append((f"{name}-int8", int8_folder(run_dir)))
    records = [(variant, folder, read_json(folder / METADATA_FILE)) for variant, folder in variants]
    for variant, folder, record in records:  # nothing is written unless every part may be
        if not record.get("calibration") and not uncalibrated:
            raise NotCalibratedError(
                f"{folder} is not calibrated: run `lpr-train calibrate --run {run_dir}` before shipping"
            )
        version = str(record["version"])
        if (repository / variant / version).exists() or record_path(variant, version, reports).exists():
            raise VersionExistsError(
                f"version {version} of {variant} is shipped already and never changes: give the recipe "
                "a new version (training/fitting/recipes.py)"
            )
    written: list[Path] = []
    for variant, folder, record in records:
        record["dataset"] = dataset_record(record["dataset"])
        served = ServedMetadata.from_record(record, name=variant)
        files = write_version(repository, served, folder / MODEL_FILE)
        record["onnx"] = {**record["onnx"], "file": MODEL_FILE, "sha256": sha256_file(files.onnx)}
        keras = run_dir / "best.keras" if include_keras and folder == run_dir else None
        written += [files.onnx, files.metadata, *write_record(variant, files.version, record, reports, keras)]
    return written + _figures(run_dir, name, reports)


def _figures(run_dir: Path, name: str, reports: str | Path) -> list[Path]:
    """The run's figures the card links to, and what the model sees of the colour samples."""
    figures = figures_dir(reports, name)
    figures.mkdir(parents=True, exist_ok=True)
    written = []
    for figure in FIGURES:
        target = figures / figure
        shutil.copyfile(run_dir / figure, target)
        written.append(target)
    samples = sorted(SAMPLES.glob("*.png"))
    if samples:
        written.append(preprocessing_proof(samples, figures / "samples_preprocessed.png"))
    return written
