"""One run of the letter model into its run folder: the fit (export and bars follow).

The network is the crop classifier's shipped one (the ``multi`` recipe's
compact design, augmentation, optimiser and label smoothing) with one output
per letter of the grammar, on the same preprocessed 32 x 32 input, so the
reader cuts and preprocesses a letter once for both models. The letters
(:mod:`training.fitting.letter_data`) are few for some letters and many for
others (hundreds of च, two real ना), so each class is weighted by the inverse
of its count. The run is then exported and checked against Keras on the validation letters
(:mod:`training.release.letters`) and its bars fitted on them
(:mod:`training.evaluation.letter_calibration`); the held-out bikes' letters are
only measured. ``lpr-train letters ship`` writes the version.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lpr.letter_namer import LETTER_MODEL, glyph
from lpr.preprocessing import InputSpec
from training.common.outputs import write_json
from training.fitting.letter_data import LETTER_LABELS, LetterCrop, arrays
from training.fitting.models import augmenter, build_compact
from training.fitting.recipes import RECIPES
from training.fitting.train import seed_everything

#: The crop classifier's shipped recipe: the letter model's design, augmentation and optimiser.
RECIPE = RECIPES["multi"]
EPOCHS = 30
RECORD = "record.json"


def _dataset(x: np.ndarray, y: np.ndarray, seed: int) -> tf.data.Dataset:
    augment = augmenter(RECIPE, seed)
    targets = keras.utils.to_categorical(y, len(LETTER_LABELS))
    weights = np.bincount(y, minlength=len(LETTER_LABELS)).astype(np.float64)
    per_class = np.where(weights > 0, len(y) / (len(LETTER_LABELS) * np.maximum(weights, 1)), 0.0)
    sample = per_class[y].astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, targets, sample)).shuffle(len(x), seed=seed)
    return (
        data.batch(RECIPE.batch_size)
        .map(lambda a, b, w: (augment(a, training=True), b, w), num_parallel_calls=1)
        .prefetch(2)
    )


def fit(
    x_fit: np.ndarray, y_fit: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, seed: int, epochs: int
) -> tuple[keras.Model, dict[str, list[float]]]:
    """The compact network with a letter per output, fitted with the recipe's cosine-decayed AdamW."""
    seed_everything(seed)
    model = build_compact(RECIPE, len(LETTER_LABELS))
    train = _dataset(x_fit, y_fit, seed)
    steps = int(np.ceil(len(x_fit) / RECIPE.batch_size))
    schedule = keras.optimizers.schedules.CosineDecay(
        RECIPE.learning_rate, decay_steps=epochs * steps, alpha=0.01
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=RECIPE.label_smoothing),
        metrics=["accuracy"],
    )
    validation = (x_val, keras.utils.to_categorical(y_val, len(LETTER_LABELS)))
    history = model.fit(train, validation_data=validation, epochs=epochs, verbose=2)
    return model, {k: [round(float(v), 5) for v in vs] for k, vs in history.history.items()}


def _counts(crops: list[LetterCrop]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter[str]] = {}
    for crop in crops:
        counts.setdefault(crop.label, Counter())[crop.source] += 1
    return {label: dict(counts[label]) for label in LETTER_LABELS if label in counts}


def train_letters(
    out: str | Path,
    sets: dict[str, list[LetterCrop]],
    classifier: dict[str, Any],
    provenance: dict[str, str],
    seed: int = 1,
    epochs: int = EPOCHS,
) -> dict[str, Any]:
    """Fit on ``sets["fit"]`` (validated on ``sets["val"]``); ``model.keras`` and ``record.json`` in ``out``.

    Export (:func:`training.release.letters.export_letters`) and the bars
    (:func:`training.evaluation.letter_calibration.calibrate_run`) come next, into the same record.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec = InputSpec.from_dict(classifier["preprocessing"])
    (x_fit, y_fit), (x_val, y_val) = (arrays(sets[part], spec) for part in ("fit", "val"))
    started = time.perf_counter()
    model, history = fit(x_fit, y_fit, x_val, y_val, seed, epochs)
    seconds = round(time.perf_counter() - started, 1)
    model.save(out / "model.keras")
    digest = hashlib.sha256("\n".join(f"{k} {v}" for k, v in sorted(provenance.items())).encode()).hexdigest()
    record = {
        "name": LETTER_MODEL,
        "version": "0.0.0",
        "architecture": "compact",
        "labels": list(LETTER_LABELS),
        "devanagari": [glyph(label) for label in LETTER_LABELS],
        "input": {**classifier["input"], "shape": [None, *spec.shape]},
        "output": {"name": "probabilities", "shape": [None, len(LETTER_LABELS)]},
        "preprocessing": classifier["preprocessing"],
        "seed": seed,
        "dataset": {"name": "letters", "sha256": digest, "made_of": provenance},
        "training": {
            "recipe": {"from": "multi", "epochs": epochs, "class_weights": "inverse count"},
            "history": history,
            "train_seconds": seconds,
        },
        "letters": {part: _counts(crops) for part, crops in sets.items()},
    }
    write_json(out / RECORD, record)
    return record
