"""A plate read from the characters the finder found: which peaks are characters, in which rows.

The finder (:mod:`lpr.char_finder`) answers peaks with a score each; a bolt or
a dot scores low, a worn character too. The count is not a fixed threshold:
every set of the strongest peaks (from :data:`MIN_CHARACTERS` to
:data:`MAX_CHARACTERS`, down to :data:`MAYBE`) whose rows fit the plate
grammar is read, and the set kept is the most probable one. Its probability
is the heatmap's (each kept peak a character, each dropped one not) times the
names' (each character's most probable symbol its slot allows).

When the set kept is not exactly the peaks the heatmap is sure of (at least
:data:`SURE`), the grammar or the names had to decide how many characters the
plate holds: the reading may be right, but it is never ``confident``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from lpr.char_finder import Found
from lpr.plate_grammar import LETTER_SLOTS, layouts
from lpr.plate_reader import Box, PlateReading, ReadsCharacters, decode
from lpr.segmentation import Glyph, Segmentation

#: Peaks at least this strong are characters by the heatmap's own verdict.
SURE = 0.5
#: Peaks weaker than this are never characters.
MAYBE = 0.15
#: A zonal plate holds zone, one to three lot digits, class and one to four serial digits.
MIN_CHARACTERS = 4
MAX_CHARACTERS = 10
#: A character starts a new row when its centre is this share of a character's height below the
#: current row's (the taller of the two, or the plate's median): a tilted serial row of big
#: digits must stay one row under a top row of small ones.
ROW_JUMP = 0.5
#: An empty mask: a found character is read from the image, not from a segmenter's ink.
_NO_INK = np.zeros((1, 1), dtype=bool)


def rows_of(found: Sequence[Found]) -> list[list[Found]]:
    """Characters into rows by their centres' height (a jump of :data:`ROW_JUMP` of a character's
    height: the taller of the row's and the next character's, at least the median), left to right."""
    if not found:
        return []
    median_h = float(np.median([f.height for f in found]))
    ordered = sorted(found, key=lambda f: f.centre_y)
    rows = [[ordered[0]]]
    for f in ordered[1:]:
        row = rows[-1]
        reach = ROW_JUMP * max(median_h, f.height, float(np.mean([g.height for g in row])))
        if f.centre_y - float(np.mean([g.centre_y for g in row])) > reach:
            rows.append([])
        rows[-1].append(f)
    return [sorted(row, key=lambda f: f.x) for row in rows]


def candidates(found: Sequence[Found]) -> list[Found]:
    """The peaks that may be characters: at least :data:`MAYBE`, the strongest :data:`MAX_CHARACTERS`."""
    return [f for f in found if f.score >= MAYBE][:MAX_CHARACTERS]


def _box(found: Found, width: int, height: int) -> Box:
    x0, y0 = max(0, math.floor(found.x)), max(0, math.floor(found.y))
    x1, y1 = min(width, math.ceil(found.x + found.width)), min(height, math.ceil(found.y + found.height))
    return Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def _fit(rows: list[list[int]], probabilities: np.ndarray, digits: list[int]) -> float | None:
    """Log probability of the best grammar layout's names for these rows; None if no layout fits.

    ``digits``: the columns of ``probabilities`` that are digits.
    """
    fitting = layouts([len(row) for row in rows])
    if not fitting:
        return None
    order = [i for row in rows for i in row]
    best = -math.inf
    for layout in fitting:
        total = 0.0
        for i, slot in zip(order, layout, strict=True):
            p = probabilities[i]
            # A letter slot: any letter (the model names some, the rest are "not a digit").
            mass = 1.0 - float(p[digits].sum()) if slot in LETTER_SLOTS else float(p[digits].max())
            total += math.log(max(mass, 1e-9))
        best = max(best, total)
    return best


def _rows(found: Sequence[Found], kept: list[int]) -> list[list[int]]:
    """The kept characters (indices into ``found``) in rows, as indices."""
    index_of = {id(found[i]): i for i in kept}
    return [[index_of[id(f)] for f in row] for row in rows_of([found[i] for i in kept])]


def _agrees(
    reading: PlateReading, order: list[int], found: Sequence[Found], bar: float, labels: tuple[str, ...]
) -> bool:
    """Whether the finder's own head names every character as shown, each at least at ``bar``."""
    for character, i in zip(reading.characters, order, strict=True):
        p = found[i].probabilities
        k = int(np.argmax(p))
        if labels[k] != character.label or float(p[k]) < bar:
            return False
    return True


def read_found(
    width: int,
    height: int,
    found: Sequence[Found],
    probabilities: np.ndarray,
    meta: ReadsCharacters,
    second_opinion: ReadsCharacters | None = None,
) -> PlateReading:
    """The most probable plate among the sets of strongest peaks that fit the grammar.

    ``found`` is strongest first; ``probabilities`` names each (uncalibrated, over ``meta.labels``).
    With ``second_opinion`` (the finder's metadata, when another model named the characters), the
    plate is ``confident`` only if the finder's own head also names every character as shown, each
    at least at its own plate bar: two models trained on different data must agree to store a plate.
    """
    kept_order = list(range(len(candidates(found))))  # strongest first: the candidates lead
    sure = sum(found[i].score >= SURE for i in kept_order)
    digits = [k for k, label in enumerate(meta.labels) if label.isdigit()]
    best: tuple[float, int, list[list[int]]] | None = None
    for count in range(MIN_CHARACTERS, len(kept_order) + 1):
        kept = kept_order[:count]
        rows = _rows(found, kept)
        names = _fit(rows, probabilities, digits)
        if names is None:
            continue
        heat = sum(math.log(max(found[i].score, 1e-6)) for i in kept) + sum(
            math.log(max(1.0 - found[i].score, 1e-6)) for i in kept_order[count:]
        )
        if best is None or heat + names > best[0]:
            best = (heat + names, count, rows)
    if best is None:  # nothing fits a plate: the heatmap's own characters, read as they are
        rows = _rows(found, kept_order[: max(sure, 1)])
        certain = False
    else:
        _, count, rows = best
        certain = count == sure
    segmentation = Segmentation(
        width,
        height,
        [[Glyph(tuple(_box(found[i], width, height)), _NO_INK) for i in row] for row in rows],
        reason=None if rows else "no characters found on the plate",
    )
    order = [i for row in rows for i in row]
    labels = len(meta.labels)
    chosen = probabilities[order] if order else np.zeros((0, labels), dtype=np.float32)
    reading = decode(segmentation, chosen, meta)
    agreed = (
        second_opinion is None
        or not reading.characters
        or _agrees(reading, order, found, second_opinion.plate_bar, second_opinion.labels)
    )
    evidence = sum(found[i].score for i in order)
    return replace(reading, count_certain=certain, second_opinion=agreed, evidence=evidence)
