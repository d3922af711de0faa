"""The letter model shipped once per version: ``<repository>/plate-letters/<version>/`` and its record.

A run of ``lpr-train letters train`` is exported, checked against Keras and
calibrated in its folder (:mod:`training.fitting.letter_run`); shipping writes
the served ``model.json`` (labels, preprocessing, temperature and each letter's
bar) through the one metadata writer, and the run's full record beside the card.
"""

from __future__ import annotations

from pathlib import Path

from lpr.metadata import ServedMetadata, write_version
from lpr.repository import MODEL_FILE
from training.common.outputs import REPORTS, read_json
from training.common.records import write_record
from training.fitting.letter_run import RECORD


def ship_letters(
    run: str | Path, repository: str | Path, version: str, reports: str | Path = REPORTS
) -> list[Path]:
    """Write the version once (refused if it exists), then its record."""
    run = Path(run)
    record = {**read_json(run / RECORD), "version": version}
    files = write_version(repository, ServedMetadata.from_record(record), run / MODEL_FILE)
    return [files.onnx, files.metadata, *write_record(files.name, files.version, record, reports)]
