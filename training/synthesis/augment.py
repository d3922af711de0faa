"""Augmentation in the glyph-mask domain, before the shared normalisation.

Keras' preprocessing layers (see ``models.augmenter``) handle geometry. What
they cannot do is vary the things our preprocessing is sensitive to *before*
the tight crop: stroke thickness from a different Otsu threshold or paint
wear, specks and screw heads near the glyph, and slight rotation/shear of the
whole crop. Each variant is a plausible binarised crop and goes through the
very same ``normalise`` as an upload, so training inputs stay in the serving
domain.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lpr.preprocessing import InputSpec, binarise, normalise


def load_masks(paths: Sequence[Path]) -> list[np.ndarray]:
    """The binarised glyph of every crop, at its stored resolution."""
    masks = []
    for path in paths:
        with Image.open(path) as image:
            masks.append(binarise(image))
    return masks


def edge_band(edge: int, width: int) -> tuple[slice, slice]:
    """The index of the band ``width`` pixels deep along one edge: 0 top, 1 bottom, 2 left, 3 right."""
    whole = slice(None)
    return [
        (slice(None, width), whole),
        (slice(-width, None), whole),
        (whole, slice(None, width)),
        (whole, slice(-width, None)),
    ][edge]


def _warp(mask: Image.Image, rng: np.random.Generator) -> Image.Image:
    angle = np.deg2rad(rng.uniform(-6.0, 6.0))
    shear = rng.uniform(-0.15, 0.15)
    sx, sy = rng.uniform(0.9, 1.1, size=2)
    cos, sin = np.cos(angle), np.sin(angle)
    # Inverse map (output -> input) about the centre, as Image.transform expects.
    a, b, d, e = cos / sx, (sin + shear) / sx, -sin / sy, cos / sy
    w, h = mask.size
    cx, cy = w / 2, h / 2
    c = cx - a * cx - b * cy
    f = cy - d * cx - e * cy
    return mask.transform(mask.size, Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.NEAREST)


def _frame_bar(out: np.ndarray, rng: np.random.Generator) -> None:
    """Paint one straight piece of a plate's frame along a random edge, in place.

    Crops cut from a plate often keep a strip of its painted border: a line
    along an edge, sometimes a pixel or two inside it, that the tight crop then
    stretches together with the glyph. Validation errors are dominated by
    such crops.
    """
    h, w = out.shape
    edge = int(rng.integers(4))
    length_side, depth_side = (w, h) if edge < 2 else (h, w)
    thickness = int(rng.integers(1, max(2, depth_side // 16) + 1))
    offset = int(rng.integers(0, max(1, depth_side // 20) + 1))
    span = int(rng.uniform(0.6, 1.0) * length_side)
    start = int(rng.integers(0, length_side - span + 1))
    near = slice(offset, offset + thickness)
    far = slice(depth_side - offset - thickness, depth_side - offset)
    along = slice(start, start + span)
    if edge == 0:
        out[near, along] = True
    elif edge == 1:
        out[far, along] = True
    elif edge == 2:
        out[along, near] = True
    else:
        out[along, far] = True


def _neighbour(out: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``out`` with a sliver of a neighbouring character beside it.

    A crop cut tightly from a plate with narrow spacing often keeps the edge of
    the character next to it (or, on a two-row plate, of the row above or
    below), which the tight crop then squeezes in with the glyph: a third of
    the validation errors are such crops. The sliver is the facing side of
    ``other`` (another training glyph, any class), scaled to the same height
    or width, after a small gap.
    """
    side = int(rng.choice(4, p=[0.4, 0.4, 0.1, 0.1]))  # left, right, top, bottom
    if side >= 2:  # above or below: the same as beside, with rows and columns swapped
        return _beside(out.T, other.T, side == 3, rng).T
    return _beside(out, other, side == 1, rng)


