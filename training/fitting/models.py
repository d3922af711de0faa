"""The architectures the recipes (:mod:`training.fitting.recipes`) build, in Keras.

``reference`` is the published design, reproduced layer for layer so that its
figures can be compared honestly. ``default`` is ours: the crops are small,
binary and centred by the shared preprocessing, so a 32x32 single-channel input
keeps every stroke while costing a fraction of the reference's compute.
``compact`` (the shipped recipe's) is ``default`` after a space-to-depth stem.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from lpr.labels import NUM_CLASSES
from training.fitting.recipes import Recipe


def augmenter(recipe: Recipe, seed: int) -> keras.Sequential:
    """Keras preprocessing layers for training-time augmentation only (never exported)."""
    aug = recipe.augmentation
    # The reference keeps bilinear, as Keras' ImageDataGenerator did; ours uses
    # nearest-neighbour, because three chained bilinear warps of a 32 px glyph
    # blur it far beyond anything the sharp preprocessed inputs look like.
    fill = {"fill_mode": "constant", "fill_value": 0.0, "interpolation": recipe.interpolation}
    stack: list[layers.Layer] = [
        layers.RandomShear(x_factor=aug["shear"], y_factor=aug["shear"], seed=seed, **fill),
        layers.RandomZoom(height_factor=aug["zoom"], width_factor=aug["zoom"], seed=seed + 1, **fill),
        layers.RandomRotation(aug["rotation_deg"] / 360.0, seed=seed + 2, **fill),
    ]
    if aug.get("translate"):
        stack.append(layers.RandomTranslation(aug["translate"], aug["translate"], seed=seed + 3, **fill))
    return keras.Sequential(stack, name="augment")


def build_reference(recipe: Recipe) -> keras.Model:
    """Six conv blocks (32..192 filters), BN + 2x2 max-pool after blocks 2-6."""
    inputs = keras.Input(recipe.input.shape, name="image")
    x = layers.Conv2D(32, 3, activation="relu")(inputs)
    for filters in (64, 96, 128, 160, 192):
        x = layers.Conv2D(filters, 3, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalMaxPooling2D()(x)
    x = layers.Dense(128, activation="relu")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="reference")


def _conv_bn(x: keras.KerasTensor, filters: int) -> keras.KerasTensor:
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.ReLU()(x)


def build_default(recipe: Recipe) -> keras.Model:
    """A small VGG-style net: three stages of two 3x3 convs, global average pooling.

    Batch norm makes it train in a few dozen epochs from scratch; dropout before
    the classifier is what keeps 1.3k training crops from being memorised.
    """
    inputs = keras.Input(recipe.input.shape, name="image")
    return _classifier(inputs, _stages(inputs, [(f, f) for f in recipe.widths]), "default")


def _stages(x: keras.KerasTensor, stages: Sequence[Sequence[int]]) -> keras.KerasTensor:
    """Stages of 3x3 conv + BN + ReLU (one per filter count), each ending in a 2x2 max-pool."""
    for stage in stages:
        for filters in stage:
            x = _conv_bn(x, filters)
        x = layers.MaxPooling2D(2)(x)
    return x


def _classifier(
    inputs: keras.KerasTensor, x: keras.KerasTensor, name: str, classes: int = NUM_CLASSES
) -> keras.Model:
    """Global average pooling, dropout (what keeps 1.3k crops from being memorised), softmax."""
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=name)


def space_to_depth(x: keras.KerasTensor, block: int = 2) -> keras.KerasTensor:
    """Each ``block`` x ``block`` patch of pixels becomes one pixel with ``block**2`` channels.

    Lossless, unlike a strided convolution or a pool, and made of plain
    Reshape/Permute layers so the checkpoint loads without custom code and
    tf2onnx exports it as two reshapes and a transpose.
    """
    h, w, c = x.shape[1:]
    x = layers.Reshape((h // block, block, w // block, block, c))(x)
    x = layers.Permute((1, 3, 2, 4, 5))(x)
    return layers.Reshape((h // block, w // block, block * block * c))(x)


def build_compact(recipe: Recipe, classes: int = NUM_CLASSES) -> keras.Model:
    """``default``'s design after a space-to-depth stem: half the compute for the same glyph detail.

    In ``default`` the two convolutions at the full 32x32 resolution cost 40 %
    of the int8 inference time, the first of them most wastefully (a 3x3
    convolution over one channel). Folding each 2x2 patch into four channels
    keeps every pixel while the convolutions run at 16x16.
    """
    inputs = keras.Input(recipe.input.shape, name="image")
    return _classifier(inputs, _stages(space_to_depth(inputs), recipe.stages), "compact", classes)


BUILDERS = {"reference": build_reference, "default": build_default, "compact": build_compact}


def build(recipe: Recipe, steps_per_epoch: int) -> keras.Model:
    """The architecture of ``recipe``, compiled with its optimiser and loss.

    The reference keeps plain SGD at a constant rate, as published; ours decays
    its rate on a cosine so the last epochs settle instead of bouncing.
    """
    model = BUILDERS[recipe.arch](recipe)
    if recipe.optimizer == "sgd":
        optimizer: keras.optimizers.Optimizer = keras.optimizers.SGD(learning_rate=recipe.learning_rate)
    else:
        schedule = keras.optimizers.schedules.CosineDecay(
            recipe.learning_rate, decay_steps=recipe.epochs * steps_per_epoch, alpha=0.01
        )
        optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=1e-4)
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def count_flops(model: keras.Model) -> int:
    """Floating-point operations (2 x multiply-adds) of one image's forward pass.

    Counts convolutions and dense layers, which are all but a rounding error of
    both architectures.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            c_in = layer.input.shape[-1]
            total += 2 * h * w * kh * kw * c_in * c_out
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)
