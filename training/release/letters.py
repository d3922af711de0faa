"""The letter model shipped once per version: ``<repository>/plate-letters/<version>/`` and its record.

A run of ``lpr-train letters train`` is exported, checked against Keras and
calibrated in its folder (:mod:`training.fitting.letter_run`); shipping writes
the served ``model.json`` (labels, preprocessing, temperature and each letter's
bar) through the one metadata writer, and the run's full record beside the card.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lpr.hashing import sha256_file
from lpr.metadata import ServedMetadata, write_version
from lpr.onnx import onnx_predict
from lpr.onnx import session as onnx_session
from lpr.repository import MODEL_FILE
from training.common.outputs import REPORTS, read_json, write_json
from training.common.records import write_record
from training.fitting.letter_run import RECORD
from training.release.export import OPSET, check_parity, to_onnx


class NotCalibratedError(RuntimeError):
    """The run has no bars yet: ``lpr-train letters train`` fits them before anything ships."""


def export_letters(run: str | Path, probe: np.ndarray) -> dict:
    """``<run>/model.onnx`` from ``<run>/model.keras``, checked against Keras on ``probe`` (preprocessed)."""
    import keras

    run = Path(run)
    record = read_json(run / RECORD)
    model = keras.models.load_model(run / "model.keras", compile=False)
    onnx_path = to_onnx(model, run / MODEL_FILE)
    record["parity"] = check_parity(
        model.predict(probe, verbose=0), onnx_predict(onnx_session(onnx_path), probe)
    )
    record["onnx"] = {"file": MODEL_FILE, "sha256": sha256_file(onnx_path), "opset": OPSET}
    write_json(run / RECORD, record)
    return record


def ship_letters(
    run: str | Path, repository: str | Path, version: str, reports: str | Path = REPORTS
) -> list[Path]:
    """Write the version once (refused if it exists), then its record."""
    run = Path(run)
    record = {**read_json(run / RECORD), "version": version}
    if "calibration" not in record:
        raise NotCalibratedError(f"{run} has no letter bars: run `lpr-train letters train --run {run}` again")
    files = write_version(repository, ServedMetadata.from_record(record), run / MODEL_FILE)
    return [files.onnx, files.metadata, *write_record(files.name, files.version, record, reports)]
