"""The fitted plate detector exported to ONNX with its metadata, and shipped into the model repository."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from lpr.detection import DETECTOR_MODEL, HEAD, MIN_SCORE, Detector
from lpr.hashing import sha256_file
from lpr.metadata import ServedMetadata, write_version
from lpr.repository import METADATA_FILE, MODEL_FILE
from training.common.outputs import REPORTS, read_json, write_json
from training.common.records import write_record
from training.data.photos import Photo
from training.fitting.detector import VERSION, FittedDetector
from training.release.export import OPSET

#: Largest difference between the Keras and the ONNX heads on the probe scenes.
PARITY_TOLERANCE = 1e-3


def _metadata(fitted: FittedDetector, onnx_path: Path) -> dict[str, Any]:
    spec = fitted.spec
    return {
        "name": DETECTOR_MODEL,
        "version": VERSION,
        "architecture": "centernet-fpn-s16",
        "input": {
            **spec.to_dict(),
            "name": "image",
            "layout": "NHWC",
            "range": [0.0, 1.0],
            "module": "lpr.detection",
        },
        "output": {"name": "head", "channels": list(HEAD)},
        "min_score": MIN_SCORE,
        "seed": fitted.seed,
        "training": fitted.training,
        "dataset": {
            "name": "plate-photos",
            "sha256": _photos_hash(fitted.photos),
            "photos": len(fitted.photos),
            "fit": [p.path.name for p in fitted.fit],
            "validation": [p.path.name for p in fitted.val],
        },
        "parameters": int(fitted.model.count_params()),
        "onnx": {"file": onnx_path.name, "sha256": sha256_file(onnx_path), "opset": OPSET},
    }


def export_detector(fitted: FittedDetector, out: str | Path) -> Path:
    """Write ``out/model.onnx`` and ``out/model.json``, the ONNX heads checked against Keras; ``out``."""
    import tensorflow as tf
    import tf2onnx

    out = Path(out)
    model, spec = fitted.model, fitted.spec
    onnx_path = out / "model.onnx"
    signature = (tf.TensorSpec((None, spec.side, spec.side, 3), tf.float32, name="image"),)

    @tf.function(input_signature=signature)
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"head": model(image, training=False)}

    tf2onnx.convert.from_function(serve, input_signature=signature, opset=OPSET, output_path=str(onnx_path))
    keras_out = model.predict(fitted.probe, verbose=0)
    meta = _metadata(fitted, onnx_path)
    write_json(out / "model.json", meta)
    parity = float(np.abs(Detector(onnx_path, out / "model.json").heads(fitted.probe) - keras_out).max())
    if parity > PARITY_TOLERANCE:
        raise RuntimeError(f"the ONNX detector disagrees with Keras by {parity}")
    meta["parity"] = {"n": len(fitted.probe), "max_abs_diff": parity}
    write_json(out / "model.json", meta)
    return out


def _photos_hash(photos: list[Photo]) -> str:
    digest = hashlib.sha256()
    for photo in photos:
        digest.update(photo.path.name.encode())
        digest.update(sha256_file(photo.path).encode())
        digest.update(repr(photo.box).encode())
    return digest.hexdigest()


def ship_detector(run: str | Path, repository: str | Path, reports: str | Path = REPORTS) -> list[Path]:
    """Write ``<repository>/plate-detector/<version>/`` once, and the run's record beside the card.

    The score floor (:func:`training.evaluation.detection.settle`) is chosen on
    the run before it ships, so the shipped folder is final when written.
    """
    run = Path(run)
    record = read_json(run / METADATA_FILE)
    files = write_version(repository, ServedMetadata.from_record(record), run / MODEL_FILE)
    return [files.onnx, files.metadata, *write_record(files.name, files.version, record, reports)]
