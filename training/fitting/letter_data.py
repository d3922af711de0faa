"""The letter model's crops: real paint cut from the transcribed plates, the sources' बा प च, and
every letter of the grammar rendered and hand-painted.

* **Real paint.** Each transcribed plate, cut at its box, is boxed by the served
  character finder and named by its text (:func:`training.fitting.finder_data.label_real`:
  a plate whose characters do not come out in the text's rows is left out, not
  guessed). Its zone and class boxes, cut as the reader cuts them
  (:func:`lpr.char_finder.padded_box`), are letters painted by hand on real plates.
  Split by bike: the held-out plates (``validation`` in
  :mod:`training.data.plate_texts`) are the letter model's test and are never
  fitted; the fitted plates are divided by text (twins of a bike carry one text)
  into the model's fit and validation, seeded; ``withheld`` photos are in neither.
* **The sources' letters.** The crop classifier's fitted बा and प crops and its
  fitted real च, never a held-out one; its validation crops validate.
* **Rendered.** Every letter of :data:`lpr.plate_grammar.LETTERS` in the Debian
  Devanagari fonts, half of them hand-painted (:func:`training.synthesis.ood.hand_painted`),
  as a painted crop or a binarised one; validation renders in every font, fitting
  renders not in the held-out one (Gargi), so a letter known only from renders is
  validated on a font it never saw.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lpr.char_finder import CharFinder, Found, letterbox, padded_box
from lpr.char_finder import decode as decode_head
from lpr.plate_grammar import LETTER_SLOTS, LETTERS
from lpr.preprocessing import InputSpec, preprocess_into
from training.data.plate_texts import RealPlate
from training.data.sources import model_splits
from training.fitting.finder_data import label_real
from training.synthesis.ood import (
    FONTS,
    HELD_OUT_FONTS,
    _as_binary_crop,
    _as_plate_crop,
    _fit_square,
    _render_glyph,
    hand_painted,
)

#: The letter model's classes, in output order.
LETTER_LABELS: tuple[str, ...] = tuple(LETTERS)
#: The three sets of letters: fitted, validation (thresholds), test (held-out bikes).
PARTS = ("fit", "val", "test")
#: Share of the fitted plates' texts whose letters validate instead.
VAL_SHARE = 0.25
#: Renders per letter in the fit and in the validation set.
RENDERS = {"fit": 400, "val": 40}
#: At most this many of a source letter's crops per set (the sources hold hundreds of बा, प, च).
SOURCE_CAP = {"fit": 300, "val": 100}
#: The source name of rendered letters (every other source is real paint).
RENDERED = "rendered"
#: Share of renders that are hand-painted, and that are drawn as a painted plate crop.
HAND_PAINTED = 0.5
PAINTED_CROP = 0.6


@dataclass(frozen=True)
class LetterCrop:
    """One letter's picture, its ASCII id, where it comes from and its group (the plate or file)."""

    label: str
    image: Image.Image
    source: str
    group: str


def finder_find(finder: CharFinder) -> Callable[[Image.Image], list[Found]]:
    """A plate image to its characters through the shipped finder's ONNX session."""

    def find(image: Image.Image) -> list[Found]:
        boxed = letterbox(image, finder.spec)
        return decode_head(finder.heads(boxed.pixels[None])[0], finder.spec, boxed)

    return find


def letter_part(plate: RealPlate, seed: int) -> str | None:
    """Which letter set a real plate's letters belong to: its split decides, then its text (seeded)."""
    if plate.split == "validation":
        return "test"
    if plate.split != "fit":
        return None
    draw = np.random.default_rng([seed, *plate.text.encode("utf-8")]).random()
    return "val" if draw < VAL_SHARE else "fit"


