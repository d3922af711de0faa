"""A shipped version's record: how it was made and measured, kept in ``reports/`` beside its card.

The served ``model.json`` (:mod:`lpr.metadata`) holds only what serving reads.
Everything else training knows about a version (the recipe, the splits and
their counts, the training history, parity, the int8 comparison, the
calibration's per-source reports, the detector's photo split) is written here
by ``lpr-train ship`` together with the version, and like the version never
again: evaluations and the card read it, nothing rewrites it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from lpr.metadata import VersionExistsError
from lpr.repository import ModelFiles
from training.common.outputs import REPORTS, read_json, write_json

#: ``reports/records/<name>/<version>.json`` (and ``.keras`` where a version ships its checkpoint).
RECORDS = "records"


def record_path(name: str, version: str, reports: str | Path = REPORTS, suffix: str = ".json") -> Path:
    return Path(reports) / RECORDS / name / f"{version}{suffix}"


def load_record(files: ModelFiles, reports: str | Path = REPORTS) -> dict[str, Any]:
    """The version's full record; a version shipped without one (a test's) has only its served JSON."""
    path = record_path(files.name, files.version, reports)
    return read_json(path if path.is_file() else files.metadata)


def keras_checkpoint(files: ModelFiles, reports: str | Path = REPORTS) -> Path:
    """Where a version's Keras checkpoint is kept, when it ships one (the reference, for the bench)."""
    return record_path(files.name, files.version, reports, ".keras")


def write_record(
    name: str, version: str, record: dict[str, Any], reports: str | Path = REPORTS, keras: Path | None = None
) -> list[Path]:
    """Write a new version's record (and checkpoint): like the version, a record is written once."""
    path = record_path(name, version, reports)
    if path.exists():
        raise VersionExistsError(f"{path} exists: the record of {name} {version} is written already")
    path.parent.mkdir(parents=True, exist_ok=True)
    written = [write_json(path, {**record, "name": name})]
    if keras is not None:
        target = path.with_suffix(".keras")
        shutil.copyfile(keras, target)
        written.append(target)
    return written
