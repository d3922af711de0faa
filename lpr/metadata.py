"""The one writer of the model repository: a version folder is written once, whole, and never again.

A deployment pins a model by name and version (``LPR_MODEL_VERSION``); if any
command could rewrite a shipped folder (a new calibration, a re-quantisation),
the same version would answer differently from one day to the next and a
rollback would roll back to something else. So everything a version serves is
decided in the run before it ships (calibration, quantisation and the int8
gate run on the run folder), and this module writes the folder in one step: the
files go to a hidden sibling that is renamed into place, and a version that
exists is refused.

The served ``model.json`` holds what serving reads (labels, input, output,
preprocessing, calibration bars; the detector's input, head and score floor),
the provenance that names the model (architecture, seed, dataset name and
hash, ONNX hash and opset) and its headline test figures. How the model was
made and measured in detail (splits, histories, per-source reports) is
training's record, kept in ``reports/`` beside the card, not here.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lpr.char_finder import FinderMetadata
from lpr.detection import DetectorMetadata
from lpr.hashing import sha256_file
from lpr.model import ModelMetadata
from lpr.repository import MODEL_FILE, ModelFiles

Kind = Literal["classifier", "detector", "finder"]

#: What each kind's reader needs besides name and version (:class:`ModelMetadata`,
#: :class:`DetectorMetadata`, :class:`FinderMetadata`).
SERVING_FIELDS: dict[Kind, tuple[str, ...]] = {
    "classifier": ("labels", "devanagari", "input", "output", "preprocessing", "calibration"),
    "detector": ("input", "output", "min_score"),
    "finder": ("input", "output", "naming", "calibration"),
}
#: The calibration bars the classifier's and the finder's readers use; the fit's diagnostics stay
#: in the record.
CALIBRATION_FIELDS = (
    "temperature",
    "threshold",
    "letter_threshold",
    "plate_threshold",
    "classifier_plate_threshold",
    "letter_thresholds",
)
#: The headline test figures ``GET /model`` reports.
TEST_FIELDS = ("n", "accuracy", "macro_f1", "ece", "errors")


class VersionExistsError(FileExistsError):
    """The repository already holds this version of this model: a shipped version never changes."""


@dataclass(frozen=True)
class ServedMetadata:
    """A version's ``model.json``: serving settings, provenance, headline figures; nothing else."""

    name: str
    version: str
    kind: Kind
    architecture: str
    seed: int
    #: The dataset's name and SHA-256, so a retrain can be checked against the same data.
    dataset: tuple[str, str]
    #: The kind's serving fields (:data:`SERVING_FIELDS`), as the reader parses them.
    serving: Mapping[str, Any]
    opset: int | None = None
    test_metrics: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, name: str | None = None) -> ServedMetadata:
        """The served part of a run's full ``model.json`` (or of a version written before this writer)."""
        kind = _kind(record)
        serving = {key: record[key] for key in SERVING_FIELDS[kind] if key in record}
        if kind in ("classifier", "finder"):
            calibration = record.get("calibration") or {}
            serving["calibration"] = {k: calibration[k] for k in CALIBRATION_FIELDS if k in calibration}
        metrics = record.get("test_metrics") or {}
        return cls(
            name=name or str(record["name"]),
            version=str(record["version"]),
            kind=kind,
            architecture=str(record["architecture"]),
            seed=int(record["seed"]),
            dataset=(str(record["dataset"]["name"]), str(record["dataset"]["sha256"])),
            serving=serving,
            opset=(record.get("onnx") or {}).get("opset"),
            test_metrics={k: metrics[k] for k in TEST_FIELDS if k in metrics},
        )

    def document(self, onnx_sha256: str) -> dict[str, Any]:
        """The JSON written beside ``model.onnx``, checked by the kind's own reader first."""
        doc: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "architecture": self.architecture,
            **self.serving,
            "seed": self.seed,
            "dataset": {"name": self.dataset[0], "sha256": self.dataset[1]},
            "onnx": {"file": MODEL_FILE, "sha256": onnx_sha256, "opset": self.opset},
        }
        if self.test_metrics:
            doc["test_metrics"] = dict(self.test_metrics)
        reader = {"classifier": ModelMetadata, "detector": DetectorMetadata, "finder": FinderMetadata}
        reader[self.kind].from_dict(doc, where=f"{self.name} {self.version}")
        return doc


def _kind(record: Mapping[str, Any]) -> Kind:
    """Which reader a record is for: a classifier names its labels, a finder its head's classes."""
    if "labels" in record:
        return "classifier"
    return "finder" if "labels" in record.get("input", {}) else "detector"


def write_version(repository: str | Path, metadata: ServedMetadata, onnx: str | Path) -> ModelFiles:
    """Write ``<repository>/<name>/<version>/`` once: ``model.onnx`` and its ``model.json``.

    Refuses a version that exists (:class:`VersionExistsError`). The folder
    appears whole or not at all: it is filled under a hidden name and renamed.
    """
    files = ModelFiles(metadata.name, metadata.version, Path(repository) / metadata.name / metadata.version)
    if files.folder.exists():
        raise VersionExistsError(
            f"{files.folder} exists: version {metadata.version} of {metadata.name} is shipped and never "
            "changes. Ship the new model as a new version."
        )
    partial = files.folder.with_name(f".{metadata.version}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        shutil.copyfile(onnx, partial / MODEL_FILE)
        document = metadata.document(sha256_file(partial / MODEL_FILE))
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        (partial / files.metadata.name).write_text(text, encoding="utf-8")
        partial.rename(files.folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return files
