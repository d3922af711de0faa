"""Synthetic whole plates composed from held-out character crops.

The dataset only has single-character crops, so the plate reader is measured
(:mod:`training.evaluation.plates`) on plates composed from the *test* crops:
every character on a plate is a real crop the model never trained on, painted
white on plate red, laid out as a Bagmati motorbike plate (``बा ९३ प १२३४`` in
one row, or ``बा ९३ प`` over ``१२३४``), with random size, spacing, tilt up to
±5°, uneven light, blur, noise, and sometimes screws, a painted frame and a
separator dot, the things a segmenter must ignore. The ground truth is the
classes of the crops used. Everything is drawn from one seeded generator, so a
seed names a plate set exactly.

Crops are dealt, not sampled: each class's crops (the digits as one pool) are
shuffled and used in turn, reshuffled when exhausted, so every test crop
appears about equally often and the plate accuracy reflects the whole test set
rather than a lucky draw.

NumPy, Pillow and SciPy only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lpr.labels import DEVANAGARI, DIGITS, LABELS
from lpr.plate_grammar import CLASS_LETTERS, ZONES
from lpr.plate_reader import UNREADABLE
from lpr.preprocessing import binarise

#: Mixed into the seed for the foreign letters' draws, so they never disturb the base plates.
FOREIGN_SEED = 13

#: The seed of the shipped evaluation (reports/plates_eval.json); fixed before the first run.
DEFAULT_SEED = 5
DEFAULT_COUNT = 300

#: Width / height of each class as painted on plates (the colour samples: ब‍ा is square, the rest narrower).
ASPECT = {"ba": 1.0, "pa": 0.8}
DIGIT_ASPECT = 0.78


@dataclass
class Plate:
    """One synthetic plate and its truth."""

    image: Image.Image
    rows: list[list[str]]  # true labels per row, left to right
    boxes: list[list[tuple[int, int, int, int]]]  # true ink box (x, y, width, height) per character
    sources: list[list[str]]  # the crop file behind each character
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join("".join(DEVANAGARI.get(label, label) for label in row) for row in self.rows)

    @property
    def foreign(self) -> list[dict[str, str]]:
        """The letters outside the model's twelve painted on this plate (their truth label is ``?``)."""
        return self.params.get("foreign", [])


class CropDealer:
    """Hands out crops of a class in a seeded shuffled order, reshuffling when a pool runs out."""

    def __init__(self, crops: Mapping[str, Sequence[Path]], rng: np.random.Generator) -> None:
        self.rng = rng
        self.paths: dict[str, list[Path]] = {}
        for label in LABELS:
            if not crops.get(label):
                raise FileNotFoundError(f"no crops of class {label!r}")
            self.paths[label] = sorted(crops[label])
        # Digits form one pool: the number's digits follow the test set's own class mix.
        self.pools: dict[str, list[Path]] = {
            "digit": [p for d in DIGITS for p in self.paths[d]],
            "ba": self.paths["ba"],
            "pa": self.paths["pa"],
        }
        self.queues: dict[str, list[Path]] = {name: [] for name in self.pools}
        self._masks: dict[Path, np.ndarray] = {}

    def deal(self, pool: str) -> tuple[str, Path]:
        queue = self.queues[pool]
        if not queue:
            order = self.rng.permutation(len(self.pools[pool]))
            queue.extend(self.pools[pool][i] for i in order)
        path = queue.pop()
        return path.parent.name, path

    def foreign(self, slot: str, rng: np.random.Generator, font: str) -> tuple[str, str, str]:
        """A zone or class letter the model does not read, rendered in ``font``: ``("?", key, letter)``.

        ``key`` names its mask for :meth:`mask`; the truth label is ``?``, what the reader must answer.
        """
        from training.synthesis.ood import _fit_square, _render_glyph, hand_painted

        letters = [
            g for name, g in (ZONES if slot == "zone" else CLASS_LETTERS).items() if name not in LABELS
        ]
        letter = letters[int(rng.integers(len(letters)))]
        key = f"rendered:{slot}:{letter}:{Path(font).stem}:{len(self._masks)}"
        # Painted by hand, as real plate letters are: a typeset letter is the easy case.
        glyph = _fit_square(hand_painted(_render_glyph(letter, font, rng), rng), rng, 50)
        self._masks[key] = glyph > 127
        return UNREADABLE, key, letter

    def mask(self, path: Path | str) -> np.ndarray:
        """The crop's glyph as the shared preprocessing sees it (white = paint)."""
        if path not in self._masks:
            with Image.open(path) as image:
                self._masks[path] = binarise(image)
        return self._masks[path]


