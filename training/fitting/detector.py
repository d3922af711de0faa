"""The plate detector: a small CenterNet-style network trained on the plate photos, exported to ONNX.

Why this design: a plate is one compact, high-contrast object per vehicle, so
a heatmap of plate centres with each centre's size (CenterNet) finds any
number of them without anchors or a second stage, and it is a few conv
blocks that ONNX Runtime runs in milliseconds on one core. A small feature
pyramid (stride 32 brought back to 16) lets a plate that fills the frame be
seen whole, which a tight crop needs.

The head's input transform and decoder live in :mod:`lpr.detection`, shared
with the service; the training scenes in :mod:`training.photos`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from lpr.detection import (
    DETECTOR_MODEL,
    HEAD,
    MIN_SCORE,
    Detection,
    Detector,
    DetectorSpec,
    iou,
)
from lpr.hashing import sha256_file
from lpr.repository import place
from training.common.outputs import write_json
from training.data.photos import Photo, SceneMaker, open_photos, split_photos, targets

#: Version of the detector a run makes; a new recipe is a new version.
VERSION = "1.0.0"
SCENES = 6000
EPOCHS = 14
BATCH = 32
SYNTHETIC_PLATES = 300
#: Weight of the offset and size L1 against the centre focal loss: a box must fit to IoU 0.5.
SIZE_WEIGHT = 2.0
#: Lowest and highest peak-score floors tried when the floor is chosen on validation photos. The
#: ceiling stays well under the scores of plates the detector has seen: a couple of dozen
#: validation photos cannot justify dropping every plate it is only fairly sure of.
MIN_SCORE_FLOOR = 0.2
MIN_SCORE_CEILING = 0.6
#: IoU at which a found box counts as the plate.
MATCH_IOU = 0.5


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
    """Rendered plates from the LPR *training* crops (``training.plates``): tight crops and paste-ins."""
    from training.synthesis.plates import generate_plates

    return [p.image for p in generate_plates(data_home / "lpr" / "train", count=count, seed=seed)]


def make_scenes(maker: SceneMaker, count: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
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


def match(found: list[Detection], truth: list[tuple[float, float, float, float]]) -> tuple[int, int]:
    """``(true positives, false positives)``: each true box matched at most once at IoU ≥ ``MATCH_IOU``."""
    left = [Detection(x0, y0, x1 - x0, y1 - y0, 1.0) for x0, y0, x1, y1 in truth]
    tp = 0
    for box in found:
        hit = next((t for t in left if iou(box, t) >= MATCH_IOU), None)
        if hit is not None:
            left.remove(hit)
            tp += 1
    return tp, len(found) - tp


def choose_min_score(detector: Detector, photos: list[Photo]) -> float:
    """The lowest peak score kept as a plate, chosen on validation photos: best F2 at IoU ≥ 0.5.

    F2 weighs recall four times precision: a missed plate is lost, while a false box is read and,
    having no plate's characters, answered doubtful. Decoded once with a low floor; each
    candidate floor (:data:`MIN_SCORE_FLOOR` to :data:`MIN_SCORE_CEILING`) then keeps the boxes
    above it; ties go to the lower floor.
    """
    found = [(detector.detect(photo.image(), MIN_SCORE_FLOOR), photo) for photo in photos]
    best, best_f2 = MIN_SCORE, -1.0
    for floor in np.round(np.arange(MIN_SCORE_FLOOR, MIN_SCORE_CEILING + 0.01, 0.05), 2):
        tp = fp = 0
        for boxes, photo in found:
            hits, misses = match([b for b in boxes if b.score >= floor], [photo.box])
            tp, fp = tp + hits, fp + misses
        recall, precision = tp / max(len(photos), 1), tp / max(tp + fp, 1)
        f2 = 5 * recall * precision / max(4 * precision + recall, 1e-9)
        if f2 > best_f2 + 1e-9:
            best, best_f2 = float(floor), f2
    return best


def detection_scores(detector: Detector, photos: list[Photo]) -> dict[str, Any]:
    """Recall and precision at IoU ≥ 0.5 on photos, through the service's detector (stored grid)."""
    tp = fp = 0
    per_photo = []
    for photo in photos:
        image = photo.image()
        found = detector.detect(image)
        hits, misses = match(found, [photo.box])
        tp, fp = tp + hits, fp + misses
        per_photo.append({"file": photo.path.name, "found": len(found), "hit": bool(hits)})
    return {
        "photos": len(photos),
        "recall": tp / len(photos) if photos else 0.0,
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "false_boxes": fp,
        "per_photo": per_photo,
    }


