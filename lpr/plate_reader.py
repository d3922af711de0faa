"""The one plate reader: a plate image to its characters, rows, candidate readings and text.

Segmentation (:mod:`lpr.segmentation`), every character in ONE batched
inference, calibrated probabilities (:mod:`lpr.confidence`), then the plate
grammar (:mod:`lpr.plate_grammar`): each character gets the slot it holds
(zone, lot, class, serial) in the most probable layout, and is read among the
symbols that slot allows. A letter slot whose letter the model cannot read
confidently (a zone other than बा, a class other than प, or a doubtful mark)
is answered ``?`` with ``unknown`` and a reason, never as a forced बा or
प; a digit slot the model doubts is ``?`` too. The grammar re-ranks only among
what the slot allows and never raises a probability: ``confidence`` is the
model's own calibrated probability of the label shown.

The result is typed (:class:`PlateReading` and its parts), never the wire
format: ``POST /read-plate`` turns it into JSON (:mod:`service.plate_schemas`)
and ``lpr-train plates`` scores :attr:`PlateReading.labels`, so the evaluation
measures exactly what the service says. Probabilities are rounded to six
decimals here, once, and the plate's confidence rule is applied to the rounded
values: a client re-checking it from the answer gets the same verdict.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple, Protocol

import numpy as np
from PIL import Image

from lpr.confidence import apply_temperature
from lpr.errors import unreadable
from lpr.plate_grammar import LETTER_SLOTS, READABLE, Slot, layouts
from lpr.segmentation import Glyph, Segmentation, batch_inputs, segment


class ReadsCharacters(Protocol):
    """What names a plate's characters, as the decoder needs it: the classifier's metadata, or the
    character finder's (its class head names the twelve and ``?``)."""

    @property
    def labels(self) -> tuple[str, ...]: ...
    @property
    def devanagari(self) -> tuple[str, ...]: ...
    @property
    def temperature(self) -> float: ...
    @property
    def threshold(self) -> float: ...
    @property
    def letter_bar(self) -> float: ...
    @property
    def plate_bar(self) -> float: ...


#: Runs a preprocessed batch through the model: uncalibrated probabilities, one row per image.
Classify = Callable[[np.ndarray], np.ndarray]

#: What a character the reader will not name is shown as.
UNREADABLE = "?"
#: A box wider than this × its height, or taller than MAX_GLYPH_HEIGHT × its row's median, holds
#: more than one symbol (touching glyphs): doubtful. A real प with its head bar, or a round ०, is
#: boxed a little over 1.6 × as wide as tall, so a lower bar doubts a character read right
#: (chosen on the fitted bikes' plates: 1.6 read 77 of their photos exactly, 2.0 reads 80, with
#: no plate confident and wrong).
MAX_GLYPH_ASPECT = 2.0
MAX_GLYPH_HEIGHT = 1.5
#: Candidates per character, and readings per plate, in an answer.
TOP_K = 3
TOP_READINGS = 5
#: Decimals kept of every probability the reader reports.
DECIMALS = 6


class Box(NamedTuple):
    """An axis-aligned box in pixels: left and top edges, width and height.

    A named tuple, so that ``x, y, w, h = box`` and ``Detection(*box, score)`` read as they did.
    """

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """One of the model's top symbols for a character, whatever its slot allows."""

    label: str
    devanagari: str
    probability: float  # calibrated


@dataclass(frozen=True, slots=True)
class Character:
    """One character read: where it is, what slot the grammar gives it, and what it is read as."""

    box: Box
    slot: Slot | None  # None when the characters fit no plate layout
    label: str  # ASCII class id, or UNREADABLE
    devanagari: str  # as printed, or UNREADABLE
    #: The calibrated probability of the most probable symbol the slot allows (the label shown, or
    #: for UNREADABLE the one it would have been); never raised by the grammar.
    confidence: float
    reason: str | None  # why it is UNREADABLE: "unsupported_symbol" or "low_confidence"
    candidates: tuple[Candidate, ...]

    @property
    def unknown(self) -> bool:
        return self.reason is not None


