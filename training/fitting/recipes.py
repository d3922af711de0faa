"""The training recipes: every name ``lpr-train train --arch`` accepts, and the shipped one.

Kept apart from :mod:`training.fitting.models` (Keras) so the CLI's ``--help`` and its
choices come from here without importing TensorFlow. A recipe that shipped a
model stays, unchanged, so that model can be retrained; experiments that lost
on validation and never shipped are deleted, not kept as options.

=================  =======  ====================================================
recipe             version  status
=================  =======  ====================================================
``reference``      1.0.0    the published design, the baseline of every table
``default``        1.0.0    frozen: model 1.0.0, not developed further
``default-oe``     1.2.0    frozen: models 1.1.0 and 1.2.0, not developed further
``compact-oe``     1.3.0    the previous shipped model
``compact-ink16``  1.4.0    the previous shipped model
``multi``          1.5.0    **shipped** (:data:`SHIPPED`)
=================  =======  ====================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

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
    #: Seeded re-binarised variants per training crop (``training.synthesis.augment``); 0 = none.
    ink_copies: int = 0
    #: Share of the ink variants that also keep strips of the plate's frame (``training.synthesis.augment``).
    frame_bars: float = 0.0
    #: Share of the ink variants with a sliver of a neighbouring glyph beside them
    #: (``training.synthesis.augment``).
    neighbours: float = 0.0
    #: Share of the ink variants drawn inside a whole frame (``training.synthesis.augment``).
    rings: float = 0.0
    #: Out-of-class crops with a uniform target, per fit-set input (``training.fitting.outlier_exposure``);
    #: 0 = off.
    outlier_exposure: float = 0.0
    #: Filters of ``default``'s three stages (the reference's are fixed by the write-up).
    widths: tuple[int, int, int] = (24, 48, 96)
    #: ``compact``'s stages after its space-to-depth stem: the filters of each 3x3 conv, stage by stage.
    stages: tuple[tuple[int, ...], ...] = ((32, 48), (96, 96))
    #: Real sources read from the data home (:data:`training.data.sources.SOURCES`), first = the headline
    #: test split; empty = the one dataset ``--data`` names (every recipe before ``multi``).
    sources: tuple[str, ...] = ()
    #: Re-binarised variants per crop for some sources instead of ``ink_copies``, as ``(source, copies)``.
    source_ink_copies: tuple[tuple[str, int], ...] = ()
    #: Re-binarised variants of each real out-of-class crop (``cha``) fitted with a uniform target;
    #: -1 = those crops are not fitted.
    unknown_copies: int = -1
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
    # Frozen (model 1.0.0, not developed further): ours, a small VGG-style net on 32x32x1.
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
# Frozen (model 1.2.0, not developed further): ours plus outlier exposure, 0.4 out-of-class
# crops per fit input (about 2.7k with the ink copies), so that letters, blanks and smudges are
# not read as confident classes; frame strips in half the ink variants and 30 epochs (1.1.0:
# no strips, 25 epochs, and the older ring-only polarity rule in preprocessing).
RECIPES["default-oe"] = replace(
    RECIPES["default"], outlier_exposure=0.4, frame_bars=0.5, epochs=30, version="1.2.0"
)
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
# Model 1.5.0: compact-ink16's network fitted on three real sources instead of one: the LPR
# crops binarised and as photographed, and a second project's crops (other fonts and cameras),
# with its real च fitted towards "no class" beside the rendered outliers. Validation is carved
# from every source by near-duplicate groups (training.data.sources). The second source is already
# full of augmented copies, so it gets fewer re-binarised variants; 4 instead of 16 for LPR keeps
# an epoch the size of 1.4.0's.
RECIPES["multi"] = replace(
    RECIPES["compact-ink16"],
    sources=("lpr", "lpr-colour", "nnprs-chars"),
    val_fraction=0.2,
    ink_copies=3,
    source_ink_copies=(("nnprs-chars", 1),),
    unknown_copies=3,
    epochs=24,
    version="1.5.0",
)

#: The recipe of the shipped model (``models/lpr-default``): what ``lpr-train train``, ``make train``,
#: the Docker train target and the compose profile train unless told otherwise.
#: ``tests/test_shipped_model.py`` ties it to the shipped metadata's ``architecture``.
SHIPPED = "multi"
