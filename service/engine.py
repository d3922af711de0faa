"""The service's one way to the model: every route's inference goes through :class:`InferenceEngine`.

The engine is where requests meet the models. It holds one runner per loaded
model (:mod:`service.runner`): the character classifier (:attr:`~InferenceEngine.classifier`),
the plate detector (:attr:`~InferenceEngine.detector`) and the character finder
(:attr:`~InferenceEngine.finder`), each owning its session and worker thread and counting
its callers; every inference of every route goes through one of them. The engine knows three jobs:

* :meth:`~InferenceEngine.predict`: one crop. A small crop is prepared on the
  event loop (cheaper than a hop to a thread); its inference goes to the
  dynamic batcher (:mod:`service.batching`), a wrapper around the classifier's
  runner, which runs it at once when the request is the runner's only caller
  and batches it with its neighbours under load.
* :meth:`~InferenceEngine.classify_files`: many crops in one request (blocking: the
  batch and V2 routes run it in the thread pool, in one hop with their parsing). Each file is
  decoded on its own (a bad one fails alone); the rest of preprocessing runs
  once per chunk of good files, and each chunk goes to the runner's worker
  (ONNX Runtime releases the GIL) while the next is prepared, so a batch uses
  two cores.
* :meth:`~InferenceEngine.read_plate`: a photo or a plate, through the one photo reader
  (:func:`lpr.photo_reader.read_photo`): plates found by the detector's runner, their
  characters found and named by the finder's, one call per plate for every turn read.

Every client mistake comes out as an :class:`~service.errors.APIError` (4xx);
images classified and refused are counted here, so no route can forget to.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, cast

import numpy as np
from PIL import Image
from starlette.concurrency import run_in_threadpool

from lpr.char_finder import CharFinder
from lpr.confidence import rank
from lpr.detection import Detector
from lpr.letter_namer import LetterNamer
from lpr.model import Model
from lpr.photo_reader import read_photo
from lpr.preprocessing import InputSpec, inputs_into
from lpr.readers import served_reader
from service.batching import BatcherClosed, MicroBatcher
from service.config import Settings
from service.errors import APIError, image_errors
from service.metrics import Metrics
from service.plate_schemas import plate_answer
from service.runner import DetectorRunner, FinderRunner, Runner
from service.uploads import decode_whiteness, open_upload, prepare

logger = logging.getLogger("service.engine")

#: A ranked answer (``label``, ``devanagari``, ``confidence``, ``unknown``, ``probabilities``) or an error.
Outcome = dict[str, Any] | APIError

#: Uploads up to this many pixels are prepared on the event loop: a 512 x 512
#: crop takes well under a millisecond, and real crops are far smaller.
INLINE_PIXELS = 512 * 512


class InferenceEngine:
    """The loaded models' runners, the batcher, and the three jobs the routes ask of them."""

    def __init__(
        self,
        model: Model,
        detector: Detector,
        finder: CharFinder,
        letters: Model,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.model = model
        self.metadata = model.metadata
        self.settings = settings
        self.metrics = metrics
        #: The character model's runner, timed into the inference metrics.
        self.classifier = Runner("characters", model.metadata, model.run, observe=metrics.observe_inference)
        #: The plate detector's runner (what the photo reader asks for plates).
        self.detector = DetectorRunner(detector)
        #: The character finder's runner, and the plate reader on it (characters named as the
        #: finder's metadata says: by its own head, or by the classifier's runner).
        self.finder = FinderRunner(finder)
        #: The letter model's runner: every letter slot of a request's plates named in one call.
        self.letters = Runner("plate-letters", letters.metadata, letters.run)
        self.plate_reader = served_reader(
            finder,
            self.classifier.run,
            model.metadata,
            heads=self.finder.run,
            letters=LetterNamer(letters.metadata, self.letters.run),
        )
        max_batch = settings.batch_max_size if settings.batching else 1
        self.batcher = MicroBatcher(
            self.classifier,
            model.empty_batch(max_batch),
            max_batch=max_batch,
            max_wait=settings.batch_max_wait_ms / 1000.0,
        )
        self._ready = threading.Event()

    @classmethod
    def load(cls, settings: Settings, metrics: Metrics) -> InferenceEngine:
        """Load and warm up the configured model (blocking: the lifespan runs it in a thread)."""
        model_path, metadata_path = settings.model_files()
        model = Model(
            model_path,
            metadata_path,
            intra_op_threads=settings.intra_op_threads,
            inter_op_threads=settings.inter_op_threads,
        )
        # A single image, a full dynamic batch and the largest upload batch, so no first request pays.
        model.warm_up(batch_sizes=(1, settings.batch_max_size, settings.max_batch_files))
        detector = Detector(*settings.detector_files(), intra_op_threads=settings.intra_op_threads)
        detector.warm_up()
        finder = CharFinder(*settings.finder_files(), intra_op_threads=settings.intra_op_threads)
        finder.warm_up()
        letters = Model(*settings.letters_files(), intra_op_threads=settings.intra_op_threads)
        letters.warm_up()
        engine = cls(model, detector, finder, letters, settings, metrics)
        engine._ready.set()
        meta = model.metadata
        metrics.model_info.labels(meta.name, meta.version, model.sha256).set(1)
        metrics.ready.set(1)
        logger.info(
            "serving %s from %s, plates found by %s, read by %s, letters named by %s",
            meta.model_version,
            model.model_path,
            detector.metadata.model_version,
            finder.metadata.model_version,
            letters.metadata.model_version,
        )
        return engine

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    # -- counting and opening --------------------------------------------------------------------

    def _count(self, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, APIError):
                self.metrics.images_rejected.labels(outcome.code).inc()
            else:
                self.metrics.images_classified.labels(outcome["label"]).inc()

    def _open(self, data: bytes) -> Image.Image:
        """The upload's header, checked against the limits (nothing decoded yet)."""
        settings = self.settings
        return open_upload(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_pixels)

    # -- the three jobs --------------------------------------------------------------------------

    async def predict(self, data: bytes) -> dict[str, Any]:
        """One crop's ranked answer; a client mistake raises :class:`APIError`."""
        try:
            with self.batcher.arrival() as arrival:
                image = self._open(data)
                spec = self.metadata.spec
                if image.width * image.height <= INLINE_PIXELS:
                    tensor = prepare(image, spec)
                else:
                    tensor = await run_in_threadpool(prepare, image, spec)
                probabilities = await arrival.classify(tensor)
        except BatcherClosed as exc:
            raise APIError("shutting_down", "the service is shutting down; retry on another replica") from exc
        except APIError as exc:
            self._count([exc])
            raise
        (answer,) = rank(probabilities[None], self.metadata)
        self._count([answer])
        return answer

    async def read_plate(self, data: bytes, filename: str | None) -> dict[str, Any]:
        """A photo or plate image to the ``/read-plate`` answer."""
        try:
            return await run_in_threadpool(self._read_plate, data, filename)
        except APIError as exc:
            self._count([exc])
            raise

    def _read_plate(self, data: bytes, filename: str | None) -> dict[str, Any]:
        # The photo limits, from the header; the photo reader then opens the accepted bytes
        # itself (a reduced decode, a full-size one if a plate needs it). Its error for pixels it
        # cannot process is the client's (4xx); a model's failure passes through (500).
        settings = self.settings
        open_upload(data, max_bytes=settings.max_photo_bytes, max_pixels=settings.max_photo_pixels)
        # The plate counts as the classifier's caller throughout too, so a lone /predict beside it
        # hands its image over instead of running inline.
        with self.finder.caller(), self.classifier.caller(), image_errors():
            photo = read_photo(data, self.detector, self.plate_reader)
        versions = self.finder.metadata.model_version, self.detector.metadata.model_version
        return plate_answer(photo, filename, *versions)

    def classify_files(self, files: Sequence[bytes]) -> list[Outcome]:
        """One outcome per uploaded file, in order (blocking: callers run it in a worker thread).

        Each file is opened and decoded on its own; the rest of preprocessing
        (Python, holds the GIL) then runs once per chunk of good files, with
        NumPy calls shared by the chunk, writing straight into one batch
        buffer. Every ``settings.inference_chunk`` good images go to the
        classifier's worker while this thread prepares the next ones; 0 makes the
        whole batch one call. The request counts as the classifier's caller throughout.
        """
        with self.classifier.caller():
            outcomes = self._classify_files(files)
        self._count(outcomes)
        return outcomes

    def _classify_files(self, files: Sequence[bytes]) -> list[Outcome]:
        runner = self.classifier
        spec = self.metadata.spec
        chunk = self.settings.inference_chunk or len(files)
        outcomes: list[Outcome | None] = [None] * len(files)
        batch = self.model.empty_batch(len(files))
        good: list[int] = []
        grays: list[np.ndarray] = []
        pending: list[tuple[np.ndarray, Future[np.ndarray]]] = []  # rows handed to the worker, and result
        sent = 0  # rows of ``batch`` already handed to ONNX Runtime

        def hand_off(start: int, end: int) -> None:
            rows = batch[start:end]
            pending.append((rows, runner.submit(rows)))

        for index, data in enumerate(files):
            try:
                grays.append(decode_whiteness(self._open(data)))
                good.append(index)
            except APIError as exc:
                outcomes[index] = exc
            if len(grays) == chunk and index < len(files) - 1:
                _inputs(grays, spec, batch[sent:])
                hand_off(sent, len(good))
                sent, grays = len(good), []
        _inputs(grays, spec, batch[sent:])
        # The last chunk goes in two halves, so that the worker, idle by now if it kept up, takes one.
        if len(good) - sent > 1:
            middle = sent + (len(good) - sent) // 2
            hand_off(sent, middle)
            sent = middle
        if len(good) > sent:
            hand_off(sent, len(good))
        # Work stealing: whatever the worker has not started yet runs here, last first, so that
        # once preparing is done both cores finish the inference together.
        results: list[np.ndarray | None] = [None] * len(pending)
        for k in range(len(pending) - 1, -1, -1):
            rows, future = pending[k]
            if not future.cancel():
                break
            results[k] = runner.run(rows)
        chunks = [r if r is not None else f.result() for r, (_, f) in zip(results, pending, strict=True)]
        if good:
            probabilities = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
            for answer, index in zip(rank(probabilities, self.metadata), good, strict=True):
                outcomes[index] = answer
        assert all(outcome is not None for outcome in outcomes)
        return cast(list[Outcome], outcomes)

    # -- operations ------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """``GET /model``: the metadata, what this process loaded, how it batches, and its runners."""
        info = self.model.info()
        info["runtime"]["ready"] = self.ready
        info["runtime"]["batching"] = self.batcher.info()
        info["runtime"]["runners"] = [
            self.classifier.info(),
            self.detector.info(),
            self.finder.info(),
            self.letters.info(),
        ]
        return info

    def close(self) -> None:
        """Refuse new work, finish what is queued, stop the runners' workers."""
        self._ready.clear()
        self.batcher.close()
        self.classifier.close()
        self.detector.close()
        self.finder.close()
        self.letters.close()


def _inputs(grays: list[np.ndarray], spec: InputSpec, out: np.ndarray) -> None:
    """A chunk of decoded files to model inputs in ``out``.

    Only decoded uint8 arrays reach this step, and nothing in it depends on
    what the client sent beyond their pixels; should it fail all the same, no
    file is lost: each is retried alone.
    """
    try:
        inputs_into(grays, spec, out)
    except Exception:
        logger.exception("preparing a chunk of %d files failed; retrying them one by one", len(grays))
        for row, gray in enumerate(grays):
            inputs_into([gray], spec, out[row:])