@dataclass(frozen=True, slots=True)
class Row:
    """One row of the plate, left to right."""

    characters: tuple[Character, ...]

    @property
    def text(self) -> str:
        return "".join(c.devanagari for c in self.characters)

    @property
    def labels(self) -> list[str]:
        return [c.label for c in self.characters]


@dataclass(frozen=True, slots=True)
class Reading:
    """One candidate reading of the whole plate."""

    text: str  # Devanagari, rows joined by one space
    labels: tuple[str, ...]  # ASCII ids in reading order, rows concatenated
    score: float  # the product of its characters' calibrated probabilities
    matches_format: bool  # a zone + lot + class + serial plate


@dataclass(frozen=True, slots=True, eq=False)
class PlateReading:
    """What was read on one plate: the segmentation, the model's raw output and the decoded plate."""

    segmentation: Segmentation
    #: The model's uncalibrated probabilities, one row per character in reading order.
    probabilities: np.ndarray
    rows: tuple[Row, ...]
    #: The plate's most probable readings, best first.
    readings: tuple[Reading, ...]
    matches_format: bool
    #: The calibrated probability every character must reach for the plate to be confident
    #: (``ModelMetadata.plate_bar``).
    bar: float = 0.0
    #: Whether the characters' count is the finder's own verdict; False when the grammar or the
    #: names had to decide how many there are (:mod:`lpr.found_reader`): never confident then.
    count_certain: bool = True
    #: Whether a second model, where one was asked, names every character alike and surely
    #: (:func:`lpr.found_reader.read_found`); never confident when it does not.
    second_opinion: bool = True
    #: How much the reader saw characters here at all: the finder's peak scores of the characters
    #: kept, summed (it finds none on a plate upside down); the characters' count for a segmenter.
    evidence: float = 0.0
    #: False once the letter model (:mod:`lpr.letter_namer`) named a letter the classifier does not
    #: read (the plate bar was fitted on plates whose letters the classifier named), or surely named
    #: another letter than the classifier's: such a plate is read, but never confident.
    letters_settled: bool = True

    @property
    def characters(self) -> list[Character]:
        """Every character in reading order, rows concatenated."""
        return [c for row in self.rows for c in row.characters]

    @property
    def labels(self) -> list[list[str]]:
        """Per row, the labels read (``?`` included): what a plate's truth is compared with."""
        return [row.labels for row in self.rows]

    @property
    def text(self) -> str:
        """The rows' texts joined by one space, ``?`` for each unknown character."""
        return " ".join(row.text for row in self.rows)

    @property
    def count(self) -> int:
        return self.segmentation.count

    @property
    def reason(self) -> str | None:
        """Why no character was read; None when some were."""
        return self.segmentation.reason

    @property
    def confident(self) -> bool:
        """The plate may be stored as read: characters found, the grammar fits, none doubtful, the
        count the finder's own, a second opinion, where one was asked, agreeing, and the letters
        settled (:attr:`letters_settled`).

        One doubtful character makes the whole plate doubtful: a plate is only as
        right as its worst character, so the rule is "any", not the average. A
        plate asks more of each character than a lone crop does (``bar``): a crop's
        answer comes with its confidence for the caller to weigh, a confident
        plate is stored as read.
        """
        return (
            self.count_certain
            and self.second_opinion
            and self.letters_settled
            and self.all_known
            and all(c.confidence >= self.bar for c in self.characters)
        )

    @property
    def all_known(self) -> bool:
        """Characters found, the grammar fits, not one is ``?``: a reading, if not yet one to store.

        What tells a plate read the right way up from one read upside down
        (:mod:`lpr.photo_reader`), where the plate bar would only blur the difference.
        """
        characters = self.characters
        return bool(characters) and self.matches_format and not any(c.unknown for c in characters)

    def moved(self, to_image: Callable[[Box], Box]) -> PlateReading:
        """The same reading with every character's box mapped (from the image read to another)."""
        rows = tuple(Row(tuple(replace(c, box=to_image(c.box)) for c in row.characters)) for row in self.rows)
        return replace(self, rows=rows)


