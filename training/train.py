"""Seeded training of one recipe into a run folder.

:func:`train` reads top to bottom like a Keras example: load the data, split
off validation, build the inputs, build the model, fit it with callbacks, save
the run. A run folder holds everything needed to evaluate, export and audit
it: ``best.keras`` (the checkpoint of the best validation epoch),
``history.csv`` and ``run.json`` (recipe, seed, dataset hash, split sizes,
timings, versions). The test split is opened (to count it) but never read.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lpr.labels import LABELS, NUM_CLASSES
from training.augment import augmented_inputs, load_masks
from training.data import Dataset, Split, open_dataset, stratified_split
from training.models import augmenter, build, count_flops
from training.outlier_exposure import describe, outlier_count, outlier_set, with_outliers
from training.recipes import RECIPES, SHIPPED, Recipe


def seed_everything(seed: int) -> None:
    """Python, NumPy and TensorFlow seeds plus deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def resolve_recipe(arch: str, epochs: int | None = None, batch_size: int | None = None) -> Recipe:
    recipe = RECIPES[arch]
    overrides = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size}.items() if v is not None}
    return dataclasses.replace(recipe, **overrides)


def _per_class_limit(split: Split, limit: int | None) -> Split:
    if limit is None:
        return split
    keep = np.concatenate([np.flatnonzero(split.labels == c)[:limit] for c in range(NUM_CLASSES)])
    return split.subset(np.sort(keep))


def fit_and_validation(
    dataset: Dataset, recipe: Recipe, seed: int, limit_per_class: int | None = None
) -> tuple[Split, Split]:
    """The training pool split, stratified and seeded, into the crops fitted and the validation crops."""
    fit_split, val_split = stratified_split(dataset.train, recipe.val_fraction, seed)
    return _per_class_limit(fit_split, limit_per_class), _per_class_limit(val_split, limit_per_class)


def print_counts(dataset: Dataset, fit_split: Split, val_split: Split) -> None:
    print(f"dataset {dataset.root} ({dataset.layout} layout)")
    print(f"{'class':>6} {'train':>6} {'val':>5} {'test':>5}")
    fit_counts, val_counts, test_counts = fit_split.counts(), val_split.counts(), dataset.test.counts()
    for label in LABELS:
        print(f"{label:>6} {fit_counts[label]:>6} {val_counts[label]:>5} {test_counts[label]:>5}")
    print(f"{'total':>6} {len(fit_split):>6} {len(val_split):>5} {len(dataset.test):>5}")


def fit_inputs(
    fit_split: Split, recipe: Recipe, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any] | None]:
    """The fit set as model inputs and target distributions, and what its outliers were (or ``None``).

    The crops themselves, or their seeded re-binarised variants (``ink_copies``);
    then, with outlier exposure, out-of-class crops with a uniform target.
    """
    y_fit = fit_split.labels
    if recipe.ink_copies:
        x_fit, y_fit = augmented_inputs(
            load_masks(fit_split.paths),
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
    if not recipe.outlier_exposure:
        return x_fit, keras.utils.to_categorical(y_fit, NUM_CLASSES), None
    n_out = outlier_count(recipe.outlier_exposure, len(x_fit))
    x_out = outlier_set(n_out, recipe.input, seed)
    outliers = describe(n_out, seed)
    print(f"outlier exposure: {n_out} out-of-class crops with uniform targets (seed {outliers['seed']})")
    x_fit, t_fit = with_outliers(x_fit, y_fit, x_out)
    return x_fit, t_fit, outliers


def pipeline(
    x: np.ndarray, targets: np.ndarray, recipe: Recipe, seed: int, training: bool
) -> tf.data.Dataset:
    """Batches of ``(input, target distribution)``; shuffled and augmented when ``training``."""
    data = tf.data.Dataset.from_tensor_slices((x, targets.astype(np.float32)))
    if training:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(recipe.batch_size)
    if training:
        augment = augmenter(recipe, seed)
        data = data.map(lambda a, b: (augment(a, training=True), b), num_parallel_calls=1)
    return data.prefetch(tf.data.AUTOTUNE)


def callbacks(out: Path, recipe: Recipe) -> list[keras.callbacks.Callback]:
    """Keep the best validation epoch as ``best.keras``, log every epoch, stop on NaN or a plateau."""
    chosen: list[keras.callbacks.Callback] = [
        keras.callbacks.ModelCheckpoint(out / "best.keras", monitor="val_loss", save_best_only=True),
        keras.callbacks.CSVLogger(str(out / "history.csv")),
        keras.callbacks.TerminateOnNaN(),
    ]
    if recipe.early_stopping_patience:
        chosen.append(
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=recipe.early_stopping_patience)
        )
    return chosen


def run_record(
    arch: str,
    recipe: Recipe,
    seed: int,
    dataset: Dataset,
    splits: tuple[Split, Split],
    limit_per_class: int | None,
    outliers: dict[str, Any] | None,
    history: keras.callbacks.History,
    train_seconds: float,
    model: keras.Model,
) -> dict[str, Any]:
    """``run.json``: what was trained, on what, how it went, with which versions.

    ``dataset.root`` is this machine's path, for ``lpr-train evaluate`` of the
    same run folder; shipped metadata records the folder's name only.
    """
    fit_split, val_split = splits
    val_loss = history.history["val_loss"]
    best_epoch = int(np.argmin(val_loss)) + 1
    return {
        "arch": arch,
        "recipe": recipe.to_dict(),
        "seed": seed,
        "dataset": {
            "root": str(dataset.root),
            "name": dataset.root.name,
            "layout": dataset.layout,
            "sha256": dataset.sha256(),
            "counts": {"train": fit_split.counts(), "val": val_split.counts(), "test": dataset.test.counts()},
            "sizes": {"train": len(fit_split), "val": len(val_split), "test": len(dataset.test)},
            "limit_per_class": limit_per_class,
        },
        "outlier_exposure": outliers,
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


def train(
    data_root: str | Path,
    out_dir: str | Path,
    arch: str = SHIPPED,
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

    # Data: the training pool, split into the crops fitted and the validation crops.
    dataset = open_dataset(data_root, seed=seed)
    fit_split, val_split = fit_and_validation(dataset, recipe, seed, limit_per_class)
    print_counts(dataset, fit_split, val_split)

    # Inputs and targets.
    x_val = val_split.load(recipe.input)
    t_val = keras.utils.to_categorical(val_split.labels, NUM_CLASSES)
    x_fit, t_fit, outliers = fit_inputs(fit_split, recipe, seed)

    # Model.
    model = build(recipe, steps_per_epoch=int(np.ceil(len(x_fit) / recipe.batch_size)))
    model.summary(print_fn=lambda line, **_: print(line))

    # Fit, keeping the best validation epoch.
    keep_best = callbacks(out, recipe)
    started = time.perf_counter()
    history = model.fit(
        pipeline(x_fit, t_fit, recipe, seed, training=True),
        validation_data=pipeline(x_val, t_val, recipe, seed, training=False),
        epochs=recipe.epochs,
        callbacks=keep_best,
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started

    # Save what the run was.
    run = run_record(
        arch,
        recipe,
        seed,
        dataset,
        (fit_split, val_split),
        limit_per_class,
        outliers,
        history,
        train_seconds,
        model,
    )
    (out / "run.json").write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n")
    print(
        f"best epoch {run['best_epoch']}: val_loss {run['best_val_loss']:.4f}, "
        f"val_accuracy {run['best_val_accuracy']:.4f}; trained in {train_seconds:.0f} s"
    )
    return out
