"""The character finder's bars, fitted on painted validation plates it never trained on.

A parking system stores what we call ``confident``, so the bars are chosen
where wrong answers are counted, on whole plates read exactly as the service
reads them (:class:`lpr.readers.FinderReader` through :func:`lpr.photo_reader.read_photo`'s
turns):

- ``threshold``: a character named below it is ``?`` (low confidence); the
  lowest bar that leaves at most :data:`CHARACTER_SLIP` of characters wrong
  and named;
- ``letter_threshold``: the same for the zone and class letters (बा, प), whose
  slot holds many letters the head names only as ``?``;
- ``plate_threshold``: every character of a ``confident`` plate clears it;
  the lowest bar with no wrong plate confident among the painted ones.
- ``classifier_plate_threshold``: the same when the crop classifier names the
  characters, fitted on the painted plates *and* the fitted real plates: the
  classifier never saw a plate photo, and hand-painted digits (a flat-topped
  ८) fool it with a confidence no painted plate shows. The finder's own
  head trained on those plates, so its bar cannot be fitted on them.

The real validation plates are never used here: they measure the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lpr.char_finder import CharFinder
from lpr.detection import Detector
from lpr.model import Model
from lpr.photo_reader import PhotoReading, read_tight
from lpr.plate_grammar import LETTER_SLOTS
from lpr.plate_reader import PlateReading
from lpr.readers import FinderReader
from training.common.outputs import read_json, write_json
from training.data.plate_texts import RealPlate
from training.evaluation.photo_eval import reader
from training.evaluation.real_plates import crop_bytes, score
from training.fitting.finder_data import fitted_crops, painted_set

#: Share of characters that may be named wrong above the character bar: a doubtful character is
#: `?`, but a plate is stored only past the plate bar, so this bar need not be as strict as that one.
CHARACTER_SLIP = 0.02
#: Painted validation plates read to fit the bars (the run's own validation seed).
PLATES = 500


def lowest_bar(scores: Sequence[float], wrong: Sequence[bool], allowed: int) -> float:
    """The lowest bar leaving at most ``allowed`` of the ``wrong`` at or above it."""
    bad = sorted((s for s, w in zip(scores, wrong, strict=True) if w), reverse=True)
    if len(bad) <= allowed:
        return 0.0
    return float(np.nextafter(bad[allowed], 1.0))


def _read(reader: FinderReader, image) -> PlateReading:
    return read_tight(image, reader)[1]


def _real(
    read: Callable[[bytes], PhotoReading], plates: Sequence[RealPlate]
) -> list[tuple[float, bool, bool]]:
    """(lowest confidence, wrong, count certain) of each real plate read the service's way."""
    out = []
    for plate in plates:
        photo = read(crop_bytes(plate.photo))
        if not photo.plates:
            continue
        reading = photo.plates[0].reading
        exact, _, _ = score(plate.symbols, [c.label for c in reading.characters])
        lowest = min((c.confidence for c in reading.characters), default=0.0)
        out.append((lowest if reading.all_known else -1.0, not exact, reading.count_certain))
    return out


def _fit(reader: FinderReader, plates: list) -> dict[str, float]:
    """The bars for plates read by ``reader`` (its names' bars still zero)."""
    chars: list[tuple[float, bool, bool]] = []  # confidence, wrong, a letter slot
    read_plates: list[tuple[float, bool, bool]] = []  # lowest confidence, wrong, count certain
    for plate in plates:
        reading = _read(reader, plate.image)
        truth = [label for row in plate.labels for label in row]
        characters = reading.characters
        read = [c.label for c in characters]
        if len(read) == len(truth):
            chars += [
                (c.confidence, c.label != t, c.slot in LETTER_SLOTS)
                for c, t in zip(characters, truth, strict=True)
            ]
        lowest = min((c.confidence for c in characters), default=0.0)
        read_plates.append((lowest if reading.all_known else -1.0, read != truth, reading.count_certain))
    digits = [(s, w) for s, w, letter in chars if not letter]
    letters = [(s, w) for s, w, letter in chars if letter]
    certain = [(s, w) for s, w, sure in read_plates if sure]
    return {
        "threshold": lowest_bar(*zip(*digits, strict=True), int(CHARACTER_SLIP * len(digits))),
        "letter_threshold": lowest_bar(*zip(*letters, strict=True), int(CHARACTER_SLIP * len(letters))),
        "plate_threshold": lowest_bar(*zip(*certain, strict=True), 0),
    }


def calibrate_finder(
    run: str | Path,
    classifier: Model,
    detector: Detector,
    classifier_record: dict[str, Any],
    fit_plates: Sequence[RealPlate],
    data_home: str | Path | None = None,
) -> dict:
    """Fit the bars on the run's painted validation plates, for both namings; into ``<run>/record.json``.

    Named by the finder, all three bars are its own; named by the classifier, its threshold and
    letter bar are the classifier's (calibrated with it) and only the plate bar is fitted here.
    """
    run = Path(run)
    record = read_json(run / "record.json")
    record.pop("calibration", None)
    write_json(run / "record.json", record)
    finder = CharFinder(run / "model.onnx", run / "record.json")
    crops, cha = fitted_crops(classifier_record, data_home)
    seed = record["training"]["painted"]["seeds"][1]
    plates = list(painted_set(crops, cha, PLATES, seed))
    own = _fit(FinderReader(finder), plates)
    by_classifier = FinderReader(finder, classify=classifier.run, classifier=classifier.metadata)
    named = _fit(by_classifier, plates)
    real = [(s, w) for s, w, sure in _real(reader(detector, by_classifier), fit_plates) if sure]
    real_bar = lowest_bar(*zip(*real, strict=True), 0) if real else 0.0
    calibration = {
        "temperature": 1.0,
        **own,
        "classifier_plate_threshold": max(named["plate_threshold"], real_bar),
        "fitted_on": {"painted_validation_plates": len(plates), "seed": seed, "real_fit_plates": len(real)},
    }
    record["calibration"] = calibration
    write_json(run / "record.json", record)
    return calibration
