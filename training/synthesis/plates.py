"""Synthetic whole plates composed from held-out character crops, and their evaluation.

The dataset only has single-character crops, so the plate reader (segmentation
plus the classifier) is measured on plates composed from the *test* crops:
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

Each plate is read by :func:`lpr.plate_reader.read_plate`, the very reader
behind ``POST /read-plate``, so the score is that of the service's answers.

NumPy, Pillow, SciPy and ONNX Runtime only (the figure needs matplotlib, imported lazily).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lpr.labels import DEVANAGARI, DIGITS, LABELS
from lpr.model import Model
from lpr.plate_grammar import CLASS_LETTERS, ZONES
from lpr.plate_reader import UNREADABLE, decode, read_plate
from lpr.preprocessing import binarise, load_file
from lpr.repository import DEFAULT_MODEL, DEFAULT_REPOSITORY, METADATA_FILE, MODEL_FILE, ModelFiles, locate
from lpr.segmentation import segment
from training.common.outputs import (
    PLATES_EVAL,
    PLATES_EVAL_FOREIGN,
    PLATES_EVAL_VAL,
    PLATES_FIGURE,
    REPORTS,
    figures_dir,
    write_json,
)

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
    two_rows = bool(rng.random() < 0.5)
    lot = int(rng.choice([1, 2, 3], p=[0.15, 0.7, 0.15]))
    number = int(rng.choice([1, 2, 3, 4], p=[0.05, 0.1, 0.15, 0.7]))
    groups: list[list[tuple[str, Path | str]]] = [
        [dealer.deal("ba")],
        [dealer.deal("digit") for _ in range(lot)],
        [dealer.deal("pa")],
        [dealer.deal("digit") for _ in range(number)],
    ]
    painted: list[dict[str, str]] = []
    widths: dict[str, float] = {}  # aspect of each foreign letter, by its mask key
    if foreign > 0 and foreign_rng is not None and foreign_rng.random() < foreign:
        # The class letter on most (cars, trucks), the zone on some, both on a few.
        draw = foreign_rng.random()
        slots = ["class"] if draw < 0.6 else ["zone"] if draw < 0.9 else ["zone", "class"]
        for slot in slots:
            font = fonts[int(foreign_rng.integers(len(fonts)))]
            label, key, letter = dealer.foreign(slot, foreign_rng, font)
            index = 0 if slot == "zone" else 2
            # Painted as wide as the letter it replaces, so the plate's layout (and every later
            # draw from ``rng``, whose counts follow the image's size) stays the same.
            widths[key] = ASPECT[groups[index][0][0]]
            groups[index] = [(label, key)]
            painted.append({"slot": slot, "letter": letter, "font": Path(font).stem})
    row_groups = [groups[:3], groups[3:]] if two_rows else [groups]

    h = int(rng.integers(40, 91))  # character height, px
    gap = h * rng.uniform(0.10, 0.30)  # between the crops of one group
    group_gap = h * rng.uniform(0.15, 0.5)  # extra space between बा, the lot, प and the number
    row_gap = h * rng.uniform(0.15, 0.4)
    margin_x, margin_y = h * rng.uniform(0.35, 0.7), h * rng.uniform(0.3, 0.6)

    # Lay out every row at the origin, then centre rows on the widest.
    layouts: list[list[tuple[str, Path, float, float, int, int]]] = []
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

    background = np.array([rng.uniform(150, 215), rng.uniform(15, 60), rng.uniform(20, 70)], np.float32)
    paint = np.array([rng.uniform(225, 255), rng.uniform(210, 245), rng.uniform(210, 245)], np.float32)
    alpha = np.zeros((height, width), np.float32)
    ids = np.zeros((height, width), np.uint8)  # which character painted each pixel (1-based), for truth boxes

    rows: list[list[str]] = []
    sources: list[list[str]] = []
    char_id = 0
    y0 = margin_y
    for items, row_width, row_h in zip(layouts, row_widths, row_heights, strict=True):
        x0 = margin_x + (width - 2 * margin_x - row_width) / 2
        rows.append([])
        sources.append([])
        for label, path, x, dy, w, ch in items:
            char_id += 1
            left, top = round(x0 + x), round(y0 + dy + (row_h - ch) / 2)
            top = min(max(top, 0), height - ch)
            glyph = _paint_alpha(dealer.mask(path), w, ch)
            region = alpha[top : top + ch, left : left + w]
            np.maximum(region, glyph, out=region)
            ids[top : top + ch, left : left + w][glyph > 0.5] = char_id
            rows[-1].append(label)
            sources[-1].append(path if isinstance(path, str) else f"{path.parent.name}/{path.name}")
        y0 += row_h + row_gap

    params: dict[str, Any] = {"two_rows": two_rows, "char_height": h}
    if painted:
        params["foreign"] = painted
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
    if rng.random() < 0.3 and len(layouts[0]) > 1:  # a separator dot after बा, on the baseline
        _, _, x, _, w, ch = layouts[0][0]
        x0 = margin_x + (width - 2 * margin_x - row_widths[0]) / 2
        radius = min(h * 0.06, group_gap / 4)
        if radius >= 1.5:
            cx, cy = x0 + x + w + group_gap / 2, margin_y + ch * 0.85
            draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
            params["dot"] = True
    alpha = np.maximum(alpha, np.asarray(clutter, np.float32) / 255.0)

    # Uneven light: a linear gradient across the plate.
    gx, gy = rng.uniform(-0.15, 0.15, size=2)
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

    rotated_ids = np.asarray(ids_image)
    boxes: list[list[tuple[int, int, int, int]]] = []
    char_id = 0
    for row in rows:
        boxes.append([])
        for _ in row:
            char_id += 1
            ys, xs = np.nonzero(rotated_ids == char_id)
            x_lo, y_lo = int(xs.min()), int(ys.min())
            boxes[-1].append((x_lo, y_lo, int(xs.max()) - x_lo + 1, int(ys.max()) - y_lo + 1))
    return Plate(image=image, rows=rows, boxes=boxes, sources=sources, params=params)


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
    (``training.ood.hand_painted``).
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


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two label sequences (substitution, insertion, deletion cost 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _score(plates: Sequence[Plate], readings: Sequence[list[list[str]]]) -> dict[str, Any]:
    """Whole-plate and character accuracy of ``readings`` against the plates' truth.

    Character accuracy is ``1 - edit distance / true characters`` over the plate's
    labels in reading order (rows concatenated): a missed, split or spurious
    character costs one error, a misread one costs one, and the other characters
    still count. A plate is read correctly only if every row matches exactly.
    """
    n_chars = errors = correct = 0
    for plate, read in zip(plates, readings, strict=True):
        truth = [label for row in plate.rows for label in row]
        n_chars += len(truth)
        errors += edit_distance(truth, [label for row in read for label in row])
        correct += read == plate.rows
    return {
        "whole_plate_accuracy": round(correct / len(plates), 4),
        "character_accuracy": round(1 - errors / n_chars, 4),
        "character_errors": errors,
    }


def _labels(rows: Sequence[Sequence[dict[str, Any]]]) -> list[list[str]]:
    return [[c["label"] for c in row] for row in rows]


def evaluate_plates(plates: Sequence[Plate], model: Model) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Read every plate with the service's plate reader (:func:`lpr.plate_reader.read_plate`).

    Scores are given with the plate format (what the service answers) and
    without it (the segmenter and classifier alone, the same probabilities decoded
    without the format).
    """
    per_plate: list[dict[str, Any]] = []
    raw_readings: list[list[list[str]]] = []
    seconds: list[float] = []
    for index, plate in enumerate(plates):
        started = time.perf_counter()
        reading = read_plate(plate.image, model.run, model.metadata)
        read = reading.labels
        seconds.append(time.perf_counter() - started)
        raw, _, _ = decode(reading.segmentation, reading.probabilities, model.metadata, use_grammar=False)
        raw_readings.append(_labels(raw))
        per_plate.append(
            {
                "index": index,
                "truth": plate.rows,
                "read": read,
                "correct": read == plate.rows,
                "confident": reading.confident,
                # The reader's best guess, "?" only where it holds a letter the model cannot read.
                "best_reading_right": bool(reading.readings)
                and reading.readings[0]["labels"] == [label for row in plate.rows for label in row],
                "foreign": [
                    {**letter, "flagged": read_char == UNREADABLE}
                    for letter, read_char in _foreign_reads(plate, reading)
                ],
                "segmented_right": [len(r) for r in read] == [len(r) for r in plate.rows],
                "sources": plate.sources,
                "params": plate.params,
            }
        )
    readings = [p["read"] for p in per_plate]
    without = _score(plates, raw_readings)
    summary = {
        "plates": len(per_plate),
        "characters": sum(len(row) for plate in plates for row in plate.rows),
        **_score(plates, readings),
        "segmentation_accuracy": round(sum(p["segmented_right"] for p in per_plate) / len(per_plate), 4),
        "best_reading_accuracy": round(sum(p["best_reading_right"] for p in per_plate) / len(per_plate), 4),
        # What a parking system stores without a second look: plates answered `confident`, and
        # the share of all plates answered confident and wrong (the figure that must stay near 0).
        "confident_share": round(sum(p["confident"] for p in per_plate) / len(per_plate), 4),
        "false_confident_share": round(
            sum(p["confident"] and not p["correct"] for p in per_plate) / len(per_plate), 4
        ),
        "without_format": without,
        **_foreign_summary(per_plate),
        "one_row_plates": sum(not p["params"]["two_rows"] for p in per_plate),
        "two_row_plates": sum(p["params"]["two_rows"] for p in per_plate),
        "ms_per_plate_median": round(float(np.median(seconds)) * 1000, 2),
    }
    return summary, per_plate


