"""The character finder's network, targets and loss (Keras), after CenterNet (Zhou et al., 2019).

One small FPN over the grey, letterboxed plate (:func:`lpr.char_finder.letterbox`)
answers, at stride 4, a centre heatmap (focal loss on Gaussian-splatted
centres), each centre's offset and log size (L1 at the centre cell), and what
is painted there (cross-entropy over the twelve and ``?`` on the cells near a
centre). Boxes and names come from one network call per plate, so the reader
never round-trips per character.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops
from PIL import Image, ImageOps

from lpr.char_finder import BOX_HEAD, PAD_VALUE, FinderSpec, letterbox

#: Target channels per cell: heat, dx, dy, log w, log h, centre mask, class index (-1: none).
TARGETS = 7
#: The grey margin added around a training plate (share of its size, each side, drawn up to this):
#: most plates fill their letterbox as a detector's box does; a share ``FAR`` are seen from farther
#: off, their characters a few pixels tall, as on a small plate in a photo.
NEAR_MARGIN = 0.25
FAR_MARGIN = 0.8
FAR = 0.3
#: The class head learns on cells whose Gaussian for one character exceeds this.
CLASS_CORE = 0.5


def build(spec: FinderSpec) -> keras.Model:
    """Strides 2–32 encoder, a top-down path back to stride 4, one 3 × 3 head."""

    def conv(x, filters: int, strides: int = 1):
        x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x)

    image = keras.Input((spec.height, spec.width, 1), name="plate")
    x = conv(image, 16, 2)
    c4 = conv(conv(x, 32, 2), 32)
    c8 = conv(conv(c4, 48, 2), 48)
    c16 = conv(conv(c8, 64, 2), 64)
    c32 = conv(conv(c16, 96, 2), 96)
    p16 = layers.Add()([layers.UpSampling2D()(layers.Conv2D(48, 1)(c32)), layers.Conv2D(48, 1)(c16)])
    p8 = layers.Add()([layers.UpSampling2D()(p16), layers.Conv2D(48, 1)(c8)])
    p4 = layers.Add()([layers.UpSampling2D()(p8), layers.Conv2D(48, 1)(c4)])
    h = conv(conv(p4, 48), 48)
    prior = -float(np.log((1 - 0.02) / 0.02))
    centre = layers.Conv2D(1, 1, bias_initializer=keras.initializers.Constant(prior))(h)
    box = layers.Conv2D(len(BOX_HEAD) - 1, 1)(h)
    names = layers.Conv2D(len(spec.labels), 1)(h)
    return keras.Model(image, layers.Concatenate(name="head")([centre, box, names]), name="char_finder")


def loss(y_true, y_pred):
    """Focal heatmap loss + L1 box at centres + class cross-entropy near centres, per character."""
    heat, mask, klass = y_true[..., 0], y_true[..., 5], y_true[..., 6]
    p = ops.clip(ops.sigmoid(y_pred[..., 0]), 1e-4, 1 - 1e-4)
    pos = ops.cast(heat >= 1.0, "float32")
    focal = -pos * ops.log(p) * (1 - p) ** 2 - (1 - pos) * ops.log(1 - p) * p**2 * (1 - heat) ** 4
    n = ops.maximum(ops.sum(pos, axis=(1, 2)), 1.0)
    box = ops.sum(ops.abs(y_pred[..., 1:5] - y_true[..., 1:5]) * mask[..., None], axis=(1, 2, 3))
    known = ops.cast(klass >= 0, "float32")
    index = ops.cast(ops.maximum(klass, 0), "int32")
    ce = keras.losses.sparse_categorical_crossentropy(index, y_pred[..., 5:], from_logits=True)
    cells = ops.maximum(ops.sum(known, axis=(1, 2)), 1.0)
    return (ops.sum(focal, axis=(1, 2)) + box) / n + ops.sum(ce * known, axis=(1, 2)) / cells


def targets(
    boxes: Sequence[tuple[float, float, float, float]], classes: Sequence[int], spec: FinderSpec
) -> np.ndarray:
    """Boxes in the finder's input px and their class index (-1: unknown) → (rows, cols, 7)."""
    rows, cols = spec.grid
    out = np.zeros((rows, cols, TARGETS), np.float32)
    out[..., 6] = -1
    owner = np.zeros((rows, cols), np.float32)
    ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float32) + 0.5
    s = spec.stride
    for (x, y, w, h), klass in zip(boxes, classes, strict=True):
        cx, cy = (x + w / 2) / s, (y + h / 2) / s
        col, row = min(max(int(cx), 0), cols - 1), min(max(int(cy), 0), rows - 1)
        sx, sy = max(0.5, w / s / 6), max(0.5, h / s / 6)
        g = np.exp(-((xs - cx) ** 2) / (2 * sx**2) - ((ys - cy) ** 2) / (2 * sy**2))
        out[..., 0] = np.maximum(out[..., 0], g)
        core = (g > CLASS_CORE) & (g > owner)
        out[..., 6][core] = klass
        owner = np.maximum(owner, g)
        out[row, col, 0] = 1.0
        out[row, col, 1:6] = (cx - col, cy - row, np.log(max(w, 1) / s), np.log(max(h, 1) / s), 1.0)
    return out


