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
import hashlib
import platform
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from lpr.labels import LABELS, NUM_CLASSES
from training.common.outputs import write_json
from training.data.dataset import Split, open_dataset
from training.data.sources import Splits, recipe_splits
from training.fitting.models import augmenter, build, count_flops
from training.fitting.outlier_exposure import describe, outlier_count, outlier_set, with_outliers
from training.fitting.recipes import RECIPES, SHIPPED, Recipe
from training.synthesis.augment import augmented_inputs, load_masks


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
    data_root: str | Path, recipe: Recipe, seed: int, limit_per_class: int | None = None
) -> Splits:
    """The crops fitted, the validation crops and the test split (counted, never read) of a run.

    A one-dataset recipe splits ``data_root``'s ``train/`` stratified and seeded; a
    multi-source recipe reads its sources under ``data_root`` (:mod:`training.data.sources`).
    """
    splits = recipe_splits(recipe.to_dict(), seed, data_root)
    if limit_per_class is None:
        return splits
    if splits.sources:  # limit each source, then pool: what is fitted is what is counted
        return Splits.pooled(
            [
                dataclasses.replace(
                    s,
                    fit=_per_class_limit(s.fit, limit_per_class),
                    val=_per_class_limit(s.val, limit_per_class),
                    unknown_fit=s.unknown_fit[:limit_per_class],
                    unknown_val=s.unknown_val[:limit_per_class],
                )
                for s in splits.sources
            ]
        )
    return Splits(
        _per_class_limit(splits.fit, limit_per_class),
        _per_class_limit(splits.val, limit_per_class),
        splits.test,
    )


def print_counts(splits: Splits) -> None:
    for source in splits.sources:
        sizes = source.record()["sizes"]
        print(
            f"source {source.spec.name} ({source.spec.form}): "
            + ", ".join(f"{k} {v}" for k, v in sizes.items())
        )
    print(f"{'class':>6} {'train':>6} {'val':>5} {'test':>5}")
    fit_counts, val_counts, test_counts = splits.fit.counts(), splits.val.counts(), splits.test.counts()
    for label in LABELS:
        print(f"{label:>6} {fit_counts[label]:>6} {val_counts[label]:>5} {test_counts[label]:>5}")
    print(f"{'total':>6} {len(splits.fit):>6} {len(splits.val):>5} {len(splits.test):>5}")


