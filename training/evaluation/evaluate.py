"""Honest evaluation of a run on the held-out test split, then export.

Everything is computed from the files on disk through the shared
preprocessing, exactly as the service would see them.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from lpr.labels import LABELS
from lpr.onnx import onnx_predict
from lpr.onnx import session as onnx_session
from lpr.preprocessing import InputSpec
from training.common import figures
from training.common.metrics import score
from training.common.outputs import write_json
from training.data.sources import recipe_splits
from training.release.export import check_parity, metadata, to_onnx, write_metadata


def _run_info(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def evaluate_and_export(run_dir: str | Path, name: str | None = None) -> dict:
    """Score ``best.keras`` on test, draw the figures, export to ONNX, check parity.

    Writes ``metrics.json``, ``model.onnx``, ``model.json`` and the PNG figures
    into the run folder and returns the metadata.
    """
    run_dir = Path(run_dir)
    run = _run_info(run_dir)
    spec = InputSpec.from_dict(run["recipe"]["input"])
    splits = recipe_splits(run["recipe"], run["seed"], run["dataset"]["root"])
    test = splits.test
    x_test = test.load(spec)

    model = keras.models.load_model(run_dir / "best.keras")
    keras_probs = model.predict(x_test, batch_size=128, verbose=0)
    metrics = score(keras_probs, test.labels)
    write_json(run_dir / "metrics.json", metrics)

    fit_split = splits.fit
    predicted = keras_probs.argmax(axis=1)
    figures.samples_per_class(fit_split.paths, fit_split.labels, run_dir / "samples_per_class.png")
    figures.training_curves(run_dir / "history.csv", run_dir / "training_curves.png")
    figures.confusion(metrics["confusion_matrix"], run_dir / "confusion_matrix.png")
    rng = np.random.default_rng(run["seed"])
    shown = np.sort(rng.choice(len(test), size=min(40, len(test)), replace=False))
    figures.prediction_grid(
        x_test[shown],
        test.labels[shown],
        predicted[shown],
        run_dir / "test_predictions.png",
        "Test predictions (true/pred)",
    )
    figures.error_gallery(test.paths, test.labels, predicted, run_dir / "test_errors.png")

    onnx_path = to_onnx(model, run_dir / "model.onnx")
    onnx_probs = onnx_predict(onnx_session(onnx_path), x_test)
    parity = check_parity(keras_probs, onnx_probs)
    meta = metadata(
        name or f"lpr-{run['arch']}", run, spec, score(onnx_probs, test.labels), onnx_path, parity
    )
    write_metadata(meta, run_dir / "model.json")

    print(
        f"test accuracy {metrics['accuracy']:.4f} ({metrics['errors']} errors of {metrics['n']}), "
        f"macro-F1 {metrics['macro_f1']:.4f}, ECE {metrics['ece']:.4f}"
    )
    print(f"{'class':>6} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>4}")
    for label in LABELS:
        c = metrics["per_class"][label]
        print(f"{label:>6} {c['precision']:6.3f} {c['recall']:6.3f} {c['f1']:6.3f} {c['support']:4d}")
    print(
        f"ONNX parity on {parity['n']} test crops: max |diff| {parity['max_abs_diff']:.2e}, "
        f"argmax mismatches {parity['argmax_mismatches']}"
    )
    return meta
