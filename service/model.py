"""The shipped ONNX model, loaded once per process.

Creating an ONNX Runtime session costs far more than running it, and the
session is thread-safe, so the service builds exactly one and shares it across
request threads.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from training.hashing import sha256_file
from training.labels import DEVANAGARI
from training.preprocessing import InputSpec
from training.timing import session

logger = logging.getLogger("service.model")


class ModelLoadError(RuntimeError):
    """The model or its metadata is missing or inconsistent; the service must not start."""


@dataclass(frozen=True)
class ModelMetadata:
    """The parts of ``<model>.json`` the service relies on, validated once at start-up."""

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

    @property
    def model_version(self) -> str:
        """What every prediction reports, so answers can be traced to the exact model."""
        return f"{self.name} {self.version}"

    @classmethod
    def load(cls, path: Path) -> ModelMetadata:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelLoadError(f"model metadata not found at {path}") from exc
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"model metadata at {path} is unreadable: {exc}") from exc
        try:
            labels = tuple(str(label) for label in raw["labels"])
            devanagari = tuple(raw.get("devanagari") or (DEVANAGARI.get(label, label) for label in labels))
            spec = InputSpec.from_dict(raw["preprocessing"])
            calibration = raw.get("calibration") or {}
            meta = cls(
                raw=raw,
                name=str(raw.get("name", path.stem)),
                version=str(raw["version"]),
                labels=labels,
                devanagari=devanagari,
                input_name=str(raw.get("input", {}).get("name", "image")),
                output_name=str(raw.get("output", {}).get("name", "probabilities")),
                spec=spec,
                temperature=float(calibration.get("temperature", 1.0)),
                threshold=float(calibration.get("threshold", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(f"model metadata at {path} lacks a required field: {exc!r}") from exc
        if len(meta.devanagari) != len(meta.labels):
            raise ModelLoadError("metadata 'devanagari' and 'labels' differ in length")
        if not (meta.temperature > 0.0 and 0.0 <= meta.threshold <= 1.0):
            raise ModelLoadError(
                f"metadata 'calibration' is invalid: temperature {meta.temperature} must be > 0 and "
                f"threshold {meta.threshold} within [0, 1]"
            )
        return meta


class Classifier:
    """One ONNX Runtime session plus the metadata that gives its outputs meaning."""

    def __init__(
        self,
        model_path: Path,
        metadata_path: Path,
        *,
        intra_op_threads: int = 1,
        inter_op_threads: int = 1,
        on_inference: Callable[[float, int], None] | None = None,
    ) -> None:
        if not model_path.is_file():
            raise ModelLoadError(
                f"model not found at {model_path}; set LPR_MODEL_PATH or export one (see README)"
            )
        self.metadata = ModelMetadata.load(metadata_path)
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
        self._on_inference = on_inference
        self._ready = threading.Event()
        # ONNX Runtime releases the GIL while it runs, so a chunk handed to this pool
        # computes on another core while the request thread prepares the next one. One
        # worker: the request thread itself runs whatever the worker has not started once
        # it is done preparing (``service.pipeline.classify_files``), and a second worker
        # would only take the core that preparing needs (in-process, 64 crops took 18.7 ms
        # with one worker and 22.0 with two).
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lpr-onnx")

    def _check_signature(self) -> None:
        """Fail at start-up, not on the first request, if metadata and graph disagree."""
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

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def empty_batch(self, n: int) -> np.ndarray:
        """A batch buffer preprocessing writes into directly, so images are not copied again."""
        return np.empty((n, *self.metadata.spec.shape), dtype=np.float32)

    def classify(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(N, classes)``, for a preprocessed NHWC batch."""
        started = time.perf_counter()
        (probabilities,) = self.session.run([self.metadata.output_name], {self.metadata.input_name: batch})
        if self._on_inference is not None:
            self._on_inference(time.perf_counter() - started, len(batch))
        return probabilities

    def submit(self, batch: np.ndarray) -> Future[np.ndarray]:
        """:meth:`classify` on the inference pool; ``batch`` must not change until the result is in."""
        return self._pool.submit(self.classify, batch)

    def close(self) -> None:
        self._ready.clear()
        self._pool.shutdown(wait=True)

    def warm_up(self, batch_sizes: tuple[int, ...] = (1,)) -> None:
        """Run the graph once per batch size so the first real request pays no allocation cost."""
        for n in batch_sizes:
            probabilities = self.session.run(
                [self.metadata.output_name], {self.metadata.input_name: np.zeros_like(self.empty_batch(n))}
            )[0]
            if probabilities.shape != (n, len(self.metadata.labels)):
                raise ModelLoadError(f"warm-up returned shape {probabilities.shape} for batch {n}")
        self._ready.set()
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
                "model_path": str(self.model_path),
                "sha256": self.sha256,
                "ready": self.ready,
                "pid": os.getpid(),  # tells the uvicorn workers (LPR_WORKERS) apart
            },
        }
