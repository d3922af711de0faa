"""A plate image to its characters: boxes in reading order and one glyph mask each.

Connected components on the shared binarisation (white paint = glyph), then
rules that encode what a Bagmati motorbike plate looks like:

1. **No paint, no reading.** If the two Otsu classes barely differ in
   whiteness, the "paint" is noise on a blank plate, not characters.
2. **Frames and lines are not characters.** A hollow component spanning most of
   the plate (a painted frame), or one far wider than tall (a frame's edge, an
   underline), or one touching the image edge and reaching across it, is dropped.
3. **Characters are the tall marks.** The character height is the median height
   of the large components (by area, so a screw does not vote); anything much smaller than a character in both
   directions (dust, screw heads, the separator dot after बा, noise) is kept
   only where it sits above or below a character's own stroke (a stroke the
   threshold broke off), and dropped elsewhere.
4. **Rows by vertical centre.** Tall marks are sorted by their vertical
   centre and split where consecutive centres jump by more than half a
   character height: one or two rows, tolerant of ±5° tilt (a long tilted row
   drifts a little per character, a second row jumps a whole line).
5. **Parts of one character merge.** Within a row, marks that overlap
   horizontally belong together (a stroke broken by the threshold, a
   headline piece); then neighbours closer than a small share of the
   character height (a wider gap for a thin bar) merge, closest first, as
   long as the result stays character-shaped (at most ``MAX_ASPECT`` times
   as wide as tall), so the ब and the ा of बा, painted as two strokes, become
   one box while two neighbouring digits never do; two whole glyphs (full
   height, not thin) never merge by closeness, however tight the paint. Each
   row is measured by its own character height (real plates paint the zone,
   lot and class row smaller than the serial), while clutter is judged by the
   plate's. A thin bar or sliver that joined nothing (the edge of a neighbour
   that a hand-cut crop carries) is dropped: none of the twelve symbols is
   that thin.
6. **Upright glyphs.** The line through each row's character centres gives the
   plate's tilt; each glyph's mask is rotated back before classification,
   because the model learnt from upright crops.

Everything is computed at a bounded working size (``PLATE_WORKING_SIDE``), and
the boxes are reported in the *original* image's pixel coordinates. Each
glyph's mask holds only its own components, ready for
:func:`lpr.preprocessing.normalise`.

NumPy, Pillow and SciPy only: the service imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from lpr.preprocessing import InputSpec, binarise, flatten, normalise, otsu_threshold, whiteness

#: Longest side segmented. Eight characters in a row at this width keep ~100 px
#: per character, more than the model's input needs; larger uploads are shrunk.
PLATE_WORKING_SIDE = 1024

#: Least whiteness difference (0-255) between paint and plate; below it there is no paint.
MIN_CONTRAST = 32

#: Tilt (degrees) below which glyphs are left as they are, and the most that is ever undone.
MIN_TILT = 0.5
MAX_TILT = 10.0
#: Rows are laid out by marks at least this share of the character height tall and not thin ...
CORE_HEIGHT = 0.6
#: ... where thin means narrower than this x height (the ा of बा, a neighbour's sliver).
THIN = 0.3
#: Least character height of a row, as a share of the plate's (a smaller top row keeps its own).
ROW_FLOOR = 0.55
#: ... while clutter (screws, dust) is judged against at least this share of the plate's height.
CLUTTER_FLOOR = 0.9
#: A mark at least this share of the row's height (and not thin) is a whole glyph, never merged by gap.
WHOLE = 0.9
#: Neighbours merge across a gap below this share of the row's character height ...
MERGE_GAP = 0.12
#: ... or below this one when one of them is thin ...
BAR_GAP = 0.3
#: ... as long as the result is at most this wide (x height): बा is about square, two digits are not.
MAX_ASPECT = 1.45
#: Marks smaller than this (x height) both ways are dust, screws or dots unless over or under a character.
SMALL = 0.3
#: A finished character is at least this tall (x its row's character height) and not thin.
MIN_HEIGHT = 0.5


@dataclass(frozen=True)
class Glyph:
    """One character: its box in the original image and its own ink at working resolution."""

    box: tuple[int, int, int, int]  # x, y, width, height in the original image's pixels
    mask: np.ndarray = field(repr=False)  # bool, True = paint, the glyph's components only


@dataclass(frozen=True)
class Segmentation:
    """A plate's characters in reading order (rows top to bottom, characters left to right)."""

    width: int
    height: int
    rows: list[list[Glyph]]
    reason: str | None = None  # why nothing was found; None when there are characters
    tilt_degrees: float = 0.0  # the plate's estimated tilt (counter-clockwise), undone on each glyph

    @property
    def glyphs(self) -> list[Glyph]:
        return [glyph for row in self.rows for glyph in row]

    @property
    def count(self) -> int:
        return sum(len(row) for row in self.rows)