def _paint_alpha(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A binary crop stretched to the character's size, with soft (anti-aliased) edges."""
    image = Image.fromarray(mask.astype(np.uint8) * 255, "L").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    return np.asarray(image, dtype=np.float32) / 255.0


Item = tuple[str, Path | str]  # a character: its label and its crop (a path, or a rendered mask's key)


@dataclass
class _Layout:
    """Where every character of a plate goes, before painting: sizes in pixels of the upright plate."""

    h: int  # character height of the first row
    group_gap: float
    row_gap: float
    margin_x: float
    margin_y: float
    rows: list[list[tuple[str, Path | str, float, float, int, int]]]  # label, crop, x, dy, width, height
    row_widths: list[float]
    row_heights: list[int]
    width: int
    height: int

    def row_left(self, row: int) -> float:
        """The x of a row's first character: rows are centred on the widest."""
        return self.margin_x + (self.width - 2 * self.margin_x - self.row_widths[row]) / 2


def _deal_groups(dealer: CropDealer, rng: np.random.Generator) -> tuple[bool, list[list[Item]]]:
    """The plate's rows and its four groups: बा, the lot number, प, the number."""
    two_rows = bool(rng.random() < 0.5)
    lot = int(rng.choice([1, 2, 3], p=[0.15, 0.7, 0.15]))
    number = int(rng.choice([1, 2, 3, 4], p=[0.05, 0.1, 0.15, 0.7]))
    groups: list[list[Item]] = [
        [dealer.deal("ba")],
        [dealer.deal("digit") for _ in range(lot)],
        [dealer.deal("pa")],
        [dealer.deal("digit") for _ in range(number)],
    ]
    return two_rows, groups


def _paint_foreign(
    groups: list[list[Item]], dealer: CropDealer, rng: np.random.Generator, fonts: Sequence[str]
) -> tuple[list[dict[str, str]], dict[str, float]]:
    """Replace the class letter (most), the zone (some) or both (a few) with letters outside the twelve.

    Returns what was painted and each foreign letter's aspect by its mask key: painted as wide as
    the letter it replaces, so the plate's layout (and every later draw of the plate's generator,
    whose counts follow the image's size) stays the same.
    """
    draw = rng.random()
    slots = ["class"] if draw < 0.6 else ["zone"] if draw < 0.9 else ["zone", "class"]
    painted: list[dict[str, str]] = []
    widths: dict[str, float] = {}
    for slot in slots:
        font = fonts[int(rng.integers(len(fonts)))]
        label, key, letter = dealer.foreign(slot, rng, font)
        index = 0 if slot == "zone" else 2
        widths[key] = ASPECT[groups[index][0][0]]
        groups[index] = [(label, key)]
        painted.append({"slot": slot, "letter": letter, "font": Path(font).stem})
    return painted, widths


def _lay_out(
    row_groups: list[list[list[Item]]], widths: dict[str, float], rng: np.random.Generator
) -> _Layout:
    """Sizes and gaps drawn from ``rng``; every row laid out at the origin."""
    h = int(rng.integers(40, 91))  # character height, px
    gap = h * rng.uniform(0.10, 0.30)  # between the crops of one group
    group_gap = h * rng.uniform(0.15, 0.5)  # extra space between बा, the lot, प and the number
    row_gap = h * rng.uniform(0.15, 0.4)
    margin_x, margin_y = h * rng.uniform(0.35, 0.7), h * rng.uniform(0.3, 0.6)
    layouts: list[list[tuple[str, Path | str, float, float, int, int]]] = []
    row_widths: list[float] = []
    for row_index, row in enumerate(row_groups):
        x, items = 0.0, []
        row_h = h if row_index == 0 else round(h * rng.uniform(1.0, 1.12))
        for g_index, group in enumerate(row):
            if g_index:
                x += group_gap
            for c_index, (label, path) in enumerate(group):
                if c_index:
                    x += gap * rng.uniform(0.8, 1.2)
                aspect = widths.get(str(path), ASPECT.get(label, DIGIT_ASPECT)) * rng.uniform(0.9, 1.1)
                w = max(8, round(row_h * aspect))
                dy = row_h * rng.uniform(-0.04, 0.04)
                items.append((label, path, x, dy, w, row_h))
                x += w
        layouts.append(items)
        row_widths.append(x)
    width = int(np.ceil(max(row_widths) + 2 * margin_x))
    row_heights = [max(item[5] for item in items) for items in layouts]
    height = int(np.ceil(sum(row_heights) + row_gap * (len(layouts) - 1) + 2 * margin_y))
    return _Layout(h, group_gap, row_gap, margin_x, margin_y, layouts, row_widths, row_heights, width, height)


def _paint_characters(
    layout: _Layout, dealer: CropDealer
) -> tuple[np.ndarray, np.ndarray, list[list[str]], list[list[str]]]:
    """The paint's alpha, which character painted each pixel (1-based, for the truth boxes), labels, crops."""
    alpha = np.zeros((layout.height, layout.width), np.float32)
    ids = np.zeros((layout.height, layout.width), np.uint8)
    rows: list[list[str]] = []
    sources: list[list[str]] = []
    char_id = 0
    y0 = layout.margin_y
    for row_index, (items, row_h) in enumerate(zip(layout.rows, layout.row_heights, strict=True)):
        x0 = layout.row_left(row_index)
        rows.append([])
        sources.append([])
        for label, path, x, dy, w, ch in items:
            char_id += 1
            left, top = round(x0 + x), round(y0 + dy + (row_h - ch) / 2)
            top = min(max(top, 0), layout.height - ch)
            glyph = _paint_alpha(dealer.mask(path), w, ch)
            region = alpha[top : top + ch, left : left + w]
            np.maximum(region, glyph, out=region)
            ids[top : top + ch, left : left + w][glyph > 0.5] = char_id
            rows[-1].append(label)
            sources[-1].append(path if isinstance(path, str) else f"{path.parent.name}/{path.name}")
        y0 += row_h + layout.row_gap
    return alpha, ids, rows, sources


def _clutter(layout: _Layout, rng: np.random.Generator, params: dict[str, Any]) -> np.ndarray:
    """Painted frame, screw heads and separator dot, each by chance; recorded in ``params``."""
    width, height, h = layout.width, layout.height, layout.h
    margin_x, margin_y = layout.margin_x, layout.margin_y
    clutter = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(clutter)
    if rng.random() < 0.4:  # a painted frame just inside the plate's edge
        inset = int(min(margin_x, margin_y) * rng.uniform(0.15, 0.4))
        thick = max(2, int(h * rng.uniform(0.03, 0.06)))
        draw.rectangle([inset, inset, width - 1 - inset, height - 1 - inset], outline=255, width=thick)
        params["frame"] = True
    if rng.random() < 0.5:  # two screw heads in the side margins
        radius = h * rng.uniform(0.06, 0.11)
        cy = height / 2 if rng.random() < 0.5 else margin_y / 2 + radius
        for cx in (margin_x / 2, width - margin_x / 2):
            draw.ellipse(
                [cx - radius, cy - radius, cx + radius, cy + radius], fill=int(rng.uniform(200, 255))
            )
        params["screws"] = True
    if rng.random() < 0.3 and len(layout.rows[0]) > 1:  # a separator dot after बा, on the baseline
        _, _, x, _, w, ch = layout.rows[0][0]
        radius = min(h * 0.06, layout.group_gap / 4)
        if radius >= 1.5:
            cx, cy = layout.row_left(0) + x + w + layout.group_gap / 2, margin_y + ch * 0.85
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
            params["dot"] = True
    return np.asarray(clutter, np.float32) / 255.0


def _photograph(
    alpha: np.ndarray,
    ids: np.ndarray,
    colours: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    params: dict[str, Any],
) -> tuple[Image.Image, np.ndarray]:
    """Uneven light, tilt, blur and noise; the plate's image and its character ids turned alike."""
    background, paint = colours
    height, width = alpha.shape
    gx, gy = rng.uniform(-0.15, 0.15, size=2)  # uneven light: a linear gradient across the plate
    light = 1.0 + gx * np.linspace(-1, 1, width)[None, :] + gy * np.linspace(-1, 1, height)[:, None]
    pixels = (background * (1 - alpha[..., None]) + paint * alpha[..., None]) * light[..., None]
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")

    angle = float(rng.uniform(-5, 5))
    fill = tuple(int(v) for v in background)
    image = image.rotate(angle, Image.Resampling.BICUBIC, expand=True, fillcolor=fill)
    ids_image = Image.fromarray(ids, "L").rotate(angle, Image.Resampling.NEAREST, expand=True, fillcolor=0)
    blur = float(rng.uniform(0.0, 1.2))
    if blur > 0.2:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    sigma = float(rng.uniform(2, 10))
    noisy = np.asarray(image, np.float32) + rng.normal(0, sigma, size=(image.height, image.width, 3))
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    params.update(angle=round(angle, 2), blur=round(blur, 2), noise=round(sigma, 1))
    return image, np.asarray(ids_image)


def _true_boxes(rows: list[list[str]], ids: np.ndarray) -> list[list[tuple[int, int, int, int]]]:
    """Each character's ink box ``(x, y, width, height)`` in the finished image."""
    boxes: list[list[tuple[int, int, int, int]]] = []
    char_id = 0
    for row in rows:
        boxes.append([])
        for _ in row:
            char_id += 1
            ys, xs = np.nonzero(ids == char_id)
            x_lo, y_lo = int(xs.min()), int(ys.min())
            boxes[-1].append((x_lo, y_lo, int(xs.max()) - x_lo + 1, int(ys.max()) - y_lo + 1))
    return boxes


def generate_plate(
    dealer: CropDealer,
    rng: np.random.Generator,
    foreign: float = 0.0,
    foreign_rng: np.random.Generator | None = None,
    fonts: Sequence[str] = (),
) -> Plate:
    """One plate: layout, crops, colours and clutter all drawn from ``rng``.

    With ``foreign`` > 0, that share of plates carries a zone letter other than
    बा or a class letter other than प (च on a car, say), rendered in one of
    ``fonts``; those choices come from ``foreign_rng`` alone, so the plates'
    layout, crops and clutter are the same with or without them.
    """
    two_rows, groups = _deal_groups(dealer, rng)
    painted: list[dict[str, str]] = []
    widths: dict[str, float] = {}  # aspect of each foreign letter, by its mask key
    if foreign > 0 and foreign_rng is not None and foreign_rng.random() < foreign:
        painted, widths = _paint_foreign(groups, dealer, foreign_rng, fonts)
    layout = _lay_out([groups[:3], groups[3:]] if two_rows else [groups], widths, rng)
    background = np.array([rng.uniform(150, 215), rng.uniform(15, 60), rng.uniform(20, 70)], np.float32)
    paint = np.array([rng.uniform(225, 255), rng.uniform(210, 245), rng.uniform(210, 245)], np.float32)
    alpha, ids, rows, sources = _paint_characters(layout, dealer)

    params: dict[str, Any] = {"two_rows": two_rows, "char_height": layout.h}
    if painted:
        params["foreign"] = painted
    alpha = np.maximum(alpha, _clutter(layout, rng, params))
    image, rotated_ids = _photograph(alpha, ids, (background, paint), rng, params)
    return Plate(image=image, rows=rows, boxes=_true_boxes(rows, rotated_ids), sources=sources, params=params)


def crops_in(folder: str | Path) -> dict[str, list[Path]]:
    """The crops of a ``<folder>/<class>/*.jpg`` split, by class."""
    folder = Path(folder)
    return {
        label: sorted(folder.glob(f"{label}/*.jpg")) + sorted(folder.glob(f"{label}/*.png"))
        for label in LABELS
    }


def validation_crops(data: str | Path, meta: dict[str, Any]) -> dict[str, list[Path]]:
    """The shipped model's validation crops (never trained on): where the segmenter was developed."""
    from training.data.sources import recipe_splits

    recipe, data = meta["training"]["recipe"], Path(data)
    if not recipe.get("sources"):
        return recipe_splits(recipe, meta["seed"], data).val.by_class()
    # A multi-source model: ``data`` is one of its sources; its validation crops as the run split
    # them (a photographed twin's follow its original's, so every source is opened).
    sources = recipe_splits(recipe, meta["seed"], data.parent).sources
    return next(s for s in sources if s.root == data.resolve()).val.by_class()


def generate_plates(
    crops: str | Path | Mapping[str, Sequence[Path]],
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
    foreign: float = 0.0,
) -> Iterator[Plate]:
    """``count`` plates from ``crops`` (a ``<class>/*`` folder, or paths by class); ``seed`` fixes all.

    ``foreign``: the share of plates with a zone or class letter outside the model's twelve,
    rendered in the Devanagari fonts no training crop is drawn in and painted by hand
    (``training.synthesis.ood.hand_painted``).
    """
    rng = np.random.default_rng(seed)
    dealer = CropDealer(crops if isinstance(crops, Mapping) else crops_in(crops), rng)
    foreign_rng = np.random.default_rng([seed, FOREIGN_SEED]) if foreign > 0 else None
    fonts: tuple[str, ...] = ()
    if foreign > 0:
        from training.synthesis.ood import HELD_OUT_FONTS, require_fonts

        require_fonts()
        fonts = HELD_OUT_FONTS["devanagari"]
    for _ in range(count):
        yield generate_plate(dealer, rng, foreign, foreign_rng, fonts)