def encode(
    image: Image.Image,
    boxes: Sequence[tuple[float, float, float, float]],
    classes: Sequence[int],
    spec: FinderSpec,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A plate and its characters as one training pair: uint8 input (H, W) and targets.

    With ``rng``, a random grey margin is added first, so the plate fills its
    letterbox less (a loose box) and sits off centre.
    """
    if rng is not None:
        w, h = image.size
        reach = FAR_MARGIN if rng.random() < FAR else NEAR_MARGIN  # a plate seen from farther off
        pad = (rng.uniform(0, reach, size=4) * [w, h, w, h]).astype(int)
        image = ImageOps.expand(image, border=tuple(int(v) for v in pad), fill=(PAD_VALUE,) * 3)
        boxes = [(x + pad[0], y + pad[1], bw, bh) for x, y, bw, bh in boxes]
    boxed = letterbox(image, spec)
    ox, oy = boxed.offset
    moved = [
        (x * boxed.scale + ox, y * boxed.scale + oy, w * boxed.scale, h * boxed.scale) for x, y, w, h in boxes
    ]
    return np.round(boxed.pixels[..., 0] * 255).astype(np.uint8), targets(moved, classes, spec)


def _dataset(x: np.ndarray, y: np.ndarray, batch: int, seed: int | None):
    """uint8 plates and float16 targets as a tf.data pipeline; with ``seed``, shuffled and jittered."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    if seed is not None:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)

    def prepare(image, target):
        image = tf.cast(image, tf.float32)[..., None] / 255.0
        if seed is not None:  # light and contrast of a street photo
            image = image * tf.random.uniform([], 0.7, 1.3, seed=seed) + tf.random.uniform(
                [], -0.15, 0.15, seed=seed
            )
            image = tf.clip_by_value(image, 0.0, 1.0)
        return image, tf.cast(target, tf.float32)

    return data.batch(batch).map(prepare).prefetch(2)


def fit(
    model: keras.Model,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    epochs: int,
    seed: int,
    learning_rate: float = 2e-3,
    batch: int = 32,
) -> dict[str, list[float]]:
    """AdamW on a cosine schedule; the history of loss and validation loss."""
    steps = epochs * int(np.ceil(len(train[0]) / batch))
    model.compile(
        optimizer=keras.optimizers.AdamW(
            keras.optimizers.schedules.CosineDecay(learning_rate, steps), weight_decay=1e-4
        ),
        loss=loss,
    )
    history = model.fit(
        _dataset(*train, batch, seed),
        validation_data=_dataset(*validation, batch, None),
        epochs=epochs,
        verbose=2,
    )
    return {k: [float(v) for v in values] for k, values in history.history.items()}
