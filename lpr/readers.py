"""How a plate image becomes its characters: one interface, the designs behind it.

:mod:`lpr.photo_reader` hands a reader the plate turned every way it may be
up and keeps the reading scored best; the reader reads them all at once
(one finder call for every turn, one naming call for every character found).

- :class:`FinderReader` is the served design: the character finder
  (:mod:`lpr.char_finder`) finds the characters, :mod:`lpr.found_reader`
  chooses how many and in which rows, and they are named by the finder's own
  class head, or (``classify``) by the crop classifier reading each box; the
  letter model (:mod:`lpr.letter_namer`), where one is shipped, then names the
  zone and class letters the classifier does not read.
- :class:`SegmentingReader` cuts the plate by connected components
  (:mod:`lpr.segmentation`) and names each glyph with the classifier: the
  design the finder replaced, kept to measure against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
from PIL import Image

from lpr.char_finder import Found, letterbox, padded_box
from lpr.char_finder import decode as decode_head
from lpr.errors import unreadable
from lpr.found_reader import candidates, read_found
from lpr.letter_namer import LetterNamer
from lpr.model import ModelMetadata
from lpr.plate_reader import Classify, PlateReading, ReadsCharacters, read_plate
from lpr.preprocessing import preprocess_into


class PlateReader(Protocol):
    """Reads plates: every image given, in one pass, one reading each."""

    def read(self, images: Sequence[Image.Image]) -> list[PlateReading]: ...


@dataclass(frozen=True)
class SegmentingReader:
    """Connected components, then the classifier on each glyph."""

    classify: Classify
    meta: ModelMetadata

    def read(self, images: Sequence[Image.Image]) -> list[PlateReading]:
        readings = [read_plate(image, self.classify, self.meta) for image in images]
        return [replace(reading, evidence=float(reading.count)) for reading in readings]


@dataclass(frozen=True)
class ClassifierNames:
    """The classifier's labels, calibration and letter bar with the plate reader's own plate bar."""

    classifier: ModelMetadata
    plate_bar: float

    @property
    def labels(self) -> tuple[str, ...]:
        return self.classifier.labels

    @property
    def devanagari(self) -> tuple[str, ...]:
        return self.classifier.devanagari

    @property
    def temperature(self) -> float:
        return self.classifier.temperature

    @property
    def threshold(self) -> float:
        return self.classifier.threshold

    @property
    def letter_bar(self) -> float:
        return self.classifier.letter_bar


class FindsCharacters(Protocol):
    """The character finder as the reader needs it (:class:`lpr.char_finder.CharFinder`)."""

    @property
    def metadata(self): ...  # FinderMetadata

    def heads(self, batch: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class FinderReader:
    """The finder's characters, named by its own head or, with ``classify``, by the classifier.

    ``heads`` runs the finder's network (the service's runner; by default the finder's own session);
    ``letters`` names the letter slots once the plate is read.
    """

    finder: FindsCharacters
    heads: Callable[[np.ndarray], np.ndarray] | None = None
    classify: Classify | None = None
    classifier: ModelMetadata | None = None
    letters: LetterNamer | None = None

    @property
    def by_classifier(self) -> bool:
        """Whether the classifier names the characters (else the finder's own head does)."""
        return self.classify is not None and self.classifier is not None

    @property
    def names(self) -> ReadsCharacters:
        """What the characters' probabilities mean and the bars they must clear.

        Named by the classifier, its labels, temperature and bars apply, but the plate bar is
        the finder's: it is fitted on plates read this way, not on the classifier's own plates.
        """
        if not self.by_classifier:
            return self.finder.metadata
        return ClassifierNames(self.classifier, self.finder.metadata.classifier_plate_threshold)

    def read(self, images: Sequence[Image.Image]) -> list[PlateReading]:
        spec = self.finder.metadata.spec
        with unreadable():
            boxed = [letterbox(image, spec) for image in images]
        out = (self.heads or self.finder.heads)(np.stack([b.pixels for b in boxed]))
        # Only peaks that may be characters are named (:func:`lpr.found_reader.candidates`).
        found = [candidates(decode_head(head, spec, b)) for head, b in zip(out, boxed, strict=True)]
        probabilities = self._named(images, found)
        second = self.finder.metadata if self.by_classifier else None
        readings = [
            read_found(image.width, image.height, f, p, self.names, second)
            for image, f, p in zip(images, found, probabilities, strict=True)
        ]
        return self.letters.name(images, readings) if self.letters else readings

    def _named(self, images: Sequence[Image.Image], found: list[list[Found]]) -> list[np.ndarray]:
        """Each image's characters' probabilities: the finder's own, or the classifier's in one call."""
        if not self.by_classifier:
            width = len(self.finder.metadata.spec.labels)
            return [np.array([f.probabilities for f in fs]).reshape(len(fs), width) for fs in found]
        with unreadable():
            crops = [
                image.crop(padded_box(f.x, f.y, f.width, f.height, image.width, image.height))
                for image, fs in zip(images, found, strict=True)
                for f in fs
            ]
            spec = self.classifier.spec
            batch = preprocess_into(crops, spec, np.empty((len(crops), *spec.shape), np.float32))
        named = self.classify(batch) if crops else np.zeros((0, len(self.classifier.labels)), np.float32)
        parts, start = [], 0
        for fs in found:
            parts.append(named[start : start + len(fs)])
            start += len(fs)
        return parts


def served_reader(
    finder: FindsCharacters,
    classify: Classify,
    classifier: ModelMetadata,
    heads: Callable[[np.ndarray], np.ndarray] | None = None,
    letters: LetterNamer | None = None,
) -> FinderReader:
    """The reader a shipped finder version is served as: its metadata says who names the characters;
    the letter model, where one is shipped, names the letters."""
    if finder.metadata.naming == "classifier":
        return FinderReader(finder, heads, classify, classifier, letters)
    return FinderReader(finder, heads, letters=letters)