def train_detector(
    data_home: str | Path, out: str | Path, seed: int = 1234, scenes: int = SCENES, epochs: int = EPOCHS
) -> Path:
    """Train, export and check the detector into ``out`` (``model.onnx``, ``model.json``)."""
    import keras
    import tensorflow as tf

    from training.release.export import OPSET

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

    def batches(images: np.ndarray, labels: np.ndarray, shuffle: bool) -> Any:
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        if shuffle:
            ds = ds.shuffle(len(images), seed=seed)
        return ds.batch(BATCH).map(lambda a, b: (tf.cast(a, tf.float32) / 255.0, b)).prefetch(2)

    history = model.fit(
        batches(x, y, True), validation_data=batches(val_x, val_y, False), epochs=epochs, verbose=2
    )
    train_seconds = time.time() - started
    model.save(out / "best.keras")

    onnx_path = out / "model.onnx"
    signature = (tf.TensorSpec((None, spec.side, spec.side, 3), tf.float32, name="image"),)

    @tf.function(input_signature=signature)
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"head": model(image, training=False)}

    import tf2onnx

    tf2onnx.convert.from_function(serve, input_signature=signature, opset=OPSET, output_path=str(onnx_path))
    probe = val_x[:32].astype(np.float32) / 255.0
    keras_out = model.predict(probe, verbose=0)
    meta: dict[str, Any] = {
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
        "seed": seed,
        "training": {
            "scenes": len(x),
            "scenes_without_plate": empty,
            "synthetic_plates": len(synthetic),
            "epochs": epochs,
            "batch": BATCH,
            "final_loss": float(history.history["loss"][-1]),
            "final_val_loss": float(history.history["val_loss"][-1]),
            "train_seconds": round(train_seconds),
        },
        "dataset": {
            "name": "plate-photos",
            "sha256": _photos_hash(photos),
            "photos": len(photos),
            "fit": [p.path.name for p in fit],
            "validation": [p.path.name for p in val],
        },
        "parameters": int(model.count_params()),
        "onnx": {"file": onnx_path.name, "sha256": sha256_file(onnx_path), "opset": OPSET},
    }
    write_json(out / "model.json", meta)
    detector = Detector(onnx_path, out / "model.json")
    onnx_out = detector.heads(probe)
    parity = float(np.abs(onnx_out - keras_out).max())
    if parity > 1e-3:
        raise RuntimeError(f"the ONNX detector disagrees with Keras by {parity}")
    meta["parity"] = {"n": len(probe), "max_abs_diff": parity}
    write_json(out / "model.json", meta)
    return settle(out, data_home)


def settle(run: str | Path, data_home: str | Path) -> Path:
    """Choose the run's score floor on its validation photos and record both sides' detection figures."""
    run = Path(run)
    path = run / "model.json"
    meta = json.loads(path.read_text())
    photos = {p.path.name: p for p in open_photos(Path(data_home) / "plate-photos")}
    val = [photos[name] for name in meta["dataset"]["validation"]]
    fit = [photos[name] for name in meta["dataset"]["fit"]]
    meta["min_score"] = choose_min_score(Detector(run / "model.onnx", path), val)
    meta["min_score_rule"] = "best F2 (recall first) at IoU >= 0.5 on the validation photos, floors 0.20-0.60"
    write_json(path, meta)
    detector = Detector(run / "model.onnx", path)
    meta["validation"] = {k: v for k, v in detection_scores(detector, val).items() if k != "per_photo"}
    meta["fit_photos"] = {k: v for k, v in detection_scores(detector, fit).items() if k != "per_photo"}
    write_json(path, meta)
    return run


def _photos_hash(photos: list[Photo]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for photo in photos:
        digest.update(photo.path.name.encode())
        digest.update(sha256_file(photo.path).encode())
        digest.update(repr(photo.box).encode())
    return digest.hexdigest()


def ship_detector(run: str | Path, repository: str | Path, force: bool = False) -> list[Path]:
    """Copy a detector run into ``<repository>/plate-detector/<version>/``."""
    import shutil

    run = Path(run)
    meta = json.loads((run / "model.json").read_text())
    target = Path(repository) / DETECTOR_MODEL / meta["version"]
    if target.exists() and not force:
        raise FileExistsError(f"{target} exists; give the detector a new version or pass --force")
    files = place(Path(repository), DETECTOR_MODEL, meta["version"])
    shutil.copyfile(run / "model.onnx", files.onnx)
    shutil.copyfile(run / "model.json", files.metadata)
    return [files.onnx, files.metadata]