def _slot_masses(calibrated: np.ndarray, digit_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per character: the probability it is a digit, and that it is not (a letter, known or not)."""
    digit = calibrated[:, digit_index].sum(axis=1)
    return digit, np.clip(1.0 - digit, 0.0, 1.0)


def _best_layout(row_lengths: list[int], digit: np.ndarray, letter: np.ndarray) -> tuple[Slot, ...] | None:
    """The layout whose digit and letter slots the model's probabilities agree with most."""
    best, best_score = None, -math.inf
    for layout in layouts(row_lengths):
        score = sum(
            math.log(max(float(letter[i] if slot in LETTER_SLOTS else digit[i]), 1e-12))
            for i, slot in enumerate(layout)
        )
        if score > best_score:
            best, best_score = layout, score
    return best


def _options(p: np.ndarray, slot: Slot | None, meta: ReadsCharacters) -> list[tuple[str, float]]:
    """What this character may be read as in its slot, with the probability of each, best first.

    A letter slot offers the letters of the grammar the model reads there and
    ``?`` (anything but them: one minus their probability); a digit slot offers
    the digits; no slot (no layout fits) offers everything.
    """
    labels = meta.labels
    if slot is None:
        allowed = range(len(labels))
    elif slot in LETTER_SLOTS:
        allowed = [k for k, label in enumerate(labels) if label in READABLE[slot]]
    else:
        allowed = [k for k, label in enumerate(labels) if label.isdigit()]
    options = [(labels[k], float(p[k])) for k in allowed]
    if slot in LETTER_SLOTS:
        options.append((UNREADABLE, max(0.0, 1.0 - sum(prob for _, prob in options))))
    return sorted(options, key=lambda option: -option[1])


def _misshapen(box: tuple[int, int, int, int], row: list[Glyph]) -> bool:
    """Whether a glyph's box cannot hold one symbol: far wider than tall, or far taller than its row.

    Glyphs that touch come out of the segmenter as one mark (two digits side by side, a small
    ० of the top row joined to the digit under it); the model still names the blend, often
    confidently, so the shape decides that it must not be stored as read.
    """
    _, _, w, h = box
    row_height = float(np.median([glyph.box[3] for glyph in row]))
    return w > MAX_GLYPH_ASPECT * h or h > MAX_GLYPH_HEIGHT * row_height


def _character(
    p: np.ndarray, slot: Slot | None, meta: ReadsCharacters, box: tuple[int, int, int, int], misshapen: bool
) -> Character:
    labels, devanagari = meta.labels, meta.devanagari
    order = np.argsort(-p, kind="stable")
    candidates = tuple(
        Candidate(labels[k], devanagari[k], round(float(p[k]), DECIMALS)) for k in order[:TOP_K]
    )
    options = [(label, prob) for label, prob in _options(p, slot, meta) if label != UNREADABLE]
    label, confidence = options[0] if options else (UNREADABLE, 0.0)
    reason = None
    if slot in LETTER_SLOTS and confidence < meta.letter_bar:
        reason = "unsupported_symbol"  # a letter belongs here, but not one the model reads
    elif confidence < meta.threshold or float(p[order[0]]) < meta.threshold:
        reason = "low_confidence"
    elif misshapen:
        reason = "low_confidence"  # glyphs that touch, read as one (see _misshapen)
    return Character(
        box=Box(*box),
        slot=slot,
        label=UNREADABLE if reason else label,
        devanagari=UNREADABLE if reason else devanagari[labels.index(label)],
        confidence=round(confidence, DECIMALS),
        reason=reason,
        candidates=candidates,
    )


def _readings(
    calibrated: np.ndarray, row_lengths: list[int], meta: ReadsCharacters, devanagari: dict[str, str]
) -> tuple[Reading, ...]:
    """The most probable readings over every layout the grammar allows, and the model's own.

    A reading's ``score`` is the product of its characters' probabilities (a
    ``?`` counts with the probability that the letter is none the model reads).
    """
    found: dict[tuple[str, ...], tuple[float, bool]] = {}  # labels -> score, matches the format

    def add(choices: list[list[tuple[str, float]]], matches: bool) -> None:
        # Best-first over the product, keeping the TOP_READINGS best: a small beam is exact here.
        beam: list[tuple[float, tuple[str, ...]]] = [(0.0, ())]
        for options in choices:
            expanded = [
                (score - math.log(max(prob, 1e-12)), (*labels, label))
                for score, labels in beam
                for label, prob in options[:TOP_K]
            ]
            beam = heapq.nsmallest(TOP_READINGS, expanded)
        for cost, labels in beam:
            score = math.exp(-cost)
            if labels not in found or found[labels][0] < score:
                found[labels] = (score, matches)

    def text(labels: tuple[str, ...]) -> str:
        rows, start = [], 0
        for length in row_lengths:
            rows.append("".join(devanagari.get(label, label) for label in labels[start : start + length]))
            start += length
        return " ".join(rows)

    for layout in layouts(row_lengths):
        add([_options(p, slot, meta) for p, slot in zip(calibrated, layout, strict=True)], True)
    if not found:
        add([_options(p, None, meta) for p in calibrated], False)
    best = sorted(found.items(), key=lambda item: -item[1][0])[:TOP_READINGS]
    return tuple(
        Reading(text(labels), labels, round(score, DECIMALS), matches) for labels, (score, matches) in best
    )


def decode(
    segmentation: Segmentation, probabilities: np.ndarray, meta: ReadsCharacters, *, use_grammar: bool = True
) -> PlateReading:
    """The plate read from the model's probabilities for its characters.

    ``use_grammar=False`` reads each character on its own (no slot, no
    readings): the segmenter and classifier alone, as ``lpr-train plates``
    also reports them.
    """
    if not segmentation.count:
        return PlateReading(segmentation, probabilities, (), (), False, meta.plate_bar)
    calibrated = apply_temperature(probabilities, meta.temperature)
    row_lengths = [len(row) for row in segmentation.rows]
    digit_index = np.array([k for k, label in enumerate(meta.labels) if label.isdigit()])
    layout = _best_layout(row_lengths, *_slot_masses(calibrated, digit_index)) if use_grammar else None
    slots: list[Slot | None] = list(layout) if layout else [None] * len(calibrated)
    glyphs = segmentation.glyphs
    misshapen = [_misshapen(glyph.box, row) for row in segmentation.rows for glyph in row]
    flat = [
        _character(p, slot, meta, glyph.box, odd)
        for p, slot, glyph, odd in zip(calibrated, slots, glyphs, misshapen, strict=True)
    ]
    rows, start = [], 0
    for length in row_lengths:
        rows.append(Row(tuple(flat[start : start + length])))
        start += length
    devanagari = dict(zip(meta.labels, meta.devanagari, strict=True))
    readings = _readings(calibrated, row_lengths, meta, devanagari) if use_grammar else ()
    return PlateReading(
        segmentation, probabilities, tuple(rows), readings, layout is not None, meta.plate_bar
    )


def read_plate(image: Image.Image, classify: Classify, meta: ReadsCharacters) -> PlateReading:
    """Segment a decoded plate image, classify every character in one call, decode the grammar.

    Segmenting works on the image's pixels: its failure is the image's
    (:class:`~lpr.errors.UnreadableImage`); ``classify`` runs outside that, so a
    model failure passes through as it is.
    """
    with unreadable():
        segmentation = segment(image)
        batch = batch_inputs(segmentation, meta.spec) if segmentation.count else None
    if batch is not None:
        probabilities = classify(batch)
    else:
        probabilities = np.zeros((0, len(meta.labels)), dtype=np.float32)
    return decode(segmentation, probabilities, meta)