def _foreign_reads(plate: Plate, reading: Any) -> list[tuple[dict[str, str], str | None]]:
    """Each foreign letter of the plate and what the reader answered in its place (None: mis-segmented)."""
    places = [
        (r, c) for r, row in enumerate(plate.rows) for c, label in enumerate(row) if label == UNREADABLE
    ]
    read = reading.labels
    segmented = [len(row) for row in read] == [len(row) for row in plate.rows]
    return [
        (letter, read[r][c] if segmented else None)
        for letter, (r, c) in zip(plate.foreign, places, strict=True)
    ]


def _foreign_summary(per_plate: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Plates with letters outside the twelve: accuracy, flagged letters by symbol, false confidence."""
    foreign = [p for p in per_plate if p["foreign"]]
    if not foreign:
        return {}
    letters = [letter for p in foreign for letter in p["foreign"]]
    by_symbol: dict[str, list[bool]] = {}
    for letter in letters:
        by_symbol.setdefault(letter["letter"], []).append(letter["flagged"])
    in_class = [p for p in per_plate if not p["foreign"]]
    return {
        "foreign_plates": len(foreign),
        "in_class_plates": len(in_class),
        "in_class_whole_plate_accuracy": round(
            sum(p["correct"] for p in in_class) / max(len(in_class), 1), 4
        ),
        "foreign_whole_plate_accuracy": round(sum(p["correct"] for p in foreign) / len(foreign), 4),
        "foreign_letters_flagged": round(sum(letter["flagged"] for letter in letters) / len(letters), 4),
        "foreign_plates_false_confident": round(
            sum(p["confident"] and not p["correct"] for p in foreign) / len(foreign), 4
        ),
        "foreign_flagged_by_symbol": {
            symbol: {"letters": len(flags), "flagged": round(sum(flags) / len(flags), 4)}
            for symbol, flags in sorted(by_symbol.items())
        },
    }


def plates_figure(
    plates: Sequence[Plate], results: Sequence[dict[str, Any]], out: Path, columns: int = 3, shown: int = 12
) -> Path:
    """Some plates with the boxes the segmenter found and what was read (wrong readings first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    wrong = [i for i, r in enumerate(results) if not r["correct"]]
    right = [i for i, r in enumerate(results) if r["correct"]]
    chosen = (wrong[: shown // 3] + right)[:shown]
    rows = (len(chosen) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel(), chosen, strict=False):
        plate, result = plates[index], results[index]
        segmentation = segment(plate.image)
        ax.imshow(plate.image)
        for row in segmentation.rows:
            for glyph in row:
                x, y, w, h = glyph.box
                ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor="yellow", linewidth=1.2))
        truth = " / ".join(" ".join(row) for row in result["truth"])
        read = " / ".join(" ".join(row) for row in result["read"])
        mark = "ok" if result["correct"] else "WRONG"
        ax.set_title(f"#{index} {mark}\ntrue {truth}\nread {read}", fontsize=8, family="monospace")
    fig.suptitle("Synthetic plates from held-out test crops: segmenter's boxes (yellow) and readings")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def crop_by_crop(
    plates: Sequence[Plate], crops: Mapping[str, Sequence[Path]], model: Model
) -> dict[str, Any]:
    """The classifier's own ceiling: each plate scored as if every crop were read alone, like ``/predict``.

    No segmentation, no plate format: the share of plates whose crops the model
    classifies right one by one. The gap to the plate reader's score is what
    segmentation (and the format) lose or win.
    """
    paths = [path for label in LABELS for path in crops[label]]
    inputs = np.stack([load_file(str(path), model.metadata.spec) for path in paths])
    predicted = model.run(inputs).argmax(axis=1)
    right = {
        f"{path.parent.name}/{path.name}": LABELS[int(k)] == path.parent.name
        for path, k in zip(paths, predicted, strict=True)
    }
    plates = [plate for plate in plates if not plate.foreign]  # a rendered letter has no crop to read alone
    uses = [source for plate in plates for row in plate.sources for source in row]
    return {
        "crops_misread": sorted(name for name, ok in right.items() if not ok),
        "character_accuracy": round(sum(right[u] for u in uses) / len(uses), 4),
        "whole_plate_accuracy": round(
            sum(all(right[s] for row in plate.sources for s in row) for plate in plates) / len(plates), 4
        ),
    }


def served_files(repository: str | Path) -> ModelFiles:
    """The shipped model's served file: the newest ``lpr-default``, or its int8 variant of the same
    version once ``lpr-train quantize`` found that it earned it (``quantization.served_by_default``)."""
    shipped = locate(repository, DEFAULT_MODEL)
    meta = json.loads(shipped.metadata.read_text())
    if (meta.get("quantization") or {}).get("served_by_default") == "int8":
        from training.release.quantize import INT8_MODEL

        return locate(repository, INT8_MODEL, shipped.version)
    return shipped


def run_plate_eval(
    data: str | Path,
    repository: str | Path = DEFAULT_REPOSITORY,
    count: int = DEFAULT_COUNT,
    seed: int = DEFAULT_SEED,
    split: str = "test",
    run: str | Path | None = None,
    reports: str | Path = REPORTS,
    foreign: float = 0.0,
) -> dict[str, Any]:
    """``lpr-train plates``: generate, read, score; write the report and, for test crops, the figure.

    The shipped model (the served file, from the model repository) writes
    ``reports/plates_eval.json`` and ``reports/figures/plates_examples.png`` for
    plates of test crops, ``reports/plates_eval_val.json`` for plates of its
    validation crops. With ``run`` (a run folder), that run's exported model is
    read instead and nothing is written: that is how recipes are compared on
    plates made of their validation crops before one is shipped.
    """
    data, repository, reports = Path(data), Path(repository), Path(reports)
    if run is not None:
        model = Model(Path(run) / MODEL_FILE, Path(run) / METADATA_FILE)
        meta = model.metadata.raw
        model_file = (Path(run) / MODEL_FILE).as_posix()
    else:
        # The recipe's validation split is the float model's (the int8 file shares its metadata).
        meta = json.loads(locate(repository, DEFAULT_MODEL).metadata.read_text())
        served = served_files(repository)
        model = Model(served.onnx, served.metadata)
        model_file = served.relative
    crop_source = validation_crops(data, meta) if split == "val" else crops_in(data / split)
    plates = list(generate_plates(crop_source, count=count, seed=seed, foreign=foreign))
    summary, per_plate = evaluate_plates(plates, model)
    summary["crop_by_crop"] = crop_by_crop(plates, crop_source, model)
    command = f"lpr-train plates --data {data.as_posix()}"
    if repository.resolve() != DEFAULT_REPOSITORY.resolve():
        command += f" --models {repository.as_posix()}"
    command += f" --count {count} --seed {seed}"
    if split != "test":
        command += f" --split {split}"
    if foreign:
        command += f" --foreign {foreign:g}"
    report = {
        "model": model.metadata.model_version,
        "model_file": model_file,
        "crops": split,
        "seed": seed,
        "count": count,
        "foreign": foreign,
        "command": command,
        **summary,
        "errors": [
            {k: p[k] for k in ("index", "truth", "read", "confident", "segmented_right", "sources", "params")}
            for p in per_plate
            if not p["correct"]
        ],
    }
    # Runs not shipped are for development: they write nothing. The shipped model's plates of
    # validation crops (where recipes and the segmenter are chosen) go beside the test result.
    if run is None:
        reports.mkdir(parents=True, exist_ok=True)
        name = PLATES_EVAL_FOREIGN if foreign else PLATES_EVAL if split == "test" else PLATES_EVAL_VAL
        out = reports / name
        write_json(out, report)
        if split == "test" and not foreign:
            plates_figure(plates, per_plate, figures_dir(reports) / PLATES_FIGURE)
    return report