@dataclass
class _Part:
    """A connected component, or several merged, at working resolution (exclusive right/bottom)."""

    x0: int
    y0: int
    x1: int
    y1: int
    area: int
    ids: list[int]

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def cy(self) -> float:
        return (self.y0 + self.y1) / 2

    def merged(self, other: _Part) -> _Part:
        return _Part(
            min(self.x0, other.x0),
            min(self.y0, other.y0),
            max(self.x1, other.x1),
            max(self.y1, other.y1),
            self.area + other.area,
            self.ids + other.ids,
        )


def _components(mask: np.ndarray) -> tuple[np.ndarray, list[_Part]]:
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    parts = []
    for index, slices in enumerate(ndimage.find_objects(labels), start=1):
        if slices is None:
            continue
        ys, xs = slices
        parts.append(_Part(xs.start, ys.start, xs.stop, ys.stop, int(areas[index]), [index]))
    return labels, parts


def _is_frame(part: _Part, width: int, height: int) -> bool:
    """A plate frame, an edge line or the plate's rim, never a character."""
    fill = part.area / max(part.w * part.h, 1)
    if part.w > 0.6 * width and fill < 0.15:  # hollow and spanning: a painted frame
        return True
    if part.w > 5 * part.h:  # a horizontal line: a frame's edge, an underline
        return True
    touches = part.x0 == 0 or part.y0 == 0 or part.x1 == width or part.y1 == height
    # Reaching across the image while touching its edge: the plate's rim or what lies beyond it.
    return touches and (part.w > 0.9 * width or part.h > 0.9 * height) and fill < 0.3


def _rows(tall: list[_Part], char_h: float) -> list[list[_Part]]:
    """Tall marks grouped into rows by vertical centre, rows top to bottom."""
    ordered = sorted(tall, key=lambda p: p.cy)
    rows = [[ordered[0]]]
    for part in ordered[1:]:
        if part.cy - rows[-1][-1].cy > 0.5 * char_h:
            rows.append([])
        rows[-1].append(part)
    return rows


def _overlap(a: _Part, b: _Part) -> float:
    """Horizontal overlap as a share of the narrower part's width."""
    return max(0, min(a.x1, b.x1) - max(a.x0, b.x0)) / max(min(a.w, b.w), 1)


def _gap(a: _Part, b: _Part) -> int:
    """Horizontal gap between two parts (0 when they overlap)."""
    return max(0, max(a.x0, b.x0) - min(a.x1, b.x1))


def _shapely(a: _Part, b: _Part, row_h: float) -> bool:
    """Whether ``a`` and ``b`` together still have a character's shape (not two side by side)."""
    width = max(a.x1, b.x1) - min(a.x0, b.x0)
    height = max(a.y1, b.y1) - min(a.y0, b.y0)
    return width <= MAX_ASPECT * max(height, row_h)


def _merge_row(parts: list[_Part], row_h: float, clutter_h: float) -> list[_Part]:
    """Parts of one row to characters, left to right (rule 5 of the module docstring).

    No merge may make a character wider than ``MAX_ASPECT`` x its height: that
    is what keeps two neighbouring digits apart while the ब and ा of बा, or a
    character and the sliver of a neighbour its hand-cut crop carries, join.
    Merging measures against the row's own height ``row_h``; what is too small
    to be a character (a screw head, dust) against ``clutter_h``, which a
    smaller top row does not lower.
    """
    small = [p for p in parts if p.w < SMALL * clutter_h and p.h < SMALL * clutter_h]
    groups = [p for p in parts if not any(p is q for q in small)]
    # Marks stacked over one another or interleaved: one character the threshold broke.
    merging = True
    while merging:
        merging = False
        groups.sort(key=lambda p: p.x0)
        for i, j in ((k, m) for k in range(len(groups)) for m in range(k + 1, len(groups))):
            a, b = groups[i], groups[j]
            if b.x0 < a.x1 and _overlap(a, b) >= 0.3 and _shapely(a, b, row_h):
                groups[i] = a.merged(b)
                del groups[j]
                merging = True
                break
    # Close neighbours, the closest pair first.
    while len(groups) > 1:
        best, best_gap = -1, np.inf
        for i in range(len(groups) - 1):
            a, b = groups[i], groups[i + 1]
            gap = b.x0 - a.x1
            limit = (BAR_GAP if min(a.w, b.w) < THIN * row_h else MERGE_GAP) * row_h
            # Two whole glyphs side by side stay apart however close (narrow digits painted tight).
            whole = all(p.w >= THIN * row_h and p.h >= WHOLE * row_h for p in (a, b))
            if gap <= limit and gap < best_gap and not whole and _shapely(a, b, row_h):
                best, best_gap = i, gap
        if best < 0:
            break
        groups[best : best + 2] = [groups[best].merged(groups[best + 1])]
    # Dust over or under a character's stroke is part of it; anywhere else it is clutter.
    for piece in small:
        for i, group in enumerate(groups):
            near = group.y0 - row_h * SMALL <= piece.cy <= group.y1 + row_h * SMALL
            if near and _overlap(piece, group) >= 0.5:
                groups[i] = group.merged(piece)
                break
    # A lone bar or sliver that joined nothing is no character: none of the twelve is that thin.
    return [g for g in groups if g.h >= MIN_HEIGHT * clutter_h and g.w >= THIN * row_h]


