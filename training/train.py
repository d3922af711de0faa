"""Seeded training of one recipe into a run folder.

A run folder holds everything needed to evaluate, export and audit the run:
``best.keras`` (the checkpoint of the best validation epoch), ``history.csv``,
``run.json`` (recipe, seed, dataset hash, split sizes, timings, versions).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from training.augment import augmented_inputs, load_masks
from training.data import Dataset, Split, open_dataset, stratified_split
from lpr.labels import LABELS, NUM_CLASSES
from training.models import RECIPES, Recipe, augmenter, build, count_flops
from training.outlier_exposure import describe, outlier_count, outlier_set, with_outliers
from training.plate_glyphs import SEED_OFFSET as PLATE_SEED_OFFSET
from training.plate_glyphs import plate_glyphs
from lpr.preprocessing import normalise_into


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds plus deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def _per_class_limit(split: Split, limit: int | None) -> Split:
    if limit is None:
        return split
    keep = np.concatenate([np.flatnonzero(split.labels == c)[:limit] for c in range(NUM_CLASSES)])
    return split.subset(np.sort(keep))


def _pipeline(
    x: np.ndarray, targets: np.ndarray, recipe: Recipe, seed: int, training: bool
) -> tf.data.Dataset:
    """Batches of ``(input, target distribution)``: one-hot, or uniform for outliers."""
    data = tf.data.Dataset.from_tensor_slices((x, targets.astype(np.float32)))
    if training:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(recipe.batch_size)
    if training:
        augment = augmenter(recipe, seed)
        data = data.map(lambda a, b: (augment(a, training=True), b), num_parallel_calls=1)
    return data.prefetch(tf.data.AUTOTUNE)


def resolve_recipe(arch: str, epochs: int | None = None, batch_size: int | None = None) -> Recipe:
    recipe = RECIPES[arch]
    overrides = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size}.items() if v is not None}
    return dataclasses.replace(recipe, **overrides)


def train(
    data_root: str | Path,
    out_dir: str | Path,
    arch: str = "default",
    seed: int = 1234,
    epochs: int | None = None,
    batch_size: int | None = None,
    limit_per_class: int | None = None,
    verbose: int = 2,
) -> Path:
    """Train ``arch`` on ``data_root`` and return the run folder."""
    recipe = resolve_recipe(arch, epochs, batch_size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)

    dataset: Dataset = open_dataset(data_root, seed=seed)
    fit_split, val_split = stratified_split(dataset.train, recipe.val_fraction, seed)
    fit_split = _per_class_limit(fit_split, limit_per_class)
    val_split = _per_class_limit(val_split, limit_per_class)
    print(f"dataset {dataset.root} ({dataset.layout} layout)")
    print(f"{'class':>6} {'train':>6} {'val':>5} {'test':>5}")
    fit_counts, val_counts, test_counts = fit_split.counts(), val_split.counts(), dataset.test.counts()
    for label in LABELS:
        print(f"{label:>6} {fit_counts[label]:>6} {val_counts[label]:>5} {test_counts[label]:>5}")
    print(f"{'total':>6} {len(fit_split):>6} {len(val_split):>5} {len(dataset.test):>5}")

    x_val, y_fit = val_split.load(recipe.input), fit_split.labels
    if recipe.ink_copies:
        masks = load_masks(fit_split.paths)
        x_fit, y_fit = augmented_inputs(
            masks,
            y_fit,
            recipe.input,
            recipe.ink_copies,
            seed,
            recipe.frame_bars,
            recipe.neighbours,
            recipe.rings,
        )
    else:
        x_fit = fit_split.load(recipe.input)
    plates = None
    if recipe.plate_glyphs:
        masks_p, y_p, used = plate_glyphs(fit_split.by_class(), recipe.plate_glyphs, seed)
        x_p = normalise_into(masks_p, recipe.input, np.empty((len(masks_p), *recipe.input.shape), np.float32))
        x_fit, y_fit = np.concatenate([x_fit, x_p]), np.concatenate([y_fit, y_p])
        plates = {
            "plates": recipe.plate_glyphs,
            "used": used,
            "glyphs": len(masks_p),
            "seed": seed + PLATE_SEED_OFFSET,
        }
        print(f"plate glyphs: {len(masks_p)} glyphs from {used} of {recipe.plate_glyphs} synthetic plates")
    outliers = None
    if recipe.outlier_exposure:
        n_out = outlier_count(recipe.outlier_exposure, len(x_fit))
        x_out = outlier_set(n_out, recipe.input, seed)
        outliers = describe(n_out, seed)
        print(f"outlier exposure: {n_out} out-of-class crops with uniform targets (seed {outliers['seed']})")
        x_fit, t_fit = with_outliers(x_fit, y_fit, x_out)
    else:
        t_fit = keras.utils.to_categorical(y_fit, NUM_CLASSES)
    steps = int(np.ceil(len(x_fit) / recipe.batch_size))
    model = build(recipe, steps_per_epoch=steps)
    model.summary(print_fn=lambda line, **_: print(line))

    checkpoint = out / "best.keras"
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.ModelCheckpoint(checkpoint, monitor="val_loss", save_best_only=True),
        keras.callbacks.CSVLogger(str(out / "history.csv")),
        keras.callbacks.TerminateOnNaN(),
    ]
    if recipe.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=recipe.early_stopping_patience)
        )
    started = time.perf_counter()
    history = model.fit(
        _pipeline(x_fit, t_fit, recipe, seed, training=True),
        validation_data=_pipeline(
            x_val, keras.utils.to_categorical(val_split.labels, NUM_CLASSES), recipe, seed, training=False
        ),
        epochs=recipe.epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    val_loss = history.history["val_loss"]
    best_epoch = int(np.argmin(val_loss)) + 1

    run = {
        "arch": arch,
        "recipe": recipe.to_dict(),
        "seed": seed,
        "dataset": {
            "root": str(dataset.root),
            "layout": dataset.layout,
            "sha256": dataset.sha256(),
            "counts": {"train": fit_counts, "val": val_counts, "test": test_counts},
            "sizes": {"train": len(fit_split), "val": len(val_split), "test": len(dataset.test)},
            "limit_per_class": limit_per_class,
        },
        "outlier_exposure": outliers,
        "plate_glyphs": plates,
        "epochs_run": len(val_loss),
        "best_epoch": best_epoch,
        "best_val_loss": float(val_loss[best_epoch - 1]),
        "best_val_accuracy": float(history.history["val_accuracy"][best_epoch - 1]),
        "train_seconds": round(train_seconds, 1),
        "parameters": int(model.count_params()),
        "flops": count_flops(model),
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        "machine": f"{platform.machine()}, {len(tf.config.list_logical_devices('CPU'))} TF CPU device(s)",
    }
    (out / "run.json").write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n")
    print(
        f"best epoch {best_epoch}: val_loss {run['best_val_loss']:.4f}, "
        f"val_accuracy {run['best_val_accuracy']:.4f}; trained in {train_seconds:.0f} s"
    )
    return out
