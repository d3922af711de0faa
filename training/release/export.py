"""Keras -> ONNX with tf2onnx, a parity check, and the metadata that travels with the file.

The exported graph has one input ``image`` (float32 NHWC, dynamic batch) and
one output ``probabilities``. Parity is part of export, not an afterthought: a
file that disagrees with its Keras model on the test split is never written as
a finished model.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

from lpr.hashing import sha256_file
from lpr.labels import DEVANAGARI, LABELS, NUM_CLASSES
from lpr.preprocessing import BORDER_BAND, INK_TRIM, WORKING_SIDE, InputSpec
from training.common.outputs import write_json
from training.data.dataset import dataset_record

OPSET = 17
PARITY_TOLERANCE = 1e-4
#: Version of a model whose recipe names none (runs made before recipes carried one).
MODEL_VERSION = "1.0.0"


class ParityError(RuntimeError):
    """The ONNX model and the Keras model disagree."""


def to_onnx(model: keras.Model, path: Path) -> Path:
    """Convert through a traced ``tf.function`` (tf2onnx's Keras 3 path)."""
    signature = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="image"),)

    @tf.function(input_signature=signature)
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probabilities": model(image, training=False)}

    tf2onnx.convert.from_function(serve, input_signature=signature, opset=OPSET, output_path=str(path))
    return path


def check_parity(keras_probs: np.ndarray, onnx_probs: np.ndarray) -> dict:
    """Same argmax everywhere and max |p_keras - p_onnx| within tolerance, or raise."""
    max_diff = float(np.abs(keras_probs - onnx_probs).max()) if len(keras_probs) else 0.0
    argmax_mismatches = int((keras_probs.argmax(1) != onnx_probs.argmax(1)).sum())
    result = {
        "n": len(keras_probs),
        "max_abs_diff": max_diff,
        "argmax_mismatches": argmax_mismatches,
        "tolerance": PARITY_TOLERANCE,
    }
    if argmax_mismatches or max_diff > PARITY_TOLERANCE:
        raise ParityError(f"ONNX and Keras disagree: {result}")
    return result


def metadata(
    name: str, run: dict, spec: InputSpec, test_metrics: dict, onnx_path: Path, parity: dict
) -> dict:
    """The JSON that ships beside the ONNX file; the service's ``GET /model``.

    No absolute path of this machine goes in: the dataset is recorded by its
    folder's name, the model file by its name beside the metadata.
    """
    return {
        "name": name,
        "version": run["recipe"].get("version", MODEL_VERSION),
        "architecture": run["arch"],
        "labels": list(LABELS),
        "devanagari": [DEVANAGARI[label] for label in LABELS],
        "input": {
            "name": "image",
            "shape": [None, *spec.shape],
            "dtype": "float32",
            "layout": "NHWC",
            "range": [0.0, 1.0],
        },
        "output": {"name": "probabilities", "shape": [None, NUM_CLASSES]},
        "preprocessing": {
            **spec.to_dict(),
            "module": "lpr.preprocessing",
            "working_side": WORKING_SIDE,
            "ink_trim": INK_TRIM,
            "border_band": BORDER_BAND,
            "steps": [
                "decode+exif",
                "darkest channel",
                "otsu",
                "glyph white (ring and band)",
                "tight crop",
                "stretch",
            ],
        },
        "seed": run["seed"],
        "training": {
            k: run[k]
            for k in (
                "recipe",
                "epochs_run",
                "best_epoch",
                "best_val_loss",
                "best_val_accuracy",
                "train_seconds",
                "versions",
            )
        },
        "dataset": dataset_record(run["dataset"]),
        "parameters": run["parameters"],
        "flops": run["flops"],
        "test_metrics": {k: test_metrics[k] for k in ("n", "accuracy", "macro_f1", "ece", "errors")},
        "parity": parity,
        "onnx": {
            "file": onnx_path.name,
            "sha256": sha256_file(onnx_path),
            "opset": OPSET,
            "tf2onnx": tf2onnx.__version__,
            "onnxruntime": ort.__version__,
        },
        "quantization": None,
    }


def write_metadata(meta: dict, path: Path) -> Path:
    write_json(path, meta)
    return path
