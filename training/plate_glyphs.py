"""Training glyphs cut out of synthetic plates by the service's own segmenter.

``POST /read-plate`` does not classify the crops a user cut by hand: it
classifies what :func:`lpr.segmentation.segment` cuts out of a whole
plate, after the plate was photographed (scaled, tilted, blurred, noisy) and
the glyph rotated back upright. Those masks differ from the dataset's crops
in ways the per-crop augmentation does not reproduce, and a crop the model
reads right alone is sometimes misread on a plate. So the recipe can add the
glyphs of plates composed from the *fit* crops (never validation or test)
with :mod:`training.plates`' generator, under a seed of their own, segmented
exactly as the service segments them.

A glyph is kept only when the segmenter found the plate's characters one for
one (same count per row, and each found box overlapping its true one), so
every label is the truth of the crop it was painted from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from lpr.labels import LABELS
from training.plates import generate_plates
from lpr.segmentation import segment

#: Added to the training seed for the plates' generator, so it never meets the
#: shipped evaluation's seed (``training.plates.DEFAULT_SEED``) for any sane training seed.
SEED_OFFSET = 20_000

#: Least overlap (intersection over union) of a found box with its true one.
MIN_IOU = 0.5


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two ``(x, y, width, height)`` boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = min(ax + aw, bx + bw) - max(ax, bx)
    h = min(ay + ah, by + bh) - max(ay, by)
    inter = max(0, w) * max(0, h)
    return inter / float(aw * ah + bw * bh - inter)


def plate_glyphs(
    crops: Mapping[str, Sequence[Path]], plates: int, seed: int
) -> tuple[list[np.ndarray], np.ndarray, int]:
    """Glyph masks and class indices from ``plates`` synthetic plates of ``crops``.

    Returns the masks, their labels and how many plates were used (the others
    were not segmented one for one and give nothing).
    """
    masks: list[np.ndarray] = []
    labels: list[int] = []
    used = 0
    for plate in generate_plates(crops, count=plates, seed=seed + SEED_OFFSET):
        found = segment(plate.image)
        if [len(row) for row in found.rows] != [len(row) for row in plate.rows]:
            continue
        truth = [
            (label, box)
            for row, boxes in zip(plate.rows, plate.boxes, strict=True)
            for label, box in zip(row, boxes, strict=True)
        ]
        if any(_iou(glyph.box, box) < MIN_IOU for glyph, (_, box) in zip(found.glyphs, truth, strict=True)):
            continue
        used += 1
        for glyph, (label, _) in zip(found.glyphs, truth, strict=True):
            masks.append(glyph.mask)
            labels.append(LABELS.index(label))
    return masks, np.asarray(labels, dtype=np.int64), used