def _tilt(rows: list[list[_Part]]) -> float:
    """The plate's tilt in degrees (counter-clockwise), from the line through each row's character centres.

    Rows with fewer than three characters say too little; with none left the plate is taken as level.
    """
    slopes, weights = [], []
    for row in rows:
        if len(row) >= 3:
            xs = np.array([(p.x0 + p.x1) / 2 for p in row])
            ys = np.array([p.cy for p in row])
            slopes.append(float(np.polyfit(xs, ys, 1)[0]))
            weights.append(len(row))
    if not slopes:
        return 0.0
    # Image y grows downwards: a row rising to the right (negative slope) is a counter-clockwise tilt.
    angle = float(np.degrees(np.arctan(-np.average(slopes, weights=weights))))
    return float(np.clip(angle, -MAX_TILT, MAX_TILT))


def _upright(mask: np.ndarray, tilt: float) -> np.ndarray:
    """A glyph's mask rotated back by the plate's tilt: the model learnt from upright crops."""
    if abs(tilt) < MIN_TILT:
        return mask
    image = Image.fromarray(mask.astype(np.uint8) * 255, "L")
    return np.asarray(image.rotate(-tilt, Image.Resampling.BILINEAR, expand=True)) > 127


def segment(image: Image.Image, max_side: int = PLATE_WORKING_SIDE) -> Segmentation:
    """Find a plate's characters; an empty result carries the reason."""
    image = flatten(image)
    width, height = image.size
    gray = whiteness(image, max_side)
    mask = binarise(image, max_side)
    work_h, work_w = mask.shape
    sx, sy = width / work_w, height / work_h

    def empty(reason: str) -> Segmentation:
        return Segmentation(width, height, [], reason)

    if mask.all() or not mask.any():
        return empty("the image is one flat colour: no paint to read")
    contrast = abs(float(gray[mask].mean()) - float(gray[~mask].mean()))
    if contrast < MIN_CONTRAST or otsu_threshold(gray) == 0:
        return empty(f"no painted characters: paint and plate differ by only {contrast:.0f} of 255 levels")

    labels, parts = _components(mask)
    parts = [p for p in parts if not _is_frame(p, work_w, work_h)]
    # Marks that could be a character: not tiny next to the image (noise) nor a sliver.
    floor = max(4, 0.08 * min(work_h, work_w))
    sized = [p for p in parts if p.h >= floor]
    if not sized:
        return empty("no character-sized marks: only specks, dots or lines were found")
    # Character height: the median height of the big marks (by area, so a screw does not vote).
    biggest = max(p.area for p in sized)
    char_h = float(np.median([p.h for p in sized if p.area >= 0.2 * biggest]))
    # Rows are laid out by the marks that look like whole characters; the rest joins them after.
    tall = [p for p in sized if CORE_HEIGHT * char_h <= p.h <= 2.0 * char_h and p.w >= THIN * char_h]
    if not tall:
        return empty("no character-sized marks: only specks, dots or lines were found")

    char_rows: list[list[_Part]] = []
    placed = {id(p) for p in tall}
    for row in _rows(tall, char_h):
        # A row's own character height: on real two-row plates the top row (zone, lot, class)
        # is painted smaller than the serial, and measured against the serial's height its
        # neighbouring digits would merge. Floored, so a row of broken glyphs cannot shrink it far.
        row_h = max(float(np.median([p.h for p in row])), ROW_FLOOR * char_h)
        top, bottom = min(p.y0 for p in row), max(p.y1 for p in row)
        members = list(row)
        for part in parts:  # shorter marks within the row's band: pieces of its characters, or clutter
            if id(part) not in placed and part.h <= 2.0 * char_h and top <= part.cy <= bottom:
                members.append(part)
                placed.add(id(part))
        chars = _merge_row(members, row_h, max(row_h, CLUTTER_FLOOR * char_h))
        if chars:
            char_rows.append(chars)
    if not char_rows:
        return empty("no character-sized marks: only specks, dots or lines were found")

    tilt = _tilt(char_rows)
    rows_out = []
    for chars in char_rows:
        glyphs = []
        for char in chars:
            own = np.isin(labels[char.y0 : char.y1, char.x0 : char.x1], char.ids)
            x, y = int(np.floor(char.x0 * sx)), int(np.floor(char.y0 * sy))
            box = (
                x,
                y,
                min(width, int(np.ceil(char.x1 * sx))) - x,
                min(height, int(np.ceil(char.y1 * sy))) - y,
            )
            glyphs.append(Glyph(box, _upright(own, tilt)))
        rows_out.append(glyphs)
    return Segmentation(width, height, rows_out, tilt_degrees=round(tilt, 2))


def batch_inputs(segmentation: Segmentation, spec: InputSpec) -> np.ndarray:
    """Every glyph as one model input, in reading order: one array for one batched inference."""
    batch = np.empty((segmentation.count, *spec.shape), dtype=np.float32)
    for index, glyph in enumerate(segmentation.glyphs):
        batch[index] = normalise(glyph.mask, spec)
    return batch
