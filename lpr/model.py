"""An ONNX classifier file and the metadata that gives its outputs meaning.

Creating an ONNX Runtime session costs far more than running it, and a session
is thread-safe, so one :class:`Model` is built per process and shared. Loading
checks everything that could make answers silently wrong (a model swapped
without its metadata, a label list that does not match the graph) and fails
with :class:`ModelLoadError` instead.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from lpr.hashing import sha256_file
from lpr.labels import DEVANAGARI
from lpr.onnx import session
from lpr.preprocessing import InputSpec

logger = logging.getLogger("lpr.model")


class ModelLoadError(RuntimeError):
    """The model or its metadata is missing or inconsistent; nothing may be served from it."""


def read_metadata(path: Path) -> dict[str, Any]:
    """A ``model.json`` as a dict; a missing or unreadable file is a :class:`ModelLoadError` naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelLoadError(f"model metadata not found at {path}") from exc
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model metadata at {path} is unreadable: {exc}") from exc


def optional_float(block: dict[str, Any], key: str) -> float | None:
    """A calibration value newer models carry and older ones lack (``None``: fall back)."""
    return float(block[key]) if key in block else None


def checked_session(onnx_path: Path, raw: dict[str, Any], intra_op_threads: int = 1) -> ort.InferenceSession:
    """The session of a model file that is the one its metadata ``raw`` describes (its SHA-256).

    A file swapped without its metadata would answer with another model's meaning: refused.
    """
    expected = raw.get("onnx", {}).get("sha256")
    if expected and sha256_file(onnx_path) != expected:
        raise ModelLoadError(f"{onnx_path} is not the file its metadata describes (sha256 differs)")
    return session(onnx_path, intra_op_threads=intra_op_threads)


class CalibratedBars:
    """The letter and plate bars a model's metadata derives from its calibration: each falls back
    to the character ``threshold`` where it was not fitted. Shared by the classifier's and the
    character finder's metadata, whose fields ``threshold``, ``letter_threshold`` and
    ``plate_threshold`` mean the same."""

    threshold: float
    letter_threshold: float | None
    plate_threshold: float | None

    @property
    def letter_bar(self) -> float:
        return self.threshold if self.letter_threshold is None else self.letter_threshold

    @property
    def plate_bar(self) -> float:
        return self.threshold if self.plate_threshold is None else self.plate_threshold


@dataclass(frozen=True)
class ModelMetadata(CalibratedBars):
    """The parts of a model's ``.json`` that inference relies on, validated once at load."""

    raw: dict[str, Any]
    name: str
    version: str
    labels: tuple[str, ...]
    devanagari: tuple[str, ...]
    input_name: str
    output_name: str
    spec: InputSpec
    #: From the optional ``calibration`` block (``lpr-train calibrate``). The defaults
    #: leave probabilities as the graph gives them and flag nothing, so models shipped
    #: before calibration existed still load and answer as they did.
    temperature: float = 1.0
    threshold: float = 0.0
    #: The bar a zone or class letter must clear to be read as बा or प on a plate: the model
    #: knows two of the twenty letters those slots hold, so a letter slot asks more than a
    #: lone crop does. Fitted on validation letters by ``lpr-train calibrate``; without it,
    #: ``threshold``.
    letter_threshold: float | None = None
    #: The bar every character of a plate must clear for the plate to be ``confident``: a system
    #: that stores plates stores what we call confident, so the bar is fitted on validation plates
    #: to keep confident-and-wrong plates rare (``lpr-train calibrate``); without it, ``threshold``.
    plate_threshold: float | None = None
    #: A letter model's bar per letter (:mod:`lpr.letter_namer`): a letter is named only at its own.
    letter_thresholds: dict[str, float] = field(default_factory=dict)

    @property
    def model_version(self) -> str:
        """What every answer reports, so it can be traced to the exact model."""
        return f"{self.name} {self.version}"

    @classmethod
    def load(cls, path: Path) -> ModelMetadata:
        return cls.from_dict(read_metadata(path), where=str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "metadata") -> ModelMetadata:
        try:
            labels = tuple(str(label) for label in raw["labels"])
            devanagari = tuple(raw.get("devanagari") or (DEVANAGARI.get(label, label) for label in labels))
            calibration = raw.get("calibration") or {}
            meta = cls(
                raw=raw,
                name=str(raw.get("name", Path(where).stem)),
                version=str(raw["version"]),
                labels=labels,
                devanagari=devanagari,
                input_name=str(raw.get("input", {}).get("name", "image")),
                output_name=str(raw.get("output", {}).get("name", "probabilities")),
                spec=InputSpec.from_dict(raw["preprocessing"]),
                temperature=float(calibration.get("temperature", 1.0)),
                threshold=float(calibration.get("threshold", 0.0)),
                letter_threshold=optional_float(calibration, "letter_threshold"),
                plate_threshold=optional_float(calibration, "plate_threshold"),
                letter_thresholds={
                    str(k): float(v) for k, v in (calibration.get("letter_thresholds") or {}).items()
                },
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"model metadata at {where} lacks a required field: {exc!r}") from exc
        if set(meta.letter_thresholds) - set(meta.labels):
            raise ModelLoadError("metadata 'letter_thresholds' names letters it has no label for")
        if len(meta.devanagari) != len(meta.labels):
            raise ModelLoadError("metadata 'devanagari' and 'labels' differ in length")
        bars = (meta.threshold, meta.letter_bar, meta.plate_bar, *meta.letter_thresholds.values())
        if not (meta.temperature > 0.0 and all(0.0 <= bar <= 1.0 for bar in bars)):
            raise ModelLoadError(
                f"metadata 'calibration' is invalid: temperature {meta.temperature} must be > 0 and the "
                f"thresholds {bars} (crop, letter slot, plate, each letter's) within [0, 1]"
            )
        return meta


