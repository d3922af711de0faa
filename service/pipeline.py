"""Uploaded bytes to predictions, with no HTTP in sight.

Everything here is blocking (Pillow, NumPy, ONNX Runtime). A batch runs in a
worker thread in one hop; a single small crop is prepared on the event loop
(cheaper than the hop) and only its inference goes to the batching thread.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any, cast

import numpy as np
from PIL import Image

from service.errors import APIError
from service.model import Classifier
from training.preprocessing import (
    ImageError,
    InputSpec,
    inputs_into,
    load_image,
    open_image,
    preprocess,
    whiteness,
)
from training.temperature import apply_temperature, unknown

logger = logging.getLogger("service.pipeline")

#: A ranked answer (``label``, ``devanagari``, ``confidence``, ``unknown``, ``probabilities``) or an error.
Outcome = dict[str, Any] | APIError


def open_upload(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """The upload's header, checked against the byte and pixel limits; nothing decoded yet."""
    if len(data) > max_bytes:
        raise APIError("file_too_large", f"the file is over the upload limit of {max_bytes} bytes")
    try:
        return open_image(data, max_pixels=max_pixels)
    except ImageError as exc:
        raise APIError.from_image_error(exc) from exc
    except Exception as exc:  # a Pillow plugin tripping over hostile bytes is still the input's fault
        logger.warning("opening an upload failed (%r)", exc, exc_info=True)
        raise APIError("not_an_image", f"the upload could not be read as an image: {exc}") from exc


def _fail(exc: Exception) -> APIError:
    """Every failure past the header is the upload's fault (Pillow and NumPy raise many types on
    hostile input), so each becomes a 4xx :class:`APIError`."""
    if isinstance(exc, ImageError):
        return APIError.from_image_error(exc)
    logger.warning("preprocessing failed (%r)", exc, exc_info=True)
    return APIError("corrupt", f"the image could not be processed: {exc}")


def prepare(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """An opened upload to one model input (a lone ``/predict`` crop)."""
    try:
        return preprocess(load_image(image), spec)
    except Exception as exc:
        raise _fail(exc) from exc


def decode_whiteness(image: Image.Image) -> np.ndarray:
    """An opened upload decoded to its whiteness array, the part of preprocessing done per file."""
    try:
        return whiteness(load_image(image))
    except Exception as exc:
        raise _fail(exc) from exc


def classify_files(
    classifier: Classifier,
    files: Sequence[bytes],
    *,
    max_bytes: int,
    max_pixels: int,
    chunk: int = 0,
) -> list[Outcome]:
    """One outcome per uploaded file, in order; a file that fails gets its own error.

    Each file is opened and decoded on its own, so a bad one fails alone; the
    rest of preprocessing (Python, holds the GIL) then runs once per chunk of
    good files, with NumPy calls shared by the chunk (a 50x50 crop pays for a
    call's overhead, not its arithmetic), writing straight into one batch
    buffer. With ``chunk`` > 0, every ``chunk`` good images go to ONNX Runtime
    (which releases the GIL) on the inference pool while this thread prepares
    the next ones, so a batch uses two cores instead of alternating on one.
    With ``chunk`` 0 the whole batch is one call.
    """
    spec = classifier.metadata.spec
    chunk = chunk or len(files)
    outcomes: list[Outcome | None] = [None] * len(files)
    batch = classifier.empty_batch(len(files))
    good: list[int] = []
    grays: list[np.ndarray] = []
    pending: list[tuple[np.ndarray, Future[np.ndarray]]] = []  # rows handed to the worker, and their result
    sent = 0  # rows of ``batch`` already handed to ONNX Runtime

    def hand_off(start: int, end: int) -> None:
        rows = batch[start:end]
        pending.append((rows, classifier.submit(rows)))

    for index, data in enumerate(files):
        try:
            grays.append(decode_whiteness(open_upload(data, max_bytes=max_bytes, max_pixels=max_pixels)))
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
        results[k] = classifier.classify(rows)
    chunks = [r if r is not None else f.result() for r, (_, f) in zip(results, pending, strict=True)]
    if good:
        probabilities = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        for answer, index in zip(rank(classifier, probabilities), good, strict=True):
            outcomes[index] = answer
    assert all(outcome is not None for outcome in outcomes)
    return cast(list[Outcome], outcomes)


def _inputs(grays: list[np.ndarray], spec: InputSpec, out: np.ndarray) -> None:
    """A chunk of decoded files to model inputs in ``out``.

    Only decoded uint8 arrays reach this step, and nothing in it depends on
    what the client sent beyond their pixels; should it fail all the same, no
    file is lost: each is retried alone, as :func:`prepare` would.
    """
    try:
        inputs_into(grays, spec, out)
    except Exception:
        logger.exception("preparing a chunk of %d files failed; retrying them one by one", len(grays))
        for row, gray in enumerate(grays):
            inputs_into([gray], spec, out[row:])


def rank(classifier: Classifier, probabilities: np.ndarray) -> list[dict[str, Any]]:
    """Per row: the top class, its confidence, and every class most probable first.

    Plain dicts, vectorised: building pydantic objects for 64 x 12 entries cost
    8 ms per batch, more than the inference. The route turns these into the
    ``Prediction`` shape, and tests validate real answers against that model.

    Probabilities are calibrated with the model's temperature first, so
    ``confidence`` means what it says; ``unknown`` marks a top probability under
    the model's threshold (likely none of the twelve symbols). Both come from
    the metadata's ``calibration`` block (``lpr-train calibrate``).
    """
    meta = classifier.metadata
    probabilities = apply_temperature(probabilities, meta.temperature)
    flags = unknown(probabilities, meta.threshold).tolist()
    order = np.argsort(-probabilities, axis=1, kind="stable")
    values = np.take_along_axis(probabilities, order, axis=1).astype(float).round(6).tolist()
    labels, devanagari = meta.labels, meta.devanagari
    ranked = []
    for classes, row, flag in zip(order.tolist(), values, flags, strict=True):
        top = classes[0]
        ranked.append(
            {
                "label": labels[top],
                "devanagari": devanagari[top],
                "confidence": row[0],
                "unknown": flag,
                "probabilities": [
                    {"label": labels[k], "devanagari": devanagari[k], "probability": p}
                    for k, p in zip(classes, row, strict=True)
                ],
            }
        )
    return ranked