def _variants(split: Split, copies: int, recipe: Recipe, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A split's crops plus ``copies`` seeded re-binarised variants of each, as inputs and labels."""
    return augmented_inputs(
        load_masks(split.paths),
        split.labels,
        recipe.input,
        copies,
        seed,
        recipe.frame_bars,
        recipe.neighbours,
        recipe.rings,
    )


def _source_inputs(splits: Splits, recipe: Recipe, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A multi-source fit set: every source's crops and variants, then its real unknowns.

    Returns inputs, labels, and the real unknown crops (uniform targets) apart.
    """
    copies = dict(recipe.source_ink_copies)
    parts = [
        _variants(s.fit, copies.get(s.spec.name, recipe.ink_copies), recipe, seed + 101 * i)
        for i, s in enumerate(splits.sources)
    ]
    unknown = [s.unknown_fit for s in splits.sources if s.unknown_fit]
    x_unknown = np.zeros((0, *recipe.input.shape), dtype=np.float32)
    if recipe.unknown_copies >= 0 and unknown:
        paths = tuple(p for u in unknown for p in u)
        x_unknown, _ = _variants(
            Split(paths, np.zeros(len(paths), dtype=np.int64)), recipe.unknown_copies, recipe, seed + 7
        )
    return (
        np.concatenate([x for x, _ in parts]),
        np.concatenate([y for _, y in parts]),
        x_unknown,
    )


def fit_inputs(
    splits: Splits, recipe: Recipe, seed: int
) -> tuple[np.ndarray, np.ndarray, dict[str, Any] | None]:
    """The fit set as model inputs and target distributions, and what its outliers were (or ``None``).

    The crops themselves, or their seeded re-binarised variants (``ink_copies``);
    then, with outlier exposure, out-of-class crops with a uniform target: real
    ones from the sources (multi-source recipes) and rendered ones.
    """
    x_real = np.zeros((0, *recipe.input.shape), dtype=np.float32)
    if splits.sources:
        x_fit, y_fit, x_real = _source_inputs(splits, recipe, seed)
    elif recipe.ink_copies:
        x_fit, y_fit = _variants(splits.fit, recipe.ink_copies, recipe, seed)
    else:
        x_fit, y_fit = splits.fit.load(recipe.input), splits.fit.labels
    n_out = outlier_count(recipe.outlier_exposure, len(x_fit))
    if not n_out and not len(x_real):
        return x_fit, keras.utils.to_categorical(y_fit, NUM_CLASSES), None
    rendered = outlier_set(n_out, recipe.input, seed) if n_out else x_real[:0]
    x_out = np.concatenate([rendered, x_real.astype(np.float32)])
    outliers = describe(n_out, seed)
    if len(x_real):
        outliers["real_crops"] = len(x_real)
    print(
        f"outlier exposure: {n_out} rendered and {len(x_real)} real out-of-class crops with uniform "
        f"targets (seed {outliers['seed']})"
    )
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


def dataset_block(data_root: str | Path, splits: Splits, limit_per_class: int | None) -> dict[str, Any]:
    """``run.json``'s ``dataset``: where the data was, its hash, and the counts of every split.

    ``root`` is this machine's path, for ``lpr-train evaluate`` of the same run
    folder; shipped metadata records the folder's name only. A multi-source run
    records each source (its hash and counts) and a hash over theirs.
    """
    root = Path(data_root).resolve()
    block: dict[str, Any] = {"root": str(root), "name": root.name}
    if splits.sources:
        records = [s.record() for s in splits.sources]
        combined = hashlib.sha256("".join(r["name"] + r["sha256"] for r in records).encode()).hexdigest()
        block.update(
            name="+".join(r["name"] for r in records), layout="sources", sha256=combined, sources=records
        )
    else:
        dataset = open_dataset(root)
        block.update(layout=dataset.layout, sha256=dataset.sha256())
    block.update(
        counts={"train": splits.fit.counts(), "val": splits.val.counts(), "test": splits.test.counts()},
        sizes={"train": len(splits.fit), "val": len(splits.val), "test": len(splits.test)},
        limit_per_class=limit_per_class,
    )
    return block


def run_record(
    arch: str,
    recipe: Recipe,
    seed: int,
    dataset: dict[str, Any],
    outliers: dict[str, Any] | None,
    history: keras.callbacks.History,
    train_seconds: float,
    model: keras.Model,
) -> dict[str, Any]:
    """``run.json``: what was trained, on what, how it went, with which versions."""
    val_loss = history.history["val_loss"]
    best_epoch = int(np.argmin(val_loss)) + 1
    return {
        "arch": arch,
        "recipe": recipe.to_dict(),
        "seed": seed,
        "dataset": dataset,
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
    recipe: Recipe | None = None,
) -> Path:
    """Train ``arch`` on ``data_root`` and return the run folder.

    ``recipe``: a variant of ``arch``'s recipe to train instead (leave-one-source-out).
    """
    recipe = resolve_recipe(arch, epochs, batch_size) if recipe is None else recipe
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)

    # Data: the crops fitted, the validation crops, and the test split (counted, never read).
    splits = fit_and_validation(data_root, recipe, seed, limit_per_class)
    print_counts(splits)

    # Inputs and targets.
    x_val = splits.val.load(recipe.input)
    t_val = keras.utils.to_categorical(splits.val.labels, NUM_CLASSES)
    x_fit, t_fit, outliers = fit_inputs(splits, recipe, seed)

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
        dataset_block(data_root, splits, limit_per_class),
        outliers,
        history,
        train_seconds,
        model,
    )
    write_json(out / "run.json", run)
    print(
        f"best epoch {run['best_epoch']}: val_loss {run['best_val_loss']:.4f}, "
        f"val_accuracy {run['best_val_accuracy']:.4f}; trained in {train_seconds:.0f} s"
    )
    return out