class Model:
    """One ONNX Runtime session plus its metadata: a preprocessed batch in, probabilities out."""

    def __init__(
        self,
        model_path: Path,
        metadata_path: Path | None = None,
        *,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
    ) -> None:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelLoadError(
                f"model not found at {model_path}; set LPR_MODEL_NAME / LPR_MODEL_PATH or ship one "
                "(see docs/training.md)"
            )
        self.metadata = ModelMetadata.load(metadata_path or model_path.with_suffix(".json"))
        self.model_path = model_path
        self.sha256 = sha256_file(model_path)
        expected = (self.metadata.raw.get("onnx") or {}).get("sha256")
        if expected and expected != self.sha256:
            # A model swapped without its metadata would report the wrong
            # version and, worse, possibly the wrong label order.
            raise ModelLoadError(
                f"{model_path} has sha256 {self.sha256}, but its metadata says {expected}: "
                "the model and its .json do not belong together"
            )
        self.intra_op_threads = intra_op_threads
        self.inter_op_threads = inter_op_threads
        try:
            self.session = session(model_path, intra_op_threads, inter_op_threads)
        except Exception as exc:  # onnxruntime raises its own unrelated exception types
            raise ModelLoadError(f"ONNX Runtime cannot load {model_path}: {exc}") from exc
        self._check_signature()
        self._fetch = [self.metadata.output_name]

    def _check_signature(self) -> None:
        """Fail at load, not on the first request, if metadata and graph disagree."""
        meta = self.metadata
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        if meta.input_name not in inputs:
            raise ModelLoadError(f"model has no input '{meta.input_name}' (it has {sorted(inputs)})")
        if meta.output_name not in outputs:
            raise ModelLoadError(f"model has no output '{meta.output_name}' (it has {sorted(outputs)})")
        declared = tuple(inputs[meta.input_name].shape[1:])
        if any(isinstance(d, int) and d != s for d, s in zip(declared, meta.spec.shape, strict=False)):
            raise ModelLoadError(f"model input {declared} does not match preprocessing {meta.spec.shape}")
        classes = outputs[meta.output_name].shape[-1]
        if isinstance(classes, int) and classes != len(meta.labels):
            raise ModelLoadError(f"model has {classes} outputs but metadata lists {len(meta.labels)} labels")

    def empty_batch(self, n: int) -> np.ndarray:
        """A batch buffer preprocessing writes into directly, so images are not copied again."""
        return np.empty((n, *self.metadata.spec.shape), dtype=np.float32)

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Uncalibrated class probabilities, shape ``(N, classes)``, for a preprocessed NHWC batch."""
        return self.session.run(self._fetch, {self.metadata.input_name: batch})[0]

    def warm_up(self, batch_sizes: tuple[int, ...] = (1,)) -> None:
        """Run the graph once per batch size so the first real call pays no allocation cost."""
        for n in batch_sizes:
            probabilities = self.run(np.zeros_like(self.empty_batch(n)))
            if probabilities.shape != (n, len(self.metadata.labels)):
                raise ModelLoadError(f"warm-up returned shape {probabilities.shape} for batch {n}")
        logger.info("model %s warmed up (batch sizes %s)", self.metadata.model_version, batch_sizes)

    def info(self) -> dict[str, Any]:
        """The shipped metadata plus what this process actually loaded."""
        return {
            **self.metadata.raw,
            "model_version": self.metadata.model_version,
            "runtime": {
                "onnxruntime": ort.__version__,
                "providers": self.session.get_providers(),
                "intra_op_threads": self.intra_op_threads,
                "inter_op_threads": self.inter_op_threads,
                "model_file": self.model_path.name,
                "sha256": self.sha256,
                "pid": os.getpid(),  # tells the uvicorn workers (LPR_WORKERS) apart
            },
        }