def _beside(out: np.ndarray, other: np.ndarray, right: bool, rng: np.random.Generator) -> np.ndarray:
    """``out`` with the facing edge of ``other`` (scaled to its height) to its left or right."""
    h, w = out.shape
    image = Image.fromarray(other.astype(np.uint8) * 255, "L")
    scaled = image.resize((max(1, round(image.width * h / image.height)), h), Image.Resampling.NEAREST)
    piece = np.asarray(scaled) > 127
    depth = piece.shape[1]
    keep = max(1, round(rng.uniform(0.08, 0.35) * depth))
    gap = np.zeros((h, int(rng.integers(0, max(1, round(0.06 * w)) + 1))), bool)
    if right:
        return np.hstack([out, gap, piece[:, :keep]])
    return np.hstack([piece[:, depth - keep :], gap, out])  # the right edge of the left neighbour


def _ring(out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``out`` inside a painted ring, after a gap: a character framed all round.

    Some crops keep the whole frame of their plate cell (``0/66`` among the
    validation errors, ``०`` read as ``प``): the tight crop then fits the frame,
    not the glyph, which ends up small in the middle. Corners are sometimes
    rounded, and sometimes one side of the ring is missing.
    """
    h, w = out.shape
    side = min(h, w)
    gap = int(rng.integers(1, max(2, side // 8) + 1))
    thick = int(rng.integers(max(1, side // 25), max(2, side // 8) + 1))
    pad = gap + thick
    canvas = Image.new("L", (w + 2 * pad, h + 2 * pad), 0)
    radius = int(rng.uniform(0.0, 0.3) * side)
    ImageDraw.Draw(canvas).rounded_rectangle(
        [0, 0, canvas.width - 1, canvas.height - 1], radius=radius, outline=255, width=thick
    )
    ringed = np.asarray(canvas) > 127
    if rng.random() < 0.3:
        ringed[edge_band(int(rng.integers(4)), pad)] = False
    ringed[pad : pad + h, pad : pad + w] |= out
    return ringed


def ink_variant(
    mask: np.ndarray,
    rng: np.random.Generator,
    frame_bars: float = 0.0,
    neighbours: float = 0.0,
    pool: Sequence[np.ndarray] = (),
    rings: float = 0.0,
) -> np.ndarray:
    """One random, plausible re-binarisation of a glyph mask.

    With probability ``frame_bars`` it also keeps one or two strips of the
    plate's frame (:func:`_frame_bar`); with probability ``rings``, a whole
    frame round it (:func:`_ring`); with probability ``neighbours``, a sliver
    of a glyph from ``pool`` beside it (:func:`_neighbour`). Each draws from
    ``rng`` only when switched on, so older recipes replay unchanged.
    """
    image = Image.fromarray(mask.astype(np.uint8) * 255, "L")
    scale = max(1, 64 // max(image.size))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    image = _warp(image, rng)
    stroke = rng.random()
    if stroke < 0.25:
        image = image.filter(ImageFilter.MaxFilter(3))
    elif stroke < 0.5:
        image = image.filter(ImageFilter.MinFilter(3))
    out = np.asarray(image) > 127
    if rng.random() < 0.3:
        for _ in range(rng.integers(1, 4)):
            y, x = rng.integers(0, out.shape[0] - 2), rng.integers(0, out.shape[1] - 2)
            size = int(rng.integers(1, 3))
            out[y : y + size, x : x + size] = True
    if frame_bars and rng.random() < frame_bars:
        for _ in range(rng.integers(1, 3)):
            _frame_bar(out, rng)
    if rings and rng.random() < rings:
        out = _ring(out, rng)
    if neighbours and pool and rng.random() < neighbours:
        out = _neighbour(out, pool[int(rng.integers(len(pool)))], rng)
    return out


def augmented_inputs(
    masks: Sequence[np.ndarray],
    labels: np.ndarray,
    spec: InputSpec,
    copies: int,
    seed: int,
    frame_bars: float = 0.0,
    neighbours: float = 0.0,
    rings: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The originals plus ``copies`` seeded variants of each, as model inputs."""
    rng = np.random.default_rng(seed)
    inputs = [normalise(m, spec) for m in masks]
    for _ in range(copies):
        inputs.extend(
            normalise(ink_variant(m, rng, frame_bars, neighbours, masks, rings), spec) for m in masks
        )
    return np.stack(inputs), np.tile(labels, copies + 1)
