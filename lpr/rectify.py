"""A plate found in a photo, straightened: the red plate cut out, perspective undone, long side level.

The detector's box holds the plate and whatever surrounds it: the white rim
painted round the plate, screws, the mudguard, a tail light. The segmenter
was built for the plate's own red field with white paint on it, and reads
rows level, so before reading:

1. **The plate's red field.** Pixels much redder than they are green or blue
   (Otsu on ``R - max(G, B)``, never below :data:`MIN_REDNESS`), holes filled
   (the white characters lie inside the field); of the red regions, the one
   with most of its area inside the detector's box is the plate. A tail light
   beside it is another region.
2. **Its four corners.** The smallest rectangle round the region's convex
   hull gives the plate's orientation; the hull point nearest each of that
   rectangle's corners is the plate's own corner, so a plate seen at an angle
   (a trapezoid) keeps its shape information.
3. **Perspective undone.** Those corners are mapped onto an upright
   rectangle (Pillow's quad transform), long side horizontal: a two-row plate
   is wider than tall.

A plate that is not red (white, green, embossed) or whose red field is too
small is left as the detector boxed it; the reader then says what it doubts.
NumPy, Pillow and SciPy only: the service imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from lpr.preprocessing import otsu_threshold

#: Least ``R - max(G, B)`` (0-255) that counts as plate red, whatever Otsu says.
MIN_REDNESS = 30
#: The red field must cover at least this share of the detector's box to be the plate.
MIN_FIELD = 0.2
#: Holes at least this share of the largest are characters (smaller ones: glare, dirt).
GLYPH_SHARE = 0.15
#: How far the plate reaches beyond its characters, as a share of their extent.
PAINT_REACH = 0.25
#: Erosion steps (at the working size) that separate a plate from red things touching it.
OPENING = 3
#: Share of the plate's size added beyond its red field on each side.
FIELD_MARGIN = 0.015
#: Largest side the red field is looked for at (px); the warp itself reads the full crop.
WORKING_SIDE = 256


@dataclass(frozen=True)
class Straightened:
    """The upright plate and the four corners (clockwise from top left) it was cut from, in crop pixels."""

    image: Image.Image
    corners: np.ndarray


def _min_area_rectangle(points: np.ndarray) -> np.ndarray:
    """Corners of the smallest rectangle round ``points`` (N × 2), clockwise from its top left."""
    hull = points[ConvexHull(points).vertices]
    best, best_area = None, np.inf
    for i in range(len(hull)):
        edge = hull[(i + 1) % len(hull)] - hull[i]
        angle = np.arctan2(edge[1], edge[0])
        turn = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        local = hull @ turn.T
        lo, hi = local.min(axis=0), local.max(axis=0)
        area = float(np.prod(hi - lo))
        if area < best_area:
            box = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
            best, best_area = box @ turn, area
    assert best is not None
    return _clockwise(best)


def _clockwise(corners: np.ndarray) -> np.ndarray:
    """Four corners ordered top-left, top-right, bottom-right, bottom-left (image y grows down)."""
    centre = corners.mean(axis=0)
    angles = np.arctan2(corners[:, 1] - centre[1], corners[:, 0] - centre[0])
    ordered = corners[np.argsort(angles)]  # from the left, going clockwise on screen
    start = int(np.argmin(ordered.sum(axis=1)))  # the top left has the smallest x + y
    return np.roll(ordered, -start, axis=0)


def red_field(rgb: np.ndarray, inner: tuple[int, int, int, int]) -> np.ndarray | None:
    """The plate's red field as a mask of ``rgb``'s pixels, or None when none is plate-sized.

    ``inner`` is the detector's box ``(left, top, right, bottom)`` in ``rgb``'s pixels.
    """
    channels = rgb.astype(np.int16)
    redness = np.clip(channels[..., 0] - np.maximum(channels[..., 1], channels[..., 2]), 0, 255).astype(
        np.uint8
    )
    threshold = max(MIN_REDNESS, otsu_threshold(redness))
    red = ndimage.binary_closing(redness > threshold, iterations=2)
    filled = ndimage.binary_fill_holes(red)
    # Cut thin bridges: a tail light touching the plate's edge must stay a region of its own.
    labels, count = ndimage.label(ndimage.binary_opening(filled, iterations=OPENING))
    if not count:
        return None
    left, top, right, bottom = inner
    window = labels[top:bottom, left:right].ravel()
    inside = np.bincount(window, minlength=count + 1)
    # What the red encloses: the paint. A plate is red round white characters; a tail light or a
    # red mudguard beside it is red with little inside, so the field holding most paint wins.
    paint = np.bincount(window, weights=(filled & ~red)[top:bottom, left:right].ravel(), minlength=count + 1)
    inside[0] = paint[0] = 0
    candidates = np.flatnonzero(inside >= MIN_FIELD * max(1, (right - left) * (bottom - top)))
    if not len(candidates):
        return None
    best = (
        int(candidates[np.argmax(paint[candidates])])
        if paint[candidates].max() > 0
        else int(np.argmax(inside))
    )
    field = labels == best
    return _around_paint(field, field & ~red)


def _around_paint(field: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """The field near its characters only: red joined to the plate (a tail light above it) is cut off.

    The characters are the large holes of the field; the plate reaches a little beyond them on
    every side (:data:`PAINT_REACH` of their extent), a tail light much further.
    """
    parts, count = ndimage.label(holes)
    if not count:
        return field
    sizes = np.bincount(parts.ravel(), minlength=count + 1)
    sizes[0] = 0
    glyphs = np.isin(parts, np.flatnonzero(sizes >= GLYPH_SHARE * sizes.max()))
    ys, xs = np.nonzero(glyphs)
    reach_y = PAINT_REACH * (ys.max() - ys.min() + 1)
    reach_x = PAINT_REACH * (xs.max() - xs.min() + 1)
    near = np.zeros_like(field)
    near[
        max(0, int(ys.min() - reach_y)) : int(ys.max() + reach_y) + 1,
        max(0, int(xs.min() - reach_x)) : int(xs.max() + reach_x) + 1,
    ] = True
    return field & near


def straighten(crop: Image.Image, inner: tuple[int, int, int, int]) -> Straightened | None:
    """The plate in ``crop`` cut out upright along its red field, or None when it has none."""
    rgb_image = crop.convert("RGB")
    scale = min(1.0, WORKING_SIDE / max(rgb_image.size))
    small = rgb_image.resize(
        (max(1, round(rgb_image.width * scale)), max(1, round(rgb_image.height * scale))),
        Image.Resampling.BILINEAR,
    )
    left, top, right, bottom = (round(v * scale) for v in inner)
    field = red_field(np.asarray(small), (left, top, max(right, left + 1), max(bottom, top + 1)))
    if field is None:
        return None
    ys, xs = np.nonzero(field)
    points = np.column_stack([xs, ys]).astype(np.float64) + 0.5
    try:
        rectangle = _min_area_rectangle(points)
        hull = points[ConvexHull(points).vertices]
    except QhullError:
        return None
    # The plate's own corners: the hull point nearest each corner of the enclosing rectangle.
    corners = np.array([hull[np.argmin(((hull - c) ** 2).sum(axis=1))] for c in rectangle]) / scale
    # A little beyond the field: paint that touches the plate's edge is not red, and would be cut.
    centre = corners.mean(axis=0)
    corners = centre + (corners - centre) * (1 + 2 * FIELD_MARGIN)
    top_w = np.linalg.norm(corners[1] - corners[0])
    bottom_w = np.linalg.norm(corners[2] - corners[3])
    left_h = np.linalg.norm(corners[3] - corners[0])
    right_h = np.linalg.norm(corners[2] - corners[1])
    width, height = (top_w + bottom_w) / 2, (left_h + right_h) / 2
    if height > width:  # the long side horizontal: start the quad one corner later
        corners = np.roll(corners, -1, axis=0)
        width, height = height, width
    if width < 8 or height < 8:
        return None
    # Pillow's QUAD: the source's upper-left, lower-left, lower-right, upper-right.
    quad = np.concatenate([corners[0], corners[3], corners[2], corners[1]])
    size = (round(width), round(height))
    upright = rgb_image.transform(size, Image.Transform.QUAD, tuple(quad.tolist()), Image.Resampling.BILINEAR)
    return Straightened(upright, corners)