def real_letters(
    plates: Sequence[RealPlate],
    crop: Callable[[RealPlate], bytes],
    find: Callable[[Image.Image], list[Found]],
    seed: int,
) -> dict[str, list[LetterCrop]]:
    """The zone and class letters of every plate the finder boxes as its text reads, by set."""
    parts: dict[str, list[LetterCrop]] = {part: [] for part in PARTS}
    for plate in plates:
        part = letter_part(plate, seed)
        if part is None:
            continue
        image = Image.open(io.BytesIO(crop(plate))).convert("RGB")
        labelled = label_real(plate, image, find)
        if labelled is None:
            continue
        turned, boxes, _ = labelled
        for symbol, box in zip(plate.symbols, boxes, strict=True):
            if symbol.slot in LETTER_SLOTS and symbol.label is not None:
                letter = turned.crop(padded_box(*box, turned.width, turned.height))
                parts[part].append(LetterCrop(symbol.label, letter, "plate-photos", plate.name))
    return parts


def source_letters(
    record: dict[str, Any], data_home: str | Path | None, seed: int
) -> dict[str, list[LetterCrop]]:
    """बा, प and real च of the classifier's sources: its fitted crops fit, its validation crops validate."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[LetterCrop]] = {"fit": [], "val": []}
    for source in model_splits(record, data_home).sources:
        if source.spec.twin_of:  # the photographed twin paints the same glyphs again
            continue
        for part, split, unknown in (
            ("fit", source.fit, source.unknown_fit),
            ("val", source.val, source.unknown_val),
        ):
            by_letter = {
                "ba": split.by_class().get("ba", []),
                "pa": split.by_class().get("pa", []),
                "cha": unknown,
            }
            for label, paths in by_letter.items():
                chosen = sorted(paths)
                if len(chosen) > SOURCE_CAP[part]:
                    chosen = [
                        chosen[i] for i in sorted(rng.choice(len(chosen), SOURCE_CAP[part], replace=False))
                    ]
                for path in chosen:
                    with Image.open(path) as image:
                        parts[part].append(
                            LetterCrop(label, image.convert("RGB"), source.spec.name, path.name)
                        )
    return parts


def rendered_letters(part: str, seed: int) -> list[LetterCrop]:
    """Every letter of the grammar drawn :data:`RENDERS` times, as a sign painter or a font draws it."""
    held_out = set(HELD_OUT_FONTS["devanagari"])
    fonts = [path for path, _ in FONTS["devanagari"] if part == "val" or path not in held_out]
    fonts = [path for path in fonts if Path(path).exists()]
    rng = np.random.default_rng([seed, PARTS.index(part)])
    crops = []
    for label, glyph_text in LETTERS.items():
        for k in range(RENDERS[part]):
            glyph = _render_glyph(glyph_text, fonts[int(rng.integers(len(fonts)))], rng)
            if rng.random() < HAND_PAINTED:
                glyph = hand_painted(glyph, rng)
            if rng.random() < PAINTED_CROP:
                data = _as_plate_crop(_fit_square(glyph, rng, 100), rng)
            else:
                data = _as_binary_crop(_fit_square(glyph, rng, 50), rng)
            image = Image.open(io.BytesIO(data)).convert("RGB")
            crops.append(LetterCrop(label, image, RENDERED, f"{label}-{part}-{k}"))
    return crops


def letter_sets(
    plates: Sequence[RealPlate],
    crop: Callable[[RealPlate], bytes],
    find: Callable[[Image.Image], list[Found]],
    record: dict[str, Any],
    data_home: str | Path | None,
    seed: int,
) -> dict[str, list[LetterCrop]]:
    """The fit, validation and test letters; the test holds real paint of held-out bikes only."""
    real = real_letters(plates, crop, find, seed)
    sources = source_letters(record, data_home, seed)
    return {
        "fit": real["fit"] + sources["fit"] + rendered_letters("fit", seed),
        "val": real["val"] + sources["val"] + rendered_letters("val", seed),
        "test": real["test"],
    }


def arrays(crops: Sequence[LetterCrop], spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """Crops as the model's inputs (the crop classifier's preprocessing) and class indices."""
    x = preprocess_into([c.image for c in crops], spec, np.empty((len(crops), *spec.shape), np.float32))
    return x, np.array([LETTER_LABELS.index(c.label) for c in crops], dtype=np.int64)
