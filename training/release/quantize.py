"""Static int8 quantisation with ONNX Runtime, calibrated on training crops.

The int8 variant is only worth shipping if it is both faster and (nearly) as
accurate, so this module measures both on the spot and says which won.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_static,
)

from lpr.hashing import sha256_file
from lpr.onnx import onnx_predict
from lpr.onnx import session as onnx_session
from lpr.preprocessing import InputSpec
from lpr.repository import DEFAULT_MODEL, DEFAULT_REPOSITORY, MODEL_FILE, locate, place
from training.common.metrics import score
from training.common.outputs import write_json
from training.common.timing import ms_per_image
from training.data.dataset import dataset_record
from training.data.sources import model_splits

#: The int8 variant of the shipped model, shipped under the same version.
INT8_MODEL = f"{DEFAULT_MODEL}-int8"

#: Largest accuracy loss (in points) that still lets int8 be the default.
MAX_ACCURACY_DROP = 0.3
#: int8 must beat float by this share at batch 1 (a lone ``/predict``) and at
#: batch 64 (a full batch) to be called faster: smaller gaps are within
#: run-to-run noise on two cores.
MIN_SPEEDUP = 0.10


class _Crops(CalibrationDataReader):
    def __init__(self, x: np.ndarray, input_name: str, batch: int = 32) -> None:
        # Whole batches only: the histogram calibrators stack per-batch outputs.
        self._batches = iter([{input_name: x[i : i + batch]} for i in range(0, len(x) - batch + 1, batch)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def quantize(float_model: str | Path, out: str | Path, calibration: np.ndarray) -> Path:
    """Quantise weights and activations to int8 (QDQ, per-channel weights)."""
    float_model, out = Path(float_model), Path(out)
    prepared = out.with_suffix(".pre.onnx")
    quant_pre_process(str(float_model), str(prepared))
    quantize_static(
        str(prepared),
        str(out),
        _Crops(calibration, "image"),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        # 7-bit weights: without VNNI (AVX2 only, as here) u8 x s8 products
        # saturate, which cost 13 accuracy points before this was set.
        reduce_range=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )
    prepared.unlink()
    return out


def quantize_shipped(
    repository: str | Path = DEFAULT_REPOSITORY, calibration_crops: int = 600, data: str | Path | None = None
) -> dict:
    """Quantise the newest ``lpr-default`` into ``lpr-default-int8`` of the same version; compare both.

    Calibration uses crops from the training part of ``train/`` (never the
    validation or test crops); the comparison is on the test split. ``data``:
    the dataset root, by default ``../shared/data/<the name the metadata records>``.
    The float model's metadata gets the comparison (``quantization``); the int8
    file ships with metadata of its own, so it can be served by name.
    """
    repository = Path(repository)
    shipped = locate(repository, DEFAULT_MODEL)
    meta = json.loads(shipped.metadata.read_text())
    meta["dataset"] = dataset_record(meta["dataset"])
    spec = InputSpec.from_dict(meta["preprocessing"])
    splits = model_splits(meta, data)
    fit = splits.fit
    rng = np.random.default_rng(meta["seed"])
    pick = np.sort(rng.choice(len(fit), size=min(calibration_crops, len(fit)), replace=False))
    variant = place(repository, INT8_MODEL, shipped.version)
    quantize(shipped.onnx, variant.onnx, fit.subset(pick).load(spec))

    x_test = splits.test.load(spec)
    result = {}
    test_metrics = {}
    for kind, files in (("float32", shipped), ("int8", variant)):
        metrics = score(onnx_predict(onnx_session(files.onnx), x_test), splits.test.labels)
        test_metrics[kind] = {k: metrics[k] for k in ("n", "accuracy", "macro_f1", "ece", "errors")}
        result[kind] = {
            "file": files.relative,  # relative to the repository, never this machine's path
            "sha256": sha256_file(files.onnx),
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "ms_per_image_batch1": ms_per_image(files.onnx, 1),
            "ms_per_image_batch64": ms_per_image(files.onnx, 64),
        }
    drop = (result["float32"]["accuracy"] - result["int8"]["accuracy"]) * 100
    # Faster at both ends of the service's batch sizes: a lone /predict and a full batch.
    faster = all(
        result["int8"][key] < (1 - MIN_SPEEDUP) * result["float32"][key]
        for key in ("ms_per_image_batch1", "ms_per_image_batch64")
    )
    result["accuracy_drop_points"] = round(drop, 3)
    result["int8_qualifies"] = bool(drop <= MAX_ACCURACY_DROP and faster)
    result["calibration_crops"] = len(pick)
    result["timed_with"] = "the service's session settings (1 intra-op thread, no spinning)"
    result["served_by_default"] = "int8" if result["int8_qualifies"] else "float32"
    meta["quantization"] = result
    write_json(shipped.metadata, meta)
    int8_meta = {
        **meta,
        "name": INT8_MODEL,
        "onnx": {**meta["onnx"], "file": MODEL_FILE, "sha256": result["int8"]["sha256"]},
        # The int8 file's own test figures, not the float file's.
        "test_metrics": {**meta["test_metrics"], **test_metrics["int8"]},
    }
    write_json(variant.metadata, int8_meta)
    return result


def summary(result: dict) -> str:
    """The measurement for the command line: both files, then the verdict."""
    lines = [
        f"{kind:>8}: accuracy {result[kind]['accuracy']:.4f}, {result[kind]['ms_per_image_batch1']:.3f} "
        f"ms/image at batch 1, {result[kind]['ms_per_image_batch64']:.3f} at batch 64"
        for kind in ("float32", "int8")
    ]
    lines.append(
        f"accuracy drop {result['accuracy_drop_points']:.2f} points; "
        f"int8 meets the bar: {result['int8_qualifies']}; served: {result['served_by_default']}"
    )
    return "\n".join(lines)
