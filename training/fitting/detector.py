"""The plate detector's network and its fitting on scenes made from the plate photos.

Why this design: a plate is one compact, high-contrast object per vehicle, so
a heatmap of plate centres with each centre's size (CenterNet) finds any
number of them without anchors or a second stage, and it is a few conv
blocks that ONNX Runtime runs in milliseconds on one core. A small feature
pyramid (stride 32 brought back to 16) lets a plate that fills the frame be
seen whole, which a tight crop needs.

The head's input transform and decoder live in :mod:`lpr.detection`, shared
with the service; the training scenes in :mod:`training.synthesis.scenes`; the
export in :mod:`training.release.detector`; the score floor and the detection
figures in :mod:`training.evaluation.detection`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lpr.detection import HEAD, DetectorSpec
from training.data.photos import Photo, open_photos, split_photos
from training.synthesis.scenes import SceneMaker, targets

#: Version of the detector a run makes; a new recipe is a new version.
VERSION = "1.0.0"
SCENES = 6000
EPOCHS = 14
BATCH = 32
SYNTHETIC_PLATES = 300
#: Weight of the offset and size L1 against the centre focal loss: a box must fit to IoU 0.5.
SIZE_WEIGHT = 2.0


@dataclass
class FittedDetector:
    """A fitted detector (Keras) and what its export records about the fit."""

    model: Any
    spec: DetectorSpec
    seed: int
    photos: list[Photo]
    fit: list[Photo]
    val: list[Photo]
    #: Validation scenes scaled to [0, 1]: the export's parity check runs them through both models.
    probe: np.ndarray
    #: The ``training`` block of the detector's ``model.json``.
    training: dict[str, Any]


def build_model(spec: DetectorSpec) -> Any:
    import keras
    from keras import layers

    def conv(x: Any, filters: int, stride: int = 1) -> Any:
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x)

    inputs = keras.Input((spec.side, spec.side, 3), name="image")
    x = conv(inputs, 16, 2)
    x = conv(conv(x, 24, 2), 24)
    x = conv(conv(x, 40, 2), 40)
    c4 = conv(conv(x, 64, 2), 64)  # stride 16: the output grid
    c5 = conv(conv(c4, 96, 2), 96)
    c6 = conv(conv(c5, 128, 2), 128)
    p5 = layers.Add()([layers.UpSampling2D()(layers.Conv2D(64, 1)(c6)), layers.Conv2D(64, 1)(c5)])
    p4 = layers.Add()([layers.UpSampling2D()(p5), layers.Conv2D(64, 1)(c4)])
    h = conv(p4, 64)
    prior = -float(np.log((1 - 0.05) / 0.05))  # the centre logit starts at a 5 % prior: training starts calm
    centre = layers.Conv2D(1, 1, bias_initializer=keras.initializers.Constant(prior))(h)
    rest = layers.Conv2D(len(HEAD) - 1, 1)(h)
    outputs = layers.Concatenate(name="head")([centre, rest])
    return keras.Model(inputs, outputs, name="plate_detector")


def detector_loss(y_true: Any, y_pred: Any) -> Any:
    """CenterNet's focal loss on the centres plus L1 on offset and size at the true centres, per plate."""
    from keras import ops

    heat, mask = y_true[..., 0], y_true[..., 5]
    p = ops.clip(ops.sigmoid(y_pred[..., 0]), 1e-4, 1 - 1e-4)
    positive = ops.cast(heat >= 1.0, "float32")
    focal = -positive * ops.log(p) * (1 - p) ** 2 - (1 - positive) * ops.log(1 - p) * p**2 * (1 - heat) ** 4
    plates = ops.maximum(ops.sum(positive, axis=(1, 2)), 1.0)
    box = ops.sum(ops.abs(y_pred[..., 1:5] - y_true[..., 1:5]) * mask[..., None], axis=(1, 2, 3))
    return (ops.sum(focal, axis=(1, 2)) + SIZE_WEIGHT * box) / plates


def synthetic_plates(data_home: Path, count: int, seed: int) -> list[Any]:
    """Rendered plates from the LPR *training* crops (:mod:`training.synthesis.plates`): tight crops and
    paste-ins."""
    from training.synthesis.plates import generate_plates

    return [p.image for p in generate_plates(data_home / "lpr" / "train", count=count, seed=seed)]


def make_scenes(maker: SceneMaker, count: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``count`` scenes and their head targets, and how many hold no plate."""
    rng = np.random.default_rng(seed)
    spec = maker.spec
    x = np.zeros((count, spec.side, spec.side, 3), dtype=np.uint8)
    y = np.zeros((count, spec.grid, spec.grid, 6), dtype=np.float32)
    empty = 0
    for i in range(count):
        x[i], boxes = maker.scene(rng)
        y[i] = targets(boxes, spec)
        empty += not boxes
    return x, y, empty


def _batches(images: np.ndarray, labels: np.ndarray, shuffle: bool, seed: int) -> Any:
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((images, labels))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed)
    return ds.batch(BATCH).map(lambda a, b: (tf.cast(a, tf.float32) / 255.0, b)).prefetch(2)


def fit_detector(
    data_home: str | Path, out: str | Path, seed: int = 1234, scenes: int = SCENES, epochs: int = EPOCHS
) -> FittedDetector:
    """Fit the detector on scenes of the fitted photos; ``out/best.keras`` is the fitted network."""
    import keras

    data_home, out = Path(data_home), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    spec = DetectorSpec()
    photos = open_photos(data_home / "plate-photos")
    fit_index, val_index = split_photos(photos, seed)
    fit = [photos[i] for i in fit_index]
    val = [photos[i] for i in val_index]
    synthetic = synthetic_plates(data_home, SYNTHETIC_PLATES, seed)
    started = time.time()
    maker = SceneMaker(fit, synthetic, spec)
    x, y, empty = make_scenes(maker, scenes, seed)
    val_x, val_y, _ = make_scenes(SceneMaker(val, [], spec), max(200, scenes // 10), seed + 1)
    elapsed = time.time() - started
    print(f"scenes: {len(x)} fitted ({empty} without a plate), {len(val_x)} validation; {elapsed:.0f} s")

    model = build_model(spec)
    steps = epochs * int(np.ceil(len(x) / BATCH))
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, steps, warmup_target=None)
    model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-4), loss=detector_loss)
    history = model.fit(
        _batches(x, y, True, seed),
        validation_data=_batches(val_x, val_y, False, seed),
        epochs=epochs,
        verbose=2,
    )
    train_seconds = time.time() - started
    model.save(out / "best.keras")
    training = {
        "scenes": len(x),
        "scenes_without_plate": empty,
        "synthetic_plates": len(synthetic),
        "epochs": epochs,
        "batch": BATCH,
        "final_loss": float(history.history["loss"][-1]),
        "final_val_loss": float(history.history["val_loss"][-1]),
        "train_seconds": round(train_seconds),
    }
    probe = val_x[:32].astype(np.float32) / 255.0
    return FittedDetector(model, spec, seed, photos, fit, val, probe, training)
