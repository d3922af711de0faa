"""The zone and class letters of a plate read, named by the letter model beside the character model.

The crop classifier knows twelve symbols, two of them letters; a plate's
letter slots hold any of the grammar's (:data:`lpr.plate_grammar.LETTERS`).
Once the reader has decided which characters are the zone and the class, the
letter model reads those boxes, cut as the classifier cut them, in one call
for every plate read. Its probabilities are calibrated (its own temperature)
and each letter has its own bar, fitted on validation letters so that no crop
of another letter clears it: a letter is named only at its bar, and only one
the slot allows (a zone in the zone slot, a class letter in the class slot).

What the two models say together:

* the classifier answered ``?`` because a letter it does not read is there, and
  the letter model names one at its bar, outside the classifier's twelve: that
  letter (बा or प the classifier reads itself; named only by the letter model,
  it stays ``?``);
* the classifier named बा or प and the letter model names the same, or none at
  its bar: the classifier's answer stands;
* they name different letters, each at its bar: in the zone slot the letter
  model's zone, in the class slot the classifier's letter, as the reading's best
  guess; two models that disagree are not a reading to store either way. The
  classifier knows one zone, बा, and its letter bar was fitted on crops of its
  own two letters only, so a को or स painted like बा clears it; the letter
  model's bars were fitted against every other letter's crops. Every class
  slot of a motorbike holds प, which the classifier has fitted thousands of
  times, and there the letter model was the one wrong (a real प named च).

A plate with a letter named by the letter model, or with such a disagreement, is
read but not ``confident`` (:attr:`lpr.plate_reader.PlateReading.letters_settled`):
the plate bar was fitted on plates whose letters the classifier named, and a को
plate, never confident before, would otherwise be stored on a bar no such plate
was measured against (a held-out Koshi photo with one digit misread came back
confident).

The crop contract does not change: ``POST /predict`` answers the twelve and
nothing else; only the plate reader names the other letters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from lpr.char_finder import padded_box
from lpr.confidence import apply_temperature
from lpr.errors import unreadable
from lpr.labels import DEVANAGARI, LABELS
from lpr.model import ModelMetadata
from lpr.plate_grammar import CLASS_LETTERS, LETTERS, ZONES
from lpr.plate_reader import (
    DECIMALS,
    TOP_K,
    UNREADABLE,
    Candidate,
    Character,
    Classify,
    PlateReading,
    Reading,
    Row,
)
from lpr.preprocessing import preprocess_into

#: The letter model's name in the repository.
LETTER_MODEL = "plate-letters"
#: No letter's bar is lower: below it another letter may be as probable.
LETTER_FLOOR = 0.5
#: The letters each slot may hold.
SLOT_LETTERS: dict[str, frozenset[str]] = {"zone": frozenset(ZONES), "class": frozenset(CLASS_LETTERS)}


def glyph(label: str) -> str:
    """A label as painted: a letter of the grammar, one of the twelve, or ``?``."""
    return LETTERS.get(label) or DEVANAGARI.get(label, label)


@dataclass(frozen=True)
class LetterNamer:
    """The letter model as the reader needs it: its metadata (labels, temperature, bars) and its run."""

    meta: ModelMetadata
    classify: Classify
    #: The crop classifier's labels: letters among them are named by the classifier, not here.
    classifier_labels: frozenset[str] = frozenset(LABELS)

    def name(self, images: Sequence[Image.Image], readings: Sequence[PlateReading]) -> list[PlateReading]:
        """Each reading with its letter slots named where the letter model is sure (one call for all)."""
        jobs = [
            (i, j)
            for i, reading in enumerate(readings)
            for j, character in enumerate(reading.characters)
            if character.slot in SLOT_LETTERS
        ]
        if not jobs:
            return list(readings)
        spec = self.meta.spec
        with unreadable():
            crops = []
            for i, j in jobs:
                box, image = readings[i].characters[j].box, images[i]
                crops.append(image.crop(padded_box(*box, image.width, image.height)))
            batch = preprocess_into(crops, spec, np.empty((len(crops), *spec.shape), np.float32))
        calibrated = apply_temperature(self.classify(batch), self.meta.temperature)
        named: dict[int, dict[int, Character]] = {}
        unsettled: set[int] = set()
        for (i, j), q in zip(jobs, calibrated, strict=True):
            character = readings[i].characters[j]
            renamed, settled = self._character(character, q)
            if renamed is not character:
                named.setdefault(i, {})[j] = renamed
            if not settled:
                unsettled.add(i)
        return [
            _renamed(reading, named.get(i, {}), i not in unsettled)
            if i in named or i in unsettled
            else reading
            for i, reading in enumerate(readings)
        ]

    def _character(self, character: Character, q: np.ndarray) -> tuple[Character, bool]:
        """The character as the two models name it, and whether they leave it settled."""
        labels, bars = self.meta.labels, self.meta.letter_thresholds
        allowed = [k for k, label in enumerate(labels) if label in SLOT_LETTERS[str(character.slot)]]
        best = max(allowed, key=lambda k: q[k])
        label, probability = labels[best], float(q[best])
        sure = probability >= bars.get(label, 1.01)  # a letter without a bar is never named
        if character.label == UNREADABLE:
            if not (sure and character.reason == "unsupported_symbol") or label in self.classifier_labels:
                return character, True
            return _named(character, labels, q, best), False
        if not sure or label == character.label:
            return character, True
        if character.slot == "zone":
            return _named(character, labels, q, best), False
        return character, False


def _named(character: Character, labels: Sequence[str], q: np.ndarray, best: int) -> Character:
    """The character named as the letter model names it, with the letter model's candidates."""
    order = np.argsort(-q, kind="stable")[:TOP_K]
    candidates = tuple(Candidate(labels[k], glyph(labels[k]), round(float(q[k]), DECIMALS)) for k in order)
    return replace(
        character,
        label=labels[best],
        devanagari=glyph(labels[best]),
        confidence=round(float(q[best]), DECIMALS),
        reason=None,
        candidates=candidates,
    )


def _renamed(reading: PlateReading, named: Mapping[int, Character], settled: bool) -> PlateReading:
    """The reading with some characters named, its candidate readings' letters alike, and whether its
    letters are settled."""
    flat = [named.get(j, c) for j, c in enumerate(reading.characters)]
    rows, start = [], 0
    for row in reading.rows:
        rows.append(Row(tuple(flat[start : start + len(row.characters)])))
        start += len(row.characters)
    lengths = [len(row.characters) for row in reading.rows]
    read = {j: reading.characters[j].label for j in named}
    readings = tuple(_with_letters(r, named, read, lengths) for r in reading.readings)
    return replace(
        reading, rows=tuple(rows), readings=readings, letters_settled=reading.letters_settled and settled
    )


def _with_letters(
    reading: Reading, named: Mapping[int, Character], read: Mapping[int, str], lengths: Sequence[int]
) -> Reading:
    """A candidate reading whose letter places hold what the letter model named instead of ``?`` or
    of the letter the classifier ``read`` there."""
    labels = list(reading.labels)
    for j, character in named.items():
        if j < len(labels) and labels[j] in (UNREADABLE, read[j]):
            labels[j] = character.label
    text, start = [], 0
    for length in lengths:
        text.append("".join(glyph(label) for label in labels[start : start + length]))
        start += length
    return replace(reading, labels=tuple(labels), text=" ".join(text))
