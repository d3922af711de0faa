"""Training plates painted the way real ones are, with every character's box: the plate reader's data.

:mod:`training.synthesis.plates` composes the *test* plates (clean, equal
rows, crops far apart); it stays as it is so that its figures compare across
versions. Real plates differ from it, and each difference is a way a reader
trained on the clean ones fails on the street:

- the serial row is painted 1.0–2× taller than the zone, lot and class row, its
  digits near square and bold;
- neighbours touch and overlap; strokes are broken by wear;
- a dot or dash follows the zone letter; bolts, rivets, a painted frame and the
  plate's own rim sit among the characters;
- most plates are not Bagmati: the zone and class letters are every letter of
  the grammar (rendered in the Debian fonts and painted by hand, or real च
  crops), labelled ``?`` since the twelve classes do not name them;
- the photograph: perspective, shadow, glare, blur, noise, JPEG, and the
  street around the plate's edge as a detector's box leaves it.

Characters are the fitted crops of every shared source (never a validation or
test crop), cleaned to their ink: a binarised crop often keeps a sliver of
its neighbour or the frame, which on a composed plate would be ink no box
covers. Everything is drawn from one seeded generator: a seed names a set.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from lpr.labels import DIGITS, LABELS
from lpr.plate_grammar import CLASS_LETTERS, ZONES
from lpr.plate_reader import UNREADABLE
from lpr.preprocessing import binarise
from training.synthesis.ood import FONTS, _render_glyph, hand_painted
from training.synthesis.scenes import _homography

#: A character box as painted: left, top, width, height (px of the finished image).
CharBox = tuple[int, int, int, int]

#: Share of plates in two rows (motorbikes), the rest in one (cars, some motorbikes).
TWO_ROWS = 0.75
#: How the zone and class letters are drawn: a real crop of the twelve (बा, प) or of च, else rendered.
ZONE_BA = 0.3
CLASS_PA = 0.55
CLASS_CHA = 0.25


@dataclass(frozen=True)
class PaintedPlate:
    """One training plate: the picture, and per row the labels and boxes of its characters."""

    image: Image.Image  # RGB
    labels: list[list[str]]  # the twelve's ids, or ``?`` for a letter outside them
    boxes: list[list[CharBox]]


def _ink(mask: np.ndarray) -> np.ndarray | None:
    """The glyph's own ink: components at least a tenth of the largest, cut to their box."""
    labelled, count = ndimage.label(mask)
    if not count:
        return None
    sizes = ndimage.sum_labels(mask, labelled, index=np.arange(1, count + 1))
    keep = np.isin(labelled, 1 + np.flatnonzero(sizes >= 0.1 * sizes.max()))
    rows, cols = np.flatnonzero(keep.any(axis=1)), np.flatnonzero(keep.any(axis=0))
    return keep[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


class Glyphs:
    """Ink masks by label, dealt in seeded order; letters outside the twelve rendered on demand."""

    def __init__(self, crops: Mapping[str, Sequence[Path]], cha: Sequence[Path], rng: np.random.Generator):
        self.rng = rng
        self.pools = {label: sorted(crops.get(label, ())) for label in LABELS}
        self.pools["digit"] = [p for d in DIGITS for p in self.pools[d]]
        self.pools["cha"] = sorted(cha)
        for name in ("digit", "ba", "pa", "cha"):
            if not self.pools[name]:
                raise FileNotFoundError(f"no crops for {name!r}")
        self.fonts = tuple(path for path, _ in FONTS["devanagari"] if Path(path).exists())
        self._masks: dict[Path, np.ndarray | None] = {}

    def _crop(self, pool: str) -> tuple[str, np.ndarray]:
        while True:
            path = self.pools[pool][int(self.rng.integers(len(self.pools[pool])))]
            if path not in self._masks:
                with Image.open(path) as image:
                    self._masks[path] = _ink(binarise(image))
            mask = self._masks[path]
            if mask is not None and mask.shape[0] >= 8 and mask.shape[1] >= 3:
                return (path.parent.name if pool != "cha" else UNREADABLE), mask

    def _rendered(self, letters: Sequence[str]) -> tuple[str, np.ndarray]:
        letter = letters[int(self.rng.integers(len(letters)))]
        font = self.fonts[int(self.rng.integers(len(self.fonts)))]
        mask = _ink(hand_painted(_render_glyph(letter, font, self.rng), self.rng) > 127)
        return UNREADABLE, mask if mask is not None else np.ones((20, 16), bool)

    def digit(self) -> tuple[str, np.ndarray]:
        return self._crop("digit")

    def zone(self) -> tuple[str, np.ndarray]:
        if self.rng.random() < ZONE_BA:
            return self._crop("ba")
        return self._rendered([g for z, g in ZONES.items() if z != "ba"])

    def klass(self) -> tuple[str, np.ndarray]:
        draw = self.rng.random()
        if draw < CLASS_PA:
            return self._crop("pa")
        if draw < CLASS_PA + CLASS_CHA:
            return self._crop("cha")
        return self._rendered([g for c, g in CLASS_LETTERS.items() if c not in ("pa", "cha")])


def _groups(glyphs: Glyphs, rng: np.random.Generator) -> list[list[tuple[str, np.ndarray]]]:
    """Zone, lot, class letter, serial: the grammar's four groups."""
    lot = int(rng.choice([1, 2, 3], p=[0.15, 0.7, 0.15]))
    serial = int(rng.choice([1, 2, 3, 4], p=[0.04, 0.08, 0.13, 0.75]))
    return [
        [glyphs.zone()],
        [glyphs.digit() for _ in range(lot)],
        [glyphs.klass()],
        [glyphs.digit() for _ in range(serial)],
    ]


def _stroke(mask: np.ndarray, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """The mask painted at ``width`` × ``height``: anti-aliased, sometimes bolder, sometimes worn."""
    alpha = Image.fromarray(mask.astype(np.uint8) * 255, "L").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    bold = int(rng.choice([0, 0, 1, 2])) * max(1, height // 40)
    if bold:
        alpha = alpha.filter(ImageFilter.MaxFilter(2 * bold + 1))
    paint = np.asarray(alpha, np.float32) / 255.0
    if rng.random() < 0.3:  # wear: a few bites out of the stroke
        holes = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(holes)
        for _ in range(int(rng.integers(1, 4))):
            cx, cy, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.04, 0.12) * height
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        paint = paint * (1 - np.asarray(holes, np.float32) / 255.0)
    return paint


def _compose(
    groups: list[list[tuple[str, np.ndarray]]], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[list[str]], list[tuple[float, float, float, float]]]:
    """Paint alpha, which character owns each pixel (1-based), labels per row, the plate's clutter spots."""
    two_rows = rng.random() < TWO_ROWS
    h = float(rng.uniform(30, 64))
    rows = [groups[:3], groups[3:]] if two_rows else [groups]
    heights = [h, h * rng.uniform(1.0, 1.9)] if two_rows else [h]
    placed: list[list[tuple[str, np.ndarray, float, float, float, float]]] = []
    widths = []
    for row, row_h in zip(rows, heights, strict=True):
        x, items = 0.0, []
        for g, group in enumerate(row):
            if g:
                x += row_h * rng.uniform(0.0, 0.45)
            for c, (label, mask) in enumerate(group):
                if c:
                    x += row_h * rng.uniform(-0.08, 0.22)  # below zero: neighbours touch or overlap
                aspect = mask.shape[1] / mask.shape[0]
                if label.isdigit():
                    aspect = max(aspect, rng.uniform(0.55, 0.8 if row_h == h else 1.0))
                w = max(3.0, row_h * min(aspect, 1.6) * rng.uniform(0.9, 1.15))
                ch = row_h * rng.uniform(0.93, 1.0)
                items.append((label, mask, x, rng.uniform(-0.04, 0.04) * row_h, w, ch))
                x += w
        placed.append(items)
        widths.append(x)
    mx, my = h * rng.uniform(0.25, 0.7), h * rng.uniform(0.2, 0.5)
    row_gap = h * rng.uniform(0.1, 0.4)
    width = int(np.ceil(max(widths) + 2 * mx))
    height = int(np.ceil(sum(heights) + row_gap * (len(rows) - 1) + 2 * my))
    alpha = np.zeros((height, width), np.float32)
    ids = np.zeros((height, width), np.uint8)
    labels: list[list[str]] = []
    spots: list[tuple[float, float, float, float]] = []  # (x, y, w, h) of the zone letter, for its dot
    y0, char_id = my, 0
    for items, row_h, row_w in zip(placed, heights, widths, strict=True):
        x0 = mx + (width - 2 * mx - row_w) * rng.uniform(0.3, 0.7)
        labels.append([])
        for label, mask, x, dy, w, ch in items:
            char_id += 1
            left, top = round(x0 + x), round(y0 + dy + (row_h - ch) / 2)
            wi, hi = max(3, round(w)), max(6, round(ch))
            top, left = min(max(top, 0), height - hi), min(max(left, 0), width - wi)
            paint = _stroke(mask, wi, hi, rng)
            region = alpha[top : top + hi, left : left + wi]
            np.maximum(region, paint, out=region)
            ids[top : top + hi, left : left + wi][paint > 0.5] = char_id
            labels[-1].append(label)
            spots.append((left, top, wi, hi))
        y0 += row_h + row_gap
    return alpha, ids, labels, spots


def _clutter(
    alpha: np.ndarray, spots: list[tuple[float, float, float, float]], rng: np.random.Generator
) -> None:
    """Rim, frame, bolts and the dot or dash after the zone letter, painted into ``alpha``."""
    height, width = alpha.shape
    h = spots[0][3]
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    if rng.random() < 0.45:  # the plate's rim or a painted frame
        inset = int(rng.uniform(0, 0.15) * h)
        draw.rectangle(
            [inset, inset, width - 1 - inset, height - 1 - inset],
            outline=int(rng.uniform(150, 255)),
            width=max(1, int(h * rng.uniform(0.03, 0.1))),
        )
    if rng.random() < 0.5:  # bolts or rivets: in the margins, between the rows, or on a character's edge
        r = h * rng.uniform(0.06, 0.14)
        for _ in range(int(rng.integers(1, 5))):
            cx, cy = rng.uniform(0, width), rng.choice([rng.uniform(0, h * 0.5), rng.uniform(0, height)])
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=int(rng.uniform(120, 255)))
    if rng.random() < 0.45 and len(spots) > 1:  # a dot or a dash after the zone letter
        x, y, w, ch = spots[0]
        gap = max(spots[1][0] - (x + w), 2.0)
        r = max(1.5, min(ch * 0.08, gap * 0.45))
        cx, cy = x + w + gap / 2, y + ch * rng.uniform(0.45, 0.9)
        if rng.random() < 0.6:
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        else:
            draw.rectangle([cx - 1.6 * r, cy - r * 0.6, cx + 1.6 * r, cy + r * 0.6], fill=255)
    np.maximum(alpha, np.asarray(layer, np.float32) / 255.0, out=alpha)


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Plate and paint: mostly red and white, some faded, a few dark or light plates."""
    draw = rng.random()
    if draw < 0.8:
        plate = np.array([rng.uniform(110, 220), rng.uniform(10, 70), rng.uniform(15, 80)])
        paint = np.array([rng.uniform(190, 255), rng.uniform(170, 245), rng.uniform(170, 245)])
    elif draw < 0.9:
        plate, paint = np.full(3, rng.uniform(10, 70)), np.full(3, rng.uniform(180, 250))
    else:
        plate, paint = np.full(3, rng.uniform(180, 250)), np.array([rng.uniform(0, 160), 20.0, 20.0])
    return plate.astype(np.float32), paint.astype(np.float32)


def _street(width: int, height: int, plate: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """What a detector's box holds beside the plate: grey street, or red of the bike's own paint
    and tail light (which a loose detector box often keeps above the plate)."""
    cells = rng.integers(0, 160, (8, 8, 3)).astype(np.float32)
    if rng.random() < 0.35:
        cells = 0.4 * cells + 0.6 * plate * rng.uniform(0.6, 1.2, (8, 8, 1))
    grey = cells.mean(axis=2, keepdims=True)
    cells = grey + (cells - grey) * rng.uniform(0.2, 0.8)  # streets are duller than a test pattern
    return Image.fromarray(np.clip(cells, 0, 255).astype(np.uint8), "RGB").resize((width, height))


def _photograph(
    alpha: np.ndarray, ids: np.ndarray, rng: np.random.Generator
) -> tuple[Image.Image, np.ndarray]:
    """Light, perspective, the street around the box, blur, noise and JPEG; ids warped alike."""
    height, width = alpha.shape
    plate, paint = _colours(rng)
    gx, gy = rng.uniform(-0.25, 0.25, size=2)
    light = 1.0 + gx * np.linspace(-1, 1, width)[None, :] + gy * np.linspace(-1, 1, height)[:, None]
    if rng.random() < 0.3:  # a shadow across part of the plate
        cut = rng.uniform(0.2, 0.8) * width + np.linspace(0, rng.uniform(-0.5, 0.5) * width, height)[:, None]
        light = light * np.where(np.arange(width)[None, :] < cut, rng.uniform(0.45, 0.8), 1.0)
    pixels = (plate * (1 - alpha[..., None]) + paint * alpha[..., None]) * light[..., None]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    # The detector's box with its margin: the street shows around a warped plate.
    margin = rng.uniform(0.0, 0.15, size=4) * np.array([width, height, width, height])
    out_w, out_h = int(width + margin[0] + margin[2]), int(height + margin[1] + margin[3])
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], float)
    jitter = rng.uniform(-0.07, 0.07, size=(4, 2)) * np.array([width, height])
    angle = np.deg2rad(rng.uniform(-7, 7))
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    placed = (
        (corners - [width / 2, height / 2]) @ turn.T
        + [width / 2 + margin[0], height / 2 + margin[1]]
        + jitter
    )
    coefficients = _homography(placed, corners).flatten()[:8]
    street = _street(out_w, out_h, plate, rng)
    warped = image.transform(
        (out_w, out_h), Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
    )
    inside = Image.new("L", (width, height), 255).transform(
        (out_w, out_h), Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BILINEAR
    )
    street.paste(warped, (0, 0), inside)
    ids_out = Image.fromarray(ids, "L").transform(
        (out_w, out_h), Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.NEAREST
    )
    if rng.random() < 0.25:  # glare
        glare = Image.new("L", street.size, 0)
        cx, cy, r = rng.uniform(0, out_w), rng.uniform(0, out_h), rng.uniform(0.1, 0.4) * out_w
        ImageDraw.Draw(glare).ellipse(
            [cx - r, cy - r / 2, cx + r, cy + r / 2], fill=int(rng.uniform(60, 170))
        )
        street = Image.composite(
            Image.new("RGB", street.size, (255, 255, 255)),
            street,
            glare.filter(ImageFilter.GaussianBlur(r / 3)),
        )
    blur = float(rng.uniform(0.0, 1.6))
    if blur > 0.3:
        street = street.filter(ImageFilter.GaussianBlur(blur))
    noisy = np.asarray(street, np.float32) + rng.normal(0, rng.uniform(2, 12), (out_h, out_w, 3))
    street = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.5:
        buffer = io.BytesIO()
        street.save(buffer, "JPEG", quality=int(rng.integers(25, 90)))
        street = Image.open(buffer).convert("RGB")
    return street, np.asarray(ids_out)


def _boxes(labels: list[list[str]], ids: np.ndarray) -> list[list[CharBox]] | None:
    """Each character's ink box in the finished image; None when one fell outside it."""
    found = ndimage.find_objects(ids, max_label=sum(len(row) for row in labels))
    boxes: list[list[CharBox]] = []
    char_id = 0
    for row in labels:
        boxes.append([])
        for _ in row:
            where = found[char_id]
            char_id += 1
            if where is None:
                return None
            ys, xs = where
            boxes[-1].append((xs.start, ys.start, xs.stop - xs.start, ys.stop - ys.start))
    return boxes


def painted_plate(glyphs: Glyphs, rng: np.random.Generator) -> PaintedPlate:
    """One plate, every choice drawn from ``rng``."""
    while True:
        alpha, ids, labels, spots = _compose(_groups(glyphs, rng), rng)
        _clutter(alpha, spots, rng)
        image, warped_ids = _photograph(alpha, ids, rng)
        boxes = _boxes(labels, warped_ids)
        if boxes is not None:
            return PaintedPlate(image, labels, boxes)


def painted_plates(
    crops: Mapping[str, Sequence[Path]], cha: Sequence[Path], count: int, seed: int
) -> Iterator[PaintedPlate]:
    """``count`` plates from fitted crops by class and real च crops; ``seed`` fixes every one."""
    rng = np.random.default_rng(seed)
    glyphs = Glyphs(crops, cha, rng)
    for _ in range(count):
        yield painted_plate(glyphs, rng)
