"""One runner per loaded model: the only way from the service to an ONNX Runtime session.

A :class:`Runner` stands for one model the process loaded (the character
classifier, the plate detector). Every caller goes through it, so it is the
one place that times inference, counts what the model did (calls, images) and
knows who is using it now (:attr:`Runner.active`). The dynamic batcher of
``/predict`` (:mod:`service.batching`) wraps the character runner rather than
owning a second path to the model, and decides whether a request is alone from
that runner's own count: what else the service is doing (a ``/metrics``
scrape, a health probe) does not change how a prediction runs.

A runner offers inference on the caller's thread (:meth:`Runner.run`) and on
its own worker thread (:meth:`Runner.submit`): ONNX Runtime releases the GIL,
so a caller that hands a chunk to the worker prepares the next one on the other
core meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
from PIL import Image

from lpr.char_finder import CharFinder
from lpr.detection import Detection, Detector, DetectorMetadata


class Described(Protocol):
    """What a runner reports of its model: the metadata's name and version."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...


class Runner:
    """One model's session, its worker thread, and the count of what went through it.

    ``infer`` is the model's own batch call (the session run); ``observe``, when
    given, receives every call's seconds and batch size (the Prometheus
    inference histograms).
    """

    def __init__(
        self,
        role: str,
        metadata: Described,
        infer: Callable[[np.ndarray], np.ndarray],
        *,
        observe: Callable[[float, int], None] | None = None,
    ) -> None:
        self.role = role
        self.metadata = metadata
        self._infer = infer
        self._observe = observe
        self._lock = threading.Lock()
        #: Callers using the runner now (a request being prepared or waiting for its answer).
        self.active = 0
        #: Inference calls made, and the images they held.
        self.calls = 0
        self.images = 0
        # One worker: a caller runs whatever the worker has not started once it is done preparing
        # (work stealing), and a second worker would only take the core that preparing needs.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lpr-{role}")

    def enter(self) -> None:
        """Count a caller in; every :meth:`enter` is matched by one :meth:`leave`."""
        with self._lock:
            self.active += 1

    def leave(self) -> None:
        with self._lock:
            self.active -= 1

    @contextmanager
    def caller(self) -> Iterator[None]:
        """Count the block as one caller of this runner, for as long as it prepares and runs."""
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The model's output for a prepared batch, on the caller's thread, timed and counted."""
        started = time.perf_counter()
        output = self._infer(batch)
        seconds = time.perf_counter() - started
        with self._lock:
            self.calls += 1
            self.images += len(batch)
        if self._observe is not None:
            self._observe(seconds, len(batch))
        return output

    def submit(self, batch: np.ndarray) -> Future[np.ndarray]:
        """:meth:`run` on the runner's worker; ``batch`` must not change until the result is in."""
        return self._worker.submit(self.run, batch)

    def post(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the runner's worker (the batcher's drain), in turn with submitted batches."""
        self._worker.submit(work)

    def info(self) -> dict[str, Any]:
        """This runner's entry in ``GET /model``."""
        return {
            "role": self.role,
            "name": self.metadata.name,
            "version": self.metadata.version,
            "active": self.active,
            "calls": self.calls,
            "images": self.images,
        }

    def close(self) -> None:
        """Finish what the worker holds, then stop it."""
        self._worker.shutdown(wait=True)


class DetectorRunner(Runner):
    """The plate detector's runner: finds plates the way :class:`~lpr.detection.Detector` does."""

    metadata: DetectorMetadata

    def __init__(self, detector: Detector) -> None:
        super().__init__("plates", detector.metadata, detector.heads)
        self.detector = detector

    def detect(self, image: Image.Image, min_score: float | None = None) -> list[Detection]:
        """The plates in an upright image, best first (:meth:`lpr.detection.Detector.detect`)."""
        with self.caller():
            return self.detector.detect(image, min_score, heads=self.run)


class FinderRunner(Runner):
    """The character finder's runner: every plate's characters found, both ways up, in one call."""

    def __init__(self, finder: CharFinder) -> None:
        super().__init__("plate-characters", finder.metadata, finder.heads)
        self.finder = finder
