"""Static int8 quantisation with ONNX Runtime, calibrated on training crops.

The int8 variant is only worth shipping if it is both faster and (nearly) as
accurate, so this module measures both on the spot and says which won.
"""

from __future__ import annotations

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
from lpr.repository import DEFAULT_MODEL, METADATA_FILE, MODEL_FILE
from training.common.metrics import score
from training.common.outputs import read_json, write_json
from training.common.timing import ms_per_image
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


def quantize_run(run: str | Path, calibration_crops: int = 600, data: str | Path | None = None) -> dict:
    """Quantise a run's model into ``<run>/int8/`` and compare both; the verdict goes into both records.

    Runs before ``lpr-train ship``, which ships the int8 copy as ``<name>-int8``
    of the same version: a shipped version is never rewritten, so the int8 file,
    its figures and the gate's verdict must exist before it is shipped.
    Calibration uses crops from the training part of ``train/`` (never the
    validation or test crops); the comparison is on the test split. ``data``:
    the dataset root, by default ``../shared/data/<the name the metadata records>``.
    """
    run = Path(run)
    meta = read_json(run / METADATA_FILE)
    spec = InputSpec.from_dict(meta["preprocessing"])
    splits = model_splits(meta, data)
    fit = splits.fit
    rng = np.random.default_rng(meta["seed"])
    pick = np.sort(rng.choice(len(fit), size=min(calibration_crops, len(fit)), replace=False))
    variant = int8_folder(run)
    variant.mkdir(exist_ok=True)
    quantize(run / MODEL_FILE, variant / MODEL_FILE, fit.subset(pick).load(spec))

    x_test = splits.test.load(spec)
    result: dict = {}
    test_metrics = {}
    for kind, name, folder in (("float32", DEFAULT_MODEL, run), ("int8", INT8_MODEL, variant)):
        metrics = score(onnx_predict(onnx_session(folder / MODEL_FILE), x_test), splits.test.labels)
        test_metrics[kind] = {k: metrics[k] for k in ("n", "accuracy", "macro_f1", "ece", "errors")}
        result[kind] = {
            # where it ships, relative to the repository, never this machine's path
            "file": f"{name}/{meta['version']}/{MODEL_FILE}",
            "sha256": sha256_file(folder / MODEL_FILE),
            "accuracy": metrics["accuracy"],
            "macro_f1": metrics["macro_f1"],
            "ms_per_image_batch1": ms_per_image(folder / MODEL_FILE, 1),
            "ms_per_image_batch64": ms_per_image(folder / MODEL_FILE, 64),
        }
    result.update(_verdict(result, len(pick)))
    meta["quantization"] = result
    write_json(run / METADATA_FILE, meta)
    int8_meta = {
        **meta,
        "name": INT8_MODEL,
        "onnx": {**meta["onnx"], "sha256": result["int8"]["sha256"]},
        # The int8 file's own test figures, not the float file's.
        "test_metrics": {**meta["test_metrics"], **test_metrics["int8"]},
    }
    write_json(variant / METADATA_FILE, int8_meta)
    return result


def int8_folder(run: Path) -> Path:
    """Where ``quantize_run`` puts a run's int8 copy, and ``ship`` finds it."""
    return Path(run) / "int8"


def _verdict(result: dict, crops: int) -> dict:
    """Whether int8 may be served by default: it reads as well and is faster at both batch ends."""
    drop = (result["float32"]["accuracy"] - result["int8"]["accuracy"]) * 100
    # Faster at both ends of the service's batch sizes: a lone /predict and a full batch.
    faster = all(
        result["int8"][key] < (1 - MIN_SPEEDUP) * result["float32"][key]
        for key in ("ms_per_image_batch1", "ms_per_image_batch64")
    )
    qualifies = bool(drop <= MAX_ACCURACY_DROP and faster)
    return {
        "accuracy_drop_points": round(drop, 3),
        "int8_qualifies": qualifies,
        "calibration_crops": crops,
        "timed_with": "the service's session settings (1 intra-op thread, no spinning)",
        "served_by_default": "int8" if qualifies else "float32",
    }


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
