"""The trained character finder exported to ONNX (checked against Keras), and shipped once per version.

A run folder (:mod:`training.fitting.finder_run`) is exported in place
(``model.onnx``, its parity on painted validation plates in ``record.json``),
calibrated (:mod:`training.evaluation.finder_calibration`), then shipped:
``<repository>/char-finder/<version>/`` holds ``model.onnx`` and the served
``model.json``, the full record goes beside the card. A run not yet
calibrated is refused, as a classifier's is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lpr.char_finder import CharFinder
from lpr.hashing import sha256_file
from lpr.metadata import ServedMetadata, write_version
from lpr.repository import MODEL_FILE
from training.common.outputs import REPORTS, read_json, write_json
from training.common.records import write_record
from training.release.export import OPSET

#: Largest difference between the Keras and the ONNX heads on the probe plates.
PARITY_TOLERANCE = 1e-3
RECORD = "record.json"


class NotCalibratedError(RuntimeError):
    """The run is not ready to ship: ``lpr-train finder calibrate`` and ``compare`` come first."""


def export_finder(run: str | Path, probe: np.ndarray) -> dict:
    """``<run>/model.onnx`` from ``<run>/model.keras``; its parity on ``probe`` (plates, uint8) recorded."""
    import keras
    import tensorflow as tf
    import tf2onnx

    run = Path(run)
    record = read_json(run / RECORD)
    model = keras.models.load_model(run / "model.keras", compile=False)
    spec = record["input"]
    signature = (tf.TensorSpec((None, spec["height"], spec["width"], 1), tf.float32, name="plate"),)

    @tf.function(input_signature=signature)
    def serve(plate: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"head": model(plate, training=False)}

    onnx_path = run / MODEL_FILE
    tf2onnx.convert.from_function(serve, input_signature=signature, opset=OPSET, output_path=str(onnx_path))
    record["onnx"] = {"file": MODEL_FILE, "sha256": sha256_file(onnx_path), "opset": OPSET}
    record.setdefault("version", "0.0.0")
    write_json(run / "model.json", record)
    batch = probe[..., None].astype(np.float32) / 255.0
    keras_out = model.predict(batch, verbose=0)
    parity = float(np.abs(CharFinder(onnx_path, run / "model.json").heads(batch) - keras_out).max())
    if parity > PARITY_TOLERANCE:
        raise RuntimeError(f"the ONNX finder disagrees with Keras by {parity}")
    record["parity"] = {"n": len(probe), "max_abs_diff": parity, "tolerance": PARITY_TOLERANCE}
    write_json(run / RECORD, record)
    (run / "model.json").unlink()
    return record


def ship_finder(
    run: str | Path, repository: str | Path, version: str, reports: str | Path = REPORTS
) -> list[Path]:
    """Write ``<repository>/char-finder/<version>/`` once, and the run's record beside the card."""
    run = Path(run)
    record = read_json(run / RECORD)
    if "calibration" not in record:
        raise NotCalibratedError(
            f"{run} is not calibrated: run `lpr-train finder calibrate --run {run}` first"
        )
    if "naming" not in record:
        raise NotCalibratedError(
            f"{run} has no design chosen: run `lpr-train finder compare --run {run}` first"
        )
    record["version"] = version
    files = write_version(repository, ServedMetadata.from_record(record), run / MODEL_FILE)
    return [files.onnx, files.metadata, *write_record(files.name, files.version, record, reports)]
