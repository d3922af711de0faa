"""The two architectures and their training recipes.

``reference`` is the published design, reproduced layer for layer so that its
figures can be compared honestly. ``default`` is ours: the crops are small,
binary and centred by the shared preprocessing, so a 32x32 single-channel input
keeps every stroke while costing a fraction of the reference's compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

import keras
from keras import layers

from lpr.labels import NUM_CLASSES
from lpr.preprocessing import InputSpec


@dataclass(frozen=True)
class Recipe:
    """Everything that defines a training run besides the data and the seed."""

    arch: str
    input: InputSpec
    epochs: int
    batch_size: int
    val_fraction: float
    optimizer: str
    learning_rate: float
    augmentation: dict[str, float] = field(default_factory=dict)
    label_smoothing: float = 0.0
    early_stopping_patience: int | None = None
    interpolation: str = "bilinear"
    #: Seeded re-binarised variants per training crop (``training.augment``); 0 = none.
    ink_copies: int = 0
    #: Share of the ink variants that also keep strips of the plate's frame (``training.augment``).
    frame_bars: float = 0.0
    #: Share of the ink variants with a sliver of a neighbouring glyph beside them (``training.augment``).
    neighbours: float = 0.0
    #: Share of the ink variants drawn inside a whole frame (``training.augment``).
    rings: float = 0.0
    #: Synthetic plates composed from the fit crops whose segmented glyphs join the fit set
    #: (``training.plate_glyphs``); 0 = none.
    plate_glyphs: int = 0
    #: Out-of-class crops with a uniform target, per fit-set input (``training.outlier_exposure``); 0 = off.
    outlier_exposure: float = 0.0
    #: Filters of ``default``'s three stages (the reference's are fixed by the write-up).
    widths: tuple[int, int, int] = (24, 48, 96)
    #: ``compact``'s stages after its space-to-depth stem: the filters of each 3x3 conv, stage by stage.
    stages: tuple[tuple[int, ...], ...] = ((32, 48), (96, 96))
    #: What the shipped metadata's ``version`` says: a new recipe shipped is a new model version.
    version: str = "1.0.0"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["input"] = self.input.to_dict()
        return data


RECIPES: dict[str, Recipe] = {
    # The write-up: SGD, 20 epochs, batch 32, 70/30 split, shear/zoom 0.2, rotation 10 degrees.
    "reference": Recipe(
        arch="reference",
        input=InputSpec(size=128, channels=3, margin=4),
        epochs=20,
        batch_size=32,
        val_fraction=0.3,
        optimizer="sgd",
        learning_rate=0.01,
        augmentation={"shear": 0.2, "zoom": 0.2, "rotation_deg": 10.0, "translate": 0.0},
    ),
    "default": Recipe(
        arch="default",
        input=InputSpec(size=32, channels=1, margin=2),
        epochs=25,
        batch_size=64,
        val_fraction=0.15,
        optimizer="adamw",
        learning_rate=3e-3,
        augmentation={"shear": 0.05, "zoom": 0.08, "rotation_deg": 4.0, "translate": 0.04},
        label_smoothing=0.05,
        early_stopping_patience=10,
        interpolation="nearest",
        ink_copies=4,
    ),
}
# Ours plus outlier exposure: 0.4 out-of-class crops per fit input (about 2.7k with the
# ink copies), so that letters, blanks and smudges are not read as confident classes.
# 1.2.0 adds frame strips to half the ink variants and trains 30 epochs (1.1.0: no strips,
# 25 epochs, and the older ring-only polarity rule in preprocessing).
RECIPES["default-oe"] = replace(
    RECIPES["default"], outlier_exposure=0.4, frame_bars=0.5, epochs=30, version="1.2.0"
)
# The same at 16/32/64 filters: 19 MFLOPs instead of 43, for CPU throughput.
RECIPES["small-oe"] = replace(RECIPES["default-oe"], widths=(16, 32, 64))
# Model 1.3.0: half the compute of default-oe (a space-to-depth stem, then 3x3 stages of
# 32-48 / 96-96 / 128 filters at 16, 8 and 4 px: 27 MFLOPs), slivers of neighbouring glyphs
# in a quarter of the ink variants and whole frames in 15 %. Chosen on validation alone:
# plates composed from validation crops were read 85.2 % right (default-oe: 77.0 %).
RECIPES["compact-oe"] = replace(
    RECIPES["default-oe"],
    arch="compact",
    stages=((32, 48), (96, 96), (128,)),
    neighbours=0.25,
    rings=0.15,
    version="1.3.0",
)
# Model 1.4.0: compact-oe with 16 re-binarised variants per training crop instead of 4.
# Chosen on validation alone (4 -> 8 -> 16 variants): validation errors 6 -> 3 -> 3 of 242,
# validation log-loss 0.142 -> 0.113 -> 0.115, and 1,000 plates composed from validation
# crops (seed 7) read 85.2 % -> 83.4 % -> 88.6 % right. The same network, so the same speed.
RECIPES["compact-ink16"] = replace(RECIPES["compact-oe"], ink_copies=16, version="1.4.0")


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


def _classifier(inputs: keras.KerasTensor, x: keras.KerasTensor, name: str) -> keras.Model:
    """Global average pooling, dropout (what keeps 1.3k crops from being memorised), softmax."""
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
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


def build_compact(recipe: Recipe) -> keras.Model:
    """``default``'s design after a space-to-depth stem: half the compute for the same glyph detail.

    In ``default`` the two convolutions at the full 32x32 resolution cost 40 %
    of the int8 inference time, the first of them most wastefully (a 3x3
    convolution over one channel). Folding each 2x2 patch into four channels
    keeps every pixel while the convolutions run at 16x16.
    """
    inputs = keras.Input(recipe.input.shape, name="image")
    return _classifier(inputs, _stages(space_to_depth(inputs), recipe.stages), "compact")


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
