"""Copying a finished run into ``models/``, where the service and the Docker image find it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from training.figures import preprocessing_proof
from lpr.hashing import sha256_file

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"

#: Figures of the shipped run that the model card links to.
FIGURES = (
    "samples_per_class.png",
    "training_curves.png",
    "confusion_matrix.png",
    "test_predictions.png",
    "test_errors.png",
)


def ship(
    run_dir: str | Path, models_dir: str | Path, name: str = "lpr-default", include_keras: bool = False
) -> list[Path]:
    """Write ``<name>.onnx``, ``<name>.json`` and ``figures/`` into ``models_dir``.

    ``include_keras`` also copies the Keras checkpoint: the reference ships it so
    the benchmark can time Keras the way the write-up served it.
    """
    run_dir, models_dir = Path(run_dir), Path(models_dir)
    (models_dir / "figures").mkdir(parents=True, exist_ok=True)
    onnx_path = models_dir / f"{name}.onnx"
    shutil.copyfile(run_dir / "model.onnx", onnx_path)
    meta = json.loads((run_dir / "model.json").read_text())
    meta["name"] = name
    meta["onnx"]["file"] = onnx_path.name
    meta["onnx"]["sha256"] = sha256_file(onnx_path)
    meta_path = models_dir / f"{name}.json"
    meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    written = [onnx_path, meta_path]
    for figure in FIGURES:
        target = models_dir / "figures" / figure
        shutil.copyfile(run_dir / figure, target)
        written.append(target)
    if include_keras:
        target = models_dir / f"{name}.keras"
        shutil.copyfile(run_dir / "best.keras", target)
        written.append(target)
    samples = sorted(SAMPLES.glob("*.png"))
    if samples:
        written.append(preprocessing_proof(samples, models_dir / "figures" / "samples_preprocessed.png"))
    return written
