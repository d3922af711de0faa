"""The real plate characters a recipe with ``plate_chars`` fits, cut for ``lpr-train train``.

Cutting them needs the served character finder and the detector's record of the photo split,
which are the model repository's and the reports' (the checkout's own), not the data home's.
"""

from __future__ import annotations

from pathlib import Path

from training.fitting.plate_chars import PlateChars


def cut_plate_chars(data: str | Path) -> PlateChars:
    """The fitted bikes' plate characters, cut by the served finder (a recipe with ``plate_chars``)."""
    from lpr.hashing import sha256_file
    from lpr.repository import DEFAULT_REPOSITORY
    from training.common.outputs import REPORTS
    from training.data.photos import detector_dataset
    from training.data.plate_texts import TRANSCRIPTIONS, real_plates
    from training.evaluation.plates import served_finder
    from training.evaluation.real_plates import crop_bytes
    from training.fitting.letter_data import finder_find
    from training.fitting.plate_chars import plate_chars

    photos = Path(data) / "plate-photos"
    finder = served_finder(DEFAULT_REPOSITORY)
    plates = real_plates(photos, detector_dataset(DEFAULT_REPOSITORY, REPORTS))
    provenance = {
        "finder": finder.metadata.model_version,
        "transcriptions": sha256_file(photos / TRANSCRIPTIONS),
    }
    return plate_chars(plates, lambda p: crop_bytes(p.photo), finder_find(finder), provenance)
